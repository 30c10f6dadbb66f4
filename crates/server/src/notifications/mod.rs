//! Notifications: read or unread per user, pushed live as a toast bottom-right, with an unread
//! count in the header and a list of recent ones. A notification names its user, or — a
//! customer's message to one of the tenant's numbers — none, and is then every user's of the
//! tenant (stored once), each reading it on their own: a read mark when they open it, a
//! watermark when they mark all read.

use std::borrow::Cow;
use std::fmt::Write as _;

use foldhash::{HashSet, HashSetExt as _};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;
use wabridge_cloud_api::webhook::{Message, MessageContent, MessagesValue};

use crate::accounts::{TenantId, UserId};
use crate::ingest::{AheadFuture, ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::live::NewEvent;
use crate::store::{Db, Tx, Val, insert_ids, json_text, select_in};
use crate::web::context::TenantMember;
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::Lang;
use crate::web::when::When;
use crate::web::{AppState, PageCtx, render};
use crate::{with_pool, with_tx};

/// Longest preview kept (the first line of a message).
const PREVIEW_CHARS: usize = 140;
/// Prefix of a stored preview that names a message type instead of quoting text.
const TYPE_PREFIX: &str = "@type:";
/// Prefix of a stored preview that is a translation key (a feature's own notification text).
pub const KEY_PREFIX: &str = "@key:";

/// Turns a customer message into a notification for every user of the tenant, and its toast.
#[derive(Default)]
pub struct InboundMessageNotifier {
    /// Keys of the toasts published ahead lately, so that a message Meta delivers twice
    /// before the first copy is applied is toasted once.
    recent: std::sync::Mutex<RecentKeys>,
}

/// The last [`RECENT_KEYS`] keys, forgotten oldest first.
#[derive(Default)]
struct RecentKeys {
    set: HashSet<(TenantId, String)>,
    order: std::collections::VecDeque<(TenantId, String)>,
}

/// Toast keys remembered (far more than the processor can be behind by in the feed's 64 MB).
const RECENT_KEYS: usize = 200_000;

impl RecentKeys {
    /// Remembers a key; false when it was known.
    fn insert(&mut self, key: (TenantId, String)) -> bool {
        if !self.set.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > RECENT_KEYS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// A customer message's notification, before it is stored.
struct Toast {
    journal_id: i64,
    tenant: TenantId,
    key: String,
    actor: String,
    preview: String,
    link: String,
    /// Which chat it is of: `<number id>:<customer's phone, or BSUID>` (a conversation's page
    /// in view shows the message itself and has no use for its toast).
    chat: String,
}

impl Toast {
    /// Its live event; `id` is the stored notification's when it is known.
    fn event(&self, id: Option<i64>) -> NewEvent {
        /// A toast's payload, written straight to its JSON text.
        #[derive(serde::Serialize)]
        struct Payload<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<i64>,
            key: &'a str,
            kind: &'a str,
            actor: &'a str,
            preview: &'a str,
            link: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            chat: &'a str,
        }
        let payload = Payload { id, key: &self.key, kind: "inbound_message", actor: &self.actor, preview: &self.preview, link: &self.link, chat: &self.chat };
        NewEvent::new(self.tenant, None, "notification", &payload)
    }
}

/// The notifications of the customer messages in these changes, in order.
fn toasts(changes: &[RoutedChange<'_>]) -> Vec<Toast> {
    let mut out = Vec::new();
    for change in changes {
        let Some(value) = change.change.messages_value() else { continue };
        for (i, message) in value.messages.iter().enumerate() {
            if matches!(message.content, MessageContent::System(_)) {
                continue;
            }
            let (key, link) = match &message.id {
                Some(id) => {
                    // Built in place, sized once: the toaster and the processor build one per
                    // customer message.
                    let mut link = String::with_capacity(40 + 3 * id.len());
                    link.push_str("/inbox/by-wamid/");
                    link.extend(url::form_urlencoded::byte_serialize(id.as_bytes()));
                    if let Some(at) = message.timestamp {
                        // Writing to a String cannot fail.
                        let _ = write!(link, "?at={at}");
                    }
                    (message_key(id, message.timestamp), link)
                }
                None => (format!("journal:{}:{}:{i}", change.journal_id, change.change_index), "/inbox".to_owned()),
            };
            // Named as the inbox keys the customer: by phone, else by BSUID.
            let customer = crate::inbox::handler::customer_key(change.tenant, value, message);
            let chat = match (change.change.phone_number_id(), customer.phone.or(customer.bsuid)) {
                (Some(number), Some(customer)) => format!("{number}:{}", customer.trim_start_matches('+')),
                _ => String::new(),
            };
            out.push(Toast {
                journal_id: change.journal_id,
                tenant: change.tenant,
                key,
                actor: actor_of(value, message),
                preview: preview_of(&message.content),
                link,
                chat,
            });
        }
    }
    out
}

/// Which of these keys (tenant, key) already name a tenant's notification.
async fn stored_keys<'k>(tx: &mut Tx, keys: impl IntoIterator<Item = (TenantId, &'k str)>) -> Result<HashSet<(TenantId, String)>, sqlx::Error> {
    Ok(select_in::<(String,), _>(tx, "SELECT dedupe_key FROM notifications WHERE user_id IS NULL AND tenant_id = $1", "dedupe_key", keys)
        .await?
        .into_iter()
        .map(|(t, (k,))| (t, k))
        .collect())
}

impl ChangeHandler for InboundMessageNotifier {
    fn name(&self) -> &'static str {
        "notifications"
    }

    /// The toast is what the tenant's users wait for: published as soon as the body is on
    /// disk, the notification stored when the body is applied.
    fn publishes_ahead(&self) -> bool {
        true
    }

    fn ahead<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>]) -> AheadFuture<'a> {
        Box::pin(async move {
            let toasts = toasts(changes);
            if toasts.is_empty() {
                return Ok(Vec::new());
            }
            // Not stored yet (a message Meta delivered again later is), and not toasted lately
            // (one delivered twice in a row is not stored yet when its second copy comes).
            let stored = stored_keys(tx, toasts.iter().map(|t| (t.tenant, t.key.as_str()))).await?;
            let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(toasts
                .iter()
                .filter(|t| !stored.contains(&(t.tenant, t.key.clone())) && recent.insert((t.tenant, t.key.clone())))
                .map(|t| t.event(None))
                .collect())
        })
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        self.apply_all(tx, std::slice::from_ref(change), effects)
    }

    fn apply_all<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>], effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let rows = toasts(changes);
            let Some(now) = changes.first().map(|c| c.now) else { return Ok(()) };
            // One notification per message for every user of the tenant (each reads it on their
            // own); a redelivered message already has it: one look-up, then an insert that
            // returns only ids.
            let existing = stored_keys(tx, rows.iter().map(|r| (r.tenant, r.key.as_str()))).await?;
            let mut seen = HashSet::new();
            let mut new: Vec<usize> = Vec::new();
            let mut values: Vec<Val<'_>> = Vec::new();
            for (i, t) in rows.iter().enumerate() {
                if existing.contains(&(t.tenant, t.key.clone())) || !seen.insert((t.tenant, t.key.as_str())) {
                    continue;
                }
                new.push(i);
                values.extend::<[Val<'_>; 8]>([
                    t.tenant.into(),
                    Val::Int(None),
                    "inbound_message".into(),
                    t.key.as_str().into(),
                    t.actor.as_str().into(),
                    t.preview.as_str().into(),
                    t.link.as_str().into(),
                    now.into(),
                ]);
            }
            let ids = insert_ids(tx, "INSERT INTO notifications (tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at)", 8, &values).await?;
            // Toasts in the order of the messages, for every user of the tenant — but those the
            // toaster published already.
            for (i, id) in new.into_iter().zip(ids) {
                if !effects.published_ahead.covers(rows[i].journal_id) {
                    effects.events.push(rows[i].event(Some(id)));
                }
            }
            Ok(())
        })
    }
}

/// The key that makes a customer message one notification however often Meta delivers it:
/// Meta's timestamp of the message, then its id. Meta's ids are scattered (base64 of the
/// customer's number and a random part): by the timestamp first, a tenant's new keys go to the
/// end of the key index instead of each to a random page of it, which the commit would write.
/// (A message notified before this key had its timestamp, as `msg:<id>`, and delivered again
/// after would be notified again.)
pub fn message_key(wamid: &str, timestamp: Option<i64>) -> String {
    let mut key = String::with_capacity(24 + wamid.len());
    match timestamp {
        // Writing to a String cannot fail.
        Some(at) => {
            let _ = write!(key, "msg:{at:011}:");
        }
        None => key.push_str("msg::"),
    }
    key.push_str(wamid);
    key
}

/// The message id in a customer message's notification key.
pub fn wamid_of_key(key: &str) -> Option<&str> {
    key.strip_prefix("msg:")?.split_once(':').map(|(_, wamid)| wamid)
}

fn actor_of(value: &MessagesValue, message: &Message) -> String {
    let contact = value.contact_for(message);
    contact
        .and_then(|c| c.name.clone().filter(|n| !n.trim().is_empty()))
        .or_else(|| contact.and_then(|c| c.username.clone()).map(|u| format!("@{u}")))
        .or_else(|| message.from.clone().filter(|f| !f.is_empty()).map(|f| format!("+{}", f.trim_start_matches('+'))))
        .or_else(|| message.from_user_id.clone())
        .unwrap_or_else(|| "?".to_owned())
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    let mut out: String = line.chars().take(PREVIEW_CHARS).collect();
    if line.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

fn preview_of(content: &MessageContent) -> String {
    let kind = match content {
        MessageContent::Text { body } => return first_line(body),
        MessageContent::Image(m) | MessageContent::Video(m) | MessageContent::Document(m) => {
            if let Some(caption) = m.caption.as_deref().filter(|c| !c.trim().is_empty()) {
                return first_line(caption);
            }
            match content {
                MessageContent::Image(_) => "image",
                MessageContent::Video(_) => "video",
                _ => "document",
            }
        }
        MessageContent::Audio(_) => "audio",
        MessageContent::Sticker(_) => "sticker",
        MessageContent::Location(_) => "location",
        MessageContent::Contacts(_) => "contacts",
        MessageContent::Button { text: Some(t), .. } => return first_line(t),
        MessageContent::Reaction { emoji: Some(e), .. } if !e.is_empty() => return e.clone(),
        MessageContent::Reaction { .. } => "reaction",
        MessageContent::Interactive(_) | MessageContent::Button { .. } => "reply",
        MessageContent::Order(_) => "order",
        _ => "other",
    };
    format!("{TYPE_PREFIX}{kind}")
}

/// A stored preview in the reader's language.
pub fn localize_preview(preview: &str, lang: Lang) -> String {
    if let Some(key) = preview.strip_prefix(KEY_PREFIX) {
        return lang.t(key).to_owned();
    }
    match preview.strip_prefix(TYPE_PREFIX) {
        Some(kind) => lang.t(&format!("message_type.{kind}")).to_owned(),
        None => preview.to_owned(),
    }
}

/// A notification's live event as stored (a toast, or a feature's notification of one user).
#[derive(serde::Deserialize)]
struct LiveNotification<'a> {
    id: Option<i64>,
    #[serde(borrow, default)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    actor: Cow<'a, str>,
    #[serde(borrow, default)]
    preview: Cow<'a, str>,
    #[serde(borrow, default)]
    link: Cow<'a, str>,
    #[serde(borrow, default)]
    chat: Cow<'a, str>,
}

/// A notification's live event as a reader's browser gets it.
#[derive(serde::Serialize)]
struct ShownNotification<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    #[serde(skip_serializing_if = "str::is_empty")]
    key: &'a str,
    kind: &'a str,
    actor: &'a str,
    title: String,
    preview: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    link: &'a str,
    open: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    chat: &'a str,
}

/// A live event's data (JSON text) in the reader's words: a notification gains its title, its
/// preview in the reader's language and the address that opens it; any other event is sent as
/// stored. Read into borrowed fields, not into a tree: a busy tenant's stream renders one per
/// customer message.
pub fn localize<'a>(kind: &str, data: &'a str, lang: Lang) -> Cow<'a, str> {
    if kind != "notification" {
        return Cow::Borrowed(data);
    }
    let Ok(n) = serde_json::from_str::<LiveNotification<'_>>(data) else { return Cow::Borrowed(data) };
    let kind = if n.kind.is_empty() { "inbound_message" } else { &n.kind };
    // A toast published before its notification was stored opens it by its key.
    let open = match n.id {
        Some(id) => format!("/notifications/{id}"),
        None => {
            let key: String = url::form_urlencoded::byte_serialize(n.key.as_bytes()).collect();
            format!("/notifications/open?key={key}")
        }
    };
    Cow::Owned(json_text(&ShownNotification {
        id: n.id,
        key: &n.key,
        kind,
        actor: &n.actor,
        title: lang.tf(&format!("notifications.title.{kind}"), "name", &n.actor),
        preview: localize_preview(&n.preview, lang),
        link: &n.link,
        open,
        chat: &n.chat,
    }))
}

/// A notification as listed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Who caused it.
    pub actor: String,
    /// Stored preview.
    pub preview: String,
    /// Where it leads.
    pub link: String,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Read, Unix ms.
    pub read_at: Option<i64>,
}

/// Marks read, for a user, the tenant's notifications of these customer messages (Meta's id
/// and time, Unix ms as stored): the messages are on the user's screen, so their
/// notifications are no longer news to them. Returns how many it marked.
pub async fn read_for_messages<'m>(db: &Db, tenant: TenantId, user: UserId, messages: impl IntoIterator<Item = (&'m str, i64)>, now: i64) -> Result<u64, sqlx::Error> {
    // Keyed by Meta's timestamp (whole seconds); a message notified before its key had its
    // time is keyed without it.
    let keys: Vec<(TenantId, String)> = messages
        .into_iter()
        .flat_map(|(wamid, at_ms)| [message_key(wamid, Some(at_ms.div_euclid(1000))), message_key(wamid, None)])
        .map(|k| (tenant, k))
        .collect();
    if keys.is_empty() {
        return Ok(0);
    }
    // Looked up on a reader: a conversation's page asks on every view, and mostly nothing is
    // left to mark; only then is the writer taken. (The user's id is an integer of ours.)
    let unread = format!(
        "SELECT id FROM notifications n WHERE user_id IS NULL AND tenant_id = $1
           AND NOT EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.user_id = {})",
        user.0
    );
    let mut read = db.begin_read().await?;
    let ids = select_in::<(i64,), _>(&mut read, &unread, "dedupe_key", keys).await?;
    drop(read);
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut marked = 0;
    for (_, (id,)) in ids {
        marked += read_shared(&mut tx, id, user, now).await?;
    }
    tx.commit().await?;
    Ok(marked)
}

/// Marks one of the tenant's shared notifications read for a user (once: the first time
/// counts); how many it marked.
async fn read_shared(tx: &mut Tx, id: i64, user: UserId, now: i64) -> Result<u64, sqlx::Error> {
    with_tx!(tx, |c| sqlx::query(
        "INSERT INTO notification_reads (notification_id, user_id, read_at) VALUES ($1, $2, $3) ON CONFLICT (notification_id, user_id) DO NOTHING"
    )
    .bind(id)
    .bind(user)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
}

/// Unread notifications of a user: their own unread ones, and the tenant's (every user's,
/// user_id NULL) since they joined, above their "all read" mark and not opened by them.
pub async fn unread_count(db: &Db, user: UserId) -> Result<i64, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(
        "SELECT (SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL)
              + (SELECT COUNT(*) FROM notifications n JOIN users u ON u.id = $1
                 WHERE n.user_id IS NULL AND n.tenant_id = u.tenant_id AND n.id > u.notifications_read_through AND n.created_at >= u.created_at
                   AND NOT EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.user_id = $1))"
    )
    .bind(user)
    .fetch_one(p)
    .await)
}

/// A user's most recent notifications, their own and the tenant's, with their read state.
pub async fn recent(db: &Db, user: UserId, limit: i64) -> Result<Vec<NotificationRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, NotificationRow>(
        "SELECT * FROM (
             SELECT * FROM (SELECT id, kind, actor, preview, link, created_at, read_at FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2) own
             UNION ALL
             SELECT * FROM (
                 SELECT n.id, n.kind, n.actor, n.preview, n.link, n.created_at,
                        CASE WHEN n.id <= u.notifications_read_through THEN n.created_at
                             ELSE (SELECT r.read_at FROM notification_reads r WHERE r.notification_id = n.id AND r.user_id = u.id) END AS read_at
                 FROM notifications n JOIN users u ON u.id = $1
                 WHERE n.user_id IS NULL AND n.tenant_id = u.tenant_id AND n.created_at >= u.created_at
                 ORDER BY n.id DESC LIMIT $2) shared
         ) mine ORDER BY id DESC LIMIT $2"
    )
    .bind(user)
    .bind(limit)
    .fetch_all(p)
    .await)
}

/// Every notification of a tenant with this dedupe key (tests and support).
pub async fn count_for_key(db: &Db, tenant: TenantId, dedupe_key: &str) -> Result<i64, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notifications WHERE tenant_id = $1 AND dedupe_key = $2")
        .bind(tenant)
        .bind(dedupe_key)
        .fetch_one(p)
        .await)
}

/// The notifications of a tenant for the customer message with this id (tests and support).
pub async fn count_for_message(db: &Db, tenant: TenantId, wamid: &str) -> Result<usize, sqlx::Error> {
    let keys = with_pool!(db.read(), |p| sqlx::query_scalar::<_, String>(
        "SELECT dedupe_key FROM notifications WHERE tenant_id = $1 AND kind = 'inbound_message' AND dedupe_key LIKE '%' || $2"
    )
    .bind(tenant)
    .bind(wamid)
    .fetch_all(p)
    .await)?;
    Ok(keys.iter().filter(|k| wamid_of_key(k) == Some(wamid)).count())
}

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(get_list))
        .route("/notifications/unread", get(get_unread))
        .route("/notifications/read", post(post_read_all))
        .route("/notifications/open", get(get_open_by_key))
        .route("/notifications/{id}", get(get_open))
}

struct Line {
    id: i64,
    title: String,
    preview: String,
    when: When,
    unread: bool,
}

#[derive(askama::Template)]
#[template(path = "notifications.html")]
struct ListPage {
    p: PageCtx,
    lines: Vec<Line>,
}

async fn get_list(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    let lang = member.ctx.lang;
    let lines = recent(&app.db, member.user.id, 100)
        .await?
        .into_iter()
        .map(|n| Line {
            id: n.id,
            title: lang.tf(&format!("notifications.title.{}", n.kind), "name", &n.actor),
            preview: localize_preview(&n.preview, lang),
            when: When(n.created_at),
            unread: n.read_at.is_none(),
        })
        .collect();
    render(&ListPage { lines, p: member.ctx.into() })
}

async fn get_unread(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    let n = unread_count(&app.db, member.user.id).await?;
    Ok(axum::Json(json!({"unread": n})).into_response())
}

async fn post_read_all(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    let mut tx = app.db.begin().await?;
    with_tx!(&mut tx, |c| sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
        .bind(app.clock.now_ms())
        .bind(member.user.id)
        .execute(c)
        .await
        .map(drop))?;
    // The tenant's notifications up to the latest count as read for this user.
    with_tx!(&mut tx, |c| sqlx::query(
        "UPDATE users SET notifications_read_through =
             (SELECT COALESCE(MAX(id), 0) FROM notifications WHERE user_id IS NULL AND tenant_id = $2)
         WHERE id = $1"
    )
    .bind(member.user.id)
    .bind(member.tenant)
    .execute(c)
    .await
    .map(drop))?;
    tx.commit().await?;
    Ok(Redirect::to("/notifications").into_response())
}

#[derive(serde::Deserialize)]
struct OpenQuery {
    key: String,
}

/// Opens a tenant's notification by its key: a toast published before its message was
/// applied has no id yet. Waits for it while the journal holds unapplied bodies.
async fn get_open_by_key(State(app): State<AppState>, member: TenantMember, axum::extract::Query(q): axum::extract::Query<OpenQuery>) -> AppResult<Response> {
    let id = crate::ingest::journal::wait_for_applied(&app.db, || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM notifications WHERE user_id IS NULL AND tenant_id = $1 AND dedupe_key = $2")
            .bind(member.tenant)
            .bind(&q.key)
            .fetch_optional(p)
            .await)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    open(&app, &member, id).await
}

async fn get_open(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>) -> AppResult<Response> {
    open(&app, &member, id).await
}

/// Marks a notification read for the member and leads to what it is about.
async fn open(app: &AppState, member: &TenantMember, id: i64) -> AppResult<Response> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    // The user (or, for the tenant's shared ones, the tenant) in the WHERE clause keeps other
    // users' and tenants' notifications out of reach.
    let own = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, String>(
        "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3 RETURNING link"
    )
    .bind(now)
    .bind(id)
    .bind(member.user.id)
    .fetch_optional(c)
    .await)?;
    let link = match own {
        Some(link) => link,
        None => {
            let shared = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, String>("SELECT link FROM notifications WHERE id = $1 AND user_id IS NULL AND tenant_id = $2")
                .bind(id)
                .bind(member.tenant)
                .fetch_optional(c)
                .await)?
            .ok_or(AppError::NotFound)?;
            read_shared(&mut tx, id, member.user.id, now).await?;
            shared
        }
    };
    tx.commit().await?;
    Ok(Redirect::to(&link).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_live_notification_is_put_in_the_readers_words_and_other_events_pass_as_stored() {
        // A toast before its notification is stored: no id, opened by its key; the actor's
        // name has a quote and an umlaut, which the reader must take back unchanged.
        let toast = Toast {
            journal_id: 1,
            tenant: TenantId(1),
            key: message_key("wamid.HBgM+/=", Some(1_770_000_000)),
            actor: "J\"ürgen \\ K.".to_owned(),
            preview: format!("{TYPE_PREFIX}image"),
            link: "/inbox/by-wamid/x".to_owned(),
            chat: "PN-1:4917612345678".to_owned(),
        };
        let event = toast.event(None);
        let shown: serde_json::Value = serde_json::from_str(&localize(&event.kind, &event.payload, Lang::De)).unwrap();
        assert_eq!(shown["title"], "Neue WhatsApp-Nachricht von J\"ürgen \\ K.");
        assert_eq!(shown["actor"], "J\"ürgen \\ K.");
        assert_eq!(shown["preview"], "Bild");
        assert_eq!(shown["link"], "/inbox/by-wamid/x");
        assert_eq!(shown["chat"], "PN-1:4917612345678", "which chat it is of");
        assert_eq!(shown["open"], "/notifications/open?key=msg%3A01770000000%3Awamid.HBgM%2B%2F%3D");
        assert!(shown.get("id").is_none(), "{shown}");
        // Once stored it is opened by its id; English reads English.
        let stored = toast.event(Some(9));
        let shown: serde_json::Value = serde_json::from_str(&localize(&stored.kind, &stored.payload, Lang::En)).unwrap();
        assert_eq!((shown["id"].as_i64(), shown["open"].as_str(), shown["preview"].as_str()), (Some(9), Some("/notifications/9"), Some("Image")));
        // Any other event, and a notification that cannot be read, are sent as stored.
        assert_eq!(localize("message", r#"{"conversation":3}"#, Lang::De), r#"{"conversation":3}"#);
        assert_eq!(localize("notification", r#"{"id":"seven"}"#, Lang::De), r#"{"id":"seven"}"#);
    }

    #[test]
    fn a_message_key_orders_by_meta_time_and_gives_back_its_id() {
        let earlier = message_key("wamid.HBgMNDkxNzA=", Some(1_770_000_000));
        let later = message_key("wamid.A", Some(1_770_000_001));
        assert!(earlier < later, "{earlier} sorts before {later}");
        assert_eq!(wamid_of_key(&earlier), Some("wamid.HBgMNDkxNzA="));
        assert_eq!(wamid_of_key(&message_key("wamid.B", None)), Some("wamid.B"));
        assert_eq!(wamid_of_key("health:1:ok:2"), None);
    }
}
