//! Onboarding a tenant's WhatsApp number (issue 6), as the product documentation describes it:
//! prerequisites, the 6-digit PIN, "MIT FACEBOOK EINLOGGEN" (Embedded Signup through the
//! Facebook JS SDK), the server-side signup ([`flow`]), the checklist of rule 5
//! ([`checklist`], driven by [`webhooks`] and the [`poller`]) and two attempts (rule 6).

pub mod checklist;
pub mod flow;
pub mod health;
pub mod poller;
pub mod store;
pub mod template;
pub mod webhooks;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use wabridge_cloud_api::Pin;
use wabridge_cloud_api::client::CodeMethod;

use crate::accounts::{Role, TenantId};
use crate::store::Db;
use crate::web::context::TenantMember;
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::Lang;
use crate::web::when::When;
use crate::web::{AppState, PageCtx, render};

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api-settings/whatsapp", get(get_onboarding))
        .route("/api-settings/whatsapp/checklist", get(get_checklist))
        .route("/api-settings/whatsapp/pin", post(post_pin))
        .route("/api-settings/whatsapp/signup", post(post_start))
        .route("/api-settings/whatsapp/signup/{nonce}", post(post_complete))
        .route("/api-settings/whatsapp/request-code", post(post_request_code))
        .route("/api-settings/whatsapp/verify-code", post(post_verify_code))
        .route("/api-settings/whatsapp/register", post(post_register))
        .route("/api-settings/whatsapp/abandon", post(post_abandon))
        .route("/api-settings/whatsapp/disconnect", post(post_disconnect))
        .route("/static/onboarding.js", get(onboarding_js))
}

/// A tenant's WhatsApp connection as the API settings page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// No number attached.
    NotConnected,
    /// A number is attached but not yet connected for messaging.
    Pending,
    /// At least one number can send and receive.
    Connected,
}

impl ConnectionStatus {
    /// Stable key (CSS class and translation key suffix).
    pub fn key(self) -> &'static str {
        match self {
            ConnectionStatus::NotConnected => "not_connected",
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Connected => "connected",
        }
    }
}

/// The tenant's connection status, from its numbers.
pub async fn connection_status(db: &Db, tenant: TenantId) -> Result<ConnectionStatus, sqlx::Error> {
    let numbers = store::numbers(db, tenant).await?;
    Ok(if numbers.iter().any(|n| n.status == store::NUMBER_CONNECTED) {
        ConnectionStatus::Connected
    } else if numbers.is_empty() {
        ConnectionStatus::NotConnected
    } else {
        ConnectionStatus::Pending
    })
}

/// The WhatsApp row of `/api-settings`: `connected` only when the number is connected and
/// every checklist item is done; `failed` while self-service is locked. With the number and
/// its display name.
pub async fn row_status(db: &Db, tenant: TenantId) -> Result<(&'static str, Option<store::NumberRow>), sqlx::Error> {
    let numbers = store::numbers(db, tenant).await?;
    let connected = numbers.iter().find(|n| n.status == store::NUMBER_CONNECTED).cloned();
    let items = store::checklist(db, tenant).await?;
    let state = store::state(db, tenant).await?;
    let all_done = items.iter().all(|i| i.state == "done");
    let open = store::open_attempt(db, tenant).await?.is_some();
    // A connection that stopped working (disconnected, removed, revoked, banned) says so.
    let troubled = numbers.iter().find_map(|n| health::STATES.iter().find(|s| **s == n.status).map(|s| (*s, n.clone())));
    Ok(match connected {
        Some(n) if all_done => ("connected", Some(n)),
        Some(n) => ("pending", Some(n)),
        None if state.locked_at.is_some() => ("failed", None),
        None if open => ("pending", numbers.into_iter().next()),
        None => match troubled {
            Some((status, n)) => (status, Some(n)),
            None if !numbers.is_empty() => ("pending", numbers.into_iter().next()),
            None => ("not_connected", None),
        },
    })
}

const ONBOARDING_JS: &str = include_str!("../../static/onboarding.js");

async fn onboarding_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], ONBOARDING_JS)
}

/// Meta error codes with an onboarding-specific explanation (`onboarding.meta.<code>`).
const EXPLAINED: &[i64] = &[100, 190, 131042, 131045, 133004, 133005, 133006, 133008, 133009, 133010, 133015, 133016, 136025];

/// Meta's error in plain words with what to do.
pub fn explain(code: i64, lang: Lang) -> String {
    if EXPLAINED.contains(&code) {
        lang.t(&format!("onboarding.meta.{code}")).to_owned()
    } else {
        let l = if lang == Lang::En { wabridge_cloud_api::Lang::En } else { wabridge_cloud_api::Lang::De };
        wabridge_cloud_api::explain(code, l).to_owned()
    }
}

/// An attempt as pages show it.
pub struct AttemptView {
    /// Status key.
    pub status: String,
    /// Status in words.
    pub status_text: String,
    /// Step in words.
    pub step_text: String,
    /// The popup's step when cancelled.
    pub current_step: String,
    /// Explanation of Meta's error, if any.
    pub explanation: String,
    /// Meta's code (and subcode).
    pub code: String,
    /// Meta's message.
    pub meta_message: String,
    /// Trace id.
    pub fbtrace_id: String,
    /// When it started.
    pub started: When,
    /// Whether it counted as a failure.
    pub counted: bool,
    /// Tenant.
    pub tenant_id: i64,
    /// Its name, where a page lists several tenants' attempts (empty otherwise).
    pub tenant_name: String,
    /// WABA and number.
    pub assets: String,
}

/// Builds the view of an attempt in `lang`.
pub fn attempt_view(a: &store::AttemptRow, lang: Lang) -> AttemptView {
    let code = match (a.error_code, a.error_subcode) {
        (Some(c), Some(s)) => format!("{c} / {s}"),
        (Some(c), None) => c.to_string(),
        _ => String::new(),
    };
    let explanation = match (a.status.as_str(), a.error_code) {
        ("failed" | "needs_pin" | "needs_verification" | "needs_register", Some(c)) if a.step.as_deref() != Some("popup") => explain(c, lang),
        _ => String::new(),
    };
    AttemptView {
        status: a.status.clone(),
        status_text: lang.t(&format!("onboarding.attempt.{}", a.status)).to_owned(),
        step_text: a.step.as_deref().map(|s| lang.t(&format!("onboarding.step.{s}")).to_owned()).unwrap_or_default(),
        current_step: a.current_step.clone().unwrap_or_default(),
        explanation,
        code,
        meta_message: a.error_message.clone().unwrap_or_default(),
        fbtrace_id: a.fbtrace_id.clone().unwrap_or_default(),
        started: When(a.started_at),
        counted: a.counted,
        tenant_id: a.tenant_id.0,
        tenant_name: String::new(),
        assets: [a.waba_id.as_deref(), a.phone_number_id.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" / "),
    }
}

/// A checklist item as pages show it.
pub struct ItemView {
    /// Item key.
    pub item: &'static str,
    /// State key.
    pub state: String,
    /// When it last changed.
    pub when: Option<When>,
    /// Meta's words.
    pub detail: String,
}

impl ItemView {
    /// Meta's words of the item in the reader's (see [`checklist::detail_words`]).
    pub fn detail_words(&self, lang: Lang) -> String {
        checklist::detail_words(&self.detail, lang)
    }
}

/// The checklist in page order.
pub async fn checklist_view(db: &Db, tenant: TenantId) -> Result<Vec<ItemView>, sqlx::Error> {
    let rows = store::checklist(db, tenant).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    Ok(checklist::ITEMS
        .iter()
        .map(|item| match rows.iter().find(|r| r.item == *item) {
            Some(r) => ItemView { item, state: r.state.clone(), when: Some(When(r.changed_at)), detail: r.detail.clone().unwrap_or_default() },
            None => ItemView { item, state: "pending".into(), when: None, detail: String::new() },
        })
        .collect())
}

#[derive(askama::Template)]
#[template(path = "onboarding.html")]
struct OnboardingPage {
    p: PageCtx,
    guide_url: String,
    sdk_url: String,
    app_id: String,
    config_id: String,
    graph_version: String,
    origins: String,
    support_contact: String,
    pin_set: bool,
    payment_confirmed: bool,
    locked: bool,
    attempts_left: i64,
    open: Option<AttemptView>,
    show_start: bool,
    last: Option<AttemptView>,
    connected: bool,
    number: String,
    display_name: String,
    checklist: Vec<ItemView>,
    prerequisites: Vec<(&'static str, &'static str)>,
    attempts: Vec<AttemptView>,
    error: String,
    notice: String,
    health: String,
    health_when: Option<When>,
    token_expires: String,
    can_disconnect: bool,
}

fn owner(member: &TenantMember) -> AppResult<()> {
    if member.user.role == Role::Owner { Ok(()) } else { Err(AppError::Forbidden) }
}

/// The SDK's address in the reader's language: Facebook serves the SDK per locale
/// (`connect.facebook.net/de_DE/sdk.js`), and its dialogs — Embedded Signup's window — speak
/// the SDK's. An address without a locale before `sdk.js` is used as configured.
fn sdk_url_in(url: &str, lang: Lang) -> String {
    let locale = match lang {
        Lang::De => "de_DE",
        Lang::En => "en_US",
    };
    let Some((dir, rest)) = url.rsplit_once("/sdk.js") else { return url.to_owned() };
    let Some((base, segment)) = dir.rsplit_once('/') else { return url.to_owned() };
    let b = segment.as_bytes();
    let is_locale = b.len() == 5 && b[..2].iter().all(u8::is_ascii_lowercase) && b[2] == b'_' && b[3..].iter().all(u8::is_ascii_uppercase);
    if is_locale { format!("{base}/{locale}/sdk.js{rest}") } else { url.to_owned() }
}

async fn page(app: &AppState, member: TenantMember, error: String) -> AppResult<Response> {
    page_with(app, member, error, String::new()).await
}

async fn page_with(app: &AppState, member: TenantMember, error: String, notice: String) -> AppResult<Response> {
    let tenant = member.tenant;
    let lang = member.ctx.lang;
    let state = store::state(&app.db, tenant).await?;
    let attempts = store::attempts(&app.db, tenant).await?;
    let open = attempts.iter().find(|a| a.finished_at.is_none()).map(|a| attempt_view(a, lang));
    let last = attempts.iter().find(|a| a.finished_at.is_some()).map(|a| attempt_view(a, lang));
    let (row, number) = row_status(&app.db, tenant).await?;
    let connected = number.as_ref().is_some_and(|n| n.status == store::NUMBER_CONNECTED);
    let review = |v: &Option<String>, ok: &str, bad: &str| match v.as_deref().map(str::to_ascii_uppercase) {
        Some(s) if s == ok => "done",
        Some(s) if s == bad => "failed",
        Some(_) => "pending",
        None => "unknown",
    };
    let prerequisites = if state.waba_id.is_some() {
        vec![
            ("business_verified", review(&state.business_verification, "VERIFIED", "REJECTED")),
            ("payment", if state.payment_confirmed_at.is_some() { "confirmed" } else { "unknown" }),
            ("waba_verified", review(&state.account_review, "APPROVED", "REJECTED")),
        ]
    } else {
        Vec::new()
    };
    let accounts = health::accounts(&app.db, tenant).await?;
    let troubled = accounts.iter().find(|a| a.health.is_some());
    let health_state = if health::STATES.contains(&row) { row.to_owned() } else { String::new() };
    let health_when = troubled.and_then(|a| a.health_at).map(When);
    let token_expires = accounts
        .iter()
        .filter(|a| a.health.is_none() && a.has_token)
        .filter_map(|a| a.token_expires_at)
        .find(|e| *e <= app.clock.now_ms() + health::EXPIRY_WARNING_MS)
        .map(|e| When(e).utc_text())
        .unwrap_or_default();
    let can_disconnect = accounts.iter().any(|a| a.health.as_deref() != Some(health::DISCONNECTED));
    let settings = &app.settings;
    render(&OnboardingPage {
        guide_url: settings.meta_guide_url.clone(),
        sdk_url: sdk_url_in(&settings.meta.sdk_url, lang),
        app_id: settings.meta.app_id.clone(),
        config_id: settings.meta.config_id.clone(),
        graph_version: settings.meta.graph_version.clone(),
        origins: settings.meta.signup_origins.join(","),
        support_contact: settings.support_contact.clone(),
        pin_set: state.pin_ciphertext.is_some(),
        payment_confirmed: state.payment_confirmed_at.is_some(),
        locked: state.locked_at.is_some(),
        attempts_left: (store::MAX_FAILED_ATTEMPTS - state.failed_attempts).max(0),
        show_start: open.as_ref().is_none_or(|a| a.status == "started"),
        open,
        last,
        connected,
        number: number.as_ref().and_then(|n| n.display_phone_number.clone()).unwrap_or_default(),
        display_name: number.as_ref().and_then(|n| n.verified_name.clone()).unwrap_or_default(),
        checklist: checklist_view(&app.db, tenant).await?,
        prerequisites,
        attempts: attempts.iter().map(|a| attempt_view(a, lang)).collect(),
        error,
        notice,
        health: health_state,
        health_when,
        token_expires,
        can_disconnect,
        p: member.ctx.into(),
    })
}

async fn get_onboarding(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    owner(&member)?;
    page(&app, member, String::new()).await
}

async fn get_checklist(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    let lang = member.ctx.lang;
    let items: Vec<_> = checklist_view(&app.db, member.tenant)
        .await?
        .into_iter()
        .map(|i| json!({"item": i.item, "state": i.state, "text": lang.t(&format!("onboarding.state.{}", i.state)), "when": i.when.map(When::utc_text), "at": i.when.map(When::rfc3339), "detail": i.detail_words(lang)}))
        .collect();
    let (status, _) = row_status(&app.db, member.tenant).await?;
    Ok(Json(json!({"items": items, "status": status})).into_response())
}

async fn limited(app: &AppState, tenant: TenantId) -> AppResult<()> {
    if store::rate_ok(&app.db, tenant, app.clock.now_ms()).await? { Ok(()) } else { Err(AppError::RateLimited) }
}

#[derive(Deserialize)]
struct PinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    payment: Option<String>,
}

async fn post_pin(State(app): State<AppState>, member: TenantMember, Form(form): Form<PinForm>) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    let lang = member.ctx.lang;
    let Ok(pin) = Pin::parse(&form.pin) else {
        let mut r = page(&app, member, lang.t("onboarding.pin.invalid").to_owned()).await?;
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    };
    let state = store::state(&app.db, member.tenant).await?;
    if form.payment.is_none() && state.payment_confirmed_at.is_none() {
        let mut r = page(&app, member, lang.t("onboarding.pin.payment_required").to_owned()).await?;
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    }
    let sealed = app.settings.keyring.seal_str(&SecretString::from(pin.expose().to_owned()), &format!("onboarding-pin:{}", member.tenant.0));
    store::set_pin(&app.db, member.tenant, &sealed, form.payment.is_some(), app.clock.now_ms()).await?;
    // A wrong PIN at registration (133005) is corrected here: register again, same attempt.
    if let Some(a) = store::open_attempt(&app.db, member.tenant).await?
        && a.status == "needs_pin"
    {
        flow::register(&app, member.tenant).await?;
    }
    Ok(Redirect::to("/api-settings/whatsapp").into_response())
}

async fn post_start(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    let state = store::state(&app.db, member.tenant).await?;
    if state.locked_at.is_some() {
        return Err(AppError::BadRequest("onboarding_locked"));
    }
    if state.pin_ciphertext.is_none() {
        return Err(AppError::BadRequest("onboarding_no_pin"));
    }
    let session = crate::crypto::token_hash(&member.user.csrf_token);
    let attempt = store::start_attempt(&app.db, member.tenant, member.user.id, &session, app.clock.now_ms()).await?;
    Ok(Json(json!({"nonce": attempt.nonce, "status": attempt.status})).into_response())
}

async fn post_complete(State(app): State<AppState>, member: TenantMember, Path(nonce): Path<String>, Json(collected): Json<flow::Collected>) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    // Only the session that started the attempt may finish it: a code or session info from
    // another session, tab of another user or tenant is refused like an unknown attempt.
    let session = crate::crypto::token_hash(&member.user.csrf_token);
    let attempt = store::attempt_by_nonce(&app.db, member.tenant, &nonce)
        .await?
        .filter(|a| a.session_hash == session)
        .ok_or(AppError::NotFound)?;
    if store::claim_attempt(&app.db, attempt.id, app.clock.now_ms()).await?
        && let Err(e) = flow::complete(&app, &attempt, collected).await
    {
        // Our own failure: the attempt ends without counting against the tenant.
        let u = store::AttemptUpdate { status: "failed".into(), step: Some("server".into()), ..store::AttemptUpdate::default() };
        store::update_attempt(&app.db, attempt.id, &u, true, false, app.clock.now_ms()).await?;
        return Err(e.into());
    }
    let done = store::attempt_by_nonce(&app.db, member.tenant, &nonce).await?.ok_or(AppError::NotFound)?;
    Ok(Json(json!({"status": done.status, "next": "/api-settings/whatsapp"})).into_response())
}

#[derive(Deserialize)]
struct RequestCodeForm {
    #[serde(default)]
    method: String,
}

async fn post_request_code(State(app): State<AppState>, member: TenantMember, Form(form): Form<RequestCodeForm>) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    let method = if form.method == "VOICE" { CodeMethod::Voice } else { CodeMethod::Sms };
    let language = if member.ctx.lang == Lang::En { "en_US" } else { "de" };
    match flow::request_code(&app, member.tenant, method, language).await? {
        Ok(()) => Ok(Redirect::to("/api-settings/whatsapp?code=sent").into_response()),
        Err(e) => {
            let text = e.graph().and_then(|g| g.code).map(|c| explain(c, member.ctx.lang)).unwrap_or_else(|| e.to_string());
            let mut r = page(&app, member, text).await?;
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(r)
        }
    }
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    code: String,
}

async fn post_verify_code(State(app): State<AppState>, member: TenantMember, Form(form): Form<VerifyForm>) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    let code: String = form.code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if code.is_empty() || code.len() > 10 || !code.chars().all(|c| c.is_ascii_digit()) {
        let text = member.ctx.lang.t("onboarding.verify.invalid").to_owned();
        let mut r = page(&app, member, text).await?;
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    }
    match flow::verify_code(&app, member.tenant, &code).await? {
        Ok(()) => Ok(Redirect::to("/api-settings/whatsapp").into_response()),
        Err(e) => {
            let text = e.graph().and_then(|g| g.code).map(|c| explain(c, member.ctx.lang)).unwrap_or_else(|| e.to_string());
            let mut r = page(&app, member, text).await?;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

async fn post_register(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    flow::register(&app, member.tenant).await?;
    Ok(Redirect::to("/api-settings/whatsapp").into_response())
}

async fn post_abandon(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    flow::abandon(&app, member.tenant).await?;
    Ok(Redirect::to("/api-settings/whatsapp").into_response())
}

#[derive(Deserialize)]
struct DisconnectForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// The owner disconnects WhatsApp (deregister, unsubscribe, token deleted). An open attempt
/// ends without counting against the tenant.
async fn post_disconnect(State(app): State<AppState>, member: TenantMember, Form(form): Form<DisconnectForm>) -> AppResult<Response> {
    owner(&member)?;
    limited(&app, member.tenant).await?;
    if form.confirm.is_none() {
        return Err(AppError::BadRequest("disconnect_unconfirmed"));
    }
    if let Some(a) = store::open_attempt(&app.db, member.tenant).await? {
        let u = store::AttemptUpdate { status: "disconnected".into(), ..store::AttemptUpdate::default() };
        store::update_attempt(&app.db, a.id, &u, true, false, app.clock.now_ms()).await?;
    }
    let out = health::disconnect(&app, member.tenant).await?;
    tracing::info!(target: "audit", tenant = member.tenant.0, user = member.user.id.0, meta_refusals = out.meta_errors.len(), "whatsapp disconnected");
    let lang = member.ctx.lang;
    if out.meta_errors.is_empty() {
        return Ok(Redirect::to("/api-settings/whatsapp").into_response());
    }
    let reasons: Vec<String> = out.meta_errors.iter().map(|e| e.graph().and_then(|g| g.code).map(|c| explain(c, lang)).unwrap_or_else(|| e.to_string())).collect();
    let notice = format!("{} {}", lang.t("onboarding.disconnect.meta_refused"), reasons.join(" "));
    page_with(&app, member, String::new(), notice).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_speaks_the_readers_language() {
        let meta = "https://connect.facebook.net/en_US/sdk.js";
        assert_eq!(sdk_url_in(meta, Lang::De), "https://connect.facebook.net/de_DE/sdk.js");
        assert_eq!(sdk_url_in(meta, Lang::En), meta);
        assert_eq!(sdk_url_in("http://127.0.0.1:9000/en_US/sdk.js?v=2", Lang::De), "http://127.0.0.1:9000/de_DE/sdk.js?v=2");
        for other in ["https://cdn.example/sdk.js", "https://cdn.example/js/sdk.js", "https://cdn.example/facebook.js", "sdk.js"] {
            assert_eq!(sdk_url_in(other, Lang::De), other);
        }
    }
}
