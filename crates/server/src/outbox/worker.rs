//! Outbox workers: claim a due entry, wait for the number's pacing slot, call Meta, record the
//! outcome. Several run per instance and across instances; the claim is one atomic statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has a single writer).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Notify, watch};
use wabridge_cloud_api::client::message::OutboundContent;
use wabridge_cloud_api::{ApiError, ErrorClass, GraphClient, OutboundMessage};

use super::{CALLBACK_PREFIX, Operation, OutboxId};
use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::inbox::{self, OutcomeUpdate};
use crate::live::LiveHub;
use crate::store::{Db, Engine};
use crate::web::metrics::Metrics;
use crate::with_pool;

/// Attempts before a retryable failure becomes final.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed entry may stay in `sending` before it counts as unknown.
const LEASE_MS: i64 = 5 * 60 * 1000;
/// Meta's pair rate limit (131056): one message to the same customer from the same number
/// every 6 s, after a burst of 45.
const PAIR_INTERVAL_US: i64 = 6_000_000;
/// Messages to one customer that may go at once.
pub const PAIR_BURST: i64 = 45;

/// Everything a worker needs.
#[derive(Clone)]
pub struct OutboxWorker {
    /// Database.
    pub db: Db,
    /// Clock.
    pub clock: Clock,
    /// Meta.
    pub graph: GraphClient,
    /// Keys for the sealed business tokens.
    pub keyring: Keyring,
    /// Live events.
    pub live: LiveHub,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Messages per second per number.
    pub throughput: u32,
    /// Where uploaded files are kept.
    pub media: crate::inbox::media::MediaStore,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: OutboxId,
    tenant_id: TenantId,
    phone_number_id: String,
    op: String,
    request: String,
    attempts: i64,
}

/// What came of one attempt.
enum Outcome {
    Sent(Option<String>),
    Retry { after_ms: i64, code: Option<i64>, text: String },
    Unknown(String),
    Failed { code: Option<i64>, text: String },
    /// Not attempted: the customer's pair limit is used up until then (Unix ms).
    Deferred(i64),
}

impl OutboxWorker {
    /// Runs until shutdown, woken when something is enqueued (and every half second).
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            loop {
                match self.step().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "outbox step failed");
                        break;
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
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

    /// Handles one due entry; false when there was none.
    pub async fn step(&self) -> anyhow::Result<bool> {
        self.expire_leases().await?;
        let Some(job) = self.claim().await? else { return Ok(false) };
        let outcome = self.attempt(&job).await;
        self.record(&job, outcome).await?;
        Ok(true)
    }

    async fn claim(&self) -> Result<Option<Claimed>, sqlx::Error> {
        let now = self.clock.now_ms();
        let sql = match self.db.engine() {
            Engine::Sqlite => {
                "UPDATE outbox SET state = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
                 WHERE id = (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY id LIMIT 1)
                 RETURNING id, tenant_id, phone_number_id, op, request, attempts"
            }
            Engine::Postgres => {
                "UPDATE outbox SET state = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
                 WHERE id = (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, tenant_id, phone_number_id, op, request, attempts"
            }
        };
        with_pool!(self.db.write(), |p| sqlx::query_as::<_, Claimed>(sql).bind(now + LEASE_MS).bind(now).fetch_optional(p).await)
    }

    /// A process that died mid-send leaves entries in `sending`: Meta may have sent them, so
    /// they become unknown (reconciled by a status, or shown), never sent again blindly.
    async fn expire_leases(&self) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        let expired = with_pool!(self.db.write(), |p| sqlx::query_scalar::<_, OutboxId>(
            "UPDATE outbox SET state = CASE WHEN op = 'send' THEN 'unknown' ELSE 'pending' END, updated_at = $1
             WHERE state = 'sending' AND lease_until < $1 RETURNING id"
        )
        .bind(now)
        .fetch_all(p)
        .await)?;
        for id in expired {
            inbox::record_outcome(&self.db, &self.live, id, OutcomeUpdate::Unknown, now).await?;
        }
        Ok(())
    }

    async fn token(&self, job: &Claimed) -> Result<Option<SecretString>, sqlx::Error> {
        crate::onboarding::store::number_token(&self.db, &self.keyring, job.tenant_id, &job.phone_number_id).await
    }

    /// Waits for this number's next slot: `throughput` per second, shared by every instance
    /// through one row per number.
    async fn pace(&self, phone_number_id: &str) -> Result<(), sqlx::Error> {
        let interval_us = 1_000_000 / i64::from(self.throughput.max(1));
        let now_us = self.clock.now_ms() * 1000;
        with_pool!(self.db.write(), |p| sqlx::query(
            "INSERT INTO number_pacing (phone_number_id, next_slot_at) VALUES ($1, $2) ON CONFLICT (phone_number_id) DO NOTHING"
        )
        .bind(phone_number_id)
        .bind(now_us)
        .execute(p)
        .await
        .map(drop))?;
        let slot = with_pool!(self.db.write(), |p| sqlx::query_scalar::<_, i64>(
            "UPDATE number_pacing SET next_slot_at = CASE WHEN next_slot_at < $2 THEN $2 ELSE next_slot_at END + $3
             WHERE phone_number_id = $1 RETURNING next_slot_at - $3"
        )
        .bind(phone_number_id)
        .bind(now_us)
        .bind(interval_us)
        .fetch_one(p)
        .await)?;
        let wait_us = slot - now_us;
        if wait_us > 0 {
            tokio::time::sleep(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0))).await;
        }
        Ok(())
    }

    /// Takes a slot of the customer's pair limit (GCRA over one row per pair, shared by every
    /// instance): `None` when the message may go now, else when it may (Unix ms) — the entry
    /// then waits in the queue instead of meeting Meta's 131056.
    async fn pair_slot(&self, phone_number_id: &str, recipient: &str) -> Result<Option<i64>, sqlx::Error> {
        let now_us = self.clock.now_ms() * 1000;
        let tolerance_us = (PAIR_BURST - 1) * PAIR_INTERVAL_US;
        with_pool!(self.db.write(), |p| sqlx::query(
            "INSERT INTO pair_pacing (phone_number_id, recipient, tat_at) VALUES ($1, $2, $3) ON CONFLICT (phone_number_id, recipient) DO NOTHING"
        )
        .bind(phone_number_id)
        .bind(recipient)
        .bind(now_us)
        .execute(p)
        .await
        .map(drop))?;
        let taken = with_pool!(self.db.write(), |p| sqlx::query_scalar::<_, i64>(
            "UPDATE pair_pacing SET tat_at = CASE WHEN tat_at < $3 THEN $3 ELSE tat_at END + $4
             WHERE phone_number_id = $1 AND recipient = $2 AND tat_at - $3 <= $5 RETURNING tat_at"
        )
        .bind(phone_number_id)
        .bind(recipient)
        .bind(now_us)
        .bind(PAIR_INTERVAL_US)
        .bind(tolerance_us)
        .fetch_optional(p)
        .await)?;
        if taken.is_some() {
            return Ok(None);
        }
        let tat = with_pool!(self.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT tat_at FROM pair_pacing WHERE phone_number_id = $1 AND recipient = $2")
            .bind(phone_number_id)
            .bind(recipient)
            .fetch_one(p)
            .await)?;
        Ok(Some((tat - tolerance_us + 999) / 1000))
    }

    /// Meta answered 131056 for this customer all the same (another app on the number, a
    /// limit lower than documented): the pair waits a full interval before its next message.
    async fn pair_refused(&self, phone_number_id: &str, recipient: &str) -> Result<(), sqlx::Error> {
        let full_us = self.clock.now_ms() * 1000 + PAIR_BURST * PAIR_INTERVAL_US;
        with_pool!(self.db.write(), |p| sqlx::query(
            "UPDATE pair_pacing SET tat_at = CASE WHEN tat_at < $3 THEN $3 ELSE tat_at END WHERE phone_number_id = $1 AND recipient = $2"
        )
        .bind(phone_number_id)
        .bind(recipient)
        .bind(full_us)
        .execute(p)
        .await
        .map(drop))
    }

    async fn attempt(&self, job: &Claimed) -> Outcome {
        let operation: Operation = match serde_json::from_str(&job.request) {
            Ok(op) => op,
            Err(e) => return Outcome::Failed { code: None, text: format!("unreadable outbox entry: {e}") },
        };
        let token = match self.token(job).await {
            Ok(Some(t)) => t,
            Ok(None) => return Outcome::Failed { code: Some(190), text: "no usable business token for this number".to_owned() },
            Err(e) => return Outcome::Retry { after_ms: 1000, code: None, text: e.to_string() },
        };
        let recipient = match &operation {
            Operation::Send { message } => message.recipient.clone().or_else(|| message.to.clone()),
            Operation::MarkRead { .. } => None,
        };
        if let Some(recipient) = &recipient {
            match self.pair_slot(&job.phone_number_id, recipient).await {
                Ok(None) => {}
                Ok(Some(at_ms)) => return Outcome::Deferred(at_ms),
                Err(e) => return Outcome::Retry { after_ms: 1000, code: None, text: e.to_string() },
            }
        }
        if let Err(e) = self.pace(&job.phone_number_id).await {
            return Outcome::Retry { after_ms: 1000, code: None, text: e.to_string() };
        }
        let result = match operation {
            Operation::Send { mut message } => {
                if let Err(e) = self.upload_local_media(job, &token, &mut message).await {
                    // Nothing reached the customer yet: an unclear upload is simply retried.
                    return match self.classify(job, e) {
                        Outcome::Unknown(text) => Outcome::Retry { after_ms: 1000, code: None, text },
                        other => other,
                    };
                }
                message.biz_opaque_callback_data = Some(format!("{CALLBACK_PREFIX}{}", job.id.0));
                self.graph.send_message(&token, &job.phone_number_id, &message).await.map(|r| r.message_id().map(str::to_owned))
            }
            Operation::MarkRead { wamid } => self.graph.mark_read(&token, &job.phone_number_id, &wamid, false).await.map(|()| None),
        };
        if let (Err(ApiError::Graph(g)), Some(recipient)) = (&result, &recipient)
            && g.code == Some(131_056)
            && let Err(e) = self.pair_refused(&job.phone_number_id, recipient).await
        {
            tracing::warn!(error = %e, "the pair limit Meta reported could not be recorded");
        }
        match result {
            Ok(wamid) => Outcome::Sent(wamid),
            Err(e) => self.classify(job, e),
        }
    }

    /// A file uploaded to wabridge goes to Meta right before its message; Meta's media id
    /// replaces the local one.
    async fn upload_local_media(&self, job: &Claimed, token: &SecretString, message: &mut OutboundMessage) -> Result<(), ApiError> {
        let media = match &mut message.content {
            OutboundContent::Image { image } => image,
            OutboundContent::Document { document } => document,
            _ => return Ok(()),
        };
        let Some(local) = media.id.clone().filter(|id| id.starts_with(crate::inbox::LOCAL_MEDIA)) else { return Ok(()) };
        #[derive(sqlx::FromRow)]
        struct File {
            mime_type: Option<String>,
            filename: Option<String>,
            bytes: Option<Vec<u8>>,
            path: Option<String>,
        }
        let file = with_pool!(self.db.read(), |p| sqlx::query_as::<_, File>(
            "SELECT mime_type, filename, bytes, path FROM media WHERE tenant_id = $1 AND meta_media_id = $2"
        )
        .bind(job.tenant_id)
        .bind(&local)
        .fetch_optional(p)
        .await)
        .map_err(|e| ApiError::NotSent(e.to_string()))?
        .ok_or_else(|| ApiError::InvalidRequest("the uploaded file is gone".to_owned()))?;
        let bytes = self
            .media
            .read(crate::inbox::media::Kept { bytes: file.bytes, path: file.path })
            .await
            .map_err(|e| ApiError::NotSent(format!("the uploaded file cannot be read: {e}")))?;
        let id = self
            .graph
            .upload_media(
                token,
                &job.phone_number_id,
                bytes::Bytes::from(bytes),
                file.mime_type.as_deref().unwrap_or("application/octet-stream"),
                file.filename.as_deref().unwrap_or("file"),
            )
            .await?;
        media.id = Some(id);
        Ok(())
    }

    fn classify(&self, job: &Claimed, e: ApiError) -> Outcome {
        let text = e.to_string();
        if e.outcome_unknown() {
            return Outcome::Unknown(text);
        }
        let code = match &e {
            ApiError::Graph(g) => g.code,
            _ => None,
        };
        let retryable = matches!(e, ApiError::NotSent(_)) || matches!(e.class(), ErrorClass::Retry | ErrorClass::Throttled);
        if retryable && job.attempts < MAX_ATTEMPTS {
            // 131056 is the pair limit: about one message per six seconds to that customer.
            let base = if code == Some(131_056) { 6_000 } else { 1_000 };
            let after_ms = (base << (job.attempts - 1).clamp(0, 8)).min(300_000);
            return Outcome::Retry { after_ms, code, text };
        }
        Outcome::Failed { code, text }
    }

    /// Puts an entry the pair limit holds back in the queue as it was, due at `at_ms`: not an
    /// attempt, nothing to tell the conversation.
    async fn defer(&self, job: &Claimed, at_ms: i64, now: i64) -> Result<(), sqlx::Error> {
        self.metrics.add("wabridge_outbox_pair_deferrals_total", 1);
        with_pool!(self.db.write(), |p| sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = attempts - 1, lease_until = NULL, updated_at = $2
             WHERE id = $3 AND state = 'sending'"
        )
        .bind(at_ms)
        .bind(now)
        .bind(job.id)
        .execute(p)
        .await
        .map(drop))
    }

    async fn record(&self, job: &Claimed, outcome: Outcome) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        let (state, next, wamid, code, text, update) = match outcome {
            Outcome::Deferred(at_ms) => return self.defer(job, at_ms, now).await,
            Outcome::Sent(wamid) => ("sent", now, wamid.clone(), None, None, OutcomeUpdate::Accepted { wamid }),
            Outcome::Retry { after_ms, code, text } => {
                self.metrics.add("wabridge_outbox_retries_total", 1);
                tracing::warn!(outbox_id = job.id.0, code, "send will be retried");
                ("pending", now + after_ms, None, code, Some(text), OutcomeUpdate::Retrying)
            }
            Outcome::Unknown(text) => {
                self.metrics.add("wabridge_outbox_unknown_total", 1);
                tracing::warn!(outbox_id = job.id.0, "send outcome unknown; waiting for Meta's status");
                ("unknown", now, None, None, Some(text), OutcomeUpdate::Unknown)
            }
            Outcome::Failed { code, text } => {
                self.metrics.add("wabridge_outbox_failed_total", 1);
                tracing::warn!(outbox_id = job.id.0, code, "send failed");
                ("failed", now, None, code, Some(text), OutcomeUpdate::Failed { code })
            }
        };
        // A read receipt has nothing to follow up: it is done once Meta took it.
        let state = if state == "sent" && job.op == "mark_read" { "done" } else { state };
        let text_for_hook = text.clone();
        with_pool!(self.db.write(), |p| sqlx::query(
            "UPDATE outbox SET state = $1, next_attempt_at = $2, wamid = COALESCE($3, wamid), error_code = $4, error_text = $5,
                 lease_until = NULL, updated_at = $6
             WHERE id = $7 AND state = 'sending'"
        )
        .bind(state)
        .bind(next)
        .bind(wamid)
        .bind(code)
        .bind(text)
        .bind(now)
        .bind(job.id)
        .execute(p)
        .await
        .map(drop))?;
        if let OutcomeUpdate::Failed { code } = &update {
            // A revoked or expired token (190) marks the connection as needing a new sign-in.
            crate::onboarding::health::on_send_failure(&self.db, &self.live, job.tenant_id, &job.phone_number_id, *code, text_for_hook.as_deref().unwrap_or_default(), now).await?;
        }
        inbox::record_outcome(&self.db, &self.live, job.id, update, now).await
    }
}
