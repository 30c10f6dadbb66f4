//! The support area lists every tenant with users and WhatsApp status; each read is logged.

use wabridge::accounts::Role;
use wabridge::support::count_reads;

use crate::helpers::{element_text, spawn_app};

#[tokio::test]
async fn support_lists_tenants_with_users_and_logs_every_read() {
    let app = spawn_app().await;
    let a = app.tenant("Salon A").await;
    let b = app.tenant("Salon B").await;
    app.user(Some(a), "owner@a.test", Role::Owner).await;
    app.user(Some(b), "agent@b.test", Role::Agent).await;
    app.user(None, "support@op.test", Role::Support).await;
    let (c, _) = app.signed_in("support@op.test").await;
    let reads_before = count_reads(&app.db, None).await.unwrap();

    let html = c.get(app.url("/support")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Salon A") && html.contains("Salon B"));
    assert!(html.contains("owner@a.test") && html.contains("agent@b.test"));
    assert_eq!(html.matches("class=\"tenant-row\"").count(), 2);
    assert_eq!(count_reads(&app.db, None).await.unwrap(), reads_before + 1);

    let html = c.get(app.url(&format!("/support/tenants/{}", b.0))).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&html, "tenant-title").as_deref(), Some("Kunde: Salon B"));
    assert!(html.contains("agent@b.test") && !html.contains("owner@a.test"));
    assert_eq!(count_reads(&app.db, Some(b)).await.unwrap(), 1);

    let resp = c.get(app.url("/support/tenants/999999")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c.get(app.url("/support/tenants/not-a-number")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_tenants_numbers_are_shown_with_their_status_in_words() {
    let s = crate::helpers::spawn_app_with_sandbox(&[]).await;
    s.app.user(None, "support@op.test", Role::Support).await;
    let (c, _) = s.app.signed_in("support@op.test").await;
    let html = c.get(s.app.url(&format!("/support/tenants/{}", s.tenant.0))).send().await.unwrap().text().await.unwrap();
    let row = html.split(&format!("<td>{}</td>", s.fixture.phone_number_id)).nth(1).expect("the number's row").split("</tr>").next().unwrap().to_owned();
    assert_eq!(row, "<td>Verbunden</td>", "{html}");
}
