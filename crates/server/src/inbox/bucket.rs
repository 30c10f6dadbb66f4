//! An S3-compatible bucket for files (`WABRIDGE_MEDIA_BUCKET`): objects written with `PUT` and
//! read with `GET`, each request signed with AWS Signature Version 4 (header-based, the
//! payload's SHA-256 signed too). Amazon S3 and the S3-compatible stores (MinIO, Ceph, the
//! clouds' object storage) take the same requests.

use std::time::Duration;

use hmac::{KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use url::Url;

/// A bucket: where its objects are and how to sign for them.
#[derive(Clone)]
pub struct Bucket {
    /// The bucket's URL; an object's is this plus `/<key>` (path-style
    /// `https://s3.eu-central-1.amazonaws.com/my-bucket` or virtual-hosted
    /// `https://my-bucket.s3.eu-central-1.amazonaws.com`).
    base: Url,
    region: String,
    access_key: String,
    secret_key: SecretString,
    http: reqwest::Client,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("base", &self.base.as_str()).field("region", &self.region).finish_non_exhaustive()
    }
}

/// Why a bucket request failed.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The bucket's URL or an object's key does not make a URL.
    #[error("bucket URL: {0}")]
    Url(String),
    /// No answer (connection, timeout).
    #[error("bucket unreachable: {0}")]
    Transport(String),
    /// The store refused (the status and the start of its answer).
    #[error("bucket answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The start of the answer (S3's XML error).
        body: String,
    },
}

impl Bucket {
    /// A bucket at `url` in `region`, with an access key and its secret.
    pub fn new(url: &str, region: &str, access_key: &str, secret_key: SecretString) -> Result<Bucket, BucketError> {
        let base = Url::parse(url.trim_end_matches('/')).map_err(|e| BucketError::Url(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(BucketError::Url("must be an http(s) URL".to_owned()));
        }
        let mut config = wabridge_cloud_api::GraphConfig::new(base.as_str(), "v0.0");
        config.timeout = Duration::from_secs(120);
        let http = wabridge_cloud_api::client::build_http_client(&config).map_err(|e| BucketError::Url(e.to_string()))?;
        Ok(Bucket { base, region: region.to_owned(), access_key: access_key.to_owned(), secret_key, http })
    }

    /// Writes an object.
    pub async fn put(&self, key: &str, bytes: bytes::Bytes) -> Result<(), BucketError> {
        let hash = hex::encode(Sha256::digest(&bytes));
        let request = self.signed(reqwest::Method::PUT, key, &hash)?.body(bytes);
        self.send(request).await.map(drop)
    }

    /// Reads an object.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BucketError> {
        let request = self.signed(reqwest::Method::GET, key, EMPTY_SHA256)?;
        self.send(request).await
    }

    /// Removes an object (one that is not there is removed already).
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        let request = self.signed(reqwest::Method::DELETE, key, EMPTY_SHA256)?;
        match self.send(request).await {
            Err(BucketError::Refused { status: 404, .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    fn signed(&self, method: reqwest::Method, key: &str, payload_hash: &str) -> Result<reqwest::RequestBuilder, BucketError> {
        let url = Url::parse(&format!("{}/{key}", self.base.as_str().trim_end_matches('/'))).map_err(|e| BucketError::Url(e.to_string()))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let headers = [("host", host.as_str()), ("x-amz-content-sha256", payload_hash), ("x-amz-date", amz_date.as_str())];
        let authorization = authorization(&self.access_key, &self.secret_key, &self.region, method.as_str(), url.path(), &headers, payload_hash, &amz_date);
        Ok(self
            .http
            .request(method, url)
            .header("x-amz-content-sha256", payload_hash)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, BucketError> {
        let response = request.send().await.map_err(|e| BucketError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| BucketError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(BucketError::Refused { status: status.as_u16(), body: String::from_utf8_lossy(&body).chars().take(300).collect() });
        }
        Ok(body.to_vec())
    }
}

/// SHA-256 of nothing: the payload hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The `Authorization` header of a request (AWS Signature Version 4, no query string):
/// `headers` are the signed ones, lower-case names sorted, values trimmed.
#[allow(clippy::too_many_arguments)]
fn authorization(access_key: &str, secret_key: &SecretString, region: &str, method: &str, path: &str, headers: &[(&str, &str)], payload_hash: &str, amz_date: &str) -> String {
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
    let signed_headers = headers.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(";");
    let canonical_request = format!("{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let day = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{day}/{region}/s3/aws4_request");
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    let mut key = hmac_sha256(format!("AWS4{}", secret_key.expose_secret()).as_bytes(), day.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_headers},Signature={signature}")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon's worked example "GET Object" (S3 API reference, "Examples: Signature
    /// Calculations in AWS Signature Version 4"): the first ten bytes of `test.txt`.
    #[test]
    fn signs_like_amazons_worked_example() {
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let headers = [("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY_SHA256), ("x-amz-date", "20130524T000000Z")];
        let header = authorization("AKIAIOSFODNN7EXAMPLE", &secret, "us-east-1", "GET", "/test.txt", &headers, EMPTY_SHA256, "20130524T000000Z");
        assert_eq!(
            header,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_empty_hash_is_sha256_of_nothing() {
        assert_eq!(hex::encode(Sha256::digest(b"")), EMPTY_SHA256);
    }
}
