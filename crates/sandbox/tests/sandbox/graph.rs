//! Graph API: tokens, registration and verification, fields, paging, subscriptions, media.

use serde_json::{Value, json};
use wabridge_sandbox::{NumberPatch, TenantRequest};

use crate::support::{error_code, spawn};

#[tokio::test]
async fn unknown_revoked_and_expired_tokens_answer_190() {
    let s = spawn().await;
    let t = s.tenant().await;
    let (status, body) = s.get(&t.phone_number_id, "EAAGnotatoken").await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(body["error"]["fbtrace_id"].is_string());

    let (status, _) = s.get(&t.phone_number_id, &t.access_token).await;
    assert_eq!(status, 200);
    s.control.expire_token(&t.access_token).await.unwrap();
    let (status, body) = s.get(&t.phone_number_id, &t.access_token).await;
    assert_eq!((status, error_code(&body), body["error"]["error_subcode"].as_i64()), (401, 190, Some(463)));

    let t2 = s.tenant().await;
    s.control.revoke_token(&t2.access_token).await.unwrap();
    let (_, body) = s.get(&t2.waba_id, &t2.access_token).await;
    assert_eq!((error_code(&body), body["error"]["error_subcode"].as_i64()), (190, Some(460)));
}

#[tokio::test]
async fn a_token_sees_only_its_own_wabas() {
    let s = spawn().await;
    let a = s.tenant().await;
    let b = s.tenant().await;
    let (status, body) = s.get(&b.phone_number_id, &a.access_token).await;
    assert_eq!(status, 400);
    assert_eq!((error_code(&body), body["error"]["error_subcode"].as_i64()), (100, Some(33)));
}

#[tokio::test]
async fn register_needs_exactly_six_digits_and_the_existing_pin() {
    let s = spawn().await;
    let t = s.control.create_tenant(&TenantRequest::default()).await.unwrap();
    let path = format!("{}/register", t.phone_number_id);
    for bad in ["12345", "1234567", "12a456", ""] {
        let (status, body) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": bad})).await;
        assert_eq!((status, error_code(&body)), (400, 100), "pin {bad:?}");
    }
    s.control.patch_number(&t.phone_number_id, &NumberPatch { pin: Some("111111".into()), ..NumberPatch::default() }).await.unwrap();
    let (_, body) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": "222222"})).await;
    assert_eq!(error_code(&body), 133005);
    let (status, body) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": "111111"})).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (_, number) = s.get(&format!("{}?fields=status,code_verification_status", t.phone_number_id), &t.access_token).await;
    assert_eq!(number["status"], "CONNECTED");
    assert_eq!(number["code_verification_status"], "VERIFIED");
}

#[tokio::test]
async fn register_allows_ten_calls_per_72_hours() {
    let s = spawn().await;
    let t = s.control.create_tenant(&TenantRequest::default()).await.unwrap();
    let path = format!("{}/register", t.phone_number_id);
    for i in 0..10 {
        let pin = if i % 2 == 0 { "12345" } else { "123456" };
        let (_, body) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": pin})).await;
        assert_ne!(error_code(&body), 133016, "call {i}");
    }
    let (status, body) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": "123456"})).await;
    assert_eq!(error_code(&body), 133016);
    assert_eq!(status, 400);
    assert_eq!(s.control.number(&t.phone_number_id).await.unwrap().register_calls_72h, 10);
    s.control.advance_clock(72 * 3600 + 1).await.unwrap();
    let (status, _) = s.post(&path, &t.access_token, json!({"messaging_product": "whatsapp", "pin": "123456"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_unverified_number_is_verified_by_request_and_verify_code() {
    let s = spawn().await;
    let t = s.control.create_tenant(&TenantRequest { unverified: true, ..TenantRequest::default() }).await.unwrap();
    let id = &t.phone_number_id;
    let (_, body) = s.post(&format!("{id}/register"), &t.access_token, json!({"messaging_product": "whatsapp", "pin": "123456"})).await;
    assert_eq!(error_code(&body), 133006);
    let (status, _) = s.post(&format!("{id}/request_code"), &t.access_token, json!({"code_method": "SMS", "language": "de"})).await;
    assert_eq!(status, 200);
    let code = s.control.number(id).await.unwrap().pending_code.unwrap();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (_, body) = s.post(&format!("{id}/verify_code"), &t.access_token, json!({"code": wrong})).await;
    assert_eq!(error_code(&body), 136025);
    let (status, _) = s.post(&format!("{id}/verify_code"), &t.access_token, json!({"code": code})).await;
    assert_eq!(status, 200);
    let (_, n) = s.get(&format!("{id}?fields=code_verification_status"), &t.access_token).await;
    assert_eq!(n["code_verification_status"], "VERIFIED");
    let (status, _) = s.post(&format!("{id}/register"), &t.access_token, json!({"messaging_product": "whatsapp", "pin": "123456"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn fields_are_projected_like_graph_and_unknown_fields_fail() {
    let s = spawn().await;
    let t = s.tenant().await;
    let (_, n) = s.get(&t.phone_number_id, &t.access_token).await;
    let mut keys: Vec<_> = n.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["display_phone_number", "id", "quality_rating", "verified_name"]);
    assert!(n["id"].is_string());
    let (_, n) = s
        .get(&format!("{}?fields=platform_type,throughput,whatsapp_business_manager_messaging_limit,name_status", t.phone_number_id), &t.access_token)
        .await;
    assert_eq!(n["platform_type"], "CLOUD_API");
    assert_eq!(n["throughput"]["level"], "STANDARD");
    assert_eq!(n["name_status"], "APPROVED");
    let (status, body) = s.get(&format!("{}?fields=nonsense", t.phone_number_id), &t.access_token).await;
    assert_eq!((status, error_code(&body)), (400, 100));

    let (_, w) = s.get(&format!("{}?fields=account_review_status,business_verification_status,name", t.waba_id), &t.access_token).await;
    assert_eq!(w["account_review_status"], "APPROVED");
    assert_eq!(w["business_verification_status"], "verified");
    let (_, b) = s.get(&format!("{}?fields=verification_status", t.business_id), &t.access_token).await;
    assert_eq!(b["verification_status"], "verified");
}

#[tokio::test]
async fn phone_numbers_page_with_cursors() {
    let s = spawn().await;
    let t = s.tenant().await;
    // A second number in the same WABA through a second signup is not needed: create one more.
    let extra = s.control.create_tenant(&TenantRequest::default()).await.unwrap();
    let (_, list) = s.get(&format!("{}/phone_numbers", extra.waba_id), &extra.access_token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["paging"]["cursors"]["after"].is_string());
    let (_, list) = s.get(&format!("{}/phone_numbers?limit=1", t.waba_id), &t.access_token).await;
    assert_eq!(list["data"][0]["id"], t.phone_number_id);
    assert!(list["paging"].get("next").is_none());
}

#[tokio::test]
async fn subscribed_apps_subscribe_list_unsubscribe() {
    let s = spawn().await;
    let t = s.tenant().await;
    let path = format!("{}/subscribed_apps", t.waba_id);
    assert_eq!(s.get(&path, &t.access_token).await.1, json!({"data": []}));
    assert_eq!(s.post(&path, &t.access_token, json!({})).await, (200, json!({"success": true})));
    let (_, list) = s.get(&path, &t.access_token).await;
    assert_eq!(list["data"][0]["whatsapp_business_api_data"]["id"], "1000000000000001");
    assert_eq!(s.delete(&path, &t.access_token).await, (200, json!({"success": true})));
    assert_eq!(s.get(&path, &t.access_token).await.1["data"], json!([]));
}

#[tokio::test]
async fn media_upload_lookup_download_and_delete() {
    let s = spawn().await;
    let t = s.tenant().await;
    let mut body = Vec::new();
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n");
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nimage/png\r\n");
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG fake\r\n--XyZ--\r\n");
    let r = s
        .http
        .post(format!("{}/{}/media", s.graph, t.phone_number_id))
        .bearer_auth(&t.access_token)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let (_, info) = s.get(&id, &t.access_token).await;
    assert_eq!(info["mime_type"], "image/png");
    assert_eq!(info["messaging_product"], "whatsapp");
    let url = info["url"].as_str().unwrap().to_string();
    let anonymous = s.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bytes = s.http.get(&url).bearer_auth(&t.access_token).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"\x89PNG fake");
    assert_eq!(s.delete(&id, &t.access_token).await.0, 200);
    assert_eq!(s.get(&id, &t.access_token).await.0, 400);
}

#[tokio::test]
async fn requests_are_recorded_without_secrets() {
    let s = spawn().await;
    let t = s.tenant().await;
    let _ = s.get(&format!("{}?fields=status&access_token=secret", t.phone_number_id), &t.access_token).await;
    let requests = s.control.requests().await.unwrap();
    let r = requests.iter().find(|r| r.path.ends_with(&t.phone_number_id)).unwrap();
    assert_eq!(r.method, "GET");
    assert_eq!(r.query.get("access_token").map(String::as_str), Some("<redacted>"));
    assert_eq!(r.status, 200);
}
