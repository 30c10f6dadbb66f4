//! Costs: one per message from whichever status carries `pricing`, at the rate card's rate of
//! that day, free types free, unknown rates unknown (never zero); the month's total, chart and
//! CSV for the tenant and for support.

use serde_json::{Value, json};
use wabridge::accounts::{Role, TenantId};
use wabridge::with_pool;

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::ingest::{post_signed, tenant_with_number};

/// Unix seconds of a UTC date and hour.
fn at(y: i32, m: u8, d: u8, h: u8) -> i64 {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap().with_hms(h, 0, 0).unwrap().assume_utc().unix_timestamp()
}

fn statuses_body(number: &str, statuses: Vec<Value>) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "4930123456", "phone_number_id": number}, "statuses": statuses}}]}]})
    .to_string()
    .into_bytes()
}

fn status(wamid: &str, kind: &str, ts: i64, to: &str, pricing: Option<(&str, &str)>) -> Value {
    let mut s = json!({"id": wamid, "status": kind, "timestamp": ts.to_string(), "recipient_id": to});
    if let Some((t, c)) = pricing {
        s["pricing"] = json!({"billable": t == "regular", "pricing_model": "PMP", "type": t, "category": c});
    }
    s
}

#[derive(Debug, sqlx::FromRow)]
struct Cost {
    amount_micros: Option<i64>,
    inside_window: bool,
    flagged: bool,
    day: String,
    category: String,
}

async fn cost(app: &TestApp, wamid: &str) -> Option<Cost> {
    with_pool!(app.db.read(), |p| sqlx::query_as::<_, Cost>("SELECT amount_micros, inside_window, flagged, day, category FROM message_costs WHERE wamid = $1")
        .bind(wamid)
        .fetch_optional(p)
        .await)
    .unwrap()
}

async fn costs(app: &TestApp) -> i64 {
    with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM message_costs").fetch_one(p).await).unwrap()
}

/// A customer who wrote at `ts` and our message to them at `sent` (as the outbox records it).
async fn conversation_with_outbound(app: &TestApp, t: TenantId, number: &str, phone: &str, ts: i64, wamid: &str, sent: i64) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "4930123456", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Kim"}, "wa_id": phone}],
        "messages": [{"from": phone, "id": format!("in-{wamid}"), "timestamp": ts.to_string(), "type": "text", "text": {"body": "Hallo"}}]}}]}]});
    post_signed(app, body.to_string().as_bytes()).await;
    let conv = || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT c.id FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE u.phone = $1").bind(phone).fetch_optional(p).await).unwrap()
    };
    eventually("conversation", || async { conv().await.is_some() }).await;
    let conversation = conv().await.unwrap();
    with_pool!(app.db.write(), |p| sqlx::query(
        "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, status, status_rank, meta_at, created_at)
         VALUES ($1, $2, 'out', $3, 'template', 'x', '{}', 'accepted', 1, $4, $4)"
    )
    .bind(t)
    .bind(conversation)
    .bind(wamid)
    .bind(sent * 1000)
    .execute(p)
    .await
    .map(drop))
    .unwrap();
}

#[tokio::test]
async fn costs_follow_the_rules_of_the_day_and_pricing_type() {
    let app = spawn_app().await;
    let (t, number) = tenant_with_number(&app, "Salon A").await;
    let de = "4917012345678";
    let us = "15551234567";
    // Inside the window (the customer wrote an hour before) after 2026-10-01: charged.
    conversation_with_outbound(&app, t, &number, de, at(2026, 11, 2, 9), "w.in_after", at(2026, 11, 2, 10)).await;
    let body = statuses_body(&number, vec![
        // Outside the window, before 2026-10-01: Germany's utility rate.
        status("w.out_before", "sent", at(2026, 3, 2, 10), de, Some(("regular", "utility"))),
        // Inside the window before 2026-10-01: Meta says free.
        status("w.free_cs", "sent", at(2026, 3, 2, 11), de, Some(("free_customer_service", "utility"))),
        status("w.in_after", "sent", at(2026, 11, 2, 10), de, Some(("regular", "utility"))),
        // A free entry point window costs nothing, whatever the category.
        status("w.fep", "delivered", at(2026, 11, 3, 10), de, Some(("free_entry_point", "marketing"))),
        // A market without rates: utility falls back to 0.0017, marketing is unknown.
        status("w.us_utility", "sent", at(2026, 11, 3, 11), us, Some(("regular", "utility"))),
        status("w.us_marketing", "sent", at(2026, 11, 3, 12), us, Some(("regular", "marketing"))),
        // A pricing type nobody knows is kept and flagged.
        status("w.new_type", "sent", at(2026, 11, 3, 13), de, Some(("free_something_new", "utility"))),
    ]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    eventually("seven costs", || async { costs(&app).await == 7 }).await;
    let c = cost(&app, "w.out_before").await.unwrap();
    assert_eq!((c.amount_micros, c.inside_window, c.day.as_str()), (Some(45_600), false, "2026-03-02"));
    assert_eq!(cost(&app, "w.free_cs").await.unwrap().amount_micros, Some(0));
    let c = cost(&app, "w.in_after").await.unwrap();
    assert_eq!((c.amount_micros, c.inside_window), (Some(45_600), true));
    assert_eq!(cost(&app, "w.fep").await.unwrap().amount_micros, Some(0));
    assert_eq!(cost(&app, "w.us_utility").await.unwrap().amount_micros, Some(1_700));
    let c = cost(&app, "w.us_marketing").await.unwrap();
    assert_eq!((c.amount_micros, c.flagged), (None, false), "unknown, not zero");
    let c = cost(&app, "w.new_type").await.unwrap();
    assert_eq!((c.amount_micros, c.flagged, c.category.as_str()), (None, true, "utility"));

    // Pricing that arrives only with `read` is recorded once; later statuses change nothing.
    let body = statuses_body(&number, vec![
        status("w.read_only", "sent", at(2026, 11, 4, 10), de, None),
        status("w.read_only", "read", at(2026, 11, 4, 11), de, Some(("regular", "marketing"))),
    ]);
    post_signed(&app, &body).await;
    eventually("read priced", || async { cost(&app, "w.read_only").await.is_some() }).await;
    assert_eq!(cost(&app, "w.read_only").await.unwrap().amount_micros, Some(113_100));
    post_signed(&app, &statuses_body(&number, vec![status("w.read_only", "delivered", at(2026, 11, 4, 12), de, Some(("regular", "utility")))])).await;
    post_signed(&app, &body).await;
    eventually("processed", || async {
        wabridge::ingest::journal::pending_count(&app.db).await.unwrap() == 0
    })
    .await;
    let c = cost(&app, "w.read_only").await.unwrap();
    assert_eq!((c.amount_micros, c.category.as_str()), (Some(113_100), "marketing"), "one cost per message");
    assert_eq!(costs(&app).await, 8);

    // The tenant's month: total of what is known, the unknown counted, a bar per day, CSV.
    let (c, _) = app.signed_in("owner@salona.test").await;
    let html = c.get(app.url("/costs?month=2026-11")).send().await.unwrap().text().await.unwrap();
    // 0.0456 + 0 + 0.0017 + 0.1131 = 0.1604
    assert_eq!(crate::helpers::element_text(&html, "cost-total").as_deref(), Some("0,1604 €"), "{html}");
    assert!(html.contains("id=\"cost-unknown\""), "unknown amounts are announced");
    // In the reader's words and notation; the English page likewise.
    assert_eq!(crate::helpers::element_text(&html, "month").as_deref(), Some("November 2026"));
    assert!(html.contains("← Oktober 2026") && html.contains("Dezember 2026 →"), "{html}");
    assert!(html.contains("<td>0,0456 €</td>") || html.contains("<td>0,1131 €</td>"), "categories' amounts: {html}");
    let (e, csrf) = app.signed_in("owner@salona.test").await;
    let switched = e.post(app.url("/language")).header("origin", app.base.as_str()).form(&[("_csrf", csrf.as_str()), ("lang", "en"), ("next", "/costs")]).send().await.unwrap();
    assert!(switched.status().is_redirection(), "{}", switched.status());
    let english = e.get(app.url("/costs?month=2026-11")).send().await.unwrap().text().await.unwrap();
    assert_eq!(crate::helpers::element_text(&english, "cost-total").as_deref(), Some("€0.1604"), "{english}");
    assert_eq!(crate::helpers::element_text(&english, "month").as_deref(), Some("November 2026"));
    assert!(english.contains("← October 2026"), "{english}");
    e.post(app.url("/language")).header("origin", app.base.as_str()).form(&[("_csrf", csrf.as_str()), ("lang", "de")]).send().await.unwrap();
    assert!(html.contains("data-day=\"2026-11-02\"") && html.contains("data-day=\"2026-11-04\""), "daily chart");
    assert!(html.contains("developers.facebook.com/docs/whatsapp/pricing"));
    let csv = c.get(app.url("/costs/export.csv?month=2026-11")).send().await.unwrap().text().await.unwrap();
    assert!(csv.starts_with("day,wamid,category"));
    assert!(csv.contains("2026-11-03,w.us_marketing,marketing,regular,,false,unknown,EUR,false"), "{csv}");
    let march = c.get(app.url("/costs?month=2026-03")).send().await.unwrap().text().await.unwrap();
    assert_eq!(crate::helpers::element_text(&march, "cost-total").as_deref(), Some("0,0456 €"));
    assert_eq!(c.get(app.url("/costs?month=2026-13")).send().await.unwrap().status(), 400);

    // Another tenant sees nothing of it; support sees every tenant's, and the read is logged.
    let (_, _) = tenant_with_number(&app, "Salon B").await;
    let (b, _) = app.signed_in("owner@salonb.test").await;
    let html = b.get(app.url("/costs?month=2026-11")).send().await.unwrap().text().await.unwrap();
    assert_eq!(crate::helpers::element_text(&html, "cost-total").as_deref(), Some("0,00 €"));
    app.user(None, "support@op.test", Role::Support).await;
    let (s, _) = app.signed_in("support@op.test").await;
    let before = wabridge::support::count_reads(&app.db, None).await.unwrap();
    let html = s.get(app.url("/support/costs?month=2026-11")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Salon A") && html.contains("0,1604 €"), "{html}");
    assert!(wabridge::support::count_reads(&app.db, None).await.unwrap() > before);
    let csv = s.get(app.url("/support/costs/export.csv?month=2026-11")).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains(&format!("{},Salon A,2026-11,marketing,3,0.1131,1", t.0)), "{csv}");
}

#[tokio::test]
async fn a_replaced_rate_card_is_used_and_a_broken_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("wabridge-card-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.csv");
    std::fs::write(&path, "market,country_codes,calling_codes,currency,category,applies,rate,effective_from,source\nGermany,DE,49,EUR,utility,any,0.05,2026-01-01,test\n").unwrap();
    let mut env = std::collections::BTreeMap::new();
    env.insert("WABRIDGE_RATE_CARD".to_owned(), path.display().to_string());
    for (k, v) in [("META_APP_ID", "1"), ("META_APP_SECRET", "s"), ("META_CONFIG_ID", "2"), ("META_VERIFY_TOKEN", "v")] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.insert("WABRIDGE_ENCRYPTION_KEY".to_owned(), wabridge::crypto::Keyring::generate_key());
    let settings = wabridge::config::Settings::from_sources(&env, None).unwrap();
    let day = time::Date::from_calendar_date(2026, time::Month::March, 1).unwrap();
    let market = settings.rate_card.market_for(Some("4917012345678"), None);
    assert_eq!(settings.rate_card.rate(market.as_ref(), "utility", false, day).micros(), Some(50_000));
    std::fs::write(&path, "market,rate\nGermany,abc\n").unwrap();
    let err = wabridge::config::Settings::from_sources(&env, None).unwrap_err();
    assert!(err.to_string().contains("WABRIDGE_RATE_CARD"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
