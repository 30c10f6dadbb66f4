//! Onboarding in the support area: every tenant's attempts with Meta's diagnostics (code,
//! message, `fbtrace_id`), alerts that are ours to fix (a rejected default template), and the
//! unlock of a tenant after two failed attempts. Every read is logged ([`super::log_read`]).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use axum::http::StatusCode;
use secrecy::SecretString;

use crate::accounts::{TenantId, store as accounts};
use crate::onboarding::{self, AttemptView, ItemView, store};
use crate::web::when::When;
use crate::web::context::SupportStaff;
use crate::web::error::{AppError, AppResult};
use crate::web::{AppState, PageCtx, render};

/// Routes of the support pages for onboarding.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/support/onboarding", get(get_all))
        .route("/support/onboarding/{tenant_id}", get(get_tenant))
        .route("/support/onboarding/{tenant_id}/unlock", post(post_unlock))
        .route("/support/onboarding/{tenant_id}/connect", post(post_connect))
}

/// An alert as support sees it.
pub struct AlertView {
    tenant_id: i64,
    /// Its name, on the page of every tenant's alerts (empty otherwise).
    tenant_name: String,
    kind: String,
    detail: String,
    when: When,
}

fn alert_views(rows: Vec<store::AlertRow>) -> Vec<AlertView> {
    rows.into_iter().map(|a| AlertView { tenant_id: a.tenant_id.0, tenant_name: String::new(), kind: a.kind, detail: a.detail, when: When(a.created_at) }).collect()
}

#[derive(askama::Template)]
#[template(path = "support_onboarding.html")]
struct AllPage {
    p: PageCtx,
    attempts: Vec<AttemptView>,
    locked: Vec<(i64, String)>,
    alerts: Vec<AlertView>,
}

async fn get_all(State(app): State<AppState>, staff: SupportStaff) -> AppResult<Response> {
    super::log_read(&app.db, staff.user.id, None, "onboarding_attempts", app.clock.now_ms()).await?;
    let lang = staff.ctx.lang;
    let tenants = accounts::all_tenants(&app.db).await?;
    let name = |id: i64| tenants.iter().find(|t| t.id.0 == id).map(|t| t.name.clone()).unwrap_or_default();
    let attempts = store::all_attempts(&app.db, 200)
        .await?
        .iter()
        .map(|a| AttemptView { tenant_name: name(a.tenant_id.0), ..onboarding::attempt_view(a, lang) })
        .collect();
    let mut alerts = alert_views(store::alerts(&app.db, None).await?);
    for a in &mut alerts {
        a.tenant_name = name(a.tenant_id);
    }
    let mut locked = Vec::new();
    for t in &tenants {
        if store::state(&app.db, t.id).await?.locked_at.is_some() {
            locked.push((t.id.0, t.name.clone()));
        }
    }
    render(&AllPage { attempts, locked, alerts, p: staff.ctx.into() })
}

#[derive(askama::Template)]
#[template(path = "support_onboarding_tenant.html")]
struct TenantPage {
    p: PageCtx,
    tenant_id: i64,
    name: String,
    failed_attempts: i64,
    locked: bool,
    attempts: Vec<AttemptView>,
    checklist: Vec<ItemView>,
    alerts: Vec<AlertView>,
    emails: Vec<store::EmailRow>,
    numbers: Vec<store::NumberRow>,
    connect: ConnectView,
}

/// The by-hand connection form's state.
#[derive(Default)]
struct ConnectView {
    error: String,
    done: bool,
    waba_id: String,
    phone_number_id: String,
}

async fn get_tenant(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>) -> AppResult<Response> {
    tenant_page(&app, staff, tenant_id, ConnectView::default()).await
}

async fn tenant_page(app: &AppState, staff: SupportStaff, tenant_id: i64, connect: ConnectView) -> AppResult<Response> {
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    super::log_read(&app.db, staff.user.id, Some(tenant.id), "onboarding_detail", app.clock.now_ms()).await?;
    let lang = staff.ctx.lang;
    let state = store::state(&app.db, tenant.id).await?;
    render(&TenantPage {
        numbers: store::numbers(&app.db, tenant.id).await?,
        connect,
        tenant_id: tenant.id.0,
        name: tenant.name,
        failed_attempts: state.failed_attempts,
        locked: state.locked_at.is_some(),
        attempts: store::attempts(&app.db, tenant.id).await?.iter().map(|a| onboarding::attempt_view(a, lang)).collect(),
        checklist: onboarding::checklist_view(&app.db, tenant.id).await?,
        alerts: alert_views(store::alerts(&app.db, Some(tenant.id)).await?),
        emails: store::emails(&app.db, tenant.id).await?,
        p: staff.ctx.into(),
    })
}

async fn post_unlock(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>) -> AppResult<Response> {
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    tracing::info!(target: "audit", support_user = staff.user.id.0, tenant = tenant.id.0, "onboarding unlocked");
    store::unlock(&app.db, tenant.id, app.clock.now_ms()).await?;
    Ok(Redirect::to(&format!("/support/onboarding/{}", tenant.id.0)).into_response())
}

#[derive(serde::Deserialize)]
struct ConnectForm {
    #[serde(default)]
    waba_id: String,
    #[serde(default)]
    phone_number_id: String,
    #[serde(default)]
    token: String,
}

/// Support connects a number by hand (WABA, number, token), checked against the Graph API
/// first. The token is never shown again or logged; the act is logged and audited.
async fn post_connect(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>, Form(form): Form<ConnectForm>) -> AppResult<Response> {
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    super::log_read(&app.db, staff.user.id, Some(tenant.id), "manual_connect", app.clock.now_ms()).await?;
    let waba_id = form.waba_id.trim().to_owned();
    let phone_number_id = form.phone_number_id.trim().to_owned();
    let token = SecretString::from(form.token.trim().to_owned());
    let outcome = onboarding::flow::connect_by_hand(&app, tenant.id, &waba_id, &phone_number_id, token).await?;
    let lang = staff.ctx.lang;
    let (connect, status) = match outcome {
        Ok(number_status) => {
            tracing::info!(target: "audit", support_user = staff.user.id.0, tenant = tenant.id.0, waba_id, phone_number_id, number_status, "number connected by hand");
            (ConnectView { done: true, ..ConnectView::default() }, StatusCode::OK)
        }
        Err(refusal) => {
            tracing::info!(target: "audit", support_user = staff.user.id.0, tenant = tenant.id.0, waba_id, phone_number_id, refusal = refusal.key(), "connection by hand refused");
            let mut error = lang.t(&format!("support_onboarding.connect.error.{}", refusal.key())).to_owned();
            if let onboarding::flow::HandRefusal::Meta(e) = &refusal {
                let said = e.graph().and_then(|g| g.code).map(|c| onboarding::explain(c, lang)).unwrap_or_else(|| e.to_string());
                error = format!("{error} {said}");
            }
            (ConnectView { error, done: false, waba_id, phone_number_id }, StatusCode::UNPROCESSABLE_ENTITY)
        }
    };
    let mut r = tenant_page(&app, staff, tenant_id, connect).await?;
    *r.status_mut() = status;
    Ok(r)
}
