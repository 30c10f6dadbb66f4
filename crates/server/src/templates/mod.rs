//! Templates: support writes them for a tenant (validated as Meta validates, submitted with the
//! tenant's token), Meta's webhooks and a periodic sync keep their state, tenants see them and
//! ask for new ones, and a template is how the business writes first — from a conversation whose
//! window is closed, or to a new customer by phone number.

pub mod handler;
pub mod model;
pub mod store;
pub mod sync;

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use secrecy::SecretString;
use serde::Deserialize;
use wabridge_cloud_api::{ApiError, OutboundMessage, Recipient};

use crate::accounts::{TenantId, store as accounts};
use crate::billing::{self, CostPreview};
use crate::inbox::store::{self as inbox_store, ConversationRow};
use crate::inbox::window::CustomerServiceWindow;
use crate::inbox::{self, SendRefusal, Sent};
use crate::web::context::{SupportStaff, TenantMember};
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::Lang;
use crate::web::{AppState, PageCtx, render};
use crate::with_pool;
use model::{Button, Draft, Parts, Validated};
use store::TemplateRow;

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/templates", get(get_templates))
        .route("/templates/requests", post(post_request))
        .route("/templates/send", get(get_send_new).post(post_send_new))
        .route("/inbox/{id}/template", get(get_send_conversation).post(post_send_conversation))
        .route("/support/templates", get(get_support_overview))
        .route("/support/tenants/{tenant_id}/templates", get(get_support_templates).post(post_support_create))
        .route("/support/tenants/{tenant_id}/templates/default", post(post_support_default))
        .route("/support/tenants/{tenant_id}/templates/sync", post(post_support_sync))
        .route("/support/tenants/{tenant_id}/requests/{request_id}/done", post(post_support_request_done))
}

/// Why a template could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TemplateSendError {
    /// Not approved (or paused, disabled …): the status says why.
    #[error("the template is {0}")]
    NotSendable(String),
    /// A parameter value is missing or too long.
    #[error("bad parameter value: {0}")]
    Value(&'static str),
    /// The template belongs to another WhatsApp Business Account than the conversation's number.
    #[error("the template belongs to another WhatsApp Business Account")]
    OtherAccount,
    /// The send itself was refused.
    #[error(transparent)]
    Send(#[from] SendRefusal),
}

impl TemplateSendError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateSendError::NotSendable(_) => "template_not_sendable",
            TemplateSendError::Value(code) => code,
            TemplateSendError::OtherAccount => "template_other_account",
            TemplateSendError::Send(e) => match e {
                SendRefusal::WindowClosed => "window_closed",
                SendRefusal::NotConnected => "not_connected",
                SendRefusal::BadText => "bad_text",
                SendRefusal::NotFound => "not_found",
                SendRefusal::Db(_) => "internal",
            },
        }
    }
}

impl From<TemplateSendError> for AppError {
    fn from(e: TemplateSendError) -> Self {
        match e {
            TemplateSendError::Send(s) => s.into(),
            other => AppError::BadRequest(other.code()),
        }
    }
}

fn recipient(c: &ConversationRow) -> Option<Recipient> {
    c.phone.clone().map(Recipient::Phone).or_else(|| c.bsuid.clone().map(Recipient::UserId))
}

async fn waba_of_number(app: &AppState, tenant: TenantId, phone_number_id: &str) -> Result<Option<String>, sqlx::Error> {
    with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, String>(
        "SELECT a.waba_id FROM phone_numbers n JOIN whatsapp_accounts a ON a.id = n.account_id WHERE n.phone_number_id = $1 AND n.tenant_id = $2"
    )
    .bind(phone_number_id)
    .bind(tenant)
    .fetch_optional(p)
    .await)
}

/// Sends an approved template in a conversation through the one outbox, with the template's
/// category as the pricing category.
pub async fn send_template(
    app: &AppState,
    tenant: TenantId,
    conversation: &ConversationRow,
    template: &TemplateRow,
    values: &BTreeMap<String, String>,
    idempotency_key: Option<String>,
) -> Result<Sent, TemplateSendError> {
    if !template.sendable() {
        return Err(TemplateSendError::NotSendable(template.status.clone()));
    }
    if waba_of_number(app, tenant, &conversation.phone_number_id).await.map_err(SendRefusal::Db)?.is_some_and(|w| w != template.waba_id) {
        return Err(TemplateSendError::OtherAccount);
    }
    let parts = Parts::from_components(&serde_json::from_str(&template.components).unwrap_or_default());
    let message = parts.message(&template.name, &template.language, values).map_err(TemplateSendError::Value)?;
    let to = recipient(conversation).ok_or(SendRefusal::NotFound)?;
    let body = Parts::fill(&parts.body, values);
    let category = template.category.to_ascii_lowercase();
    Ok(inbox::record_send(app, tenant, conversation, OutboundMessage::template(to, message), "template", &body, Some(&category), idempotency_key).await?)
}

/// Digits of a phone number typed with or without `+`, spaces, dashes; `None` unless 8–15 digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_start_matches('+');
    let trimmed = trimmed.strip_prefix("00").unwrap_or(trimmed);
    if !trimmed.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '/')) {
        return None;
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    ((8..=15).contains(&digits.len()) && !digits.starts_with('0')).then_some(digits)
}

/// The tenant's first connected number.
pub async fn sending_number(app: &AppState, tenant: TenantId) -> Result<Option<String>, sqlx::Error> {
    Ok(crate::onboarding::store::numbers(&app.db, tenant)
        .await?
        .into_iter()
        .find(|n| n.status == crate::onboarding::store::NUMBER_CONNECTED)
        .map(|n| n.phone_number_id))
}

// ---- The tenant's view ----

struct TemplateLine {
    row: TemplateRow,
    parts: Parts,
    recategorized: bool,
}

fn line(row: TemplateRow) -> TemplateLine {
    let parts = Parts::from_components(&serde_json::from_str(&row.components).unwrap_or_default());
    let recategorized = row.previous_category.as_deref() == Some("UTILITY") && row.category == "MARKETING";
    TemplateLine { row, parts, recategorized }
}

#[derive(askama::Template)]
#[template(path = "templates_list.html")]
struct ListPage {
    p: PageCtx,
    lines: Vec<TemplateLine>,
    requests: Vec<store::RequestRow>,
    requested: bool,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct ListQuery {
    requested: Option<String>,
    error: Option<String>,
}

async fn get_templates(State(app): State<AppState>, member: TenantMember, Query(q): Query<ListQuery>) -> AppResult<Response> {
    let lines = store::list(&app.db, member.tenant).await?.into_iter().map(line).collect();
    let requests = store::requests(&app.db, Some(member.tenant)).await?;
    let error = q.error.as_deref().map(|_| "error.template_request");
    render(&ListPage { lines, requests, requested: q.requested.is_some(), error, p: member.ctx.into() })
}

#[derive(Deserialize)]
struct RequestForm {
    text: String,
    purpose: String,
}

async fn post_request(State(app): State<AppState>, member: TenantMember, Form(form): Form<RequestForm>) -> AppResult<Response> {
    let text = form.text.trim();
    let purpose = form.purpose.trim();
    if text.is_empty() || purpose.is_empty() || text.chars().count() > model::MAX_BODY * 2 || purpose.chars().count() > 1000 {
        return Ok(Redirect::to("/templates?error=1").into_response());
    }
    store::add_request(&app.db, member.tenant, member.user.id, text, purpose, app.clock.now_ms()).await?;
    Ok(Redirect::to("/templates?requested=1").into_response())
}

// ---- Sending ----

struct Choice {
    row: TemplateRow,
    sendable: bool,
}

#[derive(askama::Template)]
#[template(path = "template_send.html")]
struct SendPage {
    p: PageCtx,
    action: String,
    conversation: Option<(i64, String)>,
    window_open: bool,
    phone: String,
    choices: Vec<Choice>,
    selected: Option<TemplateLine>,
    fields: Vec<(String, String, String)>,
    preview_header: Option<String>,
    preview_body: String,
    preview_footer: Option<String>,
    cost: Option<CostPreview>,
    cost_text: Option<String>,
    error: Option<&'static str>,
    pricing_url: &'static str,
}

struct SendInput {
    template: Option<i64>,
    values: BTreeMap<String, String>,
    phone: String,
    send: bool,
}

fn send_input(pairs: Vec<(String, String)>) -> SendInput {
    let mut input = SendInput { template: None, values: BTreeMap::new(), phone: String::new(), send: false };
    for (k, v) in pairs {
        match k.as_str() {
            "template" => input.template = v.parse().ok(),
            "phone" => input.phone = v.chars().take(40).collect(),
            "do" => input.send = v == "send",
            _ => {
                if let Some(name) = k.strip_prefix("v_") {
                    input.values.insert(name.to_owned(), v.chars().take(model::MAX_VALUE + 1).collect());
                }
            }
        }
    }
    input
}

#[allow(clippy::too_many_arguments)]
async fn send_page(
    app: &AppState,
    member: TenantMember,
    conversation: Option<&ConversationRow>,
    input: &SendInput,
    error: Option<&'static str>,
) -> AppResult<Response> {
    let now = app.clock.now_ms();
    let rows = store::list(&app.db, member.tenant).await?;
    let selected = input.template.and_then(|id| rows.iter().find(|r| r.id == id).cloned()).map(line);
    let choices = rows.into_iter().map(|row| Choice { sendable: row.sendable(), row }).collect();
    let window_open = conversation.is_some_and(|c| CustomerServiceWindow::at(c.last_customer_message_at, now).is_open());
    let (phone, bsuid) = match conversation {
        Some(c) => (c.phone.clone(), c.bsuid.clone()),
        None => (normalize_phone(&input.phone), None),
    };
    let mut fields = Vec::new();
    let (mut preview_header, mut preview_body, mut preview_footer, mut cost) = (None, String::new(), None, None);
    if let Some(t) = &selected {
        for name in t.parts.params() {
            let value = input.values.get(&name).cloned().unwrap_or_default();
            let example = t.parts.examples.get(&name).cloned().unwrap_or_default();
            fields.push((name, value, example));
        }
        preview_header = t.parts.header.as_deref().map(|h| Parts::fill(h, &input.values));
        preview_body = Parts::fill(&t.parts.body, &input.values);
        preview_footer = t.parts.footer.clone();
        if phone.is_some() || bsuid.is_some() {
            cost = Some(billing::preview(&app.settings.rate_card, phone.as_deref(), bsuid.as_deref(), &t.row.category, window_open, now));
        }
    }
    let action = match conversation {
        Some(c) => format!("/inbox/{}/template", c.id),
        None => "/templates/send".to_owned(),
    };
    let cost_text = cost.as_ref().and_then(|c| c.amount_text(member.ctx.lang));
    let mut response = render(&SendPage {
        action,
        conversation: conversation.map(|c| (c.id, title_of(c))),
        window_open,
        phone: input.phone.clone(),
        choices,
        selected,
        fields,
        preview_header,
        preview_body,
        preview_footer,
        cost_text,
        cost,
        error,
        pricing_url: billing::META_PRICING_URL,
        p: member.ctx.into(),
    })?;
    if error.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

fn title_of(c: &ConversationRow) -> String {
    c.name
        .clone()
        .or_else(|| c.username.as_ref().map(|u| format!("@{u}")))
        .or_else(|| c.phone.as_ref().map(|p| format!("+{p}")))
        .or_else(|| c.bsuid.clone())
        .unwrap_or_else(|| "?".to_owned())
}

async fn get_send_conversation(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>, Query(q): Query<Vec<(String, String)>>) -> AppResult<Response> {
    let conversation = inbox_store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    let input = send_input(q);
    send_page(&app, member, Some(&conversation), &input, None).await
}

async fn post_send_conversation(State(app): State<AppState>, member: TenantMember, Path(id): Path<i64>, Form(form): Form<Vec<(String, String)>>) -> AppResult<Response> {
    let conversation = inbox_store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    let input = send_input(form);
    if !input.send {
        return send_page(&app, member, Some(&conversation), &input, None).await;
    }
    let Some(template) = (match input.template {
        Some(t) => store::get(&app.db, member.tenant, t).await?,
        None => None,
    }) else {
        return send_page(&app, member, Some(&conversation), &input, Some("error.template_choose")).await;
    };
    match send_template(&app, member.tenant, &conversation, &template, &input.values, None).await {
        Ok(_) => Ok(Redirect::to(&format!("/inbox/{id}")).into_response()),
        Err(TemplateSendError::Send(SendRefusal::Db(e))) => Err(e.into()),
        Err(e) => {
            let key = error_key(e.code());
            send_page(&app, member, Some(&conversation), &input, Some(key)).await
        }
    }
}

fn error_key(code: &str) -> &'static str {
    match code {
        "template_not_sendable" => "error.template_not_sendable",
        "template_value_missing" => "error.template_value_missing",
        "template_value_too_long" => "error.template_value_too_long",
        "template_other_account" => "error.template_other_account",
        "window_closed" => "error.window_closed",
        "not_connected" => "error.not_connected",
        "bad_phone" => "error.bad_phone",
        _ => "error.bad_request",
    }
}

async fn get_send_new(State(app): State<AppState>, member: TenantMember, Query(q): Query<Vec<(String, String)>>) -> AppResult<Response> {
    let input = send_input(q);
    send_page(&app, member, None, &input, None).await
}

async fn post_send_new(State(app): State<AppState>, member: TenantMember, Form(form): Form<Vec<(String, String)>>) -> AppResult<Response> {
    let input = send_input(form);
    if !input.send {
        return send_page(&app, member, None, &input, None).await;
    }
    let Some(phone) = normalize_phone(&input.phone) else {
        return send_page(&app, member, None, &input, Some("error.bad_phone")).await;
    };
    let Some(template) = (match input.template {
        Some(t) => store::get(&app.db, member.tenant, t).await?,
        None => None,
    }) else {
        return send_page(&app, member, None, &input, Some("error.template_choose")).await;
    };
    if !template.sendable() {
        return send_page(&app, member, None, &input, Some("error.template_not_sendable")).await;
    }
    let Some(number) = sending_number(&app, member.tenant).await? else {
        return send_page(&app, member, None, &input, Some("error.not_connected")).await;
    };
    let id = inbox::open_conversation(&app.db, member.tenant, &number, &phone, app.clock.now_ms()).await?;
    let conversation = inbox_store::conversation(&app.db, member.tenant, id).await?.ok_or(AppError::NotFound)?;
    match send_template(&app, member.tenant, &conversation, &template, &input.values, None).await {
        Ok(_) => Ok(Redirect::to(&format!("/inbox/{id}")).into_response()),
        Err(TemplateSendError::Send(SendRefusal::Db(e))) => Err(e.into()),
        Err(e) => {
            let key = error_key(e.code());
            send_page(&app, member, None, &input, Some(key)).await
        }
    }
}

// ---- Support ----

/// The tenant's WABA and its business token.
async fn tenant_token(app: &AppState, tenant: TenantId) -> Result<Option<(String, SecretString)>, sqlx::Error> {
    for (_, waba, sealed) in store::wabas(&app.db, Some(tenant)).await? {
        if let Ok(token) = app.settings.keyring.open_str(&sealed, &crate::onboarding::store::token_context(&waba)) {
            return Ok(Some((waba, token)));
        }
    }
    Ok(None)
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The tenant has no WABA with a usable token.
    #[error("the tenant has no connected WhatsApp Business Account")]
    NoAccount,
    /// Meta refused it.
    #[error("Meta refused the template: {0}")]
    Meta(#[from] ApiError),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Submits a validated template to Meta with the tenant's token and stores it.
pub async fn submit(app: &AppState, tenant: TenantId, template: &Validated) -> Result<i64, SubmitError> {
    let (waba, token) = tenant_token(app, tenant).await?.ok_or(SubmitError::NoAccount)?;
    let created = app.graph.create_template(&token, &waba, &template.to_meta()).await?;
    let status = created.status.as_deref().map_or_else(|| "pending".to_owned(), store::status_from_meta);
    let category = created.category.as_deref().map(str::to_ascii_uppercase).unwrap_or_else(|| template.draft.category.clone());
    let components = serde_json::Value::Array(template.components());
    let mut tx = app.db.begin().await?;
    let (id, _) = store::upsert(
        &mut tx,
        tenant,
        &waba,
        &store::TemplateFacts {
            meta_template_id: created.id.as_deref(),
            name: &template.draft.name,
            language: &template.draft.language,
            category: Some(&category),
            parameter_format: Some(template.format.map_or("POSITIONAL", model::ParameterFormat::as_meta)),
            components: Some(&components),
            status: Some(&status),
            reason: None,
        },
        app.clock.now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(askama::Template)]
#[template(path = "support_templates.html")]
struct SupportTemplatesPage {
    p: PageCtx,
    tenant: accounts::Tenant,
    lines: Vec<TemplateLine>,
    requests: Vec<store::RequestRow>,
    form: CreateForm,
    problems: Vec<&'static str>,
    meta_error: Option<String>,
    notice: Option<&'static str>,
    categories: &'static [&'static str],
}

#[derive(Clone, Debug, Default, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    header: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    footer: String,
    /// One per line: `Label`, `Label | https://…` or `Label | +49…`.
    #[serde(default)]
    buttons: String,
    /// One per line: `parameter = example`.
    #[serde(default)]
    examples: String,
}

impl CreateForm {
    fn draft(&self) -> Draft {
        let buttons = self
            .buttons
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once('|') {
                Some((text, target)) if target.trim().starts_with("http") => Button::Url { text: text.trim().to_owned(), url: target.trim().to_owned() },
                Some((text, target)) => Button::Phone { text: text.trim().to_owned(), phone: target.trim().replace(' ', "") },
                None => Button::QuickReply { text: l.to_owned() },
            })
            .collect();
        let examples = self
            .examples
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().trim_matches(|c| c == '{' || c == '}').to_owned(), v.trim().to_owned()))
            .collect();
        Draft {
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category.clone(),
            header: Some(self.header.clone()),
            body: self.body.clone(),
            footer: Some(self.footer.clone()),
            buttons,
            examples,
        }
    }
}

#[derive(Deserialize)]
struct SupportQuery {
    notice: Option<String>,
}

async fn support_page(app: &AppState, staff: SupportStaff, tenant_id: i64, form: CreateForm, problems: Vec<&'static str>, meta_error: Option<String>, notice: Option<&'static str>) -> AppResult<Response> {
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    crate::support::log_read(&app.db, staff.user.id, Some(tenant.id), "templates", app.clock.now_ms()).await?;
    let lines = store::list(&app.db, tenant.id).await?.into_iter().map(line).collect();
    let requests = store::requests(&app.db, Some(tenant.id)).await?;
    let failed = !problems.is_empty() || meta_error.is_some();
    let mut response = render(&SupportTemplatesPage { tenant, lines, requests, form, problems, meta_error, notice, categories: model::CATEGORIES, p: staff.ctx.into() })?;
    if failed {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

async fn get_support_templates(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>, Query(q): Query<SupportQuery>) -> AppResult<Response> {
    let notice = match q.notice.as_deref() {
        Some("created") => Some("templates.support.created"),
        Some("default") => Some("templates.support.default_submitted"),
        Some("synced") => Some("templates.support.synced"),
        _ => None,
    };
    let form = CreateForm { language: "de".to_owned(), category: "UTILITY".to_owned(), ..CreateForm::default() };
    support_page(&app, staff, tenant_id, form, Vec::new(), None, notice).await
}

fn meta_error_text(e: &SubmitError, lang: Lang) -> String {
    match e {
        SubmitError::Meta(ApiError::Graph(g)) => {
            let lang = if lang == Lang::En { wabridge_cloud_api::Lang::En } else { wabridge_cloud_api::Lang::De };
            format!("{} ({})", g.explain(lang), g.meta_text().unwrap_or_default())
        }
        other => other.to_string(),
    }
}

async fn post_support_create(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>, Form(form): Form<CreateForm>) -> AppResult<Response> {
    accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    let validated = match model::validate(form.draft()) {
        Ok(v) => v,
        Err(problems) => return support_page(&app, staff, tenant_id, form, problems, None, None).await,
    };
    match submit(&app, TenantId(tenant_id), &validated).await {
        Ok(_) => Ok(Redirect::to(&format!("/support/tenants/{tenant_id}/templates?notice=created")).into_response()),
        Err(SubmitError::Db(e)) => Err(e.into()),
        Err(e) => {
            let text = meta_error_text(&e, staff.ctx.lang);
            support_page(&app, staff, tenant_id, form, Vec::new(), Some(text), None).await
        }
    }
}

/// Submits (again) the default booking confirmation in German and English for a tenant; a
/// language Meta already has is read back instead of failing the whole action.
pub async fn submit_default(app: &AppState, tenant: TenantId) -> Result<usize, SubmitError> {
    let mut submitted = 0;
    for language in ["de", "en"] {
        let template = model::booking_confirmation(language);
        match submit(app, tenant, &template).await {
            Ok(_) => submitted += 1,
            Err(SubmitError::Meta(e)) if matches!(&e, ApiError::Graph(g) if g.subcode == Some(2_388_024)) => {
                // Already exists in that language: read Meta's state instead.
                sync::sync_tenant(app, tenant).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(submitted)
}

async fn post_support_default(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>) -> AppResult<Response> {
    accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    match submit_default(&app, TenantId(tenant_id)).await {
        Ok(_) => Ok(Redirect::to(&format!("/support/tenants/{tenant_id}/templates?notice=default")).into_response()),
        Err(SubmitError::Db(e)) => Err(e.into()),
        Err(e) => {
            let text = meta_error_text(&e, staff.ctx.lang);
            let form = CreateForm { language: "de".to_owned(), category: "UTILITY".to_owned(), ..CreateForm::default() };
            support_page(&app, staff, tenant_id, form, Vec::new(), Some(text), None).await
        }
    }
}

async fn post_support_sync(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>) -> AppResult<Response> {
    accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    match sync::sync_tenant(&app, TenantId(tenant_id)).await {
        Ok(_) => Ok(Redirect::to(&format!("/support/tenants/{tenant_id}/templates?notice=synced")).into_response()),
        Err(SubmitError::Db(e)) => Err(e.into()),
        Err(e) => {
            let text = meta_error_text(&e, staff.ctx.lang);
            support_page(&app, staff, tenant_id, CreateForm::default(), Vec::new(), Some(text), None).await
        }
    }
}

async fn post_support_request_done(State(app): State<AppState>, _staff: SupportStaff, Path((tenant_id, request_id)): Path<(i64, i64)>) -> AppResult<Response> {
    if !store::finish_request(&app.db, TenantId(tenant_id), request_id, app.clock.now_ms()).await? {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to(&format!("/support/tenants/{tenant_id}/templates")).into_response())
}

struct OverviewRequest {
    row: store::RequestRow,
    tenant: String,
}

struct OverviewWarning {
    row: TemplateRow,
    tenant: String,
    when: Option<crate::web::when::When>,
}

#[derive(askama::Template)]
#[template(path = "support_templates_overview.html")]
struct OverviewPage {
    p: PageCtx,
    requests: Vec<OverviewRequest>,
    warnings: Vec<OverviewWarning>,
}

async fn get_support_overview(State(app): State<AppState>, staff: SupportStaff) -> AppResult<Response> {
    crate::support::log_read(&app.db, staff.user.id, None, "template_requests", app.clock.now_ms()).await?;
    let tenants: BTreeMap<i64, String> = accounts::all_tenants(&app.db).await?.into_iter().map(|t| (t.id.0, t.name)).collect();
    let name = |t: TenantId| tenants.get(&t.0).cloned().unwrap_or_default();
    let requests = store::requests(&app.db, None).await?.into_iter().filter(|r| r.done_at.is_none()).map(|row| OverviewRequest { tenant: name(row.tenant_id), row }).collect();
    let warnings = store::recategorized(&app.db)
        .await?
        .into_iter()
        .map(|row| OverviewWarning { tenant: name(row.tenant_id), when: row.category_changed_at.map(crate::web::when::When), row })
        .collect();
    render(&OverviewPage { requests, warnings, p: staff.ctx.into() })
}
