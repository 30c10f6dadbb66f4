//! The processor: applies journaled webhook bodies, once each, in journal order.
//!
//! A batch is claimed and applied in one transaction together with the mark that it was
//! processed, so a crash either applies a body completely or not at all; handlers are
//! idempotent on Meta's ids besides, because Meta itself delivers at least once. On PostgreSQL
//! several instances claim disjoint batches (`FOR UPDATE SKIP LOCKED`).

use foldhash::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use wabridge_cloud_api::parse_webhook;
use wabridge_cloud_api::webhook::{ChangeRef, WebhookField};

use super::feed::{FedEntry, Feed};
use super::journal::Journal;
use super::toaster::{Claims, PgToaster, Toaster};
use super::{ChangeHandler, Effects, Registry, RoutedChange, journal};
use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::live::{self, LiveHub};
use crate::store::{Db, Tx, select_any};
use crate::web::metrics::Metrics;
use crate::with_tx;

/// Journal entries applied per transaction.
const BATCH: i64 = 512;
/// Processors per instance on PostgreSQL (SQLite runs one: it has one writer).
pub const POSTGRES_PROCESSORS: usize = 3;
/// A batch smaller than this is followed by [`GATHER_PAUSE`] before the next one.
const GATHER_BELOW: usize = 256;
/// How long the processor lets bodies gather after a small batch (a body that arrives while
/// the processor is idle is applied at once).
const GATHER_PAUSE: Duration = Duration::from_millis(1);
/// SQLite's processor behind a toaster: nobody waits for its commits to see a toast, so it
/// takes larger batches and lets them gather longer — each commit writes every page it
/// touched once, however many rows changed it, and Meta's ids land on pages all over their
/// indexes. (Benchmark with every handler: 2,048 bodies and 20 ms against 512 and 1 ms,
/// CPU per message equal or lower, more acknowledged; the processor alone 37,000–41,000
/// msg/s against 25,000–33,000. Then 4,096 and 50 ms against 2,048 and 20: a quarter fewer
/// bytes written per message, more acknowledged in four of five pairs; 8,192 and 100 ms
/// wrote 43 % fewer but stretched the acknowledgements' p99 — a commit's checkpoint then
/// fsyncs tens of megabytes on the journal's disk.)
const BATCH_BEHIND_TOASTER: i64 = 4096;
/// After a batch that is not full, SQLite's processor behind a toaster pauses this long.
const GATHER_PAUSE_BEHIND_TOASTER: Duration = Duration::from_millis(50);
/// Longest wait between retries of a failing handler.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Raw JSON kept for support per unhandled change.
const MAX_RAW: usize = 256 * 1024;

/// Applies the journal; one per process.
#[derive(Clone)]
pub struct Processor {
    db: Db,
    clock: Clock,
    registry: Registry,
    live: LiveHub,
    metrics: Arc<Metrics>,
    feed: Option<Arc<Feed>>,
    claims: Option<Arc<Claims>>,
    known: Arc<Known>,
}

/// What SQLite's one processor knows without asking the database — that the journal holds
/// nothing new, that no retry is due — so that an idle turn costs no transaction. Forgotten
/// every second (the safety net asks the database again).
struct Known {
    /// Every journal entry up to this id is applied (`UNKNOWN` when not known).
    applied_through: AtomicI64,
    /// No retry is due before this time (Unix ms; `UNKNOWN` when not known).
    next_retry_at: AtomicI64,
}

/// Not known: ask the database.
const UNKNOWN: i64 = -1;

impl Default for Known {
    fn default() -> Known {
        Known { applied_through: AtomicI64::new(UNKNOWN), next_retry_at: AtomicI64::new(UNKNOWN) }
    }
}

impl Known {
    fn forget(&self) {
        self.applied_through.store(UNKNOWN, Ordering::Relaxed);
        self.next_retry_at.store(UNKNOWN, Ordering::Relaxed);
    }
}

#[derive(sqlx::FromRow)]
struct RetryRow {
    journal_id: i64,
    change_index: i64,
    handler: String,
    attempts: i64,
}

impl Processor {
    /// A processor over this database with these subscriptions.
    pub fn new(db: Db, clock: Clock, registry: Registry, live: LiveHub, metrics: Arc<Metrics>) -> Processor {
        Processor { db, clock, registry, live, metrics, feed: None, claims: None, known: Arc::default() }
    }

    /// Takes what the journal just committed from its in-memory feed (SQLite), falling back
    /// to reading the journal for whatever the feed does not hold.
    pub fn with_feed(mut self, feed: Option<Arc<Feed>>) -> Processor {
        self.feed = feed;
        self
    }

    /// With handlers that publish ahead, the toaster that publishes their events before the
    /// processors apply what the journal committed. On SQLite it reads the feed, shares the
    /// claims with this processor (which publishes those of what the toaster did not reach)
    /// and runs on a thread of its own; on PostgreSQL it takes the groups this instance's
    /// journal commits. Before the processor is cloned.
    pub fn start_toaster(&mut self, journal: &Journal, shutdown: watch::Receiver<bool>) {
        if !self.registry.publishes_ahead() {
            return;
        }
        if let Some(feed) = self.feed.clone() {
            let claims = Arc::new(Claims::default());
            self.claims = Some(claims.clone());
            let toaster = Toaster::new(self.db.clone(), self.clock.clone(), self.registry.clone(), self.live.clone(), self.metrics.clone(), feed, claims);
            on_own_thread("wabridge-toaster", toaster.run(shutdown));
        } else if let Some(groups) = journal.toast_ahead() {
            let toaster = PgToaster::new(self.db.clone(), self.clock.clone(), self.registry.clone(), self.live.clone(), self.metrics.clone(), groups);
            tokio::spawn(toaster.run(shutdown));
        }
    }

    /// Runs [`Processor::run`] on a thread of its own (SQLite's one processor): each of its
    /// statements is awaited, and on the shared runtime every wake-up would queue behind the
    /// webhook connections' tasks, which under load are many. On the thread it gets its turn
    /// from the operating system like the runtime's workers do.
    pub fn spawn_on_own_thread(self, wake: Arc<Notify>, shutdown: watch::Receiver<bool>) {
        on_own_thread("wabridge-processor", self.run(wake, shutdown));
    }

    /// Runs until shutdown: drains the journal whenever a commit wakes it (and every second
    /// as a safety net), then retries handlers that are due.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            loop {
                match self.process_batch().await {
                    Ok(0) => break,
                    // Under load, a short pause lets the next batch gather more bodies: a
                    // commit writes each touched page once however many rows changed it, and
                    // every statement costs the same for a few rows as for many.
                    Ok(n) => {
                        if let Some(pause) = self.gather_pause(n) {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "webhook processing failed; will retry");
                        break;
                    }
                }
            }
            if let Err(e) = self.retry_due().await {
                tracing::error!(error = format!("{e:#}"), "handler retries failed");
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => self.known.forget(),
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Applies one batch of pending journal entries; returns how many.
    ///
    /// Handlers run first without savepoints (two statements fewer per change); when one
    /// fails, the whole batch is rolled back and applied again with a savepoint around each
    /// handler, so that only the failing one is retried later.
    pub async fn process_batch(&self) -> anyhow::Result<usize> {
        match self.apply_batch(false).await {
            Err(e) if e.is::<FastPathFailed>() => {
                self.metrics.add("wabridge_webhook_batches_isolated_total", 1);
                self.apply_batch(true).await
            }
            other => other,
        }
    }

    /// Journal entries applied per transaction.
    fn batch(&self) -> i64 {
        if self.claims.is_some() { BATCH_BEHIND_TOASTER } else { BATCH }
    }

    /// How long to let bodies gather after a batch of `n`.
    fn gather_pause(&self, n: usize) -> Option<Duration> {
        match self.claims {
            Some(_) => (n < self.batch() as usize).then_some(GATHER_PAUSE_BEHIND_TOASTER),
            None => (n < GATHER_BELOW).then_some(GATHER_PAUSE),
        }
    }

    /// On SQLite, whether everything the journal committed is known to be applied.
    fn nothing_new(&self) -> bool {
        let applied = self.known.applied_through.load(Ordering::Relaxed);
        self.feed.as_ref().is_some_and(|feed| applied != UNKNOWN && feed.committed_through() <= applied)
    }

    async fn apply_batch(&self, isolated: bool) -> anyhow::Result<usize> {
        if self.nothing_new() {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        let mut cursor_read = None;
        let mut from_feed = false;
        // PostgreSQL: the entries whose events its toaster published (ascending, as claimed).
        let mut toasted: Vec<i64> = Vec::new();
        let rows: Vec<Arc<FedEntry>> = match &mut tx {
            // The cursor is read under the write lock: no other transaction can move it until
            // this one commits the batch's effects together with the new position.
            Tx::Sqlite(_) => {
                let cursor = journal::sqlite_cursor(&mut tx).await?;
                cursor_read = Some(cursor);
                if let Some(claims) = &self.claims {
                    claims.applied_through(cursor);
                }
                let fed = self.feed.as_ref().map(|f| f.take_after(cursor, self.batch() as usize)).unwrap_or_default();
                from_feed = !fed.is_empty();
                if fed.is_empty() {
                    // Only what is on disk: a commit the journal has not fsynced yet is visible
                    // but may still be lost, and applying it could move the cursor past ids
                    // the journal would then give again.
                    let through = self.feed.as_ref().map_or(i64::MAX, |f| f.committed_through());
                    journal::sqlite_entries_after(&self.db, cursor, through, self.batch()).await?.into_iter().map(fed_entry).collect()
                } else {
                    fed
                }
            }
            // What the toaster has not published yet is left to it (for a while: its
            // instance may be gone); what it published is stored without a second toast.
            Tx::Postgres(t) => {
                let claimed = sqlx::query_as::<_, (i64, i64, Vec<u8>, i16)>(
                    "SELECT id, received_at, body, toast_state FROM webhook_journal
                     WHERE processed_at IS NULL AND (toast_state <> $2 OR received_at < $3)
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(BATCH)
                .bind(journal::toast_state::AT_TOASTER)
                .bind(self.clock.now_ms() - journal::AHEAD_GRACE_MS)
                .fetch_all(&mut **t)
                .await?;
                toasted = claimed.iter().filter(|c| c.3 == journal::toast_state::PUBLISHED).map(|c| c.0).collect();
                claimed.into_iter().map(|(id, received_at, body, _)| fed_entry(journal::Entry { id, received_at, body })).collect()
            }
        };
        if rows.is_empty() {
            if let Some(cursor) = cursor_read {
                self.known.applied_through.store(cursor, Ordering::Relaxed);
            }
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let last = ids.iter().copied().max().unwrap_or(0);
        let mut effects = Effects::default();
        // SQLite: the toaster publishes the events of what the feed holds; of what was read
        // from the journal, the processor publishes what the toaster did not reach.
        let first = ids.iter().copied().min().unwrap_or(0);
        if let Some(claims) = self.claims.as_ref().filter(|_| cursor_read.is_some()) {
            let through = if from_feed { last } else { claims.processor_claims(first, last) };
            if through >= first {
                // Not before the toaster is done with them: it leaves out messages whose
                // notification is stored (Meta's redeliveries), and a turn of it that failed
                // leaves their events to this batch.
                claims.toasted(through).await;
            }
            effects.published_ahead = claims.published(through);
        }
        effects.published_ahead.entries = toasted;
        let named: Vec<ChangeRef<'_>> = rows.iter().filter_map(|r| r.parsed()).flat_map(|b| b.changes()).collect();
        let routes = RouteCache::load(&mut tx, &named).await?;
        let mut routed = Vec::new();
        let mut changes = 0u64;
        for row in &rows {
            changes += route_body(&mut tx, row, &self.registry, now, &routes, &mut routed).await?;
        }
        if isolated {
            for change in &routed {
                for handler in self.registry.handlers(change.change.field().as_str()) {
                    if let Err(e) = apply_in_savepoint(&mut tx, handler.as_ref(), change, &mut effects).await {
                        self.metrics.add("wabridge_webhook_handler_failures_total", 1);
                        tracing::warn!(handler = handler.name(), journal_id = change.journal_id, error = format!("{e:#}"), "handler failed; will retry");
                        schedule_retry(&mut tx, change, handler.name(), 0, &format!("{e:#}"), now).await?;
                        self.known.next_retry_at.store(UNKNOWN, Ordering::Relaxed);
                    }
                }
            }
        } else {
            self.apply_runs(&mut tx, &routed, &mut effects).await?;
        }
        match &mut tx {
            // The batch is every entry after the cursor up to `last` (SQLite has one processor).
            Tx::Sqlite(t) => sqlx::query("UPDATE ingest_cursor SET processed_through = $1 WHERE id = 1")
                .bind(last)
                .execute(&mut **t)
                .await
                .map(drop)?,
            // Other instances may hold entries in between (SKIP LOCKED): mark ours by id.
            Tx::Postgres(t) => sqlx::query("UPDATE webhook_journal SET processed_at = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(&ids)
                .execute(&mut **t)
                .await
                .map(drop)?,
        }
        live::commit(&self.db, &self.live, tx, &effects.events, now).await?;
        if cursor_read.is_some() {
            self.known.applied_through.store(last, Ordering::Relaxed);
        }
        self.metrics.add("wabridge_webhook_bodies_processed_total", rows.len() as u64);
        self.metrics.add("wabridge_webhook_changes_processed_total", changes);
        Ok(rows.len())
    }

    /// Applies the handlers to consecutive changes of one field together: set-wise statements
    /// instead of several per message. A failure leaves the batch to the isolated path
    /// ([`FastPathFailed`]).
    async fn apply_runs(&self, tx: &mut Tx, routed: &[RoutedChange<'_>], effects: &mut Effects) -> anyhow::Result<()> {
        for run in routed.chunk_by(|a, b| a.change.field() == b.change.field()) {
            for handler in self.registry.handlers(run[0].change.field().as_str()) {
                if let Err(e) = handler.apply_all(tx, run, effects).await {
                    tracing::debug!(handler = handler.name(), journal_id = run[0].journal_id, error = format!("{e:#}"), "handler failed; isolating");
                    return Err(FastPathFailed.into());
                }
            }
        }
        Ok(())
    }

    /// Retries handlers whose backoff has passed; returns how many succeeded.
    pub async fn retry_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now_ms();
        let next = self.known.next_retry_at.load(Ordering::Relaxed);
        if next != UNKNOWN && now < next {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        let due = match &mut tx {
            Tx::Sqlite(t) => sqlx::query_as::<_, RetryRow>(
                "SELECT journal_id, change_index, handler, attempts FROM handler_retries WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50",
            )
            .bind(now)
            .fetch_all(&mut **t)
            .await?,
            Tx::Postgres(t) => sqlx::query_as::<_, RetryRow>(
                "SELECT journal_id, change_index, handler, attempts FROM handler_retries WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50 FOR UPDATE SKIP LOCKED",
            )
            .bind(now)
            .fetch_all(&mut **t)
            .await?,
        };
        if due.is_empty() {
            // SQLite's one processor schedules every retry: until the earliest, none is due.
            if let Tx::Sqlite(t) = &mut tx {
                let earliest = sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(next_attempt_at) FROM handler_retries").fetch_one(&mut **t).await?;
                self.known.next_retry_at.store(earliest.unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            return Ok(0);
        }
        let mut effects = Effects::default();
        let mut succeeded = 0;
        for retry in due {
            let body = journal::body(&self.db, retry.journal_id).await?;
            let parsed = body.as_deref().and_then(|b| parse_webhook(b).ok());
            let change = parsed.as_ref().and_then(|b| b.changes().nth(usize::try_from(retry.change_index).unwrap_or(usize::MAX)));
            let Some(change) = change else {
                forget_retry(&mut tx, retry.journal_id, retry.change_index, &retry.handler).await?;
                continue;
            };
            let field = change.field().as_str().to_owned();
            let (Some(handler), Some(tenant)) = (self.registry.by_name(&field, &retry.handler), route(&mut tx, &change).await?) else {
                forget_retry(&mut tx, retry.journal_id, retry.change_index, &retry.handler).await?;
                continue;
            };
            let received_at = now;
            let routed = RoutedChange { journal_id: retry.journal_id, change_index: retry.change_index, tenant, change, received_at, now };
            match apply_in_savepoint(&mut tx, handler.as_ref(), &routed, &mut effects).await {
                Ok(()) => {
                    forget_retry(&mut tx, retry.journal_id, retry.change_index, &retry.handler).await?;
                    succeeded += 1;
                }
                Err(e) => schedule_retry(&mut tx, &routed, handler.name(), retry.attempts, &format!("{e:#}"), now).await?,
            }
            self.known.next_retry_at.store(UNKNOWN, Ordering::Relaxed);
        }
        live::commit(&self.db, &self.live, tx, &effects.events, now).await?;
        Ok(succeeded)
    }
}

/// Runs a future on a thread of its own with a runtime of its own (on the shared runtime when
/// no thread can be had).
fn on_own_thread(name: &str, future: impl std::future::Future<Output = ()> + Send + 'static) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, thread = name, "no runtime of its own; it shares the main one");
            tokio::spawn(future);
            return;
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        if let Ok(future) = rx.recv() {
            runtime.block_on(future);
        }
    });
    match spawned {
        Ok(_) => {
            let _ = tx.send(future);
        }
        Err(e) => {
            tracing::warn!(error = %e, thread = name, "no thread of its own; it shares the runtime");
            tokio::spawn(future);
        }
    }
}

/// The tenant that owns a change: by `metadata.phone_number_id` for message-like fields, by
/// WABA (`entry.id`, or `waba_info.waba_id` for partner events) for the rest.
pub async fn route(tx: &mut Tx, change: &ChangeRef<'_>) -> Result<Option<TenantId>, sqlx::Error> {
    Ok(RouteCache::load(tx, std::iter::once(change)).await?.route(change))
}

fn fed_entry(e: journal::Entry) -> Arc<FedEntry> {
    Arc::new(FedEntry::new(e.id, e.received_at, e.body.into()))
}

/// A handler failed in a batch applied without savepoints: apply it again, isolated.
#[derive(Debug, thiserror::Error)]
#[error("a handler failed; the batch is applied again with savepoints")]
struct FastPathFailed;

/// The owners of the numbers and WABAs a batch names, looked up for the whole batch at once
/// (a statement per chunk of keys, however many tenants it concerns). Scoped to the
/// transaction, so a number attached or moved meanwhile is seen next batch.
#[derive(Default)]
pub(super) struct RouteCache {
    numbers: HashMap<String, TenantId>,
    wabas: HashMap<String, TenantId>,
}

impl RouteCache {
    /// Loads the owners of every number and WABA the changes name.
    pub(super) async fn load<'a>(tx: &mut Tx, changes: impl IntoIterator<Item = &'a ChangeRef<'a>>) -> Result<RouteCache, sqlx::Error> {
        let mut numbers: Vec<&str> = Vec::new();
        let mut wabas: Vec<&str> = Vec::new();
        for change in changes {
            numbers.extend(change.phone_number_id());
            wabas.extend(change.waba_id());
        }
        Ok(RouteCache {
            numbers: owners(tx, "SELECT phone_number_id, tenant_id FROM phone_numbers WHERE phone_number_id IN", numbers).await?,
            wabas: owners(tx, "SELECT waba_id, tenant_id FROM whatsapp_accounts WHERE waba_id IN", wabas).await?,
        })
    }

    /// The owner by number for message-like fields, by WABA for the rest (see [`route`]).
    fn route(&self, change: &ChangeRef<'_>) -> Option<TenantId> {
        if let Some(number) = change.phone_number_id() {
            let tenant = self.numbers.get(number).copied();
            if tenant.is_some() || matches!(change.field(), WebhookField::Messages) {
                return tenant;
            }
        }
        change.waba_id().and_then(|waba| self.wabas.get(waba).copied())
    }
}

/// The tenants owning `keys`, by `select` (which ends in `IN`).
async fn owners(tx: &mut Tx, select: &str, mut keys: Vec<&str>) -> Result<HashMap<String, TenantId>, sqlx::Error> {
    keys.sort_unstable();
    keys.dedup();
    Ok(select_any::<(String, TenantId), _>(tx, select, &keys).await?.into_iter().collect())
}

/// A body, or a change of one, that no tenant or handler takes: kept for support.
pub(super) struct Unhandled<'a> {
    change_index: i64,
    field: Option<&'a str>,
    reason: &'static str,
    tenant: Option<TenantId>,
    /// The change whose JSON is kept (the whole body's when none).
    change: Option<ChangeRef<'a>>,
}

/// Routes the changes of one body to their tenants; those that no tenant or no handler owns
/// are kept for support. Returns how many changes the body has.
async fn route_body<'a>(
    tx: &mut Tx,
    row: &'a FedEntry,
    registry: &Registry,
    now: i64,
    routes: &RouteCache,
    routed: &mut Vec<RoutedChange<'a>>,
) -> anyhow::Result<u64> {
    let mut kept = Vec::new();
    let count = route_entry(row, registry, now, routes, routed, &mut kept);
    for u in kept {
        let raw = match u.change {
            Some(change) => change.change.raw_value.to_string(),
            None => String::from_utf8_lossy(&row.body).into_owned(),
        };
        unhandled(tx, row.id, u.change_index, u.field, u.reason, u.tenant, &raw, now).await?;
    }
    Ok(count)
}

/// Which tenant and handlers take each change of a body (into `routed`) and what nobody
/// takes (into `kept`, whose JSON is read only when it is kept); returns how many changes the
/// body has.
pub(super) fn route_entry<'a>(
    row: &'a FedEntry,
    registry: &Registry,
    now: i64,
    routes: &RouteCache,
    routed: &mut Vec<RoutedChange<'a>>,
    kept: &mut Vec<Unhandled<'a>>,
) -> u64 {
    let whole = |reason| Unhandled { change_index: -1, field: None, reason, tenant: None, change: None };
    let Some(body) = row.parsed() else {
        kept.push(whole("not_json"));
        return 0;
    };
    let mut count = 0;
    for (index, change) in body.changes().enumerate() {
        let change_index = i64::try_from(index).unwrap_or(i64::MAX);
        count += 1;
        let field = change.field().as_str();
        let Some(tenant) = routes.route(&change) else {
            let reason = if matches!(change.field(), WebhookField::Messages) { "unknown_number" } else { "unknown_waba" };
            kept.push(Unhandled { change_index, field: Some(field), reason, tenant: None, change: Some(change) });
            continue;
        };
        if registry.handlers(field).is_empty() {
            kept.push(Unhandled { change_index, field: Some(field), reason: "no_handler", tenant: Some(tenant), change: Some(change) });
            continue;
        }
        routed.push(RoutedChange { journal_id: row.id, change_index, tenant, change, received_at: row.received_at, now });
    }
    if count == 0 {
        kept.push(whole("no_changes"));
    }
    count
}

async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), sqlx::Error> {
    with_tx!(tx, |c| sqlx::query(sql).execute(c).await.map(drop))
}

/// Runs a handler inside a savepoint: its writes and events count only if it succeeds.
async fn apply_in_savepoint(tx: &mut Tx, handler: &dyn ChangeHandler, change: &RoutedChange<'_>, effects: &mut Effects) -> anyhow::Result<()> {
    exec(tx, "SAVEPOINT handler").await?;
    let mut own = Effects { published_ahead: effects.published_ahead.clone(), ..Effects::default() };
    match handler.apply(tx, change, &mut own).await {
        Ok(()) => {
            exec(tx, "RELEASE SAVEPOINT handler").await?;
            effects.events.append(&mut own.events);
            Ok(())
        }
        Err(e) => {
            exec(tx, "ROLLBACK TO SAVEPOINT handler").await?;
            exec(tx, "RELEASE SAVEPOINT handler").await?;
            Err(e)
        }
    }
}

async fn schedule_retry(tx: &mut Tx, change: &RoutedChange<'_>, handler: &str, attempts: i64, error: &str, now: i64) -> Result<(), sqlx::Error> {
    let attempts = attempts + 1;
    let backoff = (1_000_i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
    let error: String = error.chars().take(2000).collect();
    with_tx!(tx, |c| sqlx::query(
        "INSERT INTO handler_retries (journal_id, change_index, handler, tenant_id, attempts, next_attempt_at, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (journal_id, change_index, handler) DO UPDATE SET
             attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error"
    )
    .bind(change.journal_id)
    .bind(change.change_index)
    .bind(handler)
    .bind(change.tenant)
    .bind(attempts)
    .bind(now + backoff)
    .bind(error)
    .execute(c)
    .await
    .map(drop))
}

async fn forget_retry(tx: &mut Tx, journal_id: i64, change_index: i64, handler: &str) -> Result<(), sqlx::Error> {
    with_tx!(tx, |c| sqlx::query("DELETE FROM handler_retries WHERE journal_id = $1 AND change_index = $2 AND handler = $3")
        .bind(journal_id)
        .bind(change_index)
        .bind(handler)
        .execute(c)
        .await
        .map(drop))
}

#[allow(clippy::too_many_arguments)]
async fn unhandled(
    tx: &mut Tx,
    journal_id: i64,
    change_index: i64,
    field: Option<&str>,
    reason: &str,
    tenant: Option<TenantId>,
    raw: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let raw: String = if raw.len() > MAX_RAW { raw.chars().take(MAX_RAW).collect() } else { raw.to_owned() };
    with_tx!(tx, |c| sqlx::query(
        "INSERT INTO webhook_unhandled (journal_id, change_index, field, reason, tenant_id, raw, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    )
    .bind(journal_id)
    .bind(change_index)
    .bind(field)
    .bind(reason)
    .bind(tenant)
    .bind(raw)
    .bind(now)
    .execute(c)
    .await
    .map(drop))
}
