//! `wabridge demo`: everything on one machine with no configuration — SQLite under the data
//! folder, a generated encryption key kept beside it, and the demo tenant and accounts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::accounts::{Role, password, store};
use crate::config::Settings;
use crate::crypto::Keyring;
use crate::store::Db;

/// The demo tenant's name.
pub const DEMO_TENANT: &str = "Demo Salon";
/// The demo owner's e-mail address.
pub const DEMO_OWNER: &str = "owner@demo.test";
/// The demo support user's e-mail address.
pub const DEMO_SUPPORT: &str = "support@demo.test";
/// The password of both demo accounts.
pub const DEMO_PASSWORD: &str = "wabridge-demo";

/// Reads the demo's encryption key from the data folder, creating it on first start.
pub fn demo_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("encryption.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let key = Keyring::generate_key();
    write_private(&path, &key)?;
    Ok(key)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)?;
        Ok(())
    }
}

/// The demo's settings: the sandbox's app and endpoints (`meta`, which already honours
/// `META_APP_SECRET` and `META_VERIFY_TOKEN`), with logging and product name from the
/// environment on top.
pub fn settings(listen: SocketAddr, data_dir: &Path, meta: &BTreeMap<&str, String>) -> anyhow::Result<Settings> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let db = data_dir.join("wabridge.db");
    values.insert("DATABASE_URL".into(), format!("sqlite:{}", db.display()));
    values.insert("WABRIDGE_LISTEN".into(), listen.to_string());
    values.insert("WABRIDGE_DATA_DIR".into(), data_dir.display().to_string());
    values.insert("WABRIDGE_ENCRYPTION_KEY".into(), demo_key(data_dir)?);
    values.insert("WABRIDGE_PUBLIC_URL".into(), format!("http://{listen}"));
    for (k, v) in meta {
        values.insert((*k).to_owned(), v.clone());
    }
    for name in ["WABRIDGE_LOG", "WABRIDGE_LOG_FORMAT", "WABRIDGE_PRODUCT_NAME"] {
        if let Ok(v) = std::env::var(name) {
            values.insert(name.to_owned(), v);
        }
    }
    Ok(Settings::from_sources(&values, None)?)
}

/// Creates the demo tenant and accounts unless they exist.
pub async fn seed(db: &Db, now: i64) -> anyhow::Result<()> {
    let tenant = match store::tenant_by_name(db, DEMO_TENANT).await? {
        Some(t) => t.id,
        None => store::create_tenant(db, DEMO_TENANT, now).await?,
    };
    for (email, name, role, tenant) in [
        (DEMO_OWNER, "Demo Owner", Role::Owner, Some(tenant)),
        (DEMO_SUPPORT, "Demo Support", Role::Support, None),
    ] {
        if store::credentials(db, email).await?.is_none() {
            let hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
            store::create_user(db, tenant, email, name, &hash, role, now).await?;
        }
    }
    Ok(())
}

/// The default data folder of the demo.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./wabridge-data")
}
