//! Sign-in, sign-out and the language switch.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{MAX_PASSWORD, Role, normalize_email, password, store};
use crate::crypto;
use crate::web::context::{CSRF_COOKIE, Ctx, LANG_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::Lang;
use crate::web::{AppState, PageCtx, render};

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(get_home))
        .route("/sign-in", get(get_sign_in).post(post_sign_in))
        .route("/sign-out", post(post_sign_out))
        .route("/language", post(post_language))
}

/// Failed sign-ins are counted over this window.
const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;

#[derive(askama::Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    p: PageCtx,
    next: String,
    email: String,
    error: Option<&'static str>,
    signed_out: bool,
}

#[derive(Deserialize)]
struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// Only local paths are followed after sign-in, never another site.
fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 2048)
        .map(str::to_owned)
}

fn home_for(role: Role) -> &'static str {
    match role {
        Role::Support => "/support",
        Role::Owner | Role::Agent => "/api-settings",
    }
}

async fn get_home(Ctx(ctx): Ctx) -> Redirect {
    match ctx.user {
        Some(u) => Redirect::to(home_for(u.role)),
        None => Redirect::to("/sign-in"),
    }
}

async fn get_sign_in(Ctx(ctx): Ctx, Query(q): Query<SignInQuery>) -> AppResult<Response> {
    if let Some(u) = &ctx.user {
        return Ok(Redirect::to(home_for(u.role)).into_response());
    }
    render(&SignInPage {
        next: safe_next(q.next.as_deref()).unwrap_or_default(),
        email: String::new(),
        error: None,
        signed_out: q.signed_out.is_some(),
        p: ctx.into(),
    })
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn post_sign_in(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SignInForm>,
) -> AppResult<Response> {
    let now = app.clock.now_ms();
    let lang = ctx.lang;
    let refuse = |status: StatusCode, code: &'static str, email: String, ctx| -> AppResult<Response> {
        let mut r = render(&SignInPage {
            next: safe_next(form.next.as_deref()).unwrap_or_default(),
            email,
            error: Some(Lang::t(lang, &format!("error.{code}"))),
            signed_out: false,
            p: PageCtx::from_context(Some(ctx)),
        })?;
        *r.status_mut() = status;
        Ok(r)
    };
    let shown_email: String = form.email.chars().take(super::MAX_EMAIL).collect();
    let email = match normalize_email(&form.email) {
        Ok(e) => e,
        Err("too_long") => return refuse(StatusCode::BAD_REQUEST, "too_long", String::new(), &ctx),
        Err(_) => return refuse(StatusCode::UNAUTHORIZED, "invalid_credentials", shown_email, &ctx),
    };
    if form.password.len() > MAX_PASSWORD {
        return refuse(StatusCode::BAD_REQUEST, "too_long", shown_email, &ctx);
    }
    let ip = peer.ip().to_string();
    let (by_email, by_ip) = store::recent_failures(&app.db, &email, &ip, now - FAILURE_WINDOW_MS).await?;
    let limit = app.settings.sign_in_limit;
    if by_email >= limit || by_ip >= limit * 4 {
        app.metrics.add("wabridge_sign_in_refused_total", 1);
        tracing::warn!(client_ip = %ip, "sign-in refused: too many failures");
        return refuse(StatusCode::TOO_MANY_REQUESTS, "rate_limited", shown_email, &ctx);
    }
    let found = store::credentials(&app.db, &email).await?;
    let hash = found.as_ref().map(|(_, h)| h.clone()).unwrap_or_else(|| password::DUMMY_HASH.to_owned());
    let valid = password::verify(form.password.clone(), hash).await;
    let user = match (found, valid) {
        (Some((user, _)), true) => user,
        _ => {
            store::record_failure(&app.db, &email, &ip, now).await?;
            app.metrics.add("wabridge_sign_in_failures_total", 1);
            return refuse(StatusCode::UNAUTHORIZED, "invalid_credentials", shown_email, &ctx);
        }
    };
    store::clear_failures(&app.db, &email, now - FAILURE_WINDOW_MS).await?;
    let token = crypto::random_token();
    let csrf = crypto::random_token();
    let lifetime_ms = app.settings.session_hours * 3_600_000;
    store::create_session(&app.db, &crypto::token_hash(&token), user, &csrf, now, now + lifetime_ms).await?;
    let session = store::session_user(&app.db, &crypto::token_hash(&token), now).await?.ok_or(AppError::InvalidCredentials)?;
    tracing::info!(user_id = user.0, "signed in");
    let target = safe_next(form.next.as_deref()).unwrap_or_else(|| home_for(session.role).to_owned());
    let secure = app.settings.secure_cookies();
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, lifetime_ms / 1000, secure)),
            (header::SET_COOKIE, set_cookie(CSRF_COOKIE, "", 0, secure)),
        ]),
        Redirect::to(&target),
    )
        .into_response())
}

async fn post_sign_out(State(app): State<AppState>, headers: axum::http::HeaderMap) -> AppResult<Response> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        store::delete_session(&app.db, &crypto::token_hash(token), app.clock.now_ms()).await?;
    }
    Ok((
        [(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, app.settings.secure_cookies()))],
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LanguageForm {
    lang: String,
    next: Option<String>,
}

async fn post_language(State(app): State<AppState>, Ctx(ctx): Ctx, Form(form): Form<LanguageForm>) -> AppResult<Response> {
    let lang = Lang::parse(&form.lang).filter(|l| l.code() == form.lang).ok_or(AppError::BadRequest("unsupported_language"))?;
    if let Some(user) = &ctx.user {
        store::set_locale(&app.db, user.id, lang.code()).await?;
    }
    let target = safe_next(form.next.as_deref()).unwrap_or_else(|| "/".to_owned());
    Ok((
        [(header::SET_COOKIE, set_cookie(LANG_COOKIE, lang.code(), 365 * 86_400, app.settings.secure_cookies()))],
        Redirect::to(&target),
    )
        .into_response())
}
