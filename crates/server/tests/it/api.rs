//! The host application's API: keys, tenant isolation, idempotent sends, the window rule as a
//! stable error code, the operator's tenants, users and sign-in links, the OpenAPI document,
//! and signed callbacks with retries.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use wabridge::accounts::{Role, TenantId};
use wabridge::templates::store::{TemplateFacts, upsert};
use wabridge::with_pool;

use crate::helpers::{TestApp, client, eventually, spawn_app, spawn_app_with};
use crate::ingest::{post_signed, tenant_with_number};

/// An API key made by the owner through the settings page.
async fn key_for(app: &TestApp, owner: &str) -> String {
    let (c, csrf) = app.signed_in(owner).await;
    let html = c.post(app.url("/api-settings/api/keys")).form(&[("_csrf", csrf.as_str()), ("label", "Booking")]).send().await.unwrap().text().await.unwrap();
    crate::helpers::element_text(&html, "new-key").expect("the key is shown once")
}

/// A customer message with the current time (the window is open).
async fn customer_writes_now(app: &TestApp, number: &str, phone: &str, wamid: &str) -> i64 {
    let ts = app.clock.now_ms() / 1000;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "4930123456", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Kim"}, "wa_id": phone}],
        "messages": [{"from": phone, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": "Hallo, geht morgen?"}}]}}]}]});
    post_signed(app, body.to_string().as_bytes()).await;
    let find = || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE wamid = $1").bind(wamid).fetch_optional(p).await).unwrap()
    };
    eventually("message stored", || async { find().await.is_some() }).await;
    find().await.unwrap()
}

/// Conversations whose last messages share an instant (Meta's times are whole seconds) are
/// paged through without one skipped or repeated — in the inbox (`Ältere`) and by the API
/// (`next_before` with `next_before_id`) — and a number is found however it is written.
#[tokio::test]
async fn conversations_of_one_instant_are_paged_through_and_numbers_found_as_written() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Seiten").await;
    let customers = 35;
    let contacts: Vec<Value> = (0..customers).map(|i| json!({"profile": {"name": format!("Kundin {i}")}, "wa_id": format!("4915100000{i:03}")})).collect();
    let messages: Vec<Value> = (0..customers)
        .map(|i| json!({"from": format!("4915100000{i:03}"), "id": format!("wamid.PAGE{i}"), "timestamp": "1764000000", "type": "text", "text": {"body": "Hallo"}}))
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "4930123456", "phone_number_id": number},
        "contacts": contacts, "messages": messages}}]}]});
    assert_eq!(post_signed(&app, body.to_string().as_bytes()).await.status(), 200);
    eventually("all applied", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM conversations").fetch_one(p).await).unwrap() == customers
    })
    .await;

    let (c, _) = app.signed_in("owner@salonseiten.test").await;
    let ids = |html: &str| -> Vec<String> { html.split("data-conversation=\"").skip(1).map(|s| s.split('"').next().unwrap().to_owned()).collect() };
    let first = c.get(app.url("/inbox")).send().await.unwrap().text().await.unwrap();
    let older = first.split("id=\"older\"").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&");
    assert!(older.contains("before_id="), "{older}");
    assert!(!first.contains("class=\"via\""), "one number: no need to say which");
    let second = c.get(app.url(&older)).send().await.unwrap().text().await.unwrap();
    assert!(!second.contains("id=\"older\""), "two pages");
    let mut seen = ids(&first);
    assert_eq!(seen.len(), 30);
    seen.extend(ids(&second));
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (35, 35), "every conversation once");

    // A number as people write it finds its customer.
    for query in ["+49 151 00000 017", "0151-00000017", "Kundin 17"] {
        let found = c.get(app.url("/inbox")).query(&[("q", query)]).send().await.unwrap().text().await.unwrap();
        assert!(found.contains(">Kundin 17<"), "{query}: {found}");
        assert_eq!(ids(&found).len(), 1, "{query}");
    }

    let key = key_for(&app, "owner@salonseiten.test").await;
    let mut seen = Vec::new();
    let mut url = app.url("/api/v1/conversations?limit=20");
    loop {
        let page: Value = c.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()));
        let (Some(before), Some(before_id)) = (page["next_before"].as_i64(), page["next_before_id"].as_i64()) else { break };
        url = app.url(&format!("/api/v1/conversations?limit=20&before={before}&before_id={before_id}"));
    }
    let distinct: std::collections::BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!((seen.len(), distinct.len()), (35, 35), "every conversation once, by the API too");
}

async fn approved_template(app: &TestApp, t: TenantId) {
    let mut tx = app.db.begin().await.unwrap();
    let components = serde_json::Value::Array(wabridge::templates::model::booking_confirmation("de").components());
    upsert(
        &mut tx,
        t,
        &format!("WABA-{}", t.0),
        &TemplateFacts { meta_template_id: Some("77"), name: "booking_confirmation", language: "de", category: Some("UTILITY"), parameter_format: Some("NAMED"), components: Some(&components), status: Some("approved"), reason: None },
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn params() -> Value {
    json!({"customer_name": "Anna", "service": "Haarschnitt", "date": "12.03.2027", "time": "14:30", "business_name": "Salon A"})
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn keys_authenticate_and_revoked_or_foreign_keys_do_not() {
    let app = spawn_app().await;
    let (tenant_a, number) = tenant_with_number(&app, "Salon A").await;
    tenant_with_number(&app, "Salon B").await;
    let c = client();
    assert_eq!(error_code(c.get(app.url("/api/v1/onboarding")).send().await.unwrap()).await, (401, "unauthorized".to_owned()));
    let wrong = format!("wbk_{}", "0".repeat(64));
    assert_eq!(c.get(app.url("/api/v1/onboarding")).bearer_auth(&wrong).send().await.unwrap().status(), 401);
    let key = key_for(&app, "owner@salona.test").await;
    let key_b = key_for(&app, "owner@salonb.test").await;
    let resp: Value = c.get(app.url("/api/v1/onboarding")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(resp["status"], "connected");
    assert_eq!(resp["numbers"][0]["phone_number_id"], number.as_str());
    // The API settings row's richer state, with the checklist it comes from.
    assert_eq!(resp["state"], wabridge::onboarding::row_status(&app.db, tenant_a).await.unwrap().0);
    assert_eq!(resp["state"], "connected", "a number attached by support with nothing left to check: {resp}");
    assert!(resp["checklist"].is_array(), "{resp}");

    // Tenant isolation: B reads none of A's conversations or messages.
    let conversation = customer_writes_now(&app, &number, "4917011111111", "wamid.ISO").await;
    let a: Value = c.get(app.url("/api/v1/conversations")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["data"].as_array().unwrap().len(), 1);
    assert_eq!(a["data"][0]["window"]["open"], true);
    let b: Value = c.get(app.url("/api/v1/conversations")).bearer_auth(&key_b).send().await.unwrap().json().await.unwrap();
    assert_eq!(b["data"].as_array().unwrap().len(), 0);
    let msgs: Value = c.get(app.url(&format!("/api/v1/conversations/{conversation}/messages"))).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    let message_id = msgs["data"][0]["id"].as_i64().unwrap();
    assert_eq!(c.get(app.url(&format!("/api/v1/conversations/{conversation}/messages"))).bearer_auth(&key_b).send().await.unwrap().status(), 404);
    assert_eq!(c.get(app.url(&format!("/api/v1/messages/{message_id}"))).bearer_auth(&key_b).send().await.unwrap().status(), 404);
    let resp = c.post(app.url("/api/v1/messages/text")).bearer_auth(&key_b).json(&json!({"conversation_id": conversation, "text": "hi"})).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    // Bad input is a 4xx with a code, never a 500.
    assert_eq!(error_code(c.get(app.url("/api/v1/conversations?limit=1000")).bearer_auth(&key).send().await.unwrap()).await, (400, "bad_limit".to_owned()));
    let resp = c.post(app.url("/api/v1/messages/text")).bearer_auth(&key).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(error_code(resp).await.0, 400);
    assert_eq!(c.get(app.url("/api/v1/costs?month=May")).bearer_auth(&key).send().await.unwrap().status(), 400);

    // The owner revokes the key; it stops working at once.
    let (o, csrf) = app.signed_in("owner@salona.test").await;
    let id = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM api_keys WHERE key_hash = $1").bind(wabridge::crypto::token_hash(&key)).fetch_one(p).await).unwrap();
    assert_eq!(o.post(app.url(&format!("/api-settings/api/keys/{id}/revoke"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap().status(), 303);
    assert_eq!(c.get(app.url("/api/v1/onboarding")).bearer_auth(&key).send().await.unwrap().status(), 401);
    // Agents do not manage keys.
    let (agent, _) = app.signed_in("agent@salona.test").await;
    assert_eq!(agent.get(app.url("/api-settings/api")).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn sends_are_idempotent_and_text_needs_the_window() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    approved_template(&app, t).await;
    let key = key_for(&app, "owner@salona.test").await;
    let c = client();
    let conversation = customer_writes_now(&app, &number, "4917022222222", "wamid.OPEN").await;
    let send = || c.post(app.url("/api/v1/messages/text")).bearer_auth(&key).header("Idempotency-Key", "booking-42-text").json(&json!({"conversation_id": conversation, "text": "Ja, gern!"})).send();
    let first = send().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["message_id"], again["message_id"]);
    assert_eq!(again["created"], false);
    let outbox = || async { with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE op = 'send'").fetch_one(p).await).unwrap() };
    assert_eq!(outbox().await, 1);

    // A new customer by phone: only a template; text is refused with a stable code.
    let resp = c.post(app.url("/api/v1/messages/text")).bearer_auth(&key).json(&json!({"to": "+49 170 3333333", "text": "Hallo"})).send().await.unwrap();
    assert_eq!(error_code(resp).await, (409, "window_closed".to_owned()));
    let booking = || {
        c.post(app.url("/api/v1/messages/template"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "booking-43")
            .json(&json!({"to": "+49 170 3333333", "template": "booking_confirmation", "language": "de", "parameters": params()}))
            .send()
    };
    let resp = booking().await.unwrap();
    assert_eq!(resp.status(), 202);
    let sent: Value = resp.json().await.unwrap();
    assert_eq!(sent["cost_preview"]["amount"], "0.0456", "Germany, utility, outside the window: {sent}");
    assert_eq!(booking().await.unwrap().status(), 200);
    assert_eq!(outbox().await, 2);
    let category = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, Option<String>>("SELECT category FROM outbox ORDER BY id DESC LIMIT 1").fetch_one(p).await).unwrap();
    assert_eq!(category.as_deref(), Some("utility"));
    let message: Value = c.get(app.url(&format!("/api/v1/messages/{}", sent["message_id"]))).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(message["type"], "template");
    assert!(message["text"].as_str().unwrap().starts_with("Hallo Anna, Ihr Termin für Haarschnitt"));
    assert_eq!(message["cost"], Value::Null, "no pricing status yet");
    // Missing parameters and unknown templates are the caller's mistakes.
    let resp = c.post(app.url("/api/v1/messages/template")).bearer_auth(&key).json(&json!({"to": "+4917033333333", "template": "booking_confirmation", "language": "de"})).send().await.unwrap();
    assert_eq!(error_code(resp).await, (422, "template_value_missing".to_owned()));
    let resp = c.post(app.url("/api/v1/messages/template")).bearer_auth(&key).json(&json!({"to": "+4917033333333", "template": "nope", "language": "de"})).send().await.unwrap();
    assert_eq!(error_code(resp).await, (404, "template_unknown".to_owned()));
}

#[tokio::test]
async fn the_operator_creates_tenants_and_users_who_sign_in_by_link() {
    let operator = "operator-key-0123456789abcdef";
    let app = spawn_app_with(&[("WABRIDGE_OPERATOR_API_KEY", operator)]).await;
    let c = client();
    assert_eq!(c.post(app.url("/api/v1/tenants")).bearer_auth("wrong").json(&json!({"name": "X"})).send().await.unwrap().status(), 401);
    let tenant: Value = c.post(app.url("/api/v1/tenants")).bearer_auth(operator).json(&json!({"name": "Salon Neu"})).send().await.unwrap().json().await.unwrap();
    let tid = tenant["id"].as_i64().unwrap();
    let resp = c.post(app.url(&format!("/api/v1/tenants/{tid}/users"))).bearer_auth(operator).json(&json!({"email": "Inhaber@Salon.test", "role": "owner"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();
    let dup = c.post(app.url(&format!("/api/v1/tenants/{tid}/users"))).bearer_auth(operator).json(&json!({"email": "inhaber@salon.test", "role": "owner"})).send().await.unwrap();
    assert_eq!(error_code(dup).await, (409, "duplicate_user".to_owned()));
    let bad = c.post(app.url(&format!("/api/v1/tenants/{tid}/users"))).bearer_auth(operator).json(&json!({"email": "x@y.test", "role": "support"})).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let link: Value = c.post(app.url(&format!("/api/v1/users/{}/sign-in-links", user["id"]))).bearer_auth(operator).send().await.unwrap().json().await.unwrap();
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.base), "{url}");
    let browser = client();
    let resp = browser.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let page = browser.get(app.url("/api-settings")).send().await.unwrap();
    assert_eq!(page.status(), 200, "signed in without a password");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 404, "the link works once");
    // Without an operator key configured, the operator API does not exist.
    let plain = spawn_app().await;
    assert_eq!(c.post(plain.url("/api/v1/tenants")).bearer_auth(operator).json(&json!({"name": "X"})).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_openapi_document_and_its_reference_page_are_served() {
    let app = spawn_app().await;
    let doc: Value = client().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/api/v1/messages/template", "/api/v1/messages/text", "/api/v1/messages/{id}", "/api/v1/conversations", "/api/v1/costs", "/api/v1/onboarding", "/api/v1/users/{id}/sign-in-links"] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let html = client().get(app.url("/api-reference")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("POST /api/v1/messages/template") && html.contains("window_closed"), "{html}");
}

#[derive(Clone, Default)]
struct Received {
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

#[tokio::test]
async fn callbacks_are_signed_and_retried_until_delivered() {
    // The host application: fails twice, then accepts.
    let received = Received::default();
    let r = received.clone();
    let receiver = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let mut calls = r.calls.lock().unwrap();
                calls.push((headers, body));
                if calls.len() <= 2 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon A").await;
    let (o, csrf) = app.signed_in("owner@salona.test").await;
    let html = o.post(app.url("/api-settings/api/callback")).form(&[("_csrf", csrf.as_str()), ("url", "not a url")]).send().await.unwrap();
    assert_eq!(html.status(), 400);
    let html = o.post(app.url("/api-settings/api/callback")).form(&[("_csrf", csrf.as_str()), ("url", &format!("http://{addr}/events"))]).send().await.unwrap().text().await.unwrap();
    let secret = crate::helpers::element_text(&html, "new-secret").expect("the secret is shown once");

    customer_writes_now(&app, &number, "4917044444444", "wamid.CB").await;
    for _ in 0..100 {
        if received.calls.lock().unwrap().len() >= 3 {
            break;
        }
        // Backoff is counted on the server's clock.
        app.clock.advance(20_000);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let calls = received.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "two failures, then delivered, then nothing more");
    let (headers, body) = &calls[2];
    assert_eq!(calls[0].1, *body, "the same event each time");
    let ts: i64 = headers["x-wabridge-timestamp"].to_str().unwrap().parse().unwrap();
    let expected = wabridge::api::callbacks::signature(&SecretString::from(secret.clone()), ts, body.as_bytes());
    assert_eq!(headers["x-wabridge-signature"].to_str().unwrap(), expected);
    assert_ne!(wabridge::api::callbacks::signature(&SecretString::from("whsec_other"), ts, body.as_bytes()), expected);
    assert_eq!(headers["x-wabridge-event"], "message.received");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["data"]["wamid"], "wamid.CB");
    assert_eq!(event["data"]["text"], "Hallo, geht morgen?");
    eventually("delivered", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, String>("SELECT state FROM callback_deliveries").fetch_one(p).await).unwrap() == "delivered"
    })
    .await;
    let html = o.get(app.url("/api-settings/api")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-state=\"delivered\"") && html.contains("message.received"), "{html}");
    let _ = Role::Owner;
}
