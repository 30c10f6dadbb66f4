//! Customer media, kept as they arrive. Meta's media ids in webhooks expire after seven days
//! (and a download URL after five minutes), so a picture nobody opened in time would be lost:
//! the inbox handler records every inbound file as `pending` in the processor's transaction,
//! and [`MediaFetcher`]s fetch it through the Graph API, with retries, and keep it — in the
//! database, a directory or a bucket ([`MediaStore`]). A file Meta no longer has is marked `failed`,
//! and the conversation says so instead of showing a broken picture. With
//! `WABRIDGE_MEDIA_RETENTION_DAYS`, files older than that are deleted ([`expire`]) and marked
//! `expired`; the conversation says that too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use sha2::Digest as _;
use tokio::sync::watch;
use wabridge_cloud_api::{ApiError, ErrorClass, GraphClient};

use super::bucket::Bucket;
use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::store::{Db, Tx, Val, param_list, statement_chunks, value_rows};
use crate::web::metrics::Metrics;
use crate::{with_pool, with_tx};

/// How long Meta keeps a media id it put in a webhook.
pub const MEDIA_ID_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a claimed file is left to its fetcher before another may try.
const LEASE_MS: i64 = 2 * 60 * 1000;
/// The first wait after a failed fetch; doubled per attempt up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: i64 = 15_000;
/// The longest wait between attempts.
const MAX_RETRY_MS: i64 = 3_600_000;
/// Fetchers per instance.
pub const FETCHERS: usize = 2;
/// How often an idle fetcher looks for files.
const IDLE: Duration = Duration::from_secs(1);

/// Where the bytes of media are kept: in the database (the default: every instance reads them),
/// in a directory every instance mounts (`WABRIDGE_MEDIA_DIR`), or in an S3-compatible bucket
/// (`WABRIDGE_MEDIA_BUCKET`).
#[derive(Clone, Debug, Default)]
pub enum MediaStore {
    /// In the `media` table.
    #[default]
    Database,
    /// Files under this directory, one per file row (`<tenant>/<sha-256>-<owner>`).
    Directory(PathBuf),
    /// Objects in a bucket, one per file row (`<tenant>/<sha-256>-<owner>`).
    Bucket(Arc<Bucket>),
}

/// A stored file as its row names it: the bytes in the row, or a path in the media directory
/// or bucket.
#[derive(Debug, Default)]
pub struct Kept {
    /// The bytes, when kept in the database.
    pub bytes: Option<Vec<u8>>,
    /// The file's path in the directory or bucket.
    pub path: Option<String>,
}

impl MediaStore {
    /// Keeps a tenant's file outside the database and returns its path there, or `None` when
    /// the database keeps it (the caller stores the bytes in the row); in a directory or bucket
    /// it is durable when this returns. `bytes` is shared, not copied. `owner` is the row's
    /// media id: each row has a file of its own (putting it again writes the same one), so
    /// that deleting an old row's file never takes a newer row's with it.
    pub async fn put(&self, tenant: TenantId, owner: &str, bytes: &Bytes) -> std::io::Result<Option<String>> {
        let owner = hex::encode(sha2::Sha256::digest(owner.as_bytes()));
        let relative = format!("{}/{}-{}", tenant.0, hex::encode(sha2::Sha256::digest(bytes)), &owner[..OWNER_HEX]);
        let dir = match self {
            MediaStore::Database => return Ok(None),
            MediaStore::Bucket(bucket) => {
                bucket.put(&relative, bytes.clone()).await.map_err(std::io::Error::other)?;
                return Ok(Some(relative));
            }
            MediaStore::Directory(dir) => dir,
        };
        let (dir, folder, target, bytes) = (dir.clone(), dir.join(tenant.0.to_string()), dir.join(&relative), bytes.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write as _;
            if target.exists() {
                return Ok(());
            }
            if !folder.exists() {
                std::fs::create_dir_all(&folder)?;
                std::fs::File::open(&dir)?.sync_all()?;
            }
            // Written aside and renamed: a reader never sees half a file.
            let partial = folder.join(format!(".partial-{}", crate::crypto::random_token()));
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&partial, &target)?;
            std::fs::File::open(&folder)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some(relative))
    }

    /// The bytes of a kept file.
    pub async fn read(&self, kept: Kept) -> std::io::Result<Vec<u8>> {
        match (kept.bytes, kept.path, self) {
            (Some(bytes), _, _) => Ok(bytes),
            (None, Some(path), MediaStore::Directory(dir)) if is_kept_name(&path) => tokio::fs::read(dir.join(path)).await,
            (None, Some(path), MediaStore::Bucket(bucket)) if is_kept_name(&path) => bucket.get(&path).await.map_err(std::io::Error::other),
            (None, Some(_), _) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "the file is kept in a media directory or bucket that is not configured")),
            (None, None, _) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "nothing kept")),
        }
    }

    /// Deletes a kept file from the directory or bucket (one already gone is deleted).
    async fn remove(&self, path: &str) -> std::io::Result<()> {
        match self {
            MediaStore::Database => Ok(()),
            _ if !is_kept_name(path) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a name the store makes")),
            MediaStore::Directory(dir) => match tokio::fs::remove_file(dir.join(path)).await {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
            MediaStore::Bucket(bucket) => bucket.delete(path).await.map_err(std::io::Error::other),
        }
    }
}

/// Files looked at per statement when expiring.
const EXPIRE_CHUNK: i64 = 500;

/// Deletes the files kept since before `cutoff` (Unix ms) — the bytes in their rows, or their
/// files in the directory or bucket — and marks their rows `expired`: the conversation then
/// says the file was deleted after the retention period, and the media page answers 410. A
/// file the directory or bucket cannot delete now stays `stored` for the next sweep. A file
/// named before files had owners is shared by every row of the same content: it goes with
/// the last of them (no new row names such a file). Returns how many rows expired.
pub async fn expire(db: &Db, store: &MediaStore, cutoff: i64) -> Result<u64, sqlx::Error> {
    let mut after = 0;
    let mut expired = 0;
    loop {
        let rows = with_pool!(db.read(), |p| sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT id, path FROM media WHERE state = 'stored' AND created_at < $1 AND id > $2 ORDER BY id LIMIT $3"
        )
        .bind(cutoff)
        .bind(after)
        .bind(EXPIRE_CHUNK)
        .fetch_all(p)
        .await)?;
        let Some(&(last, _)) = rows.last() else { break };
        let mut doomed = Vec::with_capacity(rows.len());
        for (id, path) in &rows {
            if let Some(path) = path {
                let shared_with_younger = !owned(path)
                    && with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM media WHERE path = $1 AND state = 'stored' AND created_at >= $2")
                        .bind(path)
                        .bind(cutoff)
                        .fetch_one(p)
                        .await)?
                        > 0;
                if !shared_with_younger
                    && let Err(e) = store.remove(path).await
                {
                    tracing::warn!(media = id, error = %e, "an expired file cannot be deleted yet; the next sweep tries again");
                    continue;
                }
            }
            doomed.push(*id);
        }
        if !doomed.is_empty() {
            let sql = format!("UPDATE media SET state = 'expired', bytes = NULL WHERE state = 'stored' AND id IN ({})", param_list(db.engine(), doomed.len(), 1));
            expired += with_pool!(db.write(), |p| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).persistent(false);
                for id in &doomed {
                    q = q.bind(id);
                }
                q.execute(p).await.map(|done| done.rows_affected())
            })?;
        }
        if rows.len() < EXPIRE_CHUNK as usize {
            break;
        }
        after = last;
    }
    Ok(expired)
}

/// Expires files older than `days` a minute after start and then hourly, until shutdown.
pub async fn run_expiry(db: Db, store: MediaStore, clock: Clock, days: i64, shutdown: watch::Receiver<bool>) {
    crate::clock::periodically(Duration::from_secs(60), Duration::from_secs(3_600), shutdown, || async {
        match expire(&db, &store, clock.now_ms() - days * 86_400_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, days, "files past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "expiring files failed; the next sweep tries again"),
        }
    })
    .await;
}

/// Hex digits of the owner's hash in a file's name.
const OWNER_HEX: usize = 16;

/// Whether a stored path is one [`MediaStore::put`] makes (`<digits>/<64 hex>-<16 hex>`, or
/// `<digits>/<64 hex>` as it made before files had owners): nothing read from the database
/// names a file outside the directory or another object of the bucket.
fn is_kept_name(path: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    path.split_once('/').is_some_and(|(tenant, name)| {
        !tenant.is_empty()
            && tenant.bytes().all(|b| b.is_ascii_digit())
            && match name.split_once('-') {
                Some((digest, owner)) => hex(digest, 64) && hex(owner, OWNER_HEX),
                None => hex(name, 64),
            }
    })
}

/// Whether a path names one row's file (not one shared by every row of the same content, as
/// files were named before they had owners).
fn owned(path: &str) -> bool {
    path.contains('-')
}

/// An inbound file to fetch.
pub struct NewMedia<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The number the customer wrote to (its token fetches the file).
    pub phone_number_id: &'a str,
    /// Meta's media id.
    pub media_id: &'a str,
    /// MIME type from the webhook.
    pub mime_type: Option<&'a str>,
    /// File name from the webhook (documents).
    pub filename: Option<&'a str>,
    /// The direct download URL of newer webhooks.
    pub url: Option<&'a str>,
    /// The message that carries it.
    pub message_id: i64,
}

/// Records inbound files as `pending`, due now (a file already known is left as it is).
pub async fn record_pending(tx: &mut Tx, files: &[NewMedia<'_>], now: i64) -> Result<(), sqlx::Error> {
    for chunk in statement_chunks(tx.engine(), files) {
        let sql = format!(
            "INSERT INTO media (tenant_id, phone_number_id, meta_media_id, mime_type, filename, url, message_id, state, next_attempt_at, created_at)
             VALUES {} ON CONFLICT (tenant_id, meta_media_id) DO NOTHING",
            value_rows(tx.engine(), chunk.len(), 10, 1)
        );
        let values: Vec<Val<'_>> = chunk
            .iter()
            .flat_map(|f| -> [Val<'_>; 10] {
                [
                    f.tenant.into(),
                    f.phone_number_id.into(),
                    f.media_id.into(),
                    f.mime_type.into(),
                    f.filename.into(),
                    f.url.into(),
                    f.message_id.into(),
                    "pending".into(),
                    now.into(),
                    now.into(),
                ]
            })
            .collect();
        with_tx!(&mut *tx, |c| crate::bind_vals!(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), &values).execute(c).await.map(drop))?;
    }
    Ok(())
}

/// A file fetched from Meta, kept.
pub struct Fetched {
    /// MIME type (Meta's, else the webhook's).
    pub mime_type: Option<String>,
    /// The bytes.
    pub bytes: Bytes,
}

/// Why a file could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The number has no usable token (disconnected); it may come back.
    #[error("no token for this number")]
    NoToken,
    /// Meta's answer.
    #[error(transparent)]
    Meta(#[from] ApiError),
    /// The database, or the directory or bucket that keeps files.
    #[error("{0}")]
    Keep(String),
}

impl FetchError {
    /// Whether a later attempt may succeed.
    fn retryable(&self) -> bool {
        match self {
            FetchError::NoToken | FetchError::Keep(_) => true,
            FetchError::Meta(e) => matches!(e.class(), ErrorClass::Retry | ErrorClass::Throttled | ErrorClass::Reauthenticate),
        }
    }

    /// Whether Meta refused for good (the id does not exist, has expired): no later attempt
    /// will have it.
    pub fn gone(&self) -> bool {
        matches!(self, FetchError::Meta(_)) && !self.retryable()
    }

    /// Meta's error code, if Meta answered with one.
    fn code(&self) -> Option<i64> {
        match self {
            FetchError::Meta(ApiError::Graph(g)) => g.code,
            _ => None,
        }
    }
}

/// What fetching needs.
#[derive(Clone)]
pub struct MediaFetcher {
    /// Database.
    pub db: Db,
    /// Clock.
    pub clock: Clock,
    /// Meta.
    pub graph: GraphClient,
    /// Keys for the sealed business tokens.
    pub keyring: Keyring,
    /// Where files are kept.
    pub store: MediaStore,
    /// Counts files kept (`wabridge_media_kept_total`), failed attempts
    /// (`wabridge_media_fetch_failures_total`) and files given up (`wabridge_media_given_up_total`).
    pub metrics: Arc<Metrics>,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    tenant_id: TenantId,
    phone_number_id: String,
    meta_media_id: String,
    mime_type: Option<String>,
    url: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    created_at: i64,
}

impl MediaFetcher {
    /// Runs until shutdown: fetches due files, then looks again every second.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            loop {
                match self.step().await {
                    Ok(true) if !*shutdown.borrow() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "media fetching failed; will retry");
                        break;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(IDLE) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Fetches one due file; whether there was one.
    pub async fn step(&self) -> Result<bool, sqlx::Error> {
        let now = self.clock.now_ms();
        let due = with_pool!(self.db.read(), |p| sqlx::query_as::<_, Due>(
            "SELECT id, tenant_id, phone_number_id, meta_media_id, mime_type, url, attempts, next_attempt_at, created_at FROM media
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1"
        )
        .bind(now)
        .fetch_optional(p)
        .await)?;
        let Some(due) = due else { return Ok(false) };
        // Claimed by moving its next attempt: another fetcher that read it too loses here.
        let claimed = with_pool!(self.db.write(), |p| sqlx::query("UPDATE media SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND state = 'pending'")
            .bind(due.id)
            .bind(due.next_attempt_at)
            .bind(now + LEASE_MS)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if claimed == 0 {
            return Ok(true);
        }
        // The webhook's own URL lives minutes: worth a try on the first attempt only.
        let url = due.url.as_deref().filter(|_| due.attempts == 0);
        if let Err(e) = self.fetch(due.tenant_id, &due.phone_number_id, &due.meta_media_id, due.mime_type.as_deref(), url).await {
            let attempts = due.attempts + 1;
            // Retried with backoff while Meta may still give it; given up when it will not.
            let retry_at = (e.retryable() && now < due.created_at + MEDIA_ID_LIFETIME_MS)
                .then(|| now + FIRST_RETRY_MS.saturating_mul(1_i64 << (attempts - 1).clamp(0, 20)).min(MAX_RETRY_MS));
            tracing::info!(media = due.id, attempts, error = %e, retry = retry_at.is_some(), "media fetch failed");
            self.metrics.add("wabridge_media_fetch_failures_total", 1);
            if retry_at.is_none() {
                self.metrics.add("wabridge_media_given_up_total", 1);
            }
            with_pool!(self.db.write(), |p| sqlx::query(
                "UPDATE media SET state = $2, attempts = $3, next_attempt_at = $4, error_code = $5 WHERE id = $1 AND state = 'pending'"
            )
            .bind(due.id)
            .bind(if retry_at.is_some() { "pending" } else { "failed" })
            .bind(attempts)
            .bind(retry_at)
            .bind(e.code())
            .execute(p)
            .await
            .map(drop))?;
        }
        Ok(true)
    }

    /// Fetches a file from Meta with the number's token and keeps it (`stored`): the fetcher's
    /// way and the media page's when someone opens a file not fetched yet.
    pub async fn fetch(&self, tenant: TenantId, number: &str, media_id: &str, mime_hint: Option<&str>, url: Option<&str>) -> Result<Fetched, FetchError> {
        let token = crate::onboarding::store::number_token(&self.db, &self.keyring, tenant, number)
            .await
            .map_err(|e| FetchError::Keep(e.to_string()))?
            .ok_or(FetchError::NoToken)?;
        // A newer webhook's own URL saves the look-up; when it fails (expired, a webhook Meta
        // delivered late), the id gives a fresh one.
        let direct = match url.filter(|u| is_metas(u, &self.graph.config().base_url)) {
            Some(url) => match self.graph.download_media(&token, url).await {
                Ok(bytes) => Some((bytes, None)),
                Err(e) => {
                    tracing::debug!(error = %e, "the webhook's download URL failed; looking the id up");
                    None
                }
            },
            None => None,
        };
        let (bytes, mime) = match direct {
            Some(found) => found,
            None => download(&self.graph, &token, media_id).await?,
        };
        let mime_type = mime.or_else(|| mime_hint.map(str::to_owned));
        let path = self.store.put(tenant, media_id, &bytes).await.map_err(|e| FetchError::Keep(e.to_string()))?;
        let now = self.clock.now_ms();
        with_pool!(self.db.write(), |p| sqlx::query(
            "INSERT INTO media (tenant_id, phone_number_id, meta_media_id, mime_type, bytes, path, state, attempts, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'stored', 1, $7)
             ON CONFLICT (tenant_id, meta_media_id) DO UPDATE SET bytes = excluded.bytes, path = excluded.path, state = 'stored',
                 mime_type = COALESCE(excluded.mime_type, media.mime_type), attempts = media.attempts + 1, next_attempt_at = NULL, error_code = NULL"
        )
        .bind(tenant)
        .bind(number)
        .bind(media_id)
        .bind(&mime_type)
        .bind(path.is_none().then_some(&bytes[..]))
        .bind(&path)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
        .map_err(|e| FetchError::Keep(e.to_string()))?;
        self.metrics.add("wabridge_media_kept_total", 1);
        Ok(Fetched { mime_type, bytes })
    }

    /// Records that Meta no longer has a file that was opened before it was fetched.
    pub async fn given_up(&self, tenant: TenantId, number: &str, media_id: &str, message_id: i64, error: &FetchError) -> Result<(), sqlx::Error> {
        self.metrics.add("wabridge_media_given_up_total", 1);
        with_pool!(self.db.write(), |p| sqlx::query(
            "INSERT INTO media (tenant_id, phone_number_id, meta_media_id, message_id, state, attempts, error_code, created_at) VALUES ($1, $2, $3, $4, 'failed', 1, $5, $6)
             ON CONFLICT (tenant_id, meta_media_id) DO UPDATE SET state = 'failed', attempts = media.attempts + 1, next_attempt_at = NULL,
                 error_code = excluded.error_code, message_id = COALESCE(media.message_id, excluded.message_id)"
        )
        .bind(tenant)
        .bind(number)
        .bind(media_id)
        .bind(message_id)
        .bind(error.code())
        .bind(self.clock.now_ms())
        .execute(p)
        .await
        .map(drop))
    }
}

/// Whether a download URL from a webhook is one of Meta's (`*.fbsbx.com` over https, or the
/// configured Graph host): the number's token goes nowhere else, whatever a body says.
fn is_metas(url: &str, graph_base: &str) -> bool {
    let (Ok(url), Ok(graph)) = (url::Url::parse(url), url::Url::parse(graph_base)) else { return false };
    url.origin() == graph.origin() || (url.scheme() == "https" && url.host_str().is_some_and(|h| h == "fbsbx.com" || h.ends_with(".fbsbx.com")))
}

/// The file behind a media id: its URL from `GET /<MEDIA_ID>`, then the download (the URL
/// lives five minutes, so it is never kept).
async fn download(graph: &GraphClient, token: &SecretString, media_id: &str) -> Result<(Bytes, Option<String>), ApiError> {
    let info = graph.media_info(token, media_id).await?;
    let url = info.url.ok_or_else(|| ApiError::UnexpectedResponse { status: 200, reason: "no download URL in Meta's answer".to_owned() })?;
    let bytes = graph.download_media(token, &url).await?;
    Ok((bytes, info.mime_type))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_store_makes_are_read() {
        assert!(is_kept_name(&format!("12/{}", "a".repeat(64))));
        assert!(is_kept_name(&format!("12/{}-{}", "a".repeat(64), "0".repeat(16))));
        assert!(!is_kept_name(&format!("12/{}-{}", "a".repeat(64), "0".repeat(15))));
        assert!(!is_kept_name(&format!("12/{}-../x", "a".repeat(64))));
        assert!(!is_kept_name(&format!("../{}", "a".repeat(64))));
        assert!(!is_kept_name(&format!("12/{}/..", "a".repeat(61))));
        assert!(!is_kept_name("12/passwd"));
        assert!(!is_kept_name(&format!("/{}", "a".repeat(64))));
    }

    #[test]
    fn the_token_goes_only_to_metas_download_hosts() {
        let graph = "https://graph.facebook.com";
        assert!(is_metas("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&source=webhook&ext=2&hash=x", graph));
        assert!(is_metas("https://graph.facebook.com/v26.0/media", graph));
        assert!(is_metas("http://127.0.0.1:9/_media/1?mid=1", "http://127.0.0.1:9"), "the sandbox, as configured");
        assert!(!is_metas("http://lookaside.fbsbx.com/x", graph), "not over plain http");
        assert!(!is_metas("https://fbsbx.com.evil.test/x", graph));
        assert!(!is_metas("https://evil.test/?u=lookaside.fbsbx.com", graph));
        assert!(!is_metas("not a url", graph));
    }

    #[tokio::test]
    async fn a_directory_keeps_one_file_per_row() {
        let dir = std::env::temp_dir().join(format!("wabridge-media-test-{}", crate::crypto::random_token()));
        let store = MediaStore::Directory(dir.clone());
        let a = store.put(TenantId(3), "wamid-media-1", &Bytes::from_static(b"picture")).await.unwrap();
        let again = store.put(TenantId(3), "wamid-media-1", &Bytes::from_static(b"picture")).await.unwrap();
        assert_eq!(a, again, "the same row's file is written once");
        let other = store.put(TenantId(3), "wamid-media-2", &Bytes::from_static(b"picture")).await.unwrap();
        assert_ne!(a, other, "another row with the same content has a file of its own");
        let path = a.clone().unwrap();
        assert!(path.starts_with("3/") && is_kept_name(&path) && owned(&path), "{path}");
        assert_eq!(store.read(Kept { bytes: None, path: a }).await.unwrap(), b"picture");
        assert_eq!(std::fs::read_dir(dir.join("3")).unwrap().count(), 2, "no partial file is left");
        store.remove(&path).await.unwrap();
        store.remove(&path).await.unwrap();
        assert_eq!(std::fs::read_dir(dir.join("3")).unwrap().count(), 1, "removed, and removing again is no error");
        assert!(store.remove("../etc/passwd").await.is_err(), "only names the store makes");
        // The database keeps the bytes in the row.
        assert_eq!(MediaStore::Database.put(TenantId(3), "doc", &Bytes::from_static(b"doc")).await.unwrap(), None);
        assert_eq!(MediaStore::Database.read(Kept { bytes: Some(b"doc".to_vec()), path: None }).await.unwrap(), b"doc");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
