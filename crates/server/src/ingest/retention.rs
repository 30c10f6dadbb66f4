//! Housekeeping of the webhook road, so that a long-running instance does not keep every body
//! Meta ever sent: an applied journal entry is removed after `WABRIDGE_JOURNAL_RETENTION_DAYS`
//! unless support still sees one of its changes as unhandled or a handler still retries it
//! (both name the entry); live events are removed after a day (a reconnecting browser replays
//! the last few hundred at most). Swept every hour, oldest first, a chunk per statement, so
//! that a sweep never holds a writer for long.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::{Db, Engine, PoolRef, param_list};
use crate::with_pool;

/// Rows looked at per statement.
const CHUNK: i64 = 2_000;
/// How long live events are kept.
pub const LIVE_EVENTS_KEPT_MS: i64 = 24 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// The first sweep after start, then every [`EVERY`].
const FIRST: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(3_600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Journal entries.
    pub journal: u64,
    /// Live event rows.
    pub live_events: u64,
    /// Customers' pair-limit rows whose allowance is whole again (as good as none).
    pub pair_slots: u64,
}

/// Sweeps a minute after start and then hourly, until shutdown.
pub async fn run(db: Db, clock: Clock, journal_days: i64, shutdown: watch::Receiver<bool>) {
    crate::clock::periodically(FIRST, EVERY, shutdown, || async {
        match sweep(&db, clock.now_ms(), journal_days).await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(journal = swept.journal, live_events = swept.live_events, pair_slots = swept.pair_slots, "old webhook bodies, live events and pair slots removed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "housekeeping failed; the next sweep tries again"),
        }
    })
    .await;
}

/// Removes what is older than its retention at `now` (journal entries after `journal_days`,
/// never when that is 0; live events after a day).
pub async fn sweep(db: &Db, now: i64, journal_days: i64) -> Result<Swept, sqlx::Error> {
    let journal = if journal_days > 0 { sweep_journal(db, now - journal_days * DAY_MS).await? } else { 0 };
    let live_events = sweep_oldest(db.engine(), db.live_write(), "SELECT id, at, TRUE FROM live_events", "live_events", i64::MAX, now - LIVE_EVENTS_KEPT_MS, |_, _| async {
        Ok(HashSet::new())
    })
    .await?;
    // A pair whose theoretical arrival time has passed has its whole burst again: its row
    // says nothing a missing row does not.
    let pair_slots = with_pool!(db.write(), |p| sqlx::query("DELETE FROM pair_pacing WHERE tat_at < $1").bind(now * 1000).execute(p).await.map(|done| done.rows_affected()))?;
    Ok(Swept { journal, live_events, pair_slots })
}

/// Applied journal entries received before `cutoff` that nothing names any more.
async fn sweep_journal(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    let (select, applied_through) = match db.engine() {
        // SQLite's journal (a file of its own) is applied up to the processor's cursor.
        Engine::Sqlite => (
            "SELECT id, received_at, TRUE FROM webhook_journal",
            with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT processed_through FROM ingest_cursor WHERE id = 1").fetch_one(p).await)?,
        ),
        // PostgreSQL's processors apply entries out of order: each is marked.
        Engine::Postgres => ("SELECT id, received_at, processed_at IS NOT NULL FROM webhook_journal", i64::MAX),
    };
    sweep_oldest(db.engine(), db.journal_write(), select, "webhook_journal", applied_through, cutoff, |first, last| async move {
        let named = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(
            "SELECT journal_id FROM webhook_unhandled WHERE journal_id BETWEEN $1 AND $2
             UNION SELECT journal_id FROM handler_retries WHERE journal_id BETWEEN $1 AND $2"
        )
        .bind(first)
        .bind(last)
        .fetch_all(p)
        .await)?;
        Ok(named.into_iter().collect())
    })
    .await
}

/// Walks `select` (id, time, whether it may go) in id order up to `through` and deletes from
/// `table` the rows older than `cutoff` that may go and that `kept(first, last)` does not
/// name; stops at the first row young enough to stay (ids grow with time).
async fn sweep_oldest<'a, K, F>(engine: Engine, pool: PoolRef<'a>, select: &str, table: &str, through: i64, cutoff: i64, kept: K) -> Result<u64, sqlx::Error>
where
    K: Fn(i64, i64) -> F,
    F: Future<Output = Result<HashSet<i64>, sqlx::Error>>,
{
    let page = format!("{select} WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3");
    let mut after = 0;
    let mut removed = 0;
    loop {
        let rows: Vec<(i64, i64, bool)> = with_pool!(pool, |p| sqlx::query_as(sqlx::AssertSqlSafe(page.clone()))
            .bind(after)
            .bind(through)
            .bind(CHUNK)
            .persistent(false)
            .fetch_all(p)
            .await)?;
        let Some(&(last_seen, ..)) = rows.last() else { break };
        let young = rows.iter().position(|&(_, at, _)| at >= cutoff);
        let old = &rows[..young.unwrap_or(rows.len())];
        if let (Some(&(first, ..)), Some(&(last, ..))) = (old.first(), old.last()) {
            let keep = kept(first, last).await?;
            let doomed: Vec<i64> = old.iter().filter(|&&(id, _, may_go)| may_go && !keep.contains(&id)).map(|&(id, ..)| id).collect();
            if !doomed.is_empty() {
                let delete = format!("DELETE FROM {table} WHERE id IN ({})", param_list(engine, doomed.len(), 1));
                removed += with_pool!(pool, |p| {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(delete.clone())).persistent(false);
                    for id in &doomed {
                        q = q.bind(id);
                    }
                    q.execute(p).await.map(|done| done.rows_affected())
                })?;
            }
        }
        if young.is_some() || rows.len() < CHUNK as usize {
            break;
        }
        after = last_seen;
    }
    Ok(removed)
}
