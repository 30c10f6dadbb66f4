//! The inbox's part of the `messages` webhook: customer messages into conversations, statuses
//! onto the messages they concern — set-wise for a whole batch of changes, so that a message
//! costs a share of a few statements rather than several of its own.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt as _};

use wabridge_cloud_api::webhook::{Message, MessageContent, MessagesValue, Status, StatusKind, SystemKind};

use super::media;
use super::store::{self, CustomerKey, Moved, NewInbound, NewMessage, Touch, message_event, status_rank};
use crate::accounts::TenantId;
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::outbox;
use crate::store::{Tx, keep_prepared, select_in, statement_chunks, value_rows};
use crate::with_tx;

/// Keeps conversations and message statuses current from the `messages` field.
pub struct InboxHandler;

impl ChangeHandler for InboxHandler {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        self.apply_all(tx, std::slice::from_ref(change), effects)
    }

    fn apply_all<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>], effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            // Customer messages in order; a changed number or BSUID is applied between the
            // messages before it and those after it.
            let mut run = Vec::new();
            let mut statuses = Vec::new();
            for change in changes {
                let (Some(value), Some(number)) = (change.change.messages_value(), change.change.phone_number_id()) else { continue };
                for (i, message) in value.messages.iter().enumerate() {
                    if let MessageContent::System(system) = &message.content {
                        inbound(tx, &run, effects).await?;
                        run.clear();
                        changed_identity(tx, change, value, message, system).await?;
                        continue;
                    }
                    run.push(Inbound { change, number, value, message, index: i });
                }
                statuses.extend(value.statuses.iter().map(|s| (change.tenant, s)));
            }
            inbound(tx, &run, effects).await?;
            apply_statuses(tx, &statuses, changes.first().map_or(0, |c| c.now), effects).await
        })
    }
}

/// A customer message of a batch.
struct Inbound<'a> {
    change: &'a RoutedChange<'a>,
    number: &'a str,
    value: &'a MessagesValue,
    message: &'a Message,
    /// Position in its change (names a message without Meta's id).
    index: usize,
}

impl Inbound<'_> {
    /// The message's JSON as Meta sent it.
    fn raw(&self) -> &serde_json::Value {
        self.change.change.change.raw_message(self.index).unwrap_or(&serde_json::Value::Null)
    }

    /// The message's JSON text as Meta sent it (from the body's text when the fast parse read
    /// it: no tree is built for it).
    fn raw_json(&self) -> std::borrow::Cow<'_, str> {
        self.change.change.change.raw_message_json(self.index).unwrap_or(std::borrow::Cow::Borrowed("null"))
    }

    /// The list preview: a text message's from its typed text (again no tree), any other
    /// from its JSON.
    fn preview(&self) -> String {
        match &self.message.content {
            MessageContent::Text { body } => first_line_or_type(Some(body), "text"),
            _ => preview_text(self.raw()),
        }
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
    first_line_or_type(text, kind)
}

/// The first line of a text (140 characters at most), or the type's marker when it is empty.
pub fn first_line_or_type(text: Option<&str>, kind: &str) -> String {
    match text.filter(|t| !t.trim().is_empty()) {
        Some(t) => t.lines().next().unwrap_or_default().chars().take(140).collect(),
        None => format!("@type:{kind}"),
    }
}


/// Who sent a message, as its keys and profile name it.
pub fn customer_key<'a>(tenant: TenantId, value: &'a MessagesValue, message: &'a Message) -> CustomerKey<'a> {
    let contact = value.contact_for(message);
    CustomerKey {
        tenant,
        bsuid: message.from_user_id.as_deref().or(contact.and_then(|c| c.user_id.as_deref())),
        phone: message.from.as_deref().or(contact.and_then(|c| c.wa_id.as_deref())),
        name: contact.and_then(|c| c.name.as_deref()),
        username: contact.and_then(|c| c.username.as_deref()),
    }
}

/// Stores customer messages: customers, conversations, messages and the conversations'
/// state, each with a few statements for the whole run.
async fn inbound(tx: &mut Tx, run: &[Inbound<'_>], effects: &mut Effects) -> anyhow::Result<()> {
    let Some(first) = run.first() else { return Ok(()) };
    let now = first.change.now;
    let keys: Vec<CustomerKey<'_>> = run.iter().map(|m| customer_key(m.change.tenant, m.value, m.message)).collect();
    let customers = store::resolve_customers(tx, &keys, now)
        .await?
        .into_iter()
        .map(|c| c.ok_or_else(|| anyhow::anyhow!("message without any customer id")))
        .collect::<anyhow::Result<Vec<i64>>>()?;
    // A message without Meta's id (peers' test bodies) is named by its place in the journal.
    let wamids: Vec<std::borrow::Cow<'_, str>> = run
        .iter()
        .map(|m| match m.message.id.as_deref() {
            Some(id) => std::borrow::Cow::Borrowed(id),
            None => std::borrow::Cow::Owned(format!("wabridge:{}:{}:{}", m.change.journal_id, m.change.change_index, m.index)),
        })
        .collect();
    // A redelivered message changes nothing.
    let meta_at = |m: &Inbound<'_>| store::inbound_at(m.message, m.change.received_at);
    let fresh = store::unstored(tx, &run.iter().zip(&wamids).map(|(m, w)| (m.change.tenant, meta_at(m), w.as_ref())).collect::<Vec<_>>()).await?;
    let previews: Vec<String> = run.iter().map(Inbound::preview).collect();
    let payloads: Vec<std::borrow::Cow<'_, str>> = run.iter().map(Inbound::raw_json).collect();
    // Every customer message opens or restarts the window. A reaction only decorates another
    // message: it counts neither as unread nor — to stay on the safe side of 131047 — as
    // opening the window.
    let touch = |i: usize| {
        let m = &run[i];
        (fresh[i] && !matches!(m.message.content, MessageContent::Reaction { .. }))
            .then(|| Touch { conversation: 0, at: meta_at(m), arrival: m.change.journal_id, preview: &previews[i], from_customer: true, opens_window: true })
    };
    // New conversations start as their new messages leave them; the others move after.
    let starts: HashMap<(&str, i64), Moved<'_>> =
        Moved::fold((0..run.len()).filter_map(|i| touch(i).map(|t| ((run[i].number, customers[i]), Moved::of(&t))))).into_iter().collect();
    let pairs: Vec<(TenantId, &str, i64)> = run.iter().zip(&customers).map(|(m, &c)| (m.change.tenant, m.number, c)).collect();
    let (conversations, created) = store::conversations_for(tx, &pairs, &starts, now).await?;
    let new: Vec<usize> = (0..run.len()).filter(|&i| fresh[i]).collect();
    let news: Vec<NewInbound<'_>> = new
        .iter()
        .map(|&i| {
            let m = &run[i];
            NewInbound {
                wamid: &wamids[i],
                arrival: m.change.journal_id,
                message: NewMessage {
                    tenant: m.change.tenant,
                    conversation_id: conversations[i],
                    direction: "in",
                    wamid: Some(&wamids[i]),
                    kind: m.message.content.type_name().unwrap_or("unknown"),
                    body: if previews[i].starts_with("@type:") { "" } else { &previews[i] },
                    payload: &payloads[i],
                    reply_to: m.message.context.as_ref().and_then(|c| c.id.as_deref()),
                    outbox_id: None,
                    status: "received",
                    meta_at: meta_at(m),
                },
            }
        })
        .collect();
    let ids = store::insert_inbound(tx, &news, now).await?;
    // Files are fetched as they arrive: Meta keeps them for seven days only.
    let files: Vec<media::NewMedia<'_>> = new
        .iter()
        .zip(&ids)
        .filter_map(|(&i, &message_id)| {
            let m = &run[i];
            let file = m.message.content.media()?;
            Some(media::NewMedia {
                tenant: m.change.tenant,
                phone_number_id: m.number,
                media_id: file.id.as_deref()?,
                mime_type: file.mime_type.as_deref(),
                filename: file.filename.as_deref(),
                url: file.url.as_deref(),
                message_id,
            })
        })
        .collect();
    media::record_pending(tx, &files, now).await?;
    let mut touches = Vec::with_capacity(new.len());
    for (&i, message_id) in new.iter().zip(ids) {
        if let Some(t) = touch(i).filter(|_| !created.contains(&conversations[i])) {
            touches.push(Touch { conversation: conversations[i], ..t });
        }
        effects.events.push(message_event(run[i].change.tenant, conversations[i], message_id, true));
    }
    store::touch_conversations(tx, &touches).await?;
    Ok(())
}

/// The customer changed number or BSUID: the same customer, under the new key.
async fn changed_identity(
    tx: &mut Tx,
    change: &RoutedChange<'_>,
    value: &MessagesValue,
    message: &Message,
    system: &wabridge_cloud_api::webhook::SystemChange,
) -> anyhow::Result<()> {
    let key = customer_key(change.tenant, value, message);
    let (new_phone, new_bsuid) = match system.kind {
        Some(SystemKind::UserChangedNumber) => (system.wa_id.as_deref(), None),
        Some(SystemKind::UserChangedUserId) => (None, system.user_id.as_deref()),
        _ => (None, None),
    };
    let bsuid = key.bsuid.or(system.previous_user_id.as_deref());
    let Some(customer) = store::upsert_customer(tx, change.tenant, bsuid, key.phone, None, None, change.now).await? else { return Ok(()) };
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE customers SET phone = COALESCE($2, phone), bsuid = COALESCE($3, bsuid), updated_at = $4 WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.tenant_id = $5 AND o.id <> $1 AND (o.phone = $2 OR o.bsuid = $3))"
    )
    .bind(customer)
    .bind(new_phone)
    .bind(new_bsuid)
    .bind(change.now)
    .bind(change.tenant)
    .execute(c)
    .await
    .map(drop))?;
    Ok(())
}

/// A status, with what it means for us.
struct StatusItem<'a> {
    tenant: TenantId,
    wamid: Option<&'a str>,
    name: &'a str,
    rank: i64,
    outbox: Option<i64>,
    error_code: Option<i64>,
}

/// Applies statuses to the outbound messages they concern: found by Meta's id, or — when our
/// send timed out before we learned that id — by the outbox id Meta echoes. Statuses never
/// move backwards (`read` stays `read`; `failed` is final), because Meta does not keep order.
/// Set-wise: a look-up per tenant, one update for the outbox and one for the messages.
pub async fn apply_statuses(tx: &mut Tx, statuses: &[(TenantId, &Status)], now: i64, effects: &mut Effects) -> anyhow::Result<()> {
    let items: Vec<StatusItem<'_>> = statuses
        .iter()
        .filter_map(|&(tenant, status)| {
            let name = match status.status.as_ref()? {
                StatusKind::Played => "read",
                StatusKind::Other(_) => return None,
                other => other.as_str(),
            };
            Some(StatusItem {
                tenant,
                wamid: status.id.as_deref(),
                name,
                rank: status_rank(name),
                outbox: outbox::id_from_callback(status.biz_opaque_callback_data.as_deref()).map(|o| o.0),
                error_code: status.errors.first().and_then(|e| e.code),
            })
        })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    // The messages: by Meta's id, else by the outbox id.
    const FOUND: &str = "SELECT id, wamid, outbox_id FROM messages WHERE tenant_id = $1";
    // `+` keeps SQLite on the outbox index instead of scanning the tenant's messages.
    const FOUND_BY_OUTBOX: &str = "SELECT id, wamid, outbox_id FROM messages WHERE +tenant_id = $1";
    type Found = (i64, Option<String>, Option<i64>);
    let mut by_wamid: HashMap<(TenantId, String), i64> = HashMap::new();
    for (tenant, (id, wamid, _)) in select_in::<Found, _>(tx, FOUND, "direction = 'out' AND wamid", items.iter().filter_map(|i| i.wamid.map(|w| (i.tenant, w.to_owned())))).await? {
        by_wamid.extend(wamid.map(|w| ((tenant, w), id)));
    }
    let unmatched = |i: &StatusItem<'_>| i.wamid.is_none_or(|w| !by_wamid.contains_key(&(i.tenant, w.to_owned())));
    let mut by_outbox: HashMap<(TenantId, i64), i64> = HashMap::new();
    for (tenant, (id, _, outbox)) in select_in::<Found, _>(tx, FOUND_BY_OUTBOX, "outbox_id", items.iter().filter(|i| unmatched(i)).filter_map(|i| i.outbox.map(|o| (i.tenant, o)))).await? {
        by_outbox.extend(outbox.map(|o| ((tenant, o), id)));
    }

    // A send whose outcome was unknown is settled by the status that follows it: failed if
    // any status says so, sent otherwise.
    // By outbox id (and so in id order: two instances lock the rows alike).
    let mut outbox_rows: BTreeMap<i64, (TenantId, Option<&str>, &str, Option<i64>)> = BTreeMap::new();
    for item in &items {
        let Some(id) = item.outbox else { continue };
        let row = outbox_rows.entry(id).or_insert((item.tenant, item.wamid, item.name, item.error_code));
        row.1 = row.1.or(item.wamid);
        if item.name == "failed" {
            row.2 = "failed";
        }
        row.3 = item.error_code.or(row.3);
    }
    let outbox_rows: Vec<(i64, TenantId, Option<&str>, &str, Option<i64>)> = outbox_rows.into_iter().map(|(id, (t, w, n, c))| (id, t, w, n, c)).collect();
    for chunk in statement_chunks(tx.engine(), &outbox_rows) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!(
            "UPDATE outbox SET state = CASE WHEN v.column4 = 'failed' THEN 'failed' ELSE 'sent' END, wamid = COALESCE(outbox.wamid, v.column3),
                 error_code = COALESCE(v.column5, outbox.error_code), updated_at = v.column6
             FROM (VALUES {}) AS v WHERE outbox.id = v.column1 AND outbox.tenant_id = v.column2 AND outbox.state IN ('unknown', 'sending', 'sent')",
            value_rows(tx.engine(), chunk.len(), 6, 1)
        );
        with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for (id, tenant, wamid, name, code) in chunk {
                q = q.bind(id).bind(tenant).bind(wamid).bind(*name).bind(code).bind(now);
            }
            q.execute(c).await.map(drop)
        })?;
    }

    // Per message the highest status of the batch; the update keeps a higher one stored.
    let mut best: Vec<(i64, &StatusItem<'_>)> = Vec::new();
    let mut at_of: HashMap<i64, usize> = HashMap::new();
    for item in &items {
        let found = item
            .wamid
            .and_then(|w| by_wamid.get(&(item.tenant, w.to_owned())))
            .or_else(|| item.outbox.and_then(|o| by_outbox.get(&(item.tenant, o))));
        let Some(&message) = found else { continue };
        match at_of.get(&message) {
            Some(&i) if best[i].1.rank >= item.rank => {}
            Some(&i) => best[i].1 = item,
            None => {
                at_of.insert(message, best.len());
                best.push((message, item));
            }
        }
    }
    // In id order, so that two instances updating the same messages lock them alike.
    best.sort_unstable_by_key(|b| b.0);
    let mut changed: Vec<(i64, i64, TenantId)> = Vec::new();
    for chunk in statement_chunks(tx.engine(), &best) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!(
            "UPDATE messages SET status = v.column2, status_rank = v.column3, wamid = COALESCE(messages.wamid, v.column4),
                 error_code = COALESCE(v.column5, messages.error_code)
             FROM (VALUES {}) AS v WHERE messages.id = v.column1 AND messages.status_rank < v.column3
             RETURNING messages.id, messages.conversation_id, messages.tenant_id",
            value_rows(tx.engine(), chunk.len(), 5, 1)
        );
        let rows = with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query_as::<_, (i64, i64, TenantId)>(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for (message, item) in chunk {
                q = q.bind(message).bind(item.name).bind(item.rank).bind(item.wamid).bind(item.error_code);
            }
            q.fetch_all(c).await
        })?;
        changed.extend(rows);
    }
    changed.sort_unstable_by_key(|c| c.0);
    for (id, conversation, tenant) in changed {
        effects.events.push(message_event(tenant, conversation, id, false));
    }
    Ok(())
}
