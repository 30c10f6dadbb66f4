//! The inbox: conversations with customers, every inbound message type, replies inside the
//! 24-hour window (see [`window`]), sent through the one outbox.

pub mod bucket;
pub mod handler;
pub mod media;
pub mod store;
pub mod view;
pub mod window;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use serde::Deserialize;
use wabridge_cloud_api::client::message::{OutboundContent, ReactionBody};
use wabridge_cloud_api::{OutboundMessage, Recipient};

pub use store::{OutcomeUpdate, record_outcome};

use crate::accounts::TenantId;
use crate::live::{self, NewEvent};
use crate::outbox::{self, EnqueueError, NewSend, Operation, OutboxId};
use crate::store::{Db, json_text};
use crate::web::context::TenantMember;
use crate::web::error::{AppError, AppResult};
use crate::web::when::When;
use crate::web::{AppState, PageCtx, render};
use crate::{with_pool, with_tx};
use window::CustomerServiceWindow;

/// Longest text WhatsApp takes.
pub const MAX_TEXT: usize = 4096;
/// Conversations per page of the list.
const PAGE: i64 = 30;
/// Messages shown in a conversation.
const SHOWN: i64 = 200;

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(get_list))
        .route("/inbox/{id}", get(get_conversation))
        .route("/inbox/{id}/messages", get(get_messages))
        .route("/inbox/{id}/reply", post(post_reply))
        .route("/inbox/{id}/react", post(post_react))
        .route("/inbox/{id}/seen", post(post_seen))
        .route("/inbox/{id}/attach", post(post_attach))
        .route("/inbox/media/{message_id}", get(get_media))
        .route("/inbox/by-wamid/{wamid}", get(get_by_wamid))
}

/// Why a free-form send was refused before reaching Meta.
#[derive(Debug, thiserror::Error)]
pub enum SendRefusal {
    /// The 24-hour window is closed: only a template may be sent.
    #[error("the customer service window is closed")]
    WindowClosed,
    /// The number cannot send (not connected, no token).
    #[error("the number is not connected")]
    NotConnected,
    /// Empty or longer than WhatsApp allows.
    #[error("the text is empty or too long")]
    BadText,
    /// No such conversation for this tenant.
    #[error("no such conversation")]
    NotFound,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<SendRefusal> for AppError {
    fn from(e: SendRefusal) -> Self {
        match e {
            SendRefusal::WindowClosed => AppError::BadRequest("window_closed"),
            SendRefusal::NotConnected => AppError::BadRequest("not_connected"),
            SendRefusal::BadText => AppError::BadRequest("bad_text"),
            SendRefusal::NotFound => AppError::NotFound,
            SendRefusal::Db(e) => AppError::from(e),
        }
    }
}

/// The recipient of a conversation's customer: the phone when known, else the BSUID.
fn recipient(c: &store::ConversationRow) -> Option<Recipient> {
    c.phone.clone().map(Recipient::Phone).or_else(|| c.bsuid.clone().map(Recipient::UserId))
}

/// A sent message as the caller learns it.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Outbox id.
    pub outbox: OutboxId,
    /// Message id in the conversation.
    pub message: i64,
    /// False when an idempotency key returned an earlier send.
    pub created: bool,
}

/// Records an outbound message in a conversation and the outbox, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn record_send(
    app: &AppState,
    tenant: TenantId,
    conversation: &store::ConversationRow,
    message: OutboundMessage,
    kind: &str,
    body: &str,
    category: Option<&str>,
    idempotency_key: Option<String>,
) -> Result<Sent, SendRefusal> {
    let now = app.clock.now_ms();
    let payload = serde_json::to_value(&message).unwrap_or_default();
    let reply_to = message.context.as_ref().map(|c| c.message_id.clone());
    let mut tx = app.db.begin().await?;
    let send = NewSend {
        tenant,
        phone_number_id: conversation.phone_number_id.clone(),
        conversation_id: Some(conversation.id),
        operation: Operation::Send { message: Box::new(message) },
        category: category.map(str::to_owned),
        idempotency_key,
    };
    let enqueued = match outbox::enqueue(&mut tx, &send, now).await {
        Ok(e) => e,
        Err(EnqueueError::NotConnected) => return Err(SendRefusal::NotConnected),
        Err(EnqueueError::Db(e)) => return Err(SendRefusal::Db(e)),
    };
    if !enqueued.created {
        let message = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, i64>("SELECT id FROM messages WHERE outbox_id = $1")
            .bind(enqueued.id)
            .fetch_optional(c)
            .await)?
        .unwrap_or(0);
        return Ok(Sent { outbox: enqueued.id, message, created: false });
    }
    // A template's line in the list is the text the customer read, not the template's name.
    let preview = if kind == "template" { handler::first_line_or_type(Some(body), kind) } else { handler::preview_text(&payload) };
    let payload = json_text(&payload);
    let message_id = store::insert_message(
        &mut tx,
        &store::NewMessage {
            tenant,
            conversation_id: conversation.id,
            direction: "out",
            wamid: None,
            kind,
            body,
            payload: &payload,
            reply_to: reply_to.as_deref(),
            outbox_id: Some(enqueued.id),
            status: "queued",
            meta_at: now,
        },
        now,
    )
    .await?
    .unwrap_or(0);
    if kind != "reaction" {
        store::touch_conversation(&mut tx, conversation.id, now, &preview, false, false).await?;
    }
    live::commit(&app.db, &app.live, tx, &[store::message_event(tenant, conversation.id, message_id, false)], now).await?;
    app.outbox_wake.notify_one();
    Ok(Sent { outbox: enqueued.id, message: message_id, created: true })
}

/// Sends free-form text in a conversation — only inside the customer service window.
pub async fn send_text(
    app: &AppState,
    tenant: TenantId,
    conversation_id: i64,
    text: &str,
    reply_to: Option<&str>,
    idempotency_key: Option<String>,
) -> Result<Sent, SendRefusal> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(SendRefusal::BadText);
    }
    let conversation = store::conversation(&app.db, tenant, conversation_id).await?.ok_or(SendRefusal::NotFound)?;
    if !CustomerServiceWindow::at(conversation.last_customer_message_at, app.clock.now_ms()).is_open() {
        return Err(SendRefusal::WindowClosed);
    }
    let to = recipient(&conversation).ok_or(SendRefusal::NotFound)?;
    let mut message = OutboundMessage::text(to, text);
    if let Some(wamid) = reply_to.filter(|w| !w.is_empty()) {
        // Only a message of this conversation can be quoted.
        if wamid.len() > 256 || !store::in_conversation(&app.db, tenant, conversation_id, wamid).await? {
            return Err(SendRefusal::NotFound);
        }
        message = message.reply_to(wamid);
    }
    record_send(app, tenant, &conversation, message, "text", text, Some("service"), idempotency_key).await
}

struct ConversationLine {
    row: store::ConversationRow,
    title: String,
    window_open: bool,
    remaining: String,
    closes_at: i64,
    preview: String,
    /// The tenant's number it is on, when the tenant has several.
    via: Option<String>,
    /// Its last message's time.
    at: When,
}

impl ConversationLine {
    /// The customer's phone and username beside the title, leaving out what the title is.
    fn details(&self) -> String {
        let phone = self.row.phone.as_ref().map(|p| format!("+{p}"));
        let username = self.row.username.as_ref().map(|u| format!("@{u}"));
        [phone, username].into_iter().flatten().filter(|d| *d != self.title).collect::<Vec<_>>().join(" · ")
    }

    /// Says which of the tenant's numbers the conversation is on, when it has several.
    fn with_number(mut self, several: bool) -> ConversationLine {
        self.via = several.then(|| self.row.number_label.clone().unwrap_or_else(|| self.row.phone_number_id.clone()));
        self
    }
}

fn title_of(c: &store::ConversationRow) -> String {
    c.name
        .clone()
        .or_else(|| c.username.as_ref().map(|u| format!("@{u}")))
        .or_else(|| c.phone.as_ref().map(|p| format!("+{p}")))
        .or_else(|| c.bsuid.clone())
        .unwrap_or_else(|| "?".to_owned())
}

fn line(row: store::ConversationRow, now: i64, lang: crate::web::i18n::Lang) -> ConversationLine {
    let w = CustomerServiceWindow::at(row.last_customer_message_at, now);
    ConversationLine {
        title: title_of(&row),
        window_open: w.is_open(),
        remaining: window::format_remaining(w.remaining_ms(now)),
        closes_at: match w {
            CustomerServiceWindow::Open { closes_at } => closes_at,
            CustomerServiceWindow::Closed { .. } => 0,
        },
        preview: crate::notifications::localize_preview(&row.last_preview, lang),
        via: None,
        at: When(row.last_message_at),
        row,
    }
}

#[derive(askama::Template)]
#[template(path = "inbox_list.html")]
struct ListPage {
    p: PageCtx,
    lines: Vec<ConversationLine>,
    q: String,
    /// Where the next page starts (`last_message_at`, id of this page's last conversation).
    next_before: Option<(i64, i64)>,
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    before: Option<i64>,
    before_id: Option<i64>,
}

async fn get_list(State(app): State<AppState>, member: TenantMember, Query(q): Query<ListQuery>) -> AppResult<Response> {
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| s.chars().take(100).collect::<String>());
    let before = q.before.map(|at| store::Before { at, id: q.before_id });
    let rows = store::conversations(&app.db, member.tenant, search.as_deref(), before, PAGE + 1).await?;
    let now = app.clock.now_ms();
    let more = rows.len() as i64 > PAGE;
    let several = store::number_count(&app.db, member.tenant).await? > 1;
    let lines: Vec<_> = rows.into_iter().take(PAGE as usize).map(|r| line(r, now, member.ctx.lang).with_number(several)).collect();
    let next_before = if more { lines.last().map(|l| (l.row.last_message_at, l.row.id)) } else { None };
    render(&ListPage { lines, q: search.unwrap_or_default(), next_before, p: member.ctx.into() })
}

#[derive(askama::Template)]
#[template(path = "inbox_conversation.html")]
struct ConversationPage {
    p: PageCtx,
    c: ConversationLine,
    messages: Vec<view::MessageView>,
    /// Where the messages before these start, when there are any.
    older: Option<store::Place>,
    /// Showing older messages, not the newest (no live refresh, a way back).
    viewing_older: bool,
    reply_to: Option<view::MessageView>,
    notice: Option<&'static str>,
}

#[derive(askama::Template)]
#[template(path = "inbox_messages.html")]
struct MessagesPartial {
    p: PageCtx,
    messages: Vec<view::MessageView>,
    older: Option<store::Place>,
    c: ConversationLine,
}

#[derive(Deserialize)]
struct ConversationQuery {
    reply_to: Option<String>,
    notice: Option<String>,
    /// Older messages: those before the message at this place (time, arrival and id).
    before: Option<i64>,
    before_arrival: Option<i64>,
    before_id: Option<i64>,
}

impl ConversationQuery {
    /// Where the page ends, if it is an older one. (A link without the arrival — from before
    /// there was one — leaves in every message of that instant; without the id, none.)
    fn before(&self) -> Option<store::Place> {
        let arrival = self.before_arrival.unwrap_or(if self.before_id.is_some() { i64::MAX } else { i64::MIN });
        self.before.map(|at| store::Place { at, arrival, id: self.before_id.unwrap_or(i64::MIN) })
    }
}

/// A conversation with [`SHOWN`] of its messages (the newest, or those before `before`), and
/// where the ones before them start when there are more.
async fn load(app: &AppState, tenant: TenantId, id: i64, lang: crate::web::i18n::Lang, before: Option<store::Place>) -> AppResult<(ConversationLine, Vec<view::MessageView>, Option<store::Place>)> {
    let row = store::conversation(&app.db, tenant, id).await?.ok_or(AppError::NotFound)?;
    let mut rows = store::messages(&app.db, tenant, id, SHOWN + 1, before).await?;
    let older = (rows.len() as i64 > SHOWN).then(|| {
        rows.remove(0);
        store::Place::of(&rows[0])
    });
    // A page of a long conversation: reactions to its messages and messages it quotes may lie
    // beyond it.
    let context = if older.is_some() || before.is_some() {
        let quoted: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.reply_to_wamid.as_deref())
            .filter(|w| rows.iter().all(|r| r.wamid.as_deref() != Some(*w)))
            .collect();
        store::reactions_and(&app.db, tenant, id, &quoted).await?
    } else {
        Vec::new()
    };
    let now = app.clock.now_ms();
    Ok((line(row, now, lang), view::build(&rows, &context, lang), older))
}

async fn get_conversation(State(app): State<AppState>, mut member: TenantMember, Path(id): Path<i64>, Query(q): Query<ConversationQuery>) -> AppResult<Response> {
    let before = q.before();
    let (c, messages, older) = load(&app, member.tenant, id, member.ctx.lang, before).await?;
    let c = c.with_number(store::number_count(&app.db, member.tenant).await? > 1);
    if c.row.unread > 0 {
        mark_read(&app, member.tenant, &c.row).await?;
    }
    // The customer's messages on the screen are no longer news to this user: their
    // notifications are read (the header's count, rendered after, says so).
    let shown: Vec<(&str, i64)> = messages.iter().filter(|m| !m.outgoing).filter_map(|m| Some((m.wamid.as_deref()?, m.time.0))).collect();
    if let Some(unread) = read_notifications_of(&app, &member, &shown).await? {
        member.ctx.unread = Some(unread);
    }
    let reply_to = q.reply_to.as_deref().and_then(|w| messages.iter().find(|m| m.wamid.as_deref() == Some(w)).cloned());
    let notice = match q.notice.as_deref() {
        Some("window_closed") => Some("inbox.window_closed_refused"),
        Some("bad_text") => Some("error.bad_text"),
        Some("not_connected") => Some("error.not_connected"),
        _ => None,
    };
    render(&ConversationPage { c, messages, older, viewing_older: before.is_some(), reply_to, notice, p: member.ctx.into() })
}

/// Reads, for the member, the notifications of these customer messages (Meta's id and time
/// in Unix ms); their unread count after, when it changed.
async fn read_notifications_of(app: &AppState, member: &TenantMember, messages: &[(&str, i64)]) -> AppResult<Option<i64>> {
    if crate::notifications::read_for_messages(&app.db, member.tenant, member.user.id, messages.iter().copied(), app.clock.now_ms()).await? == 0 {
        return Ok(None);
    }
    Ok(Some(crate::notifications::unread_count(&app.db, member.user.id).await?))
}

/// How many of the latest customer messages a conversation reported seen reads the
/// notifications of (the page reports it when a customer message arrives while its tab is
/// visible, and when the tab becomes visible again).
const SEEN_RECENT: i64 = 50;

/// The open conversation is on the member's screen: read as when it is opened — at Meta (the
/// customer's blue ticks) and the member's notifications of its latest customer messages.
/// Answers the member's unread count.
async fn post_seen(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>) -> AppResult<Response> {
    let row = store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    if row.unread > 0 {
        mark_read(&app, member.tenant, &row).await?;
    }
    let latest = store::latest_inbound(&app.db, member.tenant, id, SEEN_RECENT).await?;
    let latest: Vec<(&str, i64)> = latest.iter().map(|(w, at)| (w.as_str(), *at)).collect();
    let unread = match read_notifications_of(&app, &member, &latest).await? {
        Some(unread) => unread,
        None => crate::notifications::unread_count(&app.db, member.user.id).await?,
    };
    Ok(axum::Json(serde_json::json!({"unread": unread})).into_response())
}

async fn get_messages(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>) -> AppResult<Response> {
    let (c, messages, older) = load(&app, member.tenant, id, member.ctx.lang, None).await?;
    render(&MessagesPartial { c, messages, older, p: member.ctx.into() })
}

/// Resets the unread count and tells Meta (blue ticks) that the customer's last message was
/// read — through the outbox, like every call that sends something.
async fn mark_read(app: &AppState, tenant: TenantId, c: &store::ConversationRow) -> Result<(), sqlx::Error> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    // The count first: on PostgreSQL that locks the row, so a customer message being applied
    // meanwhile is either seen by the look-up below (its commit came first) or counts as
    // unread after this commit (it waited) — never reset without being marked read. (On
    // SQLite the one writer orders them anyway.)
    with_tx!(&mut tx, |x| sqlx::query("UPDATE conversations SET unread = 0 WHERE id = $1 AND tenant_id = $2").bind(c.id).bind(tenant).execute(x).await.map(drop))?;
    let last_inbound = with_tx!(&mut tx, |x| sqlx::query_scalar::<_, String>(
        "SELECT wamid FROM messages WHERE conversation_id = $1 AND tenant_id = $2 AND direction = 'in' AND wamid NOT LIKE 'wabridge:%'
         ORDER BY meta_at DESC, COALESCE(arrival, 0) DESC, id DESC LIMIT 1"
    )
    .bind(c.id)
    .bind(tenant)
    .fetch_optional(x)
    .await)?;
    if let Some(wamid) = last_inbound {
        let send = NewSend {
            tenant,
            phone_number_id: c.phone_number_id.clone(),
            conversation_id: Some(c.id),
            operation: Operation::MarkRead { wamid },
            category: None,
            idempotency_key: None,
        };
        // A number that cannot send cannot mark read either; the unread count still resets.
        match outbox::enqueue(&mut tx, &send, now).await {
            Ok(_) | Err(EnqueueError::NotConnected) => {}
            Err(EnqueueError::Db(e)) => return Err(e),
        }
    }
    live::commit(&app.db, &app.live, tx, &[NewEvent::new(tenant, None, "conversation", &serde_json::json!({"conversation": c.id}))], now).await?;
    app.outbox_wake.notify_one();
    Ok(())
}

#[derive(Deserialize)]
struct ReplyForm {
    text: String,
    reply_to: Option<String>,
}

async fn post_reply(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>, Form(form): Form<ReplyForm>) -> AppResult<Response> {
    match send_text(&app, member.tenant, id, &form.text, form.reply_to.as_deref(), None).await {
        Ok(_) => Ok(Redirect::to(&format!("/inbox/{id}")).into_response()),
        Err(e @ (SendRefusal::WindowClosed | SendRefusal::BadText | SendRefusal::NotConnected)) => {
            let code = AppError::from(e).code();
            Ok(Redirect::to(&format!("/inbox/{id}?notice={code}")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ReactForm {
    wamid: String,
    emoji: String,
}

async fn post_react(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>, Form(form): Form<ReactForm>) -> AppResult<Response> {
    let emoji = form.emoji.trim();
    if emoji.is_empty() || emoji.chars().count() > 8 || form.wamid.len() > 256 {
        return Err(AppError::BadRequest("bad_request"));
    }
    let conversation = store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    if !CustomerServiceWindow::at(conversation.last_customer_message_at, app.clock.now_ms()).is_open() {
        return Ok(Redirect::to(&format!("/inbox/{id}?notice=window_closed")).into_response());
    }
    // Only messages of this conversation can be reacted to.
    if !store::in_conversation(&app.db, member.tenant, id, &form.wamid).await? {
        return Err(AppError::NotFound);
    }
    let to = recipient(&conversation).ok_or(AppError::NotFound)?;
    let message = OutboundMessage::new(to, OutboundContent::Reaction { reaction: ReactionBody { message_id: form.wamid.clone(), emoji: emoji.to_owned() } });
    record_send(&app, member.tenant, &conversation, message, "reaction", emoji, Some("service"), None).await?;
    Ok(Redirect::to(&format!("/inbox/{id}")).into_response())
}

/// Prefix of a media id that names a file uploaded to wabridge but not yet to Meta; the outbox
/// worker uploads it right before sending and puts Meta's id in its place.
pub const LOCAL_MEDIA: &str = "wabridge-media:";
/// Largest image Meta accepts.
const MAX_IMAGE: usize = 5 * 1024 * 1024;
/// Largest document accepted here (Meta allows 100 MB; the request limit is lower).
const MAX_DOCUMENT: usize = 15 * 1024 * 1024;

async fn post_attach(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>, mut multipart: axum::extract::Multipart) -> AppResult<Response> {
    let mut file: Option<(String, String, bytes::Bytes)> = None;
    let mut caption = String::new();
    while let Some(field) = multipart.next_field().await.map_err(|_| AppError::BadRequest("bad_request"))? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("file").chars().filter(|c| !c.is_control()).take(200).collect::<String>();
                let mime = field.content_type().unwrap_or("application/octet-stream").to_owned();
                let data = field.bytes().await.map_err(|_| AppError::PayloadTooLarge)?;
                file = Some((name, mime, data));
            }
            Some("caption") => caption = field.text().await.map_err(|_| AppError::BadRequest("bad_request"))?.chars().take(1024).collect(),
            _ => {}
        }
    }
    let Some((filename, mime, data)) = file.filter(|(_, _, d)| !d.is_empty()) else {
        return Err(AppError::BadRequest("bad_request"));
    };
    let is_image = matches!(mime.as_str(), "image/jpeg" | "image/png");
    if data.len() > if is_image { MAX_IMAGE } else { MAX_DOCUMENT } {
        return Err(AppError::BadRequest("file_too_large"));
    }
    let conversation = store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    let now = app.clock.now_ms();
    if !CustomerServiceWindow::at(conversation.last_customer_message_at, now).is_open() {
        return Ok(Redirect::to(&format!("/inbox/{id}?notice=window_closed")).into_response());
    }
    let to = recipient(&conversation).ok_or(AppError::NotFound)?;
    let local_id = format!("{LOCAL_MEDIA}{}", crate::crypto::random_token());
    let path = app.settings.media.put(member.tenant, &local_id, &data).await.map_err(|e| AppError::Unavailable(format!("the file cannot be kept: {e}")))?;
    with_pool!(app.db.write(), |p| sqlx::query(
        "INSERT INTO media (tenant_id, phone_number_id, meta_media_id, mime_type, filename, bytes, path, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(member.tenant)
    .bind(&conversation.phone_number_id)
    .bind(&local_id)
    .bind(&mime)
    .bind(&filename)
    .bind(path.is_none().then_some(&data[..]))
    .bind(&path)
    .bind(now)
    .execute(p)
    .await
    .map(drop))?;
    let mut media = wabridge_cloud_api::client::message::MediaRef::id(local_id);
    if !caption.trim().is_empty() {
        media = media.with_caption(caption.trim());
    }
    let (kind, content) = if is_image {
        ("image", OutboundContent::Image { image: media })
    } else {
        ("document", OutboundContent::Document { document: media.with_filename(filename.clone()) })
    };
    let body = if caption.trim().is_empty() { filename } else { caption.trim().to_owned() };
    record_send(&app, member.tenant, &conversation, OutboundMessage::new(to, content), kind, &body, Some("service"), None).await?;
    Ok(Redirect::to(&format!("/inbox/{id}")).into_response())
}

#[derive(serde::Deserialize)]
struct ByWamidQuery {
    /// Meta's timestamp of the message (Unix seconds), which finds it by its key.
    at: Option<i64>,
}

async fn get_by_wamid(State(app): State<AppState>, member: TenantMember, Path(wamid): Path<String>, Query(q): Query<ByWamidQuery>) -> AppResult<Response> {
    // A message's toast is published as soon as its body is on disk, before the message
    // reaches the inbox: a click meanwhile waits for it (see `wait_for_applied`).
    let found = crate::ingest::journal::wait_for_applied(&app.db, || async {
        match q.at.and_then(|s| s.checked_mul(1000)) {
            Some(at) => store::inbound_by_time(&app.db, member.tenant, at, &wamid).await,
            None => store::by_wamid(&app.db, member.tenant, &wamid).await,
        }
    })
    .await?;
    let found = found.ok_or(AppError::NotFound)?;
    Ok(Redirect::to(&message_link(&app, member.tenant, found).await?).into_response())
}

/// Messages shown after the one a link opens when it lies before the newest page (so that
/// the page shows what came of it, not only what led to it).
const SHOWN_AFTER_LINKED: usize = 10;

/// Where a message is shown: its conversation's newest page when it is on it, else the older
/// page that holds it and the [`SHOWN_AFTER_LINKED`] messages after it; the page scrolled to
/// the message and marking it.
async fn message_link(app: &AppState, tenant: TenantId, m: store::Located) -> AppResult<String> {
    let after = store::places_after(&app.db, tenant, m, SHOWN).await?;
    let (conversation, id) = (m.conversation_id, m.place.id);
    Ok(match after.get(SHOWN_AFTER_LINKED).filter(|_| after.len() as i64 >= SHOWN) {
        // The page before the message that follows those shown after it.
        Some(next) => format!("/inbox/{conversation}?before={}&before_arrival={}&before_id={}#msg-{id}", next.at, next.arrival, next.id),
        // Fewer than a page after it: on the newest page.
        None => format!("/inbox/{conversation}#msg-{id}"),
    })
}

#[derive(sqlx::FromRow)]
struct MediaMessage {
    payload: String,
    kind: String,
    phone_number_id: String,
}

#[derive(sqlx::FromRow)]
struct StoredMedia {
    mime_type: Option<String>,
    filename: Option<String>,
    bytes: Option<Vec<u8>>,
    path: Option<String>,
    state: String,
}

/// Serves a message's media to the tenant's users: as kept (customers' files are fetched from
/// Meta as they arrive), or fetched now when the fetcher has not got to it yet.
async fn get_media(State(app): State<AppState>, member: TenantMember, Path(message_id): Path<i64>, headers: HeaderMap) -> AppResult<Response> {
    let m = with_pool!(app.db.read(), |p| sqlx::query_as::<_, MediaMessage>(
        "SELECT m.payload, m.kind, c.phone_number_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1 AND m.tenant_id = $2"
    )
    .bind(message_id)
    .bind(member.tenant)
    .fetch_optional(p)
    .await)?
    .ok_or(AppError::NotFound)?;
    let payload: serde_json::Value = serde_json::from_str(&m.payload).unwrap_or_default();
    let media = &payload[m.kind.as_str()];
    let media_id = media["id"].as_str().ok_or(AppError::NotFound)?.to_owned();
    let stored = with_pool!(app.db.read(), |p| sqlx::query_as::<_, StoredMedia>(
        "SELECT mime_type, filename, bytes, path, state FROM media WHERE tenant_id = $1 AND meta_media_id = $2"
    )
    .bind(member.tenant)
    .bind(&media_id)
    .fetch_optional(p)
    .await)?;
    let filename = stored.as_ref().and_then(|s| s.filename.clone()).or_else(|| media["filename"].as_str().map(str::to_owned));
    let (mime, bytes) = match stored {
        Some(s) if s.state == "failed" => return Err(AppError::Gone("media_gone")),
        Some(s) if s.state == "expired" => return Err(AppError::Gone("media_expired")),
        Some(s) if s.state == "stored" => {
            // The store (a directory or bucket) unreachable or missing the file: 503.
            let bytes = app.settings.media.read(media::Kept { bytes: s.bytes, path: s.path }).await.map_err(|e| AppError::Unavailable(format!("a kept file cannot be read: {e}")))?;
            (s.mime_type, bytes::Bytes::from(bytes))
        }
        _ => match app.media.fetch(member.tenant, &m.phone_number_id, &media_id, media["mime_type"].as_str(), None).await {
            Ok(fetched) => (fetched.mime_type, fetched.bytes),
            Err(e) if e.gone() => {
                app.media.given_up(member.tenant, &m.phone_number_id, &media_id, message_id, &e).await?;
                return Err(AppError::Gone("media_gone"));
            }
            Err(e) => return Err(AppError::Unavailable(e.to_string())),
        },
    };
    let mime = mime.unwrap_or_else(|| "application/octet-stream".to_owned());
    let disposition = match filename {
        Some(f) => format!("attachment; filename=\"{}\"", f.replace(['"', '\\', '\r', '\n'], "_")),
        None if mime.starts_with("image/") || mime.starts_with("video/") || mime.starts_with("audio/") => "inline".to_owned(),
        None => "attachment".to_owned(),
    };
    // A player seeking in a voice note or a video asks for a range.
    let (status, range, bytes) = crate::web::ranges::answer(&headers, bytes);
    Ok((status, range, [(header::CONTENT_TYPE, mime), (header::CONTENT_DISPOSITION, disposition), (header::CACHE_CONTROL, "private, max-age=86400".to_owned())], bytes).into_response())
}

/// A customer's conversation id with a number, for the host API and templates (created when
/// the business writes first).
pub async fn open_conversation(db: &Db, tenant: TenantId, phone_number_id: &str, phone: &str, now: i64) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let customer = store::upsert_customer(&mut tx, tenant, None, Some(phone), None, None, now).await?;
    let Some(customer) = customer else { return Err(sqlx::Error::RowNotFound) };
    let id = store::conversation_for(&mut tx, tenant, phone_number_id, customer, now).await?;
    tx.commit().await?;
    Ok(id)
}
