//! Queries for the tenants' WhatsApp Business Accounts and numbers (the routing table of
//! webhooks, too).

use crate::accounts::TenantId;
use crate::store::Db;
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
             token_ciphertext = COALESCE(excluded.token_ciphertext, whatsapp_accounts.token_ciphertext)
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
