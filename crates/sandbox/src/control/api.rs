//! The control API's request and response types, shared by the server and [`crate::ControlClient`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::world::ReviewKind;

/// An injected failure: the next calls of an endpoint answer with a Meta error, or are
/// processed but answered only after a delay (longer than the client's timeout).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Fault {
    /// Graph edge (`register`, `messages`, `subscribed_apps`, `message_templates`,
    /// `request_code`, `verify_code`, `access_token`, …), `node` for the node itself, or `any`.
    pub endpoint: String,
    /// Only this HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only this node id (a phone number id, a WABA id…).
    #[serde(default)]
    pub target: Option<String>,
    /// Meta's error code to answer with.
    #[serde(default)]
    pub code: Option<i64>,
    /// Meta's `error_subcode`.
    #[serde(default)]
    pub subcode: Option<i64>,
    /// `error_data.details`; Meta's default for the code when absent.
    #[serde(default)]
    pub details: Option<String>,
    /// HTTP status instead of the one Meta's table gives the code.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Process the call but answer only after this many milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many calls it applies to; `None` = until cleared.
    #[serde(default)]
    pub remaining: Option<u32>,
}

/// How Meta is down.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Every Graph call answers 503 with code 2.
    Error,
    /// Every Graph call hangs for `hang_ms`, then answers 503.
    Timeout,
}

/// A Meta outage in force.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outage {
    /// How it fails.
    pub mode: OutageMode,
    /// Until when (sandbox clock, ms).
    pub until_ms: i64,
    /// How long a call hangs in `timeout` mode.
    pub hang_ms: u64,
}

/// Starts an outage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutageRequest {
    /// How it fails.
    pub mode: OutageMode,
    /// For how long.
    pub duration_ms: u64,
    /// How long each call hangs in `timeout` mode (default 30 s).
    #[serde(default)]
    pub hang_ms: Option<u64>,
}

/// The outcome the next review of a kind (or of one target) will have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedOutcome {
    /// Which review.
    pub kind: ReviewKind,
    /// Only for this business, WABA, phone number or template id.
    #[serde(default)]
    pub target_id: Option<String>,
    /// Approve (true) or reject.
    pub approve: bool,
    /// Meta's rejection reason (e.g. `INVALID_FORMAT`, `NAME_FORMAT_UNACCEPTABLE`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Completes a pending review now.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReviewDecision {
    /// Approve (default) or reject.
    #[serde(default = "yes")]
    pub approve: bool,
    /// Meta's rejection reason.
    #[serde(default)]
    pub reason: Option<String>,
}

fn yes() -> bool {
    true
}

/// A pending review.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReviewInfo {
    /// Review id for `/reviews/{id}/complete`.
    pub id: String,
    /// What is reviewed.
    pub kind: ReviewKind,
    /// The business, WABA, phone number or template id.
    pub target_id: String,
    /// When it will be decided; `None` = on command.
    pub due_ms: Option<i64>,
}

/// A Graph API request the sandbox received (secrets in the query are redacted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReceivedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/v26.0/123/register`.
    pub path: String,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// Body parameters.
    pub body: Value,
    /// The status the sandbox answered.
    pub status: u16,
    /// When (sandbox clock, ms).
    pub at_ms: i64,
}

/// One attempt of the webhook sender.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryAttempt {
    /// `handshake`, `post` or `dropped`.
    pub kind: String,
    /// The batch, for posts.
    pub batch_id: Option<u64>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The callback URL.
    pub url: String,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// When (sandbox clock, ms).
    pub at_ms: i64,
    /// The exact body sent.
    pub body: Option<String>,
    /// The `X-Hub-Signature-256` header sent.
    pub signature: Option<String>,
    /// A deliberate duplicate of a delivered body.
    pub duplicate: bool,
}

/// A simulated customer writes to a business number.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CustomerMessage {
    /// The business number written to.
    pub phone_number_id: String,
    /// The customer's phone number with country code.
    pub from: String,
    /// Profile name.
    #[serde(default)]
    pub name: Option<String>,
    /// WhatsApp username.
    #[serde(default)]
    pub username: Option<String>,
    /// Withhold the phone number (a username user), as Meta does.
    #[serde(default)]
    pub hide_phone: Option<bool>,
    /// When the customer wrote (unix seconds); default now. A past time closes the window.
    #[serde(default)]
    pub at: Option<i64>,
    /// Meta's message type: text, image, audio, video, document, sticker, location, contacts,
    /// interactive, button, reaction, order, system, unsupported, request_welcome…
    pub r#type: String,
    /// The type's object, e.g. `{"body": "Hallo"}` for text; media fields are filled in.
    #[serde(default)]
    pub content: Option<Value>,
    /// Reply to this wamid (sets `context`).
    #[serde(default)]
    pub reply_to: Option<String>,
    /// A full `context` object.
    #[serde(default)]
    pub context: Option<Value>,
    /// A click-to-WhatsApp `referral` object.
    #[serde(default)]
    pub referral: Option<Value>,
    /// Put a direct download `url` in the media object, as Meta does in newer webhooks (since
    /// Nov 2025, rolled out gradually); like Meta's, it expires five minutes after the message.
    #[serde(default)]
    pub media_url: Option<bool>,
}

/// What the sandbox made of a customer's message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InboundReceipt {
    /// The message id.
    pub wamid: String,
    /// The customer's phone digits.
    pub wa_id: String,
    /// The customer's BSUID for this business.
    pub user_id: String,
    /// The webhook timestamp (unix seconds, string).
    pub timestamp: String,
}

/// A message the business sent through the Graph API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SentMessage {
    /// Meta's message id.
    pub wamid: String,
    /// The sending number.
    pub phone_number_id: String,
    /// `to` or `recipient` as given.
    pub input: String,
    /// The customer's phone digits.
    pub wa_id: String,
    /// Message type.
    pub r#type: String,
    /// The request body as received.
    pub request: Value,
    /// Echoed in statuses.
    pub biz_opaque_callback_data: Option<String>,
    /// Statuses reported so far.
    pub statuses: Vec<StatusInfo>,
    /// `pricing.type` reported.
    pub pricing_type: String,
    /// `pricing.category` reported.
    pub pricing_category: String,
    /// When it was accepted (sandbox clock, ms).
    pub created_ms: i64,
}

/// A status reported for a sent message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusInfo {
    /// sent, delivered, read or failed.
    pub status: String,
    /// When (sandbox clock, ms).
    pub at_ms: i64,
    /// Error code of a failure.
    pub error_code: Option<i64>,
}

/// Makes a customer's phone report a status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusCommand {
    /// delivered, read or failed.
    pub status: String,
    /// Error code for failed (default 131026).
    #[serde(default)]
    pub code: Option<i64>,
}

/// Creates a connected tenant in one call (business, WABA, number, token), for tests that do
/// not walk through Embedded Signup.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TenantRequest {
    /// Business portfolio name.
    #[serde(default)]
    pub business_name: Option<String>,
    /// Phone number (digits); a Meta-provided +1 555 number when absent.
    #[serde(default)]
    pub number: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Register the number (status CONNECTED) with this PIN.
    #[serde(default)]
    pub registered_with_pin: Option<String>,
    /// Leave `code_verification_status` NOT_VERIFIED.
    #[serde(default)]
    pub unverified: bool,
    /// Leave verification, WABA review and display name pending (reviews started as configured).
    #[serde(default)]
    pub pending_reviews: bool,
}

/// The ids and token of a created tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantFixture {
    /// Business portfolio id.
    pub business_id: String,
    /// WABA id.
    pub waba_id: String,
    /// Phone number id.
    pub phone_number_id: String,
    /// Phone digits.
    pub number: String,
    /// A business token with access to the WABA.
    pub access_token: String,
}

/// Changes a phone number's sandbox-only state.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NumberPatch {
    /// Preset a two-step verification PIN.
    #[serde(default)]
    pub pin: Option<String>,
    /// Messages per second before 130429.
    #[serde(default)]
    pub throughput_mps: Option<u32>,
    /// GREEN, YELLOW, RED.
    #[serde(default)]
    pub quality_rating: Option<String>,
}

/// A phone number as the sandbox sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumberInfo {
    /// Phone number id.
    pub id: String,
    /// Its WABA.
    pub waba_id: String,
    /// Digits.
    pub number: String,
    /// Display name.
    pub verified_name: String,
    /// Graph `status`.
    pub status: String,
    /// Graph `code_verification_status`.
    pub code_verification_status: String,
    /// Graph `name_status`.
    pub name_status: String,
    /// The SMS/voice code last requested (the sandbox shows it, there is no phone).
    pub pending_code: Option<String>,
    /// Whether a two-step PIN is set.
    pub has_pin: bool,
    /// Register calls within the last 72 hours.
    pub register_calls_72h: usize,
}

/// Changes a template like Meta's quality system does.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TemplateChange {
    /// New status event: PAUSED, DISABLED, REINSTATED (back to APPROVED), FLAGGED…
    #[serde(default)]
    pub event: Option<String>,
    /// New quality score: GREEN, YELLOW, RED.
    #[serde(default)]
    pub quality: Option<String>,
    /// New category (sends `template_category_update`).
    #[serde(default)]
    pub category: Option<String>,
}

/// Sandbox-wide settings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SettingsPatch {
    /// Refuse out-of-window sends synchronously (true) or report them as failed statuses.
    #[serde(default)]
    pub window_refusal_sync: Option<bool>,
    /// `delivered` after this many ms; negative = only on command.
    #[serde(default)]
    pub delivered_after_ms: Option<i64>,
    /// `read` after this many ms past delivery; negative = only on command.
    #[serde(default)]
    pub read_after_ms: Option<i64>,
}

/// Webhook sender settings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WebhookPatch {
    /// New callback URL (verified by a handshake first); empty string stops sending.
    #[serde(default)]
    pub url: Option<String>,
    /// Send each delivered body twice.
    #[serde(default)]
    pub duplicate: Option<bool>,
    /// Send each change in its own body, newest first.
    #[serde(default)]
    pub reorder: Option<bool>,
}

/// Whether the webhook sender is idle after a flush.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlushResult {
    /// Nothing pending, retrying or in flight.
    pub idle: bool,
    /// Changes not yet sent.
    pub pending: usize,
    /// Bodies waiting for a retry.
    pub retrying: usize,
}

/// Advances the sandbox clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockAdvance {
    /// Seconds to add.
    pub seconds: i64,
}
