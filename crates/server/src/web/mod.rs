//! The web layer: shared state, the router with its middleware, page context, static files.

pub mod context;
pub mod error;
pub mod i18n;
pub mod metrics;
pub mod ranges;
pub mod when;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::accounts::{Role, SessionUser};
use crate::clock::Clock;
use crate::config::Settings;
use crate::store::Db;
use context::RequestContext;
use i18n::Lang;

/// Everything a request handler may need; cloning it (axum does, for every extractor and
/// middleware of every request) is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares the parts.
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppParts {
    /// The database.
    pub db: Db,
    /// The configuration.
    pub settings: Arc<Settings>,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The clock.
    pub clock: Clock,
    /// Product name, shared by every page.
    pub product: Arc<str>,
    /// The webhook journal.
    pub journal: crate::ingest::journal::Journal,
    /// Live event fan-out.
    pub live: crate::live::LiveHub,
    /// Turns true when the server shuts down (live streams end).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Meta's Graph API (or the sandbox).
    pub graph: wabridge_cloud_api::GraphClient,
    /// Wakes the outbox workers after something was enqueued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Fetches and keeps customers' files.
    pub media: crate::inbox::media::MediaFetcher,
}

/// What every page template needs: language, user, CSRF token, product name.
#[derive(Clone, Debug)]
pub struct PageCtx {
    /// UI language.
    pub lang: Lang,
    /// The signed-in user.
    pub user: Option<SessionUser>,
    /// CSRF token for forms.
    pub csrf: String,
    /// Product name.
    pub product: Arc<str>,
    /// The sandbox's customer page (the banner shows when set).
    pub sandbox: Option<Arc<str>>,
    /// Current path.
    pub path: String,
    /// Unread notifications of a tenant member (live updates start from it).
    pub unread: Option<i64>,
    /// Where the page's event stream starts (see [`crate::live::LiveHub::stream_url`]).
    pub live_url: String,
}

impl PageCtx {
    /// Builds the page context from the request context (or defaults when there is none).
    pub fn from_context(ctx: Option<&RequestContext>) -> PageCtx {
        match ctx {
            Some(c) => PageCtx {
                lang: c.lang,
                user: c.user.clone(),
                csrf: c.csrf.clone(),
                product: c.product.clone(),
                sandbox: c.sandbox.clone(),
                path: c.path.clone(),
                unread: c.unread,
                live_url: c.live_url.clone(),
            },
            None => PageCtx {
                lang: Lang::default(),
                user: None,
                csrf: String::new(),
                product: Arc::from("wabridge"),
                sandbox: None,
                path: "/".to_owned(),
                unread: None,
                live_url: String::new(),
            },
        }
    }

    /// A UI string.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// The UI string `prefix.key`, for keys chosen at run time (statuses, roles).
    pub fn tk(&self, prefix: &str, key: &str) -> &'static str {
        self.lang.t(&format!("{prefix}.{key}"))
    }

    /// See [`Lang::word`].
    pub fn word<'a>(&self, prefix: &str, key: &'a str) -> &'a str {
        self.lang.word(prefix, key)
    }

    /// A UI string with one `{name}` placeholder filled.
    pub fn tf(&self, key: &str, name: &str, value: &str) -> String {
        self.lang.tf(key, name, value)
    }

    /// Whether the user is support staff.
    pub fn is_support(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Support)
    }

    /// Whether the user belongs to a tenant.
    pub fn is_tenant_member(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role != Role::Support)
    }
}

impl From<RequestContext> for PageCtx {
    fn from(c: RequestContext) -> Self {
        PageCtx::from_context(Some(&c))
    }
}

/// Renders an askama template as an HTML response.
pub fn render<T: askama::Template>(template: &T) -> error::AppResult<Response> {
    Ok(axum::response::Html(template.render()?).into_response())
}

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], APP_CSS)
}

async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], APP_JS)
}

fn sdk_origin(settings: &Settings) -> String {
    url::Url::parse(&settings.meta.sdk_url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_default()
}

async fn security_headers(csp: Arc<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, (*csp).clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Largest request body accepted anywhere; Meta's batched webhooks are the biggest bodies.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The whole HTTP surface of wabridge.
pub fn router(state: AppState) -> Router {
    let sdk = sdk_origin(&state.settings);
    // The Facebook SDK (or the sandbox's) is the only foreign script; its popup posts back to
    // us, and its iframe may be embedded — nothing else is allowed in.
    let csp = format!(
        "default-src 'self'; script-src 'self' {sdk}; frame-src {sdk}; connect-src 'self' {sdk}; img-src 'self' data: {sdk}; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    let csp = Arc::new(HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'self'")));
    Router::new()
        .route("/static/app.css", get(app_css))
        .route("/static/app.js", get(app_js))
        .merge(crate::ops::routes())
        .merge(crate::accounts::routes::routes())
        .merge(crate::integrations::routes())
        .merge(crate::onboarding::routes())
        .merge(crate::support::routes())
        .merge(crate::support::onboarding::routes())
        .merge(crate::notifications::routes())
        .merge(crate::live::routes())
        .merge(crate::inbox::routes())
        .merge(crate::mail::routes())
        .merge(crate::templates::routes())
        .merge(crate::billing::routes())
        .merge(crate::api::routes())
        .route_layer(middleware::from_fn(metrics::tag_route))
        .fallback(|| async { error::AppError::NotFound })
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::from_fn_with_state(state.clone(), context::load_context))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(middleware::from_fn(move |r, n| security_headers(csp.clone(), r, n)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Meta's webhooks: outside every layer (see `ingest::endpoint`).
        .merge(crate::ingest::endpoint::routes())
        .with_state(state)
}
