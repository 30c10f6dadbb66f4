//! The buildable application: binds a listener (port 0 in tests), serves the router, stops
//! gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use std::time::Duration;

use tokio::sync::watch;
use wabridge_cloud_api::{GraphClient, GraphConfig};

use crate::outbox::worker::OutboxWorker;

use crate::clock::Clock;
use crate::ingest::Registry;
use crate::ingest::journal::Journal;
use crate::ingest::processor::{POSTGRES_PROCESSORS, Processor};
use crate::live::LiveHub;
use crate::store::Engine;
use crate::web::metrics::Metrics;
use crate::config::Settings;
use crate::store::Db;
use crate::web::{self, AppParts, AppState};

/// A wabridge server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    stop: watch::Sender<bool>,
}

impl Application {
    /// Opens and migrates the database, then binds the listen address.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = Db::open(&settings.database_url).await?;
        db.migrate().await?;
        Application::with_db(settings, db, Clock::default()).await
    }

    /// Binds with an already opened (and migrated) database and a given clock.
    pub async fn with_db(settings: Settings, db: Db, clock: Clock) -> anyhow::Result<Application> {
        let registry = Registry::standard_with(settings.rate_card.clone());
        Application::with_registry(settings, db, clock, registry).await
    }

    /// Like [`Application::with_db`], with the given webhook subscriptions (tests add failing
    /// handlers to see retries).
    pub async fn with_registry(settings: Settings, db: Db, clock: Clock, registry: Registry) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.listen).await.with_context(|| format!("cannot listen on {}", settings.listen))?;
        let product = Arc::from(settings.product_name.as_str());
        let (stop, shutdown) = watch::channel(false);
        let journal = Journal::start(db.clone(), clock.clone());
        let live = LiveHub::default();
        let metrics: Arc<Metrics> = Arc::default();
        let mut processor = Processor::new(db.clone(), clock.clone(), registry, live.clone(), metrics.clone()).with_feed(journal.feed.clone());
        processor.start_toaster(&journal, shutdown.clone());
        // SQLite has one writer: one processor. PostgreSQL's processors claim disjoint
        // batches (SKIP LOCKED), so each instance runs several.
        if db.engine() == Engine::Postgres {
            for _ in 0..POSTGRES_PROCESSORS {
                tokio::spawn(processor.clone().run(journal.committed.clone(), shutdown.clone()));
            }
        } else {
            processor.spawn_on_own_thread(journal.committed.clone(), shutdown.clone());
        }
        tokio::spawn(crate::ingest::retention::run(db.clone(), clock.clone(), settings.journal_retention_days, shutdown.clone()));
        if settings.media_retention_days > 0 {
            tokio::spawn(crate::inbox::media::run_expiry(db.clone(), settings.media.clone(), clock.clone(), settings.media_retention_days, shutdown.clone()));
        }
        if db.engine() == Engine::Postgres {
            tokio::spawn(crate::live::run_pg_listener(db.clone(), live.clone(), journal.committed.clone(), shutdown.clone()));
        }
        let mut graph_config = GraphConfig::new(settings.meta.graph_url.clone(), settings.meta.graph_version.clone());
        graph_config.timeout = Duration::from_secs(settings.graph_timeout_secs);
        let graph = GraphClient::new(graph_config)?;
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let worker = OutboxWorker {
            db: db.clone(),
            clock: clock.clone(),
            graph: graph.clone(),
            keyring: settings.keyring.clone(),
            live: live.clone(),
            metrics: metrics.clone(),
            throughput: settings.number_throughput,
            media: settings.media.clone(),
        };
        for _ in 0..settings.outbox_workers {
            tokio::spawn(worker.clone().run(outbox_wake.clone(), shutdown.clone()));
        }
        // Customers' files are fetched as they arrive (Meta keeps them seven days); two at a
        // time, so that one large download does not hold up the pictures behind it.
        let fetcher = crate::inbox::media::MediaFetcher {
            db: db.clone(),
            clock: clock.clone(),
            graph: graph.clone(),
            keyring: settings.keyring.clone(),
            store: settings.media.clone(),
            metrics: metrics.clone(),
        };
        for _ in 0..crate::inbox::media::FETCHERS {
            tokio::spawn(fetcher.clone().run(shutdown.clone()));
        }
        let callbacks = crate::api::callbacks::CallbackWorker { db: db.clone(), clock: clock.clone(), keyring: settings.keyring.clone() };
        tokio::spawn(callbacks.run(Arc::new(tokio::sync::Notify::new()), shutdown.clone()));
        let sync_every = Duration::from_secs(settings.template_sync_secs);
        if let Some(relay) = settings.smtp_url.as_deref().and_then(|u| crate::mail::SmtpRelay::parse(u, &settings.mail_from)) {
            tokio::spawn(crate::mail::run(db.clone(), clock.clone(), relay, shutdown.clone()));
        }
        let settings = Arc::new(settings);
        tokio::spawn(crate::onboarding::poller::run(db.clone(), clock.clone(), settings.clone(), graph.clone(), live.clone(), shutdown.clone()));
        let state = AppState::new(AppParts { db, settings, metrics, clock, product, journal, live, shutdown, graph, outbox_wake, media: fetcher });
        tokio::spawn(crate::templates::sync::run(state.clone(), sync_every, state.shutdown.clone()));
        Ok(Application { listener, state, stop })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.state.settings.listen)
    }

    /// The shared state (tests reach the database and clock through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let router = web::router(self.state.clone());
        let stop = self.stop;
        let shutdown = async move {
            shutdown.await;
            // Live streams and workers end first, so that open streams do not hold the
            // graceful shutdown forever.
            let _ = stop.send(true);
        };
        axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await?;
        self.state.db.close().await;
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
