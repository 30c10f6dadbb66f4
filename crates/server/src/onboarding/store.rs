//! Queries for the tenants' WhatsApp Business Accounts and numbers (the routing table of
//! webhooks, too).

use crate::accounts::TenantId;
use crate::store::Db;
use crate::with_pool;

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
