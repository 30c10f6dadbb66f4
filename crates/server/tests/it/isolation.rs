//! Tenant isolation: a tenant's user never reads or changes another tenant's data, and only
//! support staff reach the support area.

use wabridge::accounts::Role;
use wabridge::onboarding::store::{Attachment, AttachError, attach};

use crate::helpers::{element_text, spawn_app};

#[tokio::test]
async fn a_tenant_sees_only_its_own_whatsapp_connection() {
    let app = spawn_app().await;
    let a = app.tenant("Salon A").await;
    let b = app.tenant("Salon B").await;
    app.user(Some(a), "owner@a.test", Role::Owner).await;
    app.user(Some(b), "owner@b.test", Role::Owner).await;
    let number = Attachment {
        waba_id: "1000001",
        business_id: None,
        phone_number_id: "2000001",
        display_phone_number: Some("+49 30 1234567"),
        token_ciphertext: None,
        status: "connected",
    };
    attach(&app.db, b, &number, app.clock.now_ms()).await.unwrap();
    // The same number cannot be attached to another tenant.
    assert!(matches!(attach(&app.db, a, &number, app.clock.now_ms()).await, Err(AttachError::OtherTenant)));

    let (ca, _) = app.signed_in("owner@a.test").await;
    let (cb, _) = app.signed_in("owner@b.test").await;
    let html_a = ca.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    let html_b = cb.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&html_a, "whatsapp-status").as_deref(), Some("Nicht verbunden"));
    assert_eq!(element_text(&html_b, "whatsapp-status").as_deref(), Some("Verbunden"));
}

#[tokio::test]
async fn tenant_users_cannot_enter_the_support_area_whatever_id_they_send() {
    let app = spawn_app().await;
    let a = app.tenant("Salon A").await;
    let b = app.tenant("Salon B").await;
    app.user(Some(a), "owner@a.test", Role::Owner).await;
    app.user(Some(a), "agent@a.test", Role::Agent).await;
    for who in ["owner@a.test", "agent@a.test"] {
        let (c, _) = app.signed_in(who).await;
        for path in ["/support".to_owned(), format!("/support/tenants/{}", b.0), format!("/support/tenants/{}", a.0)] {
            let resp = c.get(app.url(&path)).send().await.unwrap();
            assert_eq!(resp.status(), 403, "{who} {path}");
        }
    }
    assert_eq!(wabridge::support::count_reads(&app.db, Some(b)).await.unwrap(), 0);
}

#[tokio::test]
async fn agents_see_api_settings_but_cannot_start_the_whatsapp_login() {
    let app = spawn_app().await;
    let a = app.tenant("Salon A").await;
    app.user(Some(a), "agent@a.test", Role::Agent).await;
    let (c, _) = app.signed_in("agent@a.test").await;
    let html = c.get(app.url("/api-settings")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("id=\"whatsapp-login\""));
    assert_eq!(c.get(app.url("/api-settings/whatsapp")).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn support_staff_have_no_tenant_pages() {
    let app = spawn_app().await;
    app.user(None, "support@op.test", Role::Support).await;
    let (c, _) = app.signed_in("support@op.test").await;
    assert_eq!(c.get(app.url("/api-settings")).send().await.unwrap().status(), 403);
}
