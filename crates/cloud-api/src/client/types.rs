//! Graph API response bodies and request parameters other than outbound messages.

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::de;

/// The app's id and secret, for the code exchange and `debug_token`.
#[derive(Clone)]
pub struct AppCredentials {
    /// The Meta app id (`META_APP_ID`).
    pub app_id: String,
    /// The app secret (`META_APP_SECRET`).
    pub app_secret: SecretString,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .finish()
    }
}

/// A business token obtained from the Embedded Signup code (`oauth/access_token`).
#[derive(Debug, Clone, Deserialize)]
pub struct AccessToken {
    /// The token; its `Debug` output is redacted.
    pub access_token: SecretString,
    /// Usually `bearer`.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub token_type: Option<String>,
    /// Seconds until expiry; missing for tokens that do not expire.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub expires_in: Option<i64>,
}

/// What `debug_token` says about a token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TokenInfo {
    /// The app the token belongs to.
    #[serde(deserialize_with = "de::opt_string")]
    pub app_id: Option<String>,
    /// The app's name.
    #[serde(deserialize_with = "de::opt_string")]
    pub application: Option<String>,
    /// `USER`, `SYSTEM_USER`, `APP`, …
    #[serde(rename = "type", deserialize_with = "de::opt_string")]
    pub token_type: Option<String>,
    /// Whether the token is currently valid.
    #[serde(deserialize_with = "de::opt_bool")]
    pub is_valid: Option<bool>,
    /// Unix seconds; `0` means never.
    #[serde(deserialize_with = "de::opt_i64")]
    pub expires_at: Option<i64>,
    /// Unix seconds until data access expires.
    #[serde(deserialize_with = "de::opt_i64")]
    pub data_access_expires_at: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_i64")]
    pub issued_at: Option<i64>,
    /// The (system) user the token is for.
    #[serde(deserialize_with = "de::opt_string")]
    pub user_id: Option<String>,
    /// Granted permissions.
    #[serde(deserialize_with = "de::strings")]
    pub scopes: Vec<String>,
    /// Permissions with the assets they cover.
    #[serde(deserialize_with = "de::vec")]
    pub granular_scopes: Vec<GranularScope>,
}

/// A permission and the asset ids (WABAs, businesses) it is granted for.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct GranularScope {
    /// E.g. `whatsapp_business_management`.
    #[serde(deserialize_with = "de::string_or_default")]
    pub scope: String,
    /// The asset ids; missing means all.
    #[serde(deserialize_with = "de::strings")]
    pub target_ids: Vec<String>,
}

impl TokenInfo {
    /// The asset ids granted for `scope`.
    pub fn target_ids(&self, scope: &str) -> impl Iterator<Item = &str> {
        self.granular_scopes
            .iter()
            .filter(move |g| g.scope == scope)
            .flat_map(|g| g.target_ids.iter().map(String::as_str))
    }

    /// The WABAs the token may manage (most recently onboarded first, as Meta lists them).
    pub fn waba_ids(&self) -> Vec<&str> {
        self.target_ids("whatsapp_business_management").collect()
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
            || self.granular_scopes.iter().any(|g| g.scope == scope)
    }
}

#[derive(Deserialize)]
pub(crate) struct DataWrapper<T> {
    pub(crate) data: T,
}

/// A WhatsApp Business Account as `GET /<WABA_ID>` returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Waba {
    /// The WABA id.
    #[serde(deserialize_with = "de::opt_string")]
    pub id: Option<String>,
    /// Its name.
    #[serde(deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    /// Billing currency.
    #[serde(deserialize_with = "de::opt_string")]
    pub currency: Option<String>,
    /// Time zone id.
    #[serde(deserialize_with = "de::opt_string")]
    pub timezone_id: Option<String>,
    /// The template namespace.
    #[serde(deserialize_with = "de::opt_string")]
    pub message_template_namespace: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `RESTRICTED`.
    #[serde(deserialize_with = "de::opt_string")]
    pub account_review_status: Option<String>,
    /// The business portfolio's verification (`VERIFIED`, `PENDING`, … any case).
    #[serde(deserialize_with = "de::opt_string")]
    pub business_verification_status: Option<String>,
    /// `SELF_OWNED`, `CLIENT_OWNED`, …
    #[serde(deserialize_with = "de::opt_string")]
    pub ownership_type: Option<String>,
    /// Country.
    #[serde(deserialize_with = "de::opt_string")]
    pub country: Option<String>,
}

/// The WABA fields wabridge reads by default.
pub const WABA_FIELDS: &str = "id,name,currency,timezone_id,message_template_namespace,account_review_status,business_verification_status,ownership_type,country";

/// A business phone number as `GET /<PHONE_NUMBER_ID>` or the WABA's list returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PhoneNumber {
    /// The phone number id.
    #[serde(deserialize_with = "de::opt_string")]
    pub id: Option<String>,
    /// The number as displayed.
    #[serde(deserialize_with = "de::opt_string")]
    pub display_phone_number: Option<String>,
    /// The verified business name customers see.
    #[serde(deserialize_with = "de::opt_string")]
    pub verified_name: Option<String>,
    /// `VERIFIED`, `NOT_VERIFIED`, `UNVERIFIED`.
    #[serde(deserialize_with = "de::opt_string")]
    pub code_verification_status: Option<String>,
    /// Display-name review: `APPROVED`, `PENDING_REVIEW`, `DECLINED`, …
    #[serde(deserialize_with = "de::opt_string")]
    pub name_status: Option<String>,
    /// `GREEN`, `YELLOW`, `RED`, `NA`, `UNKNOWN`.
    #[serde(deserialize_with = "de::opt_string")]
    pub quality_rating: Option<String>,
    /// `CONNECTED`, `DISCONNECTED`, `PENDING`, `FLAGGED`, …
    #[serde(deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    /// `CLOUD_API`, `ON_PREMISE`, `NOT_APPLICABLE`.
    #[serde(deserialize_with = "de::opt_string")]
    pub platform_type: Option<String>,
    /// `throughput.level`, e.g. `STANDARD`, `HIGH`.
    #[serde(deserialize_with = "throughput_level")]
    pub throughput: Option<String>,
    /// The messaging limit tier, e.g. `TIER_250` (`whatsapp_business_manager_messaging_limit`).
    #[serde(deserialize_with = "de::opt_any_string")]
    pub whatsapp_business_manager_messaging_limit: Option<String>,
    /// The deprecated messaging limit tier.
    #[serde(deserialize_with = "de::opt_string")]
    pub messaging_limit_tier: Option<String>,
    /// Whether the number also runs in the WhatsApp Business app (coexistence).
    #[serde(deserialize_with = "de::opt_bool")]
    pub is_on_biz_app: Option<bool>,
    /// `LIVE` or `SANDBOX`.
    #[serde(deserialize_with = "de::opt_string")]
    pub account_mode: Option<String>,
}

fn throughput_level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match &v {
        Value::Object(_) => crate::json::string(&v, "level"),
        other => crate::json::as_string(other),
    })
}

/// The phone-number fields wabridge reads by default.
pub const PHONE_NUMBER_FIELDS: &str = "id,display_phone_number,verified_name,code_verification_status,name_status,quality_rating,status,platform_type,throughput,whatsapp_business_manager_messaging_limit,is_on_biz_app,account_mode";

/// One page of a Graph list (`{"data": [...], "paging": {...}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// `paging.cursors.after`.
    pub after: Option<String>,
    /// `paging.next`: the URL of the next page; missing on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Whether Meta says there is another page.
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }
}

#[derive(Deserialize)]
#[serde(default)]
pub(crate) struct RawPage {
    pub(crate) data: Value,
    pub(crate) paging: Value,
}

impl Default for RawPage {
    fn default() -> Self {
        Self {
            data: Value::Array(Vec::new()),
            paging: Value::Null,
        }
    }
}

impl RawPage {
    pub(crate) fn into_page<T: serde::de::DeserializeOwned>(self) -> Result<Page<T>, String> {
        let data = match self.data {
            Value::Array(items) => items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<T>, _>>()
                .map_err(|e| e.to_string())?,
            Value::Null => Vec::new(),
            _ => return Err("`data` is not a list".to_owned()),
        };
        let cursors = crate::json::object(&self.paging, "cursors");
        Ok(Page {
            data,
            after: cursors.and_then(|c| crate::json::string(c, "after")),
            next: crate::json::string(&self.paging, "next"),
        })
    }
}

/// How Meta should deliver the verification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CodeMethod {
    /// By text message.
    Sms,
    /// By phone call.
    Voice,
}

/// A WhatsApp two-step verification PIN: exactly six ASCII digits, never shown in `Debug`.
#[derive(Clone)]
pub struct Pin(SecretString);

/// The input was not exactly six digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a PIN is exactly six digits")]
pub struct InvalidPin;

impl Pin {
    /// Accepts exactly six ASCII digits.
    pub fn parse(s: &str) -> Result<Self, InvalidPin> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(s)))
        } else {
            Err(InvalidPin)
        }
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

/// An app subscribed to a WABA's webhooks (`GET /<WABA_ID>/subscribed_apps`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SubscribedApp {
    /// The app id (`whatsapp_business_api_data.id`).
    #[serde(skip)]
    pub id: Option<String>,
    /// The app name.
    #[serde(skip)]
    pub name: Option<String>,
    /// The WABA-level alternate callback URL, if set.
    #[serde(deserialize_with = "de::opt_string")]
    pub override_callback_uri: Option<String>,
    whatsapp_business_api_data: Value,
}

impl SubscribedApp {
    pub(crate) fn fill(mut self) -> Self {
        self.id = crate::json::string(&self.whatsapp_business_api_data, "id");
        self.name = crate::json::string(&self.whatsapp_business_api_data, "name");
        self
    }
}

/// A message template as `GET /<WABA_ID>/message_templates` or `GET /<TEMPLATE_ID>` returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Template {
    /// The template id.
    #[serde(deserialize_with = "de::opt_string")]
    pub id: Option<String>,
    /// The name (lowercase, underscores).
    #[serde(deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    /// The language code, e.g. `de`.
    #[serde(deserialize_with = "de::opt_string")]
    pub language: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, …
    #[serde(deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    /// `UTILITY`, `MARKETING`, `AUTHENTICATION`.
    #[serde(deserialize_with = "de::opt_string")]
    pub category: Option<String>,
    /// `POSITIONAL` or `NAMED`.
    #[serde(deserialize_with = "de::opt_string")]
    pub parameter_format: Option<String>,
    /// Why it was rejected, when it was.
    #[serde(deserialize_with = "de::opt_string")]
    pub rejected_reason: Option<String>,
    /// The components as Meta returns them.
    pub components: Value,
}

/// The answer to creating a template.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CreatedTemplate {
    /// The new template's id.
    #[serde(deserialize_with = "de::opt_string")]
    pub id: Option<String>,
    /// Usually `PENDING`.
    #[serde(deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    /// The category Meta assigned.
    #[serde(deserialize_with = "de::opt_string")]
    pub category: Option<String>,
}

/// A new template to submit for review (`POST /<WABA_ID>/message_templates`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewTemplate {
    /// Lowercase letters, digits and underscores.
    pub name: String,
    /// The language code, e.g. `de`.
    pub language: String,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`.
    pub category: String,
    /// `NAMED` or `POSITIONAL` (Meta's default).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parameter_format: Option<String>,
    /// The components in Meta's JSON shape.
    pub components: Vec<Value>,
}

impl NewTemplate {
    /// A utility template with named parameters: a body with `{{name}}` placeholders and their
    /// examples, and quick-reply buttons.
    pub fn utility_named(
        name: &str,
        language: &str,
        body: &str,
        examples: &[(&str, &str)],
        quick_replies: &[&str],
    ) -> Self {
        let named: Vec<Value> = examples
            .iter()
            .map(|(p, e)| serde_json::json!({ "param_name": p, "example": e }))
            .collect();
        let mut components = vec![serde_json::json!({
            "type": "BODY",
            "text": body,
            "example": { "body_text_named_params": named },
        })];
        if !quick_replies.is_empty() {
            let buttons: Vec<Value> = quick_replies
                .iter()
                .map(|t| serde_json::json!({ "type": "QUICK_REPLY", "text": t }))
                .collect();
            components.push(serde_json::json!({ "type": "BUTTONS", "buttons": buttons }));
        }
        Self {
            name: name.to_owned(),
            language: language.to_owned(),
            category: "UTILITY".to_owned(),
            parameter_format: Some("NAMED".to_owned()),
            components,
        }
    }
}

/// What `GET /<MEDIA_ID>` returns: a short-lived download URL and the file's facts.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct MediaInfo {
    /// The download URL (valid about five minutes; needs the token).
    #[serde(deserialize_with = "de::opt_string")]
    pub url: Option<String>,
    /// The MIME type.
    #[serde(deserialize_with = "de::opt_string")]
    pub mime_type: Option<String>,
    /// Base64 SHA-256.
    #[serde(deserialize_with = "de::opt_string")]
    pub sha256: Option<String>,
    /// Size in bytes (peers send non-numbers; then `None`).
    #[serde(deserialize_with = "de::opt_i64")]
    pub file_size: Option<i64>,
    /// The media id.
    #[serde(deserialize_with = "de::opt_string")]
    pub id: Option<String>,
}

/// The answer to sending a message.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SendResponse {
    /// `whatsapp`.
    #[serde(deserialize_with = "de::opt_string")]
    pub messaging_product: Option<String>,
    /// How Meta resolved the recipient.
    #[serde(deserialize_with = "de::vec")]
    pub contacts: Vec<SentContact>,
    /// The accepted messages (one per send).
    #[serde(deserialize_with = "de::vec")]
    pub messages: Vec<SentMessage>,
}

impl SendResponse {
    /// The wamid of the sent message.
    pub fn message_id(&self) -> Option<&str> {
        self.messages
            .first()
            .map(|m| m.id.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// A recipient as Meta resolved it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SentContact {
    /// What we sent as `to` or `recipient`.
    #[serde(deserialize_with = "de::opt_string")]
    pub input: Option<String>,
    /// The WhatsApp id (omitted when sent to a BSUID).
    #[serde(deserialize_with = "de::opt_string")]
    pub wa_id: Option<String>,
    /// The BSUID.
    #[serde(deserialize_with = "de::opt_string")]
    pub user_id: Option<String>,
}

/// One accepted message.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SentMessage {
    /// The wamid.
    #[serde(deserialize_with = "de::string_or_default")]
    pub id: String,
    /// `accepted`, `held_for_quality_assessment` or `paused` (templates).
    #[serde(deserialize_with = "de::opt_string")]
    pub message_status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct SuccessBody {
    #[serde(deserialize_with = "de::opt_bool")]
    pub(crate) success: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct IdBody {
    #[serde(deserialize_with = "de::opt_string")]
    pub(crate) id: Option<String>,
}
