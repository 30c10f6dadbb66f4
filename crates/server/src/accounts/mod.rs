//! Accounts: tenants, users and their roles, sign-in with sessions, language choice.

pub mod password;
pub mod routes;
pub mod store;

use serde::Serialize;

/// Id of a tenant (a business customer of the host application).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct TenantId(pub i64);

/// Id of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct UserId(pub i64);

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Owner of a tenant: everything in the tenant, including connecting WhatsApp.
    Owner,
    /// Agent of a tenant: answers customers.
    Agent,
    /// Operator's support staff: the support area, across tenants.
    Support,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Agent => "agent",
            Role::Support => "support",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "agent" => Some(Role::Agent),
            "support" => Some(Role::Support),
            _ => None,
        }
    }

    /// The translation key of the role's name.
    pub fn label_key(self) -> &'static str {
        match self {
            Role::Owner => "role.owner",
            Role::Agent => "role.agent",
            Role::Support => "role.support",
        }
    }
}

/// The signed-in user of a request.
#[derive(Clone, Debug)]
pub struct SessionUser {
    /// User id.
    pub id: UserId,
    /// Tenant, for owners and agents; `None` for support staff.
    pub tenant_id: Option<TenantId>,
    /// E-mail address.
    pub email: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Chosen UI language, if any.
    pub locale: Option<String>,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// Longest e-mail address accepted (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest password accepted (argon2 handles more, but nobody types more).
pub const MAX_PASSWORD: usize = 1024;
/// Shortest password accepted when creating users.
pub const MIN_PASSWORD: usize = 10;
/// Longest tenant or user name.
pub const MAX_NAME: usize = 200;

/// Normalises an e-mail address for lookups, or says why it is not one.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.len() > MAX_EMAIL {
        return Err("too_long");
    }
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err("bad_request") }
}
