//! The support area: the only place where one user reads across tenants. Every such read is
//! recorded in `support_reads` and in the audit log.

pub mod onboarding;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use crate::accounts::{TenantId, UserId, store as accounts};
use crate::onboarding::store::NumberRow;
use crate::store::Db;
use crate::web::context::SupportStaff;
use crate::web::error::{AppError, AppResult};
use crate::web::{AppState, PageCtx, render};
use crate::with_pool;

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/support", get(get_tenants))
        .route("/support/tenants/{tenant_id}", get(get_tenant))
        .route("/support/webhooks", get(get_webhooks))
}

/// Records that a support user read `what` (of one tenant, or of all when `tenant` is `None`).
pub async fn log_read(db: &Db, user: UserId, tenant: Option<TenantId>, what: &str, now: i64) -> Result<(), sqlx::Error> {
    tracing::info!(target: "audit", support_user = user.0, tenant = tenant.map(|t| t.0), what, "support read");
    with_pool!(db.write(), |p| sqlx::query("INSERT INTO support_reads (user_id, tenant_id, what, at) VALUES ($1, $2, $3, $4)")
        .bind(user)
        .bind(tenant)
        .bind(what)
        .bind(now)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many reads support has logged (for tests and the audit view).
pub async fn count_reads(db: &Db, tenant: Option<TenantId>) -> Result<i64, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM support_reads WHERE ($1 IS NULL AND tenant_id IS NULL) OR tenant_id = $1"
    )
    .bind(tenant)
    .fetch_one(p)
    .await)
}

struct TenantLine {
    id: i64,
    name: String,
    users: Vec<String>,
    whatsapp_status: &'static str,
}

#[derive(askama::Template)]
#[template(path = "support_tenants.html")]
struct TenantsPage {
    p: PageCtx,
    tenants: Vec<TenantLine>,
}

async fn get_tenants(State(app): State<AppState>, staff: SupportStaff) -> AppResult<Response> {
    log_read(&app.db, staff.user.id, None, "tenant_list", app.clock.now_ms()).await?;
    let mut tenants = Vec::new();
    for t in accounts::all_tenants(&app.db).await? {
        let users = accounts::tenant_users(&app.db, t.id).await?;
        // The same status the tenant sees on its API settings page, broken connections included.
        let (status, _) = crate::onboarding::row_status(&app.db, t.id).await?;
        tenants.push(TenantLine {
            id: t.id.0,
            name: t.name,
            users: users.into_iter().map(|u| format!("{} <{}>", u.display_name, u.email)).collect(),
            whatsapp_status: status,
        });
    }
    render(&TenantsPage { tenants, p: staff.ctx.into() })
}

#[derive(askama::Template)]
#[template(path = "support_tenant.html")]
struct TenantPage {
    p: PageCtx,
    tenant: accounts::Tenant,
    users: Vec<accounts::UserRow>,
    numbers: Vec<NumberRow>,
}

async fn get_tenant(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>) -> AppResult<Response> {
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    log_read(&app.db, staff.user.id, Some(tenant.id), "tenant_detail", app.clock.now_ms()).await?;
    let users = accounts::tenant_users(&app.db, tenant.id).await?;
    let numbers = crate::onboarding::store::numbers(&app.db, tenant.id).await?;
    render(&TenantPage { tenant, users, numbers, p: staff.ctx.into() })
}

/// A change nobody could apply, as support sees it.
#[derive(sqlx::FromRow)]
struct UnhandledRow {
    journal_id: i64,
    change_index: i64,
    field: Option<String>,
    reason: String,
    tenant_id: Option<i64>,
    raw: String,
    at: i64,
}

/// A handler waiting to be retried.
#[derive(sqlx::FromRow)]
struct RetryRow {
    journal_id: i64,
    change_index: i64,
    handler: String,
    tenant_id: Option<i64>,
    attempts: i64,
    next_attempt_at: i64,
    last_error: String,
}

#[derive(askama::Template)]
#[template(path = "support_webhooks.html")]
struct WebhooksPage {
    p: PageCtx,
    unhandled: Vec<(UnhandledRow, crate::web::when::When)>,
    retries: Vec<(RetryRow, crate::web::when::When)>,
    pending: i64,
}

fn pretty(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
}

async fn get_webhooks(State(app): State<AppState>, staff: SupportStaff) -> AppResult<Response> {
    log_read(&app.db, staff.user.id, None, "webhooks", app.clock.now_ms()).await?;
    let unhandled = with_pool!(app.db.read(), |p| sqlx::query_as::<_, UnhandledRow>(
        "SELECT journal_id, change_index, field, reason, tenant_id, raw, at FROM webhook_unhandled ORDER BY id DESC LIMIT 200"
    )
    .fetch_all(p)
    .await)?;
    let retries = with_pool!(app.db.read(), |p| sqlx::query_as::<_, RetryRow>(
        "SELECT journal_id, change_index, handler, tenant_id, attempts, next_attempt_at, last_error FROM handler_retries ORDER BY next_attempt_at LIMIT 200"
    )
    .fetch_all(p)
    .await)?;
    let pending = crate::ingest::journal::pending_count(&app.db).await?;
    let unhandled = unhandled.into_iter().map(|u| { let when = crate::web::when::When(u.at); (UnhandledRow { raw: pretty(&u.raw), ..u }, when) }).collect();
    let retries = retries.into_iter().map(|r| { let when = crate::web::when::When(r.next_attempt_at); (r, when) }).collect();
    render(&WebhooksPage { unhandled, retries, pending, p: staff.ctx.into() })
}
