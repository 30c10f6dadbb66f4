//! The one outbox: every send (replies, templates, API sends, read receipts) is recorded here
//! first and answered with its id; workers send it within Meta's pacing, retry what Meta calls
//! retryable, and never repeat a send whose outcome is unknown.
//!
//! Each send carries `wabridge:ob:<id>` in `biz_opaque_callback_data`, which Meta echoes in its
//! statuses: a send that timed out after leaving is marked unknown and reconciled by the status
//! that follows (see `inbox::handler::apply_statuses`).

pub mod worker;

use serde::{Deserialize, Serialize};
use wabridge_cloud_api::OutboundMessage;

use crate::accounts::TenantId;
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// Id of an outbox entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct OutboxId(pub i64);

/// Prefix of our `biz_opaque_callback_data`.
pub const CALLBACK_PREFIX: &str = "wabridge:ob:";

/// What an outbox entry asks the worker to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Send a message.
    Send {
        /// The message as Meta takes it (callback data is added by the worker).
        message: Box<OutboundMessage>,
    },
    /// Mark a customer's message read.
    MarkRead {
        /// The customer's message.
        wamid: String,
    },
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Send { .. } => "send",
            Operation::MarkRead { .. } => "mark_read",
        }
    }
}

/// A send to record.
pub struct NewSend {
    /// The tenant sending.
    pub tenant: TenantId,
    /// The tenant's number it goes out from.
    pub phone_number_id: String,
    /// The conversation it belongs to.
    pub conversation_id: Option<i64>,
    /// What to do.
    pub operation: Operation,
    /// The pricing category expected (`service`, `utility`, `marketing`, `authentication`).
    pub category: Option<String>,
    /// Makes a retried request (API `Idempotency-Key`) return the first send.
    pub idempotency_key: Option<String>,
}

/// Why a send was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The number is not the tenant's or not connected for messaging.
    #[error("the number is not connected for messaging")]
    NotConnected,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The outcome of recording a send: its id, and whether it is new or an idempotent repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The outbox id.
    pub id: OutboxId,
    /// False when the idempotency key matched an earlier send.
    pub created: bool,
}

/// Whether the tenant's number can send (attached to this tenant and connected).
pub async fn number_can_send(tx: &mut Tx, tenant: TenantId, phone_number_id: &str) -> Result<bool, sqlx::Error> {
    let status = with_tx!(tx, |c| sqlx::query_scalar::<_, String>("SELECT status FROM phone_numbers WHERE phone_number_id = $1 AND tenant_id = $2")
        .bind(phone_number_id)
        .bind(tenant)
        .fetch_optional(c)
        .await)?;
    Ok(status.as_deref() == Some(crate::onboarding::store::NUMBER_CONNECTED))
}

/// Records a send in the caller's transaction. The caller has checked what its feature
/// requires (the window for free-form messages, an approved template); this checks that the
/// number can send at all.
pub async fn enqueue(tx: &mut Tx, send: &NewSend, now: i64) -> Result<Enqueued, EnqueueError> {
    if !number_can_send(tx, send.tenant, &send.phone_number_id).await? {
        return Err(EnqueueError::NotConnected);
    }
    if let Some(key) = &send.idempotency_key {
        let existing = with_tx!(tx, |c| sqlx::query_scalar::<_, OutboxId>("SELECT id FROM outbox WHERE tenant_id = $1 AND idempotency_key = $2")
            .bind(send.tenant)
            .bind(key)
            .fetch_optional(c)
            .await)?;
        if let Some(id) = existing {
            return Ok(Enqueued { id, created: false });
        }
    }
    let request = serde_json::to_string(&send.operation).map_err(|e| EnqueueError::Db(sqlx::Error::Encode(Box::new(e))))?;
    let inserted = with_tx!(tx, |c| sqlx::query_scalar::<_, OutboxId>(
        "INSERT INTO outbox (tenant_id, phone_number_id, conversation_id, op, request, state, next_attempt_at, idempotency_key, category, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $6, $6) RETURNING id"
    )
    .bind(send.tenant)
    .bind(&send.phone_number_id)
    .bind(send.conversation_id)
    .bind(send.operation.name())
    .bind(request)
    .bind(now)
    .bind(&send.idempotency_key)
    .bind(&send.category)
    .fetch_one(c)
    .await);
    // Two requests with the same key at once: the unique key decides; the loser's
    // transaction fails and its caller may simply retry to get the winner's id.
    inserted.map(|id| Enqueued { id, created: true }).map_err(EnqueueError::Db)
}

/// An outbox entry as the API and the UI read it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct OutboxEntry {
    /// Id.
    pub id: OutboxId,
    /// State: pending, sending, sent, unknown, failed, done.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Meta's message id, once known.
    pub wamid: Option<String>,
    /// Meta's error code, if it failed.
    pub error_code: Option<i64>,
    /// Conversation.
    pub conversation_id: Option<i64>,
}

/// One entry of a tenant (None for another tenant's id).
pub async fn entry(db: &Db, tenant: TenantId, id: OutboxId) -> Result<Option<OutboxEntry>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, OutboxEntry>(
        "SELECT id, state, attempts, wamid, error_code, conversation_id FROM outbox WHERE id = $1 AND tenant_id = $2"
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(p)
    .await)
}

/// The outbox id in a status's callback data, if it is ours.
pub fn id_from_callback(data: Option<&str>) -> Option<OutboxId> {
    data?.strip_prefix(CALLBACK_PREFIX)?.parse().ok().map(OutboxId)
}
