//! The real binary is killed with SIGKILL while signed webhooks stream in, then restarted:
//! every acknowledged message is applied exactly once, and nothing is applied that was not
//! journaled.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wabridge::accounts::{Role, TenantId, store};
use wabridge::crypto::Keyring;
use wabridge::onboarding::store::{Attachment, attach};
use wabridge::store::Db;
use wabridge::with_pool;

use crate::helpers::{eventually, fresh_database_url};
use crate::ingest::{APP_SECRET, text_body};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `wabridge serve` on `port` and waits until it answers.
async fn start_server(database_url: &str, key: &str, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("WABRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("META_APP_ID", "100000000000001")
        .env("META_APP_SECRET", APP_SECRET)
        .env("META_CONFIG_ID", "200000000000001")
        .env("META_VERIFY_TOKEN", "test-verify-token")
        .env("WABRIDGE_ENCRYPTION_KEY", key)
        .env("WABRIDGE_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the wabridge binary starts");
    let c = crate::helpers::client();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if c.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
            return child;
        }
        assert!(std::time::Instant::now() < deadline, "wabridge serve did not come up on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap()
}

/// Every wamid named in the journal's bodies.
async fn journaled_wamids(db: &Db) -> HashSet<String> {
    let bodies = wabridge::ingest::journal::bodies(db).await.unwrap();
    let mut out = HashSet::new();
    for b in bodies {
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        for m in v["entry"][0]["changes"][0]["value"]["messages"].as_array().unwrap() {
            out.insert(m["id"].as_str().unwrap().to_owned());
        }
    }
    out
}

#[tokio::test]
async fn a_server_killed_mid_stream_applies_every_acknowledged_message_exactly_once_after_restart() {
    let (url, _dir) = fresh_database_url().await;
    let key = Keyring::generate_key();
    let db = Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    let now = 1_764_000_000_000;
    let tenant: TenantId = store::create_tenant(&db, "Crash Salon", now).await.unwrap();
    for email in ["owner@crash.test", "agent@crash.test", "agent2@crash.test"] {
        let role = if email.starts_with("owner") { Role::Owner } else { Role::Agent };
        store::create_user(&db, Some(tenant), email, email, "not-a-real-hash", role, now).await.unwrap();
    }
    let number = format!("PN-{}", tenant.0);
    let a = Attachment {
        waba_id: "WABA-CRASH",
        business_id: None,
        phone_number_id: &number,
        display_phone_number: None,
        token_ciphertext: None,
        status: "connected",
    };
    attach(&db, tenant, &a, now).await.unwrap();

    let port = free_port();
    let mut server = start_server(&url, &key, port).await;

    // Eight connections stream distinct bodies (one to three messages each) until the server
    // dies under them.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut streams = Vec::new();
    for conn in 0..8 {
        let (acked, sent, number) = (acked.clone(), sent.clone(), number.clone());
        let endpoint = format!("http://127.0.0.1:{port}/webhooks/whatsapp");
        streams.push(tokio::spawn(async move {
            let c = crate::helpers::client();
            let mut failures = 0;
            for i in 0.. {
                let ids: Vec<String> = (0..(1 + (i % 3))).map(|k| format!("wamid.crash.{conn}.{i}.{k}")).collect();
                let msgs: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "Hallo")).collect();
                let body = text_body(&number, "491700000000", "Kunde", &msgs);
                sent.lock().unwrap().extend(ids.iter().cloned());
                let signature = wabridge_cloud_api::sign(&secrecy::SecretString::from(APP_SECRET), &body);
                let resp = c
                    .post(&endpoint)
                    .header("X-Hub-Signature-256", signature)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ids),
                    _ => {
                        failures += 1;
                        if failures >= 3 {
                            return;
                        }
                    }
                }
            }
        }));
    }
    // Kill while bodies are in flight on every connection.
    eventually("a few hundred messages acknowledged", || async { acked.lock().unwrap().len() >= 600 }).await;
    server.kill().unwrap();
    server.wait().unwrap();
    for s in streams {
        s.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let sent: HashSet<String> = sent.lock().unwrap().iter().cloned().collect();
    assert!(sent.len() > acked.len(), "the kill interrupted requests in flight");

    let port = free_port();
    let mut server = start_server(&url, &key, port).await;
    eventually("the journal drained after the restart", || async {
        wabridge::ingest::journal::pending_count(&db).await.unwrap() == 0
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let journaled = journaled_wamids(&db).await;
    assert!(acked.is_subset(&journaled), "every acknowledged message was journaled");
    let rows = with_pool!(db.read(), |p| sqlx::query_as::<_, (String, i64)>(
        "SELECT dedupe_key, COUNT(*) FROM notifications GROUP BY dedupe_key"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    let mut applied = HashSet::new();
    for (key, users) in rows {
        let wamid = wabridge::notifications::wamid_of_key(&key).unwrap().to_owned();
        assert_eq!(users, 1, "{wamid}: one notification for the tenant's users, never twice");
        assert!(journaled.contains(&wamid), "{wamid} applied although never journaled");
        assert!(sent.contains(&wamid));
        applied.insert(wamid);
    }
    for wamid in &acked {
        assert!(applied.contains(wamid), "acknowledged {wamid} was not applied");
    }
    assert_eq!(applied, journaled, "everything journaled is applied, nothing else");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM webhook_unhandled").await, 0);
    db.close().await;
}
