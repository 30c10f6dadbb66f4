//! Connection health (issue 6, item 7): the owner's disconnect, and what makes a connection
//! stop working on Meta's side — `PARTNER_REMOVED`, a banned account (`DISABLED_UPDATE`), a
//! revoked or expired business token (error 190 from any Graph call) — each marks the WABA
//! and its numbers (so the outbox refuses sends with `not_connected`), alerts support and tells
//! the tenant's users (notification, e-mail, live event). Tokens with an expiry are watched by
//! the poller: owners and support are warned [`EXPIRY_WARNING_MS`] before they expire.

use secrecy::SecretString;
use serde_json::json;
use wabridge_cloud_api::{ApiError, GraphClient};

use super::checklist;
use super::store;
use crate::accounts::TenantId;
use crate::clock::Clock;
use crate::config::Settings;
use crate::live::{self, LiveHub, NewEvent};
use crate::store::{Db, Tx};
use crate::web::AppState;
use crate::{with_pool, with_tx};

/// The owner disconnected the number.
pub const DISCONNECTED: &str = "disconnected";
/// The business token was revoked or expired: the owner must sign in with Facebook again.
pub const NEEDS_REAUTH: &str = "needs_reauth";
/// The business removed our app from its WABA (`PARTNER_REMOVED`).
pub const PARTNER_REMOVED: &str = "partner_removed";
/// Meta disabled (banned) the WABA (`DISABLED_UPDATE`).
pub const DISABLED: &str = "disabled";
/// Every health state, which is also the status its numbers take.
pub const STATES: [&str; 4] = [DISCONNECTED, NEEDS_REAUTH, PARTNER_REMOVED, DISABLED];

/// How long before a token's expiry owners and support are warned.
pub const EXPIRY_WARNING_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often the poller asks `debug_token` about a token inside the warning window.
pub const TOKEN_CHECK_MS: i64 = 6 * 3600 * 1000;

/// Marks a tenant's WABA (and its numbers) with a health state inside `tx`. Idempotent: a
/// repeated mark changes nothing and tells nobody twice. Nothing but the owner's own
/// disconnect overrides a disconnect. Returns the live events to publish after commit.
pub async fn mark(tx: &mut Tx, tenant: TenantId, waba_id: &str, health: &'static str, detail: &str, now: i64) -> Result<Vec<NewEvent>, sqlx::Error> {
    let account = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
        "UPDATE whatsapp_accounts SET health = $1, health_at = $2
         WHERE tenant_id = $3 AND waba_id = $4
           AND (health IS NULL OR (health <> $1 AND ($1 = 'disconnected' OR health <> 'disconnected')))
         RETURNING id"
    )
    .bind(health)
    .bind(now)
    .bind(tenant)
    .bind(waba_id)
    .fetch_optional(c)
    .await)?;
    let Some(account) = account else { return Ok(Vec::new()) };
    with_tx!(&mut *tx, |c| sqlx::query("UPDATE phone_numbers SET status = $1, updated_at = $2 WHERE account_id = $3 AND tenant_id = $4")
        .bind(health)
        .bind(now)
        .bind(account)
        .bind(tenant)
        .execute(c)
        .await
        .map(drop))?;
    // Nothing left to poll for this connection until it is set up again.
    with_tx!(&mut *tx, |c| sqlx::query("UPDATE onboarding_state SET poll_next_at = NULL, updated_at = $1 WHERE tenant_id = $2 AND waba_id = $3")
        .bind(now)
        .bind(tenant)
        .bind(waba_id)
        .execute(c)
        .await
        .map(drop))?;
    tracing::warn!(tenant = tenant.0, waba_id, health, "whatsapp connection marked");
    if health != DISCONNECTED {
        checklist::alert(tx, tenant, health, &format!("{health}:{waba_id}:{now}"), &format!("WABA {waba_id}: {detail}"), now).await?;
    }
    let mut events = vec![NewEvent::new(tenant, None, "whatsapp_status", &json!({"status": health, "waba_id": waba_id, "at": now}))];
    let dedupe = format!("health:{waba_id}:{health}:{now}");
    events.extend(checklist::notify_users(tx, tenant, false, &format!("onboarding.health.notify.{health}"), &dedupe, now).await?);
    Ok(events)
}

/// Marks outside the webhook road, commits and publishes.
pub async fn mark_now(db: &Db, hub: &LiveHub, tenant: TenantId, waba_id: &str, health: &'static str, detail: &str, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let events = mark(&mut tx, tenant, waba_id, health, detail, now).await?;
    let marked = !events.is_empty();
    live::commit(db, hub, tx, &events, now).await?;
    Ok(marked)
}

/// Meta lifted a ban (`DISABLED_UPDATE` with `REINSTATE`): the numbers it had disabled are
/// connected again.
pub async fn reinstate(tx: &mut Tx, tenant: TenantId, waba_id: &str, now: i64) -> Result<Vec<NewEvent>, sqlx::Error> {
    let account = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
        "UPDATE whatsapp_accounts SET health = NULL, health_at = $1 WHERE tenant_id = $2 AND waba_id = $3 AND health = 'disabled' RETURNING id"
    )
    .bind(now)
    .bind(tenant)
    .bind(waba_id)
    .fetch_optional(c)
    .await)?;
    let Some(account) = account else { return Ok(Vec::new()) };
    with_tx!(&mut *tx, |c| sqlx::query("UPDATE phone_numbers SET status = 'connected', updated_at = $1 WHERE account_id = $2 AND tenant_id = $3 AND status = 'disabled'")
        .bind(now)
        .bind(account)
        .bind(tenant)
        .execute(c)
        .await
        .map(drop))?;
    let mut events = vec![NewEvent::new(tenant, None, "whatsapp_status", &json!({"status": "connected", "waba_id": waba_id, "at": now}))];
    let dedupe = format!("health:{waba_id}:reinstated:{now}");
    events.extend(checklist::notify_users(tx, tenant, false, "onboarding.health.notify.reinstated", &dedupe, now).await?);
    Ok(events)
}

/// Whether Meta's error says the token is no longer valid (190: revoked, expired, password changed).
pub fn token_invalid(e: &ApiError) -> bool {
    e.graph().and_then(|g| g.code) == Some(190)
}

/// The hook for every Graph call made with a tenant's token: a 190 marks the connection as
/// needing a new sign-in with Facebook.
pub async fn on_graph_error(db: &Db, hub: &LiveHub, tenant: TenantId, waba_id: &str, e: &ApiError, now: i64) -> Result<(), sqlx::Error> {
    if token_invalid(e) {
        mark_now(db, hub, tenant, waba_id, NEEDS_REAUTH, &e.to_string(), now).await?;
    }
    Ok(())
}

/// The outbox's hook: a send from this number failed with `code`; 190 marks its WABA. A
/// number that never had a token (attached by hand without one) is not a revoked sign-in.
pub async fn on_send_failure(db: &Db, hub: &LiveHub, tenant: TenantId, phone_number_id: &str, code: Option<i64>, text: &str, now: i64) -> Result<(), sqlx::Error> {
    if code != Some(190) {
        return Ok(());
    }
    let waba = with_pool!(db.read(), |p| sqlx::query_scalar::<_, String>(
        "SELECT a.waba_id FROM phone_numbers n JOIN whatsapp_accounts a ON a.id = n.account_id
         WHERE n.phone_number_id = $1 AND n.tenant_id = $2 AND a.token_ciphertext IS NOT NULL"
    )
    .bind(phone_number_id)
    .bind(tenant)
    .fetch_optional(p)
    .await)?;
    if let Some(waba) = waba {
        mark_now(db, hub, tenant, &waba, NEEDS_REAUTH, text, now).await?;
    }
    Ok(())
}

/// Records the token's expiry as `debug_token` reports it (Unix seconds; 0 or none: never).
pub async fn set_token_expiry(db: &Db, tenant: TenantId, waba_id: &str, expires_at_s: Option<i64>, now: i64) -> Result<(), sqlx::Error> {
    let expires = expires_at_s.filter(|s| *s > 0).map(|s| s * 1000);
    with_pool!(db.write(), |p| sqlx::query(
        "UPDATE whatsapp_accounts SET token_expires_at = $1, token_checked_at = $2,
             expiry_warned_at = CASE WHEN $1 IS NULL OR token_expires_at IS NULL OR $1 <> token_expires_at THEN NULL ELSE expiry_warned_at END
         WHERE tenant_id = $3 AND waba_id = $4"
    )
    .bind(expires)
    .bind(now)
    .bind(tenant)
    .bind(waba_id)
    .execute(p)
    .await
    .map(drop))
}

/// A WABA's health as pages show it.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct HealthRow {
    /// WABA.
    pub waba_id: String,
    /// Health state, `None` when fine.
    pub health: Option<String>,
    /// When it changed.
    pub health_at: Option<i64>,
    /// When the token expires, Unix ms.
    pub token_expires_at: Option<i64>,
    /// Whether a token is stored.
    pub has_token: bool,
}

/// The health of a tenant's WABAs.
pub async fn accounts(db: &Db, tenant: TenantId) -> Result<Vec<HealthRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, HealthRow>(
        "SELECT waba_id, health, health_at, token_expires_at, token_ciphertext IS NOT NULL AS has_token FROM whatsapp_accounts WHERE tenant_id = $1 ORDER BY id"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// What the owner's disconnect managed at Meta (it always completes on our side).
#[derive(Debug, Default)]
pub struct Disconnected {
    /// Meta's errors of the deregistration and unsubscription, if any.
    pub meta_errors: Vec<ApiError>,
}

/// The owner disconnects WhatsApp: every number is deregistered, the app is unsubscribed
/// from the WABA, the sealed token deleted, the numbers marked disconnected (the outbox then
/// refuses sends) and the checklist cleared so a new signup starts fresh. Meta refusing a
/// step (a token already revoked) does not stop the disconnect on our side.
pub async fn disconnect(app: &AppState, tenant: TenantId) -> anyhow::Result<Disconnected> {
    let now = app.clock.now_ms();
    let mut out = Disconnected::default();
    for account in accounts(&app.db, tenant).await? {
        let token = checklist::token(&app.db, &app.settings, tenant, &account.waba_id).await.ok().flatten();
        if let Some(token) = &token {
            for pn in numbers_of(&app.db, tenant, &account.waba_id).await? {
                if let Err(e) = app.graph.deregister(token, &pn).await {
                    tracing::warn!(tenant = tenant.0, error = %e, "deregistration refused");
                    out.meta_errors.push(e);
                }
            }
            if let Err(e) = app.graph.unsubscribe_app(token, &account.waba_id).await {
                tracing::warn!(tenant = tenant.0, error = %e, "unsubscription refused");
                out.meta_errors.push(e);
            }
        }
        let mut tx = app.db.begin().await?;
        with_tx!(&mut tx, |c| sqlx::query(
            "UPDATE whatsapp_accounts SET token_ciphertext = NULL, token_expires_at = NULL, expiry_warned_at = NULL WHERE tenant_id = $1 AND waba_id = $2"
        )
        .bind(tenant)
        .bind(&account.waba_id)
        .execute(c)
        .await
        .map(drop))?;
        let events = mark(&mut tx, tenant, &account.waba_id, DISCONNECTED, "disconnected by the owner", now).await?;
        with_tx!(&mut tx, |c| sqlx::query("DELETE FROM onboarding_checklist WHERE tenant_id = $1").bind(tenant).execute(c).await.map(drop))?;
        with_tx!(&mut tx, |c| sqlx::query("UPDATE onboarding_state SET waba_id = NULL, phone_number_id = NULL, poll_next_at = NULL, updated_at = $1 WHERE tenant_id = $2")
            .bind(now)
            .bind(tenant)
            .execute(c)
            .await
            .map(drop))?;
        live::commit(&app.db, &app.live, tx, &events, now).await?;
    }
    Ok(out)
}

async fn numbers_of(db: &Db, tenant: TenantId, waba_id: &str) -> Result<Vec<String>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, String>(
        "SELECT n.phone_number_id FROM phone_numbers n JOIN whatsapp_accounts a ON a.id = n.account_id WHERE a.tenant_id = $1 AND a.waba_id = $2 ORDER BY n.id"
    )
    .bind(tenant)
    .bind(waba_id)
    .fetch_all(p)
    .await)
}

#[derive(sqlx::FromRow)]
struct Expiring {
    id: i64,
    tenant_id: TenantId,
    waba_id: String,
    token_ciphertext: Vec<u8>,
    token_expires_at: i64,
    token_checked_at: Option<i64>,
}

/// The poller's token watch: every token inside the warning window is checked with
/// `debug_token` (at most every [`TOKEN_CHECK_MS`]); owners and support are warned once, a
/// token that is invalid or past its expiry marks the connection. Returns how many were checked.
pub async fn watch_tokens(db: &Db, clock: &Clock, settings: &Settings, graph: &GraphClient, hub: &LiveHub) -> anyhow::Result<usize> {
    let now = clock.now_ms();
    let due = with_pool!(db.read(), |p| sqlx::query_as::<_, Expiring>(
        "SELECT id, tenant_id, waba_id, token_ciphertext, token_expires_at, token_checked_at FROM whatsapp_accounts
         WHERE token_ciphertext IS NOT NULL AND health IS NULL AND token_expires_at IS NOT NULL AND token_expires_at <= $1
           AND (expiry_warned_at IS NULL OR token_checked_at IS NULL OR token_checked_at <= $2 OR token_expires_at <= $3)
         ORDER BY token_expires_at LIMIT 20"
    )
    .bind(now + EXPIRY_WARNING_MS)
    .bind(now - TOKEN_CHECK_MS)
    .bind(now)
    .fetch_all(p)
    .await)?;
    let mut checked = 0;
    for a in due {
        let mut expires = a.token_expires_at;
        let check_due = a.token_checked_at.is_none_or(|t| t <= now - TOKEN_CHECK_MS) || expires <= now;
        if check_due {
            // One instance asks Meta about each token: the claim moves token_checked_at.
            let claimed = with_pool!(db.write(), |p| sqlx::query("UPDATE whatsapp_accounts SET token_checked_at = $1 WHERE id = $2 AND COALESCE(token_checked_at, 0) = $3")
                .bind(now)
                .bind(a.id)
                .bind(a.token_checked_at.unwrap_or(0))
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
            if claimed != 1 {
                continue;
            }
            checked += 1;
            let token: SecretString = match settings.keyring.open_str(&a.token_ciphertext, &store::token_context(&a.waba_id)) {
                Ok(t) => t,
                Err(e) => {
                    mark_now(db, hub, a.tenant_id, &a.waba_id, NEEDS_REAUTH, &format!("the stored token cannot be opened: {e}"), now).await?;
                    continue;
                }
            };
            match graph.debug_token(&checklist::app_credentials(settings), &token).await {
                Ok(info) if info.is_valid == Some(false) => {
                    mark_now(db, hub, a.tenant_id, &a.waba_id, NEEDS_REAUTH, "debug_token: the token is no longer valid", now).await?;
                    continue;
                }
                Ok(info) => match info.expires_at.filter(|s| *s > 0) {
                    Some(s) => expires = s * 1000,
                    None => {
                        // Extended to a token that never expires: nothing left to watch.
                        set_token_expiry(db, a.tenant_id, &a.waba_id, None, now).await?;
                        continue;
                    }
                },
                Err(e) if token_invalid(&e) => {
                    mark_now(db, hub, a.tenant_id, &a.waba_id, NEEDS_REAUTH, &e.to_string(), now).await?;
                    continue;
                }
                Err(e) => tracing::warn!(tenant = a.tenant_id.0, error = %e, "debug_token failed; the expiry stays as last known"),
            }
            if expires != a.token_expires_at {
                set_token_expiry(db, a.tenant_id, &a.waba_id, Some(expires / 1000), now).await?;
            }
        }
        if expires <= now {
            mark_now(db, hub, a.tenant_id, &a.waba_id, NEEDS_REAUTH, "the token expired", now).await?;
        } else if expires <= now + EXPIRY_WARNING_MS {
            warn_expiry(db, hub, a.tenant_id, &a.waba_id, expires, now).await?;
        }
    }
    Ok(checked)
}

async fn warn_expiry(db: &Db, hub: &LiveHub, tenant: TenantId, waba_id: &str, expires: i64, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let first = with_tx!(&mut tx, |c| sqlx::query("UPDATE whatsapp_accounts SET expiry_warned_at = $1 WHERE tenant_id = $2 AND waba_id = $3 AND expiry_warned_at IS NULL")
        .bind(now)
        .bind(tenant)
        .bind(waba_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if first == 1 {
        let when = crate::web::when::When(expires).utc_text();
        checklist::alert(&mut tx, tenant, "token_expiring", &format!("token_expiring:{waba_id}:{expires}"), &format!("WABA {waba_id}: token expires {when}"), now).await?;
        let events = checklist::notify_users(&mut tx, tenant, true, "onboarding.health.notify.token_expiring", &format!("token_expiring:{waba_id}:{expires}"), now).await?;
        live::commit(db, hub, tx, &events, now).await?;
    }
    Ok(())
}
