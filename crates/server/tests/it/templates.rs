//! Templates: support creates them (validated as Meta validates), Meta's webhooks move their
//! state, the tenant sees it, and only approved templates can be picked.

use serde_json::json;
use wabridge::accounts::Role;
use wabridge::notifications::count_for_key;
use wabridge::with_pool;

use crate::helpers::{SandboxApp, eventually, spawn_app, spawn_app_with_sandbox};
use crate::ingest::{post_signed, tenant_with_number};

fn template_body(field: &str, waba: &str, value: serde_json::Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": 1764000000, "changes": [{"field": field, "value": value}]}]})
        .to_string()
        .into_bytes()
}

async fn status_of(app: &crate::helpers::TestApp, name: &str) -> Option<(String, String, Option<String>, Option<String>)> {
    with_pool!(app.db.read(), |p| sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>("SELECT status, category, reason, quality FROM templates WHERE name = $1")
        .bind(name)
        .fetch_optional(p)
        .await)
    .unwrap()
}

#[tokio::test]
async fn status_category_and_quality_follow_signed_webhooks() {
    let app = spawn_app().await;
    let (t, _) = tenant_with_number(&app, "Salon A").await;
    let waba = format!("WABA-{}", t.0);
    app.user(None, "support@op.test", Role::Support).await;
    let event = |event: &str, extra: serde_json::Value| {
        let mut v = json!({"event": event, "message_template_id": 9001, "message_template_name": "booking_confirmation", "message_template_language": "de", "reason": "NONE", "message_template_category": "UTILITY"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        template_body("message_template_status_update", &waba, v)
    };
    // A template Meta knows and we did not store yet (the one onboarding submits) is picked up.
    assert_eq!(post_signed(&app, &event("PENDING", json!({}))).await.status(), 200);
    eventually("pending", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.0 == "pending") }).await;
    post_signed(&app, &event("APPROVED", json!({}))).await;
    eventually("approved", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.0 == "approved") }).await;
    post_signed(&app, &event("PAUSED", json!({"other_info": {"title": "FIRST_PAUSE", "description": "low quality"}}))).await;
    eventually("paused", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.0 == "paused" && s.2.as_deref() == Some("FIRST_PAUSE")) }).await;
    post_signed(&app, &event("REINSTATED", json!({}))).await;
    eventually("reinstated", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.0 == "approved") }).await;

    let quality = template_body("message_template_quality_update", &waba, json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": 9001, "message_template_name": "booking_confirmation", "message_template_language": "de"}));
    post_signed(&app, &quality).await;
    eventually("quality", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.3.as_deref() == Some("YELLOW")) }).await;

    // Meta moves it to marketing: the tenant's users are told once, even when Meta repeats it.
    let category = template_body("template_category_update", &waba, json!({"message_template_id": 9001, "message_template_name": "booking_confirmation", "message_template_language": "de", "previous_category": "UTILITY", "new_category": "MARKETING"}));
    post_signed(&app, &category).await;
    post_signed(&app, &category).await;
    eventually("marketing", || async { status_of(&app, "booking_confirmation").await.is_some_and(|s| s.1 == "MARKETING") }).await;
    let key = format!("tplcat:{waba}:booking_confirmation:de:MARKETING");
    eventually("warned", || async { count_for_key(&app.db, t, &key).await.unwrap() == 2 }).await;
    let (c, _) = app.signed_in("owner@salona.test").await;
    let html = c.get(app.url("/templates")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("auf Marketing umgestellt"), "{html}");
    assert!(html.contains("data-status=\"approved\""));
    let notes = c.get(app.url("/notifications")).send().await.unwrap().text().await.unwrap();
    assert!(notes.contains("wird jetzt als Marketing abgerechnet"), "{notes}");
    let (s, _) = app.signed_in("support@op.test").await;
    let html = s.get(app.url("/support/templates")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"category-warnings\"") && html.contains("Salon A"), "{html}");
}

#[tokio::test]
async fn a_paused_template_cannot_be_picked_and_the_reason_is_shown() {
    let app = spawn_app().await;
    let (t, _) = tenant_with_number(&app, "Salon A").await;
    let waba = format!("WABA-{}", t.0);
    for (id, name, event) in [(1, "booking_confirmation", "APPROVED"), (2, "reminder", "PAUSED")] {
        let body = template_body("message_template_status_update", &waba, json!({"event": event, "message_template_id": id, "message_template_name": name, "message_template_language": "de", "message_template_category": "UTILITY"}));
        post_signed(&app, &body).await;
    }
    eventually("both stored", || async { status_of(&app, "reminder").await.is_some() && status_of(&app, "booking_confirmation").await.is_some() }).await;
    let (c, csrf) = app.signed_in("owner@salona.test").await;
    let html = c.get(app.url("/templates/send")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"pick-booking_confirmation-de\""), "{html}");
    assert!(!html.contains("id=\"pick-reminder-de\""), "a paused template is not pickable");
    assert!(html.contains("Pausiert: Meta hat es wegen negativer Rückmeldungen"), "{html}");
    let paused = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM templates WHERE name = 'reminder'").fetch_one(p).await).unwrap();
    let resp = c
        .post(app.url("/templates/send"))
        .form(&[("_csrf", csrf.as_str()), ("template", &paused.to_string()), ("phone", "+49 170 1234567"), ("do", "send")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("nicht freigegeben"));
    let sent = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox").fetch_one(p).await).unwrap();
    assert_eq!(sent, 0);
}

#[tokio::test]
async fn support_creates_a_template_meta_reviews_and_the_tenant_sees_it_approved() {
    let SandboxApp { app, tenant: t, sandbox: _sandbox, .. } = spawn_app_with_sandbox(&[]).await;
    app.user(None, "support@op.test", Role::Support).await;
    let (s, csrf) = app.signed_in("support@op.test").await;
    let url = app.url(&format!("/support/tenants/{}/templates", t.0));
    // What Meta would refuse is refused here, every problem at once.
    let bad = s
        .post(&url)
        .form(&[("_csrf", csrf.as_str()), ("name", "Termin Erinnerung"), ("language", "de"), ("category", "UTILITY"), ("body", "Hallo {{Name}}, bis {{1}}"), ("buttons", &"x".repeat(26))])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    for code in ["template_name", "template_param_format", "template_button_text"] {
        assert!(html.contains(&format!("data-code=\"{code}\"")), "{code} in {html}");
    }
    let ok = s
        .post(&url)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "appointment_reminder"),
            ("language", "de"),
            ("category", "UTILITY"),
            ("header", "Terminerinnerung"),
            ("body", "Hallo {{customer_name}}, wir sehen uns am {{date}}."),
            ("footer", "Salon A"),
            ("buttons", "Absagen\nWebsite | https://salon.example"),
            ("examples", "customer_name = Anna\ndate = 12.03.2026"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303, "{}", ok.text().await.unwrap());
    // The sandbox reviews at once and tells us by webhook.
    eventually("approved by Meta", || async { status_of(&app, "appointment_reminder").await.is_some_and(|s| s.0 == "approved") }).await;
    // The default template can be (re)submitted from the support area.
    let resp = s.post(app.url(&format!("/support/tenants/{}/templates/default", t.0))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    eventually("default approved", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM templates WHERE name = 'booking_confirmation' AND status = 'approved'").fetch_one(p).await).unwrap() == 2
    })
    .await;
    // A tenant's request reaches support.
    let (c, ccsrf) = app.signed_in("owner@sandbox.test").await;
    let resp = c.post(app.url("/templates/requests")).form(&[("_csrf", ccsrf.as_str()), ("text", "Ihr Termin morgen"), ("purpose", "Erinnerung")]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let html = c.get(app.url("/templates")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("appointment_reminder") && html.contains("Freigegeben"), "{html}");
    let overview = s.get(app.url("/support/templates")).send().await.unwrap().text().await.unwrap();
    assert!(overview.contains("Ihr Termin morgen") && overview.contains("Salon Sandbox"), "{overview}");
}

#[tokio::test]
async fn browser_a_closed_window_gets_a_template_with_preview_and_cost_and_its_cost_is_counted() {
    use wabridge_testkit::webdriver::Browser;
    let SandboxApp { app, sandbox, tenant: t, fixture } = spawn_app_with_sandbox(&[]).await;
    app.user(None, "support@op.test", Role::Support).await;
    let (s, csrf) = app.signed_in("support@op.test").await;
    let resp = s.post(app.url(&format!("/support/tenants/{}/templates/default", t.0))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    eventually("default approved", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM templates WHERE name = 'booking_confirmation' AND status = 'approved'").fetch_one(p).await).unwrap() == 2
    })
    .await;
    // The customer wrote two days ago: the window is closed.
    let customer = "4917055555555";
    let two_days_ago = app.clock.now_ms() / 1000 - 2 * 86_400;
    sandbox.control().customer_text(&fixture.phone_number_id, customer, "Hallo, ich hätte gern einen Termin", Some(two_days_ago)).await.unwrap();
    let conversation = || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT c.id FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE u.phone = $1").bind(customer).fetch_optional(p).await).unwrap()
    };
    eventually("conversation", || async { conversation().await.is_some() }).await;
    let id = conversation().await.unwrap();

    let browser = Browser::start().await.unwrap();
    browser.goto(&app.url("/sign-in")).await.unwrap();
    browser.fill("#email", "owner@sandbox.test").await.unwrap();
    browser.fill("#password", crate::helpers::PASSWORD).await.unwrap();
    browser.click_on("#sign-in-submit").await.unwrap();
    browser.wait_for("#nav-inbox").await.unwrap();
    browser.goto(&app.url(&format!("/inbox/{id}"))).await.unwrap();
    browser.wait_for_text("#window-state", "geschlossen").await.unwrap();
    browser.click_on("#send-template").await.unwrap();
    browser.wait_for("#window-closed").await.unwrap();
    browser.click_on("#pick-booking_confirmation-de").await.unwrap();
    browser.wait_for("#template-form").await.unwrap();
    // The default template's values are asked for in words, not by their parameter names.
    browser.wait_for_text("label[for=v_customer_name]", "Name des Kunden").await.unwrap();
    browser.wait_for_text("label[for=v_business_name]", "Name Ihres Geschäfts").await.unwrap();
    for (field, value) in [("customer_name", "Anna"), ("service", "Haarschnitt"), ("date", "12.12.2026"), ("time", "14:30"), ("business_name", "Salon A")] {
        browser.fill(&format!("#v_{field}"), value).await.unwrap();
    }
    // The preview follows the typing before anything is sent to the server.
    browser.wait_for_text("#preview-body", "Hallo Anna, Ihr Termin für Haarschnitt am 12.12.2026 um 14:30 bei Salon A").await.unwrap();
    browser.click_on("#template-preview-button").await.unwrap();
    browser.wait_for_text("#preview-body", "Hallo Anna, Ihr Termin für Haarschnitt am 12.12.2026 um 14:30 bei Salon A ist bestätigt.").await.unwrap();
    // Germany, utility, outside the window.
    browser.wait_for_text("#cost-amount", "0,0456 €").await.unwrap();
    browser.click_on("#template-send").await.unwrap();
    browser.wait_for("#conversation-title").await.unwrap();
    // The conversation shows what the customer reads, under the template's name.
    let sent = browser.wait_for_text("#messages .msg.out", "Hallo Anna, Ihr Termin für Haarschnitt am 12.12.2026 um 14:30 bei Salon A ist bestätigt.").await.unwrap();
    assert!(sent.contains("booking_confirmation"), "{sent}");

    // Sent through the outbox to the sandbox, delivered there, priced by the status webhook.
    eventually("delivered in the sandbox", || async {
        sandbox.control().sent_messages(Some(&fixture.phone_number_id)).await.unwrap().iter().any(|m| m.r#type == "template" && m.statuses.iter().any(|s| s.status == "delivered"))
    })
    .await;
    eventually("cost recorded", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM message_costs WHERE amount_micros = 45600").fetch_one(p).await).unwrap() == 1
    })
    .await;
    // The list's line for the conversation quotes that text too.
    browser.goto(&app.url("/inbox")).await.unwrap();
    browser.wait_for_text("#conversations", "Hallo Anna, Ihr Termin für Haarschnitt").await.unwrap();
    browser.click_on("#nav-costs").await.unwrap();
    browser.wait_for_text("#cost-total", "0,0456 €").await.unwrap();
    browser.wait_for_text("#cost-categories", "Service (Utility)").await.unwrap();
    let today = wabridge::billing::day_of(app.clock.now_ms()).to_string();
    browser.wait_for(&format!("#cost-chart rect[data-day=\"{today}\"]")).await.unwrap();
    browser.quit().await.unwrap();
}
