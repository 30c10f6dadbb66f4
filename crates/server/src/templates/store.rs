//! Queries for templates and template requests. Onboarding (the default template at signup)
//! and the periodic sync store what Meta says through [`upsert_from_meta`].

use serde::Serialize;
use wabridge_cloud_api::client::Template;

use crate::accounts::{TenantId, UserId};
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// A stored template.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct TemplateRow {
    /// Our id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The WABA it belongs to.
    pub waba_id: String,
    /// Meta's id.
    pub meta_template_id: Option<String>,
    /// Name.
    pub name: String,
    /// Language.
    pub language: String,
    /// `UTILITY`, `MARKETING`, `AUTHENTICATION`.
    pub category: String,
    /// The category before Meta changed it.
    pub previous_category: Option<String>,
    /// `NAMED` or `POSITIONAL`.
    pub parameter_format: String,
    /// Meta's components JSON.
    pub components: String,
    /// approved, pending, rejected, paused, disabled, flagged, …
    pub status: String,
    /// Meta's reason (rejection, pause).
    pub reason: Option<String>,
    /// GREEN, YELLOW, RED, UNKNOWN.
    pub quality: Option<String>,
    /// When Meta changed the category.
    pub category_changed_at: Option<i64>,
    /// Updated, Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, waba_id, meta_template_id, name, language, category, previous_category, parameter_format, components, status, reason, quality, category_changed_at, updated_at";

impl TemplateRow {
    /// Whether a template in this state can be sent.
    pub fn sendable(&self) -> bool {
        is_sendable(&self.status)
    }
}

/// Whether a status allows sending (flagged templates still send until Meta pauses them).
pub fn is_sendable(status: &str) -> bool {
    matches!(status, "approved" | "flagged")
}

/// Our status from Meta's (event or status field).
pub fn status_from_meta(s: &str) -> String {
    match s.to_ascii_uppercase().as_str() {
        "REINSTATED" | "UNARCHIVED" | "APPROVED" => "approved".to_owned(),
        "PENDING_DELETION" | "DELETED" => "deleted".to_owned(),
        "IN_APPEAL" => "in_appeal".to_owned(),
        "LIMIT_EXCEEDED" => "limit_exceeded".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// Every status with its own label.
pub const STATUSES: &[&str] = &["approved", "pending", "rejected", "paused", "disabled", "flagged", "deleted", "archived", "in_appeal", "limit_exceeded", "locked"];

/// A tenant's templates.
pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<TemplateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1 ORDER BY name, language");
    with_pool!(db.read(), |p| sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).fetch_all(p).await)
}

/// One template of a tenant.
pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Option<TemplateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1 AND id = $2");
    with_pool!(db.read(), |p| sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(id).fetch_optional(p).await)
}

/// A tenant's template by name and language (several WABAs: the newest).
pub async fn by_name(db: &Db, tenant: TenantId, name: &str, language: &str) -> Result<Option<TemplateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE tenant_id = $1 AND name = $2 AND language = $3 ORDER BY updated_at DESC LIMIT 1");
    with_pool!(db.read(), |p| sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(name).bind(language).fetch_optional(p).await)
}

/// Templates whose category Meta moved from utility to marketing (support's warnings).
pub async fn recategorized(db: &Db) -> Result<Vec<TemplateRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE previous_category = 'UTILITY' AND category = 'MARKETING' ORDER BY category_changed_at DESC");
    with_pool!(db.read(), |p| sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(sql.clone())).fetch_all(p).await)
}

/// What is known of a template, from Meta or from our own submission.
pub struct TemplateFacts<'a> {
    /// Meta's id.
    pub meta_template_id: Option<&'a str>,
    /// Name.
    pub name: &'a str,
    /// Language.
    pub language: &'a str,
    /// Category (uppercase).
    pub category: Option<&'a str>,
    /// `NAMED` / `POSITIONAL`.
    pub parameter_format: Option<&'a str>,
    /// Components JSON, when known.
    pub components: Option<&'a serde_json::Value>,
    /// Our status.
    pub status: Option<&'a str>,
    /// Meta's reason.
    pub reason: Option<&'a str>,
}

/// Inserts or updates a template by (WABA, name, language); returns its id and the category
/// it had before (to warn when Meta moved it). A submit and Meta's webhook for the same
/// template may insert at once: the conflict keeps the texts of one and the newer status.
pub async fn upsert(tx: &mut Tx, tenant: TenantId, waba_id: &str, f: &TemplateFacts<'_>, now: i64) -> Result<(i64, Option<String>), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Before {
        id: i64,
        category: String,
    }
    let before = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Before>(
        "SELECT id, category FROM templates WHERE waba_id = $1 AND ((name = $2 AND language = $3) OR ($4 IS NOT NULL AND meta_template_id = $4)) ORDER BY id LIMIT 1"
    )
    .bind(waba_id)
    .bind(f.name)
    .bind(f.language)
    .bind(f.meta_template_id)
    .fetch_optional(c)
    .await)?;
    let components = f.components.filter(|c| c.as_array().is_some_and(|a| !a.is_empty())).map(ToString::to_string);
    let id = match &before {
        Some(b) => {
            with_tx!(&mut *tx, |c| sqlx::query(
                "UPDATE templates SET meta_template_id = COALESCE($2, meta_template_id), category = COALESCE($3, category),
                     previous_category = CASE WHEN $3 IS NOT NULL AND $3 <> category THEN category ELSE previous_category END,
                     category_changed_at = CASE WHEN $3 IS NOT NULL AND $3 <> category THEN $8 ELSE category_changed_at END,
                     parameter_format = COALESCE($4, parameter_format), components = COALESCE($5, components),
                     status = COALESCE($6, status), reason = CASE WHEN $6 IS NOT NULL THEN $7 ELSE reason END, updated_at = $8
                 WHERE id = $1"
            )
            .bind(b.id)
            .bind(f.meta_template_id)
            .bind(f.category)
            .bind(f.parameter_format)
            .bind(&components)
            .bind(f.status)
            .bind(f.reason)
            .bind(now)
            .execute(c)
            .await
            .map(drop))?;
            b.id
        }
        None => with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
            "INSERT INTO templates (tenant_id, waba_id, meta_template_id, name, language, category, parameter_format, components, status, reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (waba_id, name, language) DO UPDATE SET
                 meta_template_id = COALESCE(excluded.meta_template_id, templates.meta_template_id),
                 components = CASE WHEN excluded.components <> '[]' THEN excluded.components ELSE templates.components END,
                 parameter_format = CASE WHEN excluded.components <> '[]' THEN excluded.parameter_format ELSE templates.parameter_format END,
                 status = CASE WHEN templates.status = 'pending' THEN excluded.status ELSE templates.status END,
                 updated_at = excluded.updated_at
             RETURNING id"
        )
        .bind(tenant)
        .bind(waba_id)
        .bind(f.meta_template_id)
        .bind(f.name)
        .bind(f.language)
        .bind(f.category.unwrap_or("UTILITY"))
        .bind(f.parameter_format.unwrap_or("POSITIONAL"))
        .bind(components.unwrap_or_else(|| "[]".to_owned()))
        .bind(f.status.unwrap_or("pending"))
        .bind(f.reason)
        .bind(now)
        .fetch_one(c)
        .await)?,
    };
    Ok((id, before.map(|b| b.category)))
}

/// Stores a template as Meta lists it (`GET …/message_templates`), for onboarding's default
/// template and the periodic sync.
pub async fn upsert_from_meta(db: &Db, tenant: TenantId, waba_id: &str, t: &Template, now: i64) -> Result<Option<i64>, sqlx::Error> {
    let (Some(name), Some(language)) = (t.name.as_deref(), t.language.as_deref()) else { return Ok(None) };
    let status = t.status.as_deref().map(status_from_meta);
    let category = t.category.as_deref().map(str::to_ascii_uppercase);
    let mut tx = db.begin().await?;
    let (id, before) = upsert(
        &mut tx,
        tenant,
        waba_id,
        &TemplateFacts {
            meta_template_id: t.id.as_deref(),
            name,
            language,
            category: category.as_deref(),
            parameter_format: t.parameter_format.as_deref(),
            components: Some(&t.components),
            status: status.as_deref(),
            reason: t.rejected_reason.as_deref().filter(|r| *r != "NONE"),
        },
        now,
    )
    .await?;
    if before.as_deref() == Some("UTILITY") && category.as_deref() == Some("MARKETING") {
        super::handler::warn_recategorized(&mut tx, tenant, waba_id, name, language, now).await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// A tenant's wish for a template.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RequestRow {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The wanted text.
    pub text: String,
    /// What it is for.
    pub purpose: String,
    /// Done, Unix ms.
    pub done_at: Option<i64>,
    /// Asked, Unix ms.
    pub created_at: i64,
}

/// Records a tenant's request.
pub async fn add_request(db: &Db, tenant: TenantId, user: UserId, text: &str, purpose: &str, now: i64) -> Result<i64, sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query_scalar::<_, i64>(
        "INSERT INTO template_requests (tenant_id, user_id, text, purpose, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id"
    )
    .bind(tenant)
    .bind(user)
    .bind(text)
    .bind(purpose)
    .bind(now)
    .fetch_one(p)
    .await)
}

/// Requests of one tenant, or of all (support) when `tenant` is `None`.
pub async fn requests(db: &Db, tenant: Option<TenantId>) -> Result<Vec<RequestRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, RequestRow>(
        "SELECT id, tenant_id, text, purpose, done_at, created_at FROM template_requests WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY id DESC LIMIT 200"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// Marks a request done.
pub async fn finish_request(db: &Db, tenant: TenantId, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = with_pool!(db.write(), |p| sqlx::query("UPDATE template_requests SET done_at = $3 WHERE id = $1 AND tenant_id = $2 AND done_at IS NULL")
        .bind(id)
        .bind(tenant)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The tenant's WABAs (id) that have a sealed token.
pub async fn wabas(db: &Db, tenant: Option<TenantId>) -> Result<Vec<(TenantId, String, Vec<u8>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: TenantId,
        waba_id: String,
        token_ciphertext: Vec<u8>,
    }
    let rows = with_pool!(db.read(), |p| sqlx::query_as::<_, Row>(
        "SELECT tenant_id, waba_id, token_ciphertext FROM whatsapp_accounts WHERE token_ciphertext IS NOT NULL AND ($1 IS NULL OR tenant_id = $1) ORDER BY id"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.waba_id, r.token_ciphertext)).collect())
}
