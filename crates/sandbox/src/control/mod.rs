//! The control API under `/_sandbox/…` (documented in the README) and the page where a person
//! plays the customers.

pub mod api;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Shared;
use crate::world::{ReviewKind, World};
use api::*;

/// An error of the control API: `{"error": "..."}` with a 4xx status.
pub struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn not_found(what: &str) -> ControlError {
    ControlError(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn bad(msg: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, msg.into())
}

type Shared_ = State<Arc<Shared>>;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox", get(customer_page))
        .route("/_sandbox/", get(customer_page))
        .route("/_sandbox/customers", get(customer_page))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/tenants", post(create_tenant))
        .route("/_sandbox/customers/messages", post(customer_message))
        .route("/_sandbox/customers/{wa_id}", post(customer_update))
        .route("/_sandbox/messages", get(sent_messages))
        .route("/_sandbox/messages/{wamid}/status", post(message_status))
        .route("/_sandbox/inbound", get(inbound))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/_sandbox/outage", post(start_outage).delete(end_outage))
        .route("/_sandbox/reviews", get(reviews))
        .route("/_sandbox/reviews/{id}/complete", post(complete_review))
        .route("/_sandbox/outcomes", post(plan_outcome))
        .route("/_sandbox/numbers/{id}", get(number).post(patch_number))
        .route("/_sandbox/templates/{id}", post(change_template))
        .route("/_sandbox/wabas/{id}/partner_removed", post(partner_removed))
        .route("/_sandbox/tokens/{token}/revoke", post(revoke_token))
        .route("/_sandbox/tokens/{token}/expire", post(expire_token))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/settings", post(settings))
        .route("/_sandbox/webhooks", post(webhook_settings))
        .route("/_sandbox/webhooks/deliveries", get(deliveries))
        .route("/_sandbox/webhooks/flush", post(flush))
}

async fn customer_page(Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let lang = if q.get("lang").is_some_and(|l| l == "en") { "en" } else { "de" };
    Html(include_str!("../assets/customers.html").replace("{{LANG}}", lang))
}

async fn state(State(shared): Shared_) -> Json<Value> {
    let w = shared.world();
    let numbers: Vec<Value> = w
        .numbers
        .values()
        .map(|n| {
            json!({
                "id": n.id, "waba_id": n.waba_id, "number": n.number, "verified_name": n.verified_name,
                "status": n.status, "code_verification_status": n.code_verification_status,
                "name_status": n.name_status, "is_on_biz_app": n.is_on_biz_app,
            })
        })
        .collect();
    let wabas: Vec<Value> = w
        .wabas
        .values()
        .map(|x| json!({"id": x.id, "name": x.name, "business_id": x.business_id, "account_review_status": x.account_review_status,
            "subscribed_apps": x.subscribed_apps.iter().map(|a| a.app_id.clone()).collect::<Vec<_>>()}))
        .collect();
    let businesses: Vec<Value> = w
        .businesses
        .values()
        .map(|b| json!({"id": b.id, "name": b.name, "verification_status": b.verification_status}))
        .collect();
    let templates: Vec<Value> = w
        .templates
        .values()
        .map(|t| json!({"id": t.id, "waba_id": t.waba_id, "name": t.name, "language": t.language, "status": t.status, "category": t.category}))
        .collect();
    let customers: Vec<Value> = w.customers.values().map(|c| json!(c)).collect();
    Json(json!({
        "now_ms": w.now_ms(),
        "businesses": businesses, "wabas": wabas, "numbers": numbers, "templates": templates,
        "customers": customers,
        "webhook_url": w.webhooks.url,
    }))
}

async fn create_tenant(State(shared): Shared_, Json(req): Json<TenantRequest>) -> Result<Json<TenantFixture>, ControlError> {
    let fixture = {
        let mut w = shared.world();
        create_tenant_in(&shared, &mut w, &req)?
    };
    shared.changed();
    Ok(Json(fixture))
}

/// Creates business, WABA, number and token; reviews approved unless asked to stay pending.
pub fn create_tenant_in(shared: &Shared, w: &mut World, req: &TenantRequest) -> Result<TenantFixture, ControlError> {
    if let Some(pin) = &req.registered_with_pin
        && !(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("registered_with_pin must be 6 digits"));
    }
    let name = req.business_name.clone().unwrap_or_else(|| "Sandbox GmbH".into());
    let pending = req.pending_reviews;
    let business_id = w.new_business(&name, if pending { "pending" } else { "verified" });
    let waba_id = w.new_waba(&business_id, &name, if pending { "PENDING" } else { "APPROVED" });
    let number = match &req.number {
        Some(n) => crate::world::digits(n),
        None => w.meta_number(),
    };
    if w.numbers.values().any(|n| n.number == number) {
        return Err(bad(format!("number {number} already exists in the sandbox")));
    }
    let display = req.display_name.clone().unwrap_or_else(|| name.clone());
    let pnid = w.new_number(&waba_id, &number, &display);
    if let Some(n) = w.numbers.get_mut(&pnid) {
        if !req.unverified {
            n.code_verification_status = "VERIFIED".into();
        }
        if !pending {
            n.name_status = "APPROVED".into();
            n.quality_rating = "GREEN".into();
        }
        if let Some(pin) = &req.registered_with_pin {
            n.pin = Some(pin.clone());
            n.status = "CONNECTED".into();
        }
    }
    if pending {
        crate::reviews::start(shared, w, ReviewKind::BusinessVerification, &business_id);
        crate::reviews::start(shared, w, ReviewKind::WabaReview, &waba_id);
        crate::reviews::start(shared, w, ReviewKind::DisplayName, &pnid);
    }
    let user_id = w.ids.object_id();
    let token = w.new_token(&shared.config.app_id, &user_id, vec![waba_id.clone()], shared.config.token_ttl);
    Ok(TenantFixture { business_id, waba_id, phone_number_id: pnid, number, access_token: token })
}

async fn customer_message(State(shared): Shared_, Json(req): Json<CustomerMessage>) -> Result<Json<InboundReceipt>, ControlError> {
    let receipt = crate::messages::customer_writes(&mut shared.world(), &shared.base_url, &req).map_err(bad)?;
    shared.changed();
    Ok(Json(receipt))
}

#[derive(serde::Deserialize)]
struct CustomerPatch {
    name: Option<String>,
    username: Option<String>,
    hide_phone: Option<bool>,
    reachable: Option<bool>,
}

async fn customer_update(State(shared): Shared_, Path(wa_id): Path<String>, Json(p): Json<CustomerPatch>) -> Json<Value> {
    let mut w = shared.world();
    let c = w.customer(&crate::world::digits(&wa_id));
    if let Some(name) = p.name {
        c.name = name;
    }
    if let Some(username) = p.username {
        c.username = (!username.is_empty()).then_some(username);
    }
    if let Some(hide) = p.hide_phone {
        c.hide_phone = hide;
    }
    if let Some(reachable) = p.reachable {
        c.reachable = reachable;
    }
    let c = json!(c);
    drop(w);
    shared.changed();
    Json(c)
}

async fn sent_messages(State(shared): Shared_, Query(q): Query<HashMap<String, String>>) -> Json<Vec<SentMessage>> {
    let w = shared.world();
    let list = w
        .outbound
        .iter()
        .filter(|m| q.get("phone_number_id").is_none_or(|p| p == &m.phone_number_id))
        .filter(|m| q.get("wa_id").is_none_or(|p| p == &m.wa_id))
        .map(|m| SentMessage {
            wamid: m.wamid.clone(),
            phone_number_id: m.phone_number_id.clone(),
            input: m.input.clone(),
            wa_id: m.wa_id.clone(),
            r#type: m.r#type.clone(),
            request: m.request.clone(),
            biz_opaque_callback_data: m.biz_opaque_callback_data.clone(),
            statuses: m
                .statuses
                .iter()
                .map(|s| StatusInfo { status: s.status.clone(), at_ms: s.at_ms, error_code: s.error_code })
                .collect(),
            pricing_type: m.pricing_type.clone(),
            pricing_category: m.pricing_category.clone(),
            created_ms: m.created_ms,
        })
        .collect();
    Json(list)
}

async fn message_status(State(shared): Shared_, Path(wamid): Path<String>, Json(cmd): Json<StatusCommand>) -> Result<Json<Value>, ControlError> {
    let applied = {
        let mut w = shared.world();
        if !w.outbound.iter().any(|m| m.wamid == wamid) {
            return Err(not_found("message"));
        }
        match cmd.status.as_str() {
            "delivered" | "read" => crate::messages::apply_status(&mut w, &wamid, &cmd.status, None),
            "failed" => crate::messages::apply_status(&mut w, &wamid, "failed", Some(cmd.code.unwrap_or(131026))),
            other => return Err(bad(format!("unknown status {other}"))),
        }
    };
    shared.changed();
    Ok(Json(json!({"applied": applied})))
}

async fn inbound(State(shared): Shared_, Query(q): Query<HashMap<String, String>>) -> Json<Vec<Value>> {
    let w = shared.world();
    Json(
        w.inbound
            .iter()
            .filter(|m| q.get("phone_number_id").is_none_or(|p| p == &m.phone_number_id))
            .map(|m| json!({"wamid": m.wamid, "phone_number_id": m.phone_number_id, "wa_id": m.wa_id, "type": m.r#type, "at_ms": m.at_ms, "message": m.message}))
            .collect(),
    )
}

async fn requests(State(shared): Shared_) -> Json<Vec<ReceivedRequest>> {
    Json(shared.world().requests.iter().cloned().collect())
}

async fn clear_requests(State(shared): Shared_) -> StatusCode {
    shared.world().requests.clear();
    StatusCode::NO_CONTENT
}

async fn faults(State(shared): Shared_) -> Json<Vec<Fault>> {
    Json(shared.world().faults.clone())
}

async fn add_fault(State(shared): Shared_, Json(fault): Json<Fault>) -> Result<StatusCode, ControlError> {
    if fault.code.is_none() && fault.delay_ms.is_none() {
        return Err(bad("a fault needs `code` or `delay_ms`"));
    }
    shared.world().faults.push(fault);
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(shared): Shared_) -> StatusCode {
    shared.world().faults.clear();
    shared.changed();
    StatusCode::NO_CONTENT
}

async fn start_outage(State(shared): Shared_, Json(req): Json<OutageRequest>) -> StatusCode {
    let mut w = shared.world();
    let until_ms = w.now_ms() + i64::try_from(req.duration_ms).unwrap_or(i64::MAX / 2);
    w.outage = Some(Outage { mode: req.mode, until_ms, hang_ms: req.hang_ms.unwrap_or(30_000) });
    drop(w);
    shared.changed();
    StatusCode::NO_CONTENT
}

async fn end_outage(State(shared): Shared_) -> StatusCode {
    shared.world().outage = None;
    shared.changed();
    StatusCode::NO_CONTENT
}

async fn reviews(State(shared): Shared_) -> Json<Vec<ReviewInfo>> {
    let w = shared.world();
    Json(
        w.reviews
            .values()
            .map(|r| ReviewInfo { id: r.id.clone(), kind: r.kind, target_id: r.target_id.clone(), due_ms: r.due_ms })
            .collect(),
    )
}

async fn complete_review(State(shared): Shared_, Path(id): Path<String>, Json(d): Json<ReviewDecision>) -> Result<StatusCode, ControlError> {
    let done = {
        let mut w = shared.world();
        let kind = w.reviews.get(&id).map(|r| (r.kind, r.target_id.clone()));
        match kind {
            Some((kind, target)) => crate::reviews::complete(
                &mut w,
                &id,
                Some(PlannedOutcome { kind, target_id: Some(target), approve: d.approve, reason: d.reason }),
            ),
            None => false,
        }
    };
    if !done {
        return Err(not_found("review"));
    }
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn plan_outcome(State(shared): Shared_, Json(p): Json<PlannedOutcome>) -> StatusCode {
    shared.world().planned.push(p);
    shared.changed();
    StatusCode::NO_CONTENT
}

fn number_info(w: &World, id: &str) -> Option<NumberInfo> {
    let n = w.numbers.get(id)?;
    let now = w.now_ms();
    Some(NumberInfo {
        id: n.id.clone(),
        waba_id: n.waba_id.clone(),
        number: n.number.clone(),
        verified_name: n.verified_name.clone(),
        status: n.status.clone(),
        code_verification_status: n.code_verification_status.clone(),
        name_status: n.name_status.clone(),
        pending_code: n.pending_code.clone(),
        has_pin: n.pin.is_some(),
        register_calls_72h: n.register_calls.iter().filter(|t| now - **t < 72 * 3600 * 1000).count(),
    })
}

async fn number(State(shared): Shared_, Path(id): Path<String>) -> Result<Json<NumberInfo>, ControlError> {
    number_info(&shared.world(), &id).map(Json).ok_or_else(|| not_found("phone number"))
}

async fn patch_number(State(shared): Shared_, Path(id): Path<String>, Json(p): Json<NumberPatch>) -> Result<Json<NumberInfo>, ControlError> {
    let mut w = shared.world();
    let Some(n) = w.numbers.get_mut(&id) else { return Err(not_found("phone number")) };
    if let Some(pin) = p.pin {
        n.pin = Some(pin);
    }
    if let Some(mps) = p.throughput_mps {
        n.throughput_mps = Some(mps);
    }
    if let Some(q) = p.quality_rating {
        n.quality_rating = q;
    }
    let info = number_info(&w, &id).ok_or_else(|| not_found("phone number"))?;
    drop(w);
    shared.changed();
    Ok(Json(info))
}

async fn change_template(State(shared): Shared_, Path(id): Path<String>, Json(c): Json<TemplateChange>) -> Result<StatusCode, ControlError> {
    let mut w = shared.world();
    let Some(before) = w.templates.get(&id).cloned() else { return Err(not_found("template")) };
    if let Some(quality) = &c.quality {
        if let Some(t) = w.templates.get_mut(&id) {
            t.quality_score = quality.clone();
        }
        let value = json!({
            "previous_quality_score": before.quality_score,
            "new_quality_score": quality,
            "message_template_id": id.parse::<u64>().unwrap_or_default(),
            "message_template_name": before.name,
            "message_template_language": before.language,
        });
        w.enqueue(&before.waba_id, "message_template_quality_update", value, true);
    }
    if let Some(category) = &c.category {
        let category = category.to_ascii_uppercase();
        if let Some(t) = w.templates.get_mut(&id) {
            t.category = category.clone();
        }
        let value = json!({
            "message_template_id": id.parse::<u64>().unwrap_or_default(),
            "message_template_name": before.name,
            "message_template_language": before.language,
            "previous_category": before.category,
            "new_category": category,
        });
        w.enqueue(&before.waba_id, "template_category_update", value, true);
    }
    if let Some(event) = &c.event {
        let event = event.to_ascii_uppercase();
        let status = match event.as_str() {
            "REINSTATED" | "UNPAUSE" => "APPROVED".to_string(),
            other => other.to_string(),
        };
        let Some(t) = w.templates.get_mut(&id) else { return Err(not_found("template")) };
        t.status = status;
        let t = t.clone();
        let extra = match event.as_str() {
            "PAUSED" => Some(("other_info", json!({"title": "FIRST_PAUSE", "description": "Your WhatsApp message template has been paused for 3 hours because it had issues."}))),
            "DISABLED" => Some(("other_info", json!({"title": "DISABLED", "description": "Your WhatsApp message template has been disabled because of ongoing quality issues."}))),
            "REINSTATED" => Some(("other_info", json!({"title": "UNPAUSE", "description": "Your WhatsApp message template has been unpaused."}))),
            _ => None,
        };
        crate::templates::status_webhook(&mut w, &t, &event, "NONE", extra);
    }
    drop(w);
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn partner_removed(State(shared): Shared_, Path(id): Path<String>) -> Result<StatusCode, ControlError> {
    let mut w = shared.world();
    let Some(waba) = w.wabas.get_mut(&id) else { return Err(not_found("WABA")) };
    waba.subscribed_apps.clear();
    let owner = waba.business_id.clone();
    let value = json!({"event": "PARTNER_REMOVED", "waba_info": {"waba_id": id, "owner_business_id": owner}});
    let partner = shared.config.partner_business_id.clone();
    w.enqueue(&partner, "account_update", value, true);
    // The partner loses access: tokens for this WABA stop working for it.
    for t in w.tokens.values_mut() {
        t.waba_ids.retain(|x| x != &id);
    }
    drop(w);
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_token(State(shared): Shared_, Path(token): Path<String>) -> Result<StatusCode, ControlError> {
    let mut w = shared.world();
    let Some(t) = w.tokens.get_mut(&token) else { return Err(not_found("token")) };
    t.revoked = true;
    drop(w);
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_token(State(shared): Shared_, Path(token): Path<String>) -> Result<StatusCode, ControlError> {
    let mut w = shared.world();
    let now = w.now_ms();
    let Some(t) = w.tokens.get_mut(&token) else { return Err(not_found("token")) };
    t.expires_ms = Some(now - 1000);
    drop(w);
    shared.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn advance_clock(State(shared): Shared_, Json(a): Json<ClockAdvance>) -> Json<Value> {
    let now = {
        let mut w = shared.world();
        w.clock_offset_ms += a.seconds * 1000;
        w.now_ms()
    };
    shared.changed();
    Json(json!({"now_ms": now}))
}

async fn settings(State(shared): Shared_, Json(p): Json<SettingsPatch>) -> Json<Value> {
    let mut w = shared.world();
    if let Some(sync) = p.window_refusal_sync {
        w.window_refusal_sync = sync;
    }
    if let Some(ms) = p.delivered_after_ms {
        w.delivered_after_ms = (ms >= 0).then_some(ms);
    }
    if let Some(ms) = p.read_after_ms {
        w.read_after_ms = (ms >= 0).then_some(ms);
    }
    let out = json!({
        "window_refusal_sync": w.window_refusal_sync,
        "delivered_after_ms": w.delivered_after_ms,
        "read_after_ms": w.read_after_ms,
    });
    drop(w);
    shared.changed();
    Json(out)
}

async fn webhook_settings(State(shared): Shared_, Json(p): Json<WebhookPatch>) -> StatusCode {
    let mut w = shared.world();
    if let Some(url) = p.url {
        w.set_webhook_url((!url.is_empty()).then_some(url));
    }
    if let Some(d) = p.duplicate {
        w.webhooks.duplicate = d;
    }
    if let Some(r) = p.reorder {
        w.webhooks.reorder = r;
    }
    drop(w);
    shared.changed();
    StatusCode::NO_CONTENT
}

async fn deliveries(State(shared): Shared_) -> Json<Vec<DeliveryAttempt>> {
    Json(shared.world().webhooks.log.iter().cloned().collect())
}

/// Waits until every due status and review has run and the webhook sender is idle.
async fn flush(State(shared): Shared_, body: Option<Json<Value>>) -> Json<FlushResult> {
    let timeout_ms = body.and_then(|b| b.get("timeout_ms").and_then(Value::as_u64)).unwrap_or(5000);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        crate::reviews::run_due(&shared);
        shared.webhook_wake.notify_one();
        let idle = crate::webhooks::idle(&shared);
        if idle || tokio::time::Instant::now() >= deadline {
            let w = shared.world();
            return Json(FlushResult { idle, pending: w.webhooks.pending.len(), retrying: w.webhooks.retrying.len() });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
