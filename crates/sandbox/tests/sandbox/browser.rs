//! Embedded Signup in headless Chromium: a plain page on another origin loads the SDK shim,
//! calls `FB.login`, and receives the session info from the popup's origin and the code in
//! the callback.

use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::{Value, json};
use wabridge_testkit::webdriver::Browser;

use crate::support::{TestSandbox, spawn};

/// Serves the plain test page on its own origin.
async fn test_page(sdk_url: String) -> String {
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body>
<button id="launch">Mit Facebook einloggen</button>
<script>
  window.__events = []; window.__login = null;
  window.addEventListener('message', function (e) {{
    var data; try {{ data = JSON.parse(e.data); }} catch (x) {{ return; }}
    if (data && data.type === 'WA_EMBEDDED_SIGNUP') {{ window.__events.push({{origin: e.origin, data: data}}); }}
  }});
  window.fbAsyncInit = function () {{
    FB.init({{ appId: '1000000000000001', autoLogAppEvents: true, xfbml: true, version: 'v26.0' }});
  }};
  document.getElementById('launch').onclick = function () {{
    FB.login(function (response) {{ window.__login = response; }}, {{
      config_id: '2000000000000002', response_type: 'code', override_default_response_type: true, extras: {{}}
    }});
  }};
</script>
<script async defer crossorigin="anonymous" src="{sdk_url}"></script>
</body></html>"#
    );
    let app = Router::new().route("/", get(move || async move { Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

async fn open_signup(s: &TestSandbox) -> (Browser, String) {
    let page = test_page(s.sandbox.sdk_url()).await;
    let browser = Browser::start().await.unwrap();
    browser.goto(&page).await.unwrap();
    // The SDK loads asynchronously and calls fbAsyncInit.
    wait_until(&browser, "return !!window.FB").await;
    let main = browser.window().await.unwrap();
    browser.click_on("#launch").await.unwrap();
    browser.switch_to_new_window(std::slice::from_ref(&main)).await.unwrap();
    browser.wait_for_text("#es-step-name", "LOGIN").await.unwrap();
    (browser, main)
}

async fn wait_until(browser: &Browser, script: &str) -> Value {
    let started = Instant::now();
    loop {
        let v = browser.execute(script, vec![]).await.unwrap();
        if !v.is_null() && v != json!(false) {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "timed out: {script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_popup_walks_meta_steps_and_hands_over_session_info_and_code() {
    let s = spawn().await;
    let (b, main) = open_signup(&s).await;
    b.click_on("#es-lang-en").await.unwrap();
    b.wait_for_text("#es-login", "Continue").await.unwrap();
    b.fill("#es-email", "owner@praxis.test").await.unwrap();
    b.fill("#es-name", "Dr. Owner").await.unwrap();
    b.click_on("#es-login").await.unwrap();
    b.wait_for_text("#es-step-name", "BUSINESS_ACCOUNT_SELECTION").await.unwrap();
    b.fill("#es-business-name", "Praxis Owner").await.unwrap();
    b.click_on("#es-business-next").await.unwrap();
    b.wait_for_text("#es-step-name", "WABA_SELECTION").await.unwrap();
    b.fill("#es-waba-name", "Praxis WhatsApp").await.unwrap();
    b.click_on("#es-waba-next").await.unwrap();
    b.wait_for_text("#es-step-name", "PHONE_NUMBER_SETUP").await.unwrap();
    b.click_on("#es-phone-own").await.unwrap();
    b.fill("#es-phone-number", "+49 30 7654321").await.unwrap();
    b.click_on("#es-phone-next").await.unwrap();
    b.wait_for_text("#es-step-name", "PHONE_NUMBER_VERIFICATION").await.unwrap();
    let hint = b.wait_for_text("#es-sandbox-code", "code:").await.unwrap();
    let code = hint.rsplit(' ').next().unwrap().to_string();
    b.fill("#es-sms-code", &code).await.unwrap();
    b.click_on("#es-sms-verify").await.unwrap();
    b.wait_for_text("#es-step-name", "DISPLAY_NAME_SETUP").await.unwrap();
    b.fill("#es-display-name", "Praxis Dr. Owner").await.unwrap();
    b.click_on("#es-display-next").await.unwrap();
    b.wait_for_text("#es-step-name", "PERMISSIONS").await.unwrap();
    b.click_on("#es-finish").await.unwrap();

    b.switch_to_window(&main).await.unwrap();
    let login = wait_until(&b, "return window.__login").await;
    let events = b.execute("return window.__events", vec![]).await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["origin"], s.sandbox.origin());
    let message = &events[0]["data"];
    assert_eq!(message["type"], "WA_EMBEDDED_SIGNUP");
    assert_eq!(message["event"], "FINISH");
    assert_eq!(login["status"], "connected");
    let code = login["authResponse"]["code"].as_str().unwrap().to_string();

    let r: Value = s
        .http
        .get(format!("{}/oauth/access_token", s.graph))
        .query(&[("client_id", "1000000000000001"), ("client_secret", "sandbox-app-secret"), ("code", code.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap();
    let pnid = message["data"]["phone_number_id"].as_str().unwrap();
    let (_, n) = s.get(&format!("{pnid}?fields=verified_name,code_verification_status"), token).await;
    assert_eq!(n["verified_name"], "Praxis Dr. Owner");
    assert_eq!(n["code_verification_status"], "VERIFIED");
    // The popup closes itself.
    let started = Instant::now();
    while b.windows().await.unwrap().len() > 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "the popup stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.quit().await.unwrap();
}

#[tokio::test]
async fn cancel_error_and_a_closed_popup_reach_the_page_as_meta_sends_them() {
    let s = spawn().await;
    // Cancel on the phone step: CANCEL with current_step; FB.login gets no authResponse.
    let (b, main) = open_signup(&s).await;
    b.click_on("#es-lang-de").await.unwrap();
    b.wait_for_text("#es-login", "Weiter").await.unwrap();
    b.click_on("#es-login").await.unwrap();
    b.wait_for_text("#es-step-name", "BUSINESS_ACCOUNT_SELECTION").await.unwrap();
    b.click_on("#es-cancel").await.unwrap();
    b.switch_to_window(&main).await.unwrap();
    let login = wait_until(&b, "return window.__login").await;
    assert_eq!(login, json!({"authResponse": null, "status": "unknown"}));
    let events = b.execute("return window.__events", vec![]).await.unwrap();
    assert_eq!(events[0]["data"]["event"], "CANCEL");
    assert_eq!(events[0]["data"]["data"]["current_step"], "BUSINESS_ACCOUNT_SELECTION");

    // A reported error: CANCEL with error_message and error_code.
    b.execute("window.__events = []; window.__login = null; return true", vec![]).await.unwrap();
    b.click_on("#launch").await.unwrap();
    b.switch_to_new_window(std::slice::from_ref(&main)).await.unwrap();
    b.wait_for_text("#es-step-name", "LOGIN").await.unwrap();
    b.fill("#es-error-message", "Konto gesperrt").await.unwrap();
    b.click_on("#es-report-error").await.unwrap();
    b.switch_to_window(&main).await.unwrap();
    wait_until(&b, "return window.__login").await;
    let events = b.execute("return window.__events", vec![]).await.unwrap();
    assert_eq!(events[0]["data"]["event"], "CANCEL");
    assert_eq!(events[0]["data"]["data"]["error_code"], "524126");
    assert_eq!(events[0]["data"]["data"]["error_message"], "Konto gesperrt");

    // Closed without a message: only the callback, with no authResponse.
    b.execute("window.__events = []; window.__login = null; return true", vec![]).await.unwrap();
    b.click_on("#launch").await.unwrap();
    b.switch_to_new_window(std::slice::from_ref(&main)).await.unwrap();
    b.wait_for_text("#es-step-name", "LOGIN").await.unwrap();
    b.click_on("#es-close-silently").await.unwrap();
    b.switch_to_window(&main).await.unwrap();
    let login = wait_until(&b, "return window.__login").await;
    assert_eq!(login["authResponse"], Value::Null);
    assert_eq!(b.execute("return window.__events.length", vec![]).await.unwrap(), json!(0));
    b.quit().await.unwrap();
}
