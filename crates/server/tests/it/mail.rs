//! E-mails: sent to an SMTP relay when one is configured, and readable on /mailbox by their
//! recipient only.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wabridge::accounts::Role;
use wabridge::with_pool;

use crate::helpers::{eventually, spawn_app_with};

/// A minimal SMTP relay that keeps every message it is given.
async fn fake_relay() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let mut conn = BufReader::new(stream);
                conn.get_mut().write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                let mut message = String::new();
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut message));
                            conn.get_mut().write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            message.push_str(&line);
                        }
                        continue;
                    }
                    let reply: &[u8] = match line.get(..4).unwrap_or_default() {
                        "EHLO" => b"250-fake\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = conn.get_mut().write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    conn.get_mut().write_all(reply).await.unwrap();
                }
            });
        }
    });
    (format!("smtp://{addr}"), received)
}

#[tokio::test]
async fn queued_mails_go_to_the_relay_and_show_in_the_recipients_mailbox() {
    let (relay, received) = fake_relay().await;
    let app = spawn_app_with(&[("WABRIDGE_SMTP_URL", relay.as_str()), ("WABRIDGE_MAIL_FROM", "noreply@doards.test")]).await;
    let t = app.tenant("Salon").await;
    app.user(Some(t), "owner@salon.test", Role::Owner).await;
    app.user(Some(t), "agent@salon.test", Role::Agent).await;
    with_pool!(app.db.write(), |p| sqlx::query(
        "INSERT INTO email_outbox (tenant_id, to_address, subject, body, dedupe_key, created_at) VALUES ($1, 'owner@salon.test', 'WhatsApp: Nummer verifiziert', $2, 'k1', 1)"
    )
    .bind(t)
    .bind("Ihre Nummer ist verifiziert.\n.Eine Zeile mit Punkt.")
    .execute(p)
    .await
    .map(drop))
    .unwrap();
    eventually("the relay got the mail", || async { !received.lock().unwrap().is_empty() }).await;
    let message = received.lock().unwrap()[0].clone();
    assert!(message.contains("To: owner@salon.test") && message.contains("From: noreply@doards.test"));
    assert!(message.contains("Subject: WhatsApp: Nummer verifiziert"));
    assert!(message.contains("\r\n..Eine Zeile mit Punkt."), "dot-stuffed: {message}");
    eventually("marked sent", || async {
        with_pool!(app.db.read(), |p| sqlx::query_scalar::<_, Option<i64>>("SELECT sent_at FROM email_outbox").fetch_one(p).await).unwrap().unwrap_or(0) > 0
    })
    .await;

    let (owner, _) = app.signed_in("owner@salon.test").await;
    let html = owner.get(app.url("/mailbox")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("WhatsApp: Nummer verifiziert") && html.contains("versendet"));
    let (agent, _) = app.signed_in("agent@salon.test").await;
    let html = agent.get(app.url("/mailbox")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"no-mail\""), "nobody reads another user's mail");
}
