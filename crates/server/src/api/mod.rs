//! The host application's JSON API under `/api/v1`: per-tenant API keys (Bearer), sends with
//! `Idempotency-Key`, reads of messages, conversations, onboarding and costs; an operator key
//! to create tenants and users and hand out one-time sign-in links; signed event callbacks
//! ([`callbacks`]); the OpenAPI document and a reference page rendered from it.
//!
//! Errors are `{"error": {"code", "message"}}` (the web layer renders every error under
//! `/api/` as JSON); bad input is a 4xx, never a 500.

pub mod callbacks;
pub mod keys;
pub mod openapi;

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::accounts::{Role, TenantId, UserId, normalize_email, password, store as accounts};
use crate::billing::{self, Month, format_micros};
use crate::inbox::store::{self as inbox_store, ConversationRow};
use crate::inbox::window::CustomerServiceWindow;
use crate::inbox::{self, SendRefusal};
use crate::templates::{self, TemplateSendError, store as templates_store};
use crate::web::context::{SESSION_COOKIE, TenantMember, set_cookie};
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::{AppState, PageCtx, render};
use crate::{crypto, onboarding, with_pool};

/// Conversations or messages per page, at most.
const MAX_PAGE: i64 = 100;
/// How long a sign-in link lives.
const SIGN_IN_LINK_MS: i64 = 15 * 60 * 1000;

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(get_openapi))
        .route("/api-reference", get(get_reference))
        .route("/api/v1/messages/template", post(post_template))
        .route("/api/v1/messages/text", post(post_text))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/conversations", get(get_conversations))
        .route("/api/v1/conversations/{id}/messages", get(get_conversation_messages))
        .route("/api/v1/templates", get(get_templates))
        .route("/api/v1/onboarding", get(get_onboarding))
        .route("/api/v1/costs", get(get_costs))
        .route("/api/v1/tenants", post(post_tenant))
        .route("/api/v1/tenants/{id}/users", post(post_user))
        .route("/api/v1/users/{id}/sign-in-links", post(post_sign_in_link))
        .route("/sign-in/link/{token}", get(get_sign_in_link))
        .route("/api-settings/api", get(get_settings))
        .route("/api-settings/api/keys", post(post_key))
        .route("/api-settings/api/keys/{id}/revoke", post(post_revoke))
        .route("/api-settings/api/callback", post(post_callback))
}

/// An API error with its status; rendered as `{"error": {"code", "message"}}`.
pub struct ApiError(pub StatusCode, pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        r.extensions_mut().insert(ErrorCode(self.1));
        r
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(err) = &e {
            tracing::error!(error = format!("{err:#}"), "api request failed");
        }
        ApiError(e.status(), e.code())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        AppError::from(e).into()
    }
}

impl From<TemplateSendError> for ApiError {
    fn from(e: TemplateSendError) -> Self {
        match e {
            TemplateSendError::Send(s) => s.into(),
            TemplateSendError::NotSendable(_) => ApiError(StatusCode::CONFLICT, "template_not_sendable"),
            other => ApiError(StatusCode::UNPROCESSABLE_ENTITY, other.code()),
        }
    }
}

impl From<SendRefusal> for ApiError {
    fn from(e: SendRefusal) -> Self {
        match e {
            SendRefusal::WindowClosed => ApiError(StatusCode::CONFLICT, "window_closed"),
            SendRefusal::NotConnected => ApiError(StatusCode::CONFLICT, "not_connected"),
            SendRefusal::BadText => ApiError(StatusCode::UNPROCESSABLE_ENTITY, "bad_text"),
            SendRefusal::NotFound => ApiError(StatusCode::NOT_FOUND, "not_found"),
            SendRefusal::Db(e) => e.into(),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// A request authenticated with a tenant's API key.
pub struct ApiTenant(pub TenantId);

impl FromRequestParts<AppState> for ApiTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or(ApiError(StatusCode::UNAUTHORIZED, "unauthorized"))?;
        match keys::authenticate(&app.db, key, app.clock.now_ms()).await? {
            Some(t) => Ok(ApiTenant(t)),
            None => Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized")),
        }
    }
}

/// A request authenticated with the operator's key.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Some(expected) = &app.settings.operator_api_key else { return Err(ApiError(StatusCode::NOT_FOUND, "not_found")) };
        let given = bearer(parts).unwrap_or_default();
        if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) { Ok(Operator) } else { Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized")) }
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_idempotency_key"))?.trim();
            if k.is_empty() || k.len() > 200 {
                return Err(ApiError(StatusCode::BAD_REQUEST, "bad_idempotency_key"));
            }
            Ok(Some(format!("api:{k}")))
        }
    }
}

/// Who a send goes to: an existing conversation or a phone number (a new conversation).
#[derive(Deserialize)]
struct Target {
    conversation_id: Option<i64>,
    to: Option<String>,
}

async fn target_conversation(app: &AppState, tenant: TenantId, t: &Target) -> ApiResult<ConversationRow> {
    let id = match (t.conversation_id, t.to.as_deref()) {
        (Some(id), _) => id,
        (None, Some(to)) => {
            let phone = templates::normalize_phone(to).ok_or(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "bad_phone"))?;
            let number = templates::sending_number(app, tenant).await?.ok_or(ApiError(StatusCode::CONFLICT, "not_connected"))?;
            inbox::open_conversation(&app.db, tenant, &number, &phone, app.clock.now_ms()).await?
        }
        (None, None) => return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "recipient_missing")),
    };
    inbox_store::conversation(&app.db, tenant, id).await?.ok_or(ApiError(StatusCode::NOT_FOUND, "not_found"))
}

fn sent_json(sent: &inbox::Sent, conversation: i64, cost: Option<&billing::CostPreview>) -> Response {
    let status = if sent.created { StatusCode::ACCEPTED } else { StatusCode::OK };
    let body = json!({
        "message_id": sent.message, "outbox_id": sent.outbox.0, "conversation_id": conversation, "status": "queued", "created": sent.created,
        "cost_preview": cost.map(cost_preview_json),
    });
    (status, Json(body)).into_response()
}

fn cost_preview_json(c: &billing::CostPreview) -> Value {
    json!({"category": c.category, "market": c.market, "inside_window": c.inside_window,
           "amount": c.amount_micros.map(format_micros), "currency": "EUR", "known": c.amount_micros.is_some()})
}

#[derive(Deserialize)]
struct TemplateRequest {
    #[serde(flatten)]
    target: Target,
    template: String,
    language: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

async fn post_template(State(app): State<AppState>, ApiTenant(tenant): ApiTenant, headers: HeaderMap, body: Result<Json<TemplateRequest>, axum::extract::rejection::JsonRejection>) -> ApiResult<Response> {
    let Json(req) = body.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let key = idempotency_key(&headers)?;
    let template = templates_store::by_name(&app.db, tenant, req.template.trim(), req.language.trim()).await?.ok_or(ApiError(StatusCode::NOT_FOUND, "template_unknown"))?;
    if !template.sendable() {
        return Err(ApiError(StatusCode::CONFLICT, "template_not_sendable"));
    }
    let conversation = target_conversation(&app, tenant, &req.target).await?;
    let now = app.clock.now_ms();
    let open = CustomerServiceWindow::at(conversation.last_customer_message_at, now).is_open();
    let cost = billing::preview(&app.settings.rate_card, conversation.phone.as_deref(), conversation.bsuid.as_deref(), &template.category, open, now);
    let sent = templates::send_template(&app, tenant, &conversation, &template, &req.parameters, key).await?;
    Ok(sent_json(&sent, conversation.id, Some(&cost)))
}

#[derive(Deserialize)]
struct TextRequest {
    #[serde(flatten)]
    target: Target,
    text: String,
}

async fn post_text(State(app): State<AppState>, ApiTenant(tenant): ApiTenant, headers: HeaderMap, body: Result<Json<TextRequest>, axum::extract::rejection::JsonRejection>) -> ApiResult<Response> {
    let Json(req) = body.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let key = idempotency_key(&headers)?;
    let conversation = target_conversation(&app, tenant, &req.target).await?;
    let sent = inbox::send_text(&app, tenant, conversation.id, &req.text, None, key).await?;
    Ok(sent_json(&sent, conversation.id, None))
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    conversation_id: i64,
    direction: String,
    wamid: Option<String>,
    kind: String,
    body: String,
    status: String,
    error_code: Option<i64>,
    outbox_id: Option<i64>,
    meta_at: i64,
}

fn message_json(m: &MessageRow) -> Value {
    json!({"id": m.id, "conversation_id": m.conversation_id, "direction": m.direction, "wamid": m.wamid, "type": m.kind,
           "text": m.body, "status": m.status, "error_code": m.error_code, "outbox_id": m.outbox_id, "timestamp": m.meta_at})
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, direction, wamid, kind, body, status, error_code, outbox_id, meta_at";

async fn get_message(State(app): State<AppState>, ApiTenant(tenant): ApiTenant, Path(id): Path<i64>) -> ApiResult<Response> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2");
    let m = with_pool!(app.db.read(), |p| sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(id).fetch_optional(p).await)?
        .ok_or(ApiError(StatusCode::NOT_FOUND, "not_found"))?;
    let cost = billing::cost_of_message(&app.db, tenant, m.id).await?;
    let mut body = message_json(&m);
    body["cost"] = match cost {
        Some(c) => json!({"category": c.category, "pricing_type": c.pricing_type, "market": c.market, "inside_window": c.inside_window,
                          "amount": c.amount_micros.map(format_micros), "currency": c.currency, "known": c.amount_micros.is_some(), "flagged": c.flagged, "day": c.day}),
        None => Value::Null,
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<i64>,
    before: Option<i64>,
    /// Conversations: the id of the previous page's last one (`next_before_id`), so that
    /// conversations of the same instant are neither skipped nor repeated.
    before_id: Option<i64>,
}

fn limit(q: &PageQuery) -> ApiResult<i64> {
    match q.limit {
        None => Ok(30),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError(StatusCode::BAD_REQUEST, "bad_limit")),
    }
}

async fn get_conversations(State(app): State<AppState>, ApiTenant(tenant): ApiTenant, q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult<Response> {
    let Query(q) = q.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let n = limit(&q)?;
    let before = q.before.map(|at| inbox_store::Before { at, id: q.before_id });
    let rows = inbox_store::conversations(&app.db, tenant, None, before, n + 1).await?;
    let now = app.clock.now_ms();
    let more = rows.len() as i64 > n;
    let data: Vec<Value> = rows
        .iter()
        .take(n as usize)
        .map(|c| {
            let w = CustomerServiceWindow::at(c.last_customer_message_at, now);
            json!({"id": c.id, "phone_number_id": c.phone_number_id, "customer": {"name": c.name, "username": c.username, "phone": c.phone, "user_id": c.bsuid},
                   "last_message_at": c.last_message_at, "last_customer_message_at": c.last_customer_message_at, "unread": c.unread,
                   "window": {"open": w.is_open(), "remaining_ms": w.remaining_ms(now)}})
        })
        .collect();
    let last = if more { rows.get(n as usize - 1) } else { None };
    Ok(Json(json!({"data": data, "next_before": last.map(|c| c.last_message_at), "next_before_id": last.map(|c| c.id)})).into_response())
}

async fn get_conversation_messages(
    State(app): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    Path(id): Path<i64>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let n = limit(&q)?;
    inbox_store::conversation(&app.db, tenant, id).await?.ok_or(ApiError(StatusCode::NOT_FOUND, "not_found"))?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4");
    let rows = with_pool!(app.db.read(), |p| sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(id).bind(q.before).bind(n + 1).fetch_all(p).await)?;
    let more = rows.len() as i64 > n;
    let data: Vec<Value> = rows.iter().take(n as usize).map(message_json).collect();
    let next = if more { rows.get(n as usize - 1).map(|m| m.id) } else { None };
    Ok(Json(json!({"data": data, "next_before": next})).into_response())
}

async fn get_templates(State(app): State<AppState>, ApiTenant(tenant): ApiTenant) -> ApiResult<Response> {
    let rows = templates_store::list(&app.db, tenant).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|t| {
            let parts = crate::templates::model::Parts::from_components(&serde_json::from_str(&t.components).unwrap_or_default());
            json!({"id": t.id, "name": t.name, "language": t.language, "category": t.category, "status": t.status, "sendable": t.sendable(),
                   "reason": t.reason, "quality": t.quality, "parameters": parts.params(), "body": parts.body})
        })
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

async fn get_onboarding(State(app): State<AppState>, ApiTenant(tenant): ApiTenant) -> ApiResult<Response> {
    let status = onboarding::connection_status(&app.db, tenant).await?;
    // What the API settings row shows: connected only once every checklist item is done;
    // failed while self-service is locked; a broken connection by its state.
    let (state, _) = onboarding::row_status(&app.db, tenant).await?;
    let numbers: Vec<Value> = onboarding::store::numbers(&app.db, tenant)
        .await?
        .into_iter()
        .map(|n| json!({"phone_number_id": n.phone_number_id, "display_phone_number": n.display_phone_number, "verified_name": n.verified_name, "status": n.status}))
        .collect();
    let checklist: Vec<Value> = onboarding::store::checklist(&app.db, tenant)
        .await?
        .into_iter()
        .map(|i| json!({"item": i.item, "state": i.state, "detail": i.detail, "changed_at": i.changed_at}))
        .collect();
    Ok(Json(json!({"status": status.key(), "state": state, "numbers": numbers, "checklist": checklist})).into_response())
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

async fn get_costs(State(app): State<AppState>, ApiTenant(tenant): ApiTenant, Query(q): Query<MonthQuery>) -> ApiResult<Response> {
    let month = match q.month.as_deref() {
        Some(m) => Month::parse(m).ok_or(ApiError(StatusCode::BAD_REQUEST, "bad_month"))?,
        None => Month::of(app.clock.now_ms()),
    };
    let s = billing::month_summary(&app.db, tenant, month).await?;
    let categories: Vec<Value> = s.by_category.iter().map(|c| json!({"category": c.category, "messages": c.messages, "amount": format_micros(c.micros), "unknown_amounts": c.unknown})).collect();
    let days: Vec<Value> = s.by_day.iter().map(|d| json!({"day": d.day, "messages": d.messages, "amount": format_micros(d.micros), "unknown_amounts": d.unknown})).collect();
    Ok(Json(json!({"month": s.month, "currency": "EUR", "total": format_micros(s.total_micros), "messages": s.messages,
                   "unknown_amounts": s.unknown, "by_category": categories, "by_day": days, "pricing_url": billing::META_PRICING_URL}))
    .into_response())
}

// ---- Operator ----

#[derive(Deserialize)]
struct NewTenant {
    name: String,
}

async fn post_tenant(State(app): State<AppState>, _: Operator, body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>) -> ApiResult<Response> {
    let Json(req) = body.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > crate::accounts::MAX_NAME {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "bad_name"));
    }
    let id = accounts::create_tenant(&app.db, name, app.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id.0, "name": name}))).into_response())
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    display_name: Option<String>,
    role: String,
}

async fn post_user(State(app): State<AppState>, _: Operator, Path(tenant): Path<i64>, body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>) -> ApiResult<Response> {
    let Json(req) = body.map_err(|_| ApiError(StatusCode::BAD_REQUEST, "bad_request"))?;
    let email = normalize_email(&req.email).map_err(|_| ApiError(StatusCode::UNPROCESSABLE_ENTITY, "bad_email"))?;
    let role = match Role::parse(&req.role) {
        Some(r @ (Role::Owner | Role::Agent)) => r,
        _ => return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "bad_role")),
    };
    let name = req.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or(&email).chars().take(crate::accounts::MAX_NAME).collect::<String>();
    // The user signs in through links from the host application; the password is random and
    // never told to anyone.
    let hash = password::hash(crypto::random_token()).await.map_err(|e| ApiError::from(AppError::Internal(anyhow::anyhow!("{e}"))))?;
    match accounts::create_user(&app.db, Some(TenantId(tenant)), &email, &name, &hash, role, app.clock.now_ms()).await {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({"id": id.0, "tenant_id": tenant, "email": email, "role": role.as_str()}))).into_response()),
        Err(accounts::CreateUserError::Duplicate) => Err(ApiError(StatusCode::CONFLICT, "duplicate_user")),
        Err(accounts::CreateUserError::BadTenant) => Err(ApiError(StatusCode::NOT_FOUND, "not_found")),
        Err(accounts::CreateUserError::Db(e)) => Err(e.into()),
    }
}

fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    app.settings.public_url.clone().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    })
}

async fn post_sign_in_link(State(app): State<AppState>, _: Operator, Path(user): Path<i64>, headers: HeaderMap) -> ApiResult<Response> {
    let exists = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, String>("SELECT role FROM users WHERE id = $1").bind(user).fetch_optional(p).await)?;
    if exists.is_none_or(|r| r == "support") {
        return Err(ApiError(StatusCode::NOT_FOUND, "not_found"));
    }
    let token = crypto::random_token();
    let now = app.clock.now_ms();
    with_pool!(app.db.write(), |p| sqlx::query("INSERT INTO sign_in_links (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(crypto::token_hash(&token))
        .bind(UserId(user))
        .bind(now)
        .bind(now + SIGN_IN_LINK_MS)
        .execute(p)
        .await
        .map(drop))?;
    let url = format!("{}/sign-in/link/{token}", base_url(&app, &headers).trim_end_matches('/'));
    Ok((StatusCode::CREATED, Json(json!({"url": url, "expires_at": now + SIGN_IN_LINK_MS}))).into_response())
}

async fn get_sign_in_link(State(app): State<AppState>, Path(token): Path<String>) -> AppResult<Response> {
    let now = app.clock.now_ms();
    // Used once: the update that marks it used is the check.
    let user = with_pool!(app.db.write(), |p| sqlx::query_scalar::<_, UserId>(
        "UPDATE sign_in_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id"
    )
    .bind(crypto::token_hash(&token))
    .bind(now)
    .fetch_optional(p)
    .await)?
    .ok_or(AppError::NotFound)?;
    let session = crypto::random_token();
    let lifetime_ms = app.settings.session_hours * 3_600_000;
    accounts::create_session(&app.db, &crypto::token_hash(&session), user, &crypto::random_token(), now, now + lifetime_ms).await?;
    tracing::info!(user_id = user.0, "signed in with a one-time link");
    Ok((AppendHeaders([(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session, lifetime_ms / 1000, app.settings.secure_cookies()))]), Redirect::to("/")).into_response())
}

// ---- Documentation ----

async fn get_openapi() -> Response {
    Json(openapi::document()).into_response()
}

#[derive(askama::Template)]
#[template(path = "api_reference.html")]
struct ReferencePage {
    p: PageCtx,
    operations: Vec<openapi::Operation>,
}

async fn get_reference(crate::web::context::Ctx(ctx): crate::web::context::Ctx) -> AppResult<Response> {
    render(&ReferencePage { operations: openapi::operations(&openapi::document()), p: ctx.into() })
}

// ---- The owner's API settings ----

#[derive(askama::Template)]
#[template(path = "api_keys.html")]
struct SettingsPage {
    p: PageCtx,
    keys: Vec<keys::KeyRow>,
    new_key: Option<String>,
    callback_url: Option<String>,
    new_secret: Option<String>,
    deliveries: Vec<(callbacks::DeliveryRow, crate::web::when::When)>,
    error: Option<&'static str>,
}

async fn settings_page(app: &AppState, member: TenantMember, new_key: Option<String>, new_secret: Option<String>, error: Option<&'static str>) -> AppResult<Response> {
    if member.user.role != Role::Owner {
        return Err(AppError::Forbidden);
    }
    let keys = keys::list(&app.db, member.tenant).await?;
    let callback_url = callbacks::endpoint_url(&app.db, member.tenant).await?;
    let deliveries = callbacks::deliveries(&app.db, member.tenant, 50)
        .await?
        .into_iter()
        .map(|d| {
            let when = crate::web::when::When(d.created_at);
            (d, when)
        })
        .collect();
    let mut r = render(&SettingsPage { keys, new_key, callback_url, new_secret, deliveries, error, p: member.ctx.into() })?;
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn get_settings(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    settings_page(&app, member, None, None, None).await
}

#[derive(Deserialize)]
struct KeyForm {
    label: String,
}

async fn post_key(State(app): State<AppState>, member: TenantMember, Form(form): Form<KeyForm>) -> AppResult<Response> {
    if member.user.role != Role::Owner {
        return Err(AppError::Forbidden);
    }
    let label: String = form.label.trim().chars().take(100).collect();
    let label = if label.is_empty() { "API".to_owned() } else { label };
    let key = keys::create(&app.db, member.tenant, &label, app.clock.now_ms()).await?;
    settings_page(&app, member, Some(key), None, None).await
}

async fn post_revoke(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>) -> AppResult<Response> {
    if member.user.role != Role::Owner {
        return Err(AppError::Forbidden);
    }
    if !keys::revoke(&app.db, member.tenant, id, app.clock.now_ms()).await? {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to("/api-settings/api").into_response())
}

#[derive(Deserialize)]
struct CallbackForm {
    url: String,
    rotate: Option<String>,
}

async fn post_callback(State(app): State<AppState>, member: TenantMember, Form(form): Form<CallbackForm>) -> AppResult<Response> {
    if member.user.role != Role::Owner {
        return Err(AppError::Forbidden);
    }
    let url = form.url.trim();
    let valid = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some()) && url.len() <= 2000;
    if !valid {
        return settings_page(&app, member, None, None, Some("error.bad_callback_url")).await;
    }
    let secret = callbacks::set_endpoint(&app.db, &app.settings.keyring, member.tenant, url, form.rotate.is_some(), app.clock.now_ms()).await?;
    settings_page(&app, member, None, secret, None).await
}
