//! The sandbox's clock: system time plus an offset that tests can advance.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds as Meta writes them in webhook timestamps: a decimal string.
pub fn secs_string(ms: i64) -> String {
    (ms.div_euclid(1000)).to_string()
}
