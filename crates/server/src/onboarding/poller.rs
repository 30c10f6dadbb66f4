//! The safety net under the webhooks: polls the Graph API for tenants whose checklist is still
//! pending, with backoff (from `WABRIDGE_ONBOARDING_POLL_SECS`, doubling up to an hour), and
//! stops when every item is done or failed. Business verification has no webhook at all, so
//! for that item polling is the only source.
//!
//! Each due tenant is claimed by moving its `poll_next_at` forward in one conditional UPDATE,
//! so several instances on PostgreSQL never poll the same tenant at once.

use wabridge_cloud_api::GraphClient;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::checklist;
use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::config::Settings;
use crate::live::LiveHub;
use crate::store::Db;
use crate::with_pool;

/// Longest wait between two polls of one tenant.
const MAX_INTERVAL_MS: i64 = 3_600_000;
/// How long a claim holds if the poll never finishes (a crashed instance).
const LEASE_MS: i64 = 120_000;

/// Runs until shutdown.
pub async fn run(db: Db, clock: Clock, settings: Arc<Settings>, graph: GraphClient, live: LiveHub, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = poll_due(&db, &clock, &settings, &graph, &live).await {
            tracing::warn!(error = format!("{e:#}"), "onboarding poll failed");
        }
        if let Err(e) = super::health::watch_tokens(&db, &clock, &settings, &graph, &live).await {
            tracing::warn!(error = format!("{e:#}"), "token watch failed");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[derive(sqlx::FromRow)]
struct Due {
    tenant_id: TenantId,
    poll_next_at: i64,
    poll_interval_ms: i64,
}

/// Polls every tenant that is due; returns how many were polled.
pub async fn poll_due(db: &Db, clock: &Clock, settings: &Settings, graph: &GraphClient, live: &LiveHub) -> anyhow::Result<usize> {
    let now = clock.now_ms();
    let due = with_pool!(db.read(), |p| sqlx::query_as::<_, Due>(
        "SELECT tenant_id, poll_next_at, poll_interval_ms FROM onboarding_state WHERE poll_next_at IS NOT NULL AND poll_next_at <= $1 ORDER BY poll_next_at LIMIT 20"
    )
    .bind(now)
    .fetch_all(p)
    .await)?;
    let mut polled = 0;
    for d in due {
        let claimed = with_pool!(db.write(), |p| sqlx::query("UPDATE onboarding_state SET poll_next_at = $1 WHERE tenant_id = $2 AND poll_next_at = $3")
            .bind(now + LEASE_MS)
            .bind(d.tenant_id)
            .bind(d.poll_next_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if claimed != 1 {
            continue;
        }
        polled += 1;
        let settled = match checklist::refresh(db, live, settings, graph, d.tenant_id, now).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(tenant = d.tenant_id.0, error = format!("{e:#}"), "onboarding poll of the Graph API failed; backing off");
                if let Some(api) = e.downcast_ref::<wabridge_cloud_api::ApiError>()
                    && let Some(waba) = super::store::state(db, d.tenant_id).await?.waba_id
                {
                    super::health::on_graph_error(db, live, d.tenant_id, &waba, api, now).await?;
                }
                false
            }
        };
        let base = settings.onboarding_poll_secs * 1000;
        let interval = (d.poll_interval_ms * 2).clamp(base, MAX_INTERVAL_MS);
        let next = if settled { None } else { Some(now + interval) };
        with_pool!(db.write(), |p| sqlx::query("UPDATE onboarding_state SET poll_next_at = $1, poll_interval_ms = $2 WHERE tenant_id = $3")
            .bind(next)
            .bind(interval)
            .bind(d.tenant_id)
            .execute(p)
            .await
            .map(drop))?;
    }
    Ok(polled)
}
