//! Disconnect and token health (issue 6, item 7) and support's connection by hand (item 6),
//! against a real sandbox: the owner's disconnect, `PARTNER_REMOVED`, `DISABLED_UPDATE`, a
//! revoked token seen by the outbox, an expiring token watched by the poller.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use wabridge::accounts::{Role, TenantId};
use wabridge::onboarding::{health, store};
use wabridge_sandbox::{SandboxConfig, TenantRequest, WebhookPatch};

use crate::helpers::{BareSandboxApp as SandboxApp, TestApp, element_text, eventually, spawn_app_with_bare_sandbox};
use crate::onboarding::{Owner, complete, owner, page, post_pin, signup, start};

/// An owner with a connected Meta number; returns the WABA and number ids.
async fn connected(s: &SandboxApp, o: &Owner, email: &str) -> (String, String) {
    let app = &s.app;
    post_pin(app, o, crate::onboarding::PIN).await;
    let (_, started) = start(app, o).await;
    let (code, message) = signup(s, email, json!({"mode": "meta"})).await;
    let (_, done) = complete(app, o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "connected", "{done}");
    (message["data"]["waba_id"].as_str().unwrap().to_owned(), message["data"]["phone_number_id"].as_str().unwrap().to_owned())
}

async fn number_status(app: &TestApp, tenant: TenantId) -> String {
    store::numbers(&app.db, tenant).await.unwrap()[0].status.clone()
}

async fn row_status(app: &TestApp, o: &Owner) -> String {
    let html = o.c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    element_text(&html, "whatsapp-status").unwrap_or_default()
}

async fn notifications_with(app: &TestApp, tenant: TenantId, key: &str) -> i64 {
    let preview = format!("@key:onboarding.health.notify.{key}");
    wabridge::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notifications WHERE tenant_id = $1 AND preview = $2")
        .bind(tenant)
        .bind(&preview)
        .fetch_one(p)
        .await)
    .unwrap()
}

async fn live_status_events(app: &TestApp, tenant: TenantId) -> Vec<String> {
    let rows = wabridge::with_pool!(app.db.live_read(), |p| sqlx::query_as::<_, wabridge::live::StoredEvent>(
        "SELECT id, tenant_id, user_id, kind, payload FROM live_events WHERE tenant_id = $1 ORDER BY id"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
    .unwrap();
    rows.iter().flat_map(wabridge::live::StoredEvent::events).filter(|(kind, _)| kind == "whatsapp_status").map(|(_, payload)| payload.to_string()).collect()
}

/// A customer writes to the number; returns the conversation id.
async fn customer_conversation(s: &SandboxApp, tenant: TenantId, pn: &str) -> i64 {
    s.sandbox.control().customer_text(pn, "4917611112222", "Hallo", None).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    let app = &s.app;
    let find = || async {
        wabridge::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE tenant_id = $1").bind(tenant).fetch_optional(p).await).unwrap()
    };
    eventually("the conversation exists", || async { find().await.is_some() }).await;
    find().await.unwrap()
}

async fn reply(app: &TestApp, o: &Owner, conversation: i64, text: &str) -> String {
    let r = o.c.post(app.url(&format!("/inbox/{conversation}/reply"))).form(&[("_csrf", o.csrf.as_str()), ("text", text)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_owner_disconnects_and_sends_are_refused_until_a_new_signup() {
    let s = spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[]).await;
    let app = &s.app;
    let o = owner(app, "Trennen").await;
    app.user(Some(o.tenant), "agent@trennen.test", Role::Agent).await;
    let (waba, pn) = connected(&s, &o, "trennen@salon.test").await;
    let conversation = customer_conversation(&s, o.tenant, &pn).await;
    assert!(page(app, &o).await.contains("id=\"disconnect-form\""));

    // Without the confirmation nothing happens; agents may not disconnect.
    let r = o.c.post(app.url("/api-settings/whatsapp/disconnect")).form(&[("_csrf", o.csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let (ac, acsrf) = app.signed_in("agent@trennen.test").await;
    let r = ac.post(app.url("/api-settings/whatsapp/disconnect")).form(&[("_csrf", acsrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(number_status(app, o.tenant).await, "connected");

    let r = o.c.post(app.url("/api-settings/whatsapp/disconnect")).form(&[("_csrf", o.csrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // At Meta: deregistered and unsubscribed.
    assert_eq!(s.sandbox.control().number(&pn).await.unwrap().status, "DISCONNECTED");
    let state = s.sandbox.control().state().await.unwrap();
    let w = state["wabas"].as_array().unwrap().iter().find(|w| w["id"] == waba.as_str()).unwrap();
    assert_eq!(w["subscribed_apps"], json!([]));
    // Here: the token is gone, the number disconnected, the row says so, and sends are refused.
    assert!(store::sealed_token(&app.db, o.tenant, &waba).await.unwrap().is_none());
    assert_eq!(number_status(app, o.tenant).await, health::DISCONNECTED);
    assert_eq!(row_status(app, &o).await, "Getrennt");
    let html = page(app, &o).await;
    assert_eq!(element_text(&html, "connection-health-title").as_deref(), Some("WhatsApp ist getrennt"));
    assert!(html.contains("id=\"fb-login\""), "a new signup is offered");
    assert!(!html.contains("id=\"disconnect-form\""));
    let location = reply(app, &o, conversation, "Noch da?").await;
    assert!(location.ends_with("notice=not_connected"), "{location}");
    assert_eq!(notifications_with(app, o.tenant, "disconnected").await, 2, "owner and agent are told");
    assert!(live_status_events(app, o.tenant).await.iter().any(|e| e.contains("disconnected")));

    // A new signup with the same WABA connects again and clears the mark.
    let (_, started) = start(app, &o).await;
    let session = crate::onboarding::open_popup(&s).await;
    crate::onboarding::popup(&s, &session, "login", json!({"email": "trennen@salon.test", "name": "Owner"})).await;
    let out = crate::onboarding::popup(
        &s,
        &session,
        "finish",
        json!({"business": {"id": w["business_id"]}, "waba": {"id": waba}, "phone": {"mode": "existing", "id": pn}, "display_name": "Salon Sonne"}),
    )
    .await;
    let code = out["auth_response"]["authResponse"]["code"].as_str().map(str::to_owned);
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&out["message"])).await;
    assert_eq!(done["status"], "connected", "{done}");
    assert_eq!(number_status(app, o.tenant).await, "connected");
    assert!(health::accounts(&app.db, o.tenant).await.unwrap().iter().all(|a| a.health.is_none() && a.has_token));
    let location = reply(app, &o, conversation, "Wieder da").await;
    assert!(!location.contains("notice="), "{location}");
}

#[tokio::test]
async fn partner_removed_marks_the_connection_once_and_tells_every_user() {
    let s = spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[]).await;
    let app = &s.app;
    let o = owner(app, "Entfernt").await;
    app.user(Some(o.tenant), "agent@entfernt.test", Role::Agent).await;
    let (waba, _) = connected(&s, &o, "entfernt@salon.test").await;
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    // Meta delivers every body twice: the mark and the notifications happen once.
    s.sandbox.control().webhooks(&WebhookPatch { duplicate: Some(true), ..WebhookPatch::default() }).await.unwrap();
    s.sandbox.control().partner_removed(&waba).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    eventually("the number is marked", || async { number_status(app, o.tenant).await == health::PARTNER_REMOVED }).await;
    assert_eq!(row_status(app, &o).await, "Zugriff entzogen");
    assert_eq!(notifications_with(app, o.tenant, "partner_removed").await, 2);
    assert_eq!(live_status_events(app, o.tenant).await.len(), 1);
    let alerts = store::alerts(&app.db, Some(o.tenant)).await.unwrap();
    assert!(alerts.iter().any(|a| a.kind == "partner_removed"), "{alerts:?}");
    assert!(store::emails(&app.db, o.tenant).await.unwrap().iter().any(|e| e.body.contains("Zugriff entzogen")));
    let html = page(app, &o).await;
    assert!(element_text(&html, "connection-health-title").unwrap().contains("Zugriff"));
    // Support's tenant list says the same.
    app.user(None, "support@entfernt.test", Role::Support).await;
    let (support, _) = app.signed_in("support@entfernt.test").await;
    let list = support.get(app.url("/support")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("status-partner_removed") && list.contains("Zugriff entzogen"), "{list}");
}

fn signed(body: &Value) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = wabridge_cloud_api::sign(&SecretString::from("sandbox-app-secret"), &bytes);
    (bytes, signature)
}

async fn post_account_update(app: &TestApp, waba: &str, value: Value) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": 1764000000, "changes": [{"field": "account_update", "value": value}]}]});
    let (bytes, signature) = signed(&body);
    let r = crate::helpers::client()
        .post(app.url("/webhooks/whatsapp"))
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_banned_account_is_marked_and_a_reinstatement_reconnects_it() {
    let s = spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[]).await;
    let app = &s.app;
    let o = owner(app, "Gesperrt").await;
    let (waba, pn) = connected(&s, &o, "gesperrt@salon.test").await;
    let conversation = customer_conversation(&s, o.tenant, &pn).await;

    post_account_update(app, &waba, json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "April 17, 2026"}})).await;
    eventually("support is alerted of the scheduled ban", || async {
        store::alerts(&app.db, Some(o.tenant)).await.unwrap().iter().any(|a| a.kind == "schedule_for_disable")
    })
    .await;
    assert_eq!(number_status(app, o.tenant).await, "connected");

    post_account_update(app, &waba, json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2026"}})).await;
    eventually("the number is disabled", || async { number_status(app, o.tenant).await == health::DISABLED }).await;
    assert_eq!(row_status(app, &o).await, "Von Meta gesperrt");
    assert!(reply(app, &o, conversation, "Hallo?").await.ends_with("notice=not_connected"));
    assert_eq!(notifications_with(app, o.tenant, "disabled").await, 1);

    post_account_update(app, &waba, json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE", "waba_ban_date": "April 18, 2026"}})).await;
    eventually("the number is connected again", || async { number_status(app, o.tenant).await == "connected" }).await;
    assert_eq!(notifications_with(app, o.tenant, "reinstated").await, 1);
    assert!(!reply(app, &o, conversation, "Wieder da").await.contains("notice="));
}

/// The sealed business token of the tenant's WABA, opened with the test's key.
fn open_token(key: &str, sealed: &[u8], waba: &str) -> String {
    use secrecy::ExposeSecret as _;
    let keyring = wabridge::crypto::Keyring::parse(key).unwrap();
    keyring.open_str(sealed, &store::token_context(waba)).unwrap().expose_secret().to_owned()
}

#[tokio::test]
async fn a_revoked_token_seen_by_the_outbox_asks_for_a_new_sign_in() {
    let key = wabridge::crypto::Keyring::generate_key();
    let s = spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[("WABRIDGE_ENCRYPTION_KEY", key.as_str())]).await;
    let app = &s.app;
    let o = owner(app, "Widerrufen").await;
    let (waba, pn) = connected(&s, &o, "widerruf@salon.test").await;
    let conversation = customer_conversation(&s, o.tenant, &pn).await;
    let token = open_token(&key, &store::sealed_token(&app.db, o.tenant, &waba).await.unwrap().unwrap(), &waba);
    s.sandbox.control().revoke_token(&token).await.unwrap();

    // The send is accepted into the outbox; Meta answers 190; the hook marks the connection.
    assert!(!reply(app, &o, conversation, "Kommt nicht an").await.contains("notice="));
    eventually("the connection needs a new sign-in", || async { number_status(app, o.tenant).await == health::NEEDS_REAUTH }).await;
    let code = wabridge::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, Option<i64>>("SELECT error_code FROM outbox WHERE tenant_id = $1 ORDER BY id DESC")
        .bind(o.tenant)
        .fetch_one(p)
        .await)
    .unwrap();
    assert_eq!(code, Some(190));
    assert_eq!(row_status(app, &o).await, "Erneute Anmeldung nötig");
    assert_eq!(notifications_with(app, o.tenant, "needs_reauth").await, 1);
    assert!(store::alerts(&app.db, Some(o.tenant)).await.unwrap().iter().any(|a| a.kind == "needs_reauth"));
    let html = page(app, &o).await;
    assert!(element_text(&html, "connection-health-title").unwrap().contains("erneut mit Facebook an"));
    assert!(html.contains("id=\"fb-login\""), "signing in again is offered");
    assert!(reply(app, &o, conversation, "Noch einmal").await.ends_with("notice=not_connected"));
}

#[tokio::test]
async fn an_expiring_token_warns_owners_and_support_and_an_expired_one_asks_for_a_new_sign_in() {
    let key = wabridge::crypto::Keyring::generate_key();
    let mut config = SandboxConfig::for_tests(None);
    config.token_ttl = Some(Duration::from_secs(10 * 24 * 3600));
    let s = spawn_app_with_bare_sandbox(config, &[("WABRIDGE_ENCRYPTION_KEY", key.as_str()), ("WABRIDGE_SESSION_HOURS", "2000")]).await;
    let app = &s.app;
    let o = owner(app, "Ablauf").await;
    app.user(Some(o.tenant), "agent@ablauf.test", Role::Agent).await;
    let (waba, _) = connected(&s, &o, "ablauf@salon.test").await;
    let account = health::accounts(&app.db, o.tenant).await.unwrap().remove(0);
    let expires = account.token_expires_at.expect("debug_token's expires_at is kept");
    let now = app.clock.now_ms();
    assert!(expires > now + 9 * 24 * 3600 * 1000 && expires <= now + 10 * 24 * 3600 * 1000 + 60_000, "{expires} vs {now}");
    assert!(!page(app, &o).await.contains("id=\"token-expiring\""));

    // Four days later the token is inside the warning window: owners and support are warned once.
    app.clock.advance(4 * 24 * 3600 * 1000);
    eventually("support is alerted", || async { store::alerts(&app.db, Some(o.tenant)).await.unwrap().iter().any(|a| a.kind == "token_expiring") }).await;
    eventually("the owner is told", || async { notifications_with(app, o.tenant, "token_expiring").await == 1 }).await;
    let agent_told = wabridge::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.tenant_id = $1 AND u.role = 'agent' AND n.preview LIKE '%token_expiring'"
    )
    .bind(o.tenant)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(agent_told, 0, "only owners act on it");
    assert!(page(app, &o).await.contains("id=\"token-expiring\""));
    assert_eq!(number_status(app, o.tenant).await, "connected", "still working until it expires");
    app.user(None, "support@ablauf.test", Role::Support).await;
    let (sc, _) = app.signed_in("support@ablauf.test").await;
    let all = sc.get(app.url("/support/onboarding")).send().await.unwrap().text().await.unwrap();
    assert!(all.contains("Anmeldung bei Meta läuft bald ab"), "{all}");
    assert!(all.contains(&format!("<a href=\"/support/onboarding/{}\">Ablauf</a>", o.tenant.0)), "the alert names its tenant: {all}");

    // Meta lets it expire: the next check marks the connection.
    let token = open_token(&key, &store::sealed_token(&app.db, o.tenant, &waba).await.unwrap().unwrap(), &waba);
    s.sandbox.control().expire_token(&token).await.unwrap();
    app.clock.advance(health::TOKEN_CHECK_MS + 1000);
    eventually("the connection needs a new sign-in", || async { number_status(app, o.tenant).await == health::NEEDS_REAUTH }).await;
    assert_eq!(notifications_with(app, o.tenant, "token_expiring").await, 1, "warned once");
}

#[tokio::test]
async fn support_connects_a_number_by_hand_after_checking_the_token_at_meta() {
    let s = spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[]).await;
    let app = &s.app;
    let control = s.sandbox.control();
    let o = owner(app, "Von Hand").await;
    let other = owner(app, "Anderer").await;
    let fixture = control.create_tenant(&TenantRequest { registered_with_pin: Some("123456".into()), display_name: Some("Salon Hand".into()), ..TenantRequest::default() }).await.unwrap();
    let foreign = control.create_tenant(&TenantRequest::default()).await.unwrap();
    app.user(None, "support@hand.test", Role::Support).await;
    let (sc, scsrf) = app.signed_in("support@hand.test").await;
    let url = app.url(&format!("/support/onboarding/{}/connect", o.tenant.0));
    let post = |waba: String, pn: String, token: String| {
        let sc = sc.clone();
        let url = url.clone();
        let csrf = scsrf.clone();
        async move {
            let r = sc.post(url).form(&[("_csrf", csrf.as_str()), ("waba_id", waba.as_str()), ("phone_number_id", pn.as_str()), ("token", token.as_str())]).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let detail = sc.get(app.url(&format!("/support/onboarding/{}", o.tenant.0))).send().await.unwrap().text().await.unwrap();
    assert!(detail.contains("id=\"connect-form\""));

    let (status, html) = post(fixture.waba_id.clone(), fixture.phone_number_id.clone(), "not-a-token".into()).await;
    assert_eq!(status, 422);
    assert!(element_text(&html, "connect-error").unwrap().contains("nicht als gültig"), "{html}");
    assert!(!html.contains("not-a-token"), "the token is never shown again");
    let (status, html) = post(foreign.waba_id.clone(), fixture.phone_number_id.clone(), fixture.access_token.clone()).await;
    assert_eq!(status, 422);
    assert!(element_text(&html, "connect-error").unwrap().contains("granularen Berechtigungen"));
    let (status, html) = post(fixture.waba_id.clone(), foreign.phone_number_id.clone(), fixture.access_token.clone()).await;
    assert_eq!(status, 422);
    assert!(element_text(&html, "connect-error").unwrap().contains("gehört nicht zu diesem"));
    let (status, html) = post(String::new(), String::new(), String::new()).await;
    assert_eq!(status, 422);
    assert!(element_text(&html, "connect-error").unwrap().contains("alle drei Felder"));
    assert!(store::numbers(&app.db, o.tenant).await.unwrap().is_empty(), "nothing attached on a refusal");
    // Owners cannot use the support form.
    let r = o.c.post(url.clone()).form(&[("_csrf", o.csrf.as_str()), ("waba_id", fixture.waba_id.as_str()), ("phone_number_id", fixture.phone_number_id.as_str()), ("token", fixture.access_token.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let reads_before = wabridge::support::count_reads(&app.db, Some(o.tenant)).await.unwrap();
    let (status, html) = post(fixture.waba_id.clone(), fixture.phone_number_id.clone(), fixture.access_token.clone()).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"connect-done\""));
    assert!(wabridge::support::count_reads(&app.db, Some(o.tenant)).await.unwrap() > reads_before, "the act is logged");
    let numbers = store::numbers(&app.db, o.tenant).await.unwrap();
    assert_eq!((numbers[0].phone_number_id.as_str(), numbers[0].status.as_str()), (fixture.phone_number_id.as_str(), "connected"));
    let sealed = store::sealed_token(&app.db, o.tenant, &fixture.waba_id).await.unwrap().unwrap();
    assert!(!sealed.windows(fixture.access_token.len()).any(|w| w == fixture.access_token.as_bytes()), "sealed, not in clear");
    let state = control.state().await.unwrap();
    let w = state["wabas"].as_array().unwrap().iter().find(|w| w["id"] == fixture.waba_id.as_str()).unwrap();
    assert!(!w["subscribed_apps"].as_array().unwrap().is_empty(), "our app is subscribed to the WABA's webhooks");
    assert_eq!(store::templates(&app.db, o.tenant).await.unwrap().len(), 2, "the default template went to Meta");
    let html = o.c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert!(element_text(&html, "whatsapp-number").unwrap().contains(&fixture.number[fixture.number.len() - 4..]), "{html}");

    // The same number cannot go to another tenant.
    let other_url = app.url(&format!("/support/onboarding/{}/connect", other.tenant.0));
    let r = sc
        .post(other_url)
        .form(&[("_csrf", scsrf.as_str()), ("waba_id", fixture.waba_id.as_str()), ("phone_number_id", fixture.phone_number_id.as_str()), ("token", fixture.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(element_text(&r.text().await.unwrap(), "connect-error").unwrap().contains("anderen Kunden"));
    assert!(store::numbers(&app.db, other.tenant).await.unwrap().is_empty());
}
