//! Meta's errors: the Graph error body, its classification, user explanations in German and
//! English, and transport failures.

use std::fmt;

use serde_json::Value;

use crate::json::{boolean, int, object, string};

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Temporary trouble at Meta: retry with backoff.
    Retry,
    /// A rate limit: retry later, slower.
    Throttled,
    /// The 24-hour customer service window is closed: send an approved template instead.
    WindowClosed,
    /// The token is invalid, expired or lacks a permission: reconnect the tenant.
    Reauthenticate,
    /// The two-step verification PIN is wrong or was guessed too often.
    Pin,
    /// The phone number is not (or not correctly) registered with the Cloud API.
    Registration,
    /// The business has no valid payment method or is not eligible.
    Payment,
    /// The template is missing, paused, disabled or its parameters do not fit.
    Template,
    /// Retrying the same request will fail again.
    Permanent,
}

impl ErrorClass {
    /// A stable name, e.g. for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Throttled => "throttled",
            Self::WindowClosed => "window_closed",
            Self::Reauthenticate => "reauthenticate",
            Self::Pin => "pin",
            Self::Registration => "registration",
            Self::Payment => "payment",
            Self::Template => "template",
            Self::Permanent => "permanent",
        }
    }

    /// Whether repeating the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Retry | Self::Throttled)
    }
}

/// The language of a user explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// German, the product's default.
    #[default]
    De,
    /// English.
    En,
}

/// What this crate knows about one of Meta's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    /// A stable key, also usable as a translation key, e.g. `meta_error.131047`.
    pub key: &'static str,
    /// What to do.
    pub class: ErrorClass,
    /// A short explanation for users, in German.
    pub de: &'static str,
    /// A short explanation for users, in English.
    pub en: &'static str,
}

impl ErrorInfo {
    /// The explanation in `lang`.
    pub fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::De => self.de,
            Lang::En => self.en,
        }
    }
}

macro_rules! info {
    ($key:literal, $class:ident, $de:literal, $en:literal) => {
        ErrorInfo {
            key: concat!("meta_error.", $key),
            class: ErrorClass::$class,
            de: $de,
            en: $en,
        }
    };
}

const UNKNOWN: ErrorInfo = info!(
    "unknown",
    Permanent,
    "Meta hat die Anfrage mit einem unbekannten Fehler abgelehnt.",
    "Meta rejected the request with an unknown error."
);

/// Everything known about `code`; `None` for codes outside Meta's table.
pub fn error_info(code: i64) -> Option<ErrorInfo> {
    Some(match code {
        0 => info!(
            "0",
            Reauthenticate,
            "Die Anmeldung bei Meta ist abgelaufen oder wurde widerrufen. Bitte WhatsApp neu verbinden.",
            "The login with Meta expired or was revoked. Please reconnect WhatsApp."
        ),
        1 => info!(
            "1",
            Retry,
            "Meta meldet einen unbekannten, vermutlich vorübergehenden Fehler. Wir versuchen es erneut.",
            "Meta reports an unknown, probably temporary error. We will retry."
        ),
        2 => info!(
            "2",
            Retry,
            "Der Dienst von Meta ist vorübergehend nicht erreichbar. Wir versuchen es erneut.",
            "Meta's service is temporarily unavailable. We will retry."
        ),
        3 => info!(
            "3",
            Permanent,
            "Diese Funktion ist für das Konto bei Meta nicht freigeschaltet.",
            "This capability is not enabled for the account at Meta."
        ),
        4 => info!(
            "4",
            Throttled,
            "Zu viele Anfragen an Meta in kurzer Zeit. Wir versuchen es später erneut.",
            "Too many requests to Meta in a short time. We will retry later."
        ),
        10 => info!(
            "10",
            Reauthenticate,
            "Meta hat eine benötigte Berechtigung verweigert oder entzogen. Bitte WhatsApp neu verbinden.",
            "Meta denied or removed a required permission. Please reconnect WhatsApp."
        ),
        100 => info!(
            "100",
            Permanent,
            "Meta hat einen ungültigen oder nicht unterstützten Wert in der Anfrage abgelehnt.",
            "Meta rejected an invalid or unsupported value in the request."
        ),
        190 => info!(
            "190",
            Reauthenticate,
            "Der Zugangsschlüssel für Meta ist abgelaufen oder ungültig. Bitte WhatsApp neu verbinden.",
            "The Meta access token has expired or is invalid. Please reconnect WhatsApp."
        ),
        200..=299 => info!(
            "200",
            Reauthenticate,
            "Der App fehlt eine Berechtigung bei Meta oder sie wurde entzogen. Bitte WhatsApp neu verbinden.",
            "The app lacks a permission at Meta or it was removed. Please reconnect WhatsApp."
        ),
        368 => info!(
            "368",
            Permanent,
            "Das Konto wurde von Meta wegen Richtlinienverstößen vorübergehend gesperrt.",
            "Meta temporarily blocked the account for policy violations."
        ),
        80007 => info!(
            "80007",
            Throttled,
            "Das Anfragelimit des WhatsApp-Business-Kontos ist erreicht. Wir versuchen es später erneut.",
            "The WhatsApp Business Account's rate limit is reached. We will retry later."
        ),
        130429 => info!(
            "130429",
            Throttled,
            "Der Nachrichtendurchsatz dieser Nummer ist erreicht. Wir senden etwas später.",
            "This number's message throughput is reached. We will send a little later."
        ),
        130472 => info!(
            "130472",
            Permanent,
            "Die Nachricht wurde nicht gesendet, weil die Nummer des Kunden Teil eines Meta-Experiments ist.",
            "The message was not sent because the customer's number is part of a Meta experiment."
        ),
        130497 => info!(
            "130497",
            Permanent,
            "Das Unternehmen darf Kunden in diesem Land keine Nachrichten senden.",
            "The business may not message customers in this country."
        ),
        131000 => info!(
            "131000",
            Retry,
            "Bei Meta ist ein unbekannter Fehler aufgetreten. Wir versuchen es erneut.",
            "Something went wrong at Meta. We will retry."
        ),
        131005 => info!(
            "131005",
            Reauthenticate,
            "Meta hat den Zugriff verweigert. Bitte die Berechtigungen prüfen und WhatsApp neu verbinden.",
            "Meta denied access. Please check the permissions and reconnect WhatsApp."
        ),
        131008 => info!(
            "131008",
            Permanent,
            "In der Anfrage fehlt eine erforderliche Angabe.",
            "A required parameter is missing from the request."
        ),
        131009 => info!(
            "131009",
            Permanent,
            "Ein Wert in der Anfrage ist ungültig.",
            "A value in the request is invalid."
        ),
        131016 => info!(
            "131016",
            Retry,
            "Ein Dienst von Meta ist vorübergehend überlastet. Wir versuchen es erneut.",
            "A Meta service is temporarily overloaded. We will retry."
        ),
        131021 => info!(
            "131021",
            Permanent,
            "Absender und Empfänger sind dieselbe Nummer.",
            "Sender and recipient are the same number."
        ),
        131026 => info!(
            "131026",
            Permanent,
            "Die Nachricht konnte nicht zugestellt werden, z. B. weil die Nummer nicht bei WhatsApp ist oder die App veraltet ist.",
            "The message could not be delivered, e.g. because the number is not on WhatsApp or the app is outdated."
        ),
        131030 => info!(
            "131030",
            Permanent,
            "Die Empfängernummer steht nicht auf der Liste erlaubter Testnummern.",
            "The recipient is not in the list of allowed test numbers."
        ),
        131031 => info!(
            "131031",
            Permanent,
            "Das WhatsApp-Business-Konto ist gesperrt oder eingeschränkt, oder Meta konnte Angaben wie die PIN nicht prüfen.",
            "The WhatsApp Business Account is locked or restricted, or Meta could not verify data such as the PIN."
        ),
        131037 => info!(
            "131037",
            Permanent,
            "Für diese Nummer ist noch kein Anzeigename genehmigt.",
            "This number has no approved display name yet."
        ),
        131042 => info!(
            "131042",
            Payment,
            "Bei Meta fehlt eine gültige Zahlungsmethode oder das Konto ist nicht berechtigt. Bitte im WhatsApp Manager prüfen.",
            "Meta has no valid payment method or the account is not eligible. Please check WhatsApp Manager."
        ),
        131045 => info!(
            "131045",
            Registration,
            "Die Nummer ist nicht korrekt registriert. Bitte die Registrierung wiederholen.",
            "The number is not correctly registered. Please register it again."
        ),
        131047 => info!(
            "131047",
            WindowClosed,
            "Der Kunde hat seit über 24 Stunden nicht geschrieben. Bitte eine freigegebene Vorlage senden.",
            "The customer has not written for more than 24 hours. Please send an approved template."
        ),
        131048 => info!(
            "131048",
            Throttled,
            "Zu viele Nachrichten wurden als Spam gemeldet oder blockiert; Meta drosselt diese Nummer.",
            "Too many messages were reported or blocked as spam; Meta is throttling this number."
        ),
        131049 => info!(
            "131049",
            Permanent,
            "Meta hat die Marketing-Nachricht nicht zugestellt, um die Nutzer nicht zu überlasten. Frühestens in 24 Stunden erneut versuchen.",
            "Meta did not deliver the marketing message to protect user engagement. Try again in 24 hours at the earliest."
        ),
        131050 => info!(
            "131050",
            Permanent,
            "Der Kunde hat Marketing-Nachrichten dieses Unternehmens abbestellt.",
            "The customer stopped marketing messages from this business."
        ),
        131051 => info!(
            "131051",
            Permanent,
            "Dieser Nachrichtentyp wird nicht unterstützt.",
            "This message type is not supported."
        ),
        131052 => info!(
            "131052",
            Permanent,
            "Die Mediendatei des Kunden konnte nicht heruntergeladen werden.",
            "The customer's media file could not be downloaded."
        ),
        131053 => info!(
            "131053",
            Permanent,
            "Die Mediendatei konnte nicht hochgeladen werden; Typ oder Größe werden nicht unterstützt.",
            "The media file could not be uploaded; its type or size is not supported."
        ),
        131056 => info!(
            "131056",
            Throttled,
            "Zu viele Nachrichten an diesen Kunden in kurzer Zeit. Wir senden etwas später.",
            "Too many messages to this customer in a short time. We will send a little later."
        ),
        131057 => info!(
            "131057",
            Retry,
            "Das Konto ist bei Meta vorübergehend im Wartungsmodus. Wir versuchen es gleich erneut.",
            "The account is temporarily in maintenance mode at Meta. We will retry shortly."
        ),
        131060 => info!(
            "131060",
            Permanent,
            "Diese Nachricht wird von der Cloud API nicht unterstützt.",
            "This message is not supported by the Cloud API."
        ),
        131062 => info!(
            "131062",
            Permanent,
            "Diese Nachricht kann nicht an eine Benutzer-ID gesendet werden; bitte die Telefonnummer verwenden.",
            "This message cannot be sent to a user ID; please use the phone number."
        ),
        131063 => info!(
            "131063",
            Permanent,
            "Marketing-Vorlagen sind für dieses Konto in der Cloud API deaktiviert.",
            "Marketing templates are disabled for this account on the Cloud API."
        ),
        131064 => info!(
            "131064",
            Permanent,
            "Das Nachrichtenlimit wurde wegen falsch eingestufter Vorlagen erreicht.",
            "The messaging limit was reached because of template category violations."
        ),
        132000 => info!(
            "132000",
            Template,
            "Die Anzahl der Parameter passt nicht zur Vorlage.",
            "The number of parameters does not match the template."
        ),
        132001 => info!(
            "132001",
            Template,
            "Die Vorlage existiert in dieser Sprache nicht oder ist nicht freigegeben.",
            "The template does not exist in this language or is not approved."
        ),
        132005 => info!(
            "132005",
            Template,
            "Der Text der ausgefüllten Vorlage ist zu lang.",
            "The filled-in template text is too long."
        ),
        132007 => info!(
            "132007",
            Template,
            "Der Inhalt verstößt gegen die Formatregeln der Vorlage.",
            "The content violates the template's format rules."
        ),
        132008 => info!(
            "132008",
            Template,
            "Ein Parameterwert der Vorlage ist ungültig.",
            "A template parameter value is invalid."
        ),
        132012 => info!(
            "132012",
            Template,
            "Ein Parameter hat nicht das Format, das die Vorlage erwartet.",
            "A parameter does not have the format the template expects."
        ),
        132015 => info!(
            "132015",
            Template,
            "Die Vorlage ist wegen schlechter Qualität pausiert.",
            "The template is paused because of low quality."
        ),
        132016 => info!(
            "132016",
            Template,
            "Die Vorlage wurde nach wiederholten Pausen dauerhaft deaktiviert.",
            "The template was disabled after repeated pauses."
        ),
        132068 => info!(
            "132068",
            Permanent, "Der Flow ist blockiert.", "The flow is blocked."
        ),
        132069 => info!(
            "132069",
            Throttled,
            "Der Flow wurde zu oft gesendet und ist gedrosselt.",
            "The flow was sent too often and is throttled."
        ),
        133000 => info!(
            "133000",
            Registration,
            "Eine frühere Abmeldung der Nummer ist unvollständig. Bitte erneut abmelden und dann registrieren.",
            "An earlier deregistration of the number is incomplete. Deregister again, then register."
        ),
        133004 => info!(
            "133004",
            Retry,
            "Der Registrierungsdienst von Meta ist vorübergehend nicht erreichbar. Wir versuchen es erneut.",
            "Meta's registration service is temporarily unavailable. We will retry."
        ),
        133005 => info!(
            "133005",
            Pin,
            "Die PIN stimmt nicht mit der Bestätigung in zwei Schritten dieser Nummer überein.",
            "The PIN does not match this number's two-step verification PIN."
        ),
        133006 => info!(
            "133006",
            Registration,
            "Die Nummer muss zuerst per SMS- oder Anruf-Code bestätigt werden.",
            "The number must first be verified with an SMS or voice code."
        ),
        133008 => info!(
            "133008",
            Pin,
            "Zu viele falsche PIN-Versuche. Bitte später erneut versuchen.",
            "Too many wrong PIN attempts. Please try again later."
        ),
        133009 => info!(
            "133009",
            Pin,
            "Die PIN wurde zu schnell hintereinander eingegeben. Bitte kurz warten.",
            "The PIN was entered too quickly. Please wait a moment."
        ),
        133010 => info!(
            "133010",
            Registration,
            "Die Nummer ist nicht bei der Cloud API registriert.",
            "The number is not registered with the Cloud API."
        ),
        133015 => info!(
            "133015",
            Registration,
            "Die Nummer wurde kürzlich gelöscht. Bitte einige Minuten warten und erneut registrieren.",
            "The number was recently deleted. Please wait a few minutes and register again."
        ),
        133016 => info!(
            "133016",
            Registration,
            "Zu viele Registrierungsversuche (höchstens 10 in 72 Stunden). Bitte später erneut versuchen.",
            "Too many registration attempts (at most 10 in 72 hours). Please try again later."
        ),
        135000 => info!(
            "135000",
            Permanent,
            "Meta hat die Anfrage wegen eines allgemeinen Fehlers abgelehnt.",
            "Meta rejected the request with a generic user error."
        ),
        137000 => info!(
            "137000",
            Permanent,
            "Die Identität des Kunden hat sich geändert; die Nachricht wurde nicht gesendet.",
            "The customer's identity changed; the message was not sent."
        ),
        _ => return None,
    })
}

/// The short user explanation of `code` in `lang`; a generic text for unknown codes.
pub fn explain(code: i64, lang: Lang) -> &'static str {
    error_info(code).unwrap_or(UNKNOWN).text(lang)
}

/// The stable key of `code`'s explanation (`meta_error.<code>` or `meta_error.unknown`).
pub fn error_key(code: i64) -> &'static str {
    error_info(code).unwrap_or(UNKNOWN).key
}

/// An error answer from the Graph API (`{"error": {...}}`) with its HTTP status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphError {
    /// The HTTP status of the response.
    pub http_status: u16,
    /// `error.code`; missing in some malformed bodies.
    pub code: Option<i64>,
    /// `error.error_subcode`.
    pub subcode: Option<i64>,
    /// `error.message`.
    pub message: Option<String>,
    /// `error.type`, e.g. `OAuthException`.
    pub error_type: Option<String>,
    /// `error.error_data.details`, the text Meta recommends acting on.
    pub details: Option<String>,
    /// `error.error_user_title`.
    pub user_title: Option<String>,
    /// `error.error_user_msg`.
    pub user_message: Option<String>,
    /// `error.is_transient`.
    pub is_transient: Option<bool>,
    /// `error.fbtrace_id`, for Meta support.
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Reads an error response body; anything unreadable still yields an error with the status.
    pub fn from_body(http_status: u16, body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match object(&value, "error") {
            Some(e) => Self::from_object(http_status, e),
            None => Self {
                http_status,
                message: match &value {
                    Value::Null => {
                        let text = String::from_utf8_lossy(body);
                        let text = text.trim();
                        (!text.is_empty()).then(|| text.chars().take(200).collect())
                    }
                    _ => string(&value, "message"),
                },
                ..Self::default()
            },
        }
    }

    /// Reads the object inside `{"error": ...}`.
    pub fn from_object(http_status: u16, e: &Value) -> Self {
        Self {
            http_status,
            code: int(e, "code"),
            subcode: int(e, "error_subcode"),
            message: string(e, "message"),
            error_type: string(e, "type"),
            details: object(e, "error_data").and_then(|d| string(d, "details")),
            user_title: string(e, "error_user_title"),
            user_message: string(e, "error_user_msg"),
            is_transient: boolean(e, "is_transient"),
            fbtrace_id: string(e, "fbtrace_id"),
        }
    }

    /// What to do about it: by code when Meta sent one, by HTTP status otherwise.
    pub fn class(&self) -> ErrorClass {
        if let Some(info) = self.code.and_then(error_info) {
            return info.class;
        }
        match self.http_status {
            429 => ErrorClass::Throttled,
            401 => ErrorClass::Reauthenticate,
            500..=599 => ErrorClass::Retry,
            _ if self.is_transient == Some(true) => ErrorClass::Retry,
            _ => ErrorClass::Permanent,
        }
    }

    /// The stable explanation key.
    pub fn key(&self) -> &'static str {
        self.code.map_or(UNKNOWN.key, error_key)
    }

    /// The explanation for users; for codes outside the table, the generic text followed by
    /// Meta's own words.
    pub fn explain(&self, lang: Lang) -> String {
        if let Some(info) = self.code.and_then(error_info) {
            return info.text(lang).to_owned();
        }
        let generic = UNKNOWN.text(lang);
        match self.meta_text() {
            Some(meta) => format!("{generic} ({meta})"),
            None => generic.to_owned(),
        }
    }

    /// Meta's most specific text: `error_user_msg`, `error_data.details` or `message`.
    pub fn meta_text(&self) -> Option<&str> {
        self.user_message
            .as_deref()
            .or(self.details.as_deref())
            .or(self.message.as_deref())
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph API error (HTTP {}", self.http_status)?;
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        if let Some(sub) = self.subcode {
            write!(f, ", subcode {sub}")?;
        }
        write!(f, ")")?;
        if let Some(text) = self.meta_text() {
            write!(f, ": {text}")?;
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {trace}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

/// Everything a Graph API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Meta answered with an error body or an error status.
    #[error(transparent)]
    Graph(Box<GraphError>),
    /// The request never reached Meta (DNS, connect, TLS, connect timeout): safe to repeat.
    #[error("request not sent: {0}")]
    NotSent(String),
    /// The request may have reached Meta but no complete answer came back (timeout or
    /// connection lost after sending): the outcome is unknown, so a send must not be repeated
    /// blindly.
    #[error("outcome unknown ({}): {reason}", if *.timed_out { "timeout" } else { "connection lost" })]
    OutcomeUnknown {
        /// Whether the request timed out (rather than the connection failing).
        timed_out: bool,
        /// The transport error, without the URL.
        reason: String,
    },
    /// Meta answered with success but the body is not what the call returns.
    #[error("unexpected response (HTTP {status}): {reason}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// What did not fit.
        reason: String,
    },
    /// The request could not be built (e.g. an id that is not a path segment).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        Self::Graph(Box::new(e))
    }
}

impl ApiError {
    /// What to do: Meta's classification, `Retry` for transport failures.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Graph(g) => g.class(),
            Self::NotSent(_) | Self::OutcomeUnknown { .. } => ErrorClass::Retry,
            Self::UnexpectedResponse { .. } | Self::InvalidRequest(_) => ErrorClass::Permanent,
        }
    }

    /// Whether Meta may have acted on the request although no success was seen.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown { .. } | Self::UnexpectedResponse { .. }
        )
    }

    /// Meta's error, if it answered with one.
    pub fn graph(&self) -> Option<&GraphError> {
        match self {
            Self::Graph(g) => Some(g),
            _ => None,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        // Never keep the URL: the code exchange and debug_token carry secrets in the query.
        let e = e.without_url();
        let reason = error_chain(&e);
        if e.is_connect() || e.is_builder() {
            Self::NotSent(reason)
        } else if e.is_timeout() {
            Self::OutcomeUnknown {
                timed_out: true,
                reason,
            }
        } else if e.is_decode() {
            Self::UnexpectedResponse { status: 0, reason }
        } else {
            Self::OutcomeUnknown {
                timed_out: false,
                reason,
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
