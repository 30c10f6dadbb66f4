//! Queries for tenants, users, sessions and sign-in failures. Every tenant-owned read takes
//! the tenant id as a parameter: isolation is in the SQL, not in the caller's good manners.

use crate::store::{Db, is_unique_violation};
use crate::{with_pool, with_tx};

use super::{Role, SessionUser, TenantId, UserId};

/// A tenant row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Business name.
    pub name: String,
    /// Created, Unix ms.
    pub created_at: i64,
}

/// A user row as listed to owners and support.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: UserId,
    /// Tenant, `None` for support staff.
    pub tenant_id: Option<TenantId>,
    /// E-mail address.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Stored role name.
    pub role: String,
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: UserId,
    password_hash: String,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: UserId,
    tenant_id: Option<TenantId>,
    email: String,
    display_name: String,
    role: String,
    locale: Option<String>,
    csrf_token: String,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The e-mail address is taken.
    #[error("a user with this e-mail address exists")]
    Duplicate,
    /// The tenant does not exist, or a support user was given one (or a tenant user none).
    #[error("owners and agents need an existing tenant; support staff none")]
    BadTenant,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates a tenant.
pub async fn create_tenant(db: &Db, name: &str, now: i64) -> Result<TenantId, sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query_scalar::<_, TenantId>(
        "INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id"
    )
    .bind(name)
    .bind(now)
    .fetch_one(p)
    .await)
}

/// Finds a tenant by its exact name (the demo seeds by name).
pub async fn tenant_by_name(db: &Db, name: &str) -> Result<Option<Tenant>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, Tenant>(
        "SELECT id, name, created_at FROM tenants WHERE name = $1 ORDER BY id LIMIT 1"
    )
    .bind(name)
    .fetch_optional(p)
    .await)
}

/// One tenant.
pub async fn tenant(db: &Db, id: TenantId) -> Result<Option<Tenant>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, Tenant>("SELECT id, name, created_at FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// Every tenant, by name (support only).
pub async fn all_tenants(db: &Db) -> Result<Vec<Tenant>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, Tenant>("SELECT id, name, created_at FROM tenants ORDER BY name, id")
        .fetch_all(p)
        .await)
}

/// Creates a user with an already hashed password.
pub async fn create_user(
    db: &Db,
    tenant: Option<TenantId>,
    email: &str,
    display_name: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<UserId, CreateUserError> {
    if (role == Role::Support) != tenant.is_none() {
        return Err(CreateUserError::BadTenant);
    }
    if let Some(t) = tenant
        && self::tenant(db, t).await?.is_none() {
            return Err(CreateUserError::BadTenant);
        }
    let inserted = with_pool!(db.write(), |p| sqlx::query_scalar::<_, UserId>(
        "INSERT INTO users (tenant_id, email, display_name, password_hash, role, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
    )
    .bind(tenant)
    .bind(email)
    .bind(display_name)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(p)
    .await);
    inserted.map_err(|e| if is_unique_violation(&e) { CreateUserError::Duplicate } else { CreateUserError::Db(e) })
}

/// The user with this (normalised) e-mail address and their password hash.
pub async fn credentials(db: &Db, email: &str) -> Result<Option<(UserId, String)>, sqlx::Error> {
    let row = with_pool!(db.read(), |p| sqlx::query_as::<_, Credentials>(
        "SELECT id, password_hash FROM users WHERE email = $1"
    )
    .bind(email)
    .fetch_optional(p)
    .await)?;
    Ok(row.map(|c| (c.id, c.password_hash)))
}

/// The users of one tenant.
pub async fn tenant_users(db: &Db, tenant: TenantId) -> Result<Vec<UserRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, UserRow>(
        "SELECT id, tenant_id, email, display_name, role FROM users WHERE tenant_id = $1 ORDER BY email"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// Stores a new session (by the token's hash) and returns nothing secret.
pub async fn create_session(db: &Db, token_hash: &str, user: UserId, csrf: &str, now: i64, expires_at: i64) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(token_hash)
    .bind(user)
    .bind(csrf)
    .bind(now)
    .bind(expires_at)
    .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The user of a live session.
pub async fn session_user(db: &Db, token_hash: &str, now: i64) -> Result<Option<SessionUser>, sqlx::Error> {
    let row = with_pool!(db.read(), |p| sqlx::query_as::<_, SessionRow>(
        "SELECT u.id, u.tenant_id, u.email, u.display_name, u.role, u.locale, s.csrf_token
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2"
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(p)
    .await)?;
    Ok(row.and_then(|r| {
        Some(SessionUser {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role)?,
            locale: r.locale,
            csrf_token: r.csrf_token,
        })
    }))
}

/// Ends a session; also sweeps expired ones.
pub async fn delete_session(db: &Db, token_hash: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, |c| sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(c).await.map(|r| r.rows_affected()))?;
    with_tx!(&mut tx, |c| sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Sets a user's UI language.
pub async fn set_locale(db: &Db, user: UserId, locale: &str) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("UPDATE users SET locale = $1 WHERE id = $2").bind(locale).bind(user).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records a failed sign-in.
pub async fn record_failure(db: &Db, email: &str, ip: &str, now: i64) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("INSERT INTO sign_in_failures (email, client_ip, at) VALUES ($1, $2, $3)")
        .bind(email)
        .bind(ip)
        .bind(now)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Failed sign-ins for this address, and from this client, since `since`.
pub async fn recent_failures(db: &Db, email: &str, ip: &str, since: i64) -> Result<(i64, i64), sqlx::Error> {
    let by_email = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sign_in_failures WHERE email = $1 AND at > $2"
    )
    .bind(email)
    .bind(since)
    .fetch_one(p)
    .await)?;
    let by_ip = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sign_in_failures WHERE client_ip = $1 AND at > $2"
    )
    .bind(ip)
    .bind(since)
    .fetch_one(p)
    .await)?;
    Ok((by_email, by_ip))
}

/// Forgets failures for an address after a successful sign-in, and old failures overall.
pub async fn clear_failures(db: &Db, email: &str, older_than: i64) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("DELETE FROM sign_in_failures WHERE email = $1 OR at < $2")
        .bind(email)
        .bind(older_than)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}
