//! Shared test helpers: the conformance corpus and a recording mock Graph server.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use wabridge_cloud_api::{GraphClient, GraphConfig, WebhookBody, parse_webhook};

/// The conformance corpus copied into the repository.
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance"
    ))
}

/// All `*.json` files under `dir`, sorted, recursively.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {d:?}: {e}")) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Reads a conformance file by its path relative to the corpus root.
pub fn read(rel: &str) -> Vec<u8> {
    let path = conformance_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
}

/// Parses a conformance webhook body.
pub fn webhook(rel: &str) -> WebhookBody {
    parse_webhook(&read(&format!("webhooks/{rel}"))).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A graph-response file as JSON.
pub fn graph_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(&format!("graph-responses/{rel}"))).unwrap()
}

/// A request the mock server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The decoded query pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

#[derive(Default)]
struct MockState {
    requests: Vec<Recorded>,
    replies: VecDeque<Reply>,
}

/// A local HTTP server standing in for the Graph API.
#[derive(Clone)]
pub struct MockGraph {
    pub base_url: String,
    state: Arc<Mutex<MockState>>,
}

async fn record(State(state): State<Arc<Mutex<MockState>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let reply = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body,
        });
        s.replies.pop_front().unwrap_or(Reply {
            status: 200,
            body: r#"{"success":true}"#.into(),
            delay: Duration::ZERO,
        })
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body,
    )
        .into_response()
}

impl MockGraph {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MockState::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// Queues an answer.
    pub fn reply(&self, status: u16, body: impl Into<String>) -> &Self {
        self.reply_after(status, body, Duration::ZERO)
    }

    pub fn reply_json(&self, status: u16, body: &serde_json::Value) -> &Self {
        self.reply(status, body.to_string())
    }

    pub fn reply_after(&self, status: u16, body: impl Into<String>, delay: Duration) -> &Self {
        self.state.lock().unwrap().replies.push_back(Reply {
            status,
            body: body.into(),
            delay,
        });
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The only request received so far.
    pub fn single(&self) -> Recorded {
        let r = self.requests();
        assert_eq!(r.len(), 1, "expected exactly one request, got {r:#?}");
        r.into_iter().next().unwrap()
    }

    pub fn config(&self) -> GraphConfig {
        let mut c = GraphConfig::new(self.base_url.clone(), "v26.0");
        c.timeout = Duration::from_millis(800);
        c.connect_timeout = Duration::from_millis(500);
        c.media_timeout = Duration::from_millis(800);
        c
    }

    pub fn client(&self) -> GraphClient {
        GraphClient::new(self.config()).unwrap()
    }
}
