//! Sending: the 24-hour window, templates, limits, statuses with pricing, read receipts.

use std::time::Duration;

use serde_json::{Value, json};
use wabridge_sandbox::{NumberPatch, PairLimit, ReviewKind, SettingsPatch, TemplateChange};

use crate::support::{TestSandbox, error_code, spawn, spawn_with};

const CUSTOMER: &str = "4915112345678";

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn create_template(s: &TestSandbox, t: &wabridge_sandbox::TenantFixture, body: Value) -> (u16, Value) {
    s.post(&format!("{}/message_templates", t.waba_id), &t.access_token, body).await
}

fn booking_template(language: &str) -> Value {
    json!({
        "name": "booking_confirmation",
        "language": language,
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {"type": "BODY", "text": "Hallo {{customer_name}}, Ihr Termin am {{date}} ist bestätigt.",
             "example": {"body_text_named_params": [{"param_name": "customer_name", "example": "Anna"}, {"param_name": "date", "example": "12.03."}]}},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Absagen"}]}
        ]
    })
}

fn template_send(to: &str, params: Value) -> Value {
    json!({
        "messaging_product": "whatsapp", "to": to, "type": "template",
        "template": {"name": "booking_confirmation", "language": {"code": "de"},
            "components": [{"type": "body", "parameters": params}]}
    })
}

#[tokio::test]
async fn free_form_outside_the_window_fails_with_131047_and_inside_it_is_accepted() {
    let s = spawn().await;
    let t = s.tenant().await;
    let (status, body) = s.send_text(&t, CUSTOMER, "Hallo").await;
    assert_eq!((status, error_code(&body)), (400, 131047));
    assert_eq!(body["error"]["error_data"]["details"], "Message failed to send because more than 24 hours have passed since the customer last replied to this number.");

    // A customer who wrote 25 hours ago: the window is closed.
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "alt", Some(now_secs() - 25 * 3600)).await.unwrap();
    assert_eq!(error_code(&s.send_text(&t, CUSTOMER, "Hallo").await.1), 131047);

    s.control.customer_text(&t.phone_number_id, CUSTOMER, "neu", Some(now_secs() - 23 * 3600)).await.unwrap();
    let (status, body) = s.send_text(&t, &format!("+{CUSTOMER}"), "Hallo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0], json!({"input": format!("+{CUSTOMER}"), "wa_id": CUSTOMER}));
    assert!(body["messages"][0]["id"].as_str().unwrap().starts_with("wamid."));

    s.control.advance_clock(3600 + 1).await.unwrap();
    assert_eq!(error_code(&s.send_text(&t, CUSTOMER, "zu spät").await.1), 131047);
}

#[tokio::test]
async fn out_of_window_sends_can_be_accepted_and_then_fail_like_meta_does() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.settings(&SettingsPatch { window_refusal_sync: Some(false), ..SettingsPatch::default() }).await.unwrap();
    let (status, body) = s.send_text(&t, CUSTOMER, "Hallo").await;
    assert_eq!(status, 200);
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let statuses = s.statuses_of(&wamid).await;
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0]["status"], "failed");
    assert_eq!(statuses[0]["errors"][0]["code"], 131047);
    assert_eq!(statuses[0]["errors"][0]["title"], "Re-engagement message");
    assert!(statuses[0].get("pricing").is_none());
}

#[tokio::test]
async fn text_is_at_most_4096_characters() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    assert_eq!(s.send_text(&t, CUSTOMER, &"a".repeat(4096)).await.0, 200);
    let (status, body) = s.send_text(&t, CUSTOMER, &"ä".repeat(4097)).await;
    assert_eq!((status, error_code(&body)), (400, 100));
}

#[tokio::test]
async fn templates_must_exist_in_the_language_be_approved_and_get_the_right_parameters() {
    let s = spawn_with(|c| c.delays.template_review = wabridge_sandbox::Delay::Manual).await;
    let t = s.tenant().await;
    let good = json!([
        {"type": "text", "parameter_name": "customer_name", "text": "Anna"},
        {"type": "text", "parameter_name": "date", "text": "12.03."}
    ]);
    let path = format!("{}/messages", t.phone_number_id);
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, good.clone())).await.1), 132001);

    let (status, created) = create_template(&s, &t, booking_template("de")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["category"], "UTILITY");
    let template_id = created["id"].as_str().unwrap().to_string();
    // Pending is not approved.
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, good.clone())).await.1), 132001);
    assert_eq!(s.control.complete_reviews(ReviewKind::Template, Some(&template_id), true, None).await.unwrap(), 1);

    let (status, body) = s.post(&path, &t.access_token, template_send(CUSTOMER, good.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    // Only in `de`: `en` does not exist.
    let mut en = template_send(CUSTOMER, good.clone());
    en["template"]["language"]["code"] = json!("en");
    assert_eq!(error_code(&s.post(&path, &t.access_token, en).await.1), 132001);
    // Count mismatch.
    let one = json!([{"type": "text", "parameter_name": "customer_name", "text": "Anna"}]);
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, one)).await.1), 132000);
    // Wrong names and positional parameters for a named template.
    let wrong = json!([{"type": "text", "parameter_name": "customer_name", "text": "Anna"}, {"type": "text", "parameter_name": "time", "text": "9"}]);
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, wrong)).await.1), 132012);
    let positional = json!([{"type": "text", "text": "Anna"}, {"type": "text", "text": "12.03."}]);
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, positional)).await.1), 132012);

    s.control.change_template(&template_id, &TemplateChange { event: Some("PAUSED".into()), ..TemplateChange::default() }).await.unwrap();
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, good.clone())).await.1), 132015);
    s.control.change_template(&template_id, &TemplateChange { event: Some("DISABLED".into()), ..TemplateChange::default() }).await.unwrap();
    assert_eq!(error_code(&s.post(&path, &t.access_token, template_send(CUSTOMER, good)).await.1), 132016);
}

#[tokio::test]
async fn template_management_lists_gets_and_deletes() {
    let s = spawn().await;
    let t = s.tenant().await;
    create_template(&s, &t, booking_template("de")).await;
    create_template(&s, &t, booking_template("en")).await;
    let (status, dup) = create_template(&s, &t, booking_template("en")).await;
    assert_eq!((status, error_code(&dup)), (400, 100));
    let mut bad = booking_template("fr");
    bad["name"] = json!("Booking Confirmation");
    assert_eq!(error_code(&create_template(&s, &t, bad).await.1), 100);

    let (_, list) = s.get(&format!("{}/message_templates?limit=1", t.waba_id), &t.access_token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["status"], "APPROVED");
    let next = list["paging"]["next"].as_str().unwrap().to_string();
    let page2: Value = s.http.get(next).bearer_auth(&t.access_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_ne!(page2["data"][0]["language"], list["data"][0]["language"]);

    let id = list["data"][0]["id"].as_str().unwrap();
    let (_, one) = s.get(&format!("{id}?fields=name,status,category"), &t.access_token).await;
    assert_eq!(one["name"], "booking_confirmation");
    assert_eq!(s.delete(&format!("{}/message_templates?name=booking_confirmation", t.waba_id), &t.access_token).await.0, 200);
    let (_, list) = s.get(&format!("{}/message_templates", t.waba_id), &t.access_token).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn throughput_above_the_numbers_limit_fails_with_130429() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.patch_number(&t.phone_number_id, &NumberPatch { throughput_mps: Some(3), ..NumberPatch::default() }).await.unwrap();
    let customers: Vec<String> = (0..4).map(|i| format!("49151000000{i}")).collect();
    for c in &customers {
        s.control.customer_text(&t.phone_number_id, c, "hi", None).await.unwrap();
    }
    let mut codes = Vec::new();
    for c in &customers {
        let (status, body) = s.send_text(&t, c, "Hallo").await;
        codes.push((status, error_code(&body)));
    }
    assert_eq!(codes.iter().filter(|(s, _)| *s == 200).count(), 3, "{codes:?}");
    assert!(codes.contains(&(429, 130429)), "{codes:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.send_text(&t, &customers[3], "später").await.0, 200);
}

#[tokio::test]
async fn the_pair_rate_limit_fails_with_131056() {
    let s = spawn_with(|c| c.pair_limit = PairLimit { burst: 2, interval: Duration::from_secs(600) }).await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    s.control.customer_text(&t.phone_number_id, "4915199999999", "hi", None).await.unwrap();
    assert_eq!(s.send_text(&t, CUSTOMER, "1").await.0, 200);
    assert_eq!(s.send_text(&t, CUSTOMER, "2").await.0, 200);
    let (status, body) = s.send_text(&t, CUSTOMER, "3").await;
    assert_eq!((status, error_code(&body)), (429, 131056));
    // Other customers are not affected.
    assert_eq!(s.send_text(&t, "4915199999999", "1").await.0, 200);
}

#[tokio::test]
async fn statuses_echo_biz_opaque_callback_data_and_carry_pricing_once() {
    let s = spawn_with(|c| c.paid_service_from = i64::MAX).await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    let (_, body) = s
        .post(
            &format!("{}/messages", t.phone_number_id),
            &t.access_token,
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "Hallo"}, "biz_opaque_callback_data": "outbox-42"}),
        )
        .await;
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    s.control.set_status(&wamid, "read", None).await.unwrap();
    let statuses = s.statuses_of(&wamid).await;
    let kinds: Vec<&str> = statuses.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sent", "delivered", "read"]);
    for st in &statuses {
        assert_eq!(st["biz_opaque_callback_data"], "outbox-42");
        assert!(st["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
        assert_eq!(st["recipient_id"], CUSTOMER);
        assert!(st["recipient_user_id"].as_str().unwrap().starts_with("DE."));
    }
    assert_eq!(statuses[0]["pricing"], json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}));
    assert!(statuses[1].get("pricing").is_some());
    assert!(statuses[2].get("pricing").is_none(), "pricing comes with sent and one of delivered/read");
}

#[tokio::test]
async fn pricing_follows_the_rules_of_the_day() {
    // Before 2026-10-01: in-window utility is free, marketing is charged.
    let s = spawn_with(|c| c.paid_service_from = i64::MAX).await;
    let t = s.tenant().await;
    let mut marketing = booking_template("de");
    marketing["name"] = json!("promo");
    marketing["category"] = json!("MARKETING");
    create_template(&s, &t, marketing).await;
    create_template(&s, &t, booking_template("de")).await;
    let params = json!([{"type": "text", "parameter_name": "customer_name", "text": "Anna"}, {"type": "text", "parameter_name": "date", "text": "1.1."}]);
    let path = format!("{}/messages", t.phone_number_id);
    // Outside the window a utility template is charged.
    s.post(&path, &t.access_token, template_send(CUSTOMER, params.clone())).await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    s.post(&path, &t.access_token, template_send(CUSTOMER, params.clone())).await;
    let mut promo = template_send(CUSTOMER, params.clone());
    promo["template"]["name"] = json!("promo");
    s.post(&path, &t.access_token, promo).await;
    let sent = s.control.sent_messages(Some(&t.phone_number_id)).await.unwrap();
    let pricing: Vec<(&str, &str)> = sent.iter().map(|m| (m.pricing_type.as_str(), m.pricing_category.as_str())).collect();
    assert_eq!(pricing, [("regular", "utility"), ("free_customer_service", "utility"), ("regular", "marketing")]);

    // From 2026-10-01 (the configured default) service replies are charged too.
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    s.send_text(&t, CUSTOMER, "Antwort").await;
    let sent = s.control.sent_messages(None).await.unwrap();
    assert_eq!((sent[0].pricing_type.as_str(), sent[0].pricing_category.as_str()), ("regular", "service"));
}

#[tokio::test]
async fn a_reply_to_an_ad_referral_is_in_a_free_entry_point_window() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control
        .customer_writes(&wabridge_sandbox::CustomerMessage {
            phone_number_id: t.phone_number_id.clone(),
            from: CUSTOMER.into(),
            r#type: "text".into(),
            content: Some(json!({"body": "Vom Inserat"})),
            referral: Some(json!({"source_url": "https://fb.me/x", "source_id": "1", "source_type": "ad", "headline": "Termine", "body": "", "media_type": "image", "image_url": "https://x/y.jpg", "ctwa_clid": "abc"})),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, body) = s.send_text(&t, CUSTOMER, "Danke").await;
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let statuses = s.statuses_of(&wamid).await;
    assert_eq!(statuses[0]["pricing"]["type"], "free_entry_point");
    assert_eq!(statuses[0]["conversation"]["origin"]["type"], "referral_conversion");
    assert!(statuses[0]["conversation"]["expiration_timestamp"].is_string());
}

#[tokio::test]
async fn mark_as_read_knows_inbound_messages() {
    let s = spawn().await;
    let t = s.tenant().await;
    let receipt = s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    let path = format!("{}/messages", t.phone_number_id);
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": receipt.wamid, "typing_indicator": {"type": "text"}});
    assert_eq!(s.post(&path, &t.access_token, read).await, (200, json!({"success": true})));
    let bad = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope"});
    assert_eq!(error_code(&s.post(&path, &t.access_token, bad).await.1), 131009);
}

#[tokio::test]
async fn sends_to_a_bsuid_answer_with_user_id_and_statuses_omit_the_phone() {
    let s = spawn().await;
    let t = s.tenant().await;
    let receipt = s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    let (status, body) = s
        .post(
            &format!("{}/messages", t.phone_number_id),
            &t.access_token,
            json!({"messaging_product": "whatsapp", "recipient": receipt.user_id, "type": "text", "text": {"body": "Hallo"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contacts"][0], json!({"input": receipt.user_id, "user_id": receipt.user_id}));
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let statuses = s.statuses_of(&wamid).await;
    assert!(statuses[0].get("recipient_id").is_none());
    assert_eq!(statuses[0]["recipient_user_id"], receipt.user_id);
}

#[tokio::test]
async fn an_unregistered_number_cannot_send() {
    let s = spawn().await;
    let t = s.control.create_tenant(&Default::default()).await.unwrap();
    assert_eq!(error_code(&s.send_text(&t, CUSTOMER, "x").await.1), 133010);
}

#[tokio::test]
async fn an_unreachable_customer_gets_a_failed_status_131026() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, CUSTOMER, "hi", None).await.unwrap();
    s.control.update_customer(CUSTOMER, &json!({"reachable": false})).await.unwrap();
    let (_, body) = s.send_text(&t, CUSTOMER, "Hallo").await;
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let statuses = s.statuses_of(&wamid).await;
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["status"], "failed");
    assert_eq!(statuses[0]["errors"][0]["code"], 131026);
}
