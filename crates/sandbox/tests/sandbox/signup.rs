//! Embedded Signup through the popup's JSON endpoints: every outcome, the code exchange and
//! `debug_token`.

use serde_json::{Value, json};

use crate::support::{TestSandbox, error_code, spawn};

/// Opens the popup like `FB.login` does and returns its session id.
async fn open_popup(s: &TestSandbox) -> String {
    let url = format!(
        "{}/dialog/oauth?app_id=1000000000000001&config_id=2000000000000002&response_type=code&override_default_response_type=true&extras=%7B%7D",
        s.sandbox.base_url()
    );
    let html = s.http.get(url).send().await.unwrap().text().await.unwrap();
    let start = html.find("var SESSION = \"").unwrap() + 15;
    let session = html[start..start + 16].to_string();
    assert!(html.contains("var PROBLEM = \"\""), "a valid config opens the flow");
    session
}

async fn popup(s: &TestSandbox, session: &str, step: &str, body: Value) -> (u16, Value) {
    let r = s.http.post(format!("{}/_signup/{session}/{step}", s.sandbox.base_url())).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn exchange(s: &TestSandbox, code: &str, secret: &str) -> (u16, Value) {
    let r = s
        .http
        .get(format!("{}/oauth/access_token", s.graph))
        .query(&[("client_id", "1000000000000001"), ("client_secret", secret), ("code", code)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Walks the popup with a new business, WABA and own number verified by SMS code.
async fn signup_own_number(s: &TestSandbox) -> Value {
    let session = open_popup(s).await;
    let (status, assets) = popup(s, &session, "login", json!({"email": "owner@praxis.test", "name": "Dr. Owner"})).await;
    assert_eq!(status, 200);
    assert_eq!(assets["businesses"], json!([]));
    let (_, sms) = popup(s, &session, "sms", json!({"number": "+49 30 1234567"})).await;
    let code = sms["code"].as_str().unwrap().to_string();
    let (status, wrong) = popup(
        s,
        &session,
        "finish",
        json!({"business": {"name": "Praxis"}, "waba": {"name": "Praxis WA"}, "phone": {"mode": "own", "number": "49301234567", "code": "000000x"}, "display_name": "Praxis"}),
    )
    .await;
    assert_eq!((status, wrong["error"].as_str()), (400, Some("wrong_code")));
    let (status, out) = popup(
        s,
        &session,
        "finish",
        json!({"business": {"name": "Praxis"}, "waba": {"name": "Praxis WA"}, "phone": {"mode": "own", "number": "49301234567", "code": code}, "display_name": "Praxis Dr. Owner"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    out
}

#[tokio::test]
async fn finish_posts_ids_and_a_code_that_exchanges_once_for_a_business_token() {
    let s = spawn().await;
    let out = signup_own_number(&s).await;
    let message = &out["message"];
    assert_eq!(message["type"], "WA_EMBEDDED_SIGNUP");
    assert_eq!(message["event"], "FINISH");
    for key in ["phone_number_id", "waba_id", "business_id"] {
        assert!(message["data"][key].as_str().is_some_and(|v| v.chars().all(|c| c.is_ascii_digit())), "{key}");
    }
    assert_eq!(out["auth_response"]["status"], "connected");
    let code = out["auth_response"]["authResponse"]["code"].as_str().unwrap().to_string();

    let (status, body) = exchange(&s, &code, "wrong-secret").await;
    assert_eq!((status, error_code(&body)), (400, 1));
    let (status, body) = exchange(&s, &code, "sandbox-app-secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().unwrap().to_string();
    let (status, again) = exchange(&s, &code, "sandbox-app-secret").await;
    assert_eq!((status, error_code(&again), again["error"]["error_subcode"].as_i64()), (400, 100, Some(36009)));

    let pnid = message["data"]["phone_number_id"].as_str().unwrap();
    let waba = message["data"]["waba_id"].as_str().unwrap();
    let (_, n) = s.get(&format!("{pnid}?fields=code_verification_status,status,display_phone_number,verified_name"), &token).await;
    assert_eq!(n["code_verification_status"], "VERIFIED");
    assert_eq!(n["status"], "PENDING");
    assert_eq!(n["display_phone_number"], "+49 30 1234567");
    assert_eq!(n["verified_name"], "Praxis Dr. Owner");

    let r = s
        .http
        .get(format!("{}/debug_token", s.graph))
        .query(&[("input_token", token.as_str())])
        .bearer_auth("1000000000000001|sandbox-app-secret")
        .send()
        .await
        .unwrap();
    let debug: Value = r.json().await.unwrap();
    assert_eq!(debug["data"]["is_valid"], true);
    assert_eq!(debug["data"]["app_id"], "1000000000000001");
    assert_eq!(debug["data"]["granular_scopes"][0]["scope"], "whatsapp_business_management");
    assert_eq!(debug["data"]["granular_scopes"][0]["target_ids"], json!([waba]));

    // Meta announces the installation to the partner: entry.id is the partner's business.
    let changes = s.changes().await;
    let installed = changes.iter().find(|(f, v)| f == "account_update" && v["event"] == "PARTNER_APP_INSTALLED").unwrap();
    assert_eq!(installed.1["waba_info"]["waba_id"], waba);
    let posts = s.hook.posts.lock().unwrap().clone();
    let entry = posts
        .iter()
        .flat_map(|p| p.json()["entry"].as_array().cloned().unwrap_or_default())
        .find(|e| e["changes"][0]["field"] == "account_update")
        .unwrap();
    assert_eq!(entry["id"], "3000000000000003");
    assert!(entry["time"].is_i64());
}

#[tokio::test]
async fn the_code_expires_after_30_seconds() {
    let s = spawn().await;
    let out = signup_own_number(&s).await;
    let code = out["auth_response"]["authResponse"]["code"].as_str().unwrap().to_string();
    s.control.advance_clock(31).await.unwrap();
    let (status, body) = exchange(&s, &code, "sandbox-app-secret").await;
    assert_eq!((status, error_code(&body), body["error"]["error_subcode"].as_i64()), (400, 100, Some(36007)));
    let (_, body) = exchange(&s, "AQnotacode", "sandbox-app-secret").await;
    assert_eq!(error_code(&body), 100);
}

#[tokio::test]
async fn other_finish_outcomes_only_waba_coexistence_unverified_and_existing_assets() {
    let s = spawn().await;
    let session = open_popup(&s).await;
    popup(&s, &session, "login", json!({"email": "a@b.test"})).await;
    let (_, out) = popup(&s, &session, "finish", json!({"business": {"name": "B"}, "waba": {"name": "W"}, "phone": {"mode": "none"}})).await;
    assert_eq!(out["message"]["event"], "FINISH_ONLY_WABA");
    assert!(out["message"]["data"].get("phone_number_id").is_none());
    let business_id = out["message"]["data"]["business_id"].as_str().unwrap().to_string();
    let waba_id = out["message"]["data"]["waba_id"].as_str().unwrap().to_string();

    // Second run: the same user sees the business and WABA and adds a number to verify later.
    let session = open_popup(&s).await;
    let (_, assets) = popup(&s, &session, "login", json!({"email": "a@b.test"})).await;
    assert_eq!(assets["businesses"][0]["id"], business_id);
    assert_eq!(assets["businesses"][0]["wabas"][0]["id"], waba_id);
    let (_, out) = popup(
        &s,
        &session,
        "finish",
        json!({"business": {"id": business_id}, "waba": {"id": waba_id}, "phone": {"mode": "own", "number": "4930555666", "verify_later": true}, "display_name": "B"}),
    )
    .await;
    assert_eq!(out["message"]["event"], "FINISH");
    let pnid = out["message"]["data"]["phone_number_id"].as_str().unwrap().to_string();
    assert_eq!(s.control.number(&pnid).await.unwrap().code_verification_status, "NOT_VERIFIED");

    let session = open_popup(&s).await;
    popup(&s, &session, "login", json!({"email": "c@b.test"})).await;
    let (_, out) = popup(&s, &session, "finish", json!({"business": {"name": "C"}, "waba": {"name": "C"}, "phone": {"mode": "coexistence", "number": "4917012345"}})).await;
    assert_eq!(out["message"]["event"], "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING");
    assert_eq!(out["message"]["data"].as_object().unwrap().keys().collect::<Vec<_>>(), ["waba_id"]);
    let code = out["auth_response"]["authResponse"]["code"].as_str().unwrap().to_string();
    let token = exchange(&s, &code, "sandbox-app-secret").await.1["access_token"].as_str().unwrap().to_string();
    let waba = out["message"]["data"]["waba_id"].as_str().unwrap();
    let (_, numbers) = s.get(&format!("{waba}/phone_numbers?fields=is_on_biz_app,platform_type"), &token).await;
    assert_eq!(numbers["data"][0]["is_on_biz_app"], true);
    assert_eq!(numbers["data"][0]["platform_type"], "CLOUD_API");

    let session = open_popup(&s).await;
    popup(&s, &session, "login", json!({"email": "d@b.test"})).await;
    let (_, out) = popup(&s, &session, "finish", json!({"business": {"name": "D"}, "waba": {"name": "D"}, "phone": {"mode": "meta"}, "display_name": "D"})).await;
    let pnid = out["message"]["data"]["phone_number_id"].as_str().unwrap().to_string();
    let info = s.control.number(&pnid).await.unwrap();
    assert!(info.number.starts_with("1555"));
    assert_eq!(info.code_verification_status, "VERIFIED");
}

#[tokio::test]
async fn cancel_reports_the_step_or_the_error() {
    let s = spawn().await;
    let session = open_popup(&s).await;
    let (_, out) = popup(&s, &session, "cancel", json!({"current_step": "PHONE_NUMBER_SETUP"})).await;
    assert_eq!(out["message"], json!({"data": {"current_step": "PHONE_NUMBER_SETUP"}, "type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "version": 4}));
    assert_eq!(out["auth_response"], json!({"authResponse": null, "status": "unknown"}));

    let session = open_popup(&s).await;
    let (_, out) = popup(&s, &session, "cancel", json!({"current_step": "LOGIN", "error_code": "524126", "error_message": "Kaputt"})).await;
    let data = &out["message"]["data"];
    assert_eq!(out["message"]["event"], "CANCEL");
    assert_eq!(data["error_code"], "524126");
    assert_eq!(data["error_message"], "Kaputt");
    assert_eq!(data["session_id"], session);
    assert!(data["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
}

#[tokio::test]
async fn a_wrong_config_id_or_app_id_is_refused_by_the_popup() {
    let s = spawn().await;
    let base = s.sandbox.base_url();
    let html = s.http.get(format!("{base}/dialog/oauth?app_id=1000000000000001&config_id=999&response_type=code")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("var PROBLEM = \"invalid_config\""));
    let html = s.http.get(format!("{base}/dialog/oauth?app_id=42&config_id=2000000000000002&response_type=code")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("var PROBLEM = \"invalid_app\""));
    let sdk = s.http.get(format!("{base}/de_DE/sdk.js")).send().await.unwrap();
    assert_eq!(sdk.headers()["content-type"], "application/javascript; charset=utf-8");
    let js = sdk.text().await.unwrap();
    assert!(js.contains(&format!("var BASE = \"{base}\"")) && js.contains("var LOCALE = \"de_DE\""));
}

#[tokio::test]
async fn the_cloud_api_client_works_against_the_sandbox_unchanged() {
    use secrecy::SecretString;
    use wabridge_cloud_api::{AppCredentials, GraphClient, GraphConfig, Pin};

    let s = spawn().await;
    let out = signup_own_number(&s).await;
    let code = SecretString::from(out["auth_response"]["authResponse"]["code"].as_str().unwrap().to_string());
    let waba_id = out["message"]["data"]["waba_id"].as_str().unwrap().to_string();
    let pnid = out["message"]["data"]["phone_number_id"].as_str().unwrap().to_string();
    let client = GraphClient::new(GraphConfig::new(s.sandbox.base_url(), "v26.0")).unwrap();
    let app = AppCredentials { app_id: "1000000000000001".into(), app_secret: SecretString::from("sandbox-app-secret".to_string()) };
    let token = client.exchange_code(&app, &code).await.unwrap().access_token;
    let info = client.debug_token(&app, &token).await.unwrap();
    assert_eq!(info.is_valid, Some(true));
    let waba = client.waba(&token, &waba_id).await.unwrap();
    assert_eq!(waba.id.as_deref(), Some(waba_id.as_str()));
    assert_eq!(waba.account_review_status.as_deref(), Some("APPROVED"));
    client.subscribe_app(&token, &waba_id).await.unwrap();
    client.register(&token, &pnid, &Pin::parse("123456").unwrap(), None).await.unwrap();
    let numbers = client.all_phone_numbers(&token, &waba_id).await.unwrap();
    assert_eq!(numbers.len(), 1);
    assert_eq!(numbers[0].status.as_deref(), Some("CONNECTED"));
    assert_eq!(numbers[0].code_verification_status.as_deref(), Some("VERIFIED"));
    let err = client.register(&token, &pnid, &Pin::parse("654321").unwrap(), None).await.unwrap_err();
    assert!(format!("{err:?}").contains("133005"), "{err:?}");
}
