//! Test support: a sandbox with a webhook receiver, and Graph helpers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use wabridge_sandbox::{ControlClient, Sandbox, SandboxConfig, TenantFixture, TenantRequest};

pub const SECRET: &str = "sandbox-app-secret";

/// One webhook POST the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

/// A stand-in for the app's `/webhooks/whatsapp`.
#[derive(Default)]
pub struct Receiver {
    pub posts: Mutex<Vec<Received>>,
    pub handshakes: Mutex<Vec<std::collections::HashMap<String, String>>>,
    /// Answer this many POSTs with 500 before accepting.
    pub fail_posts: AtomicUsize,
    pub verify_token: Mutex<String>,
}

async fn hook_get(State(r): State<Arc<Receiver>>, Query(q): Query<std::collections::HashMap<String, String>>) -> (StatusCode, String) {
    r.handshakes.lock().unwrap().push(q.clone());
    let token = r.verify_token.lock().unwrap().clone();
    if q.get("hub.mode").map(String::as_str) == Some("subscribe") && q.get("hub.verify_token") == Some(&token) {
        (StatusCode::OK, q.get("hub.challenge").cloned().unwrap_or_default())
    } else {
        (StatusCode::FORBIDDEN, "bad verify token".into())
    }
}

async fn hook_post(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let failing = r.fail_posts.load(Ordering::SeqCst);
    r.posts.lock().unwrap().push(Received {
        signature: headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).map(str::to_string),
        body: body.to_vec(),
    });
    if failing > 0 {
        r.fail_posts.fetch_sub(1, Ordering::SeqCst);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Starts a receiver on a free port; returns it and its URL.
pub async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver { verify_token: Mutex::new("sandbox-verify-token".into()), ..Receiver::default() });
    let app = Router::new().route("/webhooks/whatsapp", get(hook_get).post(hook_post)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (r, url)
}

/// A running sandbox with a receiver and clients.
pub struct TestSandbox {
    pub sandbox: Sandbox,
    pub control: ControlClient,
    pub http: reqwest::Client,
    pub graph: String,
    pub hook: Arc<Receiver>,
    pub hook_url: String,
}

pub async fn spawn() -> TestSandbox {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut SandboxConfig)) -> TestSandbox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (hook, url) = receiver().await;
    let mut config = SandboxConfig::for_tests(Some(url.clone()));
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let control = sandbox.control();
    let graph = format!("{}/v26.0", sandbox.base_url());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    TestSandbox { sandbox, control, http, graph, hook, hook_url: url }
}

impl TestSandbox {
    pub async fn tenant(&self) -> TenantFixture {
        self.control
            .create_tenant(&TenantRequest { registered_with_pin: Some("123456".into()), ..TenantRequest::default() })
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}/{}", self.graph, path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}/{}", self.graph, path)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.http.delete(format!("{}/{}", self.graph, path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send_text(&self, t: &TenantFixture, to: &str, body: &str) -> (u16, Value) {
        self.post(
            &format!("{}/messages", t.phone_number_id),
            &t.access_token,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text", "text": {"body": body}}),
        )
        .await
    }

    /// Waits for queued webhooks to be delivered and returns every change received so far.
    pub async fn changes(&self) -> Vec<(String, Value)> {
        let flushed = self.control.flush(Duration::from_secs(10)).await.unwrap();
        assert!(flushed.idle, "webhooks not delivered: {flushed:?}");
        let posts = self.hook.posts.lock().unwrap().clone();
        let mut out = Vec::new();
        for p in posts {
            let v = p.json();
            for entry in v["entry"].as_array().cloned().unwrap_or_default() {
                for change in entry["changes"].as_array().cloned().unwrap_or_default() {
                    out.push((change["field"].as_str().unwrap_or("").to_string(), change["value"].clone()));
                }
            }
        }
        out
    }

    /// Statuses received for a message.
    pub async fn statuses_of(&self, wamid: &str) -> Vec<Value> {
        self.changes()
            .await
            .into_iter()
            .filter(|(f, _)| f == "messages")
            .flat_map(|(_, v)| v["statuses"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["id"] == wamid)
            .collect()
    }
}

pub fn error_code(body: &Value) -> i64 {
    body["error"]["code"].as_i64().unwrap_or(-1)
}
