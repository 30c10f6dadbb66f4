//! Browser end-to-end tests in headless Chromium through chromedriver.

use wabridge::accounts::Role;
use wabridge::with_pool;
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

#[tokio::test]
async fn a_customer_writes_the_toast_appears_and_the_agent_chats() {
    use std::time::Duration;
    let s = crate::helpers::spawn_app_with_sandbox(&[]).await;
    let browser = Browser::start().await.unwrap();
    sign_in(&browser, &s.app.base, "agent@sandbox.test").await;
    browser.wait_for("#integrations").await.unwrap();
    // Give the page's event stream a moment to connect.
    tokio::time::sleep(Duration::from_millis(300)).await;

    s.sandbox.control().customer_text(&s.fixture.phone_number_id, "4917612345678", "Guten Morgen!\nZweite Zeile", None).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    let toast = browser.wait_for_text("#toasts .toast", "Guten Morgen!").await.unwrap();
    assert!(toast.contains("Neue WhatsApp-Nachricht von"), "{toast}");
    assert!(!toast.contains("Zweite Zeile"));
    browser.wait_for_text("#unread-count", "1").await.unwrap();
    let position = browser
        .execute("const r = document.querySelector('#toasts .toast').getBoundingClientRect(); return [getComputedStyle(document.getElementById('toasts')).position, window.innerWidth - r.right, window.innerHeight - r.bottom];", vec![])
        .await
        .unwrap();
    assert_eq!(position[0], "fixed");
    assert!(position[1].as_f64().unwrap() < 40.0 && position[2].as_f64().unwrap() < 40.0, "bottom-right: {position}");

    browser.click_on("#toasts .toast a").await.unwrap();
    browser.wait_for_text("#messages", "Guten Morgen!").await.unwrap();
    browser.wait_for_text("#window-state", "Verbleibend").await.unwrap();
    browser.fill("#reply-text", "Guten Morgen, wie kann ich helfen?").await.unwrap();
    browser.click_on("#reply-send").await.unwrap();
    crate::helpers::eventually("the sandbox received the reply", || async {
        s.sandbox.control().sent_messages(None).await.unwrap().iter().any(|m| m.request.to_string().contains("wie kann ich helfen"))
    })
    .await;
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    browser.wait_for_text("#messages .msg.out .ticks", "zugestellt").await.unwrap();
    let wamid = s.sandbox.control().sent_messages(None).await.unwrap()[0].wamid.clone();
    s.sandbox.control().set_status(&wamid, "read", None).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    browser.wait_for_text("#messages .msg.out .ticks", "gelesen").await.unwrap();

    // The customer sends a picture, a sticker, a voice note, a video and a location: all
    // appear live.
    let voice = Some(serde_json::json!({"mime_type": "audio/ogg; codecs=opus", "voice": true}));
    let location = Some(serde_json::json!({"latitude": 48.137, "longitude": 11.575, "name": "Marienplatz", "address": "München"}));
    for (kind, content) in [("image", None), ("sticker", None), ("audio", voice), ("video", None), ("location", location)] {
        s.sandbox
            .control()
            .customer_writes(&serde_json::from_value(serde_json::json!({"phone_number_id": s.fixture.phone_number_id, "from": "4917612345678", "type": kind, "content": content})).unwrap())
            .await
            .unwrap();
    }
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    browser.wait_for_text("#messages", "Marienplatz").await.unwrap();
    browser.wait_for("#messages img.media").await.unwrap();
    // Seen as they arrive in the open conversation: read at Meta (the customer's blue ticks
    // for the last one) and no longer unread here; the header's count goes back to 0.
    browser.wait_for_text("#unread-count", "0").await.unwrap();
    let last = s.sandbox.control().inbound().await.unwrap().last().unwrap()["wamid"].as_str().unwrap().to_owned();
    crate::helpers::eventually("the last message read at Meta", || async {
        s.sandbox.control().requests().await.unwrap().iter().any(|r| r.body["status"] == "read" && r.body["message_id"] == last.as_str())
    })
    .await;
    let unread = with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT unread FROM conversations").fetch_one(p).await).unwrap();
    assert_eq!(unread, 0, "seen as it arrived");
    // No toast for messages of the conversation in view; another customer's message gets one.
    let toasts = browser.execute("return document.querySelectorAll('#toasts .toast').length", vec![]).await.unwrap();
    assert_eq!(toasts, serde_json::json!(0), "the conversation in view shows its messages itself");
    s.sandbox.control().customer_text(&s.fixture.phone_number_id, "4915199999999", "Eine andere Kundin", None).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    browser.wait_for_text("#toasts .toast", "Eine andere Kundin").await.unwrap();
    browser.wait_for_text("#unread-count", "1").await.unwrap();
    // The files were fetched from Meta through our server and really render and play: the
    // 240×160 picture, the 512×512 sticker, the three-second voice note, the 160×96 video
    // whose first frame shows the sky.
    let widths = browser
        .execute(
            "return Promise.all([...document.querySelectorAll('#messages img.media')].map(i => new Promise(r => { if (i.complete) r(i.naturalWidth); else { i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); } })));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(widths, serde_json::json!([240, 512]), "the picture and the sticker rendered: {widths}");
    let voice = browser
        .execute(
            "const a = document.querySelector('#messages audio.media'); return new Promise(r => { a.onloadedmetadata = () => r(a.duration); a.onerror = () => r('error ' + a.error.code); a.load(); });",
            vec![],
        )
        .await
        .unwrap();
    assert!(voice.as_f64().is_some_and(|d| (2.9..3.1).contains(&d)), "the voice note plays for three seconds: {voice}");
    browser.wait_for_text("#messages", "Sprachnachricht").await.unwrap();
    let video = browser
        .execute(
            "const v = document.querySelector('#messages video.media'); return new Promise(r => { const shown = () => { const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight; const g = c.getContext('2d'); g.drawImage(v, 0, 0); r([v.videoWidth, v.videoHeight, v.duration, ...g.getImageData(4, 4, 1, 1).data.slice(0, 3)]); }; v.onseeked = shown; v.onloadeddata = () => { v.currentTime = 0.1; }; v.onerror = () => r('error ' + v.error.code); v.preload = 'auto'; v.load(); });",
            vec![],
        )
        .await
        .unwrap();
    let frame: Vec<f64> = video.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
    assert!(frame.len() == 6 && frame[..3] == [160.0, 96.0, 2.0], "the video plays, 160×96 for two seconds: {video}");
    assert!(frame[5] > 200.0 && frame[3] < 180.0, "its first frame shows a blue sky in its corner: {video}");
    browser.quit().await.unwrap();
}

/// In the browser: Meta fails a reply with a retryable error and then takes it — the agent
/// sees it delivered, and the customer got it once; Meta takes a reply but answers after our
/// timeout — the agent sees it reconciled by Meta's status, one message, never sent again.
#[tokio::test]
async fn a_retried_reply_and_a_late_answered_one_each_reach_the_customer_once() {
    use std::time::Duration;
    use wabridge_sandbox::Fault;
    let s = crate::helpers::spawn_app_with_sandbox(&[("WABRIDGE_GRAPH_TIMEOUT_SECS", "1")]).await;
    s.sandbox.control().customer_text(&s.fixture.phone_number_id, "4917612345678", "Hallo", None).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    let browser = Browser::start().await.unwrap();
    sign_in(&browser, &s.app.base, "agent@sandbox.test").await;
    // Signed in (the landing page) before going anywhere else.
    browser.wait_for("#integrations").await.unwrap();
    crate::helpers::eventually("conversation", || async {
        with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM conversations").fetch_one(p).await).unwrap() == 1
    })
    .await;
    let id = with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations").fetch_one(p).await).unwrap();
    browser.goto(&s.app.url(&format!("/inbox/{id}"))).await.unwrap();
    browser.wait_for_text("#messages", "Hallo").await.unwrap();
    let copies = async |text: &str| s.sandbox.control().sent_messages(None).await.unwrap().iter().filter(|m| m.request.to_string().contains(text)).count();

    // A retryable refusal (131000), then success after the backoff.
    s.sandbox
        .control()
        .add_fault(&Fault { endpoint: "messages".into(), method: Some("POST".into()), code: Some(131_000), remaining: Some(1), ..Default::default() })
        .await
        .unwrap();
    browser.fill("#reply-text", "Erster Versuch scheitert").await.unwrap();
    browser.click_on("#reply-send").await.unwrap();
    crate::helpers::eventually("refused once", || async {
        with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE error_code = 131000").fetch_one(p).await).unwrap() == 1
    })
    .await;
    s.app.clock.advance(2_000);
    crate::helpers::eventually("sent on the second attempt", || async { copies("Erster Versuch scheitert").await == 1 }).await;
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    browser.wait_for_text("#messages .msg.out:last-of-type .ticks", "zugestellt").await.unwrap();

    // Meta takes the next one but answers after our one-second timeout.
    s.sandbox
        .control()
        .add_fault(&Fault { endpoint: "messages".into(), method: Some("POST".into()), delay_ms: Some(2_500), remaining: Some(1), ..Default::default() })
        .await
        .unwrap();
    browser.fill("#reply-text", "Langsame Antwort").await.unwrap();
    browser.click_on("#reply-send").await.unwrap();
    crate::helpers::eventually("the answer came too late", || async {
        with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE state = 'unknown'").fetch_one(p).await).unwrap() == 1
            || copies("Langsame Antwort").await == 1
    })
    .await;
    crate::helpers::eventually("reconciled by Meta's status", || async {
        s.sandbox.control().flush(Duration::from_secs(1)).await.ok();
        with_pool!(s.app.db.read(), |p| sqlx::query_scalar::<_, String>("SELECT status FROM messages WHERE body = 'Langsame Antwort'").fetch_one(p).await).unwrap() == "delivered"
    })
    .await;
    browser.wait_for_text("#messages .msg.out:last-of-type .ticks", "zugestellt").await.unwrap();
    s.app.clock.advance(600_000);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!((copies("Erster Versuch scheitert").await, copies("Langsame Antwort").await), (1, 1), "each reached the customer once");
    let shown = browser.find_all("#messages .msg.out").await.unwrap().len();
    assert_eq!(shown, 2, "one message each in the conversation");
    browser.quit().await.unwrap();
}

#[tokio::test]
async fn a_closed_window_replaces_the_composer_with_the_explanation() {
    use std::time::Duration;
    let s = crate::helpers::spawn_app_with_sandbox(&[]).await;
    let at = s.app.clock.now_ms() / 1000 - 25 * 3600;
    s.sandbox.control().customer_text(&s.fixture.phone_number_id, "4917600000000", "Vor langer Zeit", Some(at)).await.unwrap();
    s.sandbox.control().flush(Duration::from_secs(5)).await.unwrap();
    let browser = Browser::start().await.unwrap();
    sign_in(&browser, &s.app.base, "owner@sandbox.test").await;
    browser.wait_for("#integrations").await.unwrap();
    browser.click_on("#nav-inbox").await.unwrap();
    browser.wait_for_text("#conversation-list", "Fenster geschlossen").await.unwrap();
    browser.click_on("#conversation-list a").await.unwrap();
    browser.wait_for_text("#window-state", "geschlossen").await.unwrap();
    browser.wait_for_text("#composer-closed", "freigegebenes Template").await.unwrap();
    assert!(browser.find("#composer").await.is_err(), "no free-form composer");
    browser.quit().await.unwrap();
}

/// The documentation's walk: API settings → LOGIN → PIN → MIT FACEBOOK EINLOGGEN → Meta's
/// popup → back on our page the checklist turns done and the row says connected.
#[tokio::test]
async fn owner_connects_whatsapp_through_the_signup_popup() {
    let s = crate::helpers::spawn_app_with_bare_sandbox(wabridge_sandbox::SandboxConfig::for_tests(None), &[]).await;
    let app = &s.app;
    let t = app.tenant("Salon Browser").await;
    app.user(Some(t), "owner@browser.test", Role::Owner).await;
    let browser = Browser::start().await.unwrap();

    sign_in(&browser, &app.base, "owner@browser.test").await;
    browser.wait_for_text("#whatsapp-status", "Nicht verbunden").await.unwrap();
    browser.click_on("#whatsapp-login").await.unwrap();
    browser.wait_for_text("#prerequisites", "Voraussetzungen").await.unwrap();
    browser.fill("#pin", "12345").await.unwrap();
    browser.click_on("#payment-confirmed").await.unwrap();
    // Five digits do not pass the form's own check (the server refuses them too).
    let valid = browser.execute("return document.getElementById('pin').checkValidity()", vec![]).await.unwrap();
    assert_eq!(valid, serde_json::json!(false));
    browser.execute("document.getElementById('pin').value = ''; return true", vec![]).await.unwrap();
    browser.fill("#pin", "123456").await.unwrap();
    browser.click_on("#pin-submit").await.unwrap();
    browser.wait_for("#pin-stored").await.unwrap();

    // The button is enabled once the SDK has loaded and FB.init ran.
    let started = std::time::Instant::now();
    while browser.execute("return document.getElementById('fb-login').disabled", vec![]).await.unwrap() != serde_json::json!(false) {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the SDK did not load");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let main = browser.window().await.unwrap();
    let login = browser.find("#fb-login").await.unwrap();
    assert_eq!(browser.text(&login).await.unwrap(), "MIT FACEBOOK EINLOGGEN");
    browser.click(&login).await.unwrap();
    browser.switch_to_new_window(std::slice::from_ref(&main)).await.unwrap();
    browser.wait_for_text("#es-step-name", "LOGIN").await.unwrap();
    // Facebook's window speaks the page's language: the SDK is loaded in the reader's locale.
    browser.wait_for_text("h2[data-t=login_title]", "Bei Facebook anmelden").await.unwrap();
    browser.fill("#es-email", "owner@browser.test").await.unwrap();
    browser.fill("#es-name", "Browser Owner").await.unwrap();
    browser.click_on("#es-login").await.unwrap();
    browser.wait_for_text("#es-step-name", "BUSINESS_ACCOUNT_SELECTION").await.unwrap();
    browser.fill("#es-business-name", "Salon Browser").await.unwrap();
    browser.click_on("#es-business-next").await.unwrap();
    browser.wait_for_text("#es-step-name", "WABA_SELECTION").await.unwrap();
    browser.fill("#es-waba-name", "Salon Browser WhatsApp").await.unwrap();
    browser.click_on("#es-waba-next").await.unwrap();
    browser.wait_for_text("#es-step-name", "PHONE_NUMBER_SETUP").await.unwrap();
    browser.click_on("#es-phone-own").await.unwrap();
    browser.fill("#es-phone-number", "+49 30 9876543").await.unwrap();
    browser.click_on("#es-phone-next").await.unwrap();
    browser.wait_for_text("#es-step-name", "PHONE_NUMBER_VERIFICATION").await.unwrap();
    let hint = browser.wait_for_text("#es-sandbox-code", "+49309876543 – ").await.unwrap();
    let code = hint.rsplit(' ').next().unwrap().to_string();
    browser.fill("#es-sms-code", &code).await.unwrap();
    browser.click_on("#es-sms-verify").await.unwrap();
    browser.wait_for_text("#es-step-name", "DISPLAY_NAME_SETUP").await.unwrap();
    browser.fill("#es-display-name", "Salon Browser").await.unwrap();
    browser.click_on("#es-display-next").await.unwrap();
    browser.wait_for_text("#es-step-name", "PERMISSIONS").await.unwrap();
    browser.click_on("#es-finish").await.unwrap();

    browser.switch_to_window(&main).await.unwrap();
    browser.wait_for("#checklist").await.unwrap();
    browser.wait_for_text("#onboarding-connected", "+49").await.unwrap();
    for item in ["business_verified", "number_verified", "number_registered", "template_approved"] {
        browser.wait_for_text(&format!("#check-{item} .state"), "erledigt").await.unwrap();
    }
    // When each item changed, in the reader's time zone (Berlin) and words: the same instant as
    // the UTC text the server wrote, which stays as the title — also for the items the page
    // updated live.
    let whens = browser
        .execute(
            "return [...document.querySelectorAll('#checklist .when time')].map(t => {
               const at = new Date(t.getAttribute('datetime'));
               const berlin = new Intl.DateTimeFormat('de', {dateStyle: 'medium', timeStyle: 'short', timeZone: 'Europe/Berlin'}).format(at);
               return [t.textContent === berlin, t.title.endsWith(' UTC'), Intl.DateTimeFormat().resolvedOptions().timeZone];
             })",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(whens, serde_json::json!(vec![serde_json::json!([true, true, "Europe/Berlin"]); 4]), "{whens}");
    // What Meta says of each item, in the reader's words (as the page updated it live): the
    // display name's review beside the number, each language of the template.
    let number = browser.text(&browser.find("#check-number_verified .detail").await.unwrap()).await.unwrap();
    assert!(number.contains("Bestätigung der Nummer per Code: verifiziert") && number.contains("Prüfung des Anzeigenamens:"), "{number}");
    let template = browser.text(&browser.find("#check-template_approved .detail").await.unwrap()).await.unwrap();
    assert_eq!(template, "Deutsch: freigegeben · Englisch: freigegeben");
    let page = browser.source().await.unwrap();
    assert!(!page.contains("name_status=") && !page.contains("APPROVED"), "no raw field or value of Meta's on the page");
    browser.click_on("#back").await.unwrap();
    browser.wait_for_text("#whatsapp-status", "Verbunden").await.unwrap();
    browser.wait_for_text("#whatsapp-number", "Salon Browser").await.unwrap();
    browser.quit().await.unwrap();
}
