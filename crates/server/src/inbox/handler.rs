//! The inbox's part of the `messages` webhook: customer messages into conversations, statuses
//! onto the messages they concern.

use serde_json::json;
use wabridge_cloud_api::webhook::{Message, MessageContent, MessagesValue, Status, StatusKind, SystemKind};

use super::store::{self, NewMessage, status_event, status_rank};
use crate::accounts::TenantId;
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::live::NewEvent;
use crate::outbox;
use crate::store::Tx;
use crate::with_tx;

/// Keeps conversations and message statuses current from the `messages` field.
pub struct InboxHandler;

impl ChangeHandler for InboxHandler {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Some(value) = change.change.messages_value() else { return Ok(()) };
            let Some(number) = change.change.phone_number_id() else { return Ok(()) };
            for (i, message) in value.messages.iter().enumerate() {
                let fallback_id = format!("wabridge:{}:{}:{i}", change.journal_id, change.change_index);
                inbound(tx, change.tenant, number, value, message, &fallback_id, change, effects).await?;
            }
            for status in &value.statuses {
                apply_status(tx, change.tenant, status, change.now, effects).await?;
            }
            Ok(())
        })
    }
}

/// Text shown in lists for a message (the text, the caption, or the type).
pub fn preview_text(message: &serde_json::Value) -> String {
    let kind = message["type"].as_str().unwrap_or("unknown");
    let text = match kind {
        "text" => message["text"]["body"].as_str(),
        "image" | "video" | "document" => message[kind]["caption"].as_str().or(message[kind]["filename"].as_str()),
        "button" => message["button"]["text"].as_str(),
        "interactive" => message["interactive"]["button_reply"]["title"].as_str().or(message["interactive"]["list_reply"]["title"].as_str()),
        "location" => message["location"]["name"].as_str(),
        "template" => message["template"]["name"].as_str(),
        "reaction" => message["reaction"]["emoji"].as_str(),
        _ => None,
    };
    match text.filter(|t| !t.trim().is_empty()) {
        Some(t) => t.lines().next().unwrap_or_default().chars().take(140).collect(),
        None => format!("@type:{kind}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn inbound(
    tx: &mut Tx,
    tenant: TenantId,
    number: &str,
    value: &MessagesValue,
    message: &Message,
    fallback_id: &str,
    change: &RoutedChange<'_>,
    effects: &mut Effects,
) -> anyhow::Result<()> {
    let contact = value.contact_for(message);
    let bsuid = message.from_user_id.as_deref().or(contact.and_then(|c| c.user_id.as_deref()));
    let phone = message.from.as_deref().or(contact.and_then(|c| c.wa_id.as_deref()));
    if let MessageContent::System(system) = &message.content {
        // The customer changed number or BSUID: the same customer, under the new key.
        let (new_phone, new_bsuid) = match system.kind {
            Some(SystemKind::UserChangedNumber) => (system.wa_id.as_deref(), None),
            Some(SystemKind::UserChangedUserId) => (None, system.user_id.as_deref()),
            _ => (None, None),
        };
        if let Some(customer) = store::upsert_customer(tx, tenant, bsuid.or(system.previous_user_id.as_deref()), phone, None, None, change.now).await? {
            with_tx!(&mut *tx, |c| sqlx::query(
                "UPDATE customers SET phone = COALESCE($2, phone), bsuid = COALESCE($3, bsuid), updated_at = $4 WHERE id = $1
                   AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.tenant_id = $5 AND o.id <> $1 AND (o.phone = $2 OR o.bsuid = $3))"
            )
            .bind(customer)
            .bind(new_phone)
            .bind(new_bsuid)
            .bind(change.now)
            .bind(tenant)
            .execute(c)
            .await
            .map(drop))?;
        }
        return Ok(());
    }
    let name = contact.and_then(|c| c.name.as_deref());
    let username = contact.and_then(|c| c.username.as_deref());
    let Some(customer) = store::upsert_customer(tx, tenant, bsuid, phone, name, username, change.now).await? else {
        anyhow::bail!("message without any customer id");
    };
    let conversation = store::conversation_for(tx, tenant, number, customer, change.now).await?;
    let meta_at = message.timestamp.map_or(change.received_at, |s| s * 1000);
    let wamid = message.id.as_deref().unwrap_or(fallback_id);
    let kind = message.content.type_name().unwrap_or("unknown");
    let preview = preview_text(&message.raw);
    let body = if preview.starts_with("@type:") { String::new() } else { preview.clone() };
    let inserted = store::insert_message(
        tx,
        &NewMessage {
            tenant,
            conversation_id: conversation,
            direction: "in",
            wamid: Some(wamid),
            kind,
            body: &body,
            payload: &message.raw,
            reply_to: message.context.as_ref().and_then(|c| c.id.as_deref()),
            outbox_id: None,
            status: "received",
            meta_at,
        },
        change.now,
    )
    .await?;
    let Some(message_id) = inserted else { return Ok(()) };
    // Every customer message opens or restarts the window. A reaction only decorates another
    // message: it counts neither as unread nor — to stay on the safe side of 131047 — as
    // opening the window.
    let is_reaction = matches!(message.content, MessageContent::Reaction { .. });
    if !is_reaction {
        store::touch_conversation(tx, conversation, meta_at, &preview, true, true).await?;
    }
    effects.events.push(NewEvent {
        tenant,
        user: None,
        kind: "message".to_owned(),
        payload: json!({"conversation": conversation, "message": message_id, "inbound": true}),
    });
    Ok(())
}

/// Applies a status to the outbound message it concerns: found by Meta's id, or — when our
/// send timed out before we learned that id — by the outbox id Meta echoes. Statuses never
/// move backwards (`read` stays `read`; `failed` is final), because Meta does not keep order.
pub async fn apply_status(tx: &mut Tx, tenant: TenantId, status: &Status, now: i64, effects: &mut Effects) -> anyhow::Result<()> {
    let Some(kind) = &status.status else { return Ok(()) };
    let name = match kind {
        StatusKind::Played => "read",
        StatusKind::Other(_) => return Ok(()),
        other => other.as_str(),
    };
    let rank = status_rank(name);
    let outbox_id = outbox::id_from_callback(status.biz_opaque_callback_data.as_deref());
    let error_code = status.errors.first().and_then(|e| e.code);
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        conversation_id: i64,
    }
    // Two indexed lookups rather than one OR, which would scan every message.
    let mut found = match &status.id {
        Some(wamid) => with_tx!(&mut *tx, |c| sqlx::query_as::<_, Row>(
            "SELECT id, conversation_id FROM messages WHERE tenant_id = $1 AND wamid = $2 AND direction = 'out'"
        )
        .bind(tenant)
        .bind(wamid)
        .fetch_optional(c)
        .await)?,
        None => None,
    };
    if let (None, Some(id)) = (&found, outbox_id) {
        found = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Row>(
            "SELECT id, conversation_id FROM messages WHERE outbox_id = $1 AND tenant_id = $2"
        )
        .bind(id)
        .bind(tenant)
        .fetch_optional(c)
        .await)?;
    }
    if let Some(id) = outbox_id {
        // A send whose outcome was unknown is settled by the status that follows it.
        with_tx!(&mut *tx, |c| sqlx::query(
            "UPDATE outbox SET state = CASE WHEN $3 = 'failed' THEN 'failed' ELSE 'sent' END, wamid = COALESCE(wamid, $2),
                 error_code = COALESCE($4, error_code), updated_at = $5
             WHERE id = $1 AND tenant_id = $6 AND state IN ('unknown', 'sending', 'sent')"
        )
        .bind(id)
        .bind(&status.id)
        .bind(name)
        .bind(error_code)
        .bind(now)
        .bind(tenant)
        .execute(c)
        .await
        .map(drop))?;
    }
    let Some(row) = found else { return Ok(()) };
    let changed = with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE messages SET status = $2, status_rank = $3, wamid = COALESCE(wamid, $4), error_code = COALESCE($5, error_code)
         WHERE id = $1 AND status_rank < $3"
    )
    .bind(row.id)
    .bind(name)
    .bind(rank)
    .bind(&status.id)
    .bind(error_code)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed > 0 {
        effects.events.push(status_event(tenant, row.conversation_id, row.id));
    }
    Ok(())
}
