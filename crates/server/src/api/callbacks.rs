//! Signed event callbacks to the host application: message received, status changed,
//! onboarding changed. Events are recorded in the same transaction as the change that causes
//! them (idempotent by event key), then POSTed by a worker with
//! `X-Wabridge-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` and retried
//! with backoff; the tenant sees every delivery.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use wabridge_cloud_api::webhook::StatusKind;

use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::inbox;
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::store::{Db, Tx, keep_prepared, select_any, select_in, statement_chunks, value_rows};
use crate::{with_pool, with_tx};

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed delivery is left alone.
const LEASE_MS: i64 = 60_000;

/// The authenticated-encryption context of a tenant's callback secret.
pub fn secret_context(tenant: TenantId) -> String {
    format!("callback-secret:{}", tenant.0)
}

/// The signature header value for a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    wabridge_cloud_api::sign(secret, &signed)
}

/// Records an event for the tenant's callback URL (nothing when none is configured).
pub async fn enqueue(tx: &mut Tx, tenant: TenantId, kind: &str, event_key: &str, data: Value, now: i64) -> Result<(), sqlx::Error> {
    enqueue_all(tx, &[CallbackEvent { tenant, kind, event_key: event_key.to_owned(), data }], now).await
}

/// An event for a tenant's callback URL.
pub struct CallbackEvent<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// `message.received`, `message.status`, `onboarding.changed`.
    pub kind: &'a str,
    /// Makes repeated reports of one change one event.
    pub event_key: String,
    /// The event's data.
    pub data: Value,
}

/// [`enqueue`] for many events: one multi-row statement per chunk; events of tenants without
/// a callback URL are left out by the statement itself.
pub async fn enqueue_all(tx: &mut Tx, events: &[CallbackEvent<'_>], now: i64) -> Result<(), sqlx::Error> {
    for chunk in statement_chunks(tx.engine(), &events) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!(
            "INSERT INTO callback_deliveries (tenant_id, event_key, kind, payload, state, next_attempt_at, created_at)
             SELECT v.column1, v.column2, v.column3, v.column4, 'pending', v.column5, v.column5 FROM (VALUES {}) AS v
             WHERE EXISTS (SELECT 1 FROM callback_endpoints e WHERE e.tenant_id = v.column1)
             ON CONFLICT (tenant_id, event_key) DO NOTHING",
            value_rows(tx.engine(), chunk.len(), 5, 1)
        );
        let payloads: Vec<String> =
            chunk.iter().map(|e| json!({"event": e.kind, "tenant_id": e.tenant.0, "created_at": now, "data": e.data}).to_string()).collect();
        with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for (e, payload) in chunk.iter().zip(&payloads) {
                q = q.bind(e.tenant).bind(&e.event_key).bind(e.kind).bind(payload).bind(now);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

/// For onboarding: the tenant's WhatsApp connection or checklist changed (`key` makes
/// repeated reports of the same change one event).
pub async fn onboarding_changed(tx: &mut Tx, tenant: TenantId, key: &str, data: Value, now: i64) -> Result<(), sqlx::Error> {
    enqueue(tx, tenant, "onboarding.changed", &format!("onboarding:{key}"), data, now).await
}

/// Turns `messages` changes into `message.received` and `message.status` events.
pub struct CallbackEvents;

impl ChangeHandler for CallbackEvents {
    fn name(&self) -> &'static str {
        "api_callbacks"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        self.apply_all(tx, std::slice::from_ref(change), effects)
    }

    fn apply_all<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>], _effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Some(now) = changes.first().map(|c| c.now) else { return Ok(()) };
            // Most tenants have no callback endpoint: one look-up for the batch's tenants.
            let mut tenants: Vec<TenantId> = changes.iter().filter(|c| c.change.messages_value().is_some()).map(|c| c.tenant).collect();
            tenants.sort_unstable_by_key(|t| t.0);
            tenants.dedup();
            let subscribed: HashSet<TenantId> =
                select_any::<(TenantId,), _>(tx, "SELECT DISTINCT tenant_id FROM callback_endpoints WHERE tenant_id IN", &tenants).await?.into_iter().map(|(t,)| t).collect();
            let ours: Vec<&RoutedChange<'_>> = changes.iter().filter(|c| subscribed.contains(&c.tenant)).collect();
            if ours.is_empty() {
                return Ok(());
            }
            #[derive(sqlx::FromRow)]
            struct Row {
                id: i64,
                wamid: String,
                conversation_id: i64,
                kind: String,
                body: String,
                meta_at: i64,
            }
            // Customer messages by their key, statuses by the id of what we sent.
            let inbound: Vec<(TenantId, i64, &str)> = ours
                .iter()
                .flat_map(|change| change.change.messages().iter().filter_map(|m| Some((change.tenant, inbox::store::inbound_at(m, change.received_at), m.id.as_deref()?))))
                .collect();
            let received: HashMap<(TenantId, i64, String), Row> =
                inbox::store::inbound_by_key::<Row>(tx, "m.id, m.wamid, m.conversation_id, m.kind, m.body, m.meta_at", &inbound)
                    .await?
                    .into_iter()
                    .map(|(t, r)| ((t, r.meta_at, r.wamid.clone()), r))
                    .collect();
            let statuses: Vec<(TenantId, &str)> =
                ours.iter().flat_map(|change| change.change.statuses().iter().filter_map(|s| Some((change.tenant, s.id.as_deref()?)))).collect();
            const SENT: &str = "SELECT id, wamid FROM messages WHERE tenant_id = $1";
            let sent: HashMap<(TenantId, String), i64> =
                select_in::<(i64, String), _>(tx, SENT, "direction = 'out' AND wamid", statuses).await?.into_iter().map(|(t, (id, w))| ((t, w), id)).collect();
            let mut events = Vec::new();
            for change in ours {
                let tenant = change.tenant;
                for m in change.change.messages() {
                    let Some(wamid) = &m.id else { continue };
                    let Some(row) = received.get(&(tenant, inbox::store::inbound_at(m, change.received_at), wamid.clone())) else { continue };
                    let data = json!({
                        "message_id": row.id, "conversation_id": row.conversation_id, "wamid": wamid, "from": m.from, "from_user_id": m.from_user_id,
                        "type": row.kind, "text": row.body, "timestamp": row.meta_at,
                    });
                    events.push(CallbackEvent { tenant, kind: "message.received", event_key: format!("in:{wamid}"), data });
                }
                for s in change.change.statuses() {
                    let (Some(wamid), Some(kind)) = (&s.id, &s.status) else { continue };
                    let status = match kind {
                        StatusKind::Other(_) => continue,
                        k => k.as_str(),
                    };
                    let message = sent.get(&(tenant, wamid.clone())).copied();
                    let data = json!({
                        "message_id": message, "wamid": wamid, "status": status, "timestamp": s.timestamp.map(|t| t * 1000),
                        "error_code": s.errors.first().and_then(|e| e.code),
                        "pricing": s.pricing.as_ref().map(|p| json!({"type": p.pricing_type, "category": p.category})),
                    });
                    events.push(CallbackEvent { tenant, kind: "message.status", event_key: format!("status:{wamid}:{status}"), data });
                }
            }
            enqueue_all(tx, &events, now).await?;
            Ok(())
        })
    }
}

/// A delivery as the tenant sees it.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Id.
    pub id: i64,
    /// Event kind.
    pub kind: String,
    /// pending, delivered, failed.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Next attempt, Unix ms.
    pub next_attempt_at: i64,
    /// Created, Unix ms.
    pub created_at: i64,
}

/// A tenant's most recent deliveries.
pub async fn deliveries(db: &Db, tenant: TenantId, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, DeliveryRow>(
        "SELECT id, kind, state, attempts, last_status, last_error, next_attempt_at, created_at FROM callback_deliveries WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(p)
    .await)
}

/// The configured URL of a tenant.
pub async fn endpoint_url(db: &Db, tenant: TenantId) -> Result<Option<String>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, String>("SELECT url FROM callback_endpoints WHERE tenant_id = $1").bind(tenant).fetch_optional(p).await)
}

/// Sets the URL; a new secret is made when there is none or `rotate` — returned once.
pub async fn set_endpoint(db: &Db, keyring: &Keyring, tenant: TenantId, url: &str, rotate: bool, now: i64) -> Result<Option<String>, sqlx::Error> {
    let exists = endpoint_url(db, tenant).await?.is_some();
    if exists && !rotate {
        with_pool!(db.write(), |p| sqlx::query("UPDATE callback_endpoints SET url = $2, updated_at = $3 WHERE tenant_id = $1").bind(tenant).bind(url).bind(now).execute(p).await.map(drop))?;
        return Ok(None);
    }
    let secret = format!("whsec_{}", crate::crypto::random_token());
    let sealed = keyring.seal(secret.as_bytes(), &secret_context(tenant));
    with_pool!(db.write(), |p| sqlx::query(
        "INSERT INTO callback_endpoints (tenant_id, url, secret_ciphertext, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret_ciphertext = excluded.secret_ciphertext, updated_at = excluded.updated_at"
    )
    .bind(tenant)
    .bind(url)
    .bind(sealed)
    .bind(now)
    .execute(p)
    .await
    .map(drop))?;
    Ok(Some(secret))
}

/// Backoff after `attempts` failed attempts: 1 s, 4 s, 16 s, … at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (1_000i64 * 4i64.pow(exp)).min(3_600_000)
}

/// Delivers callbacks until shutdown.
#[derive(Clone)]
pub struct CallbackWorker {
    /// Database.
    pub db: Db,
    /// Clock.
    pub clock: Clock,
    /// Keys for the sealed secrets.
    pub keyring: Keyring,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    tenant_id: TenantId,
    kind: String,
    payload: String,
    attempts: i64,
    next_attempt_at: i64,
    url: String,
    secret_ciphertext: Vec<u8>,
}

impl CallbackWorker {
    /// Runs until shutdown, every half second and when woken.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut config = wabridge_cloud_api::GraphConfig::new("http://127.0.0.1", "v0.0");
        config.timeout = Duration::from_secs(10);
        let Ok(http) = wabridge_cloud_api::client::build_http_client(&config) else {
            tracing::error!("cannot build the HTTP client for callbacks");
            return;
        };
        loop {
            if let Err(e) = self.step(&http).await {
                tracing::warn!(error = %e, "callback delivery step failed");
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn step(&self, http: &reqwest::Client) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        let due = with_pool!(self.db.read(), |p| sqlx::query_as::<_, Due>(
            "SELECT d.id, d.tenant_id, d.kind, d.payload, d.attempts, d.next_attempt_at, e.url, e.secret_ciphertext
             FROM callback_deliveries d JOIN callback_endpoints e ON e.tenant_id = d.tenant_id
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.id LIMIT 20"
        )
        .bind(now)
        .fetch_all(p)
        .await)?;
        for d in due {
            // Claimed by moving its next attempt; another instance that read it too loses here.
            let claimed = with_pool!(self.db.write(), |p| sqlx::query("UPDATE callback_deliveries SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND state = 'pending'")
                .bind(d.id)
                .bind(d.next_attempt_at)
                .bind(now + LEASE_MS)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
            if claimed == 0 {
                continue;
            }
            let outcome = match self.keyring.open_str(&d.secret_ciphertext, &secret_context(d.tenant_id)) {
                Ok(secret) => deliver(http, &d, &secret, now).await,
                Err(_) => Err((None, "the callback secret cannot be opened".to_owned())),
            };
            let attempts = d.attempts + 1;
            let now = self.clock.now_ms();
            match outcome {
                Ok(status) => {
                    with_pool!(self.db.write(), |p| sqlx::query(
                        "UPDATE callback_deliveries SET state = 'delivered', attempts = $2, last_status = $3, last_error = NULL, delivered_at = $4 WHERE id = $1"
                    )
                    .bind(d.id)
                    .bind(attempts)
                    .bind(status)
                    .bind(now)
                    .execute(p)
                    .await
                    .map(drop))?;
                }
                Err((status, error)) => {
                    let state = if attempts >= MAX_ATTEMPTS { "failed" } else { "pending" };
                    with_pool!(self.db.write(), |p| sqlx::query(
                        "UPDATE callback_deliveries SET state = $2, attempts = $3, last_status = $4, last_error = $5, next_attempt_at = $6 WHERE id = $1"
                    )
                    .bind(d.id)
                    .bind(state)
                    .bind(attempts)
                    .bind(status)
                    .bind(error.chars().take(500).collect::<String>())
                    .bind(now + backoff_ms(attempts))
                    .execute(p)
                    .await
                    .map(drop))?;
                }
            }
        }
        Ok(())
    }
}

async fn deliver(http: &reqwest::Client, d: &Due, secret: &SecretString, now: i64) -> Result<i64, (Option<i64>, String)> {
    let timestamp = now / 1000;
    let body = d.payload.as_bytes().to_vec();
    let signature = signature(secret, timestamp, &body);
    let response = http
        .post(&d.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "wabridge-callbacks")
        .header("X-Wabridge-Event", &d.kind)
        .header("X-Wabridge-Delivery", d.id.to_string())
        .header("X-Wabridge-Timestamp", timestamp.to_string())
        .header("X-Wabridge-Signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| (None, format!("request failed: {}", e.without_url())))?;
    let status = i64::from(response.status().as_u16());
    if response.status().is_success() { Ok(status) } else { Err((Some(status), format!("HTTP {status}"))) }
}
