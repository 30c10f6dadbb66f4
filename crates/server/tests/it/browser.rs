//! Browser end-to-end tests in headless Chromium through chromedriver.

use wabridge::accounts::Role;
use wabridge_testkit::webdriver::Browser;

use crate::helpers::{PASSWORD, spawn_app};

async fn sign_in(browser: &Browser, base: &str, email: &str) {
    browser.goto(&format!("{base}/sign-in")).await.unwrap();
    browser.fill("#email", email).await.unwrap();
    browser.fill("#password", PASSWORD).await.unwrap();
    browser.click_on("#sign-in-submit").await.unwrap();
}

#[tokio::test]
async fn owner_and_support_walk_through_the_skeleton() {
    let app = spawn_app().await;
    let t = app.tenant("Demo Salon").await;
    app.user(Some(t), "owner@demo.test", Role::Owner).await;
    app.user(None, "support@demo.test", Role::Support).await;
    let browser = Browser::start().await.unwrap();

    sign_in(&browser, &app.base, "owner@demo.test").await;
    browser.wait_for_text("h1", "API-Einstellungen").await.unwrap();
    assert!(browser.current_url().await.unwrap().ends_with("/api-settings"));
    browser.wait_for_text("#integration-whatsapp", "WhatsApp").await.unwrap();
    browser.wait_for_text("#whatsapp-status", "Nicht verbunden").await.unwrap();
    let login = browser.find("#whatsapp-login").await.unwrap();
    assert_eq!(browser.text(&login).await.unwrap(), "LOGIN");

    browser.click_on("#lang-en").await.unwrap();
    browser.wait_for_text("h1", "API settings").await.unwrap();
    browser.wait_for_text("#whatsapp-status", "Not connected").await.unwrap();
    browser.click_on("#lang-de").await.unwrap();
    browser.wait_for_text("h1", "API-Einstellungen").await.unwrap();

    browser.click_on("#whatsapp-login").await.unwrap();
    browser.wait_for_text("#prerequisites", "Voraussetzungen").await.unwrap();
    browser.goto(&app.url("/api-settings")).await.unwrap();

    browser.click_on("#sign-out").await.unwrap();
    browser.wait_for("#signed-out").await.unwrap();
    browser.goto(&app.url("/api-settings")).await.unwrap();
    browser.wait_for("#sign-in-form").await.unwrap();

    sign_in(&browser, &app.base, "support@demo.test").await;
    browser.wait_for_text("h1", "Kunden").await.unwrap();
    browser.wait_for_text("#support-tenants", "Demo Salon").await.unwrap();
    browser.wait_for_text("#support-tenants", "owner@demo.test").await.unwrap();
    browser.quit().await.unwrap();
}
