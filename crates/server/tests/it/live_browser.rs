//! A customer's message arrives while the owner has a page open in headless Chromium: the
//! toast appears bottom-right, the unread count goes up, and the toast opens the notification.

use std::time::Duration;

use serde_json::Value;
use wabridge::with_pool;
use wabridge_testkit::webdriver::Browser;

use crate::helpers::{PASSWORD, spawn_app};
use crate::ingest::{post_signed, tenant_with_number, text_body};

#[tokio::test]
async fn a_webhook_becomes_a_toast_bottom_right_with_the_unread_count() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Demo Salon").await;
    let browser = Browser::start().await.unwrap();
    browser.goto(&app.url("/sign-in")).await.unwrap();
    browser.fill("#email", "owner@demosalon.test").await.unwrap();
    browser.fill("#password", PASSWORD).await.unwrap();
    browser.click_on("#sign-in-submit").await.unwrap();
    browser.wait_for_text("h1", "API-Einstellungen").await.unwrap();
    assert!(browser.current_url().await.unwrap().ends_with("/api-settings"));
    browser.wait_for_text("#unread-count", "0").await.unwrap();
    // The page's event stream is open (the server subscribed before answering).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser.execute("return window.wabridgeLive ? window.wabridgeLive.readyState : -1", vec![]).await.unwrap() != Value::from(1) {
        assert!(std::time::Instant::now() < deadline, "the page never opened its event stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = text_body(&number, "491701234567", "Anna Schmidt", &[("wamid.BROWSER", "Guten Morgen!\nHaben Sie morgen frei?")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    let text = browser.wait_for_text("#toasts .toast", "Neue WhatsApp-Nachricht von Anna Schmidt").await.unwrap();
    assert!(text.contains("Guten Morgen!"), "{text}");
    assert!(!text.contains("Haben Sie"), "only the first line: {text}");
    browser.wait_for_text("#unread-count", "1").await.unwrap();

    let placement = browser
        .execute(
            "const box = document.getElementById('toasts'); const s = getComputedStyle(box);
             const r = document.querySelector('#toasts .toast').getBoundingClientRect();
             return {position: s.position, right: s.right, bottom: s.bottom,
                     gapRight: window.innerWidth - r.right, gapBottom: window.innerHeight - r.bottom,
                     left: r.left, top: r.top, width: window.innerWidth, height: window.innerHeight};",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(placement["position"], "fixed", "{placement}");
    assert!(placement["right"].as_str().unwrap().ends_with("px") && placement["bottom"].as_str().unwrap().ends_with("px"), "{placement}");
    let (gap_right, gap_bottom) = (placement["gapRight"].as_f64().unwrap(), placement["gapBottom"].as_f64().unwrap());
    assert!((0.0..40.0).contains(&gap_right) && (0.0..40.0).contains(&gap_bottom), "bottom-right corner: {placement}");
    assert!(placement["left"].as_f64().unwrap() > placement["width"].as_f64().unwrap() / 2.0, "right half: {placement}");
    assert!(placement["top"].as_f64().unwrap() > placement["height"].as_f64().unwrap() / 2.0, "bottom half: {placement}");

    // The toast leads to what it is about (the conversation) and marks the notification read.
    browser.click_on("#toasts .toast a").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser.current_url().await.unwrap().ends_with("/api-settings") {
        assert!(std::time::Instant::now() < deadline, "the toast did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(browser.current_url().await.unwrap().contains("/inbox"), "{}", browser.current_url().await.unwrap());
    browser.wait_for_text("#unread-count", "0").await.unwrap();
    let read = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, Option<i64>>(
        "SELECT r.read_at FROM notifications n JOIN notification_reads r ON r.notification_id = n.id JOIN users u ON u.id = r.user_id
         WHERE u.email = 'owner@demosalon.test' AND n.dedupe_key LIKE 'msg:%:wamid.BROWSER'"
    )
    .fetch_optional(p)
    .await)
    .unwrap();
    assert!(read.flatten().is_some(), "opening the toast marked the notification read");
    browser.quit().await.unwrap();
}
