//! SQLite's toaster: publishes what people wait for — the toast of a customer's message — as
//! soon as the journal has its body on disk, before the processor applies it.
//!
//! SQLite has one writer per file, and the processor's transaction on the main file holds it
//! for a whole batch (longer under a backlog, when batches are largest). The toaster neither
//! waits for it nor writes the main file: it takes what the journal hands the feed, routes it
//! with a read, asks the handlers that publish ahead for their events
//! ([`ChangeHandler::ahead`](super::ChangeHandler::ahead)) and stores and publishes those in
//! the live events' file, which has a writer of its own. The processor stores the rows later
//! (the notifications) without publishing those events again.
//!
//! Who publishes an entry's events is settled by [`Claims`]: the toaster publishes those of
//! every entry the feed holds, in order, and the processor applies a batch from the feed only
//! once the toaster is done with it — publishing itself, after its commit, the events of a
//! toaster turn that failed; of a batch read from the journal file (after a restart, or when
//! the feed was full), the processor claims the entries the toaster has not reached and
//! publishes their events after its commit.
//!
//! On PostgreSQL ([`PgToaster`]) each instance's toaster takes the groups its own journal
//! commits, marked as handed to it (`toast_state`), which the processors leave alone for a few
//! seconds; it publishes their events in one transaction with the mark that it did, and wakes
//! the processors, which then store the rows without publishing them again. Without it the
//! processors' backlog would hold the toasts: they claim batches in journal order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use wabridge_cloud_api::webhook::ChangeRef;

use super::feed::{FedEntry, Feed};
use super::journal::toast_state;
use super::processor::{RouteCache, route_entry};
use super::{PublishedAhead, Registry, RoutedChange};
use crate::clock::Clock;
use crate::live::{self, LiveHub, NewEvent};
use crate::store::{Db, Tx};
use crate::web::metrics::Metrics;

/// Entries the toaster takes at most per turn.
const TURN: usize = 2048;
/// After a turn smaller than this, the toaster lets bodies gather for [`GATHER_PAUSE`]: each
/// turn is a commit of the live events' file and a read of the main one.
const GATHER_BELOW: usize = 64;
/// How long it lets them gather.
const GATHER_PAUSE: Duration = Duration::from_millis(2);

/// Which journal entries' events the toaster publishes ahead and which the processor publishes
/// after applying them.
pub struct Claims {
    state: Mutex<ClaimState>,
    /// The toaster is done with every entry up to this id (published, or failed to).
    done: watch::Sender<i64>,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims { state: Mutex::default(), done: watch::Sender::new(0) }
    }
}

/// Longest the processor waits for the toaster (which only a stuck toaster takes).
const TOASTER_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct ClaimState {
    /// Every entry up to this id is claimed by one or the other.
    through: i64,
    /// The processor's last batch (its first id) and what the toaster had claimed before it.
    batch: Option<(i64, i64)>,
    /// The entries (first and last id) of the toaster's turns that failed and are not applied
    /// yet: the processor publishes their events itself.
    failed: Vec<(i64, i64)>,
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClaimState> {
        // Every update is one step: a panic while holding the lock leaves consistent data.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The toaster's turn: the run the feed holds after what is claimed, claimed.
    fn take_run(&self, feed: &Feed) -> Vec<Arc<FedEntry>> {
        let mut state = self.lock();
        let run = feed.peek_after(state.through, TURN);
        if let Some(last) = run.last() {
            state.through = last.id;
        }
        run
    }

    /// How many entries the toaster's next turn would take now.
    fn waiting(&self, feed: &Feed) -> usize {
        feed.peek_after(self.lock().through, GATHER_BELOW).len()
    }

    /// The processor claims its batch read from the journal file, the entries `first..=last`,
    /// and learns up to which id the toaster published their events (it publishes those of
    /// the entries after). A batch applied again (isolated after a failure, or after a failed
    /// commit) starts at the same id and gets the same answer.
    pub fn processor_claims(&self, first: i64, last: i64) -> i64 {
        let mut state = self.lock();
        let published = match state.batch {
            Some((f, published)) if f == first => published,
            _ => state.through.min(last).max(first - 1),
        };
        state.batch = Some((first, published));
        state.through = state.through.max(last);
        published
    }

    /// Waits until the toaster is done with the entries up to `id`: the processor commits a
    /// batch only then, since the toaster leaves out messages whose notification is stored (a
    /// redelivery) and would otherwise take a toast of its own for one.
    pub async fn toasted(&self, id: i64) {
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(TOASTER_WAIT, done.wait_for(|d| *d >= id)).await;
    }

    /// Everything up to `applied` is applied: the toaster's next turn starts after it at the
    /// earliest (after a start, the feed begins after what was applied).
    pub fn applied_through(&self, applied: i64) {
        let mut state = self.lock();
        state.through = state.through.max(applied);
        state.failed.retain(|&(_, last)| last > applied);
    }

    /// The toaster's turn over the entries `first..=last` failed: their events are the
    /// processor's to publish. Recorded before the toaster says it is done with them.
    fn turn_failed(&self, first: i64, last: i64) {
        self.lock().failed.push((first, last));
    }

    /// Which of the entries up to `through` the toaster published: the processor asks once the
    /// toaster is done with them ([`Claims::toasted`]).
    pub fn published(&self, through: i64) -> PublishedAhead {
        PublishedAhead { through, failed: self.lock().failed.iter().copied().filter(|&(first, _)| first <= through).collect(), entries: Vec::new() }
    }
}

/// Publishes the events of handlers that publish ahead, from the feed (SQLite).
pub struct Toaster {
    db: Db,
    clock: Clock,
    registry: Registry,
    live: LiveHub,
    metrics: Arc<Metrics>,
    feed: Arc<Feed>,
    claims: Arc<Claims>,
}

impl Toaster {
    /// A toaster over the journal's feed, sharing `claims` with the processor.
    pub fn new(db: Db, clock: Clock, registry: Registry, live: LiveHub, metrics: Arc<Metrics>, feed: Arc<Feed>, claims: Arc<Claims>) -> Toaster {
        Toaster { db, clock, registry, live, metrics, feed, claims }
    }

    /// Runs until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let run = self.claims.take_run(&self.feed);
            if run.is_empty() {
                tokio::select! {
                    () = self.feed.arrival() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            if let Err(e) = self.publish(&run).await {
                // The processor publishes them after its commit instead.
                if let (Some(first), Some(last)) = (run.first(), run.last()) {
                    self.claims.turn_failed(first.id, last.id);
                }
                self.metrics.add("wabridge_toaster_failures_total", 1);
                tracing::warn!(error = format!("{e:#}"), entries = run.len(), "toasts could not be published ahead; the processor publishes them");
            }
            if let Some(last) = run.last() {
                self.claims.done.send_modify(|d| *d = (*d).max(last.id));
            }
            if self.claims.waiting(&self.feed) < GATHER_BELOW {
                tokio::time::sleep(GATHER_PAUSE).await;
            }
        }
    }

    /// Routes a run (reading the main file), asks the handlers that publish ahead for their
    /// events and stores and publishes them in the live events' file.
    async fn publish(&self, run: &[Arc<FedEntry>]) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        // One read transaction for the routes and the handlers' look-ups.
        let mut tx = self.db.begin_read().await?;
        let events = ahead_events(&self.registry, &mut tx, run, now).await?;
        drop(tx);
        live::publish_now(&self.db, &self.live, &events, now).await?;
        Ok(())
    }
}

/// The events that the handlers publishing ahead have for a run of entries: the run routed
/// with reads in `tx` (what nobody takes is kept for support when the processor applies it).
async fn ahead_events(registry: &Registry, tx: &mut Tx, run: &[Arc<FedEntry>], now: i64) -> anyhow::Result<Vec<NewEvent>> {
    let named: Vec<ChangeRef<'_>> = run.iter().filter_map(|r| r.parsed()).flat_map(|b| b.changes()).collect();
    let routes = RouteCache::load(tx, &named).await?;
    let mut routed: Vec<RoutedChange<'_>> = Vec::new();
    for row in run {
        route_entry(row, registry, now, &routes, &mut routed, &mut Vec::new());
    }
    let mut events: Vec<NewEvent> = Vec::new();
    for changes in routed.chunk_by(|a, b| a.change.field() == b.change.field()) {
        for handler in registry.handlers(changes[0].change.field().as_str()).iter().filter(|h| h.publishes_ahead()) {
            events.extend(handler.ahead(tx, changes).await?);
        }
    }
    Ok(events)
}

/// PostgreSQL's toaster: publishes the events of the groups its instance's journal hands it.
pub struct PgToaster {
    db: Db,
    clock: Clock,
    registry: Registry,
    live: LiveHub,
    metrics: Arc<Metrics>,
    groups: mpsc::Receiver<Vec<FedEntry>>,
}

impl PgToaster {
    /// A toaster over the groups the journal hands it ([`super::journal::Journal::toast_ahead`]).
    pub fn new(db: Db, clock: Clock, registry: Registry, live: LiveHub, metrics: Arc<Metrics>, groups: mpsc::Receiver<Vec<FedEntry>>) -> PgToaster {
        PgToaster { db, clock, registry, live, metrics, groups }
    }

    /// Runs until shutdown (or until the journal is gone).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                group = self.groups.recv() => match group {
                    Some(group) => group,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            // What else has come meanwhile goes in the same turn.
            let mut run: Vec<Arc<FedEntry>> = first.into_iter().map(Arc::new).collect();
            while run.len() < TURN {
                match self.groups.try_recv() {
                    Ok(group) => run.extend(group.into_iter().map(Arc::new)),
                    Err(_) => break,
                }
            }
            let ids: Vec<i64> = run.iter().map(|e| e.id).collect();
            if let Err(e) = self.publish(&run, &ids).await {
                self.metrics.add("wabridge_toaster_failures_total", 1);
                tracing::warn!(error = format!("{e:#}"), entries = run.len(), "toasts could not be published ahead; the processors publish them");
                if let Err(e) = self.hand_back(&ids).await {
                    // The processors take them once the toaster's grace has passed.
                    tracing::warn!(error = %e, entries = ids.len(), "entries left to the processors after their grace");
                }
            }
        }
    }

    /// In one transaction: marks the run's entries published (those no processor has taken
    /// meanwhile), stores their events and wakes the processors of every instance.
    async fn publish(&self, run: &[Arc<FedEntry>], ids: &[i64]) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let Tx::Postgres(t) = &mut tx else { anyhow::bail!("PostgreSQL's toaster on another database") };
        // Its commit need not wait for the disk: lost in a crash, the mark goes with the
        // events it names, and the processors publish them after their commit.
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut **t).await?;
        let mine = move_toast_state(t, ids, toast_state::PUBLISHED).await?;
        let mine: foldhash::HashSet<i64> = mine.into_iter().collect();
        let run: Vec<Arc<FedEntry>> = run.iter().filter(|e| mine.contains(&e.id)).cloned().collect();
        let events = ahead_events(&self.registry, &mut tx, &run, now).await?;
        live::commit(&self.db, &self.live, tx, &events, now).await?;
        Ok(())
    }

    /// A turn that failed: its entries go back to the processors at once.
    async fn hand_back(&self, ids: &[i64]) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        if let Tx::Postgres(t) = &mut tx {
            move_toast_state(t, ids, toast_state::PROCESSOR).await?;
        }
        tx.commit().await
    }
}

/// Moves the entries still at the toaster and unprocessed to the state `to` and wakes the
/// processors of every instance when the transaction commits; returns the ids moved.
async fn move_toast_state(t: &mut sqlx::PgConnection, ids: &[i64], to: i16) -> Result<Vec<i64>, sqlx::Error> {
    let moved = sqlx::query_scalar(
        "UPDATE webhook_journal SET toast_state = $2 WHERE id = ANY($1) AND toast_state = $3 AND processed_at IS NULL RETURNING id",
    )
    .bind(ids)
    .bind(to)
    .bind(toast_state::AT_TOASTER)
    .fetch_all(&mut *t)
    .await?;
    sqlx::query("SELECT pg_notify('wabridge_journal', '')").execute(&mut *t).await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_published_by_whoever_claims_it_first() {
        let claims = Claims::default();
        // After a start: applied through 10; the toaster takes 11..=20.
        claims.applied_through(10);
        claims.lock().through = 20;
        // The processor's batch 11..=30: the toaster published through 20, it does 21..=30.
        assert_eq!(claims.processor_claims(11, 30), 20);
        // The same batch again (isolated): the same answer, though 30 is claimed now.
        assert_eq!(claims.processor_claims(11, 30), 20);
        // The next batch, nothing claimed by the toaster in it.
        assert_eq!(claims.processor_claims(31, 40), 30);
        // The toaster ran ahead to 100: the batch 41..=60 is all its.
        claims.lock().through = 100;
        assert_eq!(claims.processor_claims(41, 60), 60);
        assert_eq!(claims.lock().through, 100);
    }

    #[test]
    fn the_entries_of_a_failed_turn_are_left_to_the_processor() {
        let claims = Claims::default();
        claims.turn_failed(11, 20);
        claims.turn_failed(31, 35);
        let published = claims.published(32);
        assert!(published.covers(10) && published.covers(21) && published.covers(30));
        assert!(!published.covers(11) && !published.covers(20) && !published.covers(31) && !published.covers(32));
        assert!(!published.covers(33), "past what was published");
        assert_eq!(published.failed, vec![(11, 20), (31, 35)]);
        // Once applied, a failed turn is forgotten.
        claims.applied_through(20);
        assert_eq!(claims.published(100).failed, vec![(31, 35)]);
        claims.applied_through(35);
        assert!(claims.published(100).covers(33));
    }
}
