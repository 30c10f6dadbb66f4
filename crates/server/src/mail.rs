//! E-mail: what features queue in `email_outbox` is sent over SMTP when `WABRIDGE_SMTP_URL`
//! names a relay, and every user can read their own mails on `/mailbox` — in the demo, which
//! has no relay, that page is where they land, so nothing is silently dropped.
//!
//! The client speaks plain SMTP to a relay (the machine's MTA or a provider's relay on a
//! private network); TLS to the relay is not built.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::{Db, Engine};
use crate::web::context::TenantMember;
use crate::web::error::AppResult;
use crate::web::{AppState, PageCtx, render};
use crate::with_pool;

/// A queued mail.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Mail {
    /// Id.
    pub id: i64,
    /// Recipient.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Text body.
    pub body: String,
    /// Queued, Unix ms.
    pub created_at: i64,
    /// Sent (negative while a sender holds it).
    pub sent_at: Option<i64>,
}

/// Where and as whom to send.
#[derive(Clone, Debug)]
pub struct SmtpRelay {
    /// `host:port`.
    pub address: String,
    /// Envelope and header sender.
    pub from: String,
}

impl SmtpRelay {
    /// Parses `smtp://host[:port]`.
    pub fn parse(url: &str, from: &str) -> Option<SmtpRelay> {
        let rest = url.strip_prefix("smtp://")?.trim_end_matches('/');
        if rest.is_empty() {
            return None;
        }
        let address = if rest.contains(':') { rest.to_owned() } else { format!("{rest}:25") };
        Some(SmtpRelay { address, from: from.to_owned() })
    }
}

/// Sends queued mails until shutdown.
pub async fn run(db: Db, clock: Clock, relay: SmtpRelay, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = send_due(&db, &clock, &relay).await {
            tracing::warn!(error = %e, "sending e-mail failed; will retry");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends what is queued; returns how many went out.
pub async fn send_due(db: &Db, clock: &Clock, relay: &SmtpRelay) -> anyhow::Result<usize> {
    let now = clock.now_ms();
    // A claim marks the row with a negative time; one left by a crashed sender is taken again
    // after five minutes (a mail may then go twice, never not at all).
    let sql = match db.engine() {
        Engine::Sqlite => {
            "UPDATE email_outbox SET sent_at = -$1 WHERE id IN (SELECT id FROM email_outbox WHERE sent_at IS NULL OR (sent_at < 0 AND -sent_at < $2) ORDER BY id LIMIT 20)
             RETURNING id, to_address, subject, body, created_at, sent_at"
        }
        Engine::Postgres => {
            "UPDATE email_outbox SET sent_at = -$1 WHERE id IN (SELECT id FROM email_outbox WHERE sent_at IS NULL OR (sent_at < 0 AND -sent_at < $2) ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)
             RETURNING id, to_address, subject, body, created_at, sent_at"
        }
    };
    let claimed = with_pool!(db.write(), |p| sqlx::query_as::<_, Mail>(sql).bind(now).bind(now - 300_000).fetch_all(p).await)?;
    let mut sent = 0;
    for mail in claimed {
        let outcome = send(relay, &mail).await;
        let sent_at = if outcome.is_ok() { Some(clock.now_ms()) } else { None };
        with_pool!(db.write(), |p| sqlx::query("UPDATE email_outbox SET sent_at = $1 WHERE id = $2").bind(sent_at).bind(mail.id).execute(p).await.map(drop))?;
        match outcome {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!(mail = mail.id, error = %e, "e-mail not accepted by the relay"),
        }
    }
    Ok(sent)
}

async fn expect(reader: &mut BufReader<TcpStream>, code: &str) -> anyhow::Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            anyhow::bail!("relay closed the connection");
        }
        if !line.starts_with(code) {
            anyhow::bail!("relay answered {}", line.trim_end());
        }
        // Multi-line replies continue with "250-".
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

fn header_safe(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// One mail over plain SMTP.
async fn send(relay: &SmtpRelay, mail: &Mail) -> anyhow::Result<()> {
    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&relay.address)).await??;
    let mut reader = BufReader::new(stream);
    expect(&mut reader, "220").await?;
    let to = header_safe(&mail.to_address);
    let from = header_safe(&relay.from);
    for (command, code) in [
        ("EHLO wabridge".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        reader.get_mut().write_all(format!("{command}\r\n").as_bytes()).await?;
        expect(&mut reader, code).await?;
    }
    // Lines starting with a dot are doubled (RFC 5321 transparency).
    let body: String = mail.body.replace("\r\n", "\n").lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    let message = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}.\r\n",
        header_safe(&mail.subject)
    );
    reader.get_mut().write_all(message.as_bytes()).await?;
    expect(&mut reader, "250").await?;
    reader.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new().route("/mailbox", get(get_mailbox))
}

#[derive(askama::Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    p: PageCtx,
    mails: Vec<(Mail, crate::web::when::When)>,
    relay: bool,
}

async fn get_mailbox(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    // Only the user's own mails, of their own tenant.
    let mails = with_pool!(app.db.read(), |p| sqlx::query_as::<_, Mail>(
        "SELECT id, to_address, subject, body, created_at, sent_at FROM email_outbox WHERE tenant_id = $1 AND to_address = $2 ORDER BY id DESC LIMIT 100"
    )
    .bind(member.tenant)
    .bind(&member.user.email)
    .fetch_all(p)
    .await)?;
    let mails = mails.into_iter().map(|m| { let when = crate::web::when::When(m.created_at); (m, when) }).collect();
    render(&MailboxPage { mails, relay: app.settings.smtp_url.is_some(), p: member.ctx.into() })
}
