//! Bad input gets a clear, translated 4xx — never a 500, never framework text.

use wabridge::accounts::Role;

use crate::helpers::{client, element_text, spawn_app};

#[tokio::test]
async fn unknown_pages_are_a_translated_404() {
    let app = spawn_app().await;
    let resp = client().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let html = resp.text().await.unwrap();
    assert_eq!(element_text(&html, "error-message").as_deref(), Some("Diese Seite gibt es nicht."));
    let resp = client().get(app.url("/no/such/page")).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["message"], "Diese Seite gibt es nicht.");
}

#[tokio::test]
async fn malformed_and_oversized_forms_are_refused_cleanly() {
    let app = spawn_app().await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;
    let c = client();
    let form = c.get(app.url("/sign-in")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::csrf_of(&form);

    // A field missing.
    let resp = c.post(app.url("/sign-in")).form(&[("_csrf", csrf.as_str()), ("email", "owner@salon.test")]).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert_eq!(element_text(&html, "error-message").as_deref(), Some("Die Anfrage ist ungültig."));
    // An over-long address.
    let long = format!("{}@salon.test", "a".repeat(300));
    let resp = c
        .post(app.url("/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("email", long.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(element_text(&resp.text().await.unwrap(), "sign-in-error").unwrap().contains("zu lang"));
    // An over-long password.
    let resp = c
        .post(app.url("/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("email", "owner@salon.test"), ("password", "p".repeat(5000).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A form body far beyond what any form needs.
    let huge = format!("_csrf={csrf}&email={}", "a".repeat(200_000));
    let resp = c
        .post(app.url("/sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Not a form at all.
    let resp = c.post(app.url("/sign-in")).header("X-CSRF-Token", csrf.as_str()).header("Content-Type", "application/json").body("{").send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // Nothing was lost: the right password still works.
    assert_eq!(app.sign_in(&c, "owner@salon.test", crate::helpers::PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let app = spawn_app().await;
    let resp = client().get(app.url("/sign-in")).send().await.unwrap();
    let h = resp.headers();
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
}
