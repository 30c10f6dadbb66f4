//! `GET|POST /webhooks/whatsapp`: Meta's side of wabridge.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wabridge_cloud_api::{SIGNATURE_HEADER, VerificationQuery, verify_signature};

use crate::web::AppState;

/// Routes of this feature (mounted outside the session and CSRF layers: Meta has neither).
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/whatsapp", get(get_verification).post(post_webhook))
}

async fn get_verification(State(app): State<AppState>, Query(q): Query<VerificationQuery>) -> Response {
    match q.challenge_response(&app.settings.meta.verify_token) {
        Some(challenge) => (StatusCode::OK, challenge.to_owned()).into_response(),
        None => {
            app.metrics.add("wabridge_webhook_verifications_refused_total", 1);
            (StatusCode::FORBIDDEN, "verification refused").into_response()
        }
    }
}

async fn post_webhook(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
