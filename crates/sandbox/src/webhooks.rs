//! The webhook sender, as Meta sends: the GET verification handshake against the callback URL
//! first, then POSTs of batched changes signed with `X-Hub-Signature-256` over the exact bytes,
//! retried on failure along a (compressed) schedule and dropped when it is exhausted; on request
//! bodies are duplicated or sent out of order.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

use crate::Shared;
use crate::control::api::DeliveryAttempt;
use crate::world::{Batch, Update, as_ms};

/// Builds one webhook body from changes, grouping them by `entry.id` in order.
pub fn build_body(updates: &[Update]) -> String {
    let mut entries: Vec<(String, Option<i64>, Vec<Value>)> = Vec::new();
    for u in updates {
        let change = json!({"value": u.value, "field": u.field});
        match entries.iter_mut().find(|(id, time, _)| id == &u.entry_id && time.is_some() == u.time.is_some()) {
            Some((_, _, changes)) => changes.push(change),
            None => entries.push((u.entry_id.clone(), u.time, vec![change])),
        }
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(id, time, changes)| {
            let mut entry = json!({"id": id});
            if let Some(time) = time {
                entry["time"] = json!(time);
            }
            entry["changes"] = Value::Array(changes);
            entry
        })
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": entries});
    escape_non_ascii(&body.to_string())
}

/// Meta's bodies escape non-ASCII characters as `\uXXXX`; receivers must sign the raw bytes.
pub fn escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `sha256=<hex HMAC-SHA256(app_secret, body)>`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends webhooks until stopped.
pub async fn sender(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = tokio::select! {
            wait = step(&shared) => wait,
            _ = stop.wait_for(|s| *s) => return,
        };
        tokio::select! {
            () = shared.webhook_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn backoff(shared: &Shared, attempt: u32) -> Option<i64> {
    let schedule = &shared.config.webhooks.retry_schedule;
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    schedule.get(index).map(|d| as_ms(*d))
}

/// One round: handshake if needed, then send what is due; returns how long to sleep.
async fn step(shared: &Shared) -> Duration {
    let (url, verified, handshake_next) = {
        let w = shared.world();
        let q = &w.webhooks;
        (q.url.clone(), q.verified_url.is_some() && q.verified_url == q.url, q.handshake_next_ms)
    };
    let Some(url) = url else { return Duration::from_secs(3600) };
    if !verified {
        let now = shared.world().now_ms();
        if handshake_next > now {
            return Duration::from_millis(u64::try_from(handshake_next - now).unwrap_or(1));
        }
        if !handshake(shared, &url).await {
            return Duration::from_millis(1);
        }
    }

    let window = shared.config.webhooks.batch_window;
    if !window.is_zero() && !shared.world().webhooks.pending.is_empty() {
        tokio::time::sleep(window).await;
    }
    let jobs = take_jobs(shared);
    for job in jobs {
        deliver(shared, &url, job).await;
    }
    let w = shared.world();
    let now = w.now_ms();
    if !w.webhooks.pending.is_empty() {
        return Duration::ZERO;
    }
    match w.webhooks.retrying.iter().map(|b| b.next_ms).min() {
        Some(next) => Duration::from_millis(u64::try_from((next - now).max(0)).unwrap_or(0)),
        None => Duration::from_secs(3600),
    }
}

async fn handshake(shared: &Shared, url: &str) -> bool {
    let challenge = shared.world().ids.digits(10);
    let result = shared
        .http
        .get(url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", challenge.as_str()),
            ("hub.verify_token", shared.config.verify_token.as_str()),
        ])
        .send()
        .await;
    let (status, error, ok) = match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let ok = status == 200 && body.trim() == challenge;
            let error = (!ok).then(|| format!("handshake answered {status} with {:?}", truncate(&body, 200)));
            (Some(status), error, ok)
        }
        Err(err) => (None, Some(err.to_string()), false),
    };
    let mut w = shared.world();
    let at_ms = w.now_ms();
    let attempt = w.webhooks.handshake_failures + 1;
    push_log(&mut w.webhooks.log, DeliveryAttempt {
        kind: "handshake".into(),
        batch_id: None,
        attempt,
        url: url.to_string(),
        status,
        error,
        at_ms,
        body: None,
        signature: None,
        duplicate: false,
    });
    if ok {
        w.webhooks.verified_url = Some(url.to_string());
        w.webhooks.handshake_failures = 0;
    } else {
        w.webhooks.handshake_failures += 1;
        let failures = w.webhooks.handshake_failures;
        let schedule = &shared.config.webhooks.retry_schedule;
        let wait = schedule
            .get(usize::try_from(failures.saturating_sub(1)).unwrap_or(0).min(schedule.len().saturating_sub(1)))
            .map_or(1000, |d| as_ms(*d));
        w.webhooks.handshake_next_ms = at_ms + wait;
    }
    ok
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn push_log(log: &mut std::collections::VecDeque<DeliveryAttempt>, attempt: DeliveryAttempt) {
    log.push_back(attempt);
    while log.len() > 2000 {
        log.pop_front();
    }
}

/// Moves due retries and pending updates (as new batches) into the jobs of this round.
fn take_jobs(shared: &Shared) -> Vec<Batch> {
    let mut w = shared.world();
    let now = w.now_ms();
    let mut jobs = Vec::new();
    let (due, later): (Vec<Batch>, Vec<Batch>) = std::mem::take(&mut w.webhooks.retrying).into_iter().partition(|b| b.next_ms <= now);
    w.webhooks.retrying = later;
    jobs.extend(due);
    let max = shared.config.webhooks.max_batch.max(1);
    let reorder = w.webhooks.reorder;
    let pending: Vec<Update> = w.webhooks.pending.drain(..).collect();
    let mut bodies: Vec<String> = if reorder {
        // One body per change, sent newest first: the receiver sees them out of order.
        pending.iter().rev().map(|u| build_body(std::slice::from_ref(u))).collect()
    } else {
        pending.chunks(max).map(build_body).collect()
    };
    for body in bodies.drain(..) {
        let id = w.webhooks.next_batch_id;
        w.webhooks.next_batch_id += 1;
        jobs.push(Batch { id, body, attempts: 0, next_ms: now, duplicate: false });
    }
    w.webhooks.in_flight += jobs.len();
    jobs
}

async fn deliver(shared: &Shared, url: &str, mut job: Batch) {
    let duplicate_wanted = shared.world().webhooks.duplicate;
    let ok = post(shared, url, &job, false).await;
    if ok && duplicate_wanted {
        post(shared, url, &job, true).await;
    }
    let mut w = shared.world();
    w.webhooks.in_flight = w.webhooks.in_flight.saturating_sub(1);
    if !ok {
        job.attempts += 1;
        match backoff(shared, job.attempts) {
            Some(wait) => {
                job.next_ms = w.now_ms() + wait;
                w.webhooks.retrying.push(job);
            }
            None => {
                let at_ms = w.now_ms();
                push_log(&mut w.webhooks.log, DeliveryAttempt {
                    kind: "dropped".into(),
                    batch_id: Some(job.id),
                    attempt: job.attempts,
                    url: url.to_string(),
                    status: None,
                    error: Some("retry schedule exhausted; Meta drops undelivered notifications too".into()),
                    at_ms,
                    body: Some(job.body),
                    signature: None,
                    duplicate: false,
                });
            }
        }
    }
    drop(w);
    shared.save_wake.notify_one();
}

async fn post(shared: &Shared, url: &str, job: &Batch, duplicate: bool) -> bool {
    let signature = signature(&shared.config.app_secret, job.body.as_bytes());
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &signature)
        .header("user-agent", "facebookexternalua")
        .body(job.body.clone())
        .send()
        .await;
    let (status, error, ok) = match result {
        Ok(response) => {
            let status = response.status();
            (Some(status.as_u16()), (!status.is_success()).then(|| format!("answered {status}")), status.is_success())
        }
        Err(err) => (None, Some(err.to_string()), false),
    };
    let mut w = shared.world();
    let at_ms = w.now_ms();
    push_log(&mut w.webhooks.log, DeliveryAttempt {
        kind: "post".into(),
        batch_id: Some(job.id),
        attempt: job.attempts + 1,
        url: url.to_string(),
        status,
        error,
        at_ms,
        body: Some(job.body.clone()),
        signature: Some(signature),
        duplicate,
    });
    ok
}

/// Whether nothing is waiting to be sent.
pub fn idle(shared: &Shared) -> bool {
    let w = shared.world();
    let now = w.now_ms();
    let q = &w.webhooks;
    let due_events = w.schedule.iter().any(|s| s.due_ms <= now);
    q.pending.is_empty() && q.retrying.is_empty() && q.in_flight == 0 && !due_events
        || (q.url.is_none() && !due_events)
}
