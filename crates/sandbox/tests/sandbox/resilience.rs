//! Failure injection: errors on one endpoint, Meta outages, slow answers after the client gave up.

use std::time::Duration;

use serde_json::json;
use wabridge_sandbox::{Fault, OutageMode, OutageRequest, TenantRequest};

use crate::support::{error_code, spawn};

#[tokio::test]
async fn an_injected_registration_failure_applies_once() {
    let s = spawn().await;
    let t = s.control.create_tenant(&TenantRequest::default()).await.unwrap();
    s.control
        .add_fault(&Fault { endpoint: "register".into(), code: Some(133004), remaining: Some(1), ..Fault::default() })
        .await
        .unwrap();
    let path = format!("{}/register", t.phone_number_id);
    let body = json!({"messaging_product": "whatsapp", "pin": "123456"});
    let (status, err) = s.post(&path, &t.access_token, body.clone()).await;
    assert_eq!((status, error_code(&err)), (503, 133004));
    assert!(err["error"]["error_data"]["details"].is_string());
    assert_eq!(s.post(&path, &t.access_token, body).await.0, 200);
    assert!(s.control.requests().await.unwrap().iter().filter(|r| r.path.ends_with("/register")).count() == 2);
}

#[tokio::test]
async fn an_outage_answers_503_or_hangs_and_ends() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.outage(&OutageRequest { mode: OutageMode::Error, duration_ms: 60_000, hang_ms: None }).await.unwrap();
    let (status, body) = s.get(&t.phone_number_id, &t.access_token).await;
    assert_eq!((status, error_code(&body)), (503, 2));
    s.control.end_outage().await.unwrap();
    assert_eq!(s.get(&t.phone_number_id, &t.access_token).await.0, 200);

    s.control.outage(&OutageRequest { mode: OutageMode::Timeout, duration_ms: 60_000, hang_ms: Some(2_000) }).await.unwrap();
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = quick.get(format!("{}/{}", s.graph, t.phone_number_id)).bearer_auth(&t.access_token).send().await;
    assert!(r.unwrap_err().is_timeout());
    s.control.end_outage().await.unwrap();
}

#[tokio::test]
async fn a_send_answered_after_the_clients_timeout_is_still_sent() {
    let s = spawn().await;
    let t = s.tenant().await;
    s.control.customer_text(&t.phone_number_id, "4915112345678", "hi", None).await.unwrap();
    s.control
        .add_fault(&Fault { endpoint: "messages".into(), delay_ms: Some(1_500), remaining: Some(1), ..Fault::default() })
        .await
        .unwrap();
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = quick
        .post(format!("{}/{}/messages", s.graph, t.phone_number_id))
        .bearer_auth(&t.access_token)
        .json(&json!({"messaging_product": "whatsapp", "to": "4915112345678", "type": "text", "text": {"body": "Hallo"}, "biz_opaque_callback_data": "outbox-7"}))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    let sent = s.control.sent_messages(None).await.unwrap();
    assert_eq!(sent.len(), 1);
    // The status that follows lets the client reconcile the unknown outcome.
    let statuses = s.statuses_of(&sent[0].wamid).await;
    assert_eq!(statuses[0]["biz_opaque_callback_data"], "outbox-7");
}
