//! The webhook road: signatures, the journal, routing, idempotent processing, retries, the
//! support view of what nobody handled, and live events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use wabridge::accounts::{Role, TenantId};
use wabridge::ingest::{AheadFuture, ChangeHandler, Effects, HandlerFuture, Registry, RoutedChange};
use wabridge::notifications::count_for_message;
use wabridge::onboarding::store::{Attachment, attach};
use wabridge::store::Tx;
use wabridge::{with_pool, with_tx};

use crate::helpers::{TestApp, client, eventually, spawn_app, spawn_app_with_registry};

pub const APP_SECRET: &str = "test-app-secret";

/// A signed POST of `body` to the webhook endpoint.
pub async fn post_signed(app: &TestApp, body: &[u8]) -> reqwest::Response {
    let signature = wabridge_cloud_api::sign(&SecretString::from(APP_SECRET), body);
    client()
        .post(app.url("/webhooks/whatsapp"))
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// A `messages` body in Meta's shape with one text message per `(wamid, text)`.
pub fn text_body(phone_number_id: &str, from: &str, name: &str, messages: &[(&str, &str)]) -> Vec<u8> {
    let msgs: Vec<Value> = messages
        .iter()
        .map(|(id, text)| json!({"from": from, "id": id, "timestamp": "1764000000", "type": "text", "text": {"body": text}}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "4930123456", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": from}],
        "messages": msgs
    }}]}]})
    .to_string()
    .into_bytes()
}

/// A tenant with an owner and an agent and a connected number `PN-<tenant>`.
pub async fn tenant_with_number(app: &TestApp, name: &str) -> (TenantId, String) {
    let t = app.tenant(name).await;
    let slug = name.to_lowercase().replace(' ', "");
    app.user(Some(t), &format!("owner@{slug}.test"), Role::Owner).await;
    app.user(Some(t), &format!("agent@{slug}.test"), Role::Agent).await;
    let number = format!("PN-{}", t.0);
    attach(
        &app.db,
        t,
        &Attachment {
            waba_id: &format!("WABA-{}", t.0),
            business_id: None,
            phone_number_id: &number,
            display_phone_number: Some("+49 30 123456"),
            token_ciphertext: None,
            status: "connected",
        },
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    (t, number)
}

/// A message's id by Meta's.
pub(crate) async fn message_id(app: &TestApp, wamid: &str) -> i64 {
    with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM messages WHERE wamid = $1").bind(wamid).fetch_one(p).await).unwrap()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap()
}

#[tokio::test]
async fn unsigned_and_wrongly_signed_bodies_are_refused_and_not_kept() {
    let app = spawn_app().await;
    let body = text_body("PN-1", "491701234567", "Anna", &[("wamid.A", "Hallo")]);
    let c = client();
    let resp = c.post(app.url("/webhooks/whatsapp")).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let wrong = wabridge_cloud_api::sign(&SecretString::from("another secret"), &body);
    let resp = c.post(app.url("/webhooks/whatsapp")).header("X-Hub-Signature-256", wrong).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c.post(app.url("/webhooks/whatsapp")).header("X-Hub-Signature-256", "sha256=zz").body(body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Over the body limit: refused before the signature is looked at.
    let huge = vec![b' '; wabridge::web::BODY_LIMIT + 1];
    let resp = c.post(app.url("/webhooks/whatsapp")).header("X-Hub-Signature-256", wabridge_cloud_api::sign(&SecretString::from(APP_SECRET), &huge)).body(huge).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(wabridge::ingest::journal::total_count(&app.db).await.unwrap(), 0);
    // The route lies outside the router's middleware: it counts its own requests and sets the
    // headers of a plain-text answer.
    let resp = post_signed(&app, br#"{"object":"whatsapp_business_account","entry":[]}"#).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let metrics = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wabridge_webhook_signature_rejected_total 3"), "{metrics}");
    for line in [
        r#"wabridge_http_requests_total{method="POST",route="/webhooks/whatsapp",status="401"} 3"#,
        r#"wabridge_http_requests_total{method="POST",route="/webhooks/whatsapp",status="413"} 1"#,
        r#"wabridge_http_requests_total{method="POST",route="/webhooks/whatsapp",status="200"} 1"#,
        r#"wabridge_http_request_duration_seconds_count{method="POST",route="/webhooks/whatsapp"} 5"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_our_token() {
    let app = spawn_app().await;
    let c = client();
    let ok = c
        .get(app.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = c.get(app.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")).send().await.unwrap();
    assert_eq!(bad.status(), 403);
    let malformed = c.get(app.url("/webhooks/whatsapp?hub.mode=subscribe&hub.mode=again")).send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let metrics = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for status in [200, 403, 400] {
        let line = format!(r#"wabridge_http_requests_total{{method="GET",route="/webhooks/whatsapp",status="{status}"}} 1"#);
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn every_conformance_body_is_accepted_and_kept() {
    let app = spawn_app().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/webhooks");
    let mut files = Vec::new();
    for peer in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(peer.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    assert!(files.len() > 100, "conformance corpus missing at {}", root.display());
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let resp = post_signed(&app, &body).await;
        assert_eq!(resp.status(), 200, "{}", f.display());
    }
    let kept = wabridge::ingest::journal::total_count(&app.db).await.unwrap();
    assert_eq!(kept, files.len() as i64);
    // None of them names one of our numbers: each is processed and kept for support.
    eventually("every body processed", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    assert!(count(&app, "SELECT COUNT(*) FROM webhook_unhandled").await >= files.len() as i64 - 5);
}

#[tokio::test]
async fn a_customer_message_notifies_every_user_of_the_tenant_once() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    let (other, _) = tenant_with_number(&app, "Salon B").await;
    let body = text_body(&number, "491701234567", "Anna Schmidt", &[("wamid.ONE", "Hallo!\nIch hätte gern einen Termin.")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    // Meta delivers at least once: the same body again changes nothing.
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    eventually("processed", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    assert_eq!(count_for_message(&app.db, t, "wamid.ONE").await.unwrap(), 1, "one notification for owner and agent");
    assert_eq!(count_for_message(&app.db, other, "wamid.ONE").await.unwrap(), 0);

    let (c, _) = app.signed_in("owner@salona.test").await;
    let html = c.get(app.url("/notifications")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Neue WhatsApp-Nachricht von Anna Schmidt"));
    assert!(html.contains("Hallo!") && !html.contains("Ich hätte gern"), "first line only");
    assert_eq!(crate::helpers::element_text(&html, "unread-count").as_deref(), Some("1"));
    let (cb, _) = app.signed_in("owner@salonb.test").await;
    let html = cb.get(app.url("/notifications")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"no-notifications\""), "the other tenant sees nothing");
    // Opening another user's notification by id is not possible.
    let theirs = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM notifications ORDER BY id LIMIT 1").fetch_one(p).await).unwrap();
    assert_eq!(cb.get(app.url(&format!("/notifications/{theirs}"))).send().await.unwrap().status(), 404);
    // Each user reads it on their own: the owner opens it, the agent still has it unread.
    let unread = async |c: &reqwest::Client| -> i64 {
        let v: Value = c.get(app.url("/notifications/unread")).send().await.unwrap().json().await.unwrap();
        v["unread"].as_i64().unwrap()
    };
    let (agent, _) = app.signed_in("agent@salona.test").await;
    assert_eq!((unread(&c).await, unread(&agent).await), (1, 1));
    let opened = c.get(app.url(&format!("/notifications/{theirs}"))).send().await.unwrap();
    let location = opened.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(opened.status().is_redirection() && location.starts_with("/inbox"), "{} {location}", opened.status());
    assert_eq!((unread(&c).await, unread(&agent).await), (0, 1));
    // "All read" covers the tenant's notifications up to now, for that user only.
    let (agent, csrf) = app.signed_in("agent@salona.test").await;
    let agent_page = agent.get(app.url("/notifications")).send().await.unwrap().text().await.unwrap();
    assert!(agent_page.contains("Neue WhatsApp-Nachricht von Anna Schmidt"), "the agent's list has it too");
    assert_eq!(agent.post(app.url("/notifications/read")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap().status(), 303);
    assert_eq!((unread(&c).await, unread(&agent).await), (0, 0));
    let body = text_body(&number, "491701234567", "Anna Schmidt", &[("wamid.TWO", "Noch eine Frage")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    eventually("processed", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    assert_eq!((unread(&c).await, unread(&agent).await), (1, 1), "a new message is unread for both again");
}

#[tokio::test]
async fn a_batched_body_is_applied_completely() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    let (t2, number2) = tenant_with_number(&app, "Salon B").await;
    let one: Value = serde_json::from_slice(&text_body(&number, "4911", "A", &[("wamid.1", "a"), ("wamid.2", "b"), ("wamid.3", "c")])).unwrap();
    let two: Value = serde_json::from_slice(&text_body(&number2, "4922", "B", &[("wamid.4", "d")])).unwrap();
    let status = json!({"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": number},
        "statuses": [{"id": "wamid.OUT", "status": "delivered", "timestamp": "1764000001", "recipient_id": "4911"}]}});
    let mut entries = one["entry"].as_array().unwrap().clone();
    entries[0]["changes"].as_array_mut().unwrap().push(status);
    entries.push(two["entry"][0].clone());
    let body = json!({"object": "whatsapp_business_account", "entry": entries}).to_string();
    assert_eq!(post_signed(&app, body.as_bytes()).await.status(), 200);
    eventually("processed", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    for id in ["wamid.1", "wamid.2", "wamid.3"] {
        assert_eq!(count_for_message(&app.db, t, id).await.unwrap(), 1, "{id}");
    }
    assert_eq!(count_for_message(&app.db, t2, "wamid.4").await.unwrap(), 1);
}

#[tokio::test]
async fn bodies_nobody_can_apply_stay_visible_to_support_with_their_json() {
    let app = spawn_app().await;
    app.user(None, "support@op.test", Role::Support).await;
    let body = text_body("PN-UNKNOWN", "4933", "Zoe", &[("wamid.Z", "hello from nowhere")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    assert_eq!(post_signed(&app, b"this is not json").await.status(), 200);
    let odd = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA-X", "changes": [{"field": "brand_new_field", "value": {"x": 1}}]}]});
    assert_eq!(post_signed(&app, odd.to_string().as_bytes()).await.status(), 200);
    eventually("three kept", || async { count(&app, "SELECT COUNT(*) FROM webhook_unhandled").await == 3 }).await;
    let (c, _) = app.signed_in("support@op.test").await;
    let html = c.get(app.url("/support/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("PN-UNKNOWN") && html.contains("hello from nowhere"), "raw JSON shown");
    assert!(html.contains("this is not json"));
    assert!(html.contains("brand_new_field"));
    assert!(wabridge::support::count_reads(&app.db, None).await.unwrap() >= 1);
}

/// Fails its first `failures` calls, then records that it ran.
struct Flaky {
    failures: usize,
    calls: Arc<AtomicUsize>,
}

impl ChangeHandler for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, _: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            // A write that must be rolled back with the failure.
            with_tx!(&mut *tx, |c| sqlx::query("INSERT INTO tenants (name, created_at) VALUES ('flaky-was-here', $1)")
                .bind(change.now)
                .execute(c)
                .await
                .map(drop))?;
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                anyhow::bail!("flaky handler fails on purpose");
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_failing_handler_is_retried_alone_and_does_not_hold_back_the_others() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = Registry::standard().subscribe("messages", Arc::new(Flaky { failures: 2, calls: calls.clone() }));
    let app = spawn_app_with_registry(registry).await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    let body = text_body(&number, "4944", "Kim", &[("wamid.K", "hi")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    // The notifier applied at once although the flaky handler failed.
    eventually("notified", || async { count_for_message(&app.db, t, "wamid.K").await.unwrap() == 1 }).await;
    eventually("the first attempt failed", || async { calls.load(Ordering::SeqCst) >= 1 }).await;
    // Retries come after a backoff (1 s, then 2 s …); moving the clock makes them due.
    eventually("applied after two retries", || async {
        app.clock.advance(5_000);
        calls.load(Ordering::SeqCst) >= 3
    })
    .await;
    eventually("retries done", || async { count(&app, "SELECT COUNT(*) FROM handler_retries").await == 0 }).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Three attempts wrote a row each; the two failed ones were rolled back with their failure.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tenants WHERE name = 'flaky-was-here'").await, 1, "applied exactly once");
    assert_eq!(count_for_message(&app.db, t, "wamid.K").await.unwrap(), 1, "the notifier was not applied again");
    // On SQLite the toast was published before the batch was applied, and the batch applied
    // again without the failing handler: one toast all the same.
    let all = toasts(&app.db).await;
    assert_eq!(all.len(), 1, "one toast: {all:?}");
}

/// The toasts published: live events of kind `notification`, in rows of their own or of a group.
async fn toasts(db: &wabridge::store::Db) -> Vec<Value> {
    let rows = with_pool!(db.live_read(), |p| sqlx::query_as::<_, wabridge::live::StoredEvent>("SELECT id, tenant_id, user_id, kind, payload FROM live_events ORDER BY id")
        .fetch_all(p)
        .await)
    .unwrap();
    rows.iter().flat_map(wabridge::live::StoredEvent::events).filter(|(kind, _)| kind == "notification").map(|(_, payload)| payload).collect()
}

/// A tenant whose connected number is attached straight in the database (no app running).
pub async fn tenant_attached(db: &wabridge::store::Db, name: &str, waba_id: &str, phone_number_id: &str, now: i64) -> TenantId {
    let t = wabridge::accounts::store::create_tenant(db, name, now).await.unwrap();
    let a = Attachment { waba_id, business_id: None, phone_number_id, display_phone_number: None, token_ciphertext: None, status: "connected" };
    attach(db, t, &a, now).await.unwrap();
    t
}

/// Holds every batch until the test opens the gate.
struct Gate(Arc<tokio::sync::Semaphore>);

impl ChangeHandler for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    fn apply<'a>(&'a self, _: &'a mut Tx, _: &'a RoutedChange<'a>, _: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), self.0.acquire()).await;
            Ok(())
        })
    }
}

#[tokio::test]
async fn the_toast_is_published_before_its_body_is_applied() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let registry = Registry::standard().subscribe("messages", Arc::new(Gate(gate.clone())));
    let app = spawn_app_with_registry(registry).await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    let (c, _) = app.signed_in("owner@salona.test").await;
    let body = text_body(&number, "4955", "Lu", &[("wamid.G", "hallo")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    let message = "SELECT COUNT(*) FROM messages WHERE wamid = 'wamid.G'";
    // The toast is published while the gate holds the whole batch: nothing of it is applied,
    // the notification not stored yet (on SQLite by the toaster reading the feed, on
    // PostgreSQL by the one that takes the groups its instance's journal commits). The toast
    // opens the notification by its key, and a click meanwhile waits for it.
    eventually("toasted", || async { toasts(&app.db).await.len() == 1 }).await;
    let toast = toasts(&app.db).await.remove(0);
    assert_eq!(toast["actor"], "Lu");
    assert_eq!(toast["link"], "/inbox/by-wamid/wamid.G?at=1764000000");
    assert!(toast.get("id").is_none(), "no notification yet: {toast}");
    assert_eq!(count_for_message(&app.db, t, "wamid.G").await.unwrap(), 0, "stored when the body is applied");
    assert_eq!(count(&app, message).await, 0, "the batch waits at the gate");
    let key: String = url::form_urlencoded::byte_serialize(toast["key"].as_str().unwrap().as_bytes()).collect();
    let open = format!("/notifications/open?key={key}");
    // A click on the toast meanwhile waits for what it opens instead of finding nothing.
    let click = tokio::spawn(c.get(app.url(&open)).send());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!click.is_finished(), "the click waits while the message is pending");
    gate.add_permits(1_000);
    let resp = click.await.unwrap().unwrap();
    let conversation = count(&app, "SELECT conversation_id FROM messages WHERE wamid = 'wamid.G'").await;
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    // The notification, opened and read, leads to the message's link, which finds it.
    assert_eq!(location, "/inbox/by-wamid/wamid.G?at=1764000000");
    let v: Value = c.get(app.url("/notifications/unread")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["unread"], 0, "opened by its key, it is read");
    let found = c.get(app.url(&location)).send().await.unwrap();
    let shown = count(&app, "SELECT id FROM messages WHERE wamid = 'wamid.G'").await;
    assert_eq!(found.headers()["location"].to_str().unwrap(), format!("/inbox/{conversation}#msg-{shown}"));
    eventually("the batch applied", || async { count(&app, message).await == 1 }).await;
    assert_eq!(count_for_message(&app.db, t, "wamid.G").await.unwrap(), 1);
    eventually("toasted", || async { toasts(&app.db).await.len() == 1 }).await;
    assert_eq!(toasts(&app.db).await.len(), 1, "one toast");
    // A key that names nothing, with nothing pending, is not found at once.
    assert_eq!(c.get(app.url("/notifications/open?key=msg%3A1%3Awamid.NONE")).send().await.unwrap().status(), 404);
}

/// Publishes ahead too, and its first look ahead fails (say, a read of the main file): the
/// toaster's turn fails with it.
struct FailsAheadOnce(AtomicUsize);

impl ChangeHandler for FailsAheadOnce {
    fn name(&self) -> &'static str {
        "fails-ahead-once"
    }

    fn apply<'a>(&'a self, _: &'a mut Tx, _: &'a RoutedChange<'a>, _: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn publishes_ahead(&self) -> bool {
        true
    }

    fn ahead<'a>(&'a self, _: &'a mut Tx, _: &'a [RoutedChange<'a>]) -> AheadFuture<'a> {
        Box::pin(async move {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                anyhow::bail!("the look ahead failed");
            }
            Ok(Vec::new())
        })
    }
}

#[tokio::test]
async fn a_toast_the_toaster_could_not_publish_comes_from_the_processor() {
    let failing = Arc::new(FailsAheadOnce(AtomicUsize::new(0)));
    let app = spawn_app_with_registry(Registry::standard().subscribe("messages", failing.clone())).await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    assert_eq!(post_signed(&app, &text_body(&number, "4955", "Lu", &[("wamid.F1", "hallo")])).await.status(), 200);
    eventually("applied", || async { count_for_message(&app.db, t, "wamid.F1").await.unwrap() == 1 }).await;
    eventually("toasted", || async { toasts(&app.db).await.len() == 1 }).await;
    let toast = toasts(&app.db).await.remove(0);
    assert_eq!(toast["actor"], "Lu");
    // (On PostgreSQL the toaster hands the failed turn's entries back to the processors.)
    assert!(failing.0.load(Ordering::SeqCst) >= 1, "the toaster looked ahead");
    assert!(toast.get("id").is_some(), "published by the processor, with its notification: {toast}");
    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wabridge_toaster_failures_total 1"), "{metrics}");
    // The next message is toasted ahead again, once.
    assert_eq!(post_signed(&app, &text_body(&number, "4955", "Lu", &[("wamid.F2", "noch da?")])).await.status(), 200);
    eventually("applied", || async { count_for_message(&app.db, t, "wamid.F2").await.unwrap() == 1 }).await;
    eventually("toasted", || async { toasts(&app.db).await.len() == 2 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(toasts(&app.db).await.len(), 2, "one toast each");
}

/// Reads SSE events from a response until `n` events of `kind` arrived (or times out).
pub async fn read_events(resp: reqwest::Response, kind: &str, n: usize) -> Vec<(String, Value)> {
    use futures_util::StreamExt as _;
    let mut stream = resp.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("events arrive in time").expect("stream open").unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = String::new();
            let mut event = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if event == kind {
                out.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn live_events_reach_the_stream_and_a_reconnect_replays_what_it_missed() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon A").await;
    let (c, _) = app.signed_in("owner@salona.test").await;
    let stream = c.get(app.url("/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let reader = tokio::spawn(read_events(stream, "notification", 1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    post_signed(&app, &text_body(&number, "4955", "Lena", &[("wamid.L1", "Guten Tag")])).await;
    let events = reader.await.unwrap();
    assert_eq!(events[0].1["title"], "Neue WhatsApp-Nachricht von Lena");
    assert_eq!(events[0].1["preview"], "Guten Tag");
    let last_id = events[0].0.clone();

    // Two more messages while disconnected; the reconnect with Last-Event-ID gets both.
    post_signed(&app, &text_body(&number, "4955", "Lena", &[("wamid.L2", "Zweite")])).await;
    post_signed(&app, &text_body(&number, "4955", "Lena", &[("wamid.L3", "Dritte")])).await;
    eventually("processed", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    let again = c.get(app.url("/events")).header("Last-Event-ID", last_id).send().await.unwrap();
    let replayed = read_events(again, "notification", 2).await;
    // Two bodies may be applied by two processors at once on PostgreSQL: both, in either order.
    let mut previews: Vec<&str> = replayed.iter().map(|(_, n)| n["preview"].as_str().unwrap()).collect();
    previews.sort_unstable();
    assert_eq!(previews, ["Dritte", "Zweite"]);

    // Other tenants' users and support staff get no stream of this tenant.
    let (cb, _) = {
        let (t2, _) = tenant_with_number(&app, "Salon B").await;
        let _ = t2;
        app.signed_in("owner@salonb.test").await
    };
    let theirs = cb.get(app.url("/events")).header("Last-Event-ID", "0").send().await.unwrap();
    post_signed(&app, &text_body(&number, "4955", "Lena", &[("wamid.L4", "Vierte")])).await;
    let outcome = tokio::time::timeout(Duration::from_millis(800), read_events(theirs, "notification", 1)).await;
    assert!(outcome.is_err(), "another tenant's stream stays silent");
}

/// One conversation per (tenant number, customer): the same customer writing to two numbers
/// of a tenant is one customer with two conversations, each message in its own.
#[tokio::test]
async fn a_customer_writing_to_two_numbers_of_a_tenant_has_a_conversation_with_each() {
    let app = spawn_app().await;
    let (t, first) = tenant_with_number(&app, "Salon Zwei").await;
    let second = format!("PN-{}-B", t.0);
    attach(
        &app.db,
        t,
        &Attachment { waba_id: &format!("WABA-{}", t.0), business_id: None, phone_number_id: &second, display_phone_number: Some("+49 30 654321"), token_ciphertext: None, status: "connected" },
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    post_signed(&app, &text_body(&first, "4955", "Lena", &[("wamid.N1", "An die erste Nummer")])).await;
    post_signed(&app, &text_body(&second, "4955", "Lena", &[("wamid.N2", "An die zweite Nummer")])).await;
    post_signed(&app, &text_body(&first, "4955", "Lena", &[("wamid.N3", "Wieder an die erste")])).await;
    // The messages, not only the journal: a handler may leave one to a retry.
    eventually("applied", || async { count(&app, "SELECT COUNT(*) FROM messages").await == 3 }).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM customers").await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM conversations").await, 2);
    let per_number = with_pool!(app.db.read(), |p| sqlx::query_as::<_, (String, i64)>(
        "SELECT c.phone_number_id, COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id GROUP BY c.phone_number_id ORDER BY c.phone_number_id"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    let mut expected = vec![(first.clone(), 2), (second, 1)];
    expected.sort();
    assert_eq!(per_number, expected);
    // The list and the conversation say which number each is on.
    let (c, _) = app.signed_in("owner@salonzwei.test").await;
    let list = c.get(app.url("/inbox")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("<small class=\"via\">an +49 30 654321</small>") && list.contains("<small class=\"via\">an +49 30 123456</small>"), "{list}");
    let on_first = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE phone_number_id = $1").bind(&first).fetch_one(p).await).unwrap();
    let page = c.get(app.url(&format!("/inbox/{on_first}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("an <span class=\"via\">+49 30 123456</span>"), "{page}");
}

/// Two processors (PostgreSQL) applying the first messages of one new customer at once: the
/// second's inserts wait for the first's and then take its customer and conversation, instead
/// of failing the batch and leaving the message to a retry. (On SQLite the second waits for
/// the one writer and finds them.)
#[tokio::test]
async fn two_batches_meeting_on_a_new_customer_share_the_customer_and_the_conversation() {
    use wabridge::inbox::store::{conversation_for, upsert_customer};
    let (db, _dir) = crate::helpers::migrated_database().await;
    let now = 1_764_000_000_000;
    let tenant = tenant_attached(&db, "Salon Gleichzeitig", "WABA-RACE", "PN-RACE", now).await;
    let mut first = db.begin().await.unwrap();
    let customer = upsert_customer(&mut first, tenant, Some("DE.RACE1"), Some("491700009999"), Some("Rita"), None, now).await.unwrap().unwrap();
    let conversation = conversation_for(&mut first, tenant, "PN-RACE", customer, now).await.unwrap();
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let customer = upsert_customer(&mut tx, tenant, Some("DE.RACE1"), None, None, Some("rita.k"), now).await.unwrap().unwrap();
            let conversation = conversation_for(&mut tx, tenant, "PN-RACE", customer, now).await.unwrap();
            tx.commit().await.unwrap();
            (customer, conversation)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second waits for the first");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), (customer, conversation), "the same customer and conversation");
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM customers").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM conversations").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM customers WHERE bsuid = 'DE.RACE1' AND phone = '491700009999' AND name = 'Rita' AND username = 'rita.k'").await, 1, "both messages' details kept");

    // A known customer's first messages to another number: the conversation alone is new.
    let mut first = db.begin().await.unwrap();
    let other = conversation_for(&mut first, tenant, "PN-RACE-2", customer, now).await.unwrap();
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let conversation = conversation_for(&mut tx, tenant, "PN-RACE-2", customer, now).await.unwrap();
            tx.commit().await.unwrap();
            conversation
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second waits for the first");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), other);
    assert_eq!(count("SELECT COUNT(*) FROM conversations").await, 2);
}

/// A long conversation shows its newest 200 messages and a way to the older ones, page after
/// page (messages of the same second neither skipped nor repeated); an older page is not
/// replaced by the newest when something arrives (no live refresh) and leads back.
#[tokio::test]
async fn a_long_conversation_pages_back_through_its_older_messages() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Lang").await;
    let messages: Vec<(String, String)> = (0..205).map(|i| (format!("wamid.LONG{i}"), format!("Nachricht {i:03}"))).collect();
    let pairs: Vec<(&str, &str)> = messages.iter().map(|(w, t)| (w.as_str(), t.as_str())).collect();
    // One body: every message at the same second (text_body's timestamp).
    assert_eq!(post_signed(&app, &text_body(&number, "4955", "Lena", &pairs)).await.status(), 200);
    // Later, a reaction to an old message and a reply quoting another.
    let later = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "4930123456", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Lena"}, "wa_id": "4955"}],
        "messages": [
            {"from": "4955", "id": "wamid.LONG-R", "timestamp": "1764000100", "type": "reaction", "reaction": {"message_id": "wamid.LONG2", "emoji": "👍"}},
            {"from": "4955", "id": "wamid.LONG-Q", "timestamp": "1764000100", "type": "text", "text": {"body": "Wie gesagt"}, "context": {"from": "4930123456", "id": "wamid.LONG3"}}
        ]}}]}]});
    assert_eq!(post_signed(&app, later.to_string().as_bytes()).await.status(), 200);
    eventually("applied", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 && count(&app, "SELECT COUNT(*) FROM messages").await == 207 }).await;
    let id = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations").fetch_one(p).await).unwrap();
    let (c, _) = app.signed_in("owner@salonlang.test").await;
    let shown = |html: &str| -> Vec<String> { html.split("<div class=\"text\">").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect() };
    let link = |html: &str, id_attr: &str| -> Option<String> {
        let at = html.find(&format!("id=\"{id_attr}\""))?;
        Some(html[..at].rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&"))
    };
    let newest = c.get(app.url(&format!("/inbox/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(newest.contains(&format!("data-conversation=\"{id}\"")) && link(&newest, "newest-messages").is_none());
    let first = shown(&newest);
    // 200 rows: the reaction is one of them, the quoting reply another.
    assert_eq!((first.len(), first.first().unwrap().as_str(), first.last().unwrap().as_str()), (199, "Nachricht 007", "Wie gesagt"));
    assert!(newest.contains("<blockquote class=\"quoted\">Nachricht 003</blockquote>"), "the quote from an older page");
    let partial = c.get(app.url(&format!("/inbox/{id}/messages"))).send().await.unwrap().text().await.unwrap();
    let older = link(&partial, "older-messages").expect("the live partial keeps the way back");
    assert_eq!(Some(older.clone()), link(&newest, "older-messages"));
    let page = c.get(app.url(&older)).send().await.unwrap().text().await.unwrap();
    assert_eq!(shown(&page), ["Nachricht 000", "Nachricht 001", "Nachricht 002", "Nachricht 003", "Nachricht 004", "Nachricht 005", "Nachricht 006"]);
    let reacted = page.split("<div class=\"msg ").find(|m| m.contains("Nachricht 002")).unwrap();
    assert!(reacted.contains("<div class=\"reactions\">👍</div>"), "the reaction from a newer page: {reacted}");
    assert!(link(&page, "older-messages").is_none(), "nothing older");
    assert_eq!(link(&page, "newest-messages").as_deref(), Some(format!("/inbox/{id}").as_str()));
    assert!(!page.contains("data-conversation="), "an older page is not refreshed with the newest");

    // A notification's link opens the page that holds its message, marked: the oldest
    // message's is an older page with it and the ten after it; a recent one's the newest page.
    let (oldest, recent, eleventh) = (message_id(&app, "wamid.LONG0").await, message_id(&app, "wamid.LONG-Q").await, message_id(&app, "wamid.LONG11").await);
    let to = |wamid: &str| format!("/inbox/by-wamid/{wamid}?at=1764000000");
    let opened = c.get(app.url(&to("wamid.LONG0"))).send().await.unwrap();
    let location = opened.headers()["location"].to_str().unwrap().to_owned();
    let arrival = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT arrival FROM messages WHERE wamid = 'wamid.LONG11'").fetch_one(p).await).unwrap();
    assert_eq!(location, format!("/inbox/{id}?before=1764000000000&before_arrival={arrival}&before_id={eleventh}#msg-{oldest}"));
    let page = c.get(app.url(location.split('#').next().unwrap())).send().await.unwrap().text().await.unwrap();
    let expected: Vec<String> = (0..=10).map(|i| format!("Nachricht {i:03}")).collect();
    assert_eq!(shown(&page), expected);
    assert!(page.contains(&format!("id=\"msg-{oldest}\"")) && link(&page, "newest-messages").is_some());
    let opened = c.get(app.url("/inbox/by-wamid/wamid.LONG-Q?at=1764000100")).send().await.unwrap();
    assert_eq!(opened.headers()["location"].to_str().unwrap(), format!("/inbox/{id}#msg-{recent}"));
    // The newest page's oldest message is still on it; the one before it is not.
    let (on_newest, before_newest) = (message_id(&app, "wamid.LONG7").await, message_id(&app, "wamid.LONG6").await);
    let opened = c.get(app.url(&to("wamid.LONG7"))).send().await.unwrap();
    assert_eq!(opened.headers()["location"].to_str().unwrap(), format!("/inbox/{id}#msg-{on_newest}"));
    let opened = c.get(app.url(&to("wamid.LONG6"))).send().await.unwrap();
    assert!(opened.headers()["location"].to_str().unwrap().ends_with(&format!("#msg-{before_newest}")));
    assert!(opened.headers()["location"].to_str().unwrap().contains("?before="));
}

/// Messages of one second of Meta's time stand in the order their webhooks came in, not in
/// the order of their row ids: on PostgreSQL several processors apply webhooks side by side,
/// and the one that came later may be applied first and get the lower id (made so here by
/// moving the first one's arrival after the second's).
#[tokio::test]
async fn messages_of_one_second_stand_in_the_order_they_came_in() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Folge").await;
    for (wamid, text) in [("wamid.APPLIED1", "Ich hätte gern einen Termin"), ("wamid.APPLIED2", "Hallo")] {
        assert_eq!(post_signed(&app, &text_body(&number, "4977", "Jana", &[(wamid, text)])).await.status(), 200);
        eventually("applied", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    }
    with_pool!(app.db.write(), |p| sqlx::query("UPDATE messages SET arrival = arrival + 1000 WHERE wamid = 'wamid.APPLIED1'").execute(p).await.map(drop)).unwrap();
    let id = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations").fetch_one(p).await).unwrap();
    let (c, _) = app.signed_in("owner@salonfolge.test").await;
    let page = c.get(app.url(&format!("/inbox/{id}"))).send().await.unwrap().text().await.unwrap();
    let (hallo, termin) = (page.find("Hallo").unwrap(), page.find("Ich hätte gern einen Termin").unwrap());
    assert!(hallo < termin, "the first to come stands first, whatever its id: {page}");
    // The list's line likewise: the conversation's last message is the last to come, not the
    // last applied. (Made so by moving the stored last message's arrival after the next one's.)
    let line = || async {
        let list = c.get(app.url("/inbox")).send().await.unwrap().text().await.unwrap();
        list.split("<span class=\"preview\">").nth(1).map(|s| s.split('<').next().unwrap().to_owned()).unwrap_or(list)
    };
    assert_eq!(line().await, "Hallo");
    with_pool!(app.db.write(), |p| sqlx::query("UPDATE conversations SET last_arrival = last_arrival + 1000").execute(p).await.map(drop)).unwrap();
    assert_eq!(post_signed(&app, &text_body(&number, "4977", "Jana", &[("wamid.APPLIED3", "Früher gekommen, später angewandt")])).await.status(), 200);
    eventually("applied", || async { count(&app, "SELECT COUNT(*) FROM messages").await == 3 }).await;
    assert_eq!(line().await, "Hallo", "the line keeps the message that came last");
}

/// Opening a conversation reads, for the user who opens it, the notifications of the customer
/// messages it shows — not for the tenant's other users, and not those of other conversations.
#[tokio::test]
async fn opening_a_conversation_reads_its_messages_notifications_for_its_reader() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Lesen").await;
    assert_eq!(post_signed(&app, &text_body(&number, "4955", "Lena", &[("wamid.READ1", "Hallo"), ("wamid.READ2", "Noch da?")])).await.status(), 200);
    assert_eq!(post_signed(&app, &text_body(&number, "4966", "Mia", &[("wamid.READ3", "Guten Tag")])).await.status(), 200);
    eventually("applied", || async { count(&app, "SELECT COUNT(*) FROM notifications").await == 3 }).await;
    let unread = |c: reqwest::Client| {
        let url = app.url("/notifications/unread");
        async move { c.get(url).send().await.unwrap().json::<Value>().await.unwrap()["unread"].as_i64().unwrap() }
    };
    let (owner, _) = app.signed_in("owner@salonlesen.test").await;
    let (agent, _) = app.signed_in("agent@salonlesen.test").await;
    assert_eq!((unread(owner.clone()).await, unread(agent.clone()).await), (3, 3));
    let lena = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE wamid = 'wamid.READ1'").fetch_one(p).await).unwrap();
    let page = owner.get(app.url(&format!("/inbox/{lena}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<span id="unread-count" class="count">1</span>"#), "the header counts what is left");
    assert_eq!((unread(owner.clone()).await, unread(agent.clone()).await), (1, 3), "Mia's is left, and the agent's are theirs");
    // Opened again: nothing more to read.
    let page = owner.get(app.url(&format!("/inbox/{lena}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<span id="unread-count" class="count">1</span>"#));
}

/// The names of the first `n` events a stream sends.
async fn first_events(resp: reqwest::Response, n: usize) -> Vec<String> {
    use futures_util::StreamExt as _;
    let mut stream = resp.bytes_stream();
    let (mut buffer, mut out) = (String::new(), Vec::new());
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("events arrive in time").unwrap().unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            out.extend(frame.lines().find_map(|l| l.strip_prefix("event:")).map(|e| e.trim().to_owned()));
        }
    }
    out.truncate(n);
    out
}

/// On SQLite a commit's live events are written after it, so a crash in between loses them:
/// a page whose stream a process that has since ended began (its URL carries that process's
/// mark) is told to resynchronise before anything else, and refetches what it shows. Pages
/// the running process rendered are not; on PostgreSQL, where the events commit with what
/// they tell of, no page is.
#[tokio::test]
async fn a_stream_begun_before_a_restart_is_told_to_resynchronise_on_sqlite() {
    let (url, _dir) = crate::helpers::fresh_database_url().await;
    let before = crate::helpers::spawn_app_on(&url).await;
    let (_, number) = tenant_with_number(&before, "Salon Neustart").await;
    let live_url = |html: &str| {
        let at = html.find("data-live=\"").expect("a tenant's page has an event stream") + "data-live=\"".len();
        html[at..].split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&")
    };
    let (c, _) = before.signed_in("owner@salonneustart.test").await;
    let old_page = live_url(&c.get(before.url("/inbox")).send().await.unwrap().text().await.unwrap());
    assert!(old_page.starts_with("/events?after=") && old_page.contains("&boot="), "{old_page}");
    drop(before);

    let after = crate::helpers::spawn_app_on(&url).await;
    let c = client();
    assert_eq!(after.sign_in(&c, "owner@salonneustart.test", crate::helpers::PASSWORD).await.status(), 303);
    let new_page = live_url(&c.get(after.url("/inbox")).send().await.unwrap().text().await.unwrap());
    assert_ne!(new_page, old_page, "each process marks its pages");
    let old_stream = c.get(after.url(&old_page)).send().await.unwrap();
    let new_stream = c.get(after.url(&new_page)).send().await.unwrap();
    let sqlite = crate::helpers::backend() == "sqlite";
    let (old_events, new_events) = (tokio::spawn(first_events(old_stream, if sqlite { 2 } else { 1 })), tokio::spawn(first_events(new_stream, 1)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    post_signed(&after, &text_body(&number, "4977", "Nora", &[("wamid.R1", "Noch da?")])).await;
    let expected: &[&str] = if sqlite { &["resync", "notification"] } else { &["notification"] };
    assert_eq!(old_events.await.unwrap(), expected);
    assert_eq!(new_events.await.unwrap(), ["notification"]);
}

/// After a restart the processor's in-memory feed knows nothing of what an earlier run left in
/// the journal: it applies all of it, batch after batch, before it trusts the feed to say that
/// nothing new has come.
#[tokio::test]
async fn a_backlog_left_by_an_earlier_run_is_applied_batch_after_batch() {
    use futures_util::future::join_all;
    let (db, _dir) = crate::helpers::migrated_database().await;
    let clock = wabridge::clock::Clock::default();
    // The earlier run journaled 1,200 bodies (more than two batches) and applied none.
    let earlier = wabridge::ingest::journal::Journal::start(db.clone(), clock.clone());
    let body = |i: usize| bytes::Bytes::from(format!(r#"{{"object":"whatsapp_business_account","entry":[{{"id":"earlier-{i}","changes":[]}}]}}"#));
    for result in join_all((0..1200).map(|i| earlier.append(body(i)))).await {
        result.unwrap();
    }
    assert_eq!(wabridge::ingest::journal::pending_count(&db).await.unwrap(), 1200);
    // What waits up to an id (a toast's click waits for what the journal held when it came).
    let newest = wabridge::ingest::journal::newest_id(&db).await.unwrap();
    assert_eq!(wabridge::ingest::journal::pending_through(&db, newest - 600).await.unwrap(), 600);
    assert_eq!(wabridge::ingest::journal::pending_through(&db, newest - 1200).await.unwrap(), 0);

    let feed = (db.engine() == wabridge::store::Engine::Sqlite).then(wabridge::ingest::feed::Feed::start);
    let processor = wabridge::ingest::processor::Processor::new(db.clone(), clock, Registry::standard(), wabridge::live::LiveHub::default(), Arc::default())
        .with_feed(feed);
    let mut applied = 0;
    loop {
        match processor.process_batch().await.unwrap() {
            0 => break,
            n => applied += n,
        }
    }
    assert_eq!(applied, 1200, "every entry, without waiting for the next commit");
    assert_eq!(wabridge::ingest::journal::pending_count(&db).await.unwrap(), 0);
    assert_eq!(wabridge::ingest::journal::pending_through(&db, newest).await.unwrap(), 0);
    assert_eq!(processor.process_batch().await.unwrap(), 0, "and then nothing");
}

/// Under a backlog, the toaster publishes the toasts of what has just come in while the
/// processor is still at work on batches before it; the processor stores their notifications
/// later without a second toast.
#[tokio::test]
async fn under_a_backlog_toasts_do_not_wait_for_the_batches_before_them() {
    use futures_util::future::join_all;
    let (db, _dir) = crate::helpers::migrated_database().await;
    let clock = wabridge::clock::Clock::default();
    let now = clock.now_ms();
    let number = "PN-AHEAD";
    let t = tenant_attached(&db, "Salon Vorlauf", "WABA-AHEAD", number, now).await;
    // 600 bodies (more than a batch of 512): a customer message first and last, nothing for
    // anyone in between.
    let journal = wabridge::ingest::journal::Journal::start(db.clone(), clock.clone());
    let body = |i: usize| match i {
        0 => text_body(number, "4977", "Erste", &[("wamid.AHEAD-FIRST", "vorne")]),
        599 => text_body(number, "4978", "Letzte", &[("wamid.AHEAD-LAST", "hinten")]),
        _ => format!(r#"{{"object":"whatsapp_business_account","entry":[{{"id":"between-{i}","changes":[]}}]}}"#).into_bytes(),
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let registry = Registry::standard().subscribe("messages", Arc::new(Gate(gate.clone())));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let mut processor = wabridge::ingest::processor::Processor::new(db.clone(), clock, registry, wabridge::live::LiveHub::default(), Arc::default())
        .with_feed(journal.feed.clone());
    processor.start_toaster(&journal, shutdown);
    // The first body, and its batch at the gate; then 598 appended together, and the last.
    journal.append(bytes::Bytes::from(body(0))).await.unwrap();
    let previews = || async { toasts(&db).await.iter().map(|t| t["preview"].as_str().unwrap().to_owned()).collect::<Vec<_>>() };
    // (PostgreSQL's processors leave an entry to the toaster until it is published.)
    eventually("the first body toasted", || async { previews().await.contains(&"vorne".to_owned()) }).await;
    let first_batch = tokio::spawn({
        let processor = processor.clone();
        async move { processor.process_batch().await.unwrap() }
    });
    for result in join_all((1..599).map(|i| journal.append(bytes::Bytes::from(body(i))))).await {
        result.unwrap();
    }
    journal.append(bytes::Bytes::from(body(599))).await.unwrap();
    let last_message = "SELECT COUNT(*) FROM messages WHERE wamid = 'wamid.AHEAD-LAST'";
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap() }
    };
    // The first batch waits at the gate; the 600th body's toast is published.
    eventually("the last body toasted", || async { previews().await.contains(&"hinten".to_owned()) }).await;
    assert_eq!(count_for_message(&db, t, "wamid.AHEAD-LAST").await.unwrap(), 0, "not applied yet");
    assert!(!first_batch.is_finished(), "the first batch still waits at the gate");
    gate.add_permits(1_000);
    let mut applied = first_batch.await.unwrap();
    loop {
        match processor.process_batch().await.unwrap() {
            0 => break,
            n => applied += n,
        }
    }
    assert_eq!(applied, 600);
    // Applied once each: one message, one notification, one toast.
    assert_eq!(count(last_message).await, 1);
    for wamid in ["wamid.AHEAD-FIRST", "wamid.AHEAD-LAST"] {
        assert_eq!(count_for_message(&db, t, wamid).await.unwrap(), 1, "{wamid} notified once");
    }
    assert_eq!(count("SELECT COUNT(*) FROM notifications WHERE kind = 'inbound_message'").await, 2);
    let mut published = previews().await;
    published.sort_unstable();
    assert_eq!(published, ["hinten", "vorne"], "each toast published once");
    // What nobody handles in between is kept for support when it is applied, as always.
    assert_eq!(count("SELECT COUNT(*) FROM webhook_unhandled WHERE reason = 'no_changes'").await, 598);
}

/// The events of one commit for one audience share a row: three messages in one body make two
/// rows (the toasts are committed ahead of the rest, then the messages), each reaching the stream
/// as every one of its events in order, the row's id on the last — and a browser that saw only
/// the row before it replays all of them.
#[tokio::test]
async fn a_commits_events_share_a_row_and_reach_the_stream_one_by_one() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon Gruppe").await;
    let (c, _) = app.signed_in("owner@salongruppe.test").await;
    let before = wabridge::live::latest_event(&app.db, t).await.unwrap();
    let frames = |resp: reqwest::Response| async move {
        use futures_util::StreamExt as _;
        let mut stream = resp.bytes_stream();
        let (mut buffer, mut out) = (String::new(), Vec::<(Option<String>, String, Value)>::new());
        while out.len() < 6 {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("events arrive in time").unwrap().unwrap();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned());
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    out.push((field("id:"), event, serde_json::from_str(&data).unwrap()));
                }
            }
        }
        out
    };
    let live = tokio::spawn(frames(c.get(app.url("/events")).send().await.unwrap()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    post_signed(&app, &text_body(&number, "4966", "Mia", &[("wamid.G1", "eins"), ("wamid.G2", "zwei"), ("wamid.G3", "drei")])).await;
    let got = live.await.unwrap();
    let row = wabridge::live::latest_event(&app.db, t).await.unwrap();
    let rows = with_pool!(app.db.live_read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM live_events WHERE tenant_id = $1 AND id > $2")
        .bind(t)
        .bind(before)
        .fetch_one(p)
        .await)
    .unwrap();
    let kinds: Vec<&str> = got.iter().map(|(_, kind, _)| kind.as_str()).collect();
    let ids: Vec<Option<String>> = got.iter().map(|(id, ..)| id.clone()).collect();
    // The toasts are committed ahead of the rest of the batch: two commits, two rows.
    assert_eq!(rows, 2, "a row per commit");
    assert_eq!(kinds, ["notification", "notification", "notification", "message", "message", "message"]);
    assert_eq!(ids, [None, None, Some((row - 1).to_string()), None, None, Some(row.to_string())], "each row's id goes with its last");
    let toasts = &got[..3];
    let previews: Vec<&str> = toasts.iter().map(|(_, _, data)| data["preview"].as_str().unwrap()).collect();
    assert_eq!(previews, ["eins", "zwei", "drei"]);
    assert_eq!(toasts[0].2["title"], "Neue WhatsApp-Nachricht von Mia", "each event localized");

    let replayed = frames(c.get(app.url("/events")).header("Last-Event-ID", before.to_string()).send().await.unwrap()).await;
    assert_eq!(replayed, got, "a reconnect replays the whole row");
}

/// One body (one journal entry, so one batch applied set-wise) with everything at once: the
/// same as if each message had been applied on its own.
#[tokio::test]
async fn a_batch_is_applied_as_if_message_by_message() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon Batch").await;
    let change = |contacts: Value, messages: Value| {
        json!({"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "4930123456", "phone_number_id": number}, "contacts": contacts, "messages": messages}})
    };
    let text = |from: Value, user: Value, id: &str, at: i64, body: &str| {
        json!({"from": from, "from_user_id": user, "id": id, "timestamp": at.to_string(), "type": "text", "text": {"body": body}})
    };
    let anna = json!([{"profile": {"name": "Anna"}, "wa_id": "491700000001"}]);
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": format!("WABA-{}", t.0), "changes": [
        // Anna (phone only) writes twice, the second message first in time.
        change(anna.clone(), json!([text(json!("491700000001"), Value::Null, "wamid.A1", 1_764_000_100, "erste"),
                                    text(json!("491700000001"), Value::Null, "wamid.A2", 1_764_000_050, "zweite")])),
        // Ben by BSUID only, then by phone only, then by both: one customer.
        change(json!([{"profile": {"name": "Ben"}, "user_id": "DE.1001"}]), json!([text(Value::Null, json!("DE.1001"), "wamid.B1", 1_764_000_200, "b eins")])),
        change(json!([{"profile": {"name": "Ben"}, "wa_id": "491700000002"}]), json!([text(json!("491700000002"), Value::Null, "wamid.B2", 1_764_000_300, "b zwei")])),
        change(json!([{"profile": {"name": "Ben K."}, "wa_id": "491700000002", "user_id": "DE.1001"}]),
               json!([text(json!("491700000002"), json!("DE.1001"), "wamid.B3", 1_764_000_400, "b drei")])),
        // Anna's first message again (Meta redelivers), and a reaction to it.
        change(anna.clone(), json!([text(json!("491700000001"), Value::Null, "wamid.A1", 1_764_000_100, "erste"),
            {"from": "491700000001", "id": "wamid.A3", "timestamp": "1764000500", "type": "reaction", "reaction": {"message_id": "wamid.A1", "emoji": "👍"}}])),
    ]}]})
    .to_string();
    assert_eq!(post_signed(&app, body.as_bytes()).await.status(), 200);
    eventually("applied", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;

    let check = async || {
        assert_eq!(count(&app, "SELECT COUNT(*) FROM customers").await, 2, "Anna and Ben");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM customers WHERE bsuid = 'DE.1001' AND phone = '491700000002' AND name = 'Ben K.'").await, 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM conversations").await, 2);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM messages").await, 6, "A1 once, A2, A3, B1, B2, B3");
        // Unread: every customer message but the reaction; the list shows the latest message
        // by Meta's time (as the conversation orders them), not the last one applied; the
        // window runs from the latest customer message by Meta's time.
        let anna: (i64, String, i64) = with_pool!(app.db.read(), |p| sqlx::query_as(
            "SELECT c.unread, c.last_preview, c.last_customer_message_at FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE u.name = 'Anna'"
        )
        .fetch_one(p)
        .await)
        .unwrap();
        assert_eq!(anna, (2, "erste".to_owned(), 1_764_000_100_000));
        let ben: (i64, String) = with_pool!(app.db.read(), |p| sqlx::query_as(
            "SELECT c.unread, c.last_preview FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE u.bsuid = 'DE.1001'"
        )
        .fetch_one(p)
        .await)
        .unwrap();
        assert_eq!(ben, (3, "b drei".to_owned()));
        // Six distinct messages, each one notification for both users.
        assert_eq!(count(&app, "SELECT COUNT(*) FROM notifications").await, 6);
    };
    check().await;
    // The whole body once more (a new journal entry): nothing changes.
    assert_eq!(post_signed(&app, body.as_bytes()).await.status(), 200);
    eventually("applied", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    check().await;

    // Statuses of two sends in one batch, out of order: one found by Meta's id, one only by
    // the outbox id Meta echoes (our send timed out before we learned the wamid).
    let conversation: i64 = with_pool!(app.db.read(), |p| sqlx::query_scalar("SELECT MIN(id) FROM conversations").fetch_one(p).await).unwrap();
    for (wamid, outbox) in [(Some("wamid.OUT1"), 7001_i64), (None, 7002)] {
        with_pool!(app.db.write(), |p| sqlx::query(
            "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, outbox_id, status, status_rank, meta_at, created_at)
             VALUES ($1, $2, 'out', $3, 'text', 'x', '{}', $4, 'accepted', 1, 1764000600000, 1764000600000)"
        )
        .bind(t)
        .bind(conversation)
        .bind(wamid)
        .bind(outbox)
        .execute(p)
        .await
        .map(drop))
        .unwrap();
    }
    let status = |id: &str, s: &str, outbox: i64| {
        json!({"id": id, "status": s, "timestamp": "1764000700", "recipient_id": "491700000001", "biz_opaque_callback_data": format!("wabridge:ob:{outbox}"),
               "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"}})
    };
    let statuses = json!({"object": "whatsapp_business_account", "entry": [{"id": format!("WABA-{}", t.0), "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": number},
        "statuses": [status("wamid.OUT1", "read", 7001), status("wamid.OUT1", "delivered", 7001), status("wamid.OUT1", "sent", 7001),
                     status("wamid.OUT2", "delivered", 7002), status("wamid.OUT2", "sent", 7002)]}}]}]})
    .to_string();
    assert_eq!(post_signed(&app, statuses.as_bytes()).await.status(), 200);
    eventually("applied", || async { wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0 }).await;
    let out: Vec<(Option<String>, String)> =
        with_pool!(app.db.read(), |p| sqlx::query_as("SELECT wamid, status FROM messages WHERE direction = 'out' ORDER BY outbox_id").fetch_all(p).await).unwrap();
    assert_eq!(out, vec![(Some("wamid.OUT1".to_owned()), "read".to_owned()), (Some("wamid.OUT2".to_owned()), "delivered".to_owned())]);
    // One cost per message, tied to it.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM message_costs WHERE message_id IS NOT NULL").await, 2);
    // All of it on the set-wise path: no batch fell back to change-by-change.
    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("wabridge_webhook_batches_isolated_total"), "{metrics}");
}

/// Housekeeping removes applied journal entries after their retention and live events after a
/// day, oldest first and over several chunks — but keeps what is not applied yet, what a
/// handler still retries and what support still sees as unhandled; 0 days keeps everything.
#[tokio::test]
async fn old_journal_entries_and_live_events_are_swept_but_nothing_still_needed() {
    use futures_util::future::join_all;
    use wabridge::ingest::journal::{self, Journal};
    use wabridge::ingest::retention::{LIVE_EVENTS_KEPT_MS, Swept, sweep};
    const DAY: i64 = 86_400_000;
    let (db, _dir) = crate::helpers::migrated_database().await;
    let clock = wabridge::clock::Clock::default();
    let tenant = wabridge::accounts::store::create_tenant(&db, "Salon Kehraus", clock.now_ms()).await.unwrap();
    let number = Attachment { waba_id: "WABA-SWEEP", business_id: None, phone_number_id: "NUM-SWEEP", display_phone_number: None, token_ciphertext: None, status: "connected" };
    attach(&db, tenant, &number, clock.now_ms()).await.unwrap();

    // 4,500 bodies every handler applies (more than two chunks of the sweep), and one that is
    // not JSON: support sees it as unhandled.
    let journal = Journal::start(db.clone(), clock.clone());
    let body = |i: usize| {
        bytes::Bytes::from(format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA-SWEEP","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"NUM-SWEEP"}},"statuses":[],"n":{i}}}}}]}}]}}"#
        ))
    };
    for result in join_all((0..4500).map(|i| journal.append(body(i)))).await {
        result.unwrap();
    }
    journal.append(bytes::Bytes::from_static(b"not json")).await.unwrap();
    let processor = wabridge::ingest::processor::Processor::new(db.clone(), clock.clone(), Registry::standard(), wabridge::live::LiveHub::default(), Arc::default());
    while processor.process_batch().await.unwrap() > 0 {}
    let ids = || async { with_pool!(db.journal_read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM webhook_journal ORDER BY id").fetch_all(p).await).unwrap() };
    let all = ids().await;
    assert_eq!(all.len(), 4501);
    let unhandled = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT journal_id FROM webhook_unhandled").fetch_all(p).await).unwrap();
    assert_eq!(unhandled, [all[4500]], "only the body that is not JSON is unhandled");
    // A handler still retries entry 100.
    with_pool!(db.write(), |p| sqlx::query(
        "INSERT INTO handler_retries (journal_id, change_index, handler, tenant_id, attempts, next_attempt_at, last_error) VALUES ($1, 0, 'inbox', $2, 1, 0, 'test')"
    )
    .bind(all[100])
    .bind(tenant)
    .execute(p)
    .await
    .map(drop))
    .unwrap();
    // Three bodies arrive after the processor's last turn: not applied.
    for i in 0..3 {
        journal.append(body(5000 + i)).await.unwrap();
    }
    let now = clock.now_ms();
    for at in [now - 2 * DAY, now - 2 * DAY, now - LIVE_EVENTS_KEPT_MS - 1, now] {
        with_pool!(db.live_write(), |p| sqlx::query("INSERT INTO live_events (tenant_id, user_id, kind, payload, at) VALUES ($1, NULL, 'test', '{}', $2)")
            .bind(tenant)
            .bind(at)
            .execute(p)
            .await
            .map(drop))
        .unwrap();
    }
    let live_events = || async { with_pool!(db.live_read(), |p| sqlx::query_scalar::<_, i64>("SELECT at FROM live_events ORDER BY id").fetch_all(p).await).unwrap() };
    // Two customers' pair-limit rows: one whose allowance is whole again, one whose time is
    // ahead of now (swept only once that has passed).
    for (recipient, tat_ms) in [("491700000001", now - 1), ("491700000002", now + 30 * DAY)] {
        with_pool!(db.write(), |p| sqlx::query("INSERT INTO pair_pacing (phone_number_id, recipient, tat_at) VALUES ('NUM-SWEEP', $1, $2)")
            .bind(recipient)
            .bind(tat_ms * 1000)
            .execute(p)
            .await
            .map(drop))
        .unwrap();
    }

    // Today: the journal is young; live events older than a day go.
    assert_eq!(sweep(&db, now, 30).await.unwrap(), Swept { journal: 0, live_events: 3, pair_slots: 1 });
    assert_eq!(live_events().await, [now]);
    assert_eq!(ids().await.len(), 4504);

    // 0 days: the journal is kept for ever, however old.
    assert_eq!(sweep(&db, now + 400 * DAY, 0).await.unwrap(), Swept { journal: 0, live_events: 1, pair_slots: 1 });
    assert_eq!(ids().await.len(), 4504);

    // A month later: every applied entry goes but the retried and the unhandled one.
    assert_eq!(sweep(&db, now + 31 * DAY, 30).await.unwrap(), Swept { journal: 4499, live_events: 0, pair_slots: 0 });
    let left = ids().await;
    assert_eq!(left.len(), 5);
    assert_eq!(left[..2], [all[100], all[4500]]);
    assert_eq!(journal::pending_count(&db).await.unwrap(), 3, "the three not applied yet stay, and stay pending");
    assert_eq!(sweep(&db, now + 31 * DAY, 30).await.unwrap(), Swept::default(), "a second sweep finds nothing");

    // The pending ones are still applied afterwards.
    while processor.process_batch().await.unwrap() > 0 {}
    assert_eq!(journal::pending_count(&db).await.unwrap(), 0);
}

/// PostgreSQL: what the journal handed to a toaster that never publishes it (its instance
/// died) is left alone for a few seconds, then applied and toasted by a processor.
#[tokio::test]
async fn entries_a_dead_toaster_held_are_toasted_by_the_processors_after_the_grace() {
    let (db, _dir) = crate::helpers::migrated_database().await;
    let clock = wabridge::clock::Clock::default();
    if db.engine() == wabridge::store::Engine::Sqlite {
        // SQLite's toaster reads the feed in the processor's own process: nothing is handed.
        assert!(wabridge::ingest::journal::Journal::start(db.clone(), clock.clone()).toast_ahead().is_none());
        return;
    }
    let now = clock.now_ms();
    let number = "PN-DEAD-TOASTER";
    let t = tenant_attached(&db, "Salon Stille", "WABA-DEAD", number, now).await;
    let journal = wabridge::ingest::journal::Journal::start(db.clone(), clock.clone());
    // A toaster's queue that nobody reads.
    let held = journal.toast_ahead().expect("PostgreSQL hands groups to a toaster");
    journal.append(bytes::Bytes::from(text_body(number, "4981", "Ida", &[("wamid.DEAD-1", "hallo?")]))).await.unwrap();
    let processor = wabridge::ingest::processor::Processor::new(db.clone(), clock.clone(), Registry::standard(), wabridge::live::LiveHub::default(), Arc::default());
    assert_eq!(processor.process_batch().await.unwrap(), 0, "left to the toaster");
    clock.advance(wabridge::ingest::journal::AHEAD_GRACE_MS + 1);
    assert_eq!(processor.process_batch().await.unwrap(), 1, "the processors' once the grace is over");
    assert_eq!(count_for_message(&db, t, "wamid.DEAD-1").await.unwrap(), 1);
    let published = toasts(&db).await;
    assert_eq!(published.len(), 1, "toasted once, by the processor");
    assert!(published[0].get("id").is_some(), "with its notification: {}", published[0]);
    drop(held);
}
