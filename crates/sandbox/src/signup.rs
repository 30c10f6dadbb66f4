//! Embedded Signup: the JS SDK shim (`FB.init`, `FB.login`), the popup that walks Meta's steps
//! and posts `WA_EMBEDDED_SIGNUP` to its opener, the popup's JSON endpoints, the code-for-token
//! exchange (`oauth/access_token`, 30-second single-use codes) and `debug_token`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;
use crate::errors::GraphError;
use crate::graph::Call;
use crate::world::{ReviewKind, World, as_ms, digits};

/// A popup's session: which app asked, who signed in, the SMS code sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub app_id: String,
    pub user_email: Option<String>,
    pub sms: Option<(String, String)>,
    pub created_ms: i64,
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/dialog/oauth", get(dialog))
        .route("/_signup/{session}/login", post(login))
        .route("/_signup/{session}/sms", post(sms))
        .route("/_signup/{session}/finish", post(finish))
        .route("/_signup/{session}/cancel", post(cancel))
}

/// `/sdk.js`.
pub async fn sdk_js_default(State(shared): State<Arc<Shared>>) -> Response {
    sdk_js(&shared, "en_US").into_response()
}

/// The SDK shim, as `connect.facebook.net/{locale}/sdk.js` would serve the real one.
pub fn sdk_js(shared: &Shared, locale: &str) -> impl IntoResponse + use<> {
    let locale: String = locale.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let body = include_str!("assets/sdk.js")
        .replace("{{BASE}}", &shared.base_url)
        .replace("{{LOCALE}}", &locale);
    (
        [
            ("content-type", "application/javascript; charset=utf-8"),
            ("cache-control", "no-store"),
            // Meta's snippet loads the SDK with crossorigin="anonymous": CORS must allow it.
            ("access-control-allow-origin", "*"),
        ],
        body,
    )
}

async fn dialog(State(shared): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let lang = match q.get("locale").map(String::as_str) {
        Some(l) if l.starts_with("de") => "de",
        Some(l) if l.starts_with("en") => "en",
        _ => "",
    };
    let app_ok = q.get("app_id") == Some(&shared.config.app_id);
    let config_ok = q.get("config_id") == Some(&shared.config.config_id);
    let code_ok = q.get("response_type").map(String::as_str) == Some("code");
    let problem = if !app_ok {
        "invalid_app"
    } else if !config_ok {
        "invalid_config"
    } else if !code_ok {
        "not_code"
    } else {
        ""
    };
    let session_id = {
        let mut w = shared.world();
        let id = w.ids.alnum(16);
        let now = w.now_ms();
        w.signups.insert(id.clone(), Session {
            id: id.clone(),
            app_id: q.get("app_id").cloned().unwrap_or_default(),
            user_email: None,
            sms: None,
            created_ms: now,
        });
        // Sessions are short-lived: keep the newest hundred.
        while w.signups.len() > 100 {
            let oldest = w.signups.values().min_by_key(|s| s.created_ms).map(|s| s.id.clone());
            if let Some(oldest) = oldest {
                w.signups.remove(&oldest);
            }
        }
        id
    };
    let page = include_str!("assets/popup.html")
        .replace("{{SESSION}}", &session_id)
        .replace("{{LANG}}", lang)
        .replace("{{PROBLEM}}", problem)
        .replace("{{APP_ID}}", &html_escape(q.get("app_id").map(String::as_str).unwrap_or("")));
    Html(page).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

struct SignupError(String);

impl IntoResponse for SignupError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({"error": self.0}))).into_response()
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

async fn login(State(shared): State<Arc<Shared>>, Path(sid): Path<String>, Json(req): Json<LoginRequest>) -> Result<Json<Value>, SignupError> {
    let email = req.email.trim().to_ascii_lowercase();
    if !email.contains('@') {
        return Err(SignupError("invalid_email".into()));
    }
    let mut w = shared.world();
    if !w.signups.contains_key(&sid) {
        return Err(SignupError("session_expired".into()));
    }
    if !w.users.contains_key(&email) {
        let id = w.ids.object_id();
        let name = req.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.split('@').next().unwrap_or("").to_string());
        w.users.insert(email.clone(), crate::world::FbUser { id, email: email.clone(), name, business_ids: Vec::new() });
    }
    if let Some(s) = w.signups.get_mut(&sid) {
        s.user_email = Some(email.clone());
    }
    let assets = user_assets(&w, &email);
    drop(w);
    shared.changed();
    Ok(Json(assets))
}

fn user_assets(w: &World, email: &str) -> Value {
    let Some(user) = w.users.get(email) else { return json!({}) };
    let businesses: Vec<Value> = user
        .business_ids
        .iter()
        .filter_map(|id| w.businesses.get(id))
        .map(|b| {
            let wabas: Vec<Value> = w
                .wabas
                .values()
                .filter(|x| x.business_id == b.id)
                .map(|x| {
                    let numbers: Vec<Value> = w
                        .numbers
                        .values()
                        .filter(|n| n.waba_id == x.id)
                        .map(|n| json!({"id": n.id, "display_phone_number": crate::world::display_number(&n.number), "verified_name": n.verified_name, "status": n.status}))
                        .collect();
                    json!({"id": x.id, "name": x.name, "numbers": numbers})
                })
                .collect();
            json!({"id": b.id, "name": b.name, "verification_status": b.verification_status, "wabas": wabas})
        })
        .collect();
    json!({"user": {"id": user.id, "name": user.name, "email": user.email}, "businesses": businesses})
}

#[derive(Deserialize)]
struct SmsRequest {
    number: String,
}

async fn sms(State(shared): State<Arc<Shared>>, Path(sid): Path<String>, Json(req): Json<SmsRequest>) -> Result<Json<Value>, SignupError> {
    let number = digits(&req.number);
    if number.len() < 8 {
        return Err(SignupError("invalid_number".into()));
    }
    let mut w = shared.world();
    let code = w.ids.digits(6);
    let Some(s) = w.signups.get_mut(&sid) else { return Err(SignupError("session_expired".into())) };
    s.sms = Some((number.clone(), code.clone()));
    drop(w);
    // There is no phone: the popup shows the code in its sandbox panel.
    Ok(Json(json!({"number": number, "code": code})))
}

/// Choice of an existing asset or a new one.
#[derive(Deserialize, Default)]
struct Pick {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct PhoneChoice {
    /// existing, own, meta, none, coexistence
    mode: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    verify_later: bool,
}

#[derive(Deserialize)]
struct FinishRequest {
    business: Pick,
    waba: Pick,
    phone: PhoneChoice,
    #[serde(default)]
    display_name: Option<String>,
}

/// The `version` field of the session-info message.
const SESSION_INFO_VERSION: u32 = 4;

async fn finish(State(shared): State<Arc<Shared>>, Path(sid): Path<String>, Json(req): Json<FinishRequest>) -> Result<Json<Value>, SignupError> {
    let out = {
        let mut w = shared.world();
        finish_in(&shared, &mut w, &sid, req)?
    };
    shared.changed();
    Ok(Json(out))
}

fn finish_in(shared: &Shared, w: &mut World, sid: &str, req: FinishRequest) -> Result<Value, SignupError> {
    let session = w.signups.get(sid).cloned().ok_or_else(|| SignupError("session_expired".into()))?;
    let email = session.user_email.clone().ok_or_else(|| SignupError("not_logged_in".into()))?;
    let user = w.users.get(&email).cloned().ok_or_else(|| SignupError("not_logged_in".into()))?;

    // Validate everything before creating anything.
    if let Some(id) = &req.business.id
        && !user.business_ids.contains(id)
    {
        return Err(SignupError("unknown_business".into()));
    }
    if req.business.id.is_none() && req.business.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(SignupError("business_name_required".into()));
    }
    if let Some(id) = &req.waba.id
        && w.wabas.get(id).is_none_or(|x| Some(&x.business_id) != req.business.id.as_ref())
    {
        return Err(SignupError("unknown_waba".into()));
    }
    if req.waba.id.is_none() && req.waba.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(SignupError("waba_name_required".into()));
    }
    let mode = req.phone.mode.as_str();
    let own_number = req.phone.number.as_deref().map(digits).unwrap_or_default();
    match mode {
        "existing" => {
            let ok = req.phone.id.as_ref().and_then(|id| w.numbers.get(id)).is_some_and(|n| Some(&n.waba_id) == req.waba.id.as_ref());
            if !ok {
                return Err(SignupError("unknown_phone_number".into()));
            }
        }
        "own" | "coexistence" => {
            if own_number.len() < 8 {
                return Err(SignupError("invalid_number".into()));
            }
            if w.numbers.values().any(|n| n.number == own_number) {
                return Err(SignupError("number_in_use".into()));
            }
            if mode == "own" && !req.phone.verify_later {
                let expected = session.sms.as_ref().filter(|(n, _)| n == &own_number).map(|(_, c)| c.clone());
                if expected.is_none() || expected != req.phone.code {
                    return Err(SignupError("wrong_code".into()));
                }
            }
        }
        "meta" | "none" => {}
        _ => return Err(SignupError("invalid_phone_mode".into())),
    }
    let display_name = req.display_name.clone().filter(|n| !n.trim().is_empty());
    if matches!(mode, "own" | "meta") && display_name.is_none() {
        return Err(SignupError("display_name_required".into()));
    }

    let business_id = match &req.business.id {
        Some(id) => id.clone(),
        None => {
            let id = w.new_business(req.business.name.as_deref().unwrap_or("").trim(), "pending");
            if let Some(u) = w.users.get_mut(&email) {
                u.business_ids.push(id.clone());
            }
            crate::reviews::start(shared, w, ReviewKind::BusinessVerification, &id);
            id
        }
    };
    let waba_id = match &req.waba.id {
        Some(id) => id.clone(),
        None => {
            let id = w.new_waba(&business_id, req.waba.name.as_deref().unwrap_or("").trim(), "PENDING");
            crate::reviews::start(shared, w, ReviewKind::WabaReview, &id);
            id
        }
    };
    let mut phone_number_id = None;
    let event = match mode {
        "none" => "FINISH_ONLY_WABA",
        "coexistence" => {
            let name = w.businesses.get(&business_id).map(|b| b.name.clone()).unwrap_or_default();
            let id = w.new_number(&waba_id, &own_number, &name);
            if let Some(n) = w.numbers.get_mut(&id) {
                n.is_on_biz_app = true;
                n.code_verification_status = "VERIFIED".into();
                n.status = "CONNECTED".into();
                n.name_status = "APPROVED".into();
            }
            phone_number_id = Some(id);
            "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
        }
        "existing" => {
            phone_number_id = req.phone.id.clone();
            "FINISH"
        }
        _ => {
            let number = if mode == "meta" { w.meta_number() } else { own_number.clone() };
            let id = w.new_number(&waba_id, &number, display_name.as_deref().unwrap_or(""));
            if let Some(n) = w.numbers.get_mut(&id) {
                n.meta_provided = mode == "meta";
                if mode == "meta" || !req.phone.verify_later {
                    n.code_verification_status = "VERIFIED".into();
                }
            }
            crate::reviews::start(shared, w, ReviewKind::DisplayName, &id);
            phone_number_id = Some(id);
            "FINISH"
        }
    };

    let token = w.new_token(&shared.config.app_id, &user.id, vec![waba_id.clone()], shared.config.token_ttl);
    let code = w.ids.code();
    let now = w.now_ms();
    w.codes.insert(code.clone(), crate::world::SignupCode { code: code.clone(), token, created_ms: now, used: false });
    if let Some(s) = w.signups.get_mut(sid) {
        s.sms = None;
    }
    let waba_info = json!({"waba_id": waba_id, "owner_business_id": business_id, "partner_app_id": shared.config.app_id});
    let partner = shared.config.partner_business_id.clone();
    w.enqueue(&partner, "account_update", json!({"event": "PARTNER_APP_INSTALLED", "waba_info": waba_info}), true);

    let data = match event {
        "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING" => json!({"waba_id": waba_id}),
        "FINISH_ONLY_WABA" => json!({"waba_id": waba_id, "business_id": business_id}),
        _ => json!({"phone_number_id": phone_number_id, "waba_id": waba_id, "business_id": business_id}),
    };
    let message = json!({"data": data, "type": "WA_EMBEDDED_SIGNUP", "event": event, "version": SESSION_INFO_VERSION});
    let auth_response = json!({
        "authResponse": {
            "code": code,
            "userID": user.id,
            "expiresIn": 0,
            "graphDomain": "facebook",
            "data_access_expiration_time": now / 1000 + 90 * 24 * 3600,
        },
        "status": "connected",
    });
    Ok(json!({"message": message, "auth_response": auth_response}))
}

#[derive(Deserialize)]
struct CancelRequest {
    current_step: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

async fn cancel(State(shared): State<Arc<Shared>>, Path(sid): Path<String>, Json(req): Json<CancelRequest>) -> Result<Json<Value>, SignupError> {
    let mut w = shared.world();
    if w.signups.remove(&sid).is_none() {
        return Err(SignupError("session_expired".into()));
    }
    let data = match (&req.error_code, &req.error_message) {
        (Some(code), Some(message)) => json!({
            "error_message": message,
            "error_code": code,
            "session_id": sid,
            "timestamp": crate::clock::secs_string(w.now_ms()),
        }),
        _ => json!({"current_step": req.current_step}),
    };
    drop(w);
    shared.changed();
    let message = json!({"data": data, "type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "version": SESSION_INFO_VERSION});
    Ok(Json(json!({"message": message, "auth_response": {"authResponse": null, "status": "unknown"}})))
}

/// `GET /oauth/access_token?client_id&client_secret&code`: the business token, once, within
/// the code's lifetime.
pub fn exchange(shared: &Shared, w: &mut World, call: &Call) -> Result<Value, GraphError> {
    let q = |k: &str| call.query.get(k).cloned().or_else(|| call.str_param(k));
    if q("client_id").as_deref() != Some(shared.config.app_id.as_str()) {
        return Err(GraphError::oauth(101, None, "Error validating application. Invalid application ID."));
    }
    if q("client_secret").as_deref() != Some(shared.config.app_secret.as_str()) {
        return Err(GraphError::oauth(1, None, "Error validating client secret."));
    }
    let Some(code) = q("code") else {
        return Err(GraphError::oauth(100, None, "Missing authorization code"));
    };
    let now = w.now_ms();
    let ttl = as_ms(shared.config.code_ttl);
    let Some(record) = w.codes.get_mut(&code) else {
        return Err(GraphError::oauth(100, None, "Invalid verification code format."));
    };
    if record.used {
        return Err(GraphError::oauth(100, Some(36009), "This authorization code has been used."));
    }
    if now - record.created_ms > ttl {
        return Err(GraphError::oauth(100, Some(36007), "This authorization code has expired."));
    }
    record.used = true;
    let token = record.token.clone();
    let mut body = json!({"access_token": token, "token_type": "bearer"});
    if let Some(expires) = w.tokens.get(&token).and_then(|t| t.expires_ms) {
        body["expires_in"] = json!((expires - now) / 1000);
    }
    Ok(body)
}

/// `GET /debug_token?input_token=…` with an app token (`APP_ID|APP_SECRET`).
pub fn debug_token(shared: &Shared, w: &World, call: &Call) -> Result<Value, GraphError> {
    let app_token = format!("{}|{}", shared.config.app_id, shared.config.app_secret);
    let caller_ok = call.bearer.as_deref() == Some(app_token.as_str())
        || call.bearer.as_ref().is_some_and(|t| w.tokens.get(t).is_some_and(|t| !t.revoked));
    if !caller_ok {
        return Err(GraphError::token("Invalid OAuth access token - Cannot parse access token", None));
    }
    let Some(input) = call.query.get("input_token") else {
        return Err(GraphError::oauth(100, None, "The parameter input_token is required"));
    };
    let Some(t) = w.tokens.get(input) else {
        return Ok(json!({"data": {
            "error": {"code": 190, "message": "Invalid OAuth access token."},
            "is_valid": false,
            "scopes": [],
        }}));
    };
    let now = w.now_ms();
    let valid = !t.revoked && t.expires_ms.is_none_or(|e| e > now);
    let targets: Vec<Value> = t.waba_ids.iter().map(|id| json!(id)).collect();
    let mut data = json!({
        "app_id": t.app_id,
        "type": "SYSTEM_USER",
        "application": "wabridge",
        "data_access_expires_at": 0,
        "expires_at": t.expires_ms.map_or(0, |e| e / 1000),
        "is_valid": valid,
        "issued_at": t.issued_ms / 1000,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging", "public_profile"],
        "granular_scopes": [
            {"scope": "whatsapp_business_management", "target_ids": targets},
            {"scope": "whatsapp_business_messaging", "target_ids": targets},
        ],
        "user_id": t.user_id,
    });
    if !valid {
        data["error"] = json!({"code": 190, "subcode": if t.revoked { 460 } else { 463 }, "message": "Error validating access token."});
    }
    Ok(json!({ "data": data }))
}
