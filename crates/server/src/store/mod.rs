//! Storage: one implementation per backend behind the [`Db`] handle.
//!
//! SQLite (WAL, one writer connection, a pool of readers) is the embedded default; PostgreSQL
//! is the production engine. Features own their queries and run them through [`with_pool!`] and
//! [`with_tx!`], which type-check the same statement against each backend's own driver — there
//! is no lowest-common-denominator `Any` driver. Where the backends need different SQL (queue
//! claims, durable journal commits) the feature matches on [`Db::backend`] itself.
//!
//! Conventions shared by both migration folders: ids are 64-bit integers, times are Unix
//! milliseconds in 64-bit integers, booleans are BOOLEAN (SQLite stores 0/1).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::accounts::TenantId;

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A handle on the database: cheap to clone, shared by every request and worker.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteFiles),
    Postgres(PgPool),
}

/// SQLite's files and their pools. The webhook journal lives in its own file (`journal`,
/// `journal_readers`) so that its durable group commits never queue behind the processor's
/// transactions on `writer`; the live events too (`live`, `live_readers`), so that a toast is
/// published without waiting for the processor's transaction.
#[derive(Clone)]
struct SqliteFiles {
    writer: SqlitePool,
    readers: SqlitePool,
    journal: SqlitePool,
    journal_readers: SqlitePool,
    journal_wal: PathBuf,
    live: SqlitePool,
    live_readers: SqlitePool,
}

/// A borrowed pool of one backend, for [`with_pool!`].
pub enum PoolRef<'a> {
    /// SQLite pool (the writer or the readers).
    Sqlite(&'a SqlitePool),
    /// PostgreSQL pool.
    Postgres(&'a PgPool),
}

/// An open write transaction on either backend, for [`with_tx!`].
pub enum Tx {
    /// SQLite transaction, begun with `BEGIN IMMEDIATE` on the single writer.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
}

/// Runs one sqlx expression against whichever backend a [`PoolRef`] holds: `$p` is bound to
/// `&SqlitePool` in one arm and `&PgPool` in the other, so the statement is checked by both.
#[macro_export]
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::store::PoolRef::Sqlite($p) => $body,
            $crate::store::PoolRef::Postgres($p) => $body,
        }
    };
}

/// Like [`with_pool!`] for an open [`Tx`]: `$c` is the transaction's connection.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is neither `sqlite:` nor `postgres://`.
    #[error("DATABASE_URL must start with sqlite: or postgres:// (got {0:?})")]
    UnsupportedUrl(String),
    /// The driver refused to connect.
    #[error("cannot open the database: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The folder for the SQLite file could not be created.
    #[error("cannot create the folder for the database: {0}")]
    Folder(#[from] std::io::Error),
}

impl Db {
    /// Opens the database named by `url` (`sqlite:path` or `postgres://…`).
    pub async fn open(url: &str) -> Result<Db, OpenError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            // No idle timeout or lifetime, so no maintenance task: sqlx 0.9's can spin on a
            // wrapped idle count and hang the process (launchbadge/sqlx#3645; see
            // `sqlite_pool`). A connection PostgreSQL dropped is still found out before use
            // (sqlx pings a pooled connection before handing it out) and replaced.
            let pool = PgPoolOptions::new()
                .idle_timeout(None)
                .max_lifetime(None)
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            return Ok(Db { backend: Backend::Postgres(pool) });
        }
        let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
            return Err(OpenError::UnsupportedUrl(url.to_owned()));
        };
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        let options = wal_file(path)
            .foreign_keys(true)
            .statement_cache_capacity(STATEMENT_CACHE)
            // 8 MB of page cache (the default is 2 MB); pages not in it are read through a
            // mapping rather than copied. Not more: a B-tree balance renumbers pages through
            // the lock page's number (page 262,145), so nearly every commit makes SQLite scan
            // its whole cache for pages past the end of the file — 16,384 hash slots and
            // every page at 64 MB (5 % of the writer's time), 2,048 slots at 8 MB (0.7 %).
            // (Larger WAL checkpoints were tried: they delay the journal's fsyncs on the same
            // disk, ack p99 9.5 → 17.6 ms.)
            .pragma("cache_size", "-8192")
            // Statement journals (a multi-row statement that may fail half-way keeps what it
            // changed, to undo it) stay in memory instead of a temporary file's writes.
            .pragma("temp_store", "memory");
        // SQLite has one writer at a time: one connection serialises writes in-process instead
        // of letting them fight over the lock; readers run beside it thanks to WAL.
        let writer = sqlite_pool(1).connect_with(options.clone()).await?;
        let readers = sqlite_pool(4).connect_with(options.clone().read_only(true)).await?;
        // Every journal commit promises durability to Meta, but the fsync is not SQLite's: the
        // journal's writer commits without one (NORMAL) and its sync thread fsyncs the WAL
        // before any request of that commit is answered (`ingest::journal`), so that the next
        // commit is written while the previous one is being synced. NORMAL alone would keep
        // the file consistent but not the last commits durable.
        let journal_file = journal_path(path);
        let (journal, journal_readers) = open_side_file(&journal_file, &JOURNAL_SCHEMA).await?;
        // The live events' file: written after the commits they belong to, by a writer of its
        // own (see `live::commit`); losing its last commits loses events, never data.
        let (live, live_readers) = open_side_file(&sibling_path(path, "live"), &LIVE_SCHEMA).await?;
        tokio::spawn(checkpointer(options, writer.clone(), MAIN_CHECKPOINTS));
        // Absolute, as SQLite resolved it at open (a bare file name has an empty parent).
        let journal_wal = PathBuf::from(format!("{journal_file}-wal"));
        let journal_wal = std::path::absolute(&journal_wal).unwrap_or(journal_wal);
        Ok(Db { backend: Backend::Sqlite(SqliteFiles { writer, readers, journal, journal_readers, journal_wal, live, live_readers }) })
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        match &self.backend {
            Backend::Sqlite(f) => {
                move_live_events_out(&f.writer, &f.live).await?;
                sqlx::migrate!("./migrations/sqlite").run(&f.writer).await?;
                move_journal_out(&f.writer, &f.journal).await?;
            }
            Backend::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// The engine behind this handle.
    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Sqlite(_) => Engine::Sqlite,
            Backend::Postgres(_) => Engine::Postgres,
        }
    }

    /// One SQLite pool, or PostgreSQL's one pool.
    fn pool(&self, pick: impl FnOnce(&SqliteFiles) -> &SqlitePool) -> PoolRef<'_> {
        match &self.backend {
            Backend::Sqlite(f) => PoolRef::Sqlite(pick(f)),
            Backend::Postgres(pool) => PoolRef::Postgres(pool),
        }
    }

    /// Begins a transaction on one SQLite pool (on its writers `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads and then writes would fail with SQLITE_BUSY without waiting), or
    /// on PostgreSQL's one pool.
    async fn begin_on(&self, pick: impl FnOnce(&SqliteFiles) -> &SqlitePool, writes: bool) -> Result<Tx, sqlx::Error> {
        Ok(match self.pool(pick) {
            PoolRef::Sqlite(p) if writes => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            PoolRef::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            PoolRef::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// The pool for statements that write (on SQLite, the single writer).
    pub fn write(&self) -> PoolRef<'_> {
        self.pool(|f| &f.writer)
    }

    /// The pool for statements that only read.
    pub fn read(&self) -> PoolRef<'_> {
        self.pool(|f| &f.readers)
    }

    /// The pool that appends to the webhook journal (on SQLite its own file and writer; on
    /// PostgreSQL the one database). Only `ingest::journal` uses it.
    pub fn journal_write(&self) -> PoolRef<'_> {
        self.pool(|f| &f.journal)
    }

    /// The pool that reads the webhook journal.
    pub fn journal_read(&self) -> PoolRef<'_> {
        self.pool(|f| &f.journal_readers)
    }

    /// On SQLite, the journal file's WAL: what its sync thread fsyncs before answering Meta.
    pub fn journal_wal(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(f) => Some(&f.journal_wal),
            Backend::Postgres(_) => None,
        }
    }

    /// The pool that writes live events (on SQLite their own file and writer; on PostgreSQL
    /// the one database). Only `live` and housekeeping use it.
    pub fn live_write(&self) -> PoolRef<'_> {
        self.pool(|f| &f.live)
    }

    /// The pool that reads live events.
    pub fn live_read(&self) -> PoolRef<'_> {
        self.pool(|f| &f.live_readers)
    }

    /// Begins a write transaction (on SQLite, on the single writer).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.begin_on(|f| &f.writer, true).await
    }

    /// Begins a transaction that only reads (on SQLite, on one of the readers: it does not wait
    /// for the writer).
    pub async fn begin_read(&self) -> Result<Tx, sqlx::Error> {
        self.begin_on(|f| &f.readers, false).await
    }

    /// Begins a transaction on the live events' writer (on PostgreSQL, on the one database).
    pub async fn begin_live(&self) -> Result<Tx, sqlx::Error> {
        self.begin_on(|f| &f.live, true).await
    }

    /// Whether the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> bool {
        with_pool!(self.read(), |p| sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected())).is_ok()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(f) => {
                f.readers.close().await;
                f.writer.close().await;
                f.live_readers.close().await;
                f.live.close().await;
                f.journal_readers.close().await;
                f.journal.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// How often the main file's WAL is folded back: it takes the processor's writes (in the
/// benchmark with every handler, 170 MB/s), whose checkpoint fsyncs share the disk with the
/// journal's. Every 50 ms, those fsyncs stretched the journal's (fdatasync p99 6 ms, against
/// 1.3 with the notifications alone) and so Meta's answers (ack p99 12–13 ms); every 10 ms,
/// ack p99 8.4–10.2 ms over 17 runs at the same throughput.
const MAIN_CHECKPOINTS: Duration = Duration::from_millis(10);
/// How often the journal's and the live events' files' WALs are folded back (more often made
/// no difference to the journal's).
const SIDE_CHECKPOINTS: Duration = Duration::from_millis(50);

/// Folds a database file's WAL back into the file from a connection of its own, every
/// `interval`, instead of inside whichever commit crosses SQLite's threshold: there a
/// checkpoint stalled the processor (a 512-body batch's commit took 13–17 ms instead of 3) or,
/// in the journal's file, a group commit that Meta's requests wait for (ack p99 at 64
/// connections 10–12 ms instead of 6.3). Small and frequent, because large ones delay the
/// journal's fsyncs on the same disk. PASSIVE never waits for the writer or readers. Ends
/// when the writer's pool is closed.
async fn checkpointer(options: SqliteConnectOptions, writer: SqlitePool, interval: Duration) {
    use sqlx::Connection as _;
    let Ok(mut conn) = sqlx::SqliteConnection::connect_with(&options).await else { return };
    while !writer.is_closed() {
        tokio::time::sleep(interval).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::debug!(error = %e, "WAL checkpoint failed; next round retries");
        }
    }
    let _ = conn.close().await;
}

/// The SQLite journal file's only table (ids continue those of the main file's old journal).
const JOURNAL_SCHEMA: [&str; 1] =
    ["CREATE TABLE IF NOT EXISTS webhook_journal (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, body BLOB NOT NULL)"];

/// The SQLite live events' file's schema (ids continue those of the main file's old table).
const LIVE_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS live_events (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, user_id INTEGER, kind TEXT NOT NULL, payload TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS live_events_tenant ON live_events (tenant_id, id)",
];

/// What every SQLite file of wabridge is opened with: WAL, commits without an fsync
/// (NORMAL), reads through a mapping, and checkpoints beside the writer (see `checkpointer`) —
/// SQLite's own only as the bound should that fall behind.
fn wal_file(file: &str) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .pragma("mmap_size", "268435456")
        .pragma("wal_autocheckpoint", "16384")
}

/// A pool of `connections` to a SQLite file. A connection to a local file cannot go stale: no
/// ping before every acquisition (sqlx's default, a round trip to the connection's thread
/// each time), and no idle timeout or lifetime — so no maintenance task either. (sqlx 0.9's
/// task walks `0..num_idle` without yielding; once, at a CLI's exit, that count had wrapped
/// below zero — a race in the pool's release, launchbadge/sqlx#3645 — and the task spun on a
/// worker for good, so the process never ended.)
fn sqlite_pool(connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
}

/// Opens a SQLite file beside the main one (the journal's, the live events'): its one writer,
/// its schema (created before the readers open it read-only), two readers, and checkpoints
/// beside the writer. Its commits do not fsync (NORMAL; see `Db::open` for the journal's).
/// Like the main file's, its checkpoints run beside its writer (see `checkpointer`), not
/// inside a commit that someone waits for.
async fn open_side_file(file: &str, schema: &[&'static str]) -> Result<(SqlitePool, SqlitePool), sqlx::Error> {
    let options = wal_file(file);
    let writer = sqlite_pool(1).connect_with(options.clone()).await?;
    for &statement in schema {
        sqlx::query(statement).execute(&writer).await?;
    }
    let readers = sqlite_pool(2).connect_with(options.clone().read_only(true)).await?;
    tokio::spawn(checkpointer(options, writer.clone(), SIDE_CHECKPOINTS));
    Ok((writer, readers))
}

/// `data/wabridge.db` → `data/wabridge-journal.db`.
fn journal_path(main: &str) -> String {
    sibling_path(main, "journal")
}

/// `data/wabridge.db` → `data/wabridge-<name>.db`.
fn sibling_path(main: &str, name: &str) -> String {
    match main.strip_suffix(".db") {
        Some(stem) => format!("{stem}-{name}.db"),
        None => format!("{main}-{name}.db"),
    }
}

/// Databases from before the separate journal file kept the journal in the main file: its
/// entries move to the journal file once, with their ids (retries and unhandled changes name
/// them; migration 0007 set the processed cursor). Re-runnable if interrupted.
async fn move_journal_out(main: &SqlitePool, journal: &SqlitePool) -> Result<(), sqlx::Error> {
    loop {
        let rows: Vec<(i64, i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, received_at, body FROM webhook_journal ORDER BY id LIMIT 256").fetch_all(main).await?;
        let Some(last) = rows.last().map(|r| r.0) else { return Ok(()) };
        let mut tx = journal.begin().await?;
        for (id, received_at, body) in &rows {
            sqlx::query("INSERT OR IGNORE INTO webhook_journal (id, received_at, body) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(received_at)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        // What moved is on disk before the main file forgets it: the journal's connection
        // does not fsync its commits, a checkpoint syncs its WAL and its file.
        sqlx::query("PRAGMA wal_checkpoint(FULL)").execute(journal).await?;
        sqlx::query("DELETE FROM webhook_journal WHERE id <= $1").bind(last).execute(main).await?;
    }
}

/// Databases from before the live events' file kept them in the main file (migration 0011
/// drops that table): the last day's move over with their ids, so that a browser's
/// `Last-Event-ID` still counts.
async fn move_live_events_out(main: &SqlitePool, live: &SqlitePool) -> Result<(), sqlx::Error> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'live_events'").fetch_optional(main).await?;
    if exists.is_none() {
        return Ok(());
    }
    let mut after = 0;
    loop {
        let rows: Vec<(i64, i64, Option<i64>, String, String, i64)> =
            sqlx::query_as("SELECT id, tenant_id, user_id, kind, payload, at FROM live_events WHERE id > $1 ORDER BY id LIMIT 256").bind(after).fetch_all(main).await?;
        let Some(last) = rows.last().map(|r| r.0) else { break };
        let mut tx = live.begin().await?;
        for (id, tenant, user, kind, payload, at) in &rows {
            sqlx::query("INSERT OR IGNORE INTO live_events (id, tenant_id, user_id, kind, payload, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(tenant)
                .bind(user)
                .bind(kind)
                .bind(payload)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        after = last;
    }
    // On disk before migration 0011 drops the main file's table.
    sqlx::query("PRAGMA wal_checkpoint(FULL)").execute(live).await.map(drop)
}

impl Tx {
    /// The engine the transaction runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

/// Row counts of the hot path's multi-row statements on SQLite. A batch's rows go in as
/// statements of these sizes (largest first) and one for the remainder below the smallest, so
/// that each statement has one of a few shapes, prepared once per connection and then taken
/// from its statement cache: preparing a statement of many rows costs SQLite about as much as
/// running it. Parameters (13 per row at most) stay below SQLite's limit of 32,766.
const STATEMENT_ROWS: [usize; 3] = [512, 128, 32];

/// Prepared statements each SQLite connection keeps: the hot path's shapes (about 35 per
/// statement).
pub const STATEMENT_CACHE: usize = 1024;

/// Most rows of one statement on the hot path (PostgreSQL takes chunks of this size as they
/// come: 13 parameters per row stay below its limit of 65,535).
pub const ROWS_PER_STATEMENT: usize = STATEMENT_ROWS[0];

/// The sizes of the statements that take `rows` rows: on SQLite those of [`STATEMENT_ROWS`],
/// on PostgreSQL chunks of [`ROWS_PER_STATEMENT`].
pub fn statement_sizes(engine: Engine, rows: usize) -> impl Iterator<Item = usize> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let take = match engine {
            Engine::Sqlite => STATEMENT_ROWS.iter().copied().find(|&s| s <= rest).unwrap_or(rest),
            Engine::Postgres => rest.min(ROWS_PER_STATEMENT),
        };
        rest -= take;
        (take > 0).then_some(take)
    })
}

/// `rows` cut into the chunks of [`statement_sizes`].
pub fn statement_chunks<T>(engine: Engine, rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    statement_sizes(engine, rows.len()).map(move |n| {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        chunk
    })
}

/// Whether the hot path's multi-row statements stay prepared: on SQLite, whose shapes are
/// few. Not on PostgreSQL, which plans a one-off statement for its actual parameters and
/// parses it on the server, not in our process; the two runs with kept statements there
/// applied less than half as much (2,200–2,700 msg/s against 4,800–6,100), though one run
/// without them did as badly once, so the price of keeping them is not established.
pub fn keep_prepared(engine: Engine) -> bool {
    engine == Engine::Sqlite
}

/// `(…), (…)`: `rows` rows of `cols` parameters each — the VALUES of a multi-row statement,
/// its parameters bound in order from `$first` on. SQLite gets anonymous `?`: it looks up
/// numbered and named parameters by a linear search, which makes a statement with thousands of
/// them quadratic (in preparing and in binding); anonymous ones are simply counted.
pub fn value_rows(engine: Engine, rows: usize, cols: usize, first: usize) -> String {
    // SQLite's rows all read alike: written once, then copied (a hot-path statement has
    // hundreds of rows).
    let alike = (engine == Engine::Sqlite).then(|| param_list(engine, cols, first));
    let mut sql = String::with_capacity(rows * (cols * 6 + 3));
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        match &alike {
            Some(row) => sql.push_str(row),
            None => sql.push_str(&param_list(engine, cols, first + r * cols)),
        }
        sql.push(')');
    }
    sql
}

/// `n` parameters, bound in order from `$first` on (for `IN (…)`); see [`value_rows`].
pub fn param_list(engine: Engine, n: usize, first: usize) -> String {
    match engine {
        Engine::Sqlite => vec!["?"; n].join(", "),
        Engine::Postgres => (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", "),
    }
}

/// A parameter of [`insert_ids`].
#[derive(Clone, Copy, Debug)]
pub enum Val<'a> {
    /// An integer or NULL.
    Int(Option<i64>),
    /// A text or NULL.
    Text(Option<&'a str>),
    /// A boolean.
    Bool(bool),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::Text(v)
    }
}

impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}

impl From<TenantId> for Val<'_> {
    fn from(v: TenantId) -> Self {
        Val::Int(Some(v.0))
    }
}

/// Binds [`Val`]s in order to a query of either backend (`sqlx::query`, `query_as`,
/// `query_scalar`): `bind_vals!(query, values)`.
#[macro_export]
macro_rules! bind_vals {
    ($query:expr, $values:expr) => {{
        let mut q = $query;
        for v in $values {
            q = match *v {
                $crate::store::Val::Int(i) => q.bind(i),
                $crate::store::Val::Text(s) => q.bind(s),
                $crate::store::Val::Bool(b) => q.bind(b),
            };
        }
        q
    }};
}

/// Inserts rows — `values` holds `cols` parameters per row — with `head` (`INSERT INTO t
/// (…)`, without VALUES), one statement per chunk, and returns each row's id in order.
///
/// No row comes back through the driver: on SQLite, where this connection is the only
/// writer, one statement's rows take consecutive ids ending at the last inserted rowid (the
/// statement must not skip rows: no conflict clause); on PostgreSQL `RETURNING id` yields
/// them in the order of the VALUES.
pub async fn insert_ids(tx: &mut Tx, head: &str, cols: usize, values: &[Val<'_>]) -> Result<Vec<i64>, sqlx::Error> {
    let cols = cols.max(1);
    let mut ids = Vec::with_capacity(values.len() / cols);
    let mut rest = values;
    for rows in statement_sizes(tx.engine(), values.len() / cols) {
        let (chunk, tail) = rest.split_at(rows * cols);
        rest = tail;
        let sql = format!("{head} VALUES {}", value_rows(tx.engine(), rows, cols, 1));
        match tx {
            Tx::Sqlite(t) => {
                let done = crate::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk).execute(&mut **t).await?;
                let inserted = i64::try_from(done.rows_affected()).unwrap_or(i64::MAX);
                if inserted != rows as i64 {
                    return Err(sqlx::Error::Protocol(format!("{rows} rows to insert, {inserted} inserted")));
                }
                let last = done.last_insert_rowid();
                ids.extend(last - inserted + 1..=last);
            }
            Tx::Postgres(t) => {
                let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("{sql} RETURNING id"))).persistent(false);
                ids.extend(crate::bind_vals!(q, chunk).fetch_all(&mut **t).await?);
            }
        }
    }
    Ok(ids)
}

/// A batch's keys per tenant, each tenant's sorted and without repeats (one look-up per
/// tenant and chunk of keys).
pub fn keys_by_tenant<K: Ord>(keys: impl IntoIterator<Item = (TenantId, K)>) -> foldhash::HashMap<TenantId, Vec<K>> {
    let mut wanted: foldhash::HashMap<TenantId, Vec<K>> = foldhash::HashMap::default();
    for (tenant, key) in keys {
        wanted.entry(tenant).or_default().push(key);
    }
    for keys in wanted.values_mut() {
        keys.sort_unstable();
        keys.dedup();
    }
    wanted
}

/// The rows of `select` — a query whose WHERE clause names the tenant as `$1` — for which
/// `column` is one of the tenant's keys among `keys`: one statement per tenant and chunk of
/// keys, for the hot path's look-ups of a whole batch.
pub async fn select_in<R, K>(
    tx: &mut Tx,
    select: &str,
    column: &str,
    keys: impl IntoIterator<Item = (TenantId, K)>,
) -> Result<Vec<(TenantId, R)>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    K: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + Sync + Ord,
{
    let mut found = Vec::new();
    for (tenant, keys) in keys_by_tenant(keys) {
        for chunk in statement_chunks(tx.engine(), &keys) {
            let engine = tx.engine();
            let sql = format!("{} AND {column} IN ({})", select.replace("$1", &param_list(engine, 1, 1)), param_list(engine, chunk.len(), 2));
            let rows = with_tx!(&mut *tx, |c| {
                let mut q = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql.clone())).persistent(keep_prepared(engine)).bind(tenant);
                for k in chunk {
                    q = q.bind(k);
                }
                q.fetch_all(c).await
            })?;
            found.extend(rows.into_iter().map(|r| (tenant, r)));
        }
    }
    Ok(found)
}

/// The rows of `select` — a query ending in `IN` — for every key among `keys`: one statement
/// per chunk of keys (for look-ups of a whole batch that are not scoped to one tenant).
pub async fn select_any<R, K>(tx: &mut Tx, select: &str, keys: &[K]) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    K: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + Sync,
{
    let mut found = Vec::new();
    for chunk in statement_chunks(tx.engine(), keys) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!("{select} ({})", param_list(tx.engine(), chunk.len(), 1));
        let rows = with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for key in chunk {
                q = q.bind(key);
            }
            q.fetch_all(c).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// JSON text of a value for a TEXT column: written straight into a buffer, faster than
/// through `Display` (`to_string`), which passes every piece through a formatter.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serialising a JSON value or a struct of strings and numbers cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// True when the error is a violated unique constraint (a duplicate that an idempotent
/// insert or a unique e-mail address must turn into a clear answer, not a 500).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::{Engine, ROWS_PER_STATEMENT, statement_chunks, statement_sizes, value_rows};

    #[test]
    fn values_number_their_parameters_on_postgres_and_repeat_one_row_on_sqlite() {
        assert_eq!(value_rows(Engine::Sqlite, 3, 2, 1), "(?, ?),(?, ?),(?, ?)");
        assert_eq!(value_rows(Engine::Postgres, 3, 2, 4), "($4, $5),($6, $7),($8, $9)");
        assert_eq!(value_rows(Engine::Sqlite, 0, 2, 1), "");
        assert_eq!(value_rows(Engine::Sqlite, 512, 13, 1).matches('?').count(), 512 * 13);
    }

    #[test]
    fn rows_go_in_statements_of_few_shapes() {
        let sizes = |n: usize| statement_sizes(Engine::Sqlite, n).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(31), [31]);
        assert_eq!(sizes(32), [32]);
        assert_eq!(sizes(600), [512, 32, 32, 24]);
        assert_eq!(sizes(511), [128, 128, 128, 32, 32, 32, 31]);
        assert_eq!(sizes(1100), [512, 512, 32, 32, 12]);
        for n in 0..2000 {
            let s = sizes(n);
            assert_eq!(s.iter().sum::<usize>(), n);
            assert!(s.iter().all(|&k| k == 512 || k == 128 || k == 32 || k < 32), "{n}: {s:?}");
            assert!(s.iter().filter(|&&k| k < 32).count() <= 1, "one remainder at most");
        }
        let rows: Vec<usize> = (0..600).collect();
        let chunks: Vec<&[usize]> = statement_chunks(Engine::Sqlite, &rows).collect();
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [512, 32, 32, 24]);
        assert_eq!(chunks.concat(), rows, "in order, nothing lost");
        // PostgreSQL keeps no statements: chunks as large as allowed.
        let pg: Vec<usize> = statement_sizes(Engine::Postgres, 1100).collect();
        assert_eq!(pg, [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 1100 - 2 * ROWS_PER_STATEMENT]);
        assert_eq!(statement_chunks(Engine::Postgres, &rows).map(<[usize]>::len).collect::<Vec<_>>(), [512, 88]);
    }
}
