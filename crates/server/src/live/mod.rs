//! Live events: per-tenant streams to browsers over server-sent events.
//!
//! Events are rows in `live_events`, so a reconnecting browser replays what it missed
//! (`Last-Event-ID`). On PostgreSQL they are written in the transaction that caused them; on
//! SQLite they have a file and a writer of their own and are written right after that commit
//! (a crash in between loses the events, not what they tell of: a page whose stream began
//! before the restart is told to resynchronise), so that a toast never waits for the
//! processor's transaction on the main file's one writer (see `ingest::toaster`).
//! Delivery to open streams goes through a per-tenant broadcast channel — a slow browser only
//! lags itself, and gets a `resync` event instead of blocking anyone. On PostgreSQL every
//! instance learns of new events through `LISTEN/NOTIFY`, so a browser connected to one
//! instance sees what another processed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{broadcast, watch};

use crate::accounts::{TenantId, UserId};
use crate::store::{Db, Tx, Val, insert_ids, json_text};
use crate::web::AppState;
use crate::web::context::TenantMember;
use crate::web::error::AppResult;
use crate::web::i18n::Lang;
use crate::with_pool;

/// Events a reconnecting browser may replay at most.
const REPLAY_LIMIT: i64 = 500;
/// An idle stream sends a comment this often, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An event a handler wants published after its transaction commits.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Tenant whose users see it.
    pub tenant: TenantId,
    /// One user, or every user of the tenant.
    pub user: Option<UserId>,
    /// Kind (`notification`, …).
    pub kind: String,
    /// JSON payload, as text.
    pub payload: String,
}

impl NewEvent {
    /// An event of `kind` with this payload.
    pub fn new(tenant: TenantId, user: Option<UserId>, kind: &str, payload: &impl serde::Serialize) -> NewEvent {
        NewEvent { tenant, user, kind: kind.to_owned(), payload: json_text(payload) }
    }
}

/// A stored event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredEvent {
    /// Id (SSE `id`).
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Target user, if only one.
    pub user_id: Option<UserId>,
    /// Kind.
    pub kind: String,
    /// JSON payload text.
    pub payload: String,
    /// Its SSE events, rendered once per language for every stream that sends the row.
    #[sqlx(skip)]
    rendered: Arc<Rendered>,
}

/// A row's events as the SSE stream sends them, per language. A commit's rows reach every
/// open stream of the tenant (each user, each tab) as the same shared values, so the first
/// stream to send a row renders it and the others send the same bytes.
#[derive(Debug, Default)]
struct Rendered([OnceLock<Bytes>; Lang::ALL.len()]);

/// In-process fan-out of events to open streams, one channel per tenant.
#[derive(Clone)]
pub struct LiveHub {
    channels: Arc<Mutex<HashMap<TenantId, broadcast::Sender<Arc<Vec<StoredEvent>>>>>>,
    lagged: Arc<std::sync::atomic::AtomicU64>,
    /// This process's mark in the pages it renders (see [`LiveHub::stream_url`]).
    boot: Arc<str>,
}

impl Default for LiveHub {
    fn default() -> LiveHub {
        LiveHub { channels: Arc::default(), lagged: Arc::default(), boot: Arc::from(format!("{:016x}", rand::random::<u64>())) }
    }
}

impl LiveHub {
    /// Where a page's event stream starts: after `after`, the tenant's latest event when the
    /// page was rendered, and with this process's mark. On SQLite a commit's events are
    /// written after it (a crash in between loses them): a stream that a process which has
    /// since ended began is told to resynchronise first.
    pub fn stream_url(&self, after: i64) -> String {
        format!("/events?after={after}&boot={}", self.boot)
    }

    /// Whether a stream begun under this mark may have missed events that no replay brings.
    fn began_before_a_restart(&self, db: &Db, boot: Option<&str>) -> bool {
        db.engine() == crate::store::Engine::Sqlite && boot.is_some_and(|b| b != &*self.boot)
    }

    /// Subscribes to a tenant's events; each item is one commit's events for the tenant, so
    /// that a large batch is one message on the channel, not hundreds.
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<Arc<Vec<StoredEvent>>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(tenant).or_insert_with(|| broadcast::channel(1024).0).subscribe()
    }

    /// Delivers events to this process's open streams.
    pub fn publish(&self, events: Vec<StoredEvent>) {
        let mut by_tenant: HashMap<TenantId, Vec<StoredEvent>> = HashMap::new();
        for event in events {
            by_tenant.entry(event.tenant_id).or_default().push(event);
        }
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        for (tenant, events) in by_tenant {
            if let Some(sender) = channels.get(&tenant)
                && sender.send(Arc::new(events)).is_err()
            {
                // Nobody listens any more: drop the channel.
                channels.remove(&tenant);
            }
        }
    }

    /// After a commit: SQLite publishes here; on PostgreSQL the NOTIFY sent in the
    /// transaction reaches every instance's listener, this one included.
    pub fn published(&self, db: &Db, events: Vec<StoredEvent>) {
        if db.engine() == crate::store::Engine::Sqlite && !events.is_empty() {
            self.publish(events);
        }
    }

    /// How many times a stream fell behind (it then resynchronised).
    pub fn lag_count(&self) -> u64 {
        self.lagged.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Commits `tx` with the events it caused and publishes them: on PostgreSQL they are stored
/// in the transaction (and announced to every instance by NOTIFY), on SQLite in the live
/// events' file once the transaction has committed. Fails only when the commit fails.
pub async fn commit(db: &Db, hub: &LiveHub, mut tx: Tx, events: &[NewEvent], now: i64) -> Result<(), sqlx::Error> {
    match tx {
        Tx::Postgres(_) => {
            store_events(&mut tx, events, now).await?;
            tx.commit().await
        }
        Tx::Sqlite(_) => {
            tx.commit().await?;
            if let Err(e) = publish_now(db, hub, events, now).await {
                tracing::warn!(error = %e, events = events.len(), "live events lost: cannot store them");
            }
            Ok(())
        }
    }
}

/// Stores events in a transaction of their own and publishes them (what the toaster publishes
/// before the message is applied; what a SQLite commit caused).
pub async fn publish_now(db: &Db, hub: &LiveHub, events: &[NewEvent], now: i64) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_live().await?;
    let stored = store_events(&mut tx, events, now).await?;
    tx.commit().await?;
    hub.published(db, stored);
    Ok(())
}

/// Kind of a stored row that holds several events of one commit for one audience.
const GROUP_KIND: &str = "group";

/// Stores events in the caller's transaction on the live events' writer (and, on PostgreSQL,
/// announces them to every instance when it commits). The events of one commit for one
/// audience (a tenant's users, or one user) share a row — a batch of webhooks makes a few
/// rows, not two per message —
/// and reach the browser as separate SSE events, in order; the row's id goes with the last
/// of them, so that a browser cut off in between replays the whole row.
async fn store_events(tx: &mut Tx, events: &[NewEvent], now: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let mut groups: Vec<(TenantId, Option<UserId>, Vec<&NewEvent>)> = Vec::new();
    let mut group_of: foldhash::HashMap<(TenantId, Option<UserId>), usize> = foldhash::HashMap::default();
    for e in events {
        let at = *group_of.entry((e.tenant, e.user)).or_insert_with(|| {
            groups.push((e.tenant, e.user, Vec::new()));
            groups.len() - 1
        });
        groups[at].2.push(e);
    }
    let rows: Vec<(TenantId, Option<UserId>, String, String)> = groups
        .into_iter()
        .map(|(tenant, user, group)| match group.as_slice() {
            [one] => (tenant, user, one.kind.clone(), one.payload.clone()),
            many => (tenant, user, GROUP_KIND.to_owned(), group_payload(many)),
        })
        .collect();
    let mut values = Vec::with_capacity(rows.len() * 5);
    for (tenant, user, kind, payload) in &rows {
        values.extend([Val::from(*tenant), Val::Int(user.map(|u| u.0)), Val::from(kind.as_str()), Val::from(payload.as_str()), Val::from(now)]);
    }
    let ids = insert_ids(tx, "INSERT INTO live_events (tenant_id, user_id, kind, payload, at)", 5, &values).await?;
    let mut stored: Vec<StoredEvent> = rows
        .into_iter()
        .zip(ids)
        .map(|((tenant_id, user_id, kind, payload), id)| StoredEvent { id, tenant_id, user_id, kind, payload, rendered: Arc::default() })
        .collect();
    stored.sort_unstable_by_key(|e| e.id);
    if let Tx::Postgres(t) = tx {
        // NOTIFY payloads are limited to 8000 bytes: announce ids in chunks.
        for chunk in stored.chunks(500) {
            let ids = chunk.iter().map(|e| e.id.to_string()).collect::<Vec<_>>().join(",");
            sqlx::query("SELECT pg_notify('wabridge_live', $1)").bind(ids).execute(&mut **t).await?;
        }
    }
    Ok(stored)
}

/// The events a NOTIFY announced (PostgreSQL only), in id order.
async fn events_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<StoredEvent>, sqlx::Error> {
    match db.live_read() {
        crate::store::PoolRef::Postgres(p) => {
            sqlx::query_as::<_, StoredEvent>("SELECT id, tenant_id, user_id, kind, payload FROM live_events WHERE id = ANY($1) ORDER BY id")
                .bind(ids)
                .fetch_all(p)
                .await
        }
        crate::store::PoolRef::Sqlite(_) => Ok(Vec::new()),
    }
}

/// The id of the tenant's latest event (0 when none).
pub async fn latest_event(db: &Db, tenant: TenantId) -> Result<i64, sqlx::Error> {
    with_pool!(db.live_read(), |p| sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM live_events WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(p)
        .await)
    .map(|m| m.unwrap_or(0))
}

/// Events of a tenant after `after`, for a reconnecting browser.
pub async fn events_since(db: &Db, tenant: TenantId, after: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    with_pool!(db.live_read(), |p| sqlx::query_as::<_, StoredEvent>(
        "SELECT id, tenant_id, user_id, kind, payload FROM live_events WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )
    .bind(tenant)
    .bind(after)
    .bind(REPLAY_LIMIT)
    .fetch_all(p)
    .await)
}

/// On PostgreSQL: listens for other instances' (and our own) events and publishes them here.
pub async fn run_pg_listener(db: Db, hub: LiveHub, journal_wake: Arc<tokio::sync::Notify>, mut shutdown: watch::Receiver<bool>) {
    let crate::store::PoolRef::Postgres(pool) = db.write() else { return };
    let pool = pool.clone();
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for live events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen_all(["wabridge_live", "wabridge_journal"]).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                n = listener.recv() => match n {
                    Ok(n) if n.channel() == "wabridge_journal" => {
                        journal_wake.notify_waiters();
                        journal_wake.notify_one();
                    }
                    Ok(n) => {
                        let ids: Vec<i64> = n.payload().split(',').filter_map(|s| s.parse().ok()).collect();
                        match events_by_ids(&db, &ids).await {
                            Ok(events) => hub.publish(events),
                            Err(e) => tracing::warn!(error = %e, "cannot load announced events"),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live listener lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(get_events))
}

/// `[{"kind": …, "data": …}, …]`: the payload of a row holding several events, put together
/// from their payloads' texts.
fn group_payload(events: &[&NewEvent]) -> String {
    let mut out = String::with_capacity(events.iter().map(|e| e.payload.len() + e.kind.len() + 24).sum::<usize>() + 2);
    out.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"kind\":");
        out.push_str(&json_text(&e.kind));
        out.push_str(",\"data\":");
        out.push_str(&e.payload);
        out.push('}');
    }
    out.push(']');
    out
}

impl StoredEvent {
    /// The events the row holds, in order: itself, or those of its group.
    pub fn events(&self) -> Vec<(String, serde_json::Value)> {
        self.raw_events().into_iter().map(|(kind, data)| (kind.into_owned(), serde_json::from_str(data).unwrap_or_default())).collect()
    }

    /// The events the row holds as their kind and their data's JSON text (read without
    /// building a tree of the JSON).
    fn raw_events(&self) -> Vec<(Cow<'_, str>, &str)> {
        if self.kind != GROUP_KIND {
            return vec![(Cow::Borrowed(self.kind.as_str()), self.payload.as_str())];
        }
        #[derive(serde::Deserialize)]
        struct Item<'a> {
            #[serde(borrow)]
            kind: Cow<'a, str>,
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        serde_json::from_str::<Vec<Item<'_>>>(&self.payload)
            .map(|items| items.into_iter().map(|i| (i.kind, i.data.get())).collect())
            .unwrap_or_default()
    }

    /// The row's SSE events in the reader's words, the row's id on the last (rendered on
    /// first use).
    fn rendered(&self, lang: Lang) -> Bytes {
        let slot = Lang::ALL.iter().position(|l| *l == lang).unwrap_or(0);
        self.rendered.0[slot]
            .get_or_init(|| {
                let events = self.raw_events();
                let last = events.len().saturating_sub(1);
                let mut out = String::new();
                for (i, (kind, data)) in events.iter().enumerate() {
                    let data = crate::notifications::localize(kind, data, lang);
                    out.push_str("event: ");
                    out.push_str(kind);
                    out.push('\n');
                    for line in data.split('\n') {
                        out.push_str("data: ");
                        out.push_str(line);
                        out.push('\n');
                    }
                    if i == last {
                        out.push_str("id: ");
                        out.push_str(&self.id.to_string());
                        out.push('\n');
                    }
                    out.push('\n');
                }
                Bytes::from(out)
            })
            .clone()
    }
}

/// Sent to a stream that fell behind: the page refetches its counts.
const RESYNC: &[u8] = b"event: resync\ndata: {}\n\n";

#[derive(serde::Deserialize)]
struct EventsQuery {
    after: Option<i64>,
    /// The mark of the process that rendered the page (see [`LiveHub::stream_url`]).
    boot: Option<String>,
}

async fn get_events(State(app): State<AppState>, member: TenantMember, headers: HeaderMap, Query(q): Query<EventsQuery>) -> AppResult<Response> {
    let tenant = member.tenant;
    let user = member.user.id;
    let lang = member.ctx.lang;
    // Subscribe before reading the backlog, so nothing falls between the two.
    let rx = app.live.subscribe(tenant);
    // A reconnect names the last event it saw; a page's first connect names the last event
    // before it was rendered.
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok()).or(q.after);
    let backlog = match last_id {
        Some(after) => events_since(&app.db, tenant, after).await?,
        None => Vec::new(),
    };
    // The page refreshes what it shows, then the replay and the live events follow.
    let resync = app.live.began_before_a_restart(&app.db, q.boot.as_deref()).then(|| Ok::<_, Infallible>(Bytes::from_static(RESYNC)));
    // Ids, not an ordering: on PostgreSQL, instances commit events out of id order.
    let replayed: std::collections::HashSet<i64> = backlog.iter().map(|e| e.id).collect();
    let mine = move |e: &StoredEvent| e.user_id.is_none() || e.user_id == Some(user);
    let replay = stream::iter(backlog.into_iter().filter(mine).map(move |e| e.rendered(lang)).filter(|b| !b.is_empty()).map(Ok::<_, Infallible>));
    let hub = app.live.clone();
    let replayed = Arc::new(replayed);
    let live = stream::unfold((rx, std::collections::VecDeque::new()), move |(mut rx, mut ready)| {
        let hub = hub.clone();
        let replayed = replayed.clone();
        async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok(event), (rx, ready)));
                }
                let received = tokio::select! {
                    received = rx.recv() => received,
                    () = tokio::time::sleep(KEEP_ALIVE) => return Some((Ok(Bytes::from_static(b":\n\n")), (rx, ready))),
                };
                match received {
                    Ok(batch) => {
                        // Events replayed from the backlog may arrive again on the channel.
                        ready.extend(batch.iter().filter(|e| !replayed.contains(&e.id) && mine(e)).map(|e| e.rendered(lang)).filter(|b| !b.is_empty()));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        hub.lagged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // The page refetches its counts; missed toasts stay in the list.
                        return Some((Ok(Bytes::from_static(RESYNC)), (rx, ready)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let mut shutdown = app.shutdown.clone();
    let stopped = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    let stream = stream::iter(resync).chain(replay).chain(live).take_until(Box::pin(stopped));
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn group_row() -> StoredEvent {
        let notification =
            NewEvent::new(TenantId(1), None, "notification", &serde_json::json!({"id": 7, "kind": "inbound_message", "actor": "Anna", "preview": "Hallo"}));
        let message = NewEvent::new(TenantId(1), None, "message", &serde_json::json!({"conversation": 3}));
        StoredEvent {
            id: 42,
            tenant_id: TenantId(1),
            user_id: None,
            kind: GROUP_KIND.to_owned(),
            payload: group_payload(&[&notification, &message]),
            rendered: Arc::default(),
        }
    }

    #[test]
    fn a_rows_events_are_rendered_once_per_language_for_every_stream() {
        let row = group_row();
        // A second stream gets the same row through the channel: a clone sharing the rendering.
        let other_stream = row.clone();
        let de = row.rendered(Lang::De);
        assert_eq!(de.as_ptr(), other_stream.rendered(Lang::De).as_ptr(), "rendered again for the second stream");
        let text = std::str::from_utf8(&de).unwrap();
        let frames: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(frames.len(), 2, "{text}");
        assert!(frames[0].starts_with("event: notification\ndata: {") && !frames[0].contains("id:"), "{text}");
        assert!(frames[1].starts_with("event: message\ndata: {") && frames[1].ends_with("\nid: 42"), "only the last carries the row's id: {text}");
        let data = |text: &str, frame: usize| -> serde_json::Value {
            let frame = text.split_terminator("\n\n").nth(frame).unwrap();
            serde_json::from_str(frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap()
        };
        assert_eq!(data(text, 0)["title"], "Neue WhatsApp-Nachricht von Anna");
        assert_eq!(data(text, 1), serde_json::json!({"conversation": 3}));
        let en = other_stream.rendered(Lang::En);
        assert_eq!(data(std::str::from_utf8(&en).unwrap(), 0)["title"], "New WhatsApp message from Anna");
        assert_eq!(en.as_ptr(), row.rendered(Lang::En).as_ptr());
    }
}
