//! `X-Hub-Signature-256` checks and the GET verification handshake.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header Meta signs webhook POSTs with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or it does not start with `sha256=`.
    #[error("signature header missing or not of the form sha256=<hex>")]
    Malformed,
    /// The hex digest does not match the body.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks `header` (`sha256=<hex>`, the `X-Hub-Signature-256` value) against the HMAC-SHA256 of
/// the raw body bytes under the app secret, in constant time.
pub fn verify_signature(
    app_secret: &SecretString,
    header: Option<&str>,
    raw_body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?.trim();
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    // Meta sends lowercase hex; decoding first makes the comparison case-insensitive.
    let claimed = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    let expected = hmac_sha256(app_secret.expose_secret().as_bytes(), raw_body);
    if claimed.len() == expected.len() && bool::from(claimed.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `sha256=<hex>` for `raw_body`, as Meta computes it (the sandbox signs with this).
pub fn sign(app_secret: &SecretString, raw_body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(app_secret.expose_secret().as_bytes(), raw_body))
    )
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The query of Meta's GET verification request (`hub.mode`, `hub.verify_token`,
/// `hub.challenge`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct VerificationQuery {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    /// Must equal our configured verify token.
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back as the response body on success.
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

impl VerificationQuery {
    /// The challenge to answer with HTTP 200 when mode and token are right, else `None`
    /// (answer 403).
    pub fn challenge_response(&self, verify_token: &SecretString) -> Option<&str> {
        let token = self.verify_token.as_deref()?;
        let expected = verify_token.expose_secret().as_bytes();
        let token_ok =
            token.len() == expected.len() && bool::from(token.as_bytes().ct_eq(expected));
        if self.mode.as_deref() == Some("subscribe") && token_ok {
            self.challenge.as_deref()
        } else {
            None
        }
    }
}
