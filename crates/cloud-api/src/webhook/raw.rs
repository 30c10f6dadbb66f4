//! A change's value exactly as received, built into a JSON tree only when someone asks for it.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// The `value` of a change as Meta sent it. Dereferences to a [`Value`].
///
/// The tolerant parse builds the tree anyway and keeps it; the fast parse (see `fast.rs`)
/// keeps only the body's text and where the change sits in it, and builds the tree on first
/// use — which the hot path (customer messages and statuses) never needs.
#[derive(Clone)]
pub struct RawJson(Source);

#[derive(Clone)]
enum Source {
    /// The tree, built when the body was parsed.
    Built(Value),
    /// `entry[entry].changes[change].value` of this body text, and its tree once built.
    Body { text: Arc<str>, entry: usize, change: usize, value: OnceLock<Value> },
}

impl RawJson {
    pub(crate) fn built(value: Value) -> RawJson {
        RawJson(Source::Built(value))
    }

    pub(crate) fn in_body(text: Arc<str>, entry: usize, change: usize) -> RawJson {
        RawJson(Source::Body { text, entry, change, value: OnceLock::new() })
    }

    /// The value as a JSON tree.
    pub fn value(&self) -> &Value {
        match &self.0 {
            Source::Built(value) => value,
            Source::Body { text, entry, change, value } => value.get_or_init(|| {
                serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|mut body| {
                        body.get_mut("entry")?
                            .get_mut(*entry)?
                            .get_mut("changes")?
                            .get_mut(*change)?
                            .get_mut("value")
                            .map(Value::take)
                    })
                    .unwrap_or(Value::Null)
            }),
        }
    }
}

impl Deref for RawJson {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for RawJson {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}
