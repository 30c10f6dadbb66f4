//! Everything the sandbox knows — businesses, WABAs, numbers, templates, tokens, customers,
//! messages, pending reviews, queued webhooks — in one serialisable value, saved to the state
//! file so that a restarted demo keeps its sandbox.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::clock;
use crate::config::SandboxConfig;
use crate::ids::{self, IdGen};
use crate::{Error, Shared};

/// A Facebook user who signed in to the signup popup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FbUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub business_ids: Vec<String>,
}

/// A business portfolio.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Business {
    pub id: String,
    pub name: String,
    /// Meta's business `verification_status` (lowercase on the business node).
    pub verification_status: String,
    pub created_ms: i64,
}

/// A WhatsApp Business Account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waba {
    pub id: String,
    pub name: String,
    pub business_id: String,
    pub account_review_status: String,
    pub currency: String,
    pub timezone_id: String,
    pub message_template_namespace: String,
    pub subscribed_apps: Vec<SubscribedApp>,
    pub created_ms: i64,
}

/// An app subscribed to a WABA's webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscribedApp {
    pub app_id: String,
    pub override_callback_uri: Option<String>,
}

/// A business phone number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    pub waba_id: String,
    /// Digits only, with country code.
    pub number: String,
    pub verified_name: String,
    pub name_status: String,
    pub code_verification_status: String,
    pub status: String,
    pub quality_rating: String,
    pub is_on_biz_app: bool,
    pub meta_provided: bool,
    pub pin: Option<String>,
    pub register_calls: Vec<i64>,
    pub pending_code: Option<String>,
    pub throughput_mps: Option<u32>,
    pub webhook_configuration: Option<Value>,
    pub last_onboarded_ms: i64,
}

/// A message template (one name in one language).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub parameter_format: String,
    pub components: Value,
    pub quality_score: String,
    pub rejected_reason: String,
    pub created_ms: i64,
}

/// What kind of access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenKind {
    /// A business integration system user token from the code exchange.
    SystemUser,
    /// A token minted through the control API.
    User,
}

/// An access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub token: String,
    pub kind: TokenKind,
    pub app_id: String,
    pub user_id: String,
    pub waba_ids: Vec<String>,
    pub business_ids: Vec<String>,
    pub issued_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked: bool,
}

/// An Embedded Signup code, exchangeable once within its lifetime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupCode {
    pub code: String,
    pub token: String,
    pub created_ms: i64,
    pub used: bool,
}

/// Uploaded media.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Media {
    pub id: String,
    pub phone_number_id: String,
    pub mime_type: String,
    pub sha256: String,
    /// The bytes, hex-encoded so that the state file stays JSON.
    pub hex: String,
    pub created_ms: i64,
    /// Meta's ids expire: 7 days for a file in a webhook, 30 days for an upload
    /// (business-phone-numbers/media). An expired id is an unknown object.
    #[serde(default)]
    pub expires_ms: Option<i64>,
}

/// How long a media id from a webhook lives.
pub const INBOUND_MEDIA_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long an uploaded media id lives.
pub const UPLOADED_MEDIA_MS: i64 = 30 * 24 * 3600 * 1000;

impl World {
    /// A media object that exists now (not deleted, not expired).
    pub fn live_media(&self, id: &str) -> Option<&Media> {
        let now = self.now_ms();
        self.media.get(id).filter(|m| m.expires_ms.is_none_or(|e| now < e))
    }
}

/// A simulated WhatsApp user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub wa_id: String,
    pub name: String,
    pub username: Option<String>,
    /// A username user whose phone number Meta withholds from webhooks.
    pub hide_phone: bool,
    /// False: sends to this customer fail with 131026.
    pub reachable: bool,
}

/// One customer's thread with one business number.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Thread {
    pub last_inbound_ms: Option<i64>,
    /// When the customer last came from a click-to-WhatsApp ad.
    pub referral_ms: Option<i64>,
    /// End of the 72-hour free entry point window, once the business answered an ad referral.
    pub fep_until_ms: Option<i64>,
    /// When the business last messaged this customer by phone (phone is then not withheld).
    pub last_outbound_ms: Option<i64>,
}

/// A message the business sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outbound {
    pub wamid: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub input: String,
    pub wa_id: String,
    pub to_bsuid: bool,
    pub r#type: String,
    pub request: Value,
    pub template_category: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    pub created_ms: i64,
    pub pricing_type: String,
    pub pricing_category: String,
    pub fep: bool,
    pub statuses: Vec<StatusRecord>,
}

/// A status reported for an outbound message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRecord {
    pub status: String,
    pub at_ms: i64,
    pub error_code: Option<i64>,
}

/// A message a simulated customer sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inbound {
    pub wamid: String,
    pub phone_number_id: String,
    pub wa_id: String,
    pub r#type: String,
    pub at_ms: i64,
    pub message: Value,
}

/// What kind of thing Meta reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// The business portfolio's verification.
    BusinessVerification,
    /// The WABA's account review.
    WabaReview,
    /// The display name review.
    DisplayName,
    /// A template's review.
    Template,
}

/// A pending review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub kind: ReviewKind,
    pub target_id: String,
    pub due_ms: Option<i64>,
    pub created_ms: i64,
}

/// A timed event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Action {
    Deliver(String),
    Read(String),
    Fail { wamid: String, code: i64 },
    Review(String),
}

/// An event due at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scheduled {
    pub due_ms: i64,
    pub action: Action,
}

/// One webhook change waiting to be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    pub entry_id: String,
    pub field: String,
    pub value: Value,
    /// `entry[].time`; Meta sends it for account and template fields, not for `messages`.
    pub time: Option<i64>,
}

/// A webhook body being retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub id: u64,
    pub body: String,
    pub attempts: u32,
    pub next_ms: i64,
    pub duplicate: bool,
}

/// The webhook sender's queue and log.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WebhookQueue {
    pub url: Option<String>,
    #[serde(skip)]
    pub verified_url: Option<String>,
    #[serde(skip)]
    pub handshake_failures: u32,
    #[serde(skip)]
    pub handshake_next_ms: i64,
    pub pending: VecDeque<Update>,
    pub retrying: Vec<Batch>,
    #[serde(skip)]
    pub in_flight: usize,
    pub next_batch_id: u64,
    pub duplicate: bool,
    pub reorder: bool,
    pub log: VecDeque<crate::control::api::DeliveryAttempt>,
}

/// The world.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct World {
    pub ids: IdGen,
    pub clock_offset_ms: i64,
    pub users: BTreeMap<String, FbUser>,
    pub businesses: BTreeMap<String, Business>,
    pub wabas: BTreeMap<String, Waba>,
    pub numbers: BTreeMap<String, PhoneNumber>,
    pub templates: BTreeMap<String, Template>,
    pub tokens: BTreeMap<String, Token>,
    pub codes: BTreeMap<String, SignupCode>,
    pub media: BTreeMap<String, Media>,
    pub customers: BTreeMap<String, Customer>,
    /// Keyed by `phone_number_id/wa_id`.
    pub threads: BTreeMap<String, Thread>,
    pub outbound: Vec<Outbound>,
    pub inbound: Vec<Inbound>,
    pub reviews: BTreeMap<String, Review>,
    pub planned: Vec<crate::control::api::PlannedOutcome>,
    pub schedule: Vec<Scheduled>,
    pub faults: Vec<crate::control::api::Fault>,
    pub outage: Option<crate::control::api::Outage>,
    pub signups: BTreeMap<String, crate::signup::Session>,
    pub webhooks: WebhookQueue,
    pub window_refusal_sync: bool,
    pub read_after_ms: Option<i64>,
    pub delivered_after_ms: Option<i64>,
    #[serde(skip)]
    pub requests: VecDeque<crate::control::api::ReceivedRequest>,
    #[serde(skip)]
    pub sends_per_number: HashMap<String, VecDeque<i64>>,
    #[serde(skip)]
    pub pair_buckets: HashMap<String, (f64, i64)>,
}

impl World {
    fn new(config: &SandboxConfig) -> World {
        World {
            ids: IdGen::new(config.seed),
            webhooks: WebhookQueue { url: config.webhook_url.clone(), ..WebhookQueue::default() },
            window_refusal_sync: config.window_refusal_sync,
            delivered_after_ms: config.statuses.delivered_after.map(as_ms),
            read_after_ms: config.statuses.read_after.map(as_ms),
            ..World::default()
        }
    }

    /// Loads the state file if there is one, else seeds a new world.
    pub fn load_or_new(config: &SandboxConfig) -> Result<World, Error> {
        let Some(path) = &config.state_file else {
            return Ok(World::new(config));
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut world: World = serde_json::from_slice(&bytes).map_err(|err| Error::State {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
                // The configured callback URL wins over the saved one: the app may have moved.
                if config.webhook_url.is_some() {
                    world.webhooks.url = config.webhook_url.clone();
                }
                Ok(world)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(World::new(config)),
            Err(err) => Err(Error::State { path: path.clone(), reason: err.to_string() }),
        }
    }

    /// The sandbox's now, in milliseconds.
    pub fn now_ms(&self) -> i64 {
        clock::system_ms() + self.clock_offset_ms
    }

    pub fn set_webhook_url(&mut self, url: Option<String>) {
        self.webhooks.url = url;
        self.webhooks.verified_url = None;
        self.webhooks.handshake_failures = 0;
        self.webhooks.handshake_next_ms = 0;
    }

    /// Queues a webhook change for the app.
    pub fn enqueue(&mut self, entry_id: &str, field: &str, value: Value, with_time: bool) {
        let time = with_time.then(|| self.now_ms() / 1000);
        self.webhooks.pending.push_back(Update {
            entry_id: entry_id.to_string(),
            field: field.to_string(),
            value,
            time,
        });
    }

    pub fn schedule(&mut self, after_ms: i64, action: Action) {
        let due_ms = self.now_ms() + after_ms;
        self.schedule.push(Scheduled { due_ms, action });
    }

    pub fn new_business(&mut self, name: &str, verification_status: &str) -> String {
        let id = self.ids.object_id();
        let now = self.now_ms();
        self.businesses.insert(
            id.clone(),
            Business {
                id: id.clone(),
                name: name.to_string(),
                verification_status: verification_status.to_string(),
                created_ms: now,
            },
        );
        id
    }

    pub fn new_waba(&mut self, business_id: &str, name: &str, review: &str) -> String {
        let id = self.ids.object_id();
        let namespace = format!("{}_{}", self.ids.alnum(8).to_lowercase(), self.ids.alnum(4).to_lowercase());
        let now = self.now_ms();
        self.wabas.insert(
            id.clone(),
            Waba {
                id: id.clone(),
                name: name.to_string(),
                business_id: business_id.to_string(),
                account_review_status: review.to_string(),
                currency: "EUR".into(),
                timezone_id: "129".into(),
                message_template_namespace: namespace,
                subscribed_apps: Vec::new(),
                created_ms: now,
            },
        );
        id
    }

    pub fn new_number(&mut self, waba_id: &str, number: &str, verified_name: &str) -> String {
        let id = self.ids.object_id();
        let now = self.now_ms();
        self.numbers.insert(
            id.clone(),
            PhoneNumber {
                id: id.clone(),
                waba_id: waba_id.to_string(),
                number: digits(number),
                verified_name: verified_name.to_string(),
                name_status: "PENDING_REVIEW".into(),
                code_verification_status: "NOT_VERIFIED".into(),
                status: "PENDING".into(),
                quality_rating: "UNKNOWN".into(),
                is_on_biz_app: false,
                meta_provided: false,
                pin: None,
                register_calls: Vec::new(),
                pending_code: None,
                throughput_mps: None,
                webhook_configuration: None,
                last_onboarded_ms: now,
            },
        );
        id
    }

    /// A Meta-provided US number (+1 555 …), unique in this world.
    pub fn meta_number(&mut self) -> String {
        loop {
            let candidate = format!("1555{}", self.ids.digits(7));
            if !self.numbers.values().any(|n| n.number == candidate) {
                return candidate;
            }
        }
    }

    pub fn new_token(&mut self, app_id: &str, user_id: &str, waba_ids: Vec<String>, ttl: Option<Duration>) -> String {
        let token = self.ids.token();
        let now = self.now_ms();
        let business_ids = waba_ids
            .iter()
            .filter_map(|w| self.wabas.get(w).map(|w| w.business_id.clone()))
            .collect();
        self.tokens.insert(
            token.clone(),
            Token {
                token: token.clone(),
                kind: TokenKind::SystemUser,
                app_id: app_id.to_string(),
                user_id: user_id.to_string(),
                waba_ids,
                business_ids,
                issued_ms: now,
                expires_ms: ttl.map(|ttl| now + as_ms(ttl)),
                revoked: false,
            },
        );
        token
    }

    /// The customer's business-scoped user id for the business that owns this number:
    /// `CC.<digits>`, stable for the (portfolio, user) pair as Meta's is.
    pub fn bsuid(&self, phone_number_id: &str, wa_id: &str) -> String {
        let business = self
            .numbers
            .get(phone_number_id)
            .and_then(|n| self.wabas.get(&n.waba_id))
            .map(|w| w.business_id.as_str())
            .unwrap_or("");
        let h = ids::hash_str(self.ids.seed, &format!("{business}/{wa_id}"));
        format!("{}.{}", country_of(wa_id), h % 10_000_000_000_000_000_000u64)
    }

    /// Finds the customer a BSUID belongs to, for sends with `recipient`.
    pub fn customer_by_bsuid(&self, phone_number_id: &str, bsuid: &str) -> Option<String> {
        self.customers
            .keys()
            .find(|wa_id| self.bsuid(phone_number_id, wa_id) == bsuid)
            .cloned()
    }

    pub fn thread(&mut self, phone_number_id: &str, wa_id: &str) -> &mut Thread {
        self.threads.entry(format!("{phone_number_id}/{wa_id}")).or_default()
    }

    pub fn thread_ref(&self, phone_number_id: &str, wa_id: &str) -> Option<&Thread> {
        self.threads.get(&format!("{phone_number_id}/{wa_id}"))
    }

    pub fn customer(&mut self, wa_id: &str) -> &mut Customer {
        self.customers.entry(wa_id.to_string()).or_insert_with(|| Customer {
            wa_id: wa_id.to_string(),
            name: format!("Kunde {}", &wa_id[wa_id.len().saturating_sub(4)..]),
            username: None,
            hide_phone: false,
            reachable: true,
        })
    }

}

/// Keeps only the digits of a phone number.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Formats digits the way the Graph API shows `display_phone_number` (international format):
/// `+1 555-123-4567` in the North American plan; elsewhere the country code, then the area or
/// mobile prefix, then the rest — `+49 30 1234567` (Berlin, Hamburg, Frankfurt and Munich have
/// two-digit area codes), `+49 151 23456789`, `+43 664 1234567`. Other countries' prefixes
/// are taken as three digits (the sandbox does not carry every numbering plan).
pub fn display_number(number: &str) -> String {
    let cc_len = if number.starts_with('1') || number.starts_with('7') {
        1
    } else if ["20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"]
        .iter()
        .any(|cc| number.starts_with(cc))
    {
        2
    } else {
        3
    };
    let (cc, rest) = number.split_at(cc_len.min(number.len()));
    if cc == "1" && rest.len() == 10 {
        return format!("+1 {}-{}-{}", &rest[..3], &rest[3..6], &rest[6..]);
    }
    let prefix = if cc == "49" && ["30", "40", "69", "89"].iter().any(|a| rest.starts_with(a)) { 2 } else { 3 };
    if rest.len() > prefix + 2 {
        let (a, b) = rest.split_at(prefix);
        format!("+{cc} {a} {b}")
    } else {
        format!("+{cc} {rest}")
    }
}

/// The ISO country of a phone number, for the BSUID prefix and pricing market.
pub fn country_of(wa_id: &str) -> &'static str {
    const CODES: &[(&str, &str)] = &[
        ("1", "US"),
        ("31", "NL"),
        ("33", "FR"),
        ("34", "ES"),
        ("39", "IT"),
        ("41", "CH"),
        ("43", "AT"),
        ("44", "GB"),
        ("48", "PL"),
        ("49", "DE"),
        ("52", "MX"),
        ("55", "BR"),
        ("91", "IN"),
        ("972", "IL"),
    ];
    CODES
        .iter()
        .filter(|(cc, _)| wa_id.starts_with(cc))
        .max_by_key(|(cc, _)| cc.len())
        .map(|(_, iso)| *iso)
        .unwrap_or("US")
}

pub fn as_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Writes the state file now (atomically: a temporary file renamed over it).
pub fn save_now(shared: &Shared) {
    let Some(path) = &shared.config.state_file else {
        return;
    };
    let bytes = match serde_json::to_vec_pretty(&*shared.world()) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(%err, "cannot serialise sandbox state");
            return;
        }
    };
    let tmp = path.with_extension("json.tmp");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(err) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        tracing::error!(%err, path = %path.display(), "cannot save sandbox state");
    }
}

/// Saves the state shortly after changes, coalescing bursts.
pub async fn persister(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    if shared.config.state_file.is_none() {
        return;
    }
    loop {
        tokio::select! {
            () = shared.save_wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || save_now(&shared)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::display_number;

    #[test]
    fn numbers_are_shown_in_international_format() {
        assert_eq!(display_number("15551234567"), "+1 555-123-4567");
        assert_eq!(display_number("49309876543"), "+49 30 9876543");
        assert_eq!(display_number("4915123456789"), "+49 151 23456789");
        assert_eq!(display_number("436641234567"), "+43 664 1234567");
        assert_eq!(display_number("4930"), "+49 30");
    }
}
