//! The API settings page: the tenant's integrations, with the WhatsApp row and its LOGIN.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use crate::accounts::Role;
use crate::onboarding;
use crate::web::context::TenantMember;
use crate::web::error::AppResult;
use crate::web::{AppState, PageCtx, render};

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api-settings", get(get_api_settings))
}

#[derive(askama::Template)]
#[template(path = "api_settings.html")]
struct ApiSettingsPage {
    p: PageCtx,
    whatsapp_status: &'static str,
    number: String,
    display_name: String,
    can_connect: bool,
}

async fn get_api_settings(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    let (whatsapp_status, number) = onboarding::row_status(&app.db, member.tenant).await?;
    render(&ApiSettingsPage {
        whatsapp_status,
        number: number.as_ref().and_then(|n| n.display_phone_number.clone()).unwrap_or_default(),
        display_name: number.and_then(|n| n.verified_name).unwrap_or_default(),
        can_connect: member.user.role == Role::Owner,
        p: member.ctx.into(),
    })
}
