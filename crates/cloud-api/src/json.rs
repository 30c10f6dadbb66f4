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
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(int_from_f64)),
        Value::String(s) => int_from_str(s),
        _ => None,
    }
}

/// A float truncated to an integer, when it is one's size.
fn int_from_f64(f: f64) -> Option<i64> {
    Some(f).filter(|f| f.is_finite() && f.abs() < 9.0e18).map(|f| f as i64)
}

/// An integer from a numeric string (floats are truncated).
fn int_from_str(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().and_then(int_from_f64))
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
        Value::String(s) => bool_from_str(s),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// `"true"` or `"false"`, in any case.
fn bool_from_str(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
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

/// serde helpers for Graph responses and the webhooks' fast parse, with the looseness of the
/// readers above — the same results as `as_string`, `as_int` and `as_bool` of the parsed
/// value, read straight from the JSON without building it.
pub(crate) mod de {
    use std::marker::PhantomData;

    use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A scalar read leniently: what each kind of JSON value becomes (`None`: nothing).
    trait Lenient: Sized {
        fn from_str(s: &str) -> Option<Self>;
        fn from_string(s: String) -> Option<Self> {
            Self::from_str(&s)
        }
        fn from_i64(i: i64) -> Option<Self>;
        fn from_u64(u: u64) -> Option<Self>;
        fn from_f64(f: f64) -> Option<Self>;
        fn from_bool(b: bool) -> Option<Self>;
    }

    /// `as_string`: strings, and numbers as serde_json writes them.
    impl Lenient for String {
        fn from_str(s: &str) -> Option<String> {
            Some(s.to_owned())
        }
        fn from_string(s: String) -> Option<String> {
            Some(s)
        }
        fn from_i64(i: i64) -> Option<String> {
            Some(serde_json::Number::from(i).to_string())
        }
        fn from_u64(u: u64) -> Option<String> {
            Some(serde_json::Number::from(u).to_string())
        }
        fn from_f64(f: f64) -> Option<String> {
            serde_json::Number::from_f64(f).map(|n| n.to_string())
        }
        fn from_bool(_: bool) -> Option<String> {
            None
        }
    }

    /// `as_int`.
    impl Lenient for i64 {
        fn from_str(s: &str) -> Option<i64> {
            super::int_from_str(s)
        }
        fn from_i64(i: i64) -> Option<i64> {
            Some(i)
        }
        fn from_u64(u: u64) -> Option<i64> {
            i64::try_from(u).ok().or_else(|| super::int_from_f64(u as f64))
        }
        fn from_f64(f: f64) -> Option<i64> {
            super::int_from_f64(f)
        }
        fn from_bool(_: bool) -> Option<i64> {
            None
        }
    }

    /// `as_bool`.
    impl Lenient for bool {
        fn from_str(s: &str) -> Option<bool> {
            super::bool_from_str(s)
        }
        fn from_i64(i: i64) -> Option<bool> {
            Some(i != 0)
        }
        fn from_u64(u: u64) -> Option<bool> {
            i64::try_from(u).ok().map(|i| i != 0)
        }
        fn from_f64(_: f64) -> Option<bool> {
            None
        }
        fn from_bool(b: bool) -> Option<bool> {
            Some(b)
        }
    }

    struct LenientVisitor<T>(PhantomData<T>);

    impl<'de, T: Lenient> Visitor<'de> for LenientVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_str<E>(self, s: &str) -> Result<Option<T>, E> {
            Ok(T::from_str(s))
        }
        fn visit_string<E>(self, s: String) -> Result<Option<T>, E> {
            Ok(T::from_string(s))
        }
        fn visit_i64<E>(self, i: i64) -> Result<Option<T>, E> {
            Ok(T::from_i64(i))
        }
        fn visit_u64<E>(self, u: u64) -> Result<Option<T>, E> {
            Ok(T::from_u64(u))
        }
        fn visit_f64<E>(self, f: f64) -> Result<Option<T>, E> {
            Ok(T::from_f64(f))
        }
        fn visit_bool<E>(self, b: bool) -> Result<Option<T>, E> {
            Ok(T::from_bool(b))
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    fn lenient<'de, D: Deserializer<'de>, T: Lenient>(d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(LenientVisitor(PhantomData))
    }

    pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        lenient(d)
    }

    pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        lenient(d)
    }

    pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        lenient(d)
    }

    pub(crate) fn string_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    struct Read {
        #[serde(deserialize_with = "super::de::opt_string")]
        string: Option<String>,
        #[serde(deserialize_with = "super::de::opt_i64")]
        int: Option<i64>,
        #[serde(deserialize_with = "super::de::opt_bool")]
        boolean: Option<bool>,
    }

    #[test]
    fn the_serde_readers_read_as_the_value_readers_do() {
        let cases = r#"["x", "", " 12 ", "1.5e3", "-3", "9e18", "8e18", "TRUE", "False", "ja", "\u00fc\n",
            0, 1, 7, -7, 9223372036854775807, 9223372036854775808, 18446744073709551615, -9223372036854775808,
            1.5, -2.7, 1e20, 1e300, 8.9e18, 0.0, -0.0, true, false, null, [], {}, [1, [2]], {"a": {"b": 1}}]"#;
        for case in serde_json::from_str::<Vec<Value>>(cases).unwrap() {
            let text = serde_json::json!({ "string": case, "int": case, "boolean": case }).to_string();
            let read: Read = serde_json::from_str(&text).unwrap();
            assert_eq!(read.string, super::as_string(&case), "{case}");
            assert_eq!(read.int, super::as_int(&case), "{case}");
            assert_eq!(read.boolean, super::as_bool(&case), "{case}");
        }
    }
}
