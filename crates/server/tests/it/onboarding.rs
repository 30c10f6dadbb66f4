//! Onboarding against a real sandbox: every outcome of Embedded Signup, the PIN, the
//! checklist from webhooks and the poller, two attempts with lock and unlock, isolation.
//! The popup is driven through its JSON endpoints (the browser test clicks through it).

use std::time::Duration;

use serde_json::{Value, json};
use wabridge::accounts::{Role, TenantId};
use wabridge::onboarding::store;
use wabridge_sandbox::{Fault, NumberPatch, PlannedOutcome, ReviewKind, SandboxConfig};

use crate::helpers::{BareSandboxApp as SandboxApp, TestApp, csrf_of, element_text, eventually, spawn_app_with_bare_sandbox};

pub(crate) async fn spawn_app_with_sandbox() -> SandboxApp {
    spawn_app_with_bare_sandbox(SandboxConfig::for_tests(None), &[]).await
}

pub(crate) const PIN: &str = "123456";

/// An owner signed in to a new tenant.
pub(crate) struct Owner {
    pub tenant: TenantId,
    pub c: reqwest::Client,
    pub csrf: String,
}

pub(crate) async fn owner(app: &TestApp, name: &str) -> Owner {
    let tenant = app.tenant(name).await;
    let email = format!("owner@{}.test", name.to_lowercase().replace(' ', ""));
    app.user(Some(tenant), &email, Role::Owner).await;
    let (c, csrf) = app.signed_in(&email).await;
    Owner { tenant, c, csrf }
}

pub(crate) async fn post_pin(app: &TestApp, o: &Owner, pin: &str) -> reqwest::Response {
    o.c.post(app.url("/api-settings/whatsapp/pin")).form(&[("_csrf", o.csrf.as_str()), ("pin", pin), ("payment", "yes")]).send().await.unwrap()
}

pub(crate) async fn start(app: &TestApp, o: &Owner) -> (u16, Value) {
    let r = o.c.post(app.url("/api-settings/whatsapp/signup")).header("X-CSRF-Token", &o.csrf).header("Accept", "application/json").send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub(crate) async fn complete(app: &TestApp, o: &Owner, nonce: &str, code: Option<&str>, message: Option<&Value>) -> (u16, Value) {
    let r = o
        .c
        .post(app.url(&format!("/api-settings/whatsapp/signup/{nonce}")))
        .header("X-CSRF-Token", &o.csrf)
        .header("Accept", "application/json")
        .json(&json!({"code": code, "message": message}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Opens the popup as `FB.login` does; returns its session id.
pub(crate) async fn open_popup(s: &SandboxApp) -> String {
    let url = format!(
        "{}/dialog/oauth?app_id=1000000000000001&config_id=2000000000000002&response_type=code&override_default_response_type=true&extras=%7B%7D",
        s.sandbox.base_url()
    );
    let html = crate::helpers::client().get(url).send().await.unwrap().text().await.unwrap();
    let start = html.find("var SESSION = \"").unwrap() + 15;
    html[start..start + 16].to_string()
}

pub(crate) async fn popup(s: &SandboxApp, session: &str, step: &str, body: Value) -> Value {
    let r = crate::helpers::client().post(format!("{}/_signup/{session}/{step}", s.sandbox.base_url())).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{step}: {v}");
    v
}

/// Walks the popup to its end with this phone choice; returns the code (if any) and the
/// session-info message.
pub(crate) async fn signup(s: &SandboxApp, email: &str, phone: Value) -> (Option<String>, Value) {
    let session = open_popup(s).await;
    popup(s, &session, "login", json!({"email": email, "name": "Owner"})).await;
    let mut phone = phone;
    if phone["mode"] == "own" && phone.get("verify_later").is_none() {
        let number = phone["number"].as_str().unwrap().to_string();
        let sms = popup(s, &session, "sms", json!({"number": number})).await;
        phone["code"] = sms["code"].clone();
    }
    let out = popup(
        s,
        &session,
        "finish",
        json!({"business": {"name": format!("B {email}")}, "waba": {"name": format!("W {email}")}, "phone": phone, "display_name": "Salon Sonne"}),
    )
    .await;
    let code = out["auth_response"]["authResponse"]["code"].as_str().map(str::to_owned);
    (code, out["message"].clone())
}

pub(crate) async fn cancel(s: &SandboxApp, body: Value) -> Value {
    let session = open_popup(s).await;
    popup(s, &session, "cancel", body).await["message"].clone()
}

pub(crate) async fn checklist(app: &TestApp, o: &Owner) -> Value {
    o.c.get(app.url("/api-settings/whatsapp/checklist")).header("Accept", "application/json").send().await.unwrap().json().await.unwrap()
}

pub(crate) fn item_state(list: &Value, item: &str) -> String {
    list["items"].as_array().unwrap().iter().find(|i| i["item"] == item).map(|i| i["state"].as_str().unwrap().to_string()).unwrap_or_default()
}

pub(crate) async fn all_done(app: &TestApp, o: &Owner) -> bool {
    let list = checklist(app, o).await;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items.len() == 4 && items.iter().all(|i| i["state"] == "done")
}

pub(crate) async fn page(app: &TestApp, o: &Owner) -> String {
    o.c.get(app.url("/api-settings/whatsapp")).send().await.unwrap().text().await.unwrap()
}

pub(crate) async fn own_number_signup(s: &SandboxApp, o: &Owner, email: &str, number: &str) -> Value {
    let app = &s.app;
    assert_eq!(post_pin(app, o, PIN).await.status(), 303);
    let (status, started) = start(app, o).await;
    assert_eq!(status, 200, "{started}");
    let (code, message) = signup(s, email, json!({"mode": "own", "number": number})).await;
    let (status, done) = complete(app, o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(status, 200, "{done}");
    done
}

#[tokio::test]
async fn a_verified_own_number_connects_and_the_checklist_turns_done_from_webhooks() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Salon Eins").await;
    let html = page(app, &o).await;
    assert!(html.contains("id=\"prerequisites\"") && html.contains("https://doc.doards.com/meta-settings"));
    assert!(html.contains("id=\"own-number-warning\"") && html.contains("id=\"meta-number-note\""));
    assert!(html.contains("id=\"pin-form\""));

    // The host application has a callback URL: it is told of every checklist change.
    wabridge::with_pool!(app.db.write(), |p| sqlx::query("INSERT INTO callback_endpoints (tenant_id, url, secret_ciphertext, updated_at) VALUES ($1, 'http://127.0.0.1:9/unreachable', $2, 0)")
        .bind(o.tenant)
        .bind(vec![0u8; 48])
        .execute(p)
        .await
        .map(drop))
    .unwrap();
    let done = own_number_signup(&s, &o, "eins@salon.test", "+49 30 1111111").await;
    assert_eq!(done["status"], "connected", "{done}");
    let attempts = store::attempts(&app.db, o.tenant).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].event.as_deref(), Some("FINISH"));
    let pn = attempts[0].phone_number_id.clone().unwrap();
    let number = s.sandbox.control().number(&pn).await.unwrap();
    assert_eq!(number.status, "CONNECTED");
    assert!(number.has_pin);

    // The default template went to Meta in both languages; its approval arrives by webhook.
    eventually("all four checklist items done", || async { all_done(app, &o).await }).await;
    let templates = store::templates(&app.db, o.tenant).await.unwrap();
    assert_eq!(templates.iter().map(|t| t.language.as_str()).collect::<Vec<_>>(), ["de", "en"]);
    assert!(templates.iter().all(|t| t.status == "APPROVED"));
    let state = s.sandbox.control().state().await.unwrap();
    let sent = state["templates"].as_array().unwrap().iter().filter(|t| t["name"] == "booking_confirmation").count();
    assert_eq!(sent, 2, "{state}");

    let settings = o.c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&settings, "whatsapp-status").as_deref(), Some("Verbunden"));
    assert!(element_text(&settings, "whatsapp-number").unwrap().contains("Salon Sonne"));
    assert!(with_count(app, "SELECT COUNT(*) FROM callback_deliveries WHERE kind = 'onboarding.changed'").await >= 4, "a callback per checklist change");
    // The templates feature knows the default template at once, in both languages.
    eventually("the templates feature has the default template", || async {
        with_count(app, "SELECT COUNT(*) FROM templates WHERE name = 'booking_confirmation'").await == 2
    })
    .await;

    // Each change is a notification and a (queued) e-mail; nothing secret is stored in clear.
    let n = with_count(app, "SELECT COUNT(*) FROM notifications WHERE kind = 'onboarding'").await;
    assert!(n >= 3, "{n} notifications");
    assert!(!store::emails(&app.db, o.tenant).await.unwrap().is_empty());
    let st = store::state(&app.db, o.tenant).await.unwrap();
    let sealed = st.pin_ciphertext.unwrap();
    assert!(!sealed.windows(6).any(|w| w == PIN.as_bytes()));
    assert!(!page(app, &o).await.contains(PIN));
    assert_eq!(st.failed_attempts, 0);
}

pub(crate) async fn with_count(app: &TestApp, sql: &'static str) -> i64 {
    wabridge::with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap()
}

#[tokio::test]
async fn a_meta_number_and_a_missing_session_message_both_connect() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Meta Nummer").await;
    post_pin(app, &o, PIN).await;
    let (_, started) = start(app, &o).await;
    let (code, message) = signup(&s, "meta@salon.test", json!({"mode": "meta"})).await;
    assert!(message["data"]["phone_number_id"].is_string());
    // The session message got lost: the token's granular scopes name the WABA.
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), None).await;
    assert_eq!(done["status"], "connected", "{done}");
    let attempt = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!(attempt.waba_id.as_deref(), message["data"]["waba_id"].as_str());
    assert_eq!(attempt.phone_number_id.as_deref(), message["data"]["phone_number_id"].as_str());
    let number = s.sandbox.control().number(attempt.phone_number_id.as_deref().unwrap()).await.unwrap();
    assert!(number.number.starts_with('1'));
}

#[tokio::test]
async fn an_unverified_number_is_verified_with_a_code_in_our_page_then_registered() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Unverifiziert").await;
    post_pin(app, &o, PIN).await;
    let (_, started) = start(app, &o).await;
    let (code, message) = signup(&s, "later@salon.test", json!({"mode": "own", "number": "+49 30 2222222", "verify_later": true})).await;
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "needs_verification");
    let html = page(app, &o).await;
    assert!(html.contains("id=\"verify-number\""));
    let pn = message["data"]["phone_number_id"].as_str().unwrap();

    let r = o.c.post(app.url("/api-settings/whatsapp/request-code")).form(&[("_csrf", o.csrf.as_str()), ("method", "SMS")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let sms = s.sandbox.control().number(pn).await.unwrap().pending_code.expect("a code was sent");
    let r = o.c.post(app.url("/api-settings/whatsapp/verify-code")).form(&[("_csrf", o.csrf.as_str()), ("code", "000000")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Verifizierungscode ist falsch"));
    let r = o.c.post(app.url("/api-settings/whatsapp/verify-code")).form(&[("_csrf", o.csrf.as_str()), ("code", sms.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(store::attempts(&app.db, o.tenant).await.unwrap()[0].status, "connected");
    eventually("checklist done", || async { all_done(app, &o).await }).await;
}

#[tokio::test]
async fn finishing_without_a_number_or_with_an_app_number_explains_and_counts_no_attempt() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Ohne Nummer").await;
    post_pin(app, &o, PIN).await;
    let (_, started) = start(app, &o).await;
    let (code, message) = signup(&s, "none@salon.test", json!({"mode": "none"})).await;
    assert_eq!(message["event"], "FINISH_ONLY_WABA");
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "no_number");
    let html = page(app, &o).await;
    assert!(html.contains("id=\"outcome-no-number\""), "{html}");
    assert!(html.contains("id=\"fb-login\""), "signup is offered again");

    let (_, again) = start(app, &o).await;
    assert_ne!(again["nonce"], started["nonce"]);
    let (code, message) = signup(&s, "coex@salon.test", json!({"mode": "coexistence", "number": "4917012345"})).await;
    assert_eq!(message["event"], "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING");
    let (_, done) = complete(app, &o, again["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "coexistence");
    let html = page(app, &o).await;
    assert!(html.contains("id=\"outcome-coexistence\""));
    let state = store::state(&app.db, o.tenant).await.unwrap();
    assert_eq!(state.failed_attempts, 0);
    assert!(store::numbers(&app.db, o.tenant).await.unwrap().is_empty(), "an app number is not attached");
}

#[tokio::test]
async fn cancel_error_and_closed_popup_fail_attempts_then_lock_until_support_unlocks_and_success_resets() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Zwei Versuche").await;
    post_pin(app, &o, PIN).await;

    let (_, first) = start(app, &o).await;
    let message = cancel(&s, json!({"current_step": "PHONE_NUMBER_SETUP"})).await;
    let (_, done) = complete(app, &o, first["nonce"].as_str().unwrap(), None, Some(&message)).await;
    assert_eq!(done["status"], "cancelled");
    // A double submit of the same report counts once.
    complete(app, &o, first["nonce"].as_str().unwrap(), None, Some(&message)).await;
    let a = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!((a.current_step.as_deref(), a.counted), (Some("PHONE_NUMBER_SETUP"), true));
    assert_eq!(store::state(&app.db, o.tenant).await.unwrap().failed_attempts, 1);
    let html = page(app, &o).await;
    assert!(html.contains("id=\"outcome-cancelled\"") && html.contains("PHONE_NUMBER_SETUP"));
    assert_eq!(element_text(&html, "attempts-left").as_deref(), Some("Verbleibende Versuche: 1"));

    let (_, second) = start(app, &o).await;
    let message = cancel(&s, json!({"current_step": "LOGIN", "error_code": "524126", "error_message": "Konto gesperrt"})).await;
    let (_, done) = complete(app, &o, second["nonce"].as_str().unwrap(), None, Some(&message)).await;
    assert_eq!(done["status"], "failed");
    let a = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!((a.error_code, a.error_message.as_deref(), a.step.as_deref()), (Some(524126), Some("Konto gesperrt"), Some("popup")));

    // Locked: the page says to contact support, and the server refuses a third attempt.
    let html = page(app, &o).await;
    assert!(html.contains("id=\"onboarding-locked\""));
    assert_eq!(element_text(&html, "support-contact").as_deref(), Some("support@doards.com"));
    assert!(!html.contains("id=\"fb-login\""));
    let (status, refused) = start(app, &o).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("onboarding_locked")));
    let settings = o.c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&settings, "whatsapp-status").as_deref(), Some("Fehlgeschlagen"));

    // Support sees the attempts with Meta's diagnostics and unlocks.
    app.user(None, "support@ops.test", Role::Support).await;
    let (sc, scsrf) = app.signed_in("support@ops.test").await;
    let reads_before = wabridge::support::count_reads(&app.db, Some(o.tenant)).await.unwrap();
    let all = sc.get(app.url("/support/onboarding")).send().await.unwrap().text().await.unwrap();
    assert!(all.contains("524126") && all.contains("Konto gesperrt") && all.contains(&format!("id=\"locked-{}\"", o.tenant.0)));
    let attempts = all.split("id=\"support-attempts\"").nth(1).expect("the attempts");
    assert!(attempts.contains(&format!("<a href=\"/support/onboarding/{}\">Zwei Versuche</a>", o.tenant.0)), "each attempt names its tenant: {attempts}");
    let detail = sc.get(app.url(&format!("/support/onboarding/{}", o.tenant.0))).send().await.unwrap().text().await.unwrap();
    assert!(detail.contains("id=\"tenant-locked\""));
    assert_eq!(wabridge::support::count_reads(&app.db, Some(o.tenant)).await.unwrap(), reads_before + 1);
    let r = sc.post(app.url(&format!("/support/onboarding/{}/unlock", o.tenant.0))).form(&[("_csrf", scsrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // Owners cannot reach the support pages.
    assert_eq!(o.c.get(app.url("/support/onboarding")).send().await.unwrap().status(), 403);

    // A closed popup (no message, no code) fails an attempt too; then a success resets the count.
    let (_, third) = start(app, &o).await;
    let (_, done) = complete(app, &o, third["nonce"].as_str().unwrap(), None, None).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(store::attempts(&app.db, o.tenant).await.unwrap()[0].event.as_deref(), Some("CLOSED"));
    assert_eq!(store::state(&app.db, o.tenant).await.unwrap().failed_attempts, 1);
    let (_, fourth) = start(app, &o).await;
    let (code, message) = signup(&s, "zwei@salon.test", json!({"mode": "meta"})).await;
    let (_, done) = complete(app, &o, fourth["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "connected");
    assert_eq!(store::state(&app.db, o.tenant).await.unwrap().failed_attempts, 0);
}

#[tokio::test]
async fn the_pin_must_be_exactly_six_digits_and_is_stored_sealed() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Pin Test").await;
    for bad in ["12345", "1234567", "12a456", " 123456", "123 456", "", "１２３４５６"] {
        let r = post_pin(app, &o, bad).await;
        assert_eq!(r.status(), 422, "{bad:?}");
        let html = r.text().await.unwrap();
        assert!(element_text(&html, "onboarding-error").unwrap().contains("genau 6 Ziffern"), "{bad:?}");
    }
    assert!(store::state(&app.db, o.tenant).await.unwrap().pin_ciphertext.is_none());
    let (status, refused) = start(app, &o).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("onboarding_no_pin")));
    // The payment method must be confirmed once.
    let r = o.c.post(app.url("/api-settings/whatsapp/pin")).form(&[("_csrf", o.csrf.as_str()), ("pin", "654321")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(post_pin(app, &o, "654321").await.status(), 303);
    let state = store::state(&app.db, o.tenant).await.unwrap();
    assert!(state.payment_confirmed_at.is_some());
    let sealed = state.pin_ciphertext.unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"654321"));
    let html = page(app, &o).await;
    assert!(html.contains("id=\"pin-stored\"") && !html.contains("654321"));
    // An agent cannot onboard.
    app.user(Some(o.tenant), "agent@pintest.test", Role::Agent).await;
    let (ac, acsrf) = app.signed_in("agent@pintest.test").await;
    assert_eq!(ac.get(app.url("/api-settings/whatsapp")).send().await.unwrap().status(), 403);
    let r = ac.post(app.url("/api-settings/whatsapp/pin")).form(&[("_csrf", acsrf.as_str()), ("pin", "111111"), ("payment", "yes")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_wrong_pin_is_corrected_without_a_new_signup_or_a_used_attempt() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Falscher Pin").await;
    post_pin(app, &o, PIN).await;
    let (_, started) = start(app, &o).await;
    let (code, message) = signup(&s, "pin@salon.test", json!({"mode": "own", "number": "+49 30 3333333"})).await;
    let pn = message["data"]["phone_number_id"].as_str().unwrap().to_string();
    // The number already has a two-step PIN.
    s.sandbox.control().patch_number(&pn, &NumberPatch { pin: Some("999999".into()), ..NumberPatch::default() }).await.unwrap();
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "needs_pin");
    let html = page(app, &o).await;
    assert!(html.contains("id=\"wrong-pin\"") && html.contains("Zwei-Schritt-Verifizierung"));
    let a = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!((a.error_code, a.counted), (Some(133005), false));
    assert!(a.fbtrace_id.is_some());
    assert_eq!(post_pin(app, &o, "999999").await.status(), 303);
    let a = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!(a.status, "connected");
    assert_eq!(store::attempts(&app.db, o.tenant).await.unwrap().len(), 1);
    assert_eq!(s.sandbox.control().number(&pn).await.unwrap().status, "CONNECTED");
}

#[tokio::test]
async fn meta_errors_in_each_server_step_fail_the_attempt_with_diagnostics() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let control = s.sandbox.control();

    // Registration: too many attempts (133016) cannot be completed: the attempt fails.
    let o = owner(app, "Register Fehler").await;
    post_pin(app, &o, PIN).await;
    let (_, started) = start(app, &o).await;
    let (code, message) = signup(&s, "reg@salon.test", json!({"mode": "meta"})).await;
    control.add_fault(&Fault { endpoint: "register".into(), code: Some(133016), remaining: Some(1), ..Fault::default() }).await.unwrap();
    let (_, done) = complete(app, &o, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "failed");
    let a = &store::attempts(&app.db, o.tenant).await.unwrap()[0];
    assert_eq!((a.step.as_deref(), a.error_code, a.counted), (Some("register"), Some(133016), true));
    let html = page(app, &o).await;
    assert!(element_text(&html, "outcome-explanation").unwrap().contains("10 Registrierungen in 72 Stunden"));
    assert_eq!(item_state(&checklist(app, &o).await, "number_registered"), "failed");

    // Subscription refused.
    let o2 = owner(app, "Abo Fehler").await;
    post_pin(app, &o2, PIN).await;
    let (_, started) = start(app, &o2).await;
    let (code, message) = signup(&s, "sub@salon.test", json!({"mode": "meta"})).await;
    control.add_fault(&Fault { endpoint: "subscribed_apps".into(), code: Some(200), remaining: Some(1), ..Fault::default() }).await.unwrap();
    let (_, done) = complete(app, &o2, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "failed");
    let a = &store::attempts(&app.db, o2.tenant).await.unwrap()[0];
    assert_eq!((a.step.as_deref(), a.error_code), (Some("subscribe"), Some(200)));

    // Code exchange: a code used once already (or expired) is refused by Meta.
    let o3 = owner(app, "Code Fehler").await;
    post_pin(app, &o3, PIN).await;
    let (_, started) = start(app, &o3).await;
    let (code, message) = signup(&s, "code@salon.test", json!({"mode": "meta"})).await;
    control.advance_clock(31).await.unwrap();
    let (_, done) = complete(app, &o3, started["nonce"].as_str().unwrap(), code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "failed");
    let a = &store::attempts(&app.db, o3.tenant).await.unwrap()[0];
    assert_eq!((a.step.as_deref(), a.error_code, a.error_subcode), (Some("code_exchange"), Some(100), Some(36007)));
    assert!(a.fbtrace_id.is_some());
}

#[tokio::test]
async fn another_tenant_or_session_cannot_drive_an_attempt_and_forged_session_info_is_refused() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let a = owner(app, "Mandant A").await;
    let b = owner(app, "Mandant B").await;
    post_pin(app, &a, PIN).await;
    post_pin(app, &b, PIN).await;
    let (_, started) = start(app, &a).await;
    let nonce = started["nonce"].as_str().unwrap().to_string();
    let (code, message) = signup(&s, "a@mandant.test", json!({"mode": "meta"})).await;

    // Tenant B, and a second session of A's own owner, see no such attempt.
    let (status, _) = complete(app, &b, &nonce, code.as_deref(), Some(&message)).await;
    assert_eq!(status, 404);
    let (c2, csrf2) = app.signed_in("owner@mandanta.test").await;
    let other = Owner { tenant: a.tenant, c: c2, csrf: csrf2 };
    let (status, _) = complete(app, &other, &nonce, code.as_deref(), Some(&message)).await;
    assert_eq!(status, 404);
    // Double clicks and parallel tabs of the same session share one attempt.
    let (_, again) = start(app, &a).await;
    assert_eq!(again["nonce"], started["nonce"]);

    // Session info naming a WABA the token cannot manage is refused before anything is attached.
    let (_, b_started) = start(app, &b).await;
    let (b_code, _) = signup(&s, "b@mandant.test", json!({"mode": "meta"})).await;
    let (_, done) = complete(app, &b, b_started["nonce"].as_str().unwrap(), b_code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "failed");
    let attempt = &store::attempts(&app.db, b.tenant).await.unwrap()[0];
    assert_eq!(attempt.step.as_deref(), Some("token_check"));
    assert!(store::numbers(&app.db, b.tenant).await.unwrap().is_empty());

    let (_, done) = complete(app, &a, &nonce, code.as_deref(), Some(&message)).await;
    assert_eq!(done["status"], "connected");
    // B's checklist and page show nothing of A's.
    assert_eq!(checklist(app, &b).await["items"], json!([]));
    let html = page(app, &b).await;
    assert!(!html.contains(message["data"]["waba_id"].as_str().unwrap()));
    let b_detail = page(app, &a).await;
    assert!(b_detail.contains("id=\"checklist\""));
}

#[tokio::test]
async fn a_rejected_default_template_alerts_support_and_fails_no_attempt() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    s.sandbox.control().plan_outcome(&PlannedOutcome { kind: ReviewKind::Template, target_id: None, approve: false, reason: Some("INVALID_FORMAT".into()) }).await.unwrap();
    let o = owner(app, "Template Nein").await;
    let done = own_number_signup(&s, &o, "tpl@salon.test", "+49 30 4444444").await;
    assert_eq!(done["status"], "connected");
    eventually("template item failed", || async { item_state(&checklist(app, &o).await, "template_approved") == "failed" }).await;
    let state = store::state(&app.db, o.tenant).await.unwrap();
    assert_eq!((state.failed_attempts, state.locked_at), (0, None));
    let alerts = store::alerts(&app.db, Some(o.tenant)).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "template_rejected");
}

/// Meta reviews the default template's two languages separately, and on PostgreSQL their
/// webhooks may be applied by two processors at once: the second transaction waits for the
/// first and reads its approval, instead of both reading the other language as pending and
/// leaving the item pending for good.
#[tokio::test]
async fn two_languages_approved_at_once_turn_the_template_item_done() {
    use wabridge::ingest::{ChangeHandler as _, Effects, RoutedChange};
    use wabridge::onboarding::webhooks::TemplateReview;
    let mut config = SandboxConfig::for_tests(None);
    config.delays = wabridge_sandbox::Delays::manual();
    let s = spawn_app_with_bare_sandbox(config, &[]).await;
    let app = &s.app;
    let o = owner(app, "Zwei Sprachen").await;
    let done = own_number_signup(&s, &o, "zwei@salon.test", "+49 30 6666666").await;
    assert_eq!(done["status"], "connected");
    let templates = wabridge::with_pool!(app.db.read(), |p| sqlx::query_as::<_, (String, String)>(
        "SELECT language, template_id FROM onboarding_templates WHERE tenant_id = $1 ORDER BY language"
    )
    .bind(o.tenant)
    .fetch_all(p)
    .await)
    .unwrap();
    assert_eq!(templates.len(), 2, "{templates:?}");
    assert_eq!(item_state(&checklist(app, &o).await, "template_approved"), "pending");
    let review = |(language, id): &(String, String)| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "time": 1764000000, "changes": [{
            "field": "message_template_status_update",
            "value": {"event": "APPROVED", "message_template_id": id, "message_template_name": "booking_confirmation",
                      "message_template_language": language, "reason": "NONE"}
        }]}]})
        .to_string()
        .into_bytes()
    };
    // Applies one review in a transaction of its own and returns it uncommitted.
    async fn apply(db: &wabridge::store::Db, tenant: TenantId, body: &[u8], now: i64) -> wabridge::store::Tx {
        let parsed = wabridge_cloud_api::parse_webhook(body).unwrap();
        let change = parsed.changes().next().unwrap();
        let routed = RoutedChange { journal_id: 1, change_index: 0, tenant, change, received_at: now, now };
        let mut tx = db.begin().await.unwrap();
        TemplateReview.apply(&mut tx, &routed, &mut Effects::default()).await.unwrap();
        tx
    }
    let now = app.clock.now_ms();
    let first = apply(&app.db, o.tenant, &review(&templates[0]), now).await;
    let second = {
        let (db, tenant, body) = (app.db.clone(), o.tenant, review(&templates[1]));
        tokio::spawn(async move { apply(&db, tenant, &body, now).await.commit().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second review waits for the first");
    first.commit().await.unwrap();
    second.await.unwrap();
    assert_eq!(item_state(&checklist(app, &o).await, "template_approved"), "done");
}

#[tokio::test]
async fn the_poller_reads_business_verification_which_has_no_webhook() {
    let mut config = SandboxConfig::for_tests(None);
    config.delays = wabridge_sandbox::Delays::manual();
    let s = spawn_app_with_bare_sandbox(config, &[("WABRIDGE_ONBOARDING_POLL_SECS", "60")]).await;
    let app = &s.app;
    let o = owner(app, "Poller").await;
    let done = own_number_signup(&s, &o, "poll@salon.test", "+49 30 5555555").await;
    assert_eq!(done["status"], "connected");
    let list = checklist(app, &o).await;
    assert_eq!(item_state(&list, "business_verified"), "pending");
    assert_eq!(item_state(&list, "number_registered"), "done");
    let control = s.sandbox.control();
    control.complete_reviews(ReviewKind::WabaReview, None, true, None).await.unwrap();
    control.complete_reviews(ReviewKind::Template, None, true, None).await.unwrap();
    control.complete_reviews(ReviewKind::BusinessVerification, None, true, None).await.unwrap();
    control.flush(Duration::from_secs(5)).await.unwrap();
    eventually("template approved by webhook", || async { item_state(&checklist(app, &o).await, "template_approved") == "done" }).await;
    // No webhook tells of the business verification: only the poller, once due, sees it.
    assert_eq!(item_state(&checklist(app, &o).await, "business_verified"), "pending");
    app.clock.advance(61_000);
    eventually("business verified by polling", || async { item_state(&checklist(app, &o).await, "business_verified") == "done" }).await;
    eventually("polling stops when settled", || async { store::state(&app.db, o.tenant).await.unwrap().poll_next_at.is_none() }).await;
}

#[tokio::test]
async fn onboarding_requests_are_rate_limited_per_tenant() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Limit").await;
    let mut statuses = Vec::new();
    for _ in 0..(store::RATE_LIMIT + 1) {
        statuses.push(post_pin(app, &o, "12").await.status().as_u16());
    }
    assert!(statuses[..store::RATE_LIMIT as usize].iter().all(|s| *s == 422));
    assert_eq!(*statuses.last().unwrap(), 429);
    let other = owner(app, "Limit Andere").await;
    assert_eq!(post_pin(app, &other, "12").await.status(), 422);
    let _ = csrf_of;
}

#[tokio::test]
async fn a_double_submitted_code_makes_one_signup_and_fails_nothing() {
    let s = spawn_app_with_sandbox().await;
    let app = &s.app;
    let o = owner(app, "Doppelklick").await;
    post_pin(app, &o, PIN).await;
    let ((_, first), (_, second)) = tokio::join!(start(app, &o), start(app, &o));
    assert_eq!(first["nonce"], second["nonce"], "parallel starts share one attempt");
    let nonce = first["nonce"].as_str().unwrap();
    let (code, message) = signup(&s, "doppel@salon.test", json!({"mode": "meta"})).await;
    let ((_, a), (_, b)) = tokio::join!(
        complete(app, &o, nonce, code.as_deref(), Some(&message)),
        complete(app, &o, nonce, code.as_deref(), Some(&message))
    );
    eventually("the one signup finished", || async { store::attempts(&app.db, o.tenant).await.unwrap()[0].status == "connected" }).await;
    // The request that claimed the attempt answers with its outcome; the other one with the
    // attempt's state at that moment, never a failure.
    assert!(a["status"] == "connected" || b["status"] == "connected", "{a} {b}");
    assert!(a["status"] != "failed" && b["status"] != "failed", "{a} {b}");
    let attempts = store::attempts(&app.db, o.tenant).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(store::state(&app.db, o.tenant).await.unwrap().failed_attempts, 0);
}
