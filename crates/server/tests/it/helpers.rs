//! `spawn_app()` and the `TestApp` handle every test drives.

use std::collections::BTreeMap;

use rand::Rng as _;
use reqwest::redirect::Policy;
use sqlx::Connection as _;
use wabridge::accounts::{Role, TenantId, UserId, password, store};
use wabridge::app::Application;
use wabridge::clock::Clock;
use wabridge::config::Settings;
use wabridge::crypto::Keyring;
use wabridge::store::Db;

/// Password of every user the tests create.
pub const PASSWORD: &str = "correct horse battery";

/// A running server with its database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database the server uses.
    pub db: Db,
    /// The server's clock.
    pub clock: Clock,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: Option<TempDir>,
}

/// A folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Which backend this run tests.
pub fn backend() -> String {
    std::env::var("WABRIDGE_TEST_DB").unwrap_or_else(|_| "sqlite".to_owned())
}

/// A fresh, empty database URL on the backend under test (and the folder to clean up).
pub async fn fresh_database_url() -> (String, Option<TempDir>) {
    match backend().as_str() {
        "postgres" => {
            let admin = std::env::var("WABRIDGE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let name = format!("wabridge_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for WABRIDGE_TEST_DB=postgres: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
            (format!("{base}/{name}"), None)
        }
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("wabridge-test-{}", random_suffix()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite:{}", dir.join("wabridge.db").display()), Some(TempDir(dir)))
        }
        other => panic!("WABRIDGE_TEST_DB must be sqlite or postgres, not {other}"),
    }
}

/// Settings for a test server; `extra` overrides.
pub fn test_settings(database_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env = BTreeMap::new();
    env.insert("DATABASE_URL".to_owned(), database_url.to_owned());
    env.insert("WABRIDGE_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
    env.insert("META_APP_ID".to_owned(), "100000000000001".to_owned());
    env.insert("META_APP_SECRET".to_owned(), "test-app-secret".to_owned());
    env.insert("META_CONFIG_ID".to_owned(), "200000000000001".to_owned());
    env.insert("META_VERIFY_TOKEN".to_owned(), "test-verify-token".to_owned());
    env.insert("WABRIDGE_ENCRYPTION_KEY".to_owned(), Keyring::generate_key());
    env.insert("WABRIDGE_LOG".to_owned(), "warn".to_owned());
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_sources(&env, None).expect("test settings are complete")
}

/// Starts a server on a fresh database of the backend under test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a server with extra settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn(extra, wabridge::ingest::Registry::standard()).await
}

/// A fresh database of the configured backend with every migration applied (the folder of a
/// SQLite file lives as long as the second value).
pub async fn migrated_database() -> (wabridge::store::Db, Option<TempDir>) {
    let (url, dir) = fresh_database_url().await;
    let db = wabridge::store::Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

/// Starts a server with these webhook subscriptions.
pub async fn spawn_app_with_registry(registry: wabridge::ingest::Registry) -> TestApp {
    spawn(&[], registry).await
}

/// Polls `check` until it holds (30 s at most, for slow shared CI machines): for effects of
/// background work.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn spawn(extra: &[(&str, &str)], registry: wabridge::ingest::Registry) -> TestApp {
    let (url, dir) = fresh_database_url().await;
    spawn_with_url(&url, dir, extra, registry).await
}

/// Starts a server on an existing database (another instance may share it: PostgreSQL only).
pub async fn spawn_app_on(url: &str) -> TestApp {
    spawn_app_on_with(url, &[]).await
}

/// Starts a server on an existing database with extra settings.
pub async fn spawn_app_on_with(url: &str, extra: &[(&str, &str)]) -> TestApp {
    spawn_with_url(url, None, extra, wabridge::ingest::Registry::standard()).await
}

async fn spawn_with_url(url: &str, dir: Option<TempDir>, extra: &[(&str, &str)], registry: wabridge::ingest::Registry) -> TestApp {
    let url = url.to_owned();
    let settings = test_settings(&url, extra);
    let db = Db::open(&url).await.expect("database opens");
    db.migrate().await.expect("migrations apply");
    let clock = Clock::default();
    let app = Application::with_registry(settings, db.clone(), clock.clone(), registry).await.expect("server binds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp { base: format!("http://{addr}"), db, clock, _stop: stop, _dir: dir }
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub fn client() -> reqwest::Client {
    wabridge_testkit::install_tls();
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap()
}

/// The value of the first hidden `_csrf` field in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("page has a CSRF field") + 20;
    html[at..at + 64].to_owned()
}

/// Text of the element with this id (crude, for assertions on server-rendered pages).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find('<')?;
    Some(html[start..end].trim().to_owned())
}

impl TestApp {
    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a tenant.
    pub async fn tenant(&self, name: &str) -> TenantId {
        store::create_tenant(&self.db, name, self.clock.now_ms()).await.unwrap()
    }

    /// Creates a user with [`PASSWORD`].
    pub async fn user(&self, tenant: Option<TenantId>, email: &str, role: Role) -> UserId {
        let hash = password::hash(PASSWORD.to_owned()).await.unwrap();
        store::create_user(&self.db, tenant, email, &format!("User {email}"), &hash, role, self.clock.now_ms()).await.unwrap()
    }

    /// Signs in with a new client; returns it (with the session cookie) and the CSRF token.
    pub async fn signed_in(&self, email: &str) -> (reqwest::Client, String) {
        let c = client();
        let resp = self.sign_in(&c, email, PASSWORD).await;
        assert_eq!(resp.status(), 303, "sign-in of {email} failed");
        let page = c.get(self.url("/")).send().await.unwrap();
        let next = page.headers()["location"].to_str().unwrap().to_owned();
        let html = c.get(self.url(&next)).send().await.unwrap().text().await.unwrap();
        (c, csrf_of(&html))
    }

    /// Posts the sign-in form as a browser would (fetching the form first for its token).
    pub async fn sign_in(&self, c: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
        let form = c.get(self.url("/sign-in")).send().await.unwrap().text().await.unwrap();
        let csrf = csrf_of(&form);
        c.post(self.url("/sign-in"))
            .form(&[("_csrf", csrf.as_str()), ("email", email), ("password", password), ("next", "")])
            .send()
            .await
            .unwrap()
    }
}

/// A server wired to a sandbox (the sandbox plays Meta), with a tenant whose number the
/// sandbox created and which is attached, token sealed, as onboarding would.
pub struct SandboxApp {
    /// The server.
    pub app: TestApp,
    /// The sandbox.
    pub sandbox: wabridge_sandbox::Sandbox,
    /// The tenant.
    #[allow(dead_code)]
    pub tenant: TenantId,
    /// The sandbox's fixture: WABA, number, token.
    pub fixture: wabridge_sandbox::TenantFixture,
}

/// Starts a sandbox and a server pointed at it; the tenant "Salon Sandbox" has an owner
/// `owner@sandbox.test`, an agent `agent@sandbox.test` and a connected number.
pub async fn spawn_app_with_sandbox(extra: &[(&str, &str)]) -> SandboxApp {
    use wabridge_sandbox::{Sandbox, SandboxConfig, TenantRequest};
    wabridge_testkit::install_tls();
    let config = SandboxConfig::for_tests(None);
    let sandbox = Sandbox::start(config.clone()).await.expect("sandbox starts");
    let (url, dir) = fresh_database_url().await;
    let base = sandbox.base_url();
    let sdk = sandbox.sdk_url();
    let origin = sandbox.origin();
    let mut settings_extra: Vec<(&str, &str)> = vec![
        ("META_APP_ID", config.app_id.as_str()),
        ("META_APP_SECRET", config.app_secret.as_str()),
        ("META_CONFIG_ID", config.config_id.as_str()),
        ("META_VERIFY_TOKEN", config.verify_token.as_str()),
        ("META_GRAPH_URL", base.as_str()),
        ("META_SDK_URL", sdk.as_str()),
        ("META_SIGNUP_ORIGINS", origin.as_str()),
    ];
    settings_extra.extend_from_slice(extra);
    let settings = test_settings(&url, &settings_extra);
    let keyring = settings.keyring.clone();
    let db = Db::open(&url).await.expect("database opens");
    db.migrate().await.expect("migrations apply");
    let clock = Clock::default();
    let server = Application::with_db(settings, db.clone(), clock.clone()).await.expect("server binds");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    let app = TestApp { base: format!("http://{addr}"), db, clock, _stop: stop, _dir: dir };
    sandbox.set_webhook_url(Some(app.url("/webhooks/whatsapp")));
    let fixture = sandbox
        .control()
        .create_tenant(&TenantRequest { business_name: Some("Salon Sandbox".into()), registered_with_pin: Some("246810".into()), ..Default::default() })
        .await
        .expect("sandbox tenant");
    let tenant = app.tenant("Salon Sandbox").await;
    app.user(Some(tenant), "owner@sandbox.test", Role::Owner).await;
    app.user(Some(tenant), "agent@sandbox.test", Role::Agent).await;
    let sealed = keyring.seal(fixture.access_token.as_bytes(), &wabridge::onboarding::store::token_context(&fixture.waba_id));
    wabridge::onboarding::store::attach(
        &app.db,
        tenant,
        &wabridge::onboarding::store::Attachment {
            waba_id: &fixture.waba_id,
            business_id: Some(&fixture.business_id),
            phone_number_id: &fixture.phone_number_id,
            display_phone_number: Some(&fixture.number),
            token_ciphertext: Some(sealed),
            status: "connected",
        },
        app.clock.now_ms(),
    )
    .await
    .expect("number attached");
    SandboxApp { app, sandbox, tenant, fixture }
}

/// A server wired to a sandbox with no tenant yet, for onboarding (which creates the tenant's
/// WABA and number through Embedded Signup itself).
pub struct BareSandboxApp {
    /// The server.
    pub app: TestApp,
    /// The sandbox (Meta).
    pub sandbox: wabridge_sandbox::Sandbox,
}

/// Starts a sandbox with this configuration and a server whose `META_*` settings point at it
/// (app id, secret, config id, verify token, Graph, SDK, signup origin); the sandbox sends its
/// webhooks to the server.
pub async fn spawn_app_with_bare_sandbox(config: wabridge_sandbox::SandboxConfig, extra: &[(&str, &str)]) -> BareSandboxApp {
    let sandbox = wabridge_sandbox::Sandbox::start(config.clone()).await.expect("sandbox starts");
    let base = sandbox.base_url();
    let sdk = sandbox.sdk_url();
    let origin = sandbox.origin();
    let mut settings: Vec<(&str, &str)> = vec![
        ("META_APP_ID", config.app_id.as_str()),
        ("META_APP_SECRET", config.app_secret.as_str()),
        ("META_CONFIG_ID", config.config_id.as_str()),
        ("META_VERIFY_TOKEN", config.verify_token.as_str()),
        ("META_GRAPH_URL", base.as_str()),
        ("META_SDK_URL", sdk.as_str()),
        ("META_SIGNUP_ORIGINS", origin.as_str()),
    ];
    settings.extend_from_slice(extra);
    let app = spawn_app_with(&settings).await;
    sandbox.set_webhook_url(Some(app.url("/webhooks/whatsapp")));
    BareSandboxApp { app, sandbox }
}
