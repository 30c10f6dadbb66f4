//! A local stand-in for Meta's WhatsApp Business Platform: the Graph API endpoints wabridge
//! uses, Embedded Signup (a JS SDK shim and its popup), a webhook sender that signs, batches and
//! retries like Meta, simulated customers, verification after configurable delays, failure
//! injection and a control API (see the crate's README).

mod clock;
mod config;
mod control;
pub mod client;
mod errors;
mod graph;
mod ids;
mod messages;
mod pricing;
mod reviews;
mod samples;
mod signup;
mod templates;
mod webhooks;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use client::ControlClient;
pub use config::{Delay, Delays, PairLimit, SandboxConfig, StatusTiming, WebhookSettings};
pub use control::api::*;

/// What can go wrong when starting or stopping the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file exists but cannot be read or understood.
    #[error("cannot load sandbox state from {path}: {reason}")]
    State {
        /// The state file.
        path: std::path::PathBuf,
        /// The cause.
        reason: String,
    },
    /// The HTTP client for webhooks could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// A control-client call failed.
    #[error("sandbox control call failed: {0}")]
    Control(String),
}

/// Shared state of a running sandbox.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub base_url: String,
    world: Mutex<world::World>,
    pub http: reqwest::Client,
    /// Wakes the webhook sender when updates are queued or settings change.
    pub webhook_wake: Notify,
    /// Wakes the scheduler when a timed event is added.
    pub schedule_wake: Notify,
    /// Wakes the persister after a change.
    pub save_wake: Notify,
}

impl Shared {
    /// Locks the world; a poisoned lock is still usable because every mutation is small.
    pub fn world(&self) -> MutexGuard<'_, world::World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks the state as changed so that it is saved soon, and wakes the workers.
    pub fn changed(&self) {
        self.save_wake.notify_one();
        self.webhook_wake.notify_one();
        self.schedule_wake.notify_one();
    }
}

/// A running sandbox: its HTTP server and workers, stopped by [`Sandbox::shutdown`].
pub struct Sandbox {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds the listen address, loads or seeds the state and starts the server and workers.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, Error> {
        // reqwest with `rustls-no-provider` needs a process-wide provider even for plain http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr: config.listen, source })?;
        let base_url = format!("http://{addr}");
        let world = world::World::load_or_new(&config)?;
        let http = reqwest::Client::builder()
            .timeout(config.webhooks.timeout)
            .connect_timeout(config.webhooks.timeout)
            .build()?;
        let shared = Arc::new(Shared {
            config,
            base_url,
            world: Mutex::new(world),
            http,
            webhook_wake: Notify::new(),
            schedule_wake: Notify::new(),
            save_wake: Notify::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let app = graph::router(shared.clone());
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(%err, "sandbox server stopped");
            }
        });
        let workers = vec![
            tokio::spawn(webhooks::sender(shared.clone(), stop_rx.clone())),
            tokio::spawn(reviews::scheduler(shared.clone(), stop_rx.clone())),
            tokio::spawn(world::persister(shared.clone(), stop_rx)),
        ];
        tracing::info!(url = %shared.base_url, "sandbox listening");
        Ok(Sandbox { shared, stop, server, workers })
    }

    /// The Graph API base URL (`META_GRAPH_URL`); Graph paths are `/v26.0/...` below it.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The URL of the Facebook JS SDK shim (`META_SDK_URL`).
    pub fn sdk_url(&self) -> String {
        format!("{}/en_US/sdk.js", self.shared.base_url)
    }

    /// The origin the signup popup posts its messages from (`META_SIGNUP_ORIGINS`).
    pub fn origin(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The base URL of the control API.
    pub fn control_url(&self) -> String {
        format!("{}/_sandbox", self.shared.base_url)
    }

    /// A client for the control API of this sandbox.
    pub fn control(&self) -> ControlClient {
        ControlClient::new(self.control_url())
    }

    /// Points the webhook sender at a new callback URL (it verifies it first), or stops sending.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.world().set_webhook_url(url);
        self.shared.changed();
    }

    /// Stops the server and workers and saves the state one last time.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        for worker in self.workers {
            let _ = worker.await;
        }
        world::save_now(&self.shared);
    }
}
