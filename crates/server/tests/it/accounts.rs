//! Sign-in, sessions, sign-out, CSRF, the failed-sign-in limit and the language choice.

use wabridge::accounts::Role;

use crate::helpers::{PASSWORD, client, csrf_of, element_text, spawn_app};

#[tokio::test]
async fn owner_signs_in_sees_api_settings_and_signs_out() {
    let app = spawn_app().await;
    let t = app.tenant("Salon Eins").await;
    app.user(Some(t), "owner@eins.test", Role::Owner).await;
    let c = client();

    let resp = c.get(app.url("/api-settings")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/sign-in?next=%2Fapi-settings");

    let resp = app.sign_in(&c, "Owner@Eins.test ", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let session = cookie.iter().find(|c| c.starts_with("wb_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert_eq!(resp.headers()["location"], "/api-settings");

    let html = c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&html, "whatsapp-status").as_deref(), Some("Nicht verbunden"));
    assert_eq!(element_text(&html, "whatsapp-login").as_deref(), Some("LOGIN"));
    assert!(html.contains("href=\"/api-settings/whatsapp\""));

    let csrf = csrf_of(&html);
    let resp = c.post(app.url("/sign-out")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/sign-in?signed_out=1");
    let resp = c.get(app.url("/api-settings")).send().await.unwrap();
    assert_eq!(resp.status(), 303, "the session ended");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_clear_refusal() {
    let app = spawn_app().await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;
    for (email, pw) in [("owner@salon.test", "wrong password"), ("nobody@salon.test", PASSWORD), ("not-an-email", PASSWORD)] {
        let c = client();
        let resp = app.sign_in(&c, email, pw).await;
        assert_eq!(resp.status(), 401, "{email}");
        let html = resp.text().await.unwrap();
        assert_eq!(element_text(&html, "sign-in-error").as_deref(), Some("E-Mail-Adresse oder Passwort ist falsch."));
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_address_for_a_while() {
    let app = spawn_app_limit().await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(app.sign_in(&c, "owner@salon.test", "nope nope nope").await.status(), 401);
    }
    // Even the right password is refused now: the limit protects against guessing.
    let resp = app.sign_in(&c, "owner@salon.test", PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let html = resp.text().await.unwrap();
    assert!(element_text(&html, "sign-in-error").unwrap().contains("Zu viele"));
    // Fifteen minutes later it works again.
    app.clock.advance(16 * 60 * 1000);
    assert_eq!(app.sign_in(&c, "owner@salon.test", PASSWORD).await.status(), 303);
}

async fn spawn_app_limit() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(&[("WABRIDGE_SIGN_IN_LIMIT", "3")]).await
}

#[tokio::test]
async fn cross_site_and_tokenless_posts_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;
    let (c, csrf) = app.signed_in("owner@salon.test").await;

    // No token at all.
    let resp = c.post(app.url("/language")).form(&[("lang", "en")]).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("Die Anfrage kam nicht von dieser Seite"));
    // A wrong token.
    let resp = c.post(app.url("/language")).form(&[("_csrf", "0".repeat(64).as_str()), ("lang", "en")]).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    // The right token, but posted from another site.
    let resp = c
        .post(app.url("/language"))
        .header("Origin", "https://evil.example")
        .form(&[("_csrf", csrf.as_str()), ("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = c
        .post(app.url("/sign-out"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The session survived every refused post, and the language did not change.
    let html = c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("API-Einstellungen"));
    // A same-origin post with the token works.
    let resp = c
        .post(app.url("/language"))
        .header("Origin", app.base.clone())
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("_csrf", csrf.as_str()), ("lang", "en"), ("next", "/api-settings")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
}

#[tokio::test]
async fn sign_in_form_needs_its_token_too() {
    let app = spawn_app().await;
    let c = client();
    let resp = c.post(app.url("/sign-in")).form(&[("email", "a@b.test"), ("password", "x")]).send().await.unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn language_follows_accept_language_then_the_users_choice() {
    let app = spawn_app().await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;

    let c = client();
    let html = c.get(app.url("/sign-in")).header("Accept-Language", "en-GB,en;q=0.9").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">") && html.contains("E-mail address"));
    let html = c.get(app.url("/sign-in")).header("Accept-Language", "fr-FR").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"de\">") && html.contains("E-Mail-Adresse"));

    let (c, csrf) = app.signed_in("owner@salon.test").await;
    let resp = c
        .post(app.url("/language"))
        .form(&[("_csrf", csrf.as_str()), ("lang", "en"), ("next", "/api-settings")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/api-settings");
    // The choice is the user's: a German browser still gets English.
    let html = c.get(app.url("/api-settings")).header("Accept-Language", "de").send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&html, "whatsapp-status").as_deref(), Some("Not connected"));
    // A new session of the same user keeps it.
    let (c2, _) = app.signed_in("owner@salon.test").await;
    let html = c2.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("API settings"));

    let resp = c.post(app.url("/language")).form(&[("_csrf", csrf.as_str()), ("lang", "xx")]).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // An open redirect is not possible through `next`.
    let resp = c
        .post(app.url("/language"))
        .form(&[("_csrf", csrf.as_str()), ("lang", "de"), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/");
}
