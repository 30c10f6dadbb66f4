//! Per-request context: who is signed in, which language, which CSRF token — resolved once
//! by [`load_context`], which also refuses cross-site and token-less form posts.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::AppError;
use super::i18n::Lang;
use crate::accounts::{Role, SessionUser, TenantId, store};
use crate::crypto;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "wb_session";
/// Pre-session CSRF cookie (double submit, for the sign-in form).
pub const CSRF_COOKIE: &str = "wb_csrf";
/// Language cookie for visitors who are not signed in.
pub const LANG_COOKIE: &str = "wb_lang";
/// Largest form body the CSRF check buffers.
const FORM_LIMIT: usize = 64 * 1024;

/// What every handler may know about its request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The signed-in user, if any.
    pub user: Option<SessionUser>,
    /// The UI language.
    pub lang: Lang,
    /// The CSRF token forms must echo.
    pub csrf: String,
    /// Product name for the UI.
    pub product: std::sync::Arc<str>,
    /// The sandbox's customer page, when Meta is the built-in sandbox.
    pub sandbox: Option<std::sync::Arc<str>>,
    /// Current path, for sign-in redirects and the language switch.
    pub path: String,
    /// Unread notifications, for tenant members.
    pub unread: Option<i64>,
    /// Where the page's event stream starts: after the tenant's latest live event when the
    /// page was rendered, so nothing between rendering and connecting is missed (empty for
    /// pages without one).
    pub live_url: String,
}

/// Reads a cookie from request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the attributes every wabridge cookie carries.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

fn is_exempt(path: &str) -> bool {
    // Meta's webhooks are authenticated by signature; the host application's API by key,
    // without cookies, so a cross-site page cannot ride on a browser's session there.
    path.starts_with("/webhooks/") || path.starts_with("/api/v1/")
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin" && site != "none" {
            return false;
        }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return false;
        }
    }
    true
}

/// Middleware: resolves the session and language, checks CSRF on unsafe methods.
pub async fn load_context(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let now = app.clock.now_ms();
    let user = match cookie(&parts.headers, SESSION_COOKIE) {
        Some(token) => match store::session_user(&app.db, &crypto::token_hash(token), now).await {
            Ok(user) => user,
            Err(e) => return AppError::from(e).into_response(),
        },
        None => None,
    };
    let lang = user
        .as_ref()
        .and_then(|u| u.locale.as_deref())
        .and_then(Lang::parse)
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
        .or_else(|| parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language))
        .unwrap_or_default();
    let existing_csrf = cookie(&parts.headers, CSRF_COOKIE).filter(|c| c.len() == 64).map(str::to_owned);
    let (csrf, new_cookie) = match (&user, existing_csrf) {
        (Some(u), _) => (u.csrf_token.clone(), None),
        (None, Some(c)) => (c, None),
        (None, None) => {
            let token = crypto::random_token();
            (token.clone(), Some(token))
        }
    };
    let (unread, live_url) = match &user {
        Some(u) if u.role != Role::Support && parts.method == Method::GET => (
            crate::notifications::unread_count(&app.db, u.id).await.ok(),
            match u.tenant_id {
                Some(t) => app.live.stream_url(crate::live::latest_event(&app.db, t).await.unwrap_or(0)),
                None => String::new(),
            },
        ),
        _ => (None, String::new()),
    };
    let ctx = RequestContext {
        live_url,
        unread,
        user,
        lang,
        csrf: csrf.clone(),
        product: app.product.clone(),
        sandbox: app.settings.sandbox_url.as_deref().map(std::sync::Arc::from),
        path: parts.uri.path().to_owned(),
    };
    parts.extensions.insert(ctx.clone());
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let json = super::error::wants_json(&parts.headers, parts.uri.path());
    let mut request = Request::from_parts(parts, body);
    if unsafe_method && !is_exempt(request.uri().path()) {
        match check_csrf(request, &csrf).await {
            Ok(r) => request = r,
            Err(e) => {
                return super::error::finish(e.into_response(), Some(&ctx), json);
            }
        }
    }
    let mut response = next.run(request).await;
    if let Some(token) = new_cookie
        && let Ok(v) = set_cookie(CSRF_COOKIE, &token, 86_400, app.settings.secure_cookies()).parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    response
}

async fn check_csrf(request: Request, expected: &str) -> Result<Request, AppError> {
    if !same_origin(request.headers()) {
        return Err(AppError::Csrf);
    }
    let header_token = request.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let matches = |t: &str| bool::from(t.as_bytes().ct_eq(expected.as_bytes()));
    if let Some(t) = header_token {
        return if matches(&t) { Ok(request) } else { Err(AppError::Csrf) };
    }
    if !is_form {
        // A file upload form cannot set headers and its body is not buffered here: its token
        // travels in the action's query.
        let is_multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("multipart/form-data"));
        let query_token = request
            .uri()
            .query()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "_csrf").map(|(_, v)| v.into_owned()));
        return match query_token {
            Some(t) if is_multipart && matches(&t) => Ok(request),
            _ => Err(AppError::Csrf),
        };
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| AppError::PayloadTooLarge)?;
    let token = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "_csrf").map(|(_, v)| v.into_owned());
    match token {
        Some(t) if matches(&t) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(AppError::Csrf),
    }
}

/// The request's context (always present behind [`load_context`]).
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Ctx)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("request context missing")))
    }
}

/// Rejection for pages that need a sign-in: browsers go to the sign-in page.
pub struct SignInRequired(String);

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        let next: String = url::form_urlencoded::byte_serialize(self.0.as_bytes()).collect();
        Redirect::to(&format!("/sign-in?next={next}")).into_response()
    }
}

/// Either a redirect to sign in or an error.
pub enum AuthRejection {
    /// Not signed in.
    SignIn(SignInRequired),
    /// Signed in without the right role.
    Denied(AppError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::SignIn(s) => s.into_response(),
            AuthRejection::Denied(e) => e.into_response(),
        }
    }
}

fn signed_in(parts: &Parts) -> Result<(RequestContext, SessionUser), AuthRejection> {
    let ctx = parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .ok_or_else(|| AuthRejection::Denied(AppError::Internal(anyhow::anyhow!("request context missing"))))?;
    match ctx.user.clone() {
        Some(u) => Ok((ctx, u)),
        None => Err(AuthRejection::SignIn(SignInRequired(parts.uri.path().to_owned()))),
    }
}

/// A signed-in owner or agent of a tenant, with that tenant's id.
pub struct TenantMember {
    /// The request context.
    pub ctx: RequestContext,
    /// The user.
    pub user: SessionUser,
    /// The user's tenant: the only tenant this request may touch.
    pub tenant: TenantId,
}

impl<S: Send + Sync> FromRequestParts<S> for TenantMember {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (ctx, user) = signed_in(parts)?;
        match user.tenant_id {
            Some(tenant) if user.role != Role::Support => Ok(TenantMember { ctx, user, tenant }),
            _ => Err(AuthRejection::Denied(AppError::Forbidden)),
        }
    }
}

/// A signed-in member of the operator's support staff.
pub struct SupportStaff {
    /// The request context.
    pub ctx: RequestContext,
    /// The user.
    pub user: SessionUser,
}

impl<S: Send + Sync> FromRequestParts<S> for SupportStaff {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (ctx, user) = signed_in(parts)?;
        if user.role == Role::Support { Ok(SupportStaff { ctx, user }) } else { Err(AuthRejection::Denied(AppError::Forbidden)) }
    }
}

/// Any signed-in user.
pub struct SignedIn {
    /// The request context.
    pub ctx: RequestContext,
    /// The user.
    pub user: SessionUser,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (ctx, user) = signed_in(parts)?;
        Ok(SignedIn { ctx, user })
    }
}
