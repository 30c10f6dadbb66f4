//! Lenient readers over `serde_json::Value`: Meta and its peers send numbers as strings and
//! strings as numbers, omit keys and send `null`, so every read accepts what it can and
//! otherwise yields `None` instead of an error.

use serde_json::Value;

/// The value under `key`, treating `null` as absent.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A string, or a number rendered as a string.
pub(crate) fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn string(v: &Value, key: &str) -> Option<String> {
    get(v, key).and_then(as_string)
}

/// An integer from a number or a numeric string (floats are truncated).
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    get(v, key).and_then(as_int)
}

pub(crate) fn float(v: &Value, key: &str) -> Option<f64> {
    match get(v, key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

pub(crate) fn boolean(v: &Value, key: &str) -> Option<bool> {
    get(v, key).and_then(as_bool)
}

/// A boolean, or `"true"`/`"false"`, or 0/1.
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// The array under `key`, or an empty slice when it is missing or not an array.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    match v.get(key) {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

/// The array under `key`, moved out of `v` (empty when it is not an array).
pub(crate) fn take_array(v: &mut Value, key: &str) -> Vec<Value> {
    match v.get_mut(key).map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

pub(crate) fn strings(v: &Value, key: &str) -> Vec<String> {
    array(v, key).iter().filter_map(as_string).collect()
}

/// The object under `key`, if it is one.
pub(crate) fn object<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    get(v, key).filter(|x| x.is_object())
}

/// serde helpers for Graph responses, which share the webhooks' looseness.
pub(crate) mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(super::as_string(&Value::deserialize(d)?))
    }

    pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(super::as_int(&Value::deserialize(d)?))
    }

    pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(super::as_bool(&Value::deserialize(d)?))
    }

    pub(crate) fn string_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(super::as_string(&Value::deserialize(d)?).unwrap_or_default())
    }

    /// A list of strings; numbers are rendered, anything else is skipped.
    pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(a) => a.iter().filter_map(super::as_string).collect(),
            _ => Vec::new(),
        })
    }

    /// Any JSON value rendered as a string (objects as JSON text).
    pub(crate) fn opt_any_string<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// A list that tolerates `null` and non-arrays (as empty).
    pub(crate) fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: serde::de::DeserializeOwned,
    {
        Ok(match Value::deserialize(d)? {
            Value::Array(a) => a
                .into_iter()
                .filter_map(|x| serde_json::from_value(x).ok())
                .collect(),
            _ => Vec::new(),
        })
    }
}
