//! The command line: `serve`, `demo`, `migrate`, `admin …`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use wabridge_sandbox::{Sandbox, SandboxConfig};

use crate::accounts::{self, Role, TenantId, password, store as accounts_store};
use crate::app::{Application, shutdown_signal};
use crate::clock::Clock;
use crate::config::{SETTINGS, Settings};
use crate::store::Db;

#[derive(Parser)]
#[command(name = "wabridge", version, about = "WhatsApp Business Platform channels for every tenant of a SaaS application")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run in production: settings from the environment and an optional TOML file.
    Serve {
        /// TOML file with settings (environment variables win).
        #[arg(long, env = "WABRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the demo: SQLite under ./wabridge-data, demo accounts, no configuration.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data folder.
        #[arg(long, default_value = "./wabridge-data")]
        data: PathBuf,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// TOML file with settings.
        #[arg(long, env = "WABRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Administration: tenants and users.
    Admin {
        /// TOML file with settings.
        #[arg(long, env = "WABRIDGE_CONFIG")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run the sandbox (a local stand-in for Meta) alone.
    Sandbox(SandboxArgs),
    /// List every setting with its default.
    Settings,
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Where to send webhooks (the app's /webhooks/whatsapp).
    #[arg(long)]
    webhook_url: Option<String>,
    /// App secret webhooks are signed with (default: sandbox-app-secret).
    #[arg(long, env = "META_APP_SECRET")]
    app_secret: Option<String>,
    /// Verify token for the webhook handshake (default: sandbox-verify-token).
    #[arg(long, env = "META_VERIFY_TOKEN")]
    verify_token: Option<String>,
    /// App id (default: 1000000000000001).
    #[arg(long)]
    app_id: Option<String>,
    /// Embedded Signup configuration id (default: 2000000000000002).
    #[arg(long)]
    config_id: Option<String>,
    /// File the sandbox keeps its state in.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Decide reviews at once and retry webhooks within milliseconds (for tests).
    #[arg(long)]
    fast: bool,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a tenant; prints its id.
    CreateTenant {
        /// The business's name.
        #[arg(long)]
        name: String,
    },
    /// Create a user. The password comes from WABRIDGE_NEW_PASSWORD or the first line of stdin.
    CreateUser {
        /// E-mail address (the sign-in name).
        #[arg(long)]
        email: String,
        /// Name shown in the UI.
        #[arg(long)]
        name: String,
        /// owner, agent or support.
        #[arg(long)]
        role: String,
        /// Tenant id (owners and agents).
        #[arg(long)]
        tenant: Option<i64>,
    },
    /// List tenants with their users.
    ListTenants,
    /// Attach a WhatsApp Business Account and one of its numbers to a tenant (what onboarding
    /// does after Embedded Signup). The business token comes from WABRIDGE_WABA_TOKEN, if set,
    /// and is stored sealed with WABRIDGE_ENCRYPTION_KEY.
    AttachNumber {
        /// Tenant id.
        #[arg(long)]
        tenant: i64,
        /// WhatsApp Business Account id.
        #[arg(long)]
        waba_id: String,
        /// Phone number id (Meta's, not the number itself).
        #[arg(long)]
        phone_number_id: String,
        /// The number as displayed, e.g. "+49 30 123456".
        #[arg(long)]
        display_number: Option<String>,
        /// Business portfolio id.
        #[arg(long)]
        business_id: Option<String>,
    },
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

/// The database URL alone, for commands that need no Meta settings.
fn database_url(config: Option<&std::path::Path>) -> anyhow::Result<String> {
    let text = match config {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(url);
    }
    if let Some(url) = text
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.iter().find(|(k, _)| k.eq_ignore_ascii_case("DATABASE_URL")).and_then(|(_, v)| v.as_str().map(str::to_owned)))
    {
        return Ok(url);
    }
    Ok(SETTINGS.iter().find(|s| s.name == "DATABASE_URL").and_then(|s| s.default).unwrap_or_default().to_owned())
}

async fn open_migrated(url: &str) -> anyhow::Result<Db> {
    let db = Db::open(url).await?;
    db.migrate().await?;
    Ok(db)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let settings = Settings::load(config.as_deref())?;
            init_logging(&settings.log, &settings.log_format);
            let app = Application::build(settings).await?;
            tracing::info!(addr = %app.local_addr(), "wabridge listening");
            app.run_until(shutdown_signal()).await
        }
        Command::Demo { listen, data } => run_demo(listen, data).await,
        Command::Sandbox(args) => run_sandbox(args).await,
        Command::Migrate { config } => {
            let db = open_migrated(&database_url(config.as_deref())?).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { config, command } => {
            let db = open_migrated(&database_url(config.as_deref())?).await?;
            let result = match command {
                AdminCommand::AttachNumber { tenant, waba_id, phone_number_id, display_number, business_id } => {
                    let number = NumberToAttach { tenant, waba_id, phone_number_id, display_number, business_id };
                    attach_number(&db, config.as_deref(), number).await
                }
                command => admin(&db, command).await,
            };
            db.close().await;
            result
        }
        Command::Settings => {
            for s in SETTINGS {
                println!("{:<28} {:<44} {}", s.name, s.default.map(|d| if d.is_empty() { "(empty)" } else { d }).unwrap_or("(required)"), s.help);
            }
            Ok(())
        }
    }
}

async fn run_demo(listen: SocketAddr, data: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let mut sandbox_config = SandboxConfig::demo(None, Some(data.join("sandbox.json")));
    if let Ok(secret) = std::env::var("META_APP_SECRET") {
        sandbox_config.app_secret = secret;
    }
    if let Ok(token) = std::env::var("META_VERIFY_TOKEN") {
        sandbox_config.verify_token = token;
    }
    let sandbox = Sandbox::start(sandbox_config.clone()).await?;
    let meta = BTreeMap::from([
        ("META_APP_ID", sandbox_config.app_id.clone()),
        ("META_APP_SECRET", sandbox_config.app_secret.clone()),
        ("META_CONFIG_ID", sandbox_config.config_id.clone()),
        ("META_VERIFY_TOKEN", sandbox_config.verify_token.clone()),
        ("META_GRAPH_URL", sandbox.base_url()),
        ("META_SDK_URL", sandbox.sdk_url()),
        ("META_SIGNUP_ORIGINS", sandbox.origin()),
    ]);
    let mut settings = crate::demo::settings(listen, &data, &meta)?;
    settings.sandbox_url = Some(sandbox.control_url());
    init_logging(&settings.log, &settings.log_format);
    let db = open_migrated(&settings.database_url).await?;
    let clock = Clock::default();
    crate::demo::seed(&db, clock.now_ms()).await?;
    let app = Application::with_db(settings, db, clock).await?;
    let addr = app.local_addr();
    sandbox.set_webhook_url(Some(format!("http://{addr}/webhooks/whatsapp")));
    println!("wabridge demo: http://{addr}/");
    println!("  Meta is played by the built-in sandbox: {}", sandbox.base_url());
    println!("  play the customers at {}", sandbox.control_url());
    println!("  tenant \"{}\": {} (owner)", crate::demo::DEMO_TENANT, crate::demo::DEMO_OWNER);
    println!("  support staff: {}", crate::demo::DEMO_SUPPORT);
    println!("  password for both: {}", crate::demo::DEMO_PASSWORD);
    println!("  data: {}", data.display());
    let served = app.run_until(shutdown_signal()).await;
    sandbox.shutdown().await;
    served
}

async fn run_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    init_logging(&std::env::var("WABRIDGE_LOG").unwrap_or_else(|_| "info".to_owned()), "auto");
    let mut config = SandboxConfig::demo(args.webhook_url, args.state);
    config.listen = args.listen;
    if let Some(secret) = args.app_secret {
        config.app_secret = secret;
    }
    if let Some(token) = args.verify_token {
        config.verify_token = token;
    }
    if let Some(id) = args.app_id {
        config.app_id = id;
    }
    if let Some(id) = args.config_id {
        config.config_id = id;
    }
    if args.fast {
        let tests = SandboxConfig::for_tests(None);
        config.delays = tests.delays;
        config.webhooks = tests.webhooks;
        config.statuses = tests.statuses;
    }
    let sandbox = Sandbox::start(config.clone()).await?;
    println!("wabridge sandbox: {}", sandbox.base_url());
    println!("  META_GRAPH_URL={}", sandbox.base_url());
    println!("  META_SDK_URL={}", sandbox.sdk_url());
    println!("  META_SIGNUP_ORIGINS={}", sandbox.origin());
    println!("  META_APP_ID={} META_CONFIG_ID={}", config.app_id, config.config_id);
    println!("  control API and customer page: {}", sandbox.control_url());
    shutdown_signal().await;
    sandbox.shutdown().await;
    Ok(())
}

fn read_new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("WABRIDGE_NEW_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprintln!("password (input is shown; prefer WABRIDGE_NEW_PASSWORD):");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn admin(db: &Db, command: AdminCommand) -> anyhow::Result<()> {
    let now = Clock::default().now_ms();
    match command {
        AdminCommand::CreateTenant { name } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty() && name.len() <= accounts::MAX_NAME, "the name must have 1 to {} characters", accounts::MAX_NAME);
            let id = accounts_store::create_tenant(db, name, now).await?;
            println!("{}", id.0);
        }
        AdminCommand::CreateUser { email, name, role, tenant } => {
            let role = Role::parse(&role).context("role must be owner, agent or support")?;
            let email = accounts::normalize_email(&email).map_err(|_| anyhow::anyhow!("not an e-mail address"))?;
            let name = name.trim();
            anyhow::ensure!(!name.is_empty() && name.len() <= accounts::MAX_NAME, "the name must have 1 to {} characters", accounts::MAX_NAME);
            let pw = read_new_password()?;
            anyhow::ensure!(
                (accounts::MIN_PASSWORD..=accounts::MAX_PASSWORD).contains(&pw.chars().count()),
                "the password must have {} to {} characters",
                accounts::MIN_PASSWORD,
                accounts::MAX_PASSWORD
            );
            let hash = password::hash(pw).await?;
            let id = accounts_store::create_user(db, tenant.map(TenantId), &email, name, &hash, role, now).await?;
            println!("{}", id.0);
        }
        AdminCommand::AttachNumber { .. } => anyhow::bail!("attach-number is handled before"),
        AdminCommand::ListTenants => {
            for t in accounts_store::all_tenants(db).await? {
                println!("{}\t{}", t.id.0, t.name);
                for u in accounts_store::tenant_users(db, t.id).await? {
                    println!("\t{}\t{}\t{}", u.id.0, u.role, u.email);
                }
            }
        }
    }
    Ok(())
}

/// A setting read like `database_url`: the environment, then the TOML file.
fn raw_setting(config: Option<&std::path::Path>, name: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(v));
    }
    let Some(path) = config else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str().map(str::to_owned))))
}

struct NumberToAttach {
    tenant: i64,
    waba_id: String,
    phone_number_id: String,
    display_number: Option<String>,
    business_id: Option<String>,
}

async fn attach_number(db: &Db, config: Option<&std::path::Path>, n: NumberToAttach) -> anyhow::Result<()> {
    use crate::onboarding::store::{Attachment, NUMBER_CONNECTED, attach};
    let tenant = TenantId(n.tenant);
    anyhow::ensure!(accounts_store::tenant(db, tenant).await?.is_some(), "no tenant with id {}", n.tenant);
    let (waba_id, phone_number_id) = (n.waba_id.trim(), n.phone_number_id.trim());
    anyhow::ensure!(!waba_id.is_empty() && !phone_number_id.is_empty(), "--waba-id and --phone-number-id must not be empty");
    let token_ciphertext = match std::env::var("WABRIDGE_WABA_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        Some(token) => {
            let key = raw_setting(config, "WABRIDGE_ENCRYPTION_KEY")?
                .filter(|k| !k.trim().is_empty())
                .context("WABRIDGE_ENCRYPTION_KEY is needed to store the token sealed")?;
            let keyring = crate::crypto::Keyring::parse(&key).map_err(|e| anyhow::anyhow!("WABRIDGE_ENCRYPTION_KEY: {e}"))?;
            Some(keyring.seal(token.trim().as_bytes(), &format!("waba-token:{waba_id}")))
        }
        None => None,
    };
    let attachment = Attachment {
        waba_id,
        business_id: n.business_id.as_deref(),
        phone_number_id,
        display_phone_number: n.display_number.as_deref(),
        token_ciphertext,
        status: NUMBER_CONNECTED,
    };
    attach(db, tenant, &attachment, Clock::default().now_ms()).await?;
    println!("{phone_number_id}");
    Ok(())
}
