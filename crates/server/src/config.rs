//! Settings: defaults, then an optional TOML file, then the environment (which wins).
//!
//! Every setting is one row of [`SETTINGS`]; the README's table is the same list. Missing
//! required settings are reported together, by name, so an operator fixes them in one go.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::crypto::Keyring;

/// One configurable setting: its environment name, default and meaning.
pub struct SettingSpec {
    /// Environment variable (and TOML key, case-insensitive).
    pub name: &'static str,
    /// Default value; `None` means required in `serve`.
    pub default: Option<&'static str>,
    /// What it does, for the README and `--help`.
    pub help: &'static str,
}

/// Every setting wabridge reads.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec { name: "DATABASE_URL", default: Some("sqlite:./wabridge-data/wabridge.db"), help: "sqlite:PATH (embedded, default) or postgres://… (several instances)" },
    SettingSpec { name: "META_APP_ID", default: None, help: "Meta app id (Embedded Signup, code exchange)" },
    SettingSpec { name: "META_APP_SECRET", default: None, help: "Meta app secret: webhook signatures, code exchange" },
    SettingSpec { name: "META_CONFIG_ID", default: None, help: "Embedded Signup login configuration id" },
    SettingSpec { name: "META_VERIFY_TOKEN", default: None, help: "token Meta echoes in the webhook verification handshake" },
    SettingSpec { name: "META_GRAPH_URL", default: Some("https://graph.facebook.com"), help: "Graph API base URL" },
    SettingSpec { name: "META_GRAPH_VERSION", default: Some("v26.0"), help: "Graph API version" },
    SettingSpec { name: "META_SDK_URL", default: Some("https://connect.facebook.net/en_US/sdk.js"), help: "Facebook JS SDK URL (its locale segment follows the reader's language)" },
    SettingSpec { name: "META_SIGNUP_ORIGINS", default: Some("facebook.com"), help: "comma-separated origins or host suffixes accepted for the signup popup's messages" },
    SettingSpec { name: "WABRIDGE_ENCRYPTION_KEY", default: None, help: "base64 32-byte key(s), comma-separated; the first encrypts, all decrypt (rotation)" },
    SettingSpec { name: "WABRIDGE_LISTEN", default: Some("0.0.0.0:8080"), help: "address to listen on" },
    SettingSpec { name: "WABRIDGE_PUBLIC_URL", default: Some(""), help: "external URL (https://… makes cookies Secure); empty: derived from the request" },
    SettingSpec { name: "WABRIDGE_PRODUCT_NAME", default: Some("Doards"), help: "product name shown in the UI" },
    SettingSpec { name: "WABRIDGE_META_GUIDE_URL", default: Some("https://doc.doards.com/meta-settings"), help: "guide to Meta's prerequisites, linked before LOGIN" },
    SettingSpec { name: "WABRIDGE_SUPPORT_CONTACT", default: Some("support@doards.com"), help: "how tenants reach support (shown when onboarding is locked after two failed attempts)" },
    SettingSpec { name: "WABRIDGE_ONBOARDING_POLL_SECS", default: Some("30"), help: "first wait before the Graph API is polled for a pending onboarding checklist (doubles up to an hour)" },
    SettingSpec { name: "WABRIDGE_DATA_DIR", default: Some("./wabridge-data"), help: "folder for local data (SQLite file, demo key)" },
    SettingSpec { name: "WABRIDGE_LOG", default: Some("info"), help: "log filter (tracing EnvFilter syntax)" },
    SettingSpec { name: "WABRIDGE_LOG_FORMAT", default: Some("auto"), help: "auto (JSON unless on a terminal), json or text" },
    SettingSpec { name: "WABRIDGE_SESSION_HOURS", default: Some("336"), help: "how long a sign-in lasts" },
    SettingSpec { name: "WABRIDGE_GRAPH_TIMEOUT_SECS", default: Some("30"), help: "timeout of a Graph API call; a send that times out is marked unknown, never repeated blindly" },
    SettingSpec { name: "WABRIDGE_NUMBER_THROUGHPUT", default: Some("80"), help: "messages per second per business number (Meta's default 80, up to 1000)" },
    SettingSpec { name: "WABRIDGE_OUTBOX_WORKERS", default: Some("4"), help: "outbox workers per instance" },
    SettingSpec { name: "WABRIDGE_SMTP_URL", default: Some(""), help: "smtp://host[:port] of a plain-SMTP relay for e-mails; empty: e-mails only appear on /mailbox" },
    SettingSpec { name: "WABRIDGE_MAIL_FROM", default: Some("wabridge@localhost"), help: "sender address of e-mails" },
    SettingSpec { name: "WABRIDGE_SIGN_IN_LIMIT", default: Some("5"), help: "failed sign-ins per e-mail address in 15 minutes before further attempts are refused" },
    SettingSpec { name: "WABRIDGE_RATE_CARD", default: Some(""), help: "path of a rate card CSV (format of rates/default.csv) replacing the built-in one" },
    SettingSpec { name: "WABRIDGE_OPERATOR_API_KEY", default: Some(""), help: "operator key for /api/v1 tenant and user administration; empty: disabled" },
    SettingSpec { name: "WABRIDGE_TEMPLATE_SYNC_SECS", default: Some("900"), help: "how often templates are read back from Meta (safety net for missed webhooks)" },
    SettingSpec { name: "WABRIDGE_MEDIA_DIR", default: Some(""), help: "directory for customers' and agents' files, mounted by every instance; empty: files are kept in the database" },
    SettingSpec { name: "WABRIDGE_MEDIA_RETENTION_DAYS", default: Some("0"), help: "days customers' and agents' files are kept (0: for ever, else at least 2); older ones are deleted from the database, directory or bucket, and their messages say so" },
    SettingSpec { name: "WABRIDGE_MEDIA_BUCKET", default: Some(""), help: "URL of an S3-compatible bucket for files (path-style https://s3.<region>.amazonaws.com/<bucket> or virtual-hosted); takes precedence over WABRIDGE_MEDIA_DIR" },
    SettingSpec { name: "WABRIDGE_MEDIA_BUCKET_REGION", default: Some("us-east-1"), help: "the bucket's region (signed into every request)" },
    SettingSpec { name: "WABRIDGE_MEDIA_BUCKET_ACCESS_KEY", default: Some(""), help: "access key id for the bucket" },
    SettingSpec { name: "WABRIDGE_MEDIA_BUCKET_SECRET_KEY", default: Some(""), help: "secret access key for the bucket (never logged)" },
    SettingSpec { name: "WABRIDGE_JOURNAL_RETENTION_DAYS", default: Some("30"), help: "days an applied webhook body stays in the journal (0: kept for ever); bodies support still sees or a handler still retries stay" },
];

/// The Meta app wabridge acts as, and where Meta (or the sandbox) is reached.
#[derive(Clone, Debug)]
pub struct MetaSettings {
    /// App id.
    pub app_id: String,
    /// App secret (signatures, code exchange).
    pub app_secret: SecretString,
    /// Embedded Signup configuration id.
    pub config_id: String,
    /// Webhook verification token.
    pub verify_token: SecretString,
    /// Graph API base URL.
    pub graph_url: String,
    /// Graph API version, e.g. `v26.0`.
    pub graph_version: String,
    /// JS SDK URL.
    pub sdk_url: String,
    /// Accepted origins (`https://host`) or host suffixes (`facebook.com`) of the signup popup.
    pub signup_origins: Vec<String>,
}

/// The whole configuration of one wabridge process.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Database URL.
    pub database_url: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// External URL, when known.
    pub public_url: Option<String>,
    /// Product name in the UI.
    pub product_name: String,
    /// Link to the guide through Meta's prerequisites.
    pub meta_guide_url: String,
    /// Local data folder.
    pub data_dir: PathBuf,
    /// How tenants reach support.
    pub support_contact: String,
    /// First wait (seconds) before polling a pending onboarding checklist.
    pub onboarding_poll_secs: i64,
    /// Meta app and endpoints.
    pub meta: MetaSettings,
    /// Keys for secrets at rest.
    pub keyring: Keyring,
    /// Log filter.
    pub log: String,
    /// Log format: auto, json or text.
    pub log_format: String,
    /// Session lifetime in hours.
    pub session_hours: i64,
    /// Failed sign-ins per address and 15 minutes.
    pub sign_in_limit: i64,
    /// Graph API call timeout in seconds.
    pub graph_timeout_secs: u64,
    /// Messages per second per number.
    pub number_throughput: u32,
    /// Outbox workers per instance.
    pub outbox_workers: usize,
    /// SMTP relay for e-mails, if any.
    pub smtp_url: Option<String>,
    /// Sender of e-mails.
    pub mail_from: String,
    /// The built-in sandbox's customer page, when Meta is the sandbox (the UI says so).
    pub sandbox_url: Option<String>,
    /// The dated rate card costs are computed with.
    pub rate_card: std::sync::Arc<crate::billing::RateCard>,
    /// The operator's API key, when the operator API is enabled.
    pub operator_api_key: Option<SecretString>,
    /// Seconds between template syncs.
    pub template_sync_secs: u64,
    /// Days an applied webhook body stays in the journal (0: for ever).
    pub journal_retention_days: i64,
    /// Where files are kept (the database unless a directory or bucket is configured).
    pub media: crate::inbox::media::MediaStore,
    /// Days files are kept (0: for ever); see [`crate::inbox::media::expire`].
    pub media_retention_days: i64,
}

/// Everything wrong with a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("configuration is incomplete or invalid:\n{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Settings {
    /// Reads the settings from the process environment and the optional TOML file
    /// (`--config`, or `WABRIDGE_CONFIG`).
    pub fn load(file: Option<&std::path::Path>) -> Result<Settings, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.map(PathBuf::from).or_else(|| env.get("WABRIDGE_CONFIG").map(PathBuf::from));
        let toml = match file {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?),
            None => None,
        };
        Settings::from_sources(&env, toml.as_deref())
    }

    /// Builds settings from an environment map and optional TOML text; the environment wins.
    pub fn from_sources(env: &BTreeMap<String, String>, toml: Option<&str>) -> Result<Settings, ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let mut problems = Vec::new();
        if let Some(text) = toml {
            match text.parse::<toml::Table>() {
                Ok(table) => {
                    for (key, value) in table {
                        let key = key.to_ascii_uppercase();
                        if !SETTINGS.iter().any(|s| s.name == key) {
                            problems.push(format!("unknown setting {key} in the configuration file"));
                            continue;
                        }
                        let text = match value {
                            toml::Value::String(s) => s,
                            toml::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(","),
                            toml::Value::Integer(i) => i.to_string(),
                            toml::Value::Boolean(b) => b.to_string(),
                            toml::Value::Float(f) => f.to_string(),
                            _ => {
                                problems.push(format!("{key} must be a string, number or list"));
                                continue;
                            }
                        };
                        values.insert(key, text);
                    }
                }
                Err(e) => problems.push(format!("configuration file: {e}")),
            }
        }
        for spec in SETTINGS {
            if let Some(v) = env.get(spec.name) {
                values.insert(spec.name.to_owned(), v.clone());
            }
        }
        let mut get = |name: &str| -> String {
            if let Some(v) = values.get(name).filter(|v| !v.trim().is_empty()) {
                return v.trim().to_owned();
            }
            match SETTINGS.iter().find(|s| s.name == name).and_then(|s| s.default) {
                Some(d) => d.to_owned(),
                None => {
                    problems.push(format!("{name} is required"));
                    String::new()
                }
            }
        };
        let database_url = get("DATABASE_URL");
        let app_id = get("META_APP_ID");
        let app_secret = get("META_APP_SECRET");
        let config_id = get("META_CONFIG_ID");
        let verify_token = get("META_VERIFY_TOKEN");
        let graph_url = get("META_GRAPH_URL").trim_end_matches('/').to_owned();
        let graph_version = get("META_GRAPH_VERSION");
        let sdk_url = get("META_SDK_URL");
        let signup_origins = get("META_SIGNUP_ORIGINS");
        let key = get("WABRIDGE_ENCRYPTION_KEY");
        let listen = get("WABRIDGE_LISTEN");
        let public_url = get("WABRIDGE_PUBLIC_URL");
        let product_name = get("WABRIDGE_PRODUCT_NAME");
        let meta_guide_url = get("WABRIDGE_META_GUIDE_URL");
        let data_dir = get("WABRIDGE_DATA_DIR");
        let support_contact = get("WABRIDGE_SUPPORT_CONTACT");
        let onboarding_poll_secs = get("WABRIDGE_ONBOARDING_POLL_SECS");
        let log = get("WABRIDGE_LOG");
        let log_format = get("WABRIDGE_LOG_FORMAT");
        let session_hours = get("WABRIDGE_SESSION_HOURS");
        let sign_in_limit = get("WABRIDGE_SIGN_IN_LIMIT");
        let graph_timeout = get("WABRIDGE_GRAPH_TIMEOUT_SECS");
        let throughput = get("WABRIDGE_NUMBER_THROUGHPUT");
        let workers = get("WABRIDGE_OUTBOX_WORKERS");
        let smtp_url = get("WABRIDGE_SMTP_URL");
        let mail_from = get("WABRIDGE_MAIL_FROM");

        let rate_card_path = get("WABRIDGE_RATE_CARD");
        let operator_api_key = get("WABRIDGE_OPERATOR_API_KEY");
        let template_sync = get("WABRIDGE_TEMPLATE_SYNC_SECS");
        let journal_retention = get("WABRIDGE_JOURNAL_RETENTION_DAYS");
        let media_dir = get("WABRIDGE_MEDIA_DIR");
        let media_retention = get("WABRIDGE_MEDIA_RETENTION_DAYS");
        let media_bucket = [get("WABRIDGE_MEDIA_BUCKET"), get("WABRIDGE_MEDIA_BUCKET_REGION"), get("WABRIDGE_MEDIA_BUCKET_ACCESS_KEY"), get("WABRIDGE_MEDIA_BUCKET_SECRET_KEY")];
        let rate_card = if rate_card_path.is_empty() {
            crate::billing::RateCard::parse(crate::billing::rate_card::DEFAULT_CSV).map_err(|e| problems.push(format!("built-in rate card: {e}"))).ok()
        } else {
            match std::fs::read_to_string(&rate_card_path) {
                Ok(text) => crate::billing::RateCard::parse(&text).map_err(|e| problems.push(format!("WABRIDGE_RATE_CARD {rate_card_path}: {e}"))).ok(),
                Err(e) => {
                    problems.push(format!("WABRIDGE_RATE_CARD {rate_card_path}: {e}"));
                    None
                }
            }
        };
        if !operator_api_key.is_empty() && operator_api_key.len() < 24 {
            problems.push("WABRIDGE_OPERATOR_API_KEY must be at least 24 characters".to_owned());
        }
        let template_sync_secs = template_sync.parse::<u64>().ok().filter(|t| *t >= 10).unwrap_or_else(|| {
            problems.push("WABRIDGE_TEMPLATE_SYNC_SECS must be a number of seconds, at least 10".to_owned());
            900
        });
        let media = match (media_bucket[0].trim(), media_dir.trim()) {
            ("", "") => crate::inbox::media::MediaStore::Database,
            ("", dir) => crate::inbox::media::MediaStore::Directory(dir.into()),
            (url, _) => {
                let [_, region, access, secret] = &media_bucket;
                if access.trim().is_empty() || secret.trim().is_empty() {
                    problems.push("WABRIDGE_MEDIA_BUCKET needs WABRIDGE_MEDIA_BUCKET_ACCESS_KEY and WABRIDGE_MEDIA_BUCKET_SECRET_KEY".to_owned());
                }
                match crate::inbox::bucket::Bucket::new(url, region.trim(), access.trim(), SecretString::from(secret.trim().to_owned())) {
                    Ok(bucket) => crate::inbox::media::MediaStore::Bucket(std::sync::Arc::new(bucket)),
                    Err(e) => {
                        problems.push(format!("WABRIDGE_MEDIA_BUCKET: {e}"));
                        crate::inbox::media::MediaStore::Database
                    }
                }
            }
        };
        // At least two days: a reply's file may still be on its way to Meta for a while.
        let media_retention_days = media_retention.parse::<i64>().ok().filter(|d| *d == 0 || (2..=36_500).contains(d)).unwrap_or_else(|| {
            problems.push("WABRIDGE_MEDIA_RETENTION_DAYS must be a number of days, at least 2 (0: keep for ever)".to_owned());
            0
        });
        let journal_retention_days = journal_retention.parse::<i64>().ok().filter(|d| (0..=36_500).contains(d)).unwrap_or_else(|| {
            problems.push("WABRIDGE_JOURNAL_RETENTION_DAYS must be a number of days (0: keep for ever)".to_owned());
            30
        });

        let listen = listen.parse::<SocketAddr>().map_err(|_| problems.push(format!("WABRIDGE_LISTEN is not an address: {listen:?}"))).ok();
        let keyring = if key.is_empty() {
            None
        } else {
            Keyring::parse(&key).map_err(|e| problems.push(format!("WABRIDGE_ENCRYPTION_KEY: {e}"))).ok()
        };
        let session_hours = session_hours.parse::<i64>().ok().filter(|h| *h > 0);
        if session_hours.is_none() {
            problems.push("WABRIDGE_SESSION_HOURS must be a positive number".to_owned());
        }
        let sign_in_limit = sign_in_limit.parse::<i64>().ok().filter(|h| *h > 0);
        if sign_in_limit.is_none() {
            problems.push("WABRIDGE_SIGN_IN_LIMIT must be a positive number".to_owned());
        }
        let graph_timeout_secs = graph_timeout.parse::<u64>().ok().filter(|t| *t > 0).unwrap_or_else(|| {
            problems.push("WABRIDGE_GRAPH_TIMEOUT_SECS must be a positive number".to_owned());
            30
        });
        let number_throughput = throughput.parse::<u32>().ok().filter(|t| (1..=1000).contains(t)).unwrap_or_else(|| {
            problems.push("WABRIDGE_NUMBER_THROUGHPUT must be between 1 and 1000".to_owned());
            80
        });
        let outbox_workers = workers.parse::<usize>().ok().filter(|t| (1..=64).contains(t)).unwrap_or_else(|| {
            problems.push("WABRIDGE_OUTBOX_WORKERS must be between 1 and 64".to_owned());
            4
        });
        let onboarding_poll_secs = onboarding_poll_secs.parse::<i64>().ok().filter(|h| *h > 0).unwrap_or_else(|| {
            problems.push("WABRIDGE_ONBOARDING_POLL_SECS must be a positive number".to_owned());
            30
        });
        if !smtp_url.is_empty() && crate::mail::SmtpRelay::parse(&smtp_url, &mail_from).is_none() {
            problems.push("WABRIDGE_SMTP_URL must look like smtp://host[:port]".to_owned());
        }
        if !["auto", "json", "text"].contains(&log_format.as_str()) {
            problems.push("WABRIDGE_LOG_FORMAT must be auto, json or text".to_owned());
        }
        match (listen, keyring, session_hours, sign_in_limit, rate_card) {
            (Some(listen), Some(keyring), Some(session_hours), Some(sign_in_limit), Some(rate_card)) if problems.is_empty() => Ok(Settings {
                database_url,
                listen,
                public_url: Some(public_url).filter(|u| !u.is_empty()),
                product_name,
                meta_guide_url,
                data_dir: PathBuf::from(data_dir),
                support_contact,
                onboarding_poll_secs,
                meta: MetaSettings {
                    app_id,
                    app_secret: SecretString::from(app_secret),
                    config_id,
                    verify_token: SecretString::from(verify_token),
                    graph_url,
                    graph_version,
                    sdk_url,
                    signup_origins: signup_origins.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
                },
                keyring,
                log,
                log_format,
                session_hours,
                sign_in_limit,
                graph_timeout_secs,
                number_throughput,
                outbox_workers,
                smtp_url: Some(smtp_url).filter(|u| !u.is_empty()),
                mail_from,
                sandbox_url: None,
                rate_card: std::sync::Arc::new(rate_card),
                operator_api_key: Some(operator_api_key).filter(|k| !k.is_empty()).map(SecretString::from),
                template_sync_secs,
                journal_retention_days,
                media,
                media_retention_days,
            }),
            _ => Err(ConfigError(problems)),
        }
    }

    /// Whether cookies must carry `Secure` (anything but plain-HTTP local use).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}
