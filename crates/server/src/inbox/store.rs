//! Queries of the inbox: customers, conversations, messages, and how sends and statuses
//! change them.

use serde_json::json;

use crate::accounts::TenantId;
use crate::live::{self, LiveHub, NewEvent};
use crate::outbox::OutboxId;
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// Order of statuses; a message's status only ever moves up (failed is final).
pub fn status_rank(status: &str) -> i64 {
    match status {
        "queued" => 0,
        "unknown" | "accepted" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" | "played" => 4,
        "failed" => 9,
        // Inbound messages: received, then read by the business.
        "received" => 0,
        _ => 0,
    }
}

/// Finds or creates the customer, merging the BSUID record and the phone record when a
/// message reveals that they are the same person.
pub async fn upsert_customer(
    tx: &mut Tx,
    tenant: TenantId,
    bsuid: Option<&str>,
    phone: Option<&str>,
    name: Option<&str>,
    username: Option<&str>,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let bsuid = bsuid.filter(|s| !s.is_empty());
    let phone = phone.filter(|s| !s.is_empty());
    #[derive(sqlx::FromRow)]
    struct Known {
        id: i64,
        bsuid: Option<String>,
        phone: Option<String>,
        name: Option<String>,
        username: Option<String>,
    }
    let by_bsuid = match bsuid {
        Some(b) => with_tx!(&mut *tx, |c| sqlx::query_as::<_, Known>(
            "SELECT id, bsuid, phone, name, username FROM customers WHERE tenant_id = $1 AND bsuid = $2"
        )
        .bind(tenant)
        .bind(b)
        .fetch_optional(c)
        .await)?,
        None => None,
    };
    // A customer found by BSUID who already has this phone needs no second look-up.
    let by_phone = match phone {
        Some(p) if by_bsuid.as_ref().is_none_or(|k| k.phone.as_deref() != Some(p)) => with_tx!(&mut *tx, |c| sqlx::query_as::<_, Known>(
            "SELECT id, bsuid, phone, name, username FROM customers WHERE tenant_id = $1 AND phone = $2"
        )
        .bind(tenant)
        .bind(p)
        .fetch_optional(c)
        .await)?,
        _ => None,
    };
    let name = name.filter(|n| !n.trim().is_empty());
    let (id, known) = match (by_bsuid, by_phone) {
        (Some(a), Some(b)) if a.id != b.id => {
            merge_customers(tx, a.id, b.id).await?;
            (a.id, None)
        }
        (Some(a), _) | (None, Some(a)) => (a.id, Some(a)),
        (None, None) => {
            if bsuid.is_none() && phone.is_none() {
                return Ok(None);
            }
            let id = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
                "INSERT INTO customers (tenant_id, bsuid, phone, name, username, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id"
            )
            .bind(tenant)
            .bind(bsuid)
            .bind(phone)
            .bind(name)
            .bind(username)
            .bind(now)
            .fetch_one(c)
            .await)?;
            return Ok(Some(id));
        }
    };
    // Most messages come from a customer whose record already says all this: no UPDATE.
    if let Some(k) = known {
        let same = |new: Option<&str>, old: &Option<String>| new.is_none() || new == old.as_deref();
        if same(bsuid, &k.bsuid) && same(phone, &k.phone) && same(name, &k.name) && same(username, &k.username) {
            return Ok(Some(id));
        }
    }
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE customers SET bsuid = COALESCE($2, bsuid), phone = COALESCE($3, phone), name = COALESCE($4, name),
             username = COALESCE($5, username), updated_at = $6 WHERE id = $1"
    )
    .bind(id)
    .bind(bsuid)
    .bind(phone)
    .bind(name)
    .bind(username)
    .bind(now)
    .execute(c)
    .await
    .map(drop))?;
    Ok(Some(id))
}

/// Moves everything of customer `from` to `into` and removes `from`.
async fn merge_customers(tx: &mut Tx, into: i64, from: i64) -> Result<(), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Conv {
        id: i64,
        phone_number_id: String,
    }
    let convs = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Conv>("SELECT id, phone_number_id FROM conversations WHERE customer_id = $1")
        .bind(from)
        .fetch_all(c)
        .await)?;
    for conv in convs {
        let target = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE customer_id = $1 AND phone_number_id = $2")
            .bind(into)
            .bind(&conv.phone_number_id)
            .fetch_optional(c)
            .await)?;
        match target {
            Some(t) => {
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2").bind(t).bind(conv.id).execute(c).await.map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE outbox SET conversation_id = $1 WHERE conversation_id = $2").bind(t).bind(conv.id).execute(c).await.map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query(
                    "UPDATE conversations SET
                         last_customer_message_at = (SELECT MAX(x) FROM (SELECT last_customer_message_at AS x FROM conversations WHERE id IN ($1, $2)) m),
                         unread = unread + (SELECT unread FROM conversations WHERE id = $2)
                     WHERE id = $1"
                )
                .bind(t)
                .bind(conv.id)
                .execute(c)
                .await
                .map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query("DELETE FROM conversations WHERE id = $1").bind(conv.id).execute(c).await.map(drop))?;
            }
            None => {
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE conversations SET customer_id = $1 WHERE id = $2").bind(into).bind(conv.id).execute(c).await.map(drop))?;
            }
        }
    }
    // The merged record's keys move over once the old row is gone (unique keys).
    #[derive(sqlx::FromRow)]
    struct Keys {
        bsuid: Option<String>,
        phone: Option<String>,
        name: Option<String>,
        username: Option<String>,
    }
    let keys = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Keys>("SELECT bsuid, phone, name, username FROM customers WHERE id = $1")
        .bind(from)
        .fetch_one(c)
        .await)?;
    with_tx!(&mut *tx, |c| sqlx::query("DELETE FROM customers WHERE id = $1").bind(from).execute(c).await.map(drop))?;
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE customers SET bsuid = COALESCE(bsuid, $2), phone = COALESCE(phone, $3), name = COALESCE(name, $4), username = COALESCE(username, $5) WHERE id = $1"
    )
    .bind(into)
    .bind(keys.bsuid)
    .bind(keys.phone)
    .bind(keys.name)
    .bind(keys.username)
    .execute(c)
    .await
    .map(drop))
}

/// The conversation of a customer with one of the tenant's numbers, created if new.
pub async fn conversation_for(tx: &mut Tx, tenant: TenantId, phone_number_id: &str, customer: i64, now: i64) -> Result<i64, sqlx::Error> {
    let find = async |tx: &mut Tx| {
        with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE phone_number_id = $1 AND customer_id = $2")
            .bind(phone_number_id)
            .bind(customer)
            .fetch_optional(c)
            .await)
    };
    // Usually it exists: one look-up; the unique key still decides when two create it at once.
    if let Some(id) = find(&mut *tx).await? {
        return Ok(id);
    }
    let created = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO conversations (tenant_id, phone_number_id, customer_id, last_message_at, last_preview, created_at)
         VALUES ($1, $2, $3, $4, '', $4) ON CONFLICT (phone_number_id, customer_id) DO NOTHING RETURNING id"
    )
    .bind(tenant)
    .bind(phone_number_id)
    .bind(customer)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    match created {
        Some(id) => Ok(id),
        None => find(&mut *tx).await?.ok_or(sqlx::Error::RowNotFound),
    }
}

/// A message to store.
pub struct NewMessage<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// Conversation.
    pub conversation_id: i64,
    /// `in` or `out`.
    pub direction: &'a str,
    /// Meta's id (inbound, or outbound once accepted).
    pub wamid: Option<&'a str>,
    /// Message type (`text`, `image`, `template`, …).
    pub kind: &'a str,
    /// Searchable text: the text, caption or template name.
    pub body: &'a str,
    /// The message JSON as Meta sent it (inbound) or as we send it (outbound).
    pub payload: &'a serde_json::Value,
    /// The quoted message.
    pub reply_to: Option<&'a str>,
    /// Outbox entry of an outbound message.
    pub outbox_id: Option<OutboxId>,
    /// Initial status.
    pub status: &'a str,
    /// Meta's timestamp (inbound) or now (outbound), Unix ms.
    pub meta_at: i64,
}

/// Stores a message; `None` when Meta's id is already stored (a redelivery).
pub async fn insert_message(tx: &mut Tx, m: &NewMessage<'_>, now: i64) -> Result<Option<i64>, sqlx::Error> {
    with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, reply_to_wamid, outbox_id, status, status_rank, meta_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (tenant_id, wamid) DO NOTHING RETURNING id"
    )
    .bind(m.tenant)
    .bind(m.conversation_id)
    .bind(m.direction)
    .bind(m.wamid)
    .bind(m.kind)
    .bind(m.body)
    .bind(m.payload.to_string())
    .bind(m.reply_to)
    .bind(m.outbox_id)
    .bind(m.status)
    .bind(status_rank(m.status))
    .bind(m.meta_at)
    .bind(now)
    .fetch_optional(c)
    .await)
}

/// Moves the conversation forward after a new message.
pub async fn touch_conversation(tx: &mut Tx, conversation: i64, at: i64, preview: &str, from_customer: bool, opens_window: bool) -> Result<(), sqlx::Error> {
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE conversations SET
             last_message_at = CASE WHEN last_message_at > $2 THEN last_message_at ELSE $2 END,
             last_preview = $3,
             unread = unread + $4,
             last_customer_message_at = CASE WHEN $5 AND (last_customer_message_at IS NULL OR last_customer_message_at < $2) THEN $2 ELSE last_customer_message_at END
         WHERE id = $1"
    )
    .bind(conversation)
    .bind(at)
    .bind(preview)
    .bind(i64::from(from_customer))
    .bind(opens_window)
    .execute(c)
    .await
    .map(drop))
}

/// What happened to a send, as the outbox worker reports it.
pub enum OutcomeUpdate {
    /// Meta accepted it.
    Accepted {
        /// Meta's id.
        wamid: Option<String>,
    },
    /// It will be tried again.
    Retrying,
    /// It may or may not have been sent: the next status decides.
    Unknown,
    /// It failed for good.
    Failed {
        /// Meta's error code.
        code: Option<i64>,
    },
}

/// Applies an outbox outcome to the message it sent, and tells the browsers.
pub async fn record_outcome(db: &Db, hub: &LiveHub, outbox: OutboxId, update: OutcomeUpdate, now: i64) -> Result<(), sqlx::Error> {
    let (status, wamid, code) = match update {
        OutcomeUpdate::Accepted { wamid } => ("accepted", wamid, None),
        OutcomeUpdate::Retrying => return Ok(()),
        OutcomeUpdate::Unknown => ("unknown", None, None),
        OutcomeUpdate::Failed { code } => ("failed", None, code),
    };
    let mut tx = db.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        tenant_id: TenantId,
        conversation_id: i64,
    }
    let row = with_tx!(&mut tx, |c| sqlx::query_as::<_, Row>(
        "UPDATE messages SET wamid = COALESCE(wamid, $2),
             status = CASE WHEN status_rank < $4 THEN $3 ELSE status END,
             error_code = CASE WHEN status_rank < $4 THEN $5 ELSE error_code END,
             status_rank = CASE WHEN status_rank < $4 THEN $4 ELSE status_rank END
         WHERE outbox_id = $1 RETURNING id, tenant_id, conversation_id"
    )
    .bind(outbox)
    .bind(wamid)
    .bind(status)
    .bind(status_rank(status))
    .bind(code)
    .fetch_optional(c)
    .await)?;
    let Some(row) = row else { return tx.commit().await };
    let events = [status_event(row.tenant_id, row.conversation_id, row.id)];
    let stored = live::store_events(&mut tx, &events, now).await?;
    tx.commit().await?;
    hub.published(db, stored);
    Ok(())
}

/// The live event that makes open conversation pages refresh a message.
pub fn status_event(tenant: TenantId, conversation: i64, message: i64) -> NewEvent {
    NewEvent { tenant, user: None, kind: "message".to_owned(), payload: json!({"conversation": conversation, "message": message}) }
}

/// A conversation row for lists.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    /// Id.
    pub id: i64,
    /// Our number.
    pub phone_number_id: String,
    /// Customer id.
    pub customer_id: i64,
    /// Customer's name.
    pub name: Option<String>,
    /// Customer's username.
    pub username: Option<String>,
    /// Customer's phone.
    pub phone: Option<String>,
    /// Customer's BSUID.
    pub bsuid: Option<String>,
    /// Meta's time of the customer's last message.
    pub last_customer_message_at: Option<i64>,
    /// Last activity.
    pub last_message_at: i64,
    /// Last message preview.
    pub last_preview: String,
    /// Unread customer messages.
    pub unread: i64,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.phone_number_id, c.customer_id, u.name, u.username, u.phone, u.bsuid, c.last_customer_message_at, c.last_message_at, c.last_preview, c.unread";

/// A page of a tenant's conversations, newest first, optionally filtered by name or number.
pub async fn conversations(db: &Db, tenant: TenantId, search: Option<&str>, before: Option<i64>, limit: i64) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let pattern = search.map(|s| format!("%{}%", s.trim().to_lowercase().replace(['%', '_'], "")));
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN customers u ON u.id = c.customer_id
         WHERE c.tenant_id = $1
           AND ($2 IS NULL OR LOWER(COALESCE(u.name, '')) LIKE $2 OR COALESCE(u.phone, '') LIKE $2 OR LOWER(COALESCE(u.username, '')) LIKE $2)
           AND ($3 IS NULL OR c.last_message_at < $3)
         ORDER BY c.last_message_at DESC, c.id DESC LIMIT $4"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(&pattern).bind(before).bind(limit).fetch_all(p).await)
}

/// One conversation of a tenant (None for another tenant's id).
pub async fn conversation(db: &Db, tenant: TenantId, id: i64) -> Result<Option<ConversationRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE c.tenant_id = $1 AND c.id = $2"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(id).fetch_optional(p).await)
}

/// A stored message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    /// Id.
    pub id: i64,
    /// `in` or `out`.
    pub direction: String,
    /// Meta's id.
    pub wamid: Option<String>,
    /// Type.
    pub kind: String,
    /// Text or caption.
    pub body: String,
    /// JSON.
    pub payload: String,
    /// Quoted message.
    pub reply_to_wamid: Option<String>,
    /// Status.
    pub status: String,
    /// Meta's error code.
    pub error_code: Option<i64>,
    /// Time (Meta's for inbound).
    pub meta_at: i64,
}

/// The last `limit` messages of a conversation, oldest first.
pub async fn messages(db: &Db, tenant: TenantId, conversation: i64, limit: i64) -> Result<Vec<MessageRow>, sqlx::Error> {
    let mut rows = with_pool!(db.read(), |p| sqlx::query_as::<_, MessageRow>(
        "SELECT id, direction, wamid, kind, body, payload, reply_to_wamid, status, error_code, meta_at FROM messages
         WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY meta_at DESC, id DESC LIMIT $3"
    )
    .bind(tenant)
    .bind(conversation)
    .bind(limit)
    .fetch_all(p)
    .await)?;
    rows.reverse();
    Ok(rows)
}

/// The conversation a message (by Meta's id) belongs to, for links from notifications.
pub async fn conversation_of_wamid(db: &Db, tenant: TenantId, wamid: &str) -> Result<Option<i64>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE tenant_id = $1 AND wamid = $2")
        .bind(tenant)
        .bind(wamid)
        .fetch_optional(p)
        .await)
}
