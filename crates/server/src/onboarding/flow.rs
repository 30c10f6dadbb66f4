//! The signup itself, server-side: the code exchange in the request that receives it, the
//! token check against the session info, the subscription, the registration with the PIN and
//! the default template. Every step records its outcome on the attempt; only steps that fail
//! the tenant's try count against the two attempts (rule 6).

use secrecy::SecretString;
use serde_json::Value;
use wabridge_cloud_api::client::{CodeMethod, PhoneNumber};
use wabridge_cloud_api::{ApiError, ErrorClass, GraphClient, Pin};

use super::checklist::{self, Computed};
use super::store::{self, AttemptRow, AttemptUpdate, Attachment, AttachError};
use super::template::{DEFAULT_TEMPLATE, LANGUAGES, booking_confirmation};
use crate::accounts::TenantId;
use crate::web::AppState;

/// What the page collected from the popup: the code from `FB.login` and the
/// `WA_EMBEDDED_SIGNUP` message, either of which may be missing.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Collected {
    /// The exchangeable code (lives 30 seconds).
    #[serde(default)]
    pub code: Option<String>,
    /// The session-info message as posted by the popup.
    #[serde(default)]
    pub message: Option<Value>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Meta's error as attempt fields.
fn with_error(mut u: AttemptUpdate, e: &ApiError) -> AttemptUpdate {
    match e.graph() {
        Some(g) => {
            u.error_code = g.code;
            u.error_subcode = g.subcode;
            u.error_message = g.meta_text().map(str::to_owned);
            u.fbtrace_id = g.fbtrace_id.clone();
        }
        None => u.error_message = Some(e.to_string()),
    }
    u
}

fn failed(step: &str) -> AttemptUpdate {
    AttemptUpdate { status: "failed".into(), step: Some(step.into()), ..AttemptUpdate::default() }
}

/// Runs the signup for an attempt with what the popup delivered; the attempt row says how it
/// ended.
pub async fn complete(app: &AppState, attempt: &AttemptRow, collected: Collected) -> anyhow::Result<()> {
    let db = &app.db;
    let now = || app.clock.now_ms();
    let message = collected.message.filter(|m| m.get("type").and_then(Value::as_str) == Some("WA_EMBEDDED_SIGNUP"));
    let event = message.as_ref().and_then(|m| text(m, "event"));
    let data = message.as_ref().and_then(|m| m.get("data").cloned()).unwrap_or(Value::Null);
    let code = collected.code.filter(|c| !c.is_empty() && c.len() < 4096);

    // Cancelled, reported error, or closed without a code: the popup step failed.
    let Some(code) = code else {
        let mut u = failed("popup");
        u.event = Some(event.clone().unwrap_or_else(|| "CLOSED".into()));
        u.current_step = text(&data, "current_step");
        u.error_code = text(&data, "error_code").and_then(|c| c.parse().ok());
        u.error_message = text(&data, "error_message");
        u.fbtrace_id = text(&data, "session_id");
        if u.error_message.is_none() && event.as_deref() == Some("CANCEL") {
            u.status = "cancelled".into();
        }
        store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
        return Ok(());
    };
    let base = AttemptUpdate { event: event.clone(), business_id: text(&data, "business_id"), ..AttemptUpdate::default() };

    let graph = app.graph.clone();
    let creds = checklist::app_credentials(&app.settings);
    let token = match graph.exchange_code(&creds, &SecretString::from(code)).await {
        Ok(t) => t.access_token,
        Err(e) => {
            let u = with_error(AttemptUpdate { status: "failed".into(), step: Some("code_exchange".into()), ..base }, &e);
            store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
            return Ok(());
        }
    };
    store::set_attempt_token(db, attempt.id, &app.settings.keyring.seal_str(&token, &format!("attempt-token:{}", attempt.id))).await?;

    // The token's granular scopes say which WABAs it may manage: the browser's word is
    // checked against them before anything is attached to this tenant.
    let info = match graph.debug_token(&creds, &token).await {
        Ok(i) => i,
        Err(e) => {
            let u = with_error(AttemptUpdate { status: "failed".into(), step: Some("token_check".into()), ..base }, &e);
            store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
            return Ok(());
        }
    };
    let scoped: Vec<String> = info.waba_ids().into_iter().map(str::to_owned).collect();
    let app_ok = info.app_id.as_deref().is_none_or(|a| a == app.settings.meta.app_id) && info.is_valid != Some(false);
    let claimed = text(&data, "waba_id");
    let waba_id = match &claimed {
        Some(w) if scoped.contains(w) => Some(w.clone()),
        Some(_) => None,
        None => match scoped.first() {
            Some(w) => Some(w.clone()),
            None => installed_waba(app, attempt, &graph, &token).await?,
        },
    };
    let Some(waba_id) = waba_id.filter(|_| app_ok) else {
        let mut u = AttemptUpdate { status: "failed".into(), step: Some("token_check".into()), ..base };
        u.error_message = Some(if claimed.is_some() { "the WABA of the session info is not among the token's granular scopes".into() } else { "the token names no WhatsApp Business Account".into() });
        store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
        return Ok(());
    };
    let base = AttemptUpdate { waba_id: Some(waba_id.clone()), ..base };

    if event.as_deref() == Some("FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING") {
        let u = AttemptUpdate { status: "coexistence".into(), step: Some("number".into()), ..base };
        store::update_attempt(db, attempt.id, &u, true, false, now()).await?;
        return Ok(());
    }

    let numbers = match graph.all_phone_numbers(&token, &waba_id).await {
        Ok(n) => n,
        Err(e) => {
            let u = with_error(AttemptUpdate { status: "failed".into(), step: Some("number".into()), ..base }, &e);
            store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
            return Ok(());
        }
    };
    let claimed_number = text(&data, "phone_number_id");
    let number: Option<PhoneNumber> = match &claimed_number {
        Some(id) => match numbers.iter().find(|n| n.id.as_deref() == Some(id.as_str())) {
            Some(n) => Some(n.clone()),
            None => {
                let mut u = AttemptUpdate { status: "failed".into(), step: Some("token_check".into()), ..base };
                u.error_message = Some("the number of the session info is not in the token's WhatsApp Business Account".into());
                store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
                return Ok(());
            }
        },
        None if event.as_deref() == Some("FINISH_ONLY_WABA") => None,
        None => {
            // No session info: the newest number of the WABA that is not someone else's.
            let mut pick = None;
            for n in numbers.iter().rev() {
                let Some(id) = n.id.as_deref() else { continue };
                if store::number_owner(db, id).await?.is_none_or(|t| t == attempt.tenant_id) {
                    pick = Some(n.clone());
                    break;
                }
            }
            pick
        }
    };
    let Some(number) = number else {
        let u = AttemptUpdate { status: "no_number".into(), step: Some("number".into()), event: Some(event.unwrap_or_else(|| "FINISH_ONLY_WABA".into())), ..base };
        store::update_attempt(db, attempt.id, &u, true, false, now()).await?;
        return Ok(());
    };
    let Some(pn) = number.id.clone() else { anyhow::bail!("phone number without id") };
    let base = AttemptUpdate { phone_number_id: Some(pn.clone()), ..base };
    if number.is_on_biz_app == Some(true) {
        let u = AttemptUpdate { status: "coexistence".into(), step: Some("number".into()), ..base };
        store::update_attempt(db, attempt.id, &u, true, false, now()).await?;
        return Ok(());
    }

    let sealed = app.settings.keyring.seal_str(&token, &store::token_context(&waba_id));
    let attached = store::attach(
        db,
        attempt.tenant_id,
        &Attachment {
            waba_id: &waba_id,
            business_id: base.business_id.as_deref(),
            phone_number_id: &pn,
            display_phone_number: number.display_phone_number.as_deref(),
            token_ciphertext: Some(sealed),
            status: "pending",
        },
        now(),
    )
    .await;
    match attached {
        Ok(()) => {}
        Err(AttachError::OtherTenant) => {
            let mut u = AttemptUpdate { status: "failed".into(), step: Some("attach".into()), ..base };
            u.error_message = Some("this WhatsApp Business Account or number belongs to another customer".into());
            store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
            return Ok(());
        }
        Err(AttachError::Db(e)) => return Err(e.into()),
    }
    let first_poll = now() + app.settings.onboarding_poll_secs * 1000;
    store::set_assets(db, attempt.tenant_id, &waba_id, Some(&pn), first_poll, now()).await?;
    super::health::set_token_expiry(db, attempt.tenant_id, &waba_id, info.expires_at, now()).await?;

    if let Err(e) = graph.subscribe_app(&token, &waba_id).await {
        let u = with_error(AttemptUpdate { status: "failed".into(), step: Some("subscribe".into()), ..base }, &e);
        store::update_attempt(db, attempt.id, &u, true, true, now()).await?;
        return Ok(());
    }
    let pending: Vec<Computed> = checklist::ITEMS
        .iter()
        .map(|i| Computed { item: i, state: "pending", detail: String::new() })
        .collect();
    checklist::apply_all(db, &app.live, attempt.tenant_id, &pending, now()).await?;
    submit_template(app, attempt.tenant_id, &graph, &token, &waba_id).await?;

    let verified = number.code_verification_status.as_deref() == Some("VERIFIED");
    if !verified {
        let u = AttemptUpdate { status: "needs_verification".into(), step: Some("verification".into()), ..base };
        store::update_attempt(db, attempt.id, &u, false, false, now()).await?;
        let _ = checklist::refresh(db, &app.live, &app.settings, &app.graph, attempt.tenant_id, now()).await;
        return Ok(());
    }
    store::update_attempt(db, attempt.id, &AttemptUpdate { status: "registering".into(), step: Some("register".into()), ..base }, false, false, now()).await?;
    register(app, attempt.tenant_id).await
}

/// Fallback when neither the session info nor the scopes name a WABA: a `PARTNER_APP_INSTALLED`
/// webhook received since the attempt began, for a WABA this token can read.
async fn installed_waba(app: &AppState, attempt: &AttemptRow, graph: &GraphClient, token: &SecretString) -> anyhow::Result<Option<String>> {
    let rows = crate::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, String>(
        "SELECT raw FROM webhook_unhandled WHERE field = 'account_update' AND at >= $1 ORDER BY id DESC LIMIT 50"
    )
    .bind(attempt.started_at)
    .fetch_all(p)
    .await)?;
    for raw in rows {
        let v: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        if v.get("event").and_then(Value::as_str) != Some("PARTNER_APP_INSTALLED") {
            continue;
        }
        let Some(waba) = v.get("waba_info").and_then(|w| text(w, "waba_id")) else { continue };
        if graph.waba(token, &waba).await.is_ok() {
            return Ok(Some(waba));
        }
    }
    Ok(None)
}

/// Submits the default template in both languages; a refusal alerts support and fails no
/// attempt (rule 6). A template that already exists (a repeated signup) is looked up instead.
async fn submit_template(app: &AppState, tenant: TenantId, graph: &GraphClient, token: &SecretString, waba_id: &str) -> anyhow::Result<()> {
    let now = app.clock.now_ms();
    for lang in LANGUAGES {
        match graph.create_template(token, waba_id, &booking_confirmation(lang)).await {
            Ok(created) => {
                let status = created.status.unwrap_or_else(|| "PENDING".into());
                store::upsert_template(&app.db, tenant, lang, waba_id, created.id.as_deref(), &status, None, now).await?;
            }
            Err(e) => {
                let existing = graph
                    .templates(token, waba_id, Some(DEFAULT_TEMPLATE), None)
                    .await
                    .ok()
                    .and_then(|page| page.data.into_iter().find(|t| t.language.as_deref() == Some(lang)));
                match existing {
                    Some(t) => {
                        let status = t.status.unwrap_or_else(|| "PENDING".into());
                        store::upsert_template(&app.db, tenant, lang, waba_id, t.id.as_deref(), &status, t.rejected_reason.as_deref(), now).await?;
                    }
                    None => {
                        store::upsert_template(&app.db, tenant, lang, waba_id, None, "NOT_SUBMITTED", Some(&e.to_string()), now).await?;
                        let mut tx = app.db.begin().await?;
                        checklist::alert(&mut tx, tenant, "template_not_submitted", &format!("template_not_submitted:{}:{lang}:{now}", tenant.0), &format!("{DEFAULT_TEMPLATE} ({lang}): {e}"), now).await?;
                        tx.commit().await?;
                    }
                }
            }
        }
    }
    // The templates feature keeps every template of the tenant (texts, states, sending); it
    // learns of these now rather than at its next periodic sync.
    if let Err(e) = crate::templates::sync::sync_tenant(app, tenant).await {
        tracing::warn!(tenant = tenant.0, error = %e, "template sync after signup failed; the periodic sync will catch up");
    }
    Ok(())
}

/// The tenant's sealed PIN, opened.
fn pin_of(app: &AppState, tenant: TenantId, state: &store::StateRow) -> anyhow::Result<Option<Pin>> {
    let Some(sealed) = state.pin_ciphertext.as_deref() else { return Ok(None) };
    let pin = app.settings.keyring.open_str(sealed, &format!("onboarding-pin:{}", tenant.0))?;
    use secrecy::ExposeSecret as _;
    Ok(Pin::parse(pin.expose_secret()).ok())
}

/// Registers the open attempt's number with the stored PIN and reads the checklist.
/// A wrong PIN (133005) asks for the right one, a number that needs verification asks for the
/// code, a temporary failure offers to retry — none of these uses up an attempt; only a
/// registration that cannot be completed fails it.
pub async fn register(app: &AppState, tenant: TenantId) -> anyhow::Result<()> {
    let db = &app.db;
    let Some(attempt) = store::open_attempt(db, tenant).await? else { return Ok(()) };
    let (Some(waba_id), Some(pn)) = (attempt.waba_id.clone(), attempt.phone_number_id.clone()) else { return Ok(()) };
    let base = AttemptUpdate { step: Some("register".into()), ..AttemptUpdate::default() };
    let state = store::state(db, tenant).await?;
    let Some(pin) = pin_of(app, tenant, &state)? else {
        store::update_attempt(db, attempt.id, &AttemptUpdate { status: "needs_pin".into(), ..base }, false, false, app.clock.now_ms()).await?;
        return Ok(());
    };
    let Some(token) = checklist::token(db, &app.settings, tenant, &waba_id).await? else { anyhow::bail!("no token for {waba_id}") };
    let graph = app.graph.clone();
    match graph.register(&token, &pn, &pin, None).await {
        Ok(()) => {
            let now = app.clock.now_ms();
            let number = graph.phone_number(&token, &pn).await.ok();
            store::set_number_status(
                db,
                tenant,
                &pn,
                store::NUMBER_CONNECTED,
                number.as_ref().and_then(|n| n.display_phone_number.as_deref()),
                number.as_ref().and_then(|n| n.verified_name.as_deref()),
                now,
            )
            .await?;
            store::update_attempt(db, attempt.id, &AttemptUpdate { status: "connected".into(), ..base }, true, false, now).await?;
            if let Err(e) = checklist::refresh(db, &app.live, &app.settings, &app.graph, tenant, now).await {
                tracing::warn!(tenant = tenant.0, error = format!("{e:#}"), "checklist refresh failed; the poller will retry");
            }
        }
        Err(e) => {
            let now = app.clock.now_ms();
            let code = e.graph().and_then(|g| g.code);
            let (status, finish) = match (code, e.class()) {
                (Some(133005), _) => ("needs_pin", false),
                (Some(133006), _) => ("needs_verification", false),
                (_, ErrorClass::Retry) => ("needs_register", false),
                _ => ("failed", true),
            };
            let u = with_error(AttemptUpdate { status: status.into(), ..base }, &e);
            store::update_attempt(db, attempt.id, &u, finish, finish, now).await?;
            if finish {
                let item = Computed { item: "number_registered", state: "failed", detail: format!("{e}") };
                checklist::apply_all(db, &app.live, tenant, &[item], now).await?;
            }
        }
    }
    Ok(())
}

/// Asks Meta to send the verification code of the open attempt's number.
pub async fn request_code(app: &AppState, tenant: TenantId, method: CodeMethod, language: &str) -> anyhow::Result<Result<(), ApiError>> {
    let Some((token, pn, _)) = open_number(app, tenant).await? else { return Ok(Ok(())) };
    Ok(app.graph.request_code(&token, &pn, method, language).await)
}

/// Submits the verification code; when Meta accepts it (or the number is verified already),
/// registers the number.
pub async fn verify_code(app: &AppState, tenant: TenantId, code: &str) -> anyhow::Result<Result<(), ApiError>> {
    let Some((token, pn, attempt)) = open_number(app, tenant).await? else { return Ok(Ok(())) };
    match app.graph.verify_code(&token, &pn, code).await {
        Ok(()) => {}
        Err(e) if e.graph().and_then(|g| g.code) == Some(136024) => {}
        Err(e) => {
            let u = with_error(AttemptUpdate { status: "needs_verification".into(), step: Some("verification".into()), ..AttemptUpdate::default() }, &e);
            store::update_attempt(&app.db, attempt.id, &u, false, false, app.clock.now_ms()).await?;
            return Ok(Err(e));
        }
    }
    let now = app.clock.now_ms();
    checklist::apply_all(&app.db, &app.live, tenant, &[Computed { item: "number_verified", state: "done", detail: "code_verification_status=VERIFIED".into() }], now).await?;
    register(app, tenant).await?;
    Ok(Ok(()))
}

async fn open_number(app: &AppState, tenant: TenantId) -> anyhow::Result<Option<(SecretString, String, AttemptRow)>> {
    let Some(attempt) = store::open_attempt(&app.db, tenant).await? else { return Ok(None) };
    let (Some(waba_id), Some(pn)) = (attempt.waba_id.clone(), attempt.phone_number_id.clone()) else { return Ok(None) };
    let Some(token) = checklist::token(&app.db, &app.settings, tenant, &waba_id).await? else { return Ok(None) };
    Ok(Some((token, pn, attempt)))
}

/// The owner gives up on the open attempt (a number that cannot be verified): it fails.
pub async fn abandon(app: &AppState, tenant: TenantId) -> anyhow::Result<()> {
    if let Some(attempt) = store::open_attempt(&app.db, tenant).await? {
        let u = AttemptUpdate { status: "failed".into(), step: Some(attempt.step.clone().unwrap_or_else(|| "popup".into())), ..AttemptUpdate::default() };
        store::update_attempt(&app.db, attempt.id, &u, true, true, app.clock.now_ms()).await?;
    }
    Ok(())
}

/// Why support's connection by hand was refused (nothing was attached).
#[derive(Debug)]
pub enum HandRefusal {
    /// A field is empty.
    Missing,
    /// `debug_token` says the token is not valid.
    TokenInvalid,
    /// The token belongs to another app.
    WrongApp,
    /// The token's granular scopes do not include the WABA.
    WabaNotInScopes,
    /// The WABA has no such number.
    NumberNotInWaba,
    /// The WABA or number is another tenant's.
    OtherTenant,
    /// Meta refused a call.
    Meta(ApiError),
}

impl HandRefusal {
    /// Translation key suffix (`support_onboarding.connect.error.<key>`).
    pub fn key(&self) -> &'static str {
        match self {
            HandRefusal::Missing => "missing",
            HandRefusal::TokenInvalid => "token_invalid",
            HandRefusal::WrongApp => "wrong_app",
            HandRefusal::WabaNotInScopes => "waba_not_in_scopes",
            HandRefusal::NumberNotInWaba => "number_not_in_waba",
            HandRefusal::OtherTenant => "other_tenant",
            HandRefusal::Meta(_) => "meta",
        }
    }
}

/// Support connects a number by hand when Embedded Signup is impossible: the token is checked
/// with `debug_token` (valid, ours, its granular scopes include the WABA), the number must be
/// one of the WABA's; then the app is subscribed, the token sealed and the number attached —
/// `connected` when Meta already has it registered, else pending until the poller sees it
/// registered — and the default template submitted, as after a signup.
pub async fn connect_by_hand(app: &AppState, tenant: TenantId, waba_id: &str, phone_number_id: &str, token: SecretString) -> anyhow::Result<Result<&'static str, HandRefusal>> {
    use secrecy::ExposeSecret as _;
    if waba_id.is_empty() || phone_number_id.is_empty() || token.expose_secret().is_empty() {
        return Ok(Err(HandRefusal::Missing));
    }
    let graph = &app.graph;
    let info = match graph.debug_token(&checklist::app_credentials(&app.settings), &token).await {
        Ok(i) => i,
        Err(e) => return Ok(Err(HandRefusal::Meta(e))),
    };
    if info.is_valid != Some(true) {
        return Ok(Err(HandRefusal::TokenInvalid));
    }
    if info.app_id.as_deref().is_some_and(|a| a != app.settings.meta.app_id) {
        return Ok(Err(HandRefusal::WrongApp));
    }
    if !info.waba_ids().contains(&waba_id) {
        return Ok(Err(HandRefusal::WabaNotInScopes));
    }
    let numbers = match graph.all_phone_numbers(&token, waba_id).await {
        Ok(n) => n,
        Err(e) => return Ok(Err(HandRefusal::Meta(e))),
    };
    let Some(number) = numbers.into_iter().find(|n| n.id.as_deref() == Some(phone_number_id)) else {
        return Ok(Err(HandRefusal::NumberNotInWaba));
    };
    if store::waba_owner(&app.db, waba_id).await?.is_some_and(|t| t != tenant) || store::number_owner(&app.db, phone_number_id).await?.is_some_and(|t| t != tenant) {
        return Ok(Err(HandRefusal::OtherTenant));
    }
    if let Err(e) = graph.subscribe_app(&token, waba_id).await {
        return Ok(Err(HandRefusal::Meta(e)));
    }
    let now = app.clock.now_ms();
    let status = if number.status.as_deref() == Some("CONNECTED") { store::NUMBER_CONNECTED } else { "pending" };
    let sealed = app.settings.keyring.seal_str(&token, &store::token_context(waba_id));
    let attachment = Attachment {
        waba_id,
        business_id: None,
        phone_number_id,
        display_phone_number: number.display_phone_number.as_deref(),
        token_ciphertext: Some(sealed),
        status,
    };
    match store::attach(&app.db, tenant, &attachment, now).await {
        Ok(()) => {}
        Err(AttachError::OtherTenant) => return Ok(Err(HandRefusal::OtherTenant)),
        Err(AttachError::Db(e)) => return Err(e.into()),
    }
    store::set_number_status(&app.db, tenant, phone_number_id, status, number.display_phone_number.as_deref(), number.verified_name.as_deref(), now).await?;
    super::health::set_token_expiry(&app.db, tenant, waba_id, info.expires_at, now).await?;
    store::set_assets(&app.db, tenant, waba_id, Some(phone_number_id), now + app.settings.onboarding_poll_secs * 1000, now).await?;
    let pending: Vec<Computed> = checklist::ITEMS.iter().map(|i| Computed { item: i, state: "pending", detail: String::new() }).collect();
    checklist::apply_all(&app.db, &app.live, tenant, &pending, now).await?;
    submit_template(app, tenant, graph, &token, waba_id).await?;
    if let Err(e) = checklist::refresh(&app.db, &app.live, &app.settings, graph, tenant, now).await {
        tracing::warn!(tenant = tenant.0, error = format!("{e:#}"), "checklist refresh failed; the poller will retry");
    }
    Ok(Ok(status))
}
