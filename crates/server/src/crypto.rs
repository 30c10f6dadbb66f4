//! Secrets at rest: XChaCha20-Poly1305 with keys from configuration.
//!
//! A ciphertext is `version (1) | key id (4) | nonce (24) | sealed`. The key id is the first
//! four bytes of the key's SHA-256, so after a rotation (new key first, old keys after it) old
//! rows still decrypt and are re-encrypted under the new key when next written.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;

/// The keys that protect secrets at rest; the first encrypts, every one decrypts.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(u32, std::sync::Arc<SecretBox<[u8; 32]>>)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

/// Why a secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configured key text is not base64 of 32 bytes.
    #[error("each key must be base64 of exactly 32 bytes")]
    BadKey,
    /// No configured key has the id the ciphertext names (a key was removed too early).
    #[error("the key that sealed this secret is not configured")]
    UnknownKey,
    /// The ciphertext was altered or is not ours.
    #[error("the secret cannot be opened")]
    Corrupt,
}

impl Keyring {
    /// Parses comma-separated base64 keys.
    pub fn parse(text: &str) -> Result<Keyring, CryptoError> {
        let mut keys = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bytes = base64::engine::general_purpose::STANDARD.decode(part).map_err(|_| CryptoError::BadKey)?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
            keys.push((key_id(&key), std::sync::Arc::new(SecretBox::new(Box::new(key)))));
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey);
        }
        Ok(Keyring { keys })
    }

    /// A fresh random key, base64-encoded (for the demo and for operators).
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    /// Encrypts `plaintext`; `context` (e.g. `"waba-token:42"`) is authenticated, so a sealed
    /// value copied to another row does not open there.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let (id, key) = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(key.expose_secret().into());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(29 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by [`Keyring::seal`] with the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 29 + 16 || sealed[0] != VERSION {
            return Err(CryptoError::Corrupt);
        }
        let id = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let (_, key) = self.keys.iter().find(|(k, _)| *k == id).ok_or(CryptoError::UnknownKey)?;
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&sealed[5..29]);
        XChaCha20Poly1305::new(key.expose_secret().into())
            .decrypt(&XNonce::from(nonce), Payload { msg: &sealed[29..], aad: context.as_bytes() })
            .map_err(|_| CryptoError::Corrupt)
    }

    /// Seals a secret string.
    pub fn seal_str(&self, secret: &SecretString, context: &str) -> Vec<u8> {
        self.seal(secret.expose_secret().as_bytes(), context)
    }

    /// Opens a sealed secret string.
    pub fn open_str(&self, sealed: &[u8], context: &str) -> Result<SecretString, CryptoError> {
        let bytes = self.open(sealed, context)?;
        String::from_utf8(bytes).map(SecretString::from).map_err(|_| CryptoError::Corrupt)
    }

    /// Whether `sealed` was sealed under an older key and should be re-sealed.
    pub fn is_stale(&self, sealed: &[u8]) -> bool {
        sealed.len() < 5 || u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]) != self.keys[0].0
    }
}

fn key_id(key: &[u8; 32]) -> u32 {
    let digest = Sha256::digest(key);
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A random token as hex, for sessions and CSRF.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a token as hex: what the database keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_rotation() {
        let old = Keyring::generate_key();
        let new = Keyring::generate_key();
        let before = Keyring::parse(&old).unwrap();
        let sealed = before.seal(b"EAAG-token", "waba-token:1");
        assert_ne!(&sealed[29..], b"EAAG-token");
        assert_eq!(before.open(&sealed, "waba-token:1").unwrap(), b"EAAG-token");
        assert!(matches!(before.open(&sealed, "waba-token:2"), Err(CryptoError::Corrupt)));
        let rotated = Keyring::parse(&format!("{new},{old}")).unwrap();
        assert_eq!(rotated.open(&sealed, "waba-token:1").unwrap(), b"EAAG-token");
        assert!(rotated.is_stale(&sealed));
        let resealed = rotated.seal(b"EAAG-token", "waba-token:1");
        assert!(!rotated.is_stale(&resealed));
        let only_new = Keyring::parse(&new).unwrap();
        assert!(matches!(only_new.open(&sealed, "waba-token:1"), Err(CryptoError::UnknownKey)));
        let mut tampered = resealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(rotated.open(&tampered, "waba-token:1"), Err(CryptoError::Corrupt)));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Keyring::parse("").is_err());
        assert!(Keyring::parse("not base64!").is_err());
        assert!(Keyring::parse("AAAA").is_err());
    }
}
