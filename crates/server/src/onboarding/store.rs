//! Queries for the tenants' WhatsApp Business Accounts and numbers (the routing table of
//! webhooks, too).

use crate::accounts::TenantId;
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// `phone_numbers.status` of a number that can send and receive.
pub const NUMBER_CONNECTED: &str = "connected";

/// A tenant's phone number.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NumberRow {
    /// Meta's phone number id.
    pub phone_number_id: String,
    /// The number as Meta displays it.
    pub display_phone_number: Option<String>,
    /// Verified business name.
    pub verified_name: Option<String>,
    /// Our status of the number.
    pub status: String,
}

/// The numbers of one tenant.
pub async fn numbers(db: &Db, tenant: TenantId) -> Result<Vec<NumberRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, NumberRow>(
        "SELECT phone_number_id, display_phone_number, verified_name, status FROM phone_numbers WHERE tenant_id = $1 ORDER BY id"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// Why a WABA or number could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The WABA or number already belongs to another tenant.
    #[error("this WhatsApp Business Account or number belongs to another tenant")]
    OtherTenant,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What is attached to a tenant: a WABA, one of its numbers and, optionally, the sealed token.
pub struct Attachment<'a> {
    /// WhatsApp Business Account id.
    pub waba_id: &'a str,
    /// Business portfolio id, when known.
    pub business_id: Option<&'a str>,
    /// Phone number id.
    pub phone_number_id: &'a str,
    /// Display number, when known.
    pub display_phone_number: Option<&'a str>,
    /// Business token sealed with the keyring (context `waba-token:<waba_id>`).
    pub token_ciphertext: Option<Vec<u8>>,
    /// Status of the number.
    pub status: &'a str,
}

/// Attaches a WABA and number to a tenant (idempotent for the same tenant; refused when
/// either already belongs to another tenant).
pub async fn attach(db: &Db, tenant: TenantId, a: &Attachment<'_>, now: i64) -> Result<(), AttachError> {
    let mut tx = db.begin().await?;
    let owner = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM whatsapp_accounts WHERE waba_id = $1")
        .bind(a.waba_id)
        .fetch_optional(c)
        .await)?;
    if owner.is_some_and(|o| o != tenant) {
        return Err(AttachError::OtherTenant);
    }
    let number_owner = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM phone_numbers WHERE phone_number_id = $1")
        .bind(a.phone_number_id)
        .fetch_optional(c)
        .await)?;
    if number_owner.is_some_and(|o| o != tenant) {
        return Err(AttachError::OtherTenant);
    }
    let account_id = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO whatsapp_accounts (tenant_id, waba_id, business_id, token_ciphertext, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (waba_id) DO UPDATE SET
             business_id = COALESCE(excluded.business_id, whatsapp_accounts.business_id),
             token_ciphertext = COALESCE(excluded.token_ciphertext, whatsapp_accounts.token_ciphertext),
             health = CASE WHEN excluded.token_ciphertext IS NULL THEN whatsapp_accounts.health ELSE NULL END,
             expiry_warned_at = CASE WHEN excluded.token_ciphertext IS NULL THEN whatsapp_accounts.expiry_warned_at ELSE NULL END
         RETURNING id"
    )
    .bind(tenant)
    .bind(a.waba_id)
    .bind(a.business_id)
    .bind(a.token_ciphertext.as_deref())
    .bind(now)
    .fetch_one(c)
    .await)?;
    with_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO phone_numbers (tenant_id, account_id, phone_number_id, display_phone_number, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (phone_number_id) DO UPDATE SET
             account_id = excluded.account_id,
             display_phone_number = COALESCE(excluded.display_phone_number, phone_numbers.display_phone_number),
             status = excluded.status,
             updated_at = excluded.updated_at"
    )
    .bind(tenant)
    .bind(account_id)
    .bind(a.phone_number_id)
    .bind(a.display_phone_number)
    .bind(a.status)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(())
}

/// The authenticated-encryption context a WABA's business token is sealed under.
pub fn token_context(waba_id: &str) -> String {
    format!("waba-token:{waba_id}")
}

/// The business token that may act for a tenant's number, opened from its sealed form.
pub async fn number_token(db: &Db, keyring: &crate::crypto::Keyring, tenant: TenantId, phone_number_id: &str) -> Result<Option<secrecy::SecretString>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        waba_id: String,
        token_ciphertext: Option<Vec<u8>>,
    }
    let row = with_pool!(db.read(), |p| sqlx::query_as::<_, Row>(
        "SELECT a.waba_id, a.token_ciphertext FROM phone_numbers n JOIN whatsapp_accounts a ON a.id = n.account_id
         WHERE n.phone_number_id = $1 AND n.tenant_id = $2"
    )
    .bind(phone_number_id)
    .bind(tenant)
    .fetch_optional(p)
    .await)?;
    Ok(row.and_then(|r| keyring.open_str(&r.token_ciphertext?, &token_context(&r.waba_id)).ok()))
}

/// The owner of a WABA (for checks before attaching).
pub async fn waba_owner(db: &Db, waba_id: &str) -> Result<Option<TenantId>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM whatsapp_accounts WHERE waba_id = $1")
        .bind(waba_id)
        .fetch_optional(p)
        .await)
}

/// The owner of a phone number.
pub async fn number_owner(db: &Db, phone_number_id: &str) -> Result<Option<TenantId>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM phone_numbers WHERE phone_number_id = $1")
        .bind(phone_number_id)
        .fetch_optional(p)
        .await)
}

/// The sealed business token of a tenant's WABA.
pub async fn sealed_token(db: &Db, tenant: TenantId, waba_id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, Option<Vec<u8>>>(
        "SELECT token_ciphertext FROM whatsapp_accounts WHERE tenant_id = $1 AND waba_id = $2"
    )
    .bind(tenant)
    .bind(waba_id)
    .fetch_optional(p)
    .await)
    .map(Option::flatten)
}

/// Sets a number's status (and, when known, its display number and verified name).
pub async fn set_number_status(
    db: &Db,
    tenant: TenantId,
    phone_number_id: &str,
    status: &str,
    display: Option<&str>,
    verified_name: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query(
        "UPDATE phone_numbers SET status = $1, display_phone_number = COALESCE($2, display_phone_number),
             verified_name = COALESCE($3, verified_name), updated_at = $4
         WHERE tenant_id = $5 AND phone_number_id = $6"
    )
    .bind(status)
    .bind(display)
    .bind(verified_name)
    .bind(now)
    .bind(tenant)
    .bind(phone_number_id)
    .execute(p)
    .await
    .map(drop))
}

/// A tenant's onboarding state.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct StateRow {
    /// The PIN, sealed (context `onboarding-pin:<tenant>`).
    pub pin_ciphertext: Option<Vec<u8>>,
    /// When the PIN was set.
    pub pin_set_at: Option<i64>,
    /// When the owner confirmed a valid payment method at Meta.
    pub payment_confirmed_at: Option<i64>,
    /// Failed attempts since the last success or unlock.
    pub failed_attempts: i64,
    /// When self-service was locked (two failures).
    pub locked_at: Option<i64>,
    /// The WABA being onboarded or onboarded.
    pub waba_id: Option<String>,
    /// Its number.
    pub phone_number_id: Option<String>,
    /// The business portfolio's verification as the Graph API last said (`verified`, `pending`…).
    pub business_verification: Option<String>,
    /// The WABA's review (`APPROVED`, `PENDING`, `REJECTED`).
    pub account_review: Option<String>,
    /// The display name review (`name_status`).
    pub name_status: Option<String>,
    /// When the poller looks next; `None` when nothing is pending.
    pub poll_next_at: Option<i64>,
    /// Current poll backoff.
    pub poll_interval_ms: i64,
}

const STATE_COLUMNS: &str = "pin_ciphertext, pin_set_at, payment_confirmed_at, failed_attempts, locked_at, waba_id, phone_number_id, business_verification, account_review, name_status, poll_next_at, poll_interval_ms";

/// A tenant's onboarding state (the default when onboarding never began).
pub async fn state(db: &Db, tenant: TenantId) -> Result<StateRow, sqlx::Error> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM onboarding_state WHERE tenant_id = $1");
    with_pool!(db.read(), |p| sqlx::query_as::<_, StateRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).fetch_optional(p).await)
        .map(Option::unwrap_or_default)
}

/// The state inside a transaction.
pub async fn state_tx(tx: &mut Tx, tenant: TenantId) -> Result<StateRow, sqlx::Error> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM onboarding_state WHERE tenant_id = $1");
    with_tx!(tx, |c| sqlx::query_as::<_, StateRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).fetch_optional(c).await)
        .map(Option::unwrap_or_default)
}

/// Makes sure the state row exists.
pub async fn ensure_state(db: &Db, tenant: TenantId, now: i64) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("INSERT INTO onboarding_state (tenant_id, updated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Stores the sealed PIN and the payment confirmation.
pub async fn set_pin(db: &Db, tenant: TenantId, sealed: &[u8], payment_confirmed: bool, now: i64) -> Result<(), sqlx::Error> {
    ensure_state(db, tenant, now).await?;
    with_pool!(db.write(), |p| sqlx::query(
        "UPDATE onboarding_state SET pin_ciphertext = $1, pin_set_at = $2,
             payment_confirmed_at = CASE WHEN $3 THEN COALESCE(payment_confirmed_at, $2) ELSE payment_confirmed_at END,
             updated_at = $2
         WHERE tenant_id = $4"
    )
    .bind(sealed)
    .bind(now)
    .bind(payment_confirmed)
    .bind(tenant)
    .execute(p)
    .await
    .map(drop))
}

/// Records the WABA and number being onboarded and starts polling.
pub async fn set_assets(db: &Db, tenant: TenantId, waba_id: &str, phone_number_id: Option<&str>, first_poll: i64, now: i64) -> Result<(), sqlx::Error> {
    ensure_state(db, tenant, now).await?;
    with_pool!(db.write(), |p| sqlx::query(
        "UPDATE onboarding_state SET waba_id = $1, phone_number_id = $2, poll_next_at = $3, poll_interval_ms = 0, updated_at = $4 WHERE tenant_id = $5"
    )
    .bind(waba_id)
    .bind(phone_number_id)
    .bind(first_poll)
    .bind(now)
    .bind(tenant)
    .execute(p)
    .await
    .map(drop))
}

/// Support unlocks a tenant: failures forgotten, self-service open again.
pub async fn unlock(db: &Db, tenant: TenantId, now: i64) -> Result<(), sqlx::Error> {
    ensure_state(db, tenant, now).await?;
    with_pool!(db.write(), |p| sqlx::query("UPDATE onboarding_state SET failed_attempts = 0, locked_at = NULL, updated_at = $1 WHERE tenant_id = $2")
        .bind(now)
        .bind(tenant)
        .execute(p)
        .await
        .map(drop))
}

/// Counts one failure inside a transaction; the second locks self-service.
pub async fn count_failure(tx: &mut Tx, tenant: TenantId, now: i64) -> Result<(), sqlx::Error> {
    with_tx!(tx, |c| sqlx::query("INSERT INTO onboarding_state (tenant_id, updated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    with_tx!(tx, |c| sqlx::query(
        "UPDATE onboarding_state SET failed_attempts = failed_attempts + 1,
             locked_at = CASE WHEN failed_attempts + 1 >= $1 THEN COALESCE(locked_at, $2) ELSE locked_at END,
             updated_at = $2
         WHERE tenant_id = $3"
    )
    .bind(MAX_FAILED_ATTEMPTS)
    .bind(now)
    .bind(tenant)
    .execute(c)
    .await
    .map(drop))
}

/// Failed attempts after which self-service is locked (DESIGN.md rule 6).
pub const MAX_FAILED_ATTEMPTS: i64 = 2;

/// One attempt at Embedded Signup.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttemptRow {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The user who started it.
    pub user_id: crate::accounts::UserId,
    /// The page's handle on it.
    pub nonce: String,
    /// SHA-256 of the starting session's CSRF token: only that session may finish it.
    pub session_hash: String,
    /// `started`, `needs_verification`, `needs_pin`, `needs_register`, `connected`, `no_number`,
    /// `coexistence`, `failed`.
    pub status: String,
    /// Where it stopped or failed.
    pub step: Option<String>,
    /// The popup's event (`FINISH`, `CANCEL`, …).
    pub event: Option<String>,
    /// The popup's step when cancelled.
    pub current_step: Option<String>,
    /// Meta's error code.
    pub error_code: Option<i64>,
    /// Meta's error subcode.
    pub error_subcode: Option<i64>,
    /// Meta's error text.
    pub error_message: Option<String>,
    /// Meta's trace id (or the popup's session id).
    pub fbtrace_id: Option<String>,
    /// Business portfolio.
    pub business_id: Option<String>,
    /// WABA.
    pub waba_id: Option<String>,
    /// Number.
    pub phone_number_id: Option<String>,
    /// Whether it counted as a failure.
    pub counted: bool,
    /// Started, Unix ms.
    pub started_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Finished, when it did.
    pub finished_at: Option<i64>,
}

const ATTEMPT_COLUMNS: &str = "id, tenant_id, user_id, nonce, session_hash, status, step, event, current_step, error_code, error_subcode, error_message, fbtrace_id, business_id, waba_id, phone_number_id, counted, started_at, updated_at, finished_at";

/// A tenant's attempts, newest first.
pub async fn attempts(db: &Db, tenant: TenantId) -> Result<Vec<AttemptRow>, sqlx::Error> {
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM onboarding_attempts WHERE tenant_id = $1 ORDER BY id DESC");
    with_pool!(db.read(), |p| sqlx::query_as::<_, AttemptRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).fetch_all(p).await)
}

/// Every tenant's attempts, newest first (support).
pub async fn all_attempts(db: &Db, limit: i64) -> Result<Vec<AttemptRow>, sqlx::Error> {
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM onboarding_attempts ORDER BY id DESC LIMIT $1");
    with_pool!(db.read(), |p| sqlx::query_as::<_, AttemptRow>(sqlx::AssertSqlSafe(sql.clone())).bind(limit).fetch_all(p).await)
}

/// The tenant's open attempt, if any.
pub async fn open_attempt(db: &Db, tenant: TenantId) -> Result<Option<AttemptRow>, sqlx::Error> {
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM onboarding_attempts WHERE tenant_id = $1 AND finished_at IS NULL");
    with_pool!(db.read(), |p| sqlx::query_as::<_, AttemptRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).fetch_optional(p).await)
}

/// The tenant's attempt with this nonce.
pub async fn attempt_by_nonce(db: &Db, tenant: TenantId, nonce: &str) -> Result<Option<AttemptRow>, sqlx::Error> {
    let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM onboarding_attempts WHERE tenant_id = $1 AND nonce = $2");
    with_pool!(db.read(), |p| sqlx::query_as::<_, AttemptRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(nonce).fetch_optional(p).await)
}

/// Starts an attempt, or returns the open one: double clicks and parallel tabs share it.
pub async fn start_attempt(db: &Db, tenant: TenantId, user: crate::accounts::UserId, session_hash: &str, now: i64) -> Result<AttemptRow, sqlx::Error> {
    let nonce = crate::crypto::random_token();
    with_pool!(db.write(), |p| sqlx::query(
        "INSERT INTO onboarding_attempts (tenant_id, user_id, nonce, session_hash, status, started_at, updated_at)
         VALUES ($1, $2, $3, $4, 'started', $5, $5) ON CONFLICT DO NOTHING"
    )
    .bind(tenant)
    .bind(user)
    .bind(&nonce)
    .bind(session_hash)
    .bind(now)
    .execute(p)
    .await
    .map(drop))?;
    open_attempt(db, tenant).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Claims a started attempt for its one signup run: two requests carrying the same code (a
/// double submit) cannot both exchange it, and the loser must not fail the winner's attempt.
pub async fn claim_attempt(db: &Db, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("UPDATE onboarding_attempts SET status = 'exchanging', updated_at = $1 WHERE id = $2 AND status = 'started' AND finished_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// What an attempt step reports: its status and, on trouble, Meta's diagnostics.
#[derive(Clone, Debug, Default)]
pub struct AttemptUpdate {
    /// New status.
    pub status: String,
    /// Step.
    pub step: Option<String>,
    /// Popup event.
    pub event: Option<String>,
    /// Popup step on cancel.
    pub current_step: Option<String>,
    /// Meta's error code.
    pub error_code: Option<i64>,
    /// Subcode.
    pub error_subcode: Option<i64>,
    /// Meta's text.
    pub error_message: Option<String>,
    /// Trace id.
    pub fbtrace_id: Option<String>,
    /// Business.
    pub business_id: Option<String>,
    /// WABA.
    pub waba_id: Option<String>,
    /// Number.
    pub phone_number_id: Option<String>,
}

/// Updates an open attempt; `finish` closes it (then `counted` says whether it failed the
/// tenant's try). Returns false when the attempt was already finished (a double submit),
/// so a failure is counted once.
pub async fn update_attempt(db: &Db, id: i64, u: &AttemptUpdate, finish: bool, counted: bool, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let changed = with_tx!(&mut tx, |c| sqlx::query(
        "UPDATE onboarding_attempts SET status = $1, step = COALESCE($2, step), event = COALESCE($3, event),
             current_step = COALESCE($4, current_step), error_code = $5, error_subcode = $6, error_message = $7, fbtrace_id = $8,
             business_id = COALESCE($9, business_id), waba_id = COALESCE($10, waba_id), phone_number_id = COALESCE($11, phone_number_id),
             counted = $12, updated_at = $13, finished_at = CASE WHEN $14 THEN $13 ELSE NULL END
         WHERE id = $15 AND finished_at IS NULL"
    )
    .bind(&u.status)
    .bind(&u.step)
    .bind(&u.event)
    .bind(&u.current_step)
    .bind(u.error_code)
    .bind(u.error_subcode)
    .bind(&u.error_message)
    .bind(&u.fbtrace_id)
    .bind(&u.business_id)
    .bind(&u.waba_id)
    .bind(&u.phone_number_id)
    .bind(counted)
    .bind(now)
    .bind(finish)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 1 {
        let tenant = with_tx!(&mut tx, |c| sqlx::query_scalar::<_, TenantId>("SELECT tenant_id FROM onboarding_attempts WHERE id = $1")
            .bind(id)
            .fetch_one(c)
            .await)?;
        if finish && counted {
            count_failure(&mut tx, tenant, now).await?;
        }
        if finish && u.status == "connected" {
            // A successful connection resets the count (rule 6).
            with_tx!(&mut tx, |c| sqlx::query("UPDATE onboarding_state SET failed_attempts = 0, locked_at = NULL, updated_at = $1 WHERE tenant_id = $2")
                .bind(now)
                .bind(tenant)
                .execute(c)
                .await
                .map(drop))?;
        }
    }
    tx.commit().await?;
    Ok(changed == 1)
}

/// Keeps the business token of an attempt sealed (context `attempt-token:<id>`) until its WABA is known.
pub async fn set_attempt_token(db: &Db, id: i64, sealed: &[u8]) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query("UPDATE onboarding_attempts SET token_ciphertext = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(p)
        .await
        .map(drop))
}

/// The sealed token of an attempt.
pub async fn attempt_token(db: &Db, id: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, Option<Vec<u8>>>("SELECT token_ciphertext FROM onboarding_attempts WHERE id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
    .map(Option::flatten)
}

/// One checklist item.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ItemRow {
    /// Item key.
    pub item: String,
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// What Meta said.
    pub detail: Option<String>,
    /// When it last changed.
    pub changed_at: i64,
}

/// A tenant's checklist.
pub async fn checklist(db: &Db, tenant: TenantId) -> Result<Vec<ItemRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, ItemRow>("SELECT item, state, detail, changed_at FROM onboarding_checklist WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(p)
        .await)
}

/// The default template's languages as submitted.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TemplateRow {
    /// Language.
    pub language: String,
    /// Meta's template id.
    pub template_id: Option<String>,
    /// Meta's status.
    pub status: String,
    /// Rejection reason.
    pub reason: Option<String>,
}

/// The tenant's default template rows.
pub async fn templates(db: &Db, tenant: TenantId) -> Result<Vec<TemplateRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, TemplateRow>(
        "SELECT language, template_id, status, reason FROM onboarding_templates WHERE tenant_id = $1 ORDER BY language"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// Records a submitted default template language.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_template(db: &Db, tenant: TenantId, language: &str, waba_id: &str, template_id: Option<&str>, status: &str, reason: Option<&str>, now: i64) -> Result<(), sqlx::Error> {
    with_pool!(db.write(), |p| sqlx::query(
        "INSERT INTO onboarding_templates (tenant_id, language, waba_id, template_id, status, reason, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, language) DO UPDATE SET waba_id = excluded.waba_id,
             template_id = COALESCE(excluded.template_id, onboarding_templates.template_id),
             status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at"
    )
    .bind(tenant)
    .bind(language)
    .bind(waba_id)
    .bind(template_id)
    .bind(status)
    .bind(reason)
    .bind(now)
    .execute(p)
    .await
    .map(drop))
}

/// Onboarding requests per tenant allowed in [`RATE_WINDOW_MS`].
pub const RATE_LIMIT: i64 = 30;
/// The rate limit's window.
pub const RATE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Records an onboarding request; false when the tenant is over the limit.
pub async fn rate_ok(db: &Db, tenant: TenantId, now: i64) -> Result<bool, sqlx::Error> {
    let recent = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM onboarding_requests WHERE tenant_id = $1 AND at > $2")
        .bind(tenant)
        .bind(now - RATE_WINDOW_MS)
        .fetch_one(p)
        .await)?;
    if recent >= RATE_LIMIT {
        return Ok(false);
    }
    with_pool!(db.write(), |p| sqlx::query("INSERT INTO onboarding_requests (tenant_id, at) VALUES ($1, $2)")
        .bind(tenant)
        .bind(now)
        .execute(p)
        .await
        .map(drop))?;
    Ok(true)
}

/// Open support alerts, newest first (of one tenant, or all).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AlertRow {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Kind, e.g. `template_rejected`.
    pub kind: String,
    /// Diagnostics.
    pub detail: String,
    /// When.
    pub created_at: i64,
}

/// Support alerts of a tenant (or every tenant).
pub async fn alerts(db: &Db, tenant: Option<TenantId>) -> Result<Vec<AlertRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, AlertRow>(
        "SELECT id, tenant_id, kind, detail, created_at FROM support_alerts WHERE ($1 IS NULL OR tenant_id = $1) AND resolved_at IS NULL ORDER BY id DESC LIMIT 200"
    )
    .bind(tenant)
    .fetch_all(p)
    .await)
}

/// An e-mail that would be sent.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EmailRow {
    /// Recipient.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Text.
    pub body: String,
}

/// A tenant's queued e-mails.
pub async fn emails(db: &Db, tenant: TenantId) -> Result<Vec<EmailRow>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, EmailRow>("SELECT to_address, subject, body FROM email_outbox WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(p)
        .await)
}
