//! On SQLite, the journal hands what it has just committed and fsynced to the processor in
//! memory, and a parser task parses it ahead of the processor: the processor neither reads the
//! bodies back (row by row through the driver's thread) nor parses them on its own critical
//! path.
//!
//! The feed is only a shortcut. It holds committed entries, bounded in bytes; whatever it
//! dropped, or never held (after a restart), the processor reads from the journal as before.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::Notify;
use wabridge_cloud_api::parse_webhook;
use wabridge_cloud_api::webhook::WebhookBody;

/// Body bytes the feed holds at most; beyond, new entries are left to the journal.
const MAX_BYTES: usize = 64 << 20;
/// How many entries the parser parses ahead of the processor (parsed bodies are larger than
/// their JSON: this bounds the memory they take).
const PARSE_AHEAD: usize = 2048;
/// Entries the parser takes per turn (a turn stays short for the runtime's other tasks).
const PARSE_TURN: usize = 64;

/// A committed journal entry, parsed at most once by whichever of the parser and the
/// processor gets to it first.
pub struct FedEntry {
    /// Journal id.
    pub id: i64,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// The raw body as signed by Meta.
    pub body: Bytes,
    parsed: OnceLock<Option<WebhookBody>>,
}

impl FedEntry {
    /// An entry, not parsed yet.
    pub fn new(id: i64, received_at: i64, body: Bytes) -> FedEntry {
        FedEntry { id, received_at, body, parsed: OnceLock::new() }
    }

    /// The parsed body (`None` when it is not JSON).
    pub fn parsed(&self) -> Option<&WebhookBody> {
        self.parsed.get_or_init(|| parse_webhook(&self.body).ok()).as_ref()
    }
}

/// Committed entries in id order, waiting for the processor.
pub struct Feed {
    state: Mutex<State>,
    max_bytes: usize,
    /// Wakes the parser: entries arrived, or the processor took some.
    work: Notify,
    /// Wakes the toaster: entries arrived.
    arrived: Notify,
}

impl Default for Feed {
    fn default() -> Feed {
        // Until the first commit, what the journal holds (left by an earlier run) is unknown.
        let state = State { committed_through: i64::MAX, ..State::default() };
        Feed { state: Mutex::new(state), max_bytes: MAX_BYTES, work: Notify::new(), arrived: Notify::new() }
    }
}

#[derive(Default)]
struct State {
    entries: VecDeque<Arc<FedEntry>>,
    bytes: usize,
    /// Applied entries, freed by the parser task: freeing a parsed body takes about as long
    /// as building it, and the processor's thread is the one to spare.
    retired: Vec<Arc<FedEntry>>,
    /// The id of the next entry the parser parses.
    parse_next: i64,
    /// The last id the journal committed durably, whether held here or not; `i64::MAX` when
    /// a commit failed and what it left is unknown.
    committed_through: i64,
}

impl State {
    /// The entries `after + 1, after + 2, …` that are here, at most `limit`.
    fn run_after(&self, after: i64, limit: usize) -> Vec<Arc<FedEntry>> {
        let start = self.entries.partition_point(|e| e.id <= after);
        let mut run: Vec<Arc<FedEntry>> = Vec::new();
        for entry in self.entries.range(start..).take(limit) {
            if entry.id != after + 1 + run.len() as i64 {
                break;
            }
            run.push(entry.clone());
        }
        run
    }
}

impl Feed {
    /// Starts the parser task; it ends when the feed is no longer held elsewhere.
    pub fn start() -> Arc<Feed> {
        let feed = Arc::new(Feed::default());
        tokio::spawn(parser(feed.clone()));
        feed
    }

    /// Adds entries just committed and on disk (ids ascending); those that do not fit are
    /// left out.
    pub fn push(&self, entries: impl IntoIterator<Item = FedEntry>) {
        {
            let mut state = self.lock();
            let mut full = false;
            for entry in entries {
                state.committed_through = entry.id;
                full = full || state.bytes + entry.body.len() > self.max_bytes;
                if !full {
                    state.bytes += entry.body.len();
                    state.entries.push_back(Arc::new(entry));
                }
            }
        }
        self.work.notify_one();
        self.arrived.notify_one();
    }

    /// Waits until entries arrive (at once when some arrived since the last wait).
    pub async fn arrival(&self) {
        self.arrived.notified().await;
    }

    /// A commit failed: whether it left entries is unknown until the next one succeeds.
    pub fn commit_unknown(&self) {
        self.lock().committed_through = i64::MAX;
    }

    /// The last id the journal committed durably (`i64::MAX` while unknown: before the first
    /// commit of this process, after a failed one): nothing after it waits for the processor.
    pub fn committed_through(&self) -> i64 {
        self.lock().committed_through
    }

    /// Forgets entries up to `cursor` (applied) and returns the run that follows it without
    /// a gap, at most `limit` long; empty when the next entry is not here.
    pub fn take_after(&self, cursor: i64, limit: usize) -> Vec<Arc<FedEntry>> {
        let run = {
            let mut state = self.lock();
            while state.entries.front().is_some_and(|e| e.id <= cursor) {
                if let Some(e) = state.entries.pop_front() {
                    state.bytes -= e.body.len();
                    state.retired.push(e);
                }
            }
            state.run_after(cursor, limit)
        };
        self.work.notify_one();
        run
    }

    /// The run that follows `after` without a gap, at most `limit` long, forgetting nothing:
    /// what the toaster publishes ahead of the processor.
    pub fn peek_after(&self, after: i64, limit: usize) -> Vec<Arc<FedEntry>> {
        self.lock().run_after(after, limit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Up to a turn of entries within the parse-ahead window that are not parsed yet, and the
    /// applied entries to free.
    fn to_parse(&self) -> (Vec<Arc<FedEntry>>, Vec<Arc<FedEntry>>) {
        let mut state = self.lock();
        let retired = std::mem::take(&mut state.retired);
        let next = state.parse_next;
        let turn: Vec<Arc<FedEntry>> = state.entries.iter().take(PARSE_AHEAD).filter(|e| e.id >= next).take(PARSE_TURN).cloned().collect();
        if let Some(last) = turn.last() {
            state.parse_next = last.id + 1;
        }
        (turn, retired)
    }
}

async fn parser(feed: Arc<Feed>) {
    // Ends once nobody else holds the feed (checked at least every second).
    while Arc::strong_count(&feed) > 1 {
        let (turn, retired) = feed.to_parse();
        drop(retired);
        if turn.is_empty() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), feed.work.notified()).await;
            continue;
        }
        for entry in &turn {
            entry.parsed();
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ids: std::ops::RangeInclusive<i64>) -> impl Iterator<Item = FedEntry> {
        ids.map(|id| FedEntry::new(id, 0, Bytes::from(format!(r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{id}"}}]}}"#))))
    }

    fn ids(run: &[Arc<FedEntry>]) -> Vec<i64> {
        run.iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_run_after_the_cursor_is_taken_in_order_and_applied_entries_are_retired() {
        let feed = Feed::default();
        feed.push(entries(1..=5));
        assert_eq!(ids(&feed.take_after(0, 3)), vec![1, 2, 3]);
        // Not yet applied: taken again (a batch applied again with savepoints sees the same).
        assert_eq!(ids(&feed.take_after(0, 10)), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(&feed.take_after(3, 10)), vec![4, 5]);
        let (_, retired) = feed.to_parse();
        assert_eq!(ids(&retired), vec![1, 2, 3]);
        assert!(feed.take_after(5, 10).is_empty());
    }

    #[test]
    fn a_look_ahead_forgets_nothing() {
        let feed = Feed::default();
        feed.push(entries(1..=6));
        assert_eq!(ids(&feed.take_after(0, 2)), vec![1, 2]);
        assert_eq!(ids(&feed.peek_after(2, 3)), vec![3, 4, 5]);
        assert_eq!(ids(&feed.peek_after(4, 10)), vec![5, 6]);
        assert!(feed.peek_after(6, 10).is_empty());
        // Nothing after the cursor was retired by looking ahead.
        assert_eq!(ids(&feed.take_after(2, 10)), vec![3, 4, 5, 6]);
        let (_, retired) = feed.to_parse();
        assert_eq!(ids(&retired), vec![1, 2]);
    }

    #[test]
    fn a_gap_leaves_the_processor_to_the_journal() {
        let feed = Feed::default();
        feed.push(entries(4..=6));
        // Entries 1 to 3 are only in the journal (a restart, or dropped when the feed was full).
        assert!(feed.take_after(0, 10).is_empty());
        assert_eq!(ids(&feed.take_after(3, 10)), vec![4, 5, 6]);
        feed.push(entries(8..=9));
        assert_eq!(ids(&feed.take_after(3, 10)), vec![4, 5, 6], "a run stops at a gap");
        assert!(feed.take_after(6, 10).is_empty());
    }

    #[test]
    fn entries_beyond_the_bound_are_left_to_the_journal() {
        let feed = Feed { max_bytes: 150, ..Feed::default() };
        feed.push(entries(1..=5));
        let held = feed.take_after(0, 10);
        assert!(!held.is_empty() && held.len() < 5, "held {:?}", ids(&held));
        assert_eq!(held.iter().map(|e| e.body.len()).sum::<usize>(), feed.lock().bytes);
        // Once applied, the room is free again.
        let last = held.last().map_or(0, |e| e.id);
        feed.take_after(last, 10);
        assert_eq!(feed.lock().bytes, 0);
        feed.push(entries(last + 1..=last + 1));
        assert_eq!(ids(&feed.take_after(last, 10)), vec![last + 1]);
    }

    #[test]
    fn the_feed_knows_the_last_commit_even_beyond_its_bound() {
        let feed = Feed { max_bytes: 150, ..Feed::default() };
        assert_eq!(feed.committed_through(), i64::MAX, "unknown before the first commit");
        feed.push(entries(1..=5));
        assert_eq!(feed.committed_through(), 5, "held or not");
        assert!(feed.lock().entries.len() < 5);
        feed.commit_unknown();
        assert_eq!(feed.committed_through(), i64::MAX);
        feed.push(entries(9..=9));
        assert_eq!(feed.committed_through(), 9);
    }

    #[test]
    fn the_parser_parses_ahead_once_and_the_processor_reuses_it() {
        let feed = Feed::default();
        feed.push(entries(1..=3).chain(std::iter::once(FedEntry::new(4, 0, Bytes::from_static(b"not json")))));
        let (turn, _) = feed.to_parse();
        assert_eq!(ids(&turn), vec![1, 2, 3, 4]);
        for e in &turn {
            e.parsed();
        }
        assert!(feed.to_parse().0.is_empty(), "nothing is parsed twice");
        let run = feed.take_after(0, 10);
        assert_eq!(run[0].parsed().and_then(|b| b.entries[0].id.clone()).as_deref(), Some("1"));
        assert!(run[3].parsed().is_none());
    }
}
