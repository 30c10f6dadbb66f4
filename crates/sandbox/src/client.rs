//! A Rust client for the control API, for the server's tests and the demo.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Error;
use crate::control::api::*;

/// Calls the control API of one sandbox (`{base}/_sandbox`).
#[derive(Debug, Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
}

impl ControlClient {
    /// A client for the control API at `control_url` (e.g. `http://127.0.0.1:PORT/_sandbox`).
    pub fn new(control_url: impl Into<String>) -> ControlClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ControlClient { http, base: control_url.into().trim_end_matches('/').to_string() }
    }

    async fn call<T: DeserializeOwned>(&self, method: reqwest::Method, path: &str, body: Option<&(impl Serialize + ?Sized)>) -> Result<T, Error> {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Error::Control(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| Error::Control(e.to_string()))?;
        if !status.is_success() {
            return Err(Error::Control(format!("{path}: {status} {}", String::from_utf8_lossy(&bytes))));
        }
        let bytes = if bytes.is_empty() { bytes::Bytes::from_static(b"null") } else { bytes };
        serde_json::from_slice(&bytes).map_err(|e| Error::Control(format!("{path}: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(reqwest::Method::GET, path, None::<&Value>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &(impl Serialize + ?Sized)) -> Result<T, Error> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn post_unit(&self, path: &str, body: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        self.post::<Value>(path, body).await.map(|_| ())
    }

    /// Creates a connected tenant (business, WABA, number, token) without Embedded Signup.
    pub async fn create_tenant(&self, req: &TenantRequest) -> Result<TenantFixture, Error> {
        self.post("/tenants", req).await
    }

    /// Makes a customer write to a business number.
    pub async fn customer_writes(&self, msg: &CustomerMessage) -> Result<InboundReceipt, Error> {
        self.post("/customers/messages", msg).await
    }

    /// A customer writes a text, now (`at: None`) or at a past unix time.
    pub async fn customer_text(&self, phone_number_id: &str, from: &str, body: &str, at: Option<i64>) -> Result<InboundReceipt, Error> {
        self.customer_writes(&CustomerMessage {
            phone_number_id: phone_number_id.into(),
            from: from.into(),
            at,
            r#type: "text".into(),
            content: Some(json!({"body": body})),
            ..CustomerMessage::default()
        })
        .await
    }

    /// Changes a customer: name, username, hidden phone, reachable.
    pub async fn update_customer(&self, wa_id: &str, patch: &Value) -> Result<Value, Error> {
        self.post(&format!("/customers/{wa_id}"), patch).await
    }

    /// The messages the business sent, optionally for one number.
    pub async fn sent_messages(&self, phone_number_id: Option<&str>) -> Result<Vec<SentMessage>, Error> {
        match phone_number_id {
            Some(id) => self.get(&format!("/messages?phone_number_id={id}")).await,
            None => self.get("/messages").await,
        }
    }

    /// The messages customers sent.
    pub async fn inbound(&self) -> Result<Vec<Value>, Error> {
        self.get("/inbound").await
    }

    /// Makes the customer's phone report `delivered`, `read` or `failed` (with a code).
    pub async fn set_status(&self, wamid: &str, status: &str, code: Option<i64>) -> Result<(), Error> {
        self.post_unit(&format!("/messages/{wamid}/status"), &StatusCommand { status: status.into(), code }).await
    }

    /// The Graph requests the sandbox received.
    pub async fn requests(&self) -> Result<Vec<ReceivedRequest>, Error> {
        self.get("/requests").await
    }

    /// Injects a fault.
    pub async fn add_fault(&self, fault: &Fault) -> Result<(), Error> {
        self.post_unit("/faults", fault).await
    }

    /// Removes all faults.
    pub async fn clear_faults(&self) -> Result<(), Error> {
        self.call::<Value>(reqwest::Method::DELETE, "/faults", None::<&Value>).await.map(|_| ())
    }

    /// Makes Meta unavailable for a while.
    pub async fn outage(&self, req: &OutageRequest) -> Result<(), Error> {
        self.post_unit("/outage", req).await
    }

    /// Ends an outage.
    pub async fn end_outage(&self) -> Result<(), Error> {
        self.call::<Value>(reqwest::Method::DELETE, "/outage", None::<&Value>).await.map(|_| ())
    }

    /// Pending reviews.
    pub async fn reviews(&self) -> Result<Vec<ReviewInfo>, Error> {
        self.get("/reviews").await
    }

    /// Decides a pending review now.
    pub async fn complete_review(&self, id: &str, approve: bool, reason: Option<&str>) -> Result<(), Error> {
        self.post_unit(&format!("/reviews/{id}/complete"), &ReviewDecision { approve, reason: reason.map(str::to_string) }).await
    }

    /// Decides every pending review of a kind (optionally for one target) now.
    pub async fn complete_reviews(&self, kind: ReviewKind, target_id: Option<&str>, approve: bool, reason: Option<&str>) -> Result<usize, Error> {
        let pending = self.reviews().await?;
        let mut n = 0;
        for r in pending.iter().filter(|r| r.kind == kind && target_id.is_none_or(|t| t == r.target_id)) {
            self.complete_review(&r.id, approve, reason).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Sets the outcome of the next review of a kind.
    pub async fn plan_outcome(&self, outcome: &PlannedOutcome) -> Result<(), Error> {
        self.post_unit("/outcomes", outcome).await
    }

    /// A phone number's sandbox state, including the last requested verification code.
    pub async fn number(&self, id: &str) -> Result<NumberInfo, Error> {
        self.get(&format!("/numbers/{id}")).await
    }

    /// Changes a phone number's sandbox-only state (preset PIN, throughput, quality).
    pub async fn patch_number(&self, id: &str, patch: &NumberPatch) -> Result<NumberInfo, Error> {
        self.post(&format!("/numbers/{id}"), patch).await
    }

    /// Pauses, disables, reinstates, re-rates or re-categorises a template.
    pub async fn change_template(&self, id: &str, change: &TemplateChange) -> Result<(), Error> {
        self.post_unit(&format!("/templates/{id}"), change).await
    }

    /// The business removes the partner from its WABA (`PARTNER_REMOVED`).
    pub async fn partner_removed(&self, waba_id: &str) -> Result<(), Error> {
        self.post_unit(&format!("/wabas/{waba_id}/partner_removed"), &json!({})).await
    }

    /// Revokes a token (190 from then on).
    pub async fn revoke_token(&self, token: &str) -> Result<(), Error> {
        self.post_unit(&format!("/tokens/{token}/revoke"), &json!({})).await
    }

    /// Expires a token (190 from then on).
    pub async fn expire_token(&self, token: &str) -> Result<(), Error> {
        self.post_unit(&format!("/tokens/{token}/expire"), &json!({})).await
    }

    /// Moves the sandbox clock forward.
    pub async fn advance_clock(&self, seconds: i64) -> Result<(), Error> {
        self.post_unit("/clock/advance", &ClockAdvance { seconds }).await
    }

    /// Changes sandbox-wide settings.
    pub async fn settings(&self, patch: &SettingsPatch) -> Result<Value, Error> {
        self.post("/settings", patch).await
    }

    /// Changes the webhook sender: callback URL, duplicates, reordering.
    pub async fn webhooks(&self, patch: &WebhookPatch) -> Result<(), Error> {
        self.post_unit("/webhooks", patch).await
    }

    /// Every webhook attempt so far (handshakes, posts with bodies and signatures, drops).
    pub async fn deliveries(&self) -> Result<Vec<DeliveryAttempt>, Error> {
        self.get("/webhooks/deliveries").await
    }

    /// Waits until due statuses and reviews have run and every webhook was delivered (or the
    /// timeout passed).
    pub async fn flush(&self, timeout: Duration) -> Result<FlushResult, Error> {
        self.post("/webhooks/flush", &json!({"timeout_ms": timeout.as_millis()})).await
    }

    /// The sandbox's world in brief (businesses, WABAs, numbers, templates, customers).
    pub async fn state(&self) -> Result<Value, Error> {
        self.get("/state").await
    }
}
