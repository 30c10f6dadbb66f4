//! The safety net under the template webhooks: every few minutes each tenant's templates are
//! read back from Meta and stored as Meta has them (status, category, text). Upserts are
//! idempotent, so several instances syncing at once do no harm.

use std::time::Duration;

use tokio::sync::watch;

use super::{SubmitError, store};
use crate::accounts::TenantId;
use crate::web::AppState;

/// Reads one tenant's templates from Meta; returns how many were stored.
pub async fn sync_tenant(app: &AppState, tenant: TenantId) -> Result<usize, SubmitError> {
    sync(app, Some(tenant)).await
}

async fn sync(app: &AppState, tenant: Option<TenantId>) -> Result<usize, SubmitError> {
    let mut stored = 0;
    let mut last_error = None;
    for (owner, waba, sealed) in store::wabas(&app.db, tenant).await? {
        let Ok(token) = app.settings.keyring.open_str(&sealed, &crate::onboarding::store::token_context(&waba)) else { continue };
        match app.graph.all_templates(&token, &waba, None).await {
            Ok(templates) => {
                for t in &templates {
                    if store::upsert_from_meta(&app.db, owner, &waba, t, app.clock.now_ms()).await?.is_some() {
                        stored += 1;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(tenant = owner.0, waba, error = %e, "template sync failed");
                last_error = Some(e);
            }
        }
    }
    match (tenant, last_error) {
        (Some(_), Some(e)) => Err(SubmitError::Meta(e)),
        _ => Ok(stored),
    }
}

/// Runs the sync every `every` until shutdown.
pub async fn run(app: AppState, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::clock::periodically(every, every, shutdown, || async {
        if let Err(e) = sync(&app, None).await {
            tracing::warn!(error = %e, "template sync failed");
        }
    })
    .await;
}
