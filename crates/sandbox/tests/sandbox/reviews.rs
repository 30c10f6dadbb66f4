//! Verification: pending reviews decided after a delay or on command, visible through Graph
//! fields and announced by Meta's webhooks.

use std::time::Duration;

use serde_json::json;
use wabridge_cloud_api::parse_webhook;
use wabridge_cloud_api::webhook::ChangeValue;
use wabridge_sandbox::{Delay, Delays, PlannedOutcome, ReviewKind, TemplateChange, TenantRequest};

use crate::support::spawn_with;

#[tokio::test]
async fn reviews_stay_pending_until_commanded_and_rejections_are_announced() {
    let s = spawn_with(|c| c.delays = Delays::manual()).await;
    let t = s
        .control
        .create_tenant(&TenantRequest { pending_reviews: true, registered_with_pin: Some("123456".into()), ..TenantRequest::default() })
        .await
        .unwrap();
    let (_, w) = s.get(&format!("{}?fields=account_review_status,business_verification_status", t.waba_id), &t.access_token).await;
    assert_eq!((w["account_review_status"].as_str(), w["business_verification_status"].as_str()), (Some("PENDING"), Some("pending")));
    let (_, n) = s.get(&format!("{}?fields=name_status", t.phone_number_id), &t.access_token).await;
    assert_eq!(n["name_status"], "PENDING_REVIEW");
    assert_eq!(s.control.reviews().await.unwrap().len(), 3);

    s.control.complete_reviews(ReviewKind::BusinessVerification, None, true, None).await.unwrap();
    s.control.complete_reviews(ReviewKind::WabaReview, None, true, None).await.unwrap();
    s.control.complete_reviews(ReviewKind::DisplayName, None, false, Some("NAME_NOT_CONSISTENT")).await.unwrap();
    let (_, w) = s.get(&format!("{}?fields=account_review_status,business_verification_status", t.waba_id), &t.access_token).await;
    assert_eq!((w["account_review_status"].as_str(), w["business_verification_status"].as_str()), (Some("APPROVED"), Some("verified")));
    let (_, n) = s.get(&format!("{}?fields=name_status", t.phone_number_id), &t.access_token).await;
    assert_eq!(n["name_status"], "DECLINED");

    let changes = s.changes().await;
    let fields: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
    // No webhook for business verification: Meta has none.
    assert_eq!(fields, ["account_review_update", "phone_number_name_update"]);
    assert_eq!(changes[0].1, json!({"decision": "APPROVED"}));
    assert_eq!(changes[1].1["decision"], "REJECTED");
    assert_eq!(changes[1].1["rejection_reason"], "NAME_NOT_CONSISTENT");
    for post in s.hook.posts.lock().unwrap().iter() {
        let body = parse_webhook(&post.body).unwrap();
        for c in body.changes() {
            assert!(matches!(c.change.value, ChangeValue::AccountReview(_) | ChangeValue::PhoneNumberName(_)));
        }
        assert_eq!(post.json()["entry"][0]["id"], t.waba_id);
    }
}

#[tokio::test]
async fn templates_are_decided_after_the_configured_delay_and_planned_rejections_apply() {
    let s = spawn_with(|c| c.delays.template_review = Delay::After(Duration::from_millis(300))).await;
    let t = s.tenant().await;
    s.control
        .plan_outcome(&PlannedOutcome { kind: ReviewKind::Template, target_id: None, approve: false, reason: Some("PROMOTIONAL".into()) })
        .await
        .unwrap();
    let body = |name: &str| {
        json!({"name": name, "language": "de", "category": "UTILITY", "components": [{"type": "BODY", "text": "Hallo {{1}}"}]})
    };
    let (_, rejected) = s.post(&format!("{}/message_templates", t.waba_id), &t.access_token, body("first")).await;
    let (_, approved) = s.post(&format!("{}/message_templates", t.waba_id), &t.access_token, body("second")).await;
    assert_eq!(rejected["status"], "PENDING");
    let id = approved["id"].as_str().unwrap();
    assert_eq!(s.get(&format!("{id}?fields=status"), &t.access_token).await.1["status"], "PENDING");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.get(&format!("{id}?fields=status"), &t.access_token).await.1["status"], "APPROVED");
    let rid = rejected["id"].as_str().unwrap();
    let (_, r) = s.get(&format!("{rid}?fields=status,rejected_reason"), &t.access_token).await;
    assert_eq!((r["status"].as_str(), r["rejected_reason"].as_str()), (Some("REJECTED"), Some("PROMOTIONAL")));

    let changes = s.changes().await;
    let events: Vec<(String, String)> = changes
        .iter()
        .filter(|(f, _)| f == "message_template_status_update")
        .map(|(_, v)| (v["message_template_name"].as_str().unwrap().into(), v["event"].as_str().unwrap().into()))
        .collect();
    assert_eq!(events, [("first".to_string(), "REJECTED".to_string()), ("second".to_string(), "APPROVED".to_string())]);
    let first = &changes.iter().find(|(_, v)| v["event"] == "REJECTED").unwrap().1;
    assert!(first["message_template_id"].is_u64(), "Meta sends the template id as a number here");
    assert_eq!(first["reason"], "PROMOTIONAL");
    assert!(first["rejection_info"]["reason"].is_string());
}

#[tokio::test]
async fn quality_category_pause_and_partner_removal_are_announced() {
    let s = spawn_with(|_| {}).await;
    let t = s.tenant().await;
    let (_, created) = s
        .post(
            &format!("{}/message_templates", t.waba_id),
            &t.access_token,
            json!({"name": "x", "language": "de", "category": "UTILITY", "components": [{"type": "BODY", "text": "Hallo"}]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    s.control
        .change_template(&id, &TemplateChange { quality: Some("YELLOW".into()), category: Some("MARKETING".into()), event: Some("PAUSED".into()) })
        .await
        .unwrap();
    s.control.partner_removed(&t.waba_id).await.unwrap();
    let changes = s.changes().await;
    let fields: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["message_template_status_update", "message_template_quality_update", "template_category_update", "message_template_status_update", "account_update"]
    );
    assert_eq!(changes[1].1["new_quality_score"], "YELLOW");
    assert_eq!(changes[2].1["new_category"], "MARKETING");
    assert_eq!(changes[3].1["event"], "PAUSED");
    assert_eq!(changes[3].1["other_info"]["title"], "FIRST_PAUSE");
    assert_eq!(changes[4].1["event"], "PARTNER_REMOVED");
    assert_eq!(changes[4].1["waba_info"]["waba_id"], t.waba_id);
    for post in s.hook.posts.lock().unwrap().iter() {
        for c in parse_webhook(&post.body).unwrap().changes() {
            assert!(!matches!(c.change.value, ChangeValue::Unknown), "{:?}", c.change.field);
        }
    }
    // The partner lost access to the WABA.
    assert_eq!(s.get(&t.waba_id, &t.access_token).await.0, 400);
}
