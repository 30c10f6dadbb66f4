//! The one error type of the web boundary, and the one place it becomes a response.
//!
//! A handler returns [`AppError`]; its response carries the stable code as an extension, and
//! [`render_errors`] (which knows the request's language and whether it wants JSON) turns it
//! into a translated error page or a JSON body `{"error": {"code", "message"}}`.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::context::RequestContext;

/// Every error a request can end in, by stable code (also the translation key `error.<code>`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Wrong e-mail address or password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed attempts.
    #[error("rate limited")]
    RateLimited,
    /// A cross-site or token-less form post.
    #[error("csrf check failed")]
    Csrf,
    /// Not signed in where that is required (pages redirect instead).
    #[error("not signed in")]
    Unauthorized,
    /// Signed in, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// Nothing here, or not yours (the two are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// It was here and is gone for good; the code names what.
    #[error("gone: {0}")]
    Gone(&'static str),
    /// Input that does not parse or is out of range; the code names what.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The body exceeds the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// A dependency (database) is down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected; logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// The code and status an error response carries to [`render_errors`].
#[derive(Clone, Debug)]
pub struct ErrorCode(pub &'static str);

/// Every stable error code, for the test that each has a translation.
pub const CODES: &[&str] = &[
    "invalid_credentials",
    "rate_limited",
    "csrf",
    "unauthorized",
    "forbidden",
    "not_found",
    "bad_request",
    "too_long",
    "payload_too_large",
    "unsupported_language",
    "unavailable",
    "internal",
    "window_closed",
    "bad_text",
    "not_connected",
    "file_too_large",
    "media_gone",
    "media_expired",
];

impl AppError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::RateLimited => "rate_limited",
            AppError::Csrf => "csrf",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::BadRequest(code) | AppError::Gone(code) => code,
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidCredentials | AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AppError::Csrf | AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            AppError::Unavailable(e) => tracing::warn!(error = %e, "dependency unavailable"),
            other => tracing::debug!(code = other.code(), "request refused"),
        }
        let mut response = self.status().into_response();
        response.extensions_mut().insert(ErrorCode(self.code()));
        response
    }
}

/// A `Result` whose error is [`AppError`].
pub type AppResult<T> = Result<T, AppError>;

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    p: super::PageCtx,
    message: &'static str,
}

/// Whether the client wants JSON errors (the API, or an explicit `Accept`).
pub fn wants_json(headers: &header::HeaderMap, path: &str) -> bool {
    path.starts_with("/api/")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// Middleware: turns bare error responses (from [`AppError`] or axum's own rejections) into a
/// translated page, or JSON for API clients.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let ctx = request.extensions().get::<RequestContext>().cloned();
    let json = wants_json(request.headers(), request.uri().path());
    let response = next.run(request).await;
    finish(response, ctx.as_ref(), json)
}

/// Gives an error response its translated body; other responses pass unchanged.
pub fn finish(response: Response, ctx: Option<&RequestContext>, json: bool) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let explicit = response.extensions().get::<ErrorCode>().map(|c| c.0);
    // A handler that rendered its own page or JSON for an error status (a form shown again
    // with its message) keeps it.
    let rendered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if explicit.is_none() && rendered {
        return response;
    }
    // axum's extractor rejections and the body limit come with their own plain-text bodies;
    // they are replaced too, so nobody sees framework text.
    let code = explicit.unwrap_or(match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    });
    let lang = ctx.map(|c| c.lang).unwrap_or_default();
    let message = lang.t(&format!("error.{code}"));
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    if json {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        return Response::from_parts(parts, axum::body::Body::from(body.to_string()));
    }
    let page = ErrorPage { p: super::PageCtx::from_context(ctx), message };
    let html = askama::Template::render(&page).unwrap_or_else(|_| message.to_owned());
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    Response::from_parts(parts, axum::body::Body::from(html))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn every_error_code_is_translated() {
        for lang in super::super::i18n::Lang::ALL {
            for code in super::CODES {
                let key = format!("error.{code}");
                assert_ne!(lang.t(&key), key, "{key} missing in {}", lang.code());
            }
        }
    }
}
