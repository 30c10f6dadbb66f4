//! Webhook bodies Meta POSTs to wabridge: the envelope, every subscribed field, and accessors
//! for routing.
//!
//! Parsing is total: any JSON document yields a [`WebhookBody`]. Whatever this crate does not
//! model comes through as an `Other`/`Unknown` variant with the raw JSON, because a correctly
//! signed body must always be kept and acknowledged (Meta retries for a week otherwise).

mod business;
mod fast;
mod messages;
mod raw;

pub use business::*;
pub use messages::*;
pub use raw::RawJson;

use serde_json::Value;

use crate::json::{int, string, take_array};

/// The body was not JSON at all; the only way [`parse_webhook`] fails.
#[derive(Debug, thiserror::Error)]
#[error("webhook body is not JSON: {0}")]
pub struct WebhookParseError(#[from] serde_json::Error);

/// Parses a webhook POST body. Fails only when `raw` is not JSON.
pub fn parse_webhook(raw: &[u8]) -> Result<WebhookBody, WebhookParseError> {
    // The body's UTF-8 is checked once, not string by string as `from_slice` does (that was
    // about 4,000 instructions of every body's parse). JSON that is not UTF-8 is no JSON: the
    // error then comes from `from_slice`, which says where.
    match std::str::from_utf8(raw) {
        // The common bodies in one pass (see `fast.rs`), anything else by the tolerant parse.
        Ok(text) => match fast::parse(text) {
            Some(body) => Ok(body),
            None => Ok(WebhookBody::from_value(serde_json::from_str(text)?)),
        },
        Err(_) => Ok(WebhookBody::from_value(serde_json::from_slice(raw)?)),
    }
}

/// [`parse_webhook`] without its fast path: the tolerant parse every body can take. For tests
/// that hold the two to the same result.
#[doc(hidden)]
pub fn parse_webhook_tolerant(raw: &[u8]) -> Result<WebhookBody, WebhookParseError> {
    Ok(WebhookBody::from_value(serde_json::from_slice(raw)?))
}

/// [`parse_webhook`]'s fast path alone: `None` for a body it leaves to the tolerant parse.
#[doc(hidden)]
pub fn parse_webhook_fast(raw: &[u8]) -> Option<WebhookBody> {
    fast::parse(std::str::from_utf8(raw).ok()?)
}

/// A whole webhook body: `{"object": …, "entry": [{"id", "time", "changes": [...]}]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    /// `whatsapp_business_account` for everything wabridge subscribes to.
    pub object: Option<String>,
    /// The entries; empty when `entry` is missing, `{}` or `[]`.
    pub entries: Vec<Entry>,
}

impl WebhookBody {
    /// Builds the typed view of any JSON value. The value's parts move into it: a change's
    /// raw value is kept without copying it.
    pub fn from_value(mut v: Value) -> Self {
        Self {
            object: string(&v, "object"),
            entries: take_array(&mut v, "entry").into_iter().map(Entry::parse).collect(),
        }
    }

    /// Every change of every entry, with the entry it came in.
    pub fn changes(&self) -> impl Iterator<Item = ChangeRef<'_>> {
        self.entries.iter().flat_map(|entry| {
            entry
                .changes
                .iter()
                .map(move |change| ChangeRef { entry, change })
        })
    }
}

/// One `entry[]`: a WABA (or, for partner events, a partner business) and its changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The WABA id; for partner `account_update` events the partner's business id.
    pub id: Option<String>,
    /// Unix seconds; present on account and template fields.
    pub time: Option<i64>,
    /// The changes; empty when missing or not an array.
    pub changes: Vec<Change>,
}

impl Entry {
    fn parse(mut v: Value) -> Self {
        Self {
            id: string(&v, "id"),
            time: int(&v, "time"),
            changes: take_array(&mut v, "changes").into_iter().map(Change::parse).collect(),
        }
    }
}

/// The webhook fields (`changes[].field`) wabridge understands, and any other by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WebhookField {
    /// Inbound messages and statuses.
    Messages,
    /// Template approved, rejected, paused …
    MessageTemplateStatusUpdate,
    /// Template quality score changed.
    MessageTemplateQualityUpdate,
    /// Template components changed.
    MessageTemplateComponentsUpdate,
    /// Template category changed.
    TemplateCategoryUpdate,
    /// WABA events (partner added, app installed, banned …).
    AccountUpdate,
    /// WABA review decision.
    AccountReviewUpdate,
    /// Account alerts.
    AccountAlerts,
    /// Display-name review.
    PhoneNumberNameUpdate,
    /// Throughput and limit changes.
    PhoneNumberQualityUpdate,
    /// Portfolio limits.
    BusinessCapabilityUpdate,
    /// Two-step PIN events.
    Security,
    /// Marketing opt-out and opt-in.
    UserPreferences,
    /// Coexistence: messages sent from the Business app.
    SmbMessageEchoes,
    /// Coexistence: contact sync.
    SmbAppStateSync,
    /// Coexistence: chat history.
    History,
    /// Calling API events.
    Calls,
    /// The change had no `field` and its value did not reveal one.
    Missing,
    /// Any other field, by name.
    Other(String),
}

impl WebhookField {
    /// Maps a field name to its variant.
    pub fn parse(s: &str) -> Self {
        match s {
            "messages" => Self::Messages,
            "message_template_status_update" => Self::MessageTemplateStatusUpdate,
            "message_template_quality_update" => Self::MessageTemplateQualityUpdate,
            "message_template_components_update" => Self::MessageTemplateComponentsUpdate,
            "template_category_update" => Self::TemplateCategoryUpdate,
            "account_update" => Self::AccountUpdate,
            "account_review_update" => Self::AccountReviewUpdate,
            "account_alerts" => Self::AccountAlerts,
            "phone_number_name_update" => Self::PhoneNumberNameUpdate,
            "phone_number_quality_update" => Self::PhoneNumberQualityUpdate,
            "business_capability_update" => Self::BusinessCapabilityUpdate,
            "security" => Self::Security,
            "user_preferences" => Self::UserPreferences,
            "smb_message_echoes" => Self::SmbMessageEchoes,
            "smb_app_state_sync" => Self::SmbAppStateSync,
            "history" => Self::History,
            "calls" => Self::Calls,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The field's name as Meta writes it (`""` for [`WebhookField::Missing`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Messages => "messages",
            Self::MessageTemplateStatusUpdate => "message_template_status_update",
            Self::MessageTemplateQualityUpdate => "message_template_quality_update",
            Self::MessageTemplateComponentsUpdate => "message_template_components_update",
            Self::TemplateCategoryUpdate => "template_category_update",
            Self::AccountUpdate => "account_update",
            Self::AccountReviewUpdate => "account_review_update",
            Self::AccountAlerts => "account_alerts",
            Self::PhoneNumberNameUpdate => "phone_number_name_update",
            Self::PhoneNumberQualityUpdate => "phone_number_quality_update",
            Self::BusinessCapabilityUpdate => "business_capability_update",
            Self::Security => "security",
            Self::UserPreferences => "user_preferences",
            Self::SmbMessageEchoes => "smb_message_echoes",
            Self::SmbAppStateSync => "smb_app_state_sync",
            Self::History => "history",
            Self::Calls => "calls",
            Self::Missing => "",
            Self::Other(s) => s,
        }
    }
}

/// One `changes[]` item: a field and its value.
#[derive(Debug, Clone)]
pub struct Change {
    /// The field; inferred from the value when `field` is missing (peers trim it).
    pub field: WebhookField,
    /// Whether `field` was inferred rather than sent.
    pub field_inferred: bool,
    /// The typed value.
    pub value: ChangeValue,
    /// The value exactly as received, for storage and support. A message's or status's own
    /// JSON is part of it (see [`Change::raw_message`]), not copied into the typed structs.
    pub raw_value: RawJson,
    /// The fast parse's text of each of `value.messages` (empty after the tolerant parse).
    messages_json: Vec<Box<serde_json::value::RawValue>>,
}

impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        // The messages' text is the raw value's, in another form.
        self.field == other.field
            && self.field_inferred == other.field_inferred
            && self.value == other.value
            && self.raw_value == other.raw_value
    }
}

impl Change {
    /// The `index`th message of a `messages` value exactly as received.
    pub fn raw_message(&self, index: usize) -> Option<&Value> {
        self.raw_value.get("messages")?.get(index)
    }

    /// The `index`th message of a `messages` value as JSON text: as received when the fast
    /// parse kept it, serialised from [`Change::raw_message`] otherwise.
    pub fn raw_message_json(&self, index: usize) -> Option<std::borrow::Cow<'_, str>> {
        match self.messages_json.get(index) {
            Some(text) => Some(std::borrow::Cow::Borrowed(text.get())),
            None => self.raw_message(index).and_then(|m| serde_json::to_string(m).ok()).map(std::borrow::Cow::Owned),
        }
    }
}

/// The typed `value` of a change, by field.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per change and matched by reference
pub enum ChangeValue {
    /// `messages`.
    Messages(MessagesValue),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// `account_update`.
    Account(AccountUpdate),
    /// `account_review_update`.
    AccountReview(AccountReviewUpdate),
    /// `phone_number_name_update`.
    PhoneNumberName(PhoneNumberNameUpdate),
    /// `phone_number_quality_update`.
    PhoneNumberQuality(PhoneNumberQualityUpdate),
    /// `business_capability_update`.
    BusinessCapability(BusinessCapabilityUpdate),
    /// `security`.
    Security(SecurityUpdate),
    /// `user_preferences`.
    UserPreferences(UserPreferencesValue),
    /// `smb_message_echoes`.
    SmbMessageEchoes(SmbMessageEchoes),
    /// `smb_app_state_sync`.
    SmbAppStateSync(SmbAppStateSync),
    /// `history`.
    History(HistoryValue),
    /// A field this crate does not model; its value as received is [`Change::raw_value`].
    Unknown,
}

impl Change {
    fn parse(mut v: Value) -> Self {
        let raw_value = v.get_mut("value").map_or(Value::Null, Value::take);
        let (field, field_inferred) = match string(&v, "field") {
            Some(f) => (WebhookField::parse(&f), false),
            None => (infer_field(&raw_value), true),
        };
        let value = match &field {
            WebhookField::Messages => ChangeValue::Messages(MessagesValue::parse(&raw_value)),
            WebhookField::MessageTemplateStatusUpdate => {
                ChangeValue::TemplateStatus(TemplateStatusUpdate::parse(&raw_value))
            }
            WebhookField::MessageTemplateQualityUpdate => {
                ChangeValue::TemplateQuality(TemplateQualityUpdate::parse(&raw_value))
            }
            WebhookField::TemplateCategoryUpdate => {
                ChangeValue::TemplateCategory(TemplateCategoryUpdate::parse(&raw_value))
            }
            WebhookField::AccountUpdate => ChangeValue::Account(AccountUpdate::parse(&raw_value)),
            WebhookField::AccountReviewUpdate => {
                ChangeValue::AccountReview(business::parse_simple_account_review(&raw_value))
            }
            WebhookField::PhoneNumberNameUpdate => {
                ChangeValue::PhoneNumberName(business::parse_name_update(&raw_value))
            }
            WebhookField::PhoneNumberQualityUpdate => {
                ChangeValue::PhoneNumberQuality(business::parse_quality_update(&raw_value))
            }
            WebhookField::BusinessCapabilityUpdate => {
                ChangeValue::BusinessCapability(business::parse_capability_update(&raw_value))
            }
            WebhookField::Security => ChangeValue::Security(business::parse_security(&raw_value)),
            WebhookField::UserPreferences => {
                ChangeValue::UserPreferences(business::parse_user_preferences(&raw_value))
            }
            WebhookField::SmbMessageEchoes => {
                ChangeValue::SmbMessageEchoes(business::parse_echoes(&raw_value))
            }
            WebhookField::SmbAppStateSync => {
                ChangeValue::SmbAppStateSync(business::parse_state_sync(&raw_value))
            }
            WebhookField::History => ChangeValue::History(business::parse_history(&raw_value)),
            _ => ChangeValue::Unknown,
        };
        Self {
            field,
            field_inferred,
            value,
            raw_value: RawJson::built(raw_value),
            messages_json: Vec::new(),
        }
    }
}

// Meta always sends `field`; some peers' fixtures drop it, and their content should still count.
fn infer_field(value: &Value) -> WebhookField {
    let has = |k: &str| value.get(k).is_some();
    if has("messages") || has("statuses") {
        WebhookField::Messages
    } else if has("message_echoes") {
        WebhookField::SmbMessageEchoes
    } else {
        WebhookField::Missing
    }
}

/// A change together with its entry: what the server routes on.
#[derive(Debug, Clone, Copy)]
pub struct ChangeRef<'a> {
    /// The entry the change came in.
    pub entry: &'a Entry,
    /// The change.
    pub change: &'a Change,
}

impl<'a> ChangeRef<'a> {
    /// The change's field.
    pub fn field(&self) -> &'a WebhookField {
        &self.change.field
    }

    /// The typed value.
    pub fn value(&self) -> &'a ChangeValue {
        &self.change.value
    }

    /// The business phone number id (`value.metadata.phone_number_id`) of message-like fields.
    pub fn phone_number_id(&self) -> Option<&'a str> {
        let metadata = match &self.change.value {
            ChangeValue::Messages(m) => m.metadata.as_ref(),
            ChangeValue::UserPreferences(m) => m.metadata.as_ref(),
            ChangeValue::SmbMessageEchoes(m) => m.metadata.as_ref(),
            ChangeValue::SmbAppStateSync(m) => m.metadata.as_ref(),
            ChangeValue::History(m) => m.metadata.as_ref(),
            _ => None,
        };
        metadata.and_then(|m| m.phone_number_id.as_deref())
    }

    /// The WABA id: `waba_info.waba_id` for `account_update` events that carry it (where
    /// `entry.id` is the partner's business), `entry.id` otherwise.
    pub fn waba_id(&self) -> Option<&'a str> {
        if let ChangeValue::Account(a) = &self.change.value
            && let Some(id) = a.waba_info.as_ref().and_then(|w| w.waba_id.as_deref())
        {
            return Some(id);
        }
        self.entry.id.as_deref()
    }

    /// The messages value, for `messages` changes.
    pub fn messages_value(&self) -> Option<&'a MessagesValue> {
        match &self.change.value {
            ChangeValue::Messages(m) => Some(m),
            _ => None,
        }
    }

    /// Inbound messages (empty for other fields).
    pub fn messages(&self) -> &'a [Message] {
        self.messages_value().map_or(&[], |m| m.messages.as_slice())
    }

    /// Statuses (empty for other fields).
    pub fn statuses(&self) -> &'a [Status] {
        self.messages_value().map_or(&[], |m| m.statuses.as_slice())
    }

    /// Contacts (empty for other fields).
    pub fn contacts(&self) -> &'a [Contact] {
        match &self.change.value {
            ChangeValue::Messages(m) => &m.contacts,
            ChangeValue::UserPreferences(m) => &m.contacts,
            ChangeValue::SmbMessageEchoes(m) => &m.contacts,
            _ => &[],
        }
    }
}
