//! Points in time on pages: in the reader's own time zone and words.
//!
//! The server does not know where its reader is (a salon in Berlin, support elsewhere), so a
//! page carries the instant (`<time datetime>`) and says it in UTC, labelled as such; the
//! page's script (`static/app.js`) rewrites it in the browser's time zone and the page's
//! language. Without the script the labelled UTC text stands.

use std::fmt;

/// An instant (Unix ms) as a page shows it; write it with `|safe` (its text is only digits
/// and the fixed markup around them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When(pub i64);

impl When {
    /// The instant as `YYYY-MM-DD HH:MM UTC` (for mails, alerts and other plain text).
    pub fn utc_text(self) -> String {
        self.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
    }

    /// The instant in RFC 3339 (for `<time datetime>`).
    pub fn rfc3339(self) -> String {
        self.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
    }

    fn format(self, description: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000)).ok().and_then(|t| t.format(description).ok()).unwrap_or_default()
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r#"<time class="local" datetime="{}">{}</time>"#, self.rfc3339(), self.utc_text())
    }
}

#[cfg(test)]
mod tests {
    use super::When;

    #[test]
    fn an_instant_is_marked_up_with_its_utc_text() {
        let w = When(1_764_000_000_123);
        assert_eq!(w.utc_text(), "2025-11-24 16:00 UTC");
        assert_eq!(w.to_string(), r#"<time class="local" datetime="2025-11-24T16:00:00Z">2025-11-24 16:00 UTC</time>"#);
        // Before 1970 (never stored, but not a panic either).
        assert_eq!(When(-1).utc_text(), "1969-12-31 23:59 UTC");
    }
}
