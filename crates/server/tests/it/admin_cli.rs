//! `wabridge admin attach-number`, run as the real binary.

use std::process::{Command, Output};

use wabridge::accounts::TenantId;
use wabridge::crypto::Keyring;
use wabridge::store::Db;
use wabridge::with_pool;

use crate::helpers::fresh_database_url;

fn admin(url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabridge"));
    cmd.arg("admin").args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("DATABASE_URL", url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the wabridge binary runs")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn attach_number_routes_a_number_to_a_tenant_and_seals_the_token() {
    let (url, _dir) = fresh_database_url().await;
    let key = Keyring::generate_key();
    let tenant = ok(&admin(&url, &[], &["create-tenant", "--name", "Salon CLI"]));
    let other = ok(&admin(&url, &[], &["create-tenant", "--name", "Salon Other"]));
    let token = "EAAG-plain-business-token-123";
    let env = [("WABRIDGE_ENCRYPTION_KEY", key.as_str()), ("WABRIDGE_WABA_TOKEN", token)];
    let args = ["attach-number", "--tenant", &tenant, "--waba-id", "WABA-CLI", "--phone-number-id", "PN-CLI", "--display-number", "+49 30 999", "--business-id", "BIZ-1"];
    assert_eq!(ok(&admin(&url, &env, &args)), "PN-CLI");
    // Idempotent for the same tenant.
    ok(&admin(&url, &env, &args));

    let db = Db::open(&url).await.unwrap();
    let (owner, status, display) = with_pool!(db.read(), |p| sqlx::query_as::<_, (TenantId, String, Option<String>)>(
        "SELECT tenant_id, status, display_phone_number FROM phone_numbers WHERE phone_number_id = 'PN-CLI'"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(owner.0.to_string(), tenant);
    assert_eq!(status, "connected");
    assert_eq!(display.as_deref(), Some("+49 30 999"));
    let (waba_owner, business, sealed) = with_pool!(db.read(), |p| sqlx::query_as::<_, (TenantId, Option<String>, Option<Vec<u8>>)>(
        "SELECT tenant_id, business_id, token_ciphertext FROM whatsapp_accounts WHERE waba_id = 'WABA-CLI'"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(waba_owner, owner);
    assert_eq!(business.as_deref(), Some("BIZ-1"));
    let sealed = sealed.expect("the token is stored");
    assert!(!sealed.windows(token.len()).any(|w| w == token.as_bytes()), "the token is not stored in plain text");
    let keyring = Keyring::parse(&key).unwrap();
    assert_eq!(keyring.open(&sealed, "waba-token:WABA-CLI").unwrap(), token.as_bytes());
    assert!(keyring.open(&sealed, "waba-token:WABA-OTHER").is_err(), "sealed for this WABA only");

    // The number belongs to one tenant; a token cannot be stored without the key.
    let theft = admin(&url, &[], &["attach-number", "--tenant", &other, "--waba-id", "WABA-CLI", "--phone-number-id", "PN-CLI"]);
    assert!(!theft.status.success());
    assert!(String::from_utf8_lossy(&theft.stderr).contains("another tenant"));
    let no_key = admin(&url, &[("WABRIDGE_WABA_TOKEN", token)], &["attach-number", "--tenant", &other, "--waba-id", "WABA-2", "--phone-number-id", "PN-2"]);
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("WABRIDGE_ENCRYPTION_KEY"));
    // Without a token, no key is needed.
    ok(&admin(&url, &[], &["attach-number", "--tenant", &other, "--waba-id", "WABA-2", "--phone-number-id", "PN-2"]));
    let unknown = admin(&url, &[], &["attach-number", "--tenant", "9999", "--waba-id", "WABA-3", "--phone-number-id", "PN-3"]);
    assert!(!unknown.status.success());
    db.close().await;
}
