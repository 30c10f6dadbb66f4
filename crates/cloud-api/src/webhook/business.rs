//! Template, account, phone-number and coexistence fields.

use serde_json::Value;

use super::messages::{Contact, MessageEcho, Metadata, UserPreference, WebhookError};
use crate::json::{array, get, int, object, string, strings};

/// An event of `message_template_status_update`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateStatusEvent {
    /// Approved; can be sent.
    Approved,
    /// Rejected; see `reason` and `rejection_info`.
    Rejected,
    /// Submitted, under review.
    Pending,
    /// Paused for low quality.
    Paused,
    /// Disabled after repeated pauses.
    Disabled,
    /// Flagged, may be paused or disabled.
    Flagged,
    /// Reinstated after a pause or appeal.
    Reinstated,
    /// Deleted.
    Deleted,
    /// Scheduled for deletion.
    PendingDeletion,
    /// Archived.
    Archived,
    /// Unarchived.
    Unarchived,
    /// Under appeal.
    InAppeal,
    /// Template creation limit exceeded.
    LimitExceeded,
    /// Locked.
    Locked,
    /// An event this crate does not know.
    Other(String),
}

impl TemplateStatusEvent {
    fn parse(s: &str) -> Self {
        match s {
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "PENDING" => Self::Pending,
            "PAUSED" => Self::Paused,
            "DISABLED" => Self::Disabled,
            "FLAGGED" => Self::Flagged,
            "REINSTATED" => Self::Reinstated,
            "DELETED" => Self::Deleted,
            "PENDING_DELETION" => Self::PendingDeletion,
            "ARCHIVED" => Self::Archived,
            "UNARCHIVED" => Self::Unarchived,
            "IN_APPEAL" => Self::InAppeal,
            "LIMIT_EXCEEDED" => Self::LimitExceeded,
            "LOCKED" => Self::Locked,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// `message_template_status_update`: a template was approved, rejected, paused …
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateStatusUpdate {
    /// What happened; `None` when `event` is missing.
    pub event: Option<TemplateStatusEvent>,
    /// The template id (a number on the wire, kept as a string).
    pub message_template_id: Option<String>,
    /// The template name.
    pub message_template_name: Option<String>,
    /// The template language, e.g. `de`.
    pub message_template_language: Option<String>,
    /// `NONE`, `INVALID_FORMAT`, `PROMOTIONAL` … or missing.
    pub reason: Option<String>,
    /// The template category.
    pub message_template_category: Option<String>,
    /// `rejection_info.reason`.
    pub rejection_reason: Option<String>,
    /// `rejection_info.recommendation`.
    pub rejection_recommendation: Option<String>,
    /// `other_info.title`, e.g. `FIRST_PAUSE`.
    pub other_info_title: Option<String>,
    /// `other_info.description`.
    pub other_info_description: Option<String>,
    /// `disable_info.disable_date`.
    pub disable_date: Option<String>,
}

impl TemplateStatusUpdate {
    pub(crate) fn parse(v: &Value) -> Self {
        let rejection = object(v, "rejection_info");
        let other = object(v, "other_info");
        Self {
            event: string(v, "event").map(|e| TemplateStatusEvent::parse(&e)),
            message_template_id: string(v, "message_template_id"),
            message_template_name: string(v, "message_template_name"),
            message_template_language: string(v, "message_template_language"),
            reason: string(v, "reason"),
            message_template_category: string(v, "message_template_category"),
            rejection_reason: rejection.and_then(|r| string(r, "reason")),
            rejection_recommendation: rejection.and_then(|r| string(r, "recommendation")),
            other_info_title: other.and_then(|o| string(o, "title")),
            other_info_description: other.and_then(|o| string(o, "description")),
            disable_date: object(v, "disable_info").and_then(|d| string(d, "disable_date")),
        }
    }
}

/// `message_template_quality_update`: a template's quality score changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateQualityUpdate {
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    pub previous_quality_score: Option<String>,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    pub new_quality_score: Option<String>,
    /// The template id.
    pub message_template_id: Option<String>,
    /// The template name.
    pub message_template_name: Option<String>,
    /// The template language.
    pub message_template_language: Option<String>,
}

impl TemplateQualityUpdate {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            previous_quality_score: string(v, "previous_quality_score"),
            new_quality_score: string(v, "new_quality_score"),
            message_template_id: string(v, "message_template_id"),
            message_template_name: string(v, "message_template_name"),
            message_template_language: string(v, "message_template_language"),
        }
    }
}

/// `template_category_update`: Meta changed (or will change in 24 h) a template's category.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateCategoryUpdate {
    /// The template id.
    pub message_template_id: Option<String>,
    /// The template name.
    pub message_template_name: Option<String>,
    /// The template language.
    pub message_template_language: Option<String>,
    /// The category before the change.
    pub previous_category: Option<String>,
    /// The category now (or from the impending change).
    pub new_category: Option<String>,
    /// The category Meta considers correct (impending-change notices).
    pub correct_category: Option<String>,
}

impl TemplateCategoryUpdate {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            message_template_id: string(v, "message_template_id"),
            message_template_name: string(v, "message_template_name"),
            message_template_language: string(v, "message_template_language"),
            previous_category: string(v, "previous_category"),
            new_category: string(v, "new_category"),
            correct_category: string(v, "correct_category"),
        }
    }
}

/// An event of `account_update`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountUpdateEvent {
    /// The WABA was deleted.
    AccountDeleted,
    /// The WABA was restricted; see `restriction_info`.
    AccountRestriction,
    /// A policy violation; see `violation_info`.
    AccountViolation,
    /// The WABA was offboarded.
    AccountOffboarded,
    /// The WABA was reconnected.
    AccountReconnected,
    /// An ad account was linked.
    AdAccountLinked,
    /// Authentication-international pricing eligibility changed.
    AuthIntlPriceEligibilityUpdate,
    /// The business's primary location country was set.
    BusinessPrimaryLocationCountryUpdate,
    /// Banned, reinstated or scheduled for disabling; see `ban_info`.
    DisabledUpdate,
    /// Marketing Messages Lite terms were signed.
    MmLiteTermsSigned,
    /// A partner was added (the customer shared the WABA with us).
    PartnerAdded,
    /// Our app was installed on the WABA (Embedded Signup finished).
    PartnerAppInstalled,
    /// Our app was uninstalled.
    PartnerAppUninstalled,
    /// Partner-led business verification status changed.
    PartnerClientCertificationStatusUpdate,
    /// We were removed as partner; see `disconnection_info` for coexistence numbers.
    PartnerRemoved,
    /// The volume pricing tier changed.
    VolumeBasedPricingTierUpdate,
    /// An event this crate does not know (e.g. legacy `VERIFIED_ACCOUNT`).
    Other(String),
}

impl AccountUpdateEvent {
    fn parse(s: &str) -> Self {
        match s {
            "ACCOUNT_DELETED" => Self::AccountDeleted,
            "ACCOUNT_RESTRICTION" => Self::AccountRestriction,
            "ACCOUNT_VIOLATION" => Self::AccountViolation,
            "ACCOUNT_OFFBOARDED" => Self::AccountOffboarded,
            "ACCOUNT_RECONNECTED" => Self::AccountReconnected,
            "AD_ACCOUNT_LINKED" => Self::AdAccountLinked,
            "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE" => Self::AuthIntlPriceEligibilityUpdate,
            "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE" => {
                Self::BusinessPrimaryLocationCountryUpdate
            }
            "DISABLED_UPDATE" => Self::DisabledUpdate,
            "MM_LITE_TERMS_SIGNED" => Self::MmLiteTermsSigned,
            "PARTNER_ADDED" => Self::PartnerAdded,
            "PARTNER_APP_INSTALLED" => Self::PartnerAppInstalled,
            "PARTNER_APP_UNINSTALLED" => Self::PartnerAppUninstalled,
            "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE" => {
                Self::PartnerClientCertificationStatusUpdate
            }
            "PARTNER_REMOVED" => Self::PartnerRemoved,
            "VOLUME_BASED_PRICING_TIER_UPDATE" => Self::VolumeBasedPricingTierUpdate,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// `account_update`: something happened to a WABA or our access to it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountUpdate {
    /// What happened; `None` when `event` is missing.
    pub event: Option<AccountUpdateEvent>,
    /// The WABA concerned, for partner events (where `entry.id` is the partner's business).
    pub waba_info: Option<WabaInfo>,
    /// Ban state for `DISABLED_UPDATE`.
    pub ban_info: Option<BanInfo>,
    /// Restrictions for `ACCOUNT_RESTRICTION`.
    pub restriction_info: Vec<Restriction>,
    /// `violation_info.violation_type` for `ACCOUNT_VIOLATION`.
    pub violation_type: Option<String>,
    /// Why a coexistence number was disconnected (`PARTNER_REMOVED`).
    pub disconnection_info: Option<DisconnectionInfo>,
    /// Partner-led business verification result.
    pub partner_client_certification: Option<PartnerClientCertification>,
    /// `country` for `BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE`.
    pub country: Option<String>,
    /// `phone_number`, present on some events.
    pub phone_number: Option<String>,
    /// `volume_tier_info` as received.
    pub volume_tier_info: Option<Value>,
    /// `auth_international_rate_eligibility` as received.
    pub auth_international_rate_eligibility: Option<Value>,
}

/// The WABA an `account_update` concerns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WabaInfo {
    /// The WABA id.
    pub waba_id: Option<String>,
    /// The customer's business portfolio.
    pub owner_business_id: Option<String>,
    /// Our app id.
    pub partner_app_id: Option<String>,
    /// The multi-partner solution id.
    pub solution_id: Option<String>,
    /// Partner businesses of the solution.
    pub solution_partner_business_ids: Vec<String>,
    /// The linked ad account (`AD_ACCOUNT_LINKED`).
    pub ad_account_linked: Option<String>,
}

/// `ban_info` of a `DISABLED_UPDATE`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BanInfo {
    /// `DISABLE`, `REINSTATE` or `SCHEDULE_FOR_DISABLE`.
    pub waba_ban_state: Option<String>,
    /// A date in words, e.g. `April 17, 2025`.
    pub waba_ban_date: Option<String>,
}

/// One restriction of an `ACCOUNT_RESTRICTION`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Restriction {
    /// E.g. `RESTRICTED_BIZ_INITIATED_MESSAGING`.
    pub restriction_type: Option<String>,
    /// When it ends, unix seconds.
    pub expiration: Option<i64>,
}

/// Why and by whom a coexistence number was disconnected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DisconnectionInfo {
    /// E.g. `PRIMARY_INACTIVITY`.
    pub reason: Option<String>,
    /// E.g. `SYSTEM`, `USER`.
    pub initiated_by: Option<String>,
}

/// `partner_client_certification_info`: the outcome of partner-led business verification.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartnerClientCertification {
    /// The customer's business.
    pub client_business_id: Option<String>,
    /// E.g. `APPROVED`, `REJECTED`, `PENDING`.
    pub status: Option<String>,
    /// Reasons for rejection (`NONE` when approved).
    pub rejection_reasons: Vec<String>,
}

impl AccountUpdate {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            event: string(v, "event").map(|e| AccountUpdateEvent::parse(&e)),
            waba_info: object(v, "waba_info").map(|w| WabaInfo {
                waba_id: string(w, "waba_id"),
                owner_business_id: string(w, "owner_business_id"),
                partner_app_id: string(w, "partner_app_id"),
                solution_id: string(w, "solution_id"),
                solution_partner_business_ids: strings(w, "solution_partner_business_ids"),
                ad_account_linked: string(w, "ad_account_linked"),
            }),
            ban_info: object(v, "ban_info").map(|b| BanInfo {
                waba_ban_state: string(b, "waba_ban_state"),
                waba_ban_date: string(b, "waba_ban_date"),
            }),
            restriction_info: array(v, "restriction_info")
                .iter()
                .map(|r| Restriction {
                    restriction_type: string(r, "restriction_type"),
                    expiration: int(r, "expiration"),
                })
                .collect(),
            violation_type: object(v, "violation_info").and_then(|i| string(i, "violation_type")),
            disconnection_info: object(v, "disconnection_info").map(|d| DisconnectionInfo {
                reason: string(d, "reason"),
                initiated_by: string(d, "initiated_by"),
            }),
            partner_client_certification: object(v, "partner_client_certification_info").map(|p| {
                PartnerClientCertification {
                    client_business_id: string(p, "client_business_id"),
                    status: string(p, "status"),
                    rejection_reasons: strings(p, "rejection_reasons"),
                }
            }),
            country: string(v, "country"),
            phone_number: string(v, "phone_number"),
            volume_tier_info: get(v, "volume_tier_info").cloned(),
            auth_international_rate_eligibility: get(v, "auth_international_rate_eligibility")
                .cloned(),
        }
    }
}

/// `account_review_update`: Meta's review decision on a WABA.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountReviewUpdate {
    /// `APPROVED`, `REJECTED`, `PENDING` or `DEFERRED`.
    pub decision: Option<String>,
}

/// `phone_number_name_update`: the display-name review of a number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhoneNumberNameUpdate {
    /// The number concerned.
    pub display_phone_number: Option<String>,
    /// `APPROVED`, `DEFERRED`, `REJECTED` …
    pub decision: Option<String>,
    /// The name that was requested.
    pub requested_verified_name: Option<String>,
    /// Why it was rejected, or missing.
    pub rejection_reason: Option<String>,
}

/// `phone_number_quality_update`: throughput or messaging-limit changes of a number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhoneNumberQualityUpdate {
    /// The number concerned.
    pub display_phone_number: Option<String>,
    /// `ONBOARDING`, `THROUGHPUT_UPGRADE`, legacy `FLAGGED`, `UPGRADE` …
    pub event: Option<String>,
    /// The messaging limit tier now (being removed by Meta).
    pub current_limit: Option<String>,
    /// The messaging limit tier before.
    pub old_limit: Option<String>,
    /// The portfolio's daily limit (a number or a tier name on the wire).
    pub max_daily_conversations_per_business: Option<String>,
}

/// `business_capability_update`: limits of the business portfolio.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BusinessCapabilityUpdate {
    /// Unique users per 24 h outside the window; `-1` means unlimited.
    pub max_daily_conversations_per_business: Option<i64>,
    /// The per-number limit (v23 and older).
    pub max_daily_conversation_per_phone: Option<i64>,
    /// Numbers per portfolio.
    pub max_phone_numbers_per_business: Option<i64>,
    /// Numbers per WABA.
    pub max_phone_numbers_per_waba: Option<i64>,
}

/// `security`: the two-step PIN of a number changed or a reset was requested.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityUpdate {
    /// The number concerned.
    pub display_phone_number: Option<String>,
    /// `PIN_CHANGED`, `PIN_RESET_REQUEST`, `PIN_REQUEST_SUCCESS` …
    pub event: Option<String>,
    /// Who asked.
    pub requester: Option<String>,
}

/// `user_preferences`: customers stopped or resumed marketing messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserPreferencesValue {
    /// The business number.
    pub metadata: Option<Metadata>,
    /// The customers concerned.
    pub contacts: Vec<Contact>,
    /// The preference changes.
    pub user_preferences: Vec<UserPreference>,
}

/// `smb_message_echoes`: messages the business sent from the WhatsApp Business app.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmbMessageEchoes {
    /// The business number.
    pub metadata: Option<Metadata>,
    /// The customers concerned.
    pub contacts: Vec<Contact>,
    /// The echoed messages.
    pub message_echoes: Vec<MessageEcho>,
}

/// `smb_app_state_sync`: contacts added or removed in the WhatsApp Business app.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmbAppStateSync {
    /// The business number.
    pub metadata: Option<Metadata>,
    /// The synchronised contacts.
    pub state_sync: Vec<StateSyncItem>,
}

/// One contact of an app state sync.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateSyncItem {
    /// `contact`.
    pub kind: Option<String>,
    /// `contact.full_name`.
    pub full_name: Option<String>,
    /// `contact.first_name`.
    pub first_name: Option<String>,
    /// `contact.phone_number`.
    pub phone_number: Option<String>,
    /// `add` or `remove`.
    pub action: Option<String>,
    /// `metadata.timestamp`, unix seconds.
    pub timestamp: Option<i64>,
}

/// `history`: chat history shared from the WhatsApp Business app, in chunks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryValue {
    /// The business number.
    pub metadata: Option<Metadata>,
    /// The chunks.
    pub history: Vec<HistoryChunk>,
    /// Errors, e.g. 2593109 when the business declined sharing.
    pub errors: Vec<WebhookError>,
}

/// One chunk of shared history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryChunk {
    /// Phase 0, 1 or 2.
    pub phase: Option<i64>,
    /// The chunk's position in its phase.
    pub chunk_order: Option<i64>,
    /// Progress in percent.
    pub progress: Option<i64>,
    /// The chats.
    pub threads: Vec<HistoryThread>,
    /// Chunk-level errors.
    pub errors: Vec<WebhookError>,
}

/// One chat of shared history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryThread {
    /// The customer's id (phone number).
    pub id: Option<String>,
    /// The messages; echoes carry `to`, customers' messages do not.
    pub messages: Vec<HistoryMessage>,
}

/// One message of shared history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryMessage {
    /// The message (sent by the customer or by the business).
    pub echo: MessageEcho,
    /// `history_context.status`, e.g. `READ`.
    pub status: Option<String>,
}

pub(crate) fn parse_simple_account_review(v: &Value) -> AccountReviewUpdate {
    AccountReviewUpdate {
        decision: string(v, "decision"),
    }
}

pub(crate) fn parse_name_update(v: &Value) -> PhoneNumberNameUpdate {
    PhoneNumberNameUpdate {
        display_phone_number: string(v, "display_phone_number"),
        decision: string(v, "decision"),
        requested_verified_name: string(v, "requested_verified_name"),
        rejection_reason: string(v, "rejection_reason"),
    }
}

pub(crate) fn parse_quality_update(v: &Value) -> PhoneNumberQualityUpdate {
    PhoneNumberQualityUpdate {
        display_phone_number: string(v, "display_phone_number"),
        event: string(v, "event"),
        current_limit: string(v, "current_limit"),
        old_limit: string(v, "old_limit"),
        max_daily_conversations_per_business: string(v, "max_daily_conversations_per_business"),
    }
}

pub(crate) fn parse_capability_update(v: &Value) -> BusinessCapabilityUpdate {
    BusinessCapabilityUpdate {
        max_daily_conversations_per_business: int(v, "max_daily_conversations_per_business"),
        max_daily_conversation_per_phone: int(v, "max_daily_conversation_per_phone"),
        max_phone_numbers_per_business: int(v, "max_phone_numbers_per_business"),
        max_phone_numbers_per_waba: int(v, "max_phone_numbers_per_waba"),
    }
}

pub(crate) fn parse_security(v: &Value) -> SecurityUpdate {
    SecurityUpdate {
        display_phone_number: string(v, "display_phone_number"),
        event: string(v, "event"),
        requester: string(v, "requester"),
    }
}

pub(crate) fn parse_user_preferences(v: &Value) -> UserPreferencesValue {
    UserPreferencesValue {
        metadata: Metadata::parse_in(v),
        contacts: Contact::parse_all(v),
        user_preferences: array(v, "user_preferences")
            .iter()
            .map(UserPreference::parse)
            .collect(),
    }
}

pub(crate) fn parse_echoes(v: &Value) -> SmbMessageEchoes {
    SmbMessageEchoes {
        metadata: Metadata::parse_in(v),
        contacts: Contact::parse_all(v),
        message_echoes: array(v, "message_echoes")
            .iter()
            .map(MessageEcho::parse)
            .collect(),
    }
}

pub(crate) fn parse_state_sync(v: &Value) -> SmbAppStateSync {
    SmbAppStateSync {
        metadata: Metadata::parse_in(v),
        state_sync: array(v, "state_sync")
            .iter()
            .map(|s| {
                let contact = object(s, "contact");
                StateSyncItem {
                    kind: string(s, "type"),
                    full_name: contact.and_then(|c| string(c, "full_name")),
                    first_name: contact.and_then(|c| string(c, "first_name")),
                    phone_number: contact.and_then(|c| string(c, "phone_number")),
                    action: string(s, "action"),
                    timestamp: object(s, "metadata").and_then(|m| int(m, "timestamp")),
                }
            })
            .collect(),
    }
}

pub(crate) fn parse_history(v: &Value) -> HistoryValue {
    HistoryValue {
        metadata: Metadata::parse_in(v),
        history: array(v, "history")
            .iter()
            .map(|h| {
                let meta = object(h, "metadata");
                HistoryChunk {
                    phase: meta.and_then(|m| int(m, "phase")),
                    chunk_order: meta.and_then(|m| int(m, "chunk_order")),
                    progress: meta.and_then(|m| int(m, "progress")),
                    threads: array(h, "threads")
                        .iter()
                        .map(|t| HistoryThread {
                            id: string(t, "id"),
                            messages: array(t, "messages")
                                .iter()
                                .map(|m| HistoryMessage {
                                    echo: MessageEcho::parse(m),
                                    status: object(m, "history_context")
                                        .and_then(|c| string(c, "status")),
                                })
                                .collect(),
                        })
                        .collect(),
                    errors: WebhookError::parse_all(h),
                }
            })
            .collect(),
        errors: WebhookError::parse_all(v),
    }
}
