//! A customer's message arrives while the owner has a page open in headless Chromium: the
//! toast appears bottom-right, the unread count goes up, and the toast opens the notification.
//! A conversation left open while the server restarts catches up and stays live.

use std::time::Duration;

use wabridge::with_pool;
use wabridge_testkit::webdriver::Browser;

use crate::helpers::{PASSWORD, backend, fresh_database_url, spawn_app, spawn_app_on_with};
use crate::ingest::{post_signed, tenant_with_number, text_body};

/// Signs the owner in; lands on the API settings page.
async fn signed_in(app_url: &str, email: &str) -> Browser {
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{app_url}/sign-in")).await.unwrap();
    browser.fill("#email", email).await.unwrap();
    browser.fill("#password", PASSWORD).await.unwrap();
    browser.click_on("#sign-in-submit").await.unwrap();
    browser.wait_for_text("h1", "API-Einstellungen").await.unwrap();
    assert!(browser.current_url().await.unwrap().ends_with("/api-settings"));
    browser
}

/// Waits until the page's event stream is open (the server subscribed before answering).
async fn stream_open(browser: &Browser) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser.execute("return window.wabridgeLive ? window.wabridgeLive.readyState : -1", vec![]).await.unwrap().as_i64() != Some(1) {
        assert!(std::time::Instant::now() < deadline, "the page never opened its event stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_webhook_becomes_a_toast_bottom_right_with_the_unread_count() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Demo Salon").await;
    let browser = signed_in(&app.base, "owner@demosalon.test").await;
    browser.wait_for_text("#unread-count", "0").await.unwrap();
    stream_open(&browser).await;

    let body = text_body(&number, "491701234567", "Anna Schmidt", &[("wamid.BROWSER", "Guten Morgen!\nHaben Sie morgen frei?")]);
    assert_eq!(post_signed(&app, &body).await.status(), 200);
    let text = browser.wait_for_text("#toasts .toast", "Neue WhatsApp-Nachricht von Anna Schmidt").await.unwrap();
    assert!(text.contains("Guten Morgen!"), "{text}");
    assert!(!text.contains("Haben Sie"), "only the first line: {text}");
    browser.wait_for_text("#unread-count", "1").await.unwrap();

    let placement = browser
        .execute(
            "const box = document.getElementById('toasts'); const s = getComputedStyle(box);
             const r = document.querySelector('#toasts .toast').getBoundingClientRect();
             return {position: s.position, right: s.right, bottom: s.bottom,
                     gapRight: window.innerWidth - r.right, gapBottom: window.innerHeight - r.bottom,
                     left: r.left, top: r.top, width: window.innerWidth, height: window.innerHeight};",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(placement["position"], "fixed", "{placement}");
    assert!(placement["right"].as_str().unwrap().ends_with("px") && placement["bottom"].as_str().unwrap().ends_with("px"), "{placement}");
    let (gap_right, gap_bottom) = (placement["gapRight"].as_f64().unwrap(), placement["gapBottom"].as_f64().unwrap());
    assert!((0.0..40.0).contains(&gap_right) && (0.0..40.0).contains(&gap_bottom), "bottom-right corner: {placement}");
    assert!(placement["left"].as_f64().unwrap() > placement["width"].as_f64().unwrap() / 2.0, "right half: {placement}");
    assert!(placement["top"].as_f64().unwrap() > placement["height"].as_f64().unwrap() / 2.0, "bottom half: {placement}");

    // The toast leads to what it is about (the conversation) and marks the notification read.
    browser.click_on("#toasts .toast a").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser.current_url().await.unwrap().ends_with("/api-settings") {
        assert!(std::time::Instant::now() < deadline, "the toast did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = browser.current_url().await.unwrap();
    let message = crate::ingest::message_id(&app, "wamid.BROWSER").await;
    assert!(opened.contains("/inbox/") && opened.ends_with(&format!("#msg-{message}")), "the conversation at the message: {opened}");
    browser.wait_for_text("#unread-count", "0").await.unwrap();
    let read = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, Option<i64>>(
        "SELECT r.read_at FROM notifications n JOIN notification_reads r ON r.notification_id = n.id JOIN users u ON u.id = r.user_id
         WHERE u.email = 'owner@demosalon.test' AND n.dedupe_key LIKE 'msg:%:wamid.BROWSER'"
    )
    .fetch_optional(p)
    .await)
    .unwrap();
    assert!(read.flatten().is_some(), "opening the toast marked the notification read");
    browser.quit().await.unwrap();
}

/// The list of conversations follows the customers in place: from empty to the first
/// conversation, then a newer message on top — without reloading the page, so that what is
/// being typed into the search field stays.
#[tokio::test]
async fn the_list_follows_the_customers_in_place() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Liste").await;
    let browser = signed_in(&app.base, "owner@salonliste.test").await;
    browser.goto(&format!("{}/inbox", app.base)).await.unwrap();
    browser.wait_for("#no-conversations").await.unwrap();
    stream_open(&browser).await;
    browser.fill("#q", "Ann").await.unwrap();
    browser.execute("window.notReloaded = true; return true", vec![]).await.unwrap();

    assert_eq!(post_signed(&app, &text_body(&number, "491701111111", "Anna", &[("wamid.LIST1", "Erste Frage")])).await.status(), 200);
    browser.wait_for_text("#conversation-list", "Erste Frage").await.unwrap();
    assert_eq!(post_signed(&app, &text_body(&number, "491702222222", "Ben", &[("wamid.LIST2", "Zweite Frage")])).await.status(), 200);
    browser.wait_for_text("#conversation-list li:first-child", "Zweite Frage").await.unwrap();
    let state = browser.execute("return [window.notReloaded === true, document.getElementById('q').value, document.querySelectorAll('#conversation-list li').length]", vec![]).await.unwrap();
    assert_eq!(state, serde_json::json!([true, "Ann", 2]), "updated in place");
    // Each line says when its last message came (Meta's time, 2025-11-24 16:00 UTC), in the
    // reader's time zone, also after the update.
    let at = browser.execute("return [...document.querySelectorAll('#conversation-list .at time')].map(t => t.textContent)", vec![]).await.unwrap();
    assert_eq!(at, serde_json::json!(["24.11.2025, 17:00", "24.11.2025, 17:00"]));
    // The agent reads Ben's conversation: the owner's list no longer marks it unread.
    let ben = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE wamid = 'wamid.LIST2'").fetch_one(p).await).unwrap();
    let script = format!("return document.querySelector('#conversation-list li[data-conversation=\"{ben}\"]').classList.contains('unread')");
    assert_eq!(browser.execute(&script, vec![]).await.unwrap(), serde_json::json!(true), "unread before");
    let (agent, _) = app.signed_in("agent@salonliste.test").await;
    assert_eq!(agent.get(app.url(&format!("/inbox/{ben}"))).send().await.unwrap().status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser.execute(&script, vec![]).await.unwrap() == serde_json::json!(true) {
        assert!(std::time::Instant::now() < deadline, "the list still marks Ben's conversation unread");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(browser.execute("return window.notReloaded === true", vec![]).await.unwrap(), serde_json::json!(true));
    // The owner reads Anna's conversation in another tab; back in this one, the header's count
    // is the server's again.
    browser.wait_for_text("#unread-count", "2").await.unwrap();
    let anna = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE wamid = 'wamid.LIST1'").fetch_one(p).await).unwrap();
    let (other_tab, _) = app.signed_in("owner@salonliste.test").await;
    assert_eq!(other_tab.get(app.url(&format!("/inbox/{anna}"))).send().await.unwrap().status(), 200);
    browser.execute("document.dispatchEvent(new Event('visibilitychange')); return true", vec![]).await.unwrap();
    browser.wait_for_text("#unread-count", "1").await.unwrap();
    browser.quit().await.unwrap();
}

/// Where a page of a conversation is on the screen: whether it is scrolled to its end, and
/// the message the address names (its id, and whether it lies within the window).
async fn scrolled(browser: &Browser) -> serde_json::Value {
    browser
        .execute(
            "const page = document.documentElement; const t = document.querySelector(':target');
             const r = t && t.getBoundingClientRect();
             return {atEnd: window.innerHeight + window.scrollY >= page.scrollHeight - 2, scrolls: page.scrollHeight > window.innerHeight * 2,
                     target: t && t.id, inView: !!r && r.top >= 0 && r.bottom <= window.innerHeight};",
            vec![],
        )
        .await
        .unwrap()
}

/// A long conversation opens at its newest message (and the composer, or why there is none), as
/// a chat is read; a notification's link to a message a page back opens that page at the
/// message, marked.
#[tokio::test]
async fn a_conversation_opens_at_its_end_and_a_link_at_its_message() {
    let app = spawn_app().await;
    let (_, number) = tenant_with_number(&app, "Salon Lang").await;
    let messages: Vec<(String, String)> = (0..230).map(|i| (format!("wamid.SCROLL{i}"), format!("Nachricht {i:03}"))).collect();
    let pairs: Vec<(&str, &str)> = messages.iter().map(|(w, t)| (w.as_str(), t.as_str())).collect();
    assert_eq!(post_signed(&app, &text_body(&number, "491705550000", "Lena", &pairs)).await.status(), 200);
    crate::helpers::eventually("applied", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages").fetch_one(p).await).unwrap() == 230
    })
    .await;
    let last = crate::ingest::message_id(&app, "wamid.SCROLL229").await;
    let conversation = with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT conversation_id FROM messages WHERE id = $1").bind(last).fetch_one(p).await).unwrap();
    let browser = signed_in(&app.base, "owner@salonlang.test").await;

    browser.goto(&format!("{}/inbox/{conversation}", app.base)).await.unwrap();
    browser.wait_for(&format!("#msg-{last}")).await.unwrap();
    let at = scrolled(&browser).await;
    assert_eq!((at["scrolls"].as_bool(), at["atEnd"].as_bool()), (Some(true), Some(true)), "opened at its end: {at}");
    // Meta's time of the messages (2025-11-24 16:00 UTC) in the reader's time zone (the tests'
    // browsers are in Berlin) and words, with the UTC time as its title.
    let time = browser.execute(&format!("const t = document.querySelector('#msg-{last} .time time'); return [t.textContent, t.title]"), vec![]).await.unwrap();
    assert_eq!(time, serde_json::json!(["24.11.2025, 17:00", "2025-11-24 16:00 UTC"]));

    let first = crate::ingest::message_id(&app, "wamid.SCROLL0").await;
    browser.goto(&format!("{}/inbox/by-wamid/wamid.SCROLL0?at=1764000000", app.base)).await.unwrap();
    browser.wait_for(&format!("#msg-{first}")).await.unwrap();
    let url = browser.current_url().await.unwrap();
    assert!(url.contains("?before=") && url.ends_with(&format!("#msg-{first}")), "{url}");
    let at = scrolled(&browser).await;
    assert_eq!(at["target"], format!("msg-{first}"), "{at}");
    assert_eq!(at["inView"], true, "the message is on the screen: {at}");
    let mark = browser.execute(&format!("return getComputedStyle(document.getElementById('msg-{first}')).boxShadow"), vec![]).await.unwrap();
    assert_ne!(mark, "none", "the message is marked");

    let recent = crate::ingest::message_id(&app, "wamid.SCROLL150").await;
    browser.goto(&format!("{}/inbox/by-wamid/wamid.SCROLL150?at=1764000000", app.base)).await.unwrap();
    browser.wait_for(&format!("#msg-{recent}")).await.unwrap();
    let url = browser.current_url().await.unwrap();
    assert!(!url.contains("?before=") && url.ends_with(&format!("#msg-{recent}")), "the newest page: {url}");
    let at = scrolled(&browser).await;
    assert_eq!((at["target"].as_str(), at["inView"].as_bool(), at["atEnd"].as_bool()), (Some(format!("msg-{recent}").as_str()), Some(true), Some(false)), "{at}");

    // A reader at the end stays there as the customer's messages arrive live.
    browser.goto(&format!("{}/inbox/{conversation}", app.base)).await.unwrap();
    browser.wait_for(&format!("#msg-{last}")).await.unwrap();
    stream_open(&browser).await;
    // Several lines long (the page holds the newest 200: one shorter message leaves it).
    let long = format!("Noch eine Frage: {}", "wie lange dauert ein Termin bei Ihnen? ".repeat(40));
    let more = text_body(&number, "491705550000", "Lena", &[("wamid.SCROLL-NEW", long.as_str())]);
    assert_eq!(post_signed(&app, &more).await.status(), 200);
    browser.wait_for_text("#messages", "Noch eine Frage").await.unwrap();
    let at = scrolled(&browser).await;
    assert_eq!(at["atEnd"], true, "still at the end: {at}");
    // The refreshed messages' times are the reader's too.
    let times = browser.execute("return [...document.querySelectorAll('#messages .time time')].map(t => t.textContent)", vec![]).await.unwrap();
    assert!(times.as_array().unwrap().iter().all(|t| t == "24.11.2025, 17:00"), "{times}");
    browser.quit().await.unwrap();
}

/// The server restarts while a conversation is open. On SQLite a commit's live events are
/// written after it, so a crash in between loses them: here a message is stored while the
/// server is down, as if the process had applied it and died before its event — the page,
/// whose stream the ended process began, is told to resynchronise when it reconnects and
/// shows the message without anything else happening. On both backends the page's stream
/// then goes on with the new process: the next message appears live.
#[tokio::test]
async fn a_conversation_open_across_a_restart_catches_up_and_stays_live() {
    let (url, _dir) = fresh_database_url().await;
    let port = wabridge_testkit::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let before = spawn_app_on_with(&url, &[("WABRIDGE_LISTEN", &listen)]).await;
    let (_, number) = tenant_with_number(&before, "Salon Neustart").await;
    assert_eq!(post_signed(&before, &text_body(&number, "491709876543", "Nora", &[("wamid.FIRST", "Erste Nachricht")])).await.status(), 200);
    let conversation = {
        let db = before.db.clone();
        let query = || async { with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations").fetch_optional(p).await).unwrap() };
        crate::helpers::eventually("the conversation exists", || async { query().await.is_some() }).await;
        query().await.unwrap()
    };
    let browser = signed_in(&before.base, "owner@salonneustart.test").await;
    browser.goto(&before.url(&format!("/inbox/{conversation}"))).await.unwrap();
    browser.wait_for_text("#messages", "Erste Nachricht").await.unwrap();
    stream_open(&browser).await;

    drop(before);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(&listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "the first server never let its port go");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sqlite = backend() == "sqlite";
    if sqlite {
        let db = wabridge::store::Db::open(&url).await.unwrap();
        with_pool!(db.write(), |p| sqlx::query(
            "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, status, status_rank, meta_at, created_at)
             SELECT tenant_id, conversation_id, direction, 'wamid.LOST', kind, 'Verpasst?', '{\"text\":{\"body\":\"Verpasst?\"}}', status, status_rank, meta_at + 1000, created_at
             FROM messages WHERE wamid = 'wamid.FIRST'"
        )
        .execute(p)
        .await
        .map(drop))
        .unwrap();
    }
    let after = spawn_app_on_with(&url, &[("WABRIDGE_LISTEN", &listen)]).await;
    if sqlite {
        browser.wait_for_text("#messages", "Verpasst?").await.unwrap();
    }
    assert_eq!(post_signed(&after, &text_body(&number, "491709876543", "Nora", &[("wamid.SECOND", "Zweite Nachricht")])).await.status(), 200);
    let text = browser.wait_for_text("#messages", "Zweite Nachricht").await.unwrap();
    assert!(text.contains("Erste Nachricht"), "{text}");
    browser.quit().await.unwrap();
}
