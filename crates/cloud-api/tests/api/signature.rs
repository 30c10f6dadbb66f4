//! X-Hub-Signature-256 and the verification handshake.

use secrecy::SecretString;
use wabridge_cloud_api::{SignatureError, VerificationQuery, sign, verify_signature};

use crate::helpers::read;

const SECRET: &str = "1222e786b144d0e85b9f365372d93676";
const HEADER: &str = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

fn secret() -> SecretString {
    SecretString::from(SECRET)
}

#[test]
fn published_signature_verifies_over_the_raw_bytes() {
    let body = read("webhooks/pywa/signed_text_message_raw_body.json");
    assert_eq!(verify_signature(&secret(), Some(HEADER), &body), Ok(()));
    assert_eq!(sign(&secret(), &body), HEADER);
    // Meta sends lowercase; uppercase hex is the same digest.
    let upper = format!("sha256={}", HEADER["sha256=".len()..].to_uppercase());
    assert_eq!(verify_signature(&secret(), Some(&upper), &body), Ok(()));
}

#[test]
fn any_flipped_byte_fails() {
    let body = read("webhooks/pywa/signed_text_message_raw_body.json");
    for i in 0..body.len() {
        let mut changed = body.clone();
        changed[i] ^= 0x01;
        assert_eq!(
            verify_signature(&secret(), Some(HEADER), &changed),
            Err(SignatureError::Mismatch),
            "byte {i}"
        );
    }
    let mut longer = body.clone();
    longer.push(b'\n');
    assert_eq!(
        verify_signature(&secret(), Some(HEADER), &longer),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&secret(), Some(HEADER), &body[..body.len() - 1]),
        Err(SignatureError::Mismatch)
    );
    // Re-serialising (what a JSON extractor would do) breaks the signature.
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let reserialised = serde_json::to_vec(&v).unwrap();
    assert_ne!(reserialised, body);
    assert!(verify_signature(&secret(), Some(HEADER), &reserialised).is_err());
}

#[test]
fn wrong_secret_or_digest_fails() {
    let body = read("webhooks/pywa/signed_text_message_raw_body.json");
    let other = SecretString::from("1222e786b144d0e85b9f365372d93677");
    assert_eq!(
        verify_signature(&other, Some(HEADER), &body),
        Err(SignatureError::Mismatch)
    );
    for i in "sha256=".len()..HEADER.len() {
        let mut h = HEADER.as_bytes().to_vec();
        h[i] = if h[i] == b'0' { b'1' } else { b'0' };
        let h = String::from_utf8(h).unwrap();
        assert_eq!(
            verify_signature(&secret(), Some(&h), &body),
            Err(SignatureError::Mismatch),
            "{h}"
        );
    }
}

#[test]
fn malformed_headers_are_refused() {
    let body = b"{}";
    for h in [
        None,
        Some(""),
        Some("sha256="),
        Some("sha1=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12"),
        Some("54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"),
        Some("sha256=zz"),
        Some("sha256=abc"),
    ] {
        assert!(verify_signature(&secret(), h, body).is_err(), "{h:?}");
    }
    // A truncated digest is the right format but never matches.
    assert_eq!(
        verify_signature(&secret(), Some(&HEADER[..HEADER.len() - 2]), body),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn verification_handshake() {
    let token = SecretString::from("my-verify-token");
    let q = |mode: Option<&str>, t: Option<&str>, c: Option<&str>| VerificationQuery {
        mode: mode.map(Into::into),
        verify_token: t.map(Into::into),
        challenge: c.map(Into::into),
    };
    assert_eq!(
        q(
            Some("subscribe"),
            Some("my-verify-token"),
            Some("1158201444")
        )
        .challenge_response(&token),
        Some("1158201444")
    );
    assert_eq!(
        q(Some("subscribe"), Some("wrong"), Some("1")).challenge_response(&token),
        None
    );
    assert_eq!(
        q(Some("subscribe"), Some("my-verify-token-"), Some("1")).challenge_response(&token),
        None
    );
    assert_eq!(
        q(Some("unsubscribe"), Some("my-verify-token"), Some("1")).challenge_response(&token),
        None
    );
    assert_eq!(
        q(None, Some("my-verify-token"), Some("1")).challenge_response(&token),
        None
    );
    assert_eq!(
        q(Some("subscribe"), None, Some("1")).challenge_response(&token),
        None
    );
    assert_eq!(
        q(Some("subscribe"), Some("my-verify-token"), None).challenge_response(&token),
        None
    );

    // The query deserialises from Meta's dotted names.
    let parsed: VerificationQuery = serde_json::from_value(serde_json::json!({
        "hub.mode": "subscribe", "hub.verify_token": "my-verify-token", "hub.challenge": "42"
    }))
    .unwrap();
    assert_eq!(parsed.challenge_response(&token), Some("42"));
}
