//! Ingestion: the webhook road from Meta to the features.
//!
//! `POST /webhooks/whatsapp` checks the signature on the raw bytes, hands the body to the
//! [`journal::Journal`] (group commit, fsync) and answers 200 only once it is durable. The
//! [`processor`] then reads the journal in order, routes each change to its tenant and hands it
//! to every handler subscribed to its `field` — each inside its own savepoint, so one failing
//! handler is retried on its own without undoing the others or blocking other tenants.

pub mod endpoint;
pub mod feed;
pub mod journal;
pub mod processor;
pub mod retention;
pub mod toaster;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wabridge_cloud_api::webhook::ChangeRef;

use crate::accounts::TenantId;
use crate::live::NewEvent;
use crate::store::Tx;

/// One change of a journaled body, with the tenant it belongs to.
#[derive(Clone, Copy)]
pub struct RoutedChange<'a> {
    /// Journal entry id.
    pub journal_id: i64,
    /// Position of the change in the body (entries flattened).
    pub change_index: i64,
    /// The tenant owning the number or WABA.
    pub tenant: TenantId,
    /// The change and its entry.
    pub change: ChangeRef<'a>,
    /// When the body was received (Unix ms).
    pub received_at: i64,
    /// When it is applied (Unix ms).
    pub now: i64,
}

/// What a handler asks for besides its own rows: live events to publish after commit.
#[derive(Default)]
pub struct Effects {
    /// Events to store and publish.
    pub events: Vec<NewEvent>,
    /// Which journal entries had their events published ahead ([`ChangeHandler::ahead`], the
    /// toaster): a handler stores their rows without those events.
    pub published_ahead: PublishedAhead,
}

/// The journal entries whose events the toaster published: on SQLite every one up to
/// `through`, but those of its turns that failed (their events come from the processor after
/// its commit); on PostgreSQL those named in `entries`.
#[derive(Clone, Debug, Default)]
pub struct PublishedAhead {
    /// Up to this id (0: none).
    pub through: i64,
    /// Ranges of ids (inclusive) of toaster turns that failed.
    pub failed: Vec<(i64, i64)>,
    /// Entries published one by one (PostgreSQL's toaster), ascending.
    pub entries: Vec<i64>,
}

impl PublishedAhead {
    /// Whether the events of this journal entry were published ahead.
    pub fn covers(&self, journal_id: i64) -> bool {
        (journal_id <= self.through && !self.failed.iter().any(|&(first, last)| (first..=last).contains(&journal_id)))
            || self.entries.binary_search(&journal_id).is_ok()
    }
}

/// The future a handler returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// The future of the events a handler publishes ahead.
pub type AheadFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Vec<NewEvent>>> + Send + 'a>>;

/// A feature's reaction to one change. It must be idempotent: Meta delivers at least once,
/// and a retried handler sees the change again.
pub trait ChangeHandler: Send + Sync + 'static {
    /// Stable name (stored with retries).
    fn name(&self) -> &'static str;
    /// Applies the change inside the processor's transaction.
    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a>;

    /// Applies consecutive changes of one field, in journal order, as if [`apply`] had been
    /// called for each. Handlers on the hot path (`messages`) override it with set-wise
    /// statements — a few per batch instead of several per message — and implement `apply`
    /// as this over one change, so that both paths are the same code. If it fails, the
    /// processor applies the changes one by one, each in its own savepoint.
    ///
    /// [`apply`]: ChangeHandler::apply
    fn apply_all<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>], effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            for change in changes {
                self.apply(tx, change, effects).await?;
            }
            Ok(())
        })
    }

    /// Whether someone is watching for this handler's events (the toast of a customer's
    /// message): the [`toaster`] then asks it for them ([`ChangeHandler::ahead`]) as soon as a
    /// body is durable, and publishes them before the processor applies the body — which may
    /// be a batch or more later (on SQLite's one writer; behind a backlog on either).
    fn publishes_ahead(&self) -> bool {
        false
    }

    /// The events of consecutive changes of one field to publish now, before they are applied;
    /// `tx` only reads (on SQLite, a reader's; on PostgreSQL the toaster's own, in which it
    /// stores the events). Their `apply_all` later stores the rows without
    /// these events (`Effects::published_ahead`), and must not repeat them for a change
    /// it was handed twice (Meta's redeliveries).
    fn ahead<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>]) -> AheadFuture<'a> {
        let _ = (tx, changes);
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Which handlers subscribed to which webhook `field`.
#[derive(Clone, Default)]
pub struct Registry {
    by_field: HashMap<String, Vec<Arc<dyn ChangeHandler>>>,
}

impl Registry {
    /// Subscribes `handler` to `field` (e.g. `messages`).
    pub fn subscribe(mut self, field: &str, handler: Arc<dyn ChangeHandler>) -> Registry {
        self.by_field.entry(field.to_owned()).or_default().push(handler);
        self
    }

    /// The handlers of a field.
    pub fn handlers(&self, field: &str) -> &[Arc<dyn ChangeHandler>] {
        self.by_field.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether some handler publishes ahead (a toaster then runs).
    pub fn publishes_ahead(&self) -> bool {
        self.by_field.values().flatten().any(|h| h.publishes_ahead())
    }

    /// A handler by name (for retries).
    pub fn by_name(&self, field: &str, name: &str) -> Option<Arc<dyn ChangeHandler>> {
        self.handlers(field).iter().find(|h| h.name() == name).cloned()
    }

    /// The features' subscriptions, costs at the built-in rate card.
    pub fn standard() -> Registry {
        Registry::standard_with(Arc::new(crate::billing::RateCard::builtin()))
    }

    /// The features' subscriptions, costs at the given rate card.
    pub fn standard_with(rate_card: Arc<crate::billing::RateCard>) -> Registry {
        let templates: Arc<dyn ChangeHandler> = Arc::new(crate::templates::handler::TemplateHandler);
        let registry = Registry::default()
            .subscribe("messages", Arc::new(crate::inbox::handler::InboxHandler))
            .subscribe("messages", Arc::new(crate::notifications::InboundMessageNotifier::default()))
            .subscribe("messages", Arc::new(crate::billing::CostRecorder { card: rate_card }))
            .subscribe("messages", Arc::new(crate::api::callbacks::CallbackEvents))
            .subscribe("message_template_status_update", templates.clone())
            .subscribe("template_category_update", templates.clone())
            .subscribe("message_template_quality_update", templates);
        crate::onboarding::webhooks::subscribe(registry)
    }
}
