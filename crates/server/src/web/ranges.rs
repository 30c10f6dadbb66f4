//! Byte ranges (RFC 9110 §14): a player asks for part of a voice note or a video to seek in it.
//! One range is served as `206 Partial Content`; a range past the end as `416`; a request
//! with several ranges, a malformed one or an `If-Range` (we give no validators to match) gets
//! the whole body, as the RFC allows.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;

/// What to answer a request with `headers` for `body`: its status, the headers that go with a
/// range (always `Accept-Ranges`) and the bytes.
pub fn answer(headers: &HeaderMap, body: Bytes) -> (StatusCode, HeaderMap, Bytes) {
    let mut out = HeaderMap::new();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let len = body.len() as u64;
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).filter(|_| !headers.contains_key(header::IF_RANGE));
    match asked.and_then(parse) {
        None => (StatusCode::OK, out, body),
        Some(range) => match range.within(len) {
            Some((first, last)) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                    out.insert(header::CONTENT_RANGE, v);
                }
                // Both ends lie within the body, which is in memory.
                (StatusCode::PARTIAL_CONTENT, out, body.slice(first as usize..=last as usize))
            }
            None => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    out.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::RANGE_NOT_SATISFIABLE, out, Bytes::new())
            }
        },
    }
}

/// One asked range.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// `first-` or `first-last`.
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Last(u64),
}

impl Range {
    /// The first and last byte it takes of a body of `len` bytes, if any.
    fn within(&self, len: u64) -> Option<(u64, u64)> {
        match *self {
            Range::From(first, _) if first >= len => None,
            Range::From(first, last) => Some((first, last.map_or(len - 1, |l| l.min(len - 1)))),
            Range::Last(0) => None,
            Range::Last(_) if len == 0 => None,
            Range::Last(n) => Some((len.saturating_sub(n), len - 1)),
        }
    }
}

/// `bytes=…` with exactly one well-formed range.
fn parse(value: &str) -> Option<Range> {
    let (unit, spec) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |s: &str| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (first.trim(), last.trim()) {
        ("", n) => number(n).map(Range::Last),
        (f, "") => number(f).map(|f| Range::From(f, None)),
        (f, l) => match (number(f), number(l)) {
            (Some(f), Some(l)) if f <= l => Some(Range::From(f, Some(l))),
            _ => None,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ask(range: Option<&str>, if_range: bool) -> (StatusCode, Option<String>, Bytes) {
        let mut headers = HeaderMap::new();
        if let Some(r) = range {
            headers.insert(header::RANGE, HeaderValue::from_str(r).unwrap());
        }
        if if_range {
            headers.insert(header::IF_RANGE, HeaderValue::from_static("\"x\""));
        }
        let (status, out, body) = answer(&headers, Bytes::from_static(b"0123456789"));
        assert_eq!(out.get(header::ACCEPT_RANGES).unwrap(), "bytes");
        (status, out.get(header::CONTENT_RANGE).map(|v| v.to_str().unwrap().to_owned()), body)
    }

    #[test]
    fn one_range_is_served_in_part() {
        assert_eq!(ask(Some("bytes=2-4"), false), (StatusCode::PARTIAL_CONTENT, Some("bytes 2-4/10".into()), Bytes::from_static(b"234")));
        assert_eq!(ask(Some("bytes=7-"), false), (StatusCode::PARTIAL_CONTENT, Some("bytes 7-9/10".into()), Bytes::from_static(b"789")));
        assert_eq!(ask(Some("bytes=-3"), false), (StatusCode::PARTIAL_CONTENT, Some("bytes 7-9/10".into()), Bytes::from_static(b"789")));
        // Past the end is cut at the end; a suffix longer than the body is all of it.
        assert_eq!(ask(Some("bytes=8-100"), false), (StatusCode::PARTIAL_CONTENT, Some("bytes 8-9/10".into()), Bytes::from_static(b"89")));
        assert_eq!(ask(Some("bytes=-50"), false).2.len(), 10);
        assert_eq!(ask(Some(" Bytes = 0-0"), false), (StatusCode::PARTIAL_CONTENT, Some("bytes 0-0/10".into()), Bytes::from_static(b"0")));
    }

    #[test]
    fn a_range_past_the_end_is_not_satisfiable() {
        for r in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
            assert_eq!(ask(Some(r), false), (StatusCode::RANGE_NOT_SATISFIABLE, Some("bytes */10".into()), Bytes::new()), "{r}");
        }
    }

    #[test]
    fn anything_else_gets_the_whole_body() {
        for r in [None, Some("bytes=0-1,4-5"), Some("bytes=5-2"), Some("bytes=a-b"), Some("items=0-1"), Some("bytes=-"), Some("bytes=+1-2"), Some("bytes=1")] {
            assert_eq!(ask(r, false), (StatusCode::OK, None, Bytes::from_static(b"0123456789")), "{r:?}");
        }
        assert_eq!(ask(Some("bytes=0-1"), true).0, StatusCode::OK, "If-Range with a validator we never gave");
    }
}
