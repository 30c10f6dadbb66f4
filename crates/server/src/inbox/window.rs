//! The 24-hour customer service window.
//!
//! Every message a customer sends opens (or re-opens) a window of 24 hours, counted from
//! Meta's timestamp of that message — not from when the webhook reached us, which may be much
//! later after retries. Inside it the business may write free-form; outside it only an
//! approved template may be sent. The server checks this itself before calling Meta, and
//! Meta's own refusal (131047) is explained the same way.

/// Length of the window.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Meta's error code for a free-form message outside the window.
pub const WINDOW_CLOSED_CODE: i64 = 131_047;

/// The window of one conversation at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerServiceWindow {
    /// Free-form messages allowed until `closes_at` (Unix ms).
    Open {
        /// When it closes.
        closes_at: i64,
    },
    /// Only templates; the customer last wrote at `last_customer_message_at`, if ever.
    Closed {
        /// Meta's timestamp of the customer's last message.
        last_customer_message_at: Option<i64>,
    },
}

impl CustomerServiceWindow {
    /// The window given the customer's last message time (Meta's) and now.
    pub fn at(last_customer_message_at: Option<i64>, now: i64) -> CustomerServiceWindow {
        match last_customer_message_at {
            Some(last) if last + WINDOW_MS > now => CustomerServiceWindow::Open { closes_at: last + WINDOW_MS },
            _ => CustomerServiceWindow::Closed { last_customer_message_at },
        }
    }

    /// Whether free-form messages are allowed.
    pub fn is_open(self) -> bool {
        matches!(self, CustomerServiceWindow::Open { .. })
    }

    /// Milliseconds left, zero when closed.
    pub fn remaining_ms(self, now: i64) -> i64 {
        match self {
            CustomerServiceWindow::Open { closes_at } => (closes_at - now).max(0),
            CustomerServiceWindow::Closed { .. } => 0,
        }
    }
}

/// "12 h 05 min" style rendering of a duration (the page's countdown updates it live).
pub fn format_remaining(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_24_hours_from_metas_timestamp() {
        let t = 1_764_000_000_000;
        assert_eq!(CustomerServiceWindow::at(Some(t), t), CustomerServiceWindow::Open { closes_at: t + WINDOW_MS });
        assert!(CustomerServiceWindow::at(Some(t), t + WINDOW_MS - 1).is_open());
        assert!(!CustomerServiceWindow::at(Some(t), t + WINDOW_MS).is_open());
        assert!(!CustomerServiceWindow::at(None, t).is_open());
        assert_eq!(CustomerServiceWindow::at(Some(t), t + 3_600_000).remaining_ms(t + 3_600_000), 23 * 3_600_000);
        assert_eq!(format_remaining(23 * 3_600_000 + 5 * 60_000 + 59_999), "23 h 05 min");
    }
}
