//! How a sandbox is set up: credentials, delays, webhook schedule, limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything a sandbox needs to start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Listen address, e.g. `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The app's webhook callback URL; `None` sends nothing.
    pub webhook_url: Option<String>,
    /// The Meta app id (`META_APP_ID`).
    pub app_id: String,
    /// The Meta app secret used to sign webhooks and check code exchanges.
    pub app_secret: String,
    /// The Facebook Login for Business configuration id (`META_CONFIG_ID`).
    pub config_id: String,
    /// The verify token sent in the webhook GET handshake.
    pub verify_token: String,
    /// Where the state is saved as JSON; `None` keeps it in memory.
    pub state_file: Option<PathBuf>,
    /// Seed of every id, token and code the sandbox makes.
    pub seed: u64,
    /// How long Meta's reviews take.
    pub delays: Delays,
    /// How webhooks are sent.
    pub webhooks: WebhookSettings,
    /// When `delivered` and `read` statuses follow a send.
    pub statuses: StatusTiming,
    /// The Tech Provider's business portfolio id, `entry.id` of partner `account_update` events.
    pub partner_business_id: String,
    /// Messages per second per number before 130429.
    pub default_throughput_mps: u32,
    /// The per-customer pair rate limit (131056).
    pub pair_limit: PairLimit,
    /// From this unix time on, service messages and in-window utility templates are charged
    /// (`type: regular`); Meta announced 2026-10-01 without documenting the webhook fields.
    pub paid_service_from: i64,
    /// Lifetime of the Embedded Signup code.
    pub code_ttl: Duration,
    /// Lifetime of business tokens from the code exchange; `None` = never expire.
    pub token_ttl: Option<Duration>,
    /// Refuse out-of-window free-form sends synchronously (true) or accept them and report a
    /// failed status (false); Meta does both. Changeable through the control API.
    pub window_refusal_sync: bool,
}

/// Delays of Meta's reviews and verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delays {
    /// The business portfolio's `business_verification_status`.
    pub business_verification: Delay,
    /// The WABA's `account_review_status`.
    pub waba_review: Delay,
    /// The display name's `name_status`.
    pub display_name_review: Delay,
    /// Each template's review.
    pub template_review: Delay,
}

/// How long one kind of review stays pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    /// Decided at once.
    Immediate,
    /// Decided after this long.
    After(Duration),
    /// Pending until completed through the control API.
    Manual,
}

/// How the webhook sender behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Waits between attempts after a failure; when exhausted the batch is dropped, as Meta
    /// drops after 7 days.
    pub retry_schedule: Vec<Duration>,
    /// At most this many updates per POST (Meta: up to 1000).
    pub max_batch: usize,
    /// How long the sender collects updates before it sends a batch.
    pub batch_window: Duration,
    /// Timeout of one delivery attempt.
    pub timeout: Duration,
}

/// When statuses follow an accepted send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusTiming {
    /// `delivered` after this long; `None` = only on command.
    pub delivered_after: Option<Duration>,
    /// `read` after this long (counted from delivery); `None` = only on command.
    pub read_after: Option<Duration>,
}

/// The pair rate limit: a burst, then one message per interval to the same customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairLimit {
    /// Messages allowed at once.
    pub burst: u32,
    /// One more message allowed per interval.
    pub interval: Duration,
}

/// 2026-10-01T00:00:00Z, when Meta starts charging service and in-window utility messages.
pub const PAID_SERVICE_FROM: i64 = 1_790_812_800;

impl SandboxConfig {
    /// A sandbox for `wabridge demo`: a loopback port of its own, reviews that take seconds,
    /// and statuses that arrive like a phone's.
    pub fn demo(webhook_url: Option<String>, state_file: Option<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url,
            app_id: "1000000000000001".into(),
            app_secret: "sandbox-app-secret".into(),
            config_id: "2000000000000002".into(),
            verify_token: "sandbox-verify-token".into(),
            state_file,
            seed: 2026,
            delays: Delays {
                business_verification: Delay::After(Duration::from_secs(20)),
                waba_review: Delay::After(Duration::from_secs(10)),
                display_name_review: Delay::After(Duration::from_secs(30)),
                template_review: Delay::After(Duration::from_secs(15)),
            },
            webhooks: WebhookSettings {
                retry_schedule: [1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 24 * 3600]
                    .into_iter()
                    .map(Duration::from_secs)
                    .collect(),
                max_batch: 100,
                batch_window: Duration::from_millis(50),
                timeout: Duration::from_secs(10),
            },
            statuses: StatusTiming {
                delivered_after: Some(Duration::from_secs(1)),
                read_after: Some(Duration::from_secs(4)),
            },
            partner_business_id: "3000000000000003".into(),
            default_throughput_mps: 80,
            pair_limit: PairLimit { burst: 45, interval: Duration::from_secs(6) },
            paid_service_from: PAID_SERVICE_FROM,
            code_ttl: Duration::from_secs(30),
            token_ttl: None,
            window_refusal_sync: true,
        }
    }

    /// A sandbox for tests: in memory, reviews decided at once, `delivered` at once and `read`
    /// only on command, a fast retry schedule.
    pub fn for_tests(webhook_url: Option<String>) -> SandboxConfig {
        SandboxConfig {
            delays: Delays {
                business_verification: Delay::Immediate,
                waba_review: Delay::Immediate,
                display_name_review: Delay::Immediate,
                template_review: Delay::Immediate,
            },
            webhooks: WebhookSettings {
                retry_schedule: [20, 50, 100, 200, 400].into_iter().map(Duration::from_millis).collect(),
                max_batch: 100,
                batch_window: Duration::ZERO,
                timeout: Duration::from_secs(5),
            },
            statuses: StatusTiming { delivered_after: Some(Duration::ZERO), read_after: None },
            ..SandboxConfig::demo(webhook_url, None)
        }
    }
}

impl Delays {
    /// Every review pending until completed through the control API.
    pub fn manual() -> Delays {
        Delays {
            business_verification: Delay::Manual,
            waba_review: Delay::Manual,
            display_name_review: Delay::Manual,
            template_review: Delay::Manual,
        }
    }
}
