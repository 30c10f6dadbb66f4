//! Per-tenant API keys: `wbk_` and 64 hex digits, shown once, stored as their SHA-256.

use crate::accounts::TenantId;
use crate::crypto;
use crate::store::Db;
use crate::with_pool;

/// A key as listed (never the key itself).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyRow {
    /// Id.
    pub id: i64,
    /// What it is for.
    pub label: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Last used, Unix ms.
    pub last_used_at: Option<i64>,
    /// Revoked, Unix ms.
    pub revoked_at: Option<i64>,
}

/// Creates a key; returns it (the only time it exists in clear).
pub async fn create(db: &Db, tenant: TenantId, label: &str, now: i64) -> Result<String, sqlx::Error> {
    let key = format!("wbk_{}", crypto::random_token());
    with_pool!(db.write(), |p| sqlx::query("INSERT INTO api_keys (tenant_id, label, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(label)
        .bind(&key[..12])
        .bind(crypto::token_hash(&key))
        .bind(now)
        .execute(p)
        .await
        .map(drop))?;
    Ok(key)
}

/// The tenant's keys.
pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<KeyRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, KeyRow>(
        "SELECT id, label, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// Revokes a key of the tenant.
pub async fn revoke(db: &Db, tenant: TenantId, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = with_pool!(db.write(), |p| sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL")
        .bind(id)
        .bind(tenant)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The tenant a live key belongs to.
pub async fn authenticate(db: &Db, key: &str, now: i64) -> Result<Option<TenantId>, sqlx::Error> {
    if !key.starts_with("wbk_") || key.len() != 68 {
        return Ok(None);
    }
    let hash = crypto::token_hash(key);
    let tenant = with_pool!(db.read(), |p| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(&hash)
        .fetch_optional(p)
        .await)?;
    if tenant.is_some() {
        // At most one write per key and minute.
        with_pool!(db.write(), |p| sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(&hash)
            .bind(now)
            .bind(now - 60_000)
            .execute(p)
            .await
            .map(drop))?;
    }
    Ok(tenant)
}
