//! Onboarding a tenant's WhatsApp number. So far: the connection status and the page behind
//! LOGIN with Meta's prerequisites; the signup itself is not built yet (the page says so).

pub mod store;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use crate::accounts::TenantId;
use crate::store::Db;
use crate::web::context::TenantMember;
use crate::web::error::{AppError, AppResult};
use crate::web::{AppState, PageCtx, render};

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api-settings/whatsapp", get(get_onboarding))
}

/// A tenant's WhatsApp connection as the API settings page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// No number attached.
    NotConnected,
    /// A number is attached but not yet connected for messaging.
    Pending,
    /// At least one number can send and receive.
    Connected,
}

impl ConnectionStatus {
    /// Stable key (CSS class and translation key suffix).
    pub fn key(self) -> &'static str {
        match self {
            ConnectionStatus::NotConnected => "not_connected",
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Connected => "connected",
        }
    }
}

/// The tenant's connection status, from its numbers.
pub async fn connection_status(db: &Db, tenant: TenantId) -> Result<ConnectionStatus, sqlx::Error> {
    let numbers = store::numbers(db, tenant).await?;
    Ok(if numbers.iter().any(|n| n.status == store::NUMBER_CONNECTED) {
        ConnectionStatus::Connected
    } else if numbers.is_empty() {
        ConnectionStatus::NotConnected
    } else {
        ConnectionStatus::Pending
    })
}

#[derive(askama::Template)]
#[template(path = "onboarding.html")]
struct OnboardingPage {
    p: PageCtx,
    guide_url: String,
}

async fn get_onboarding(State(app): State<AppState>, member: TenantMember) -> AppResult<Response> {
    if member.user.role != crate::accounts::Role::Owner {
        return Err(AppError::Forbidden);
    }
    render(&OnboardingPage { guide_url: app.settings.meta_guide_url.clone(), p: member.ctx.into() })
}
