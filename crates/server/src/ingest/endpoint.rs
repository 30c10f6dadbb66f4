//! `GET|POST /webhooks/whatsapp`: Meta's side of wabridge.
//!
//! Mounted outside every middleware (`web::router`): Meta has no session, no CSRF token and no
//! use for a page's security headers, and each layer of middleware cost every webhook a boxed
//! future and a cloned service (about a tenth of the runtime's work on this road). The route
//! records its own request metrics and sets the headers a plain-text answer needs.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wabridge_cloud_api::{SIGNATURE_HEADER, VerificationQuery, verify_signature};

use crate::web::{AppState, BODY_LIMIT};

/// The route, as the request metrics name it.
const PATH: &str = "/webhooks/whatsapp";

/// Routes of this feature, with their own body limit (mounted outside the router's layers).
pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(get_verification).post(post_webhook)).layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Records the request in the metrics and adds the headers of a plain-text answer.
fn answered(app: &AppState, method: &str, started: Instant, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    app.metrics.observe(method, PATH, response.status().as_u16(), started.elapsed().as_secs_f64());
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn get_verification(State(app): State<AppState>, query: Result<Query<VerificationQuery>, QueryRejection>) -> Response {
    let started = Instant::now();
    let response = match query {
        Ok(Query(q)) => verification(&app, &q),
        Err(refused) => refused.into_response(),
    };
    answered(&app, "GET", started, response)
}

fn verification(app: &AppState, q: &VerificationQuery) -> Response {
    match q.challenge_response(&app.settings.meta.verify_token) {
        Some(challenge) => (StatusCode::OK, challenge.to_owned()).into_response(),
        None => {
            app.metrics.add("wabridge_webhook_verifications_refused_total", 1);
            (StatusCode::FORBIDDEN, "verification refused").into_response()
        }
    }
}

async fn post_webhook(State(app): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let response = match body {
        Ok(body) => keep(&app, &headers, body).await,
        // Over the body limit, or cut off.
        Err(refused) => refused.into_response(),
    };
    answered(&app, "POST", started, response)
}

async fn keep(app: &AppState, headers: &HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if verify_signature(&app.settings.meta.app_secret, signature, &body).is_err() {
        app.metrics.add("wabridge_webhook_signature_rejected_total", 1);
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    // A correctly signed body is kept even when it cannot be understood: refusing it would
    // make Meta retry it for a week.
    match app.journal.append(body).await {
        Ok(()) => {
            app.metrics.add("wabridge_webhook_bodies_accepted_total", 1);
            (StatusCode::OK, "ok").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook not journaled; Meta will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}
