//! The Graph API client: one shared HTTP client, base URL and version from configuration.

pub mod message;
mod types;

pub use types::*;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::error::{ApiError, GraphError};
use message::{MarkRead, OutboundMessage, TypingIndicator};

/// Meta's Graph API host.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
/// The Graph API version wabridge is written against.
pub const DEFAULT_GRAPH_VERSION: &str = "v26.0";

// Guards `all_*` helpers against a server that never stops paging.
const MAX_PAGES: usize = 100;

/// Where and how the client talks to the Graph API.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// `META_GRAPH_URL`: Meta's host, or the sandbox's (may carry a path prefix).
    pub base_url: String,
    /// `META_GRAPH_VERSION`, e.g. `v26.0`.
    pub version: String,
    /// Whole-request timeout for API calls.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for media up- and downloads.
    pub media_timeout: Duration,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_GRAPH_URL.to_owned(),
            version: DEFAULT_GRAPH_VERSION.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(120),
        }
    }
}

impl GraphConfig {
    /// A configuration for `base_url` and `version` with default timeouts.
    pub fn new(base_url: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            version: version.into(),
            ..Self::default()
        }
    }
}

/// A Graph API client; cheap to clone, holding one connection pool.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    config: Arc<GraphConfig>,
    base_url: Url,
}

/// Builds the shared `reqwest::Client` with rustls on the ring provider and explicit timeouts.
pub fn build_http_client(config: &GraphConfig) -> Result<reqwest::Client, ApiError> {
    // reqwest's `rustls-no-provider` needs a process default; ring keeps aws-lc-rs out of the
    // build. Another crate may already have installed one, which is fine.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("wabridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::InvalidRequest(format!("HTTP client: {}", e.without_url())))
}

impl GraphClient {
    /// A client with its own HTTP client.
    pub fn new(config: GraphConfig) -> Result<Self, ApiError> {
        let http = build_http_client(&config)?;
        Self::with_http_client(config, http)
    }

    /// A client sharing an existing HTTP client; fails when the base URL is not an http(s) URL.
    pub fn with_http_client(config: GraphConfig, http: reqwest::Client) -> Result<Self, ApiError> {
        let base_url = Url::parse(&config.base_url)
            .map_err(|e| ApiError::InvalidRequest(format!("graph base URL: {e}")))?;
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ApiError::InvalidRequest(
                "graph base URL must be http(s)".into(),
            ));
        }
        Ok(Self {
            http,
            config: Arc::new(config),
            base_url,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// `<base>/<version>/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        let mut url = self.base_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ApiError::InvalidRequest("graph base URL cannot be a base".into()))?;
            path.pop_if_empty().push(&self.config.version);
            for s in segments {
                if s.is_empty() || *s == "." || *s == ".." {
                    return Err(ApiError::InvalidRequest(format!(
                        "invalid path segment {s:?}"
                    )));
                }
                path.push(s);
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: Url, token: &SecretString) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(token.expose_secret())
    }

    /// Sends `req` and reads the body: Meta's error body becomes [`ApiError::Graph`] (also when
    /// it arrives with status 200), a success body is decoded as `T`.
    async fn execute<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        req: RequestBuilder,
    ) -> Result<T, ApiError> {
        let (status, body) = self.send(endpoint, req).await?;
        decode(status, &body)
    }

    async fn send(
        &self,
        endpoint: &'static str,
        req: RequestBuilder,
    ) -> Result<(u16, Bytes), ApiError> {
        // Only the endpoint name is logged: URLs may carry secrets (code exchange, debug_token).
        let response = req.send().await.map_err(ApiError::from_reqwest)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            // The answer started arriving, so Meta has seen the request.
            let e = ApiError::from_reqwest(e);
            match e {
                ApiError::NotSent(reason) => ApiError::OutcomeUnknown {
                    timed_out: false,
                    reason,
                },
                other => other,
            }
        })?;
        tracing::debug!(endpoint, status, "graph api call");
        if !(200..300).contains(&status) {
            return Err(GraphError::from_body(status, &body).into());
        }
        Ok((status, body))
    }

    async fn success(&self, endpoint: &'static str, req: RequestBuilder) -> Result<(), ApiError> {
        let body: SuccessBody = self.execute(endpoint, req).await?;
        match body.success {
            Some(false) => Err(ApiError::UnexpectedResponse {
                status: 200,
                reason: "Meta answered success: false".into(),
            }),
            _ => Ok(()),
        }
    }

    // ---- Embedded Signup and tokens ----

    /// Exchanges the Embedded Signup code for a business token
    /// (`GET /oauth/access_token?client_id&client_secret&code`). The URL carries the app secret
    /// and is never logged.
    pub async fn exchange_code(
        &self,
        app: &AppCredentials,
        code: &SecretString,
    ) -> Result<AccessToken, ApiError> {
        let url = self.url(&["oauth", "access_token"])?;
        let req = self.http.get(url).query(&[
            ("client_id", app.app_id.as_str()),
            ("client_secret", app.app_secret.expose_secret()),
            ("code", code.expose_secret()),
        ]);
        self.execute("oauth/access_token", req).await
    }

    /// Inspects `input_token` with the app token (`GET /debug_token`): validity, expiry and the
    /// granular scopes naming the WABAs it may manage.
    pub async fn debug_token(
        &self,
        app: &AppCredentials,
        input_token: &SecretString,
    ) -> Result<TokenInfo, ApiError> {
        let url = self.url(&["debug_token"])?;
        let app_token =
            SecretString::from(format!("{}|{}", app.app_id, app.app_secret.expose_secret()));
        let req = self
            .request(Method::GET, url, &app_token)
            .query(&[("input_token", input_token.expose_secret())]);
        let wrapped: DataWrapper<TokenInfo> = self.execute("debug_token", req).await?;
        Ok(wrapped.data)
    }

    // ---- WABA and phone numbers ----

    /// Reads a WABA's fields ([`WABA_FIELDS`]).
    pub async fn waba(&self, token: &SecretString, waba_id: &str) -> Result<Waba, ApiError> {
        let url = self.url(&[waba_id])?;
        let req = self
            .request(Method::GET, url, token)
            .query(&[("fields", WABA_FIELDS)]);
        self.execute("waba", req).await
    }

    /// One page of a WABA's phone numbers; pass the previous page's `after` cursor to continue.
    pub async fn phone_numbers(
        &self,
        token: &SecretString,
        waba_id: &str,
        after: Option<&str>,
    ) -> Result<Page<PhoneNumber>, ApiError> {
        let url = self.url(&[waba_id, "phone_numbers"])?;
        let mut req = self
            .request(Method::GET, url, token)
            .query(&[("fields", PHONE_NUMBER_FIELDS), ("limit", "100")]);
        if let Some(after) = after {
            req = req.query(&[("after", after)]);
        }
        self.page("phone_numbers", req).await
    }

    /// All of a WABA's phone numbers, following the paging cursors.
    pub async fn all_phone_numbers(
        &self,
        token: &SecretString,
        waba_id: &str,
    ) -> Result<Vec<PhoneNumber>, ApiError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.phone_numbers(token, waba_id, after.as_deref()).await?;
            all.extend(page.data);
            match (page.next.is_some(), page.after) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Reads a phone number's fields ([`PHONE_NUMBER_FIELDS`]).
    pub async fn phone_number(
        &self,
        token: &SecretString,
        phone_number_id: &str,
    ) -> Result<PhoneNumber, ApiError> {
        let url = self.url(&[phone_number_id])?;
        let req = self
            .request(Method::GET, url, token)
            .query(&[("fields", PHONE_NUMBER_FIELDS)]);
        self.execute("phone_number", req).await
    }

    /// Registers the number with the Cloud API; the PIN becomes its two-step PIN (or must match
    /// the existing one, else 133005).
    pub async fn register(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        pin: &Pin,
        data_localization_region: Option<&str>,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id, "register"])?;
        let mut body = serde_json::json!({ "messaging_product": "whatsapp", "pin": pin.expose() });
        if let (Some(region), Some(map)) = (data_localization_region, body.as_object_mut()) {
            map.insert("data_localization_region".into(), region.into());
        }
        let req = self.request(Method::POST, url, token).json(&body);
        self.success("register", req).await
    }

    /// Asks Meta to send a verification code by SMS or voice call.
    pub async fn request_code(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        method: CodeMethod,
        language: &str,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id, "request_code"])?;
        let body = serde_json::json!({ "code_method": method, "language": language });
        let req = self.request(Method::POST, url, token).json(&body);
        self.success("request_code", req).await
    }

    /// Submits the verification code the business received.
    pub async fn verify_code(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        code: &str,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id, "verify_code"])?;
        let req = self
            .request(Method::POST, url, token)
            .json(&serde_json::json!({ "code": code }));
        self.success("verify_code", req).await
    }

    /// Sets or changes the number's two-step verification PIN.
    pub async fn set_two_step_pin(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        pin: &Pin,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id])?;
        let req = self
            .request(Method::POST, url, token)
            .json(&serde_json::json!({ "pin": pin.expose() }));
        self.success("two_step_pin", req).await
    }

    /// Deregisters the number from the Cloud API (not for coexistence numbers).
    pub async fn deregister(
        &self,
        token: &SecretString,
        phone_number_id: &str,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id, "deregister"])?;
        let req = self.request(Method::POST, url, token);
        self.success("deregister", req).await
    }

    // ---- Webhook subscription ----

    /// Subscribes our app to the WABA's webhooks.
    pub async fn subscribe_app(&self, token: &SecretString, waba_id: &str) -> Result<(), ApiError> {
        let url = self.url(&[waba_id, "subscribed_apps"])?;
        let req = self.request(Method::POST, url, token);
        self.success("subscribed_apps", req).await
    }

    /// Lists the apps subscribed to the WABA.
    pub async fn subscribed_apps(
        &self,
        token: &SecretString,
        waba_id: &str,
    ) -> Result<Vec<SubscribedApp>, ApiError> {
        let url = self.url(&[waba_id, "subscribed_apps"])?;
        let req = self.request(Method::GET, url, token);
        let page: Page<SubscribedApp> = self.page("subscribed_apps", req).await?;
        Ok(page.data.into_iter().map(SubscribedApp::fill).collect())
    }

    /// Unsubscribes our app from the WABA.
    pub async fn unsubscribe_app(
        &self,
        token: &SecretString,
        waba_id: &str,
    ) -> Result<(), ApiError> {
        let url = self.url(&[waba_id, "subscribed_apps"])?;
        let req = self.request(Method::DELETE, url, token);
        self.success("subscribed_apps", req).await
    }

    // ---- Templates ----

    /// Submits a template for review.
    pub async fn create_template(
        &self,
        token: &SecretString,
        waba_id: &str,
        template: &NewTemplate,
    ) -> Result<CreatedTemplate, ApiError> {
        let url = self.url(&[waba_id, "message_templates"])?;
        let req = self.request(Method::POST, url, token).json(template);
        self.execute("message_templates", req).await
    }

    /// One page of the WABA's templates, optionally only those named `name`.
    pub async fn templates(
        &self,
        token: &SecretString,
        waba_id: &str,
        name: Option<&str>,
        after: Option<&str>,
    ) -> Result<Page<Template>, ApiError> {
        let url = self.url(&[waba_id, "message_templates"])?;
        let mut req = self
            .request(Method::GET, url, token)
            .query(&[("limit", "100")]);
        if let Some(name) = name {
            req = req.query(&[("name", name)]);
        }
        if let Some(after) = after {
            req = req.query(&[("after", after)]);
        }
        self.page("message_templates", req).await
    }

    /// All of the WABA's templates: follows `paging.next` when it points at our Graph host, the
    /// `after` cursor otherwise.
    pub async fn all_templates(
        &self,
        token: &SecretString,
        waba_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<Template>, ApiError> {
        let mut all = Vec::new();
        let mut page = self.templates(token, waba_id, name, None).await?;
        for _ in 0..MAX_PAGES {
            let next = page.next.clone();
            let after = page.after.clone();
            all.append(&mut page.data);
            let Some(next) = next else { break };
            page = match Url::parse(&next) {
                Ok(url) if url.origin() == self.base_url.origin() => {
                    let req = self.request(Method::GET, url, token);
                    self.page("message_templates", req).await?
                }
                _ => match after {
                    Some(cursor) => self.templates(token, waba_id, name, Some(&cursor)).await?,
                    None => break,
                },
            };
        }
        Ok(all)
    }

    /// Reads one template by id.
    pub async fn template(
        &self,
        token: &SecretString,
        template_id: &str,
    ) -> Result<Template, ApiError> {
        let url = self.url(&[template_id])?;
        let req = self.request(Method::GET, url, token);
        self.execute("template", req).await
    }

    /// Deletes the template `name` (all languages), or only the one with id `hsm_id`.
    pub async fn delete_template(
        &self,
        token: &SecretString,
        waba_id: &str,
        name: &str,
        hsm_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let url = self.url(&[waba_id, "message_templates"])?;
        let mut req = self
            .request(Method::DELETE, url, token)
            .query(&[("name", name)]);
        if let Some(id) = hsm_id {
            req = req.query(&[("hsm_id", id)]);
        }
        self.success("message_templates", req).await
    }

    // ---- Messages ----

    /// Sends a message. A timeout yields [`ApiError::OutcomeUnknown`]: Meta may have sent it.
    /// A success without a message id is [`ApiError::UnexpectedResponse`] (outcome unknown too).
    pub async fn send_message(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<SendResponse, ApiError> {
        let url = self.url(&[phone_number_id, "messages"])?;
        let req = self.request(Method::POST, url, token).json(message);
        let response: SendResponse = self.execute("messages", req).await?;
        if response.message_id().is_none() {
            // Without a wamid the statuses cannot be matched; the outbox must reconcile.
            return Err(ApiError::UnexpectedResponse {
                status: 200,
                reason: "send answer has no message id".into(),
            });
        }
        Ok(response)
    }

    /// Marks the customer's message (and earlier ones) read, optionally showing "typing…".
    pub async fn mark_read(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        wamid: &str,
        typing_indicator: bool,
    ) -> Result<(), ApiError> {
        let url = self.url(&[phone_number_id, "messages"])?;
        let body = MarkRead {
            messaging_product: "whatsapp".into(),
            status: "read".into(),
            message_id: wamid.into(),
            typing_indicator: typing_indicator.then(|| TypingIndicator {
                kind: "text".into(),
            }),
        };
        let req = self.request(Method::POST, url, token).json(&body);
        self.success("messages", req).await
    }

    // ---- Media ----

    /// Uploads a file (multipart `file`, `type`, `messaging_product`) and returns its media id.
    pub async fn upload_media(
        &self,
        token: &SecretString,
        phone_number_id: &str,
        data: Bytes,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, ApiError> {
        let url = self.url(&[phone_number_id, "media"])?;
        let (content_type, body) = multipart_body(&data, mime_type, filename)?;
        let req = self
            .request(Method::POST, url, token)
            .timeout(self.config.media_timeout)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let id: IdBody = self.execute("media", req).await?;
        id.id
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::UnexpectedResponse {
                status: 200,
                reason: "media upload answer has no id".into(),
            })
    }

    /// Looks up a media id: its short-lived download URL, type, hash and size.
    pub async fn media_info(
        &self,
        token: &SecretString,
        media_id: &str,
    ) -> Result<MediaInfo, ApiError> {
        let url = self.url(&[media_id])?;
        let req = self.request(Method::GET, url, token);
        self.execute("media_info", req).await
    }

    /// Downloads media from a URL returned by [`Self::media_info`] (or a webhook), with the
    /// token. The token is only sent over https or to the configured Graph host.
    pub async fn download_media(&self, token: &SecretString, url: &str) -> Result<Bytes, ApiError> {
        let url =
            Url::parse(url).map_err(|e| ApiError::InvalidRequest(format!("media URL: {e}")))?;
        if url.scheme() != "https" && url.origin() != self.base_url.origin() {
            return Err(ApiError::InvalidRequest(
                "refusing to send the token to a non-https media URL".into(),
            ));
        }
        let req = self
            .request(Method::GET, url, token)
            .timeout(self.config.media_timeout);
        let (_, body) = self.send("media_download", req).await?;
        Ok(body)
    }

    /// Deletes an uploaded media file.
    pub async fn delete_media(&self, token: &SecretString, media_id: &str) -> Result<(), ApiError> {
        let url = self.url(&[media_id])?;
        let req = self.request(Method::DELETE, url, token);
        self.success("media_delete", req).await
    }

    async fn page<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        req: RequestBuilder,
    ) -> Result<Page<T>, ApiError> {
        let (status, body) = self.send(endpoint, req).await?;
        let raw: RawPage = decode(status, &body)?;
        raw.into_page()
            .map_err(|reason| ApiError::UnexpectedResponse { status, reason })
    }
}

fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::UnexpectedResponse {
        status,
        reason: format!("not JSON: {e}"),
    })?;
    // Meta (and peers' mocks) sometimes send an error object with a 2xx status.
    if let Some(error) = crate::json::object(&value, "error")
        && value.get("data").is_none()
        && value.get("success").is_none()
    {
        return Err(GraphError::from_object(status, error).into());
    }
    serde_json::from_value(value).map_err(|e| ApiError::UnexpectedResponse {
        status,
        reason: e.to_string(),
    })
}

fn multipart_body(
    data: &[u8],
    mime_type: &str,
    filename: &str,
) -> Result<(String, Vec<u8>), ApiError> {
    let bad = |c: char| c == '"' || c == '\r' || c == '\n';
    if filename.contains(bad) || mime_type.contains(bad) {
        return Err(ApiError::InvalidRequest(
            "file name or MIME type contains quotes or line breaks".into(),
        ));
    }
    // A boundary derived from the content's length and time is enough: it only has to be absent
    // from the body, which we check.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let boundary = format!("wabridge-{nanos:x}-{:x}", data.len());
    if data
        .windows(boundary.len())
        .any(|w| w == boundary.as_bytes())
    {
        return Err(ApiError::InvalidRequest(
            "multipart boundary collides with the file".into(),
        ));
    }
    let mut body = Vec::with_capacity(data.len() + 512);
    let field = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field(&mut body, "messaging_product", "whatsapp");
    field(&mut body, "type", mime_type);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {mime_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}
