//! wabridge: a WhatsApp Business Platform channel for every tenant of a SaaS application.
//!
//! Split by feature (`accounts`, `integrations`, `onboarding`, `support`), on thin shared
//! infrastructure (`store`, `web`, `config`).

pub mod accounts;
pub mod api;
pub mod app;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod inbox;
pub mod ingest;
pub mod integrations;
pub mod live;
pub mod mail;
pub mod notifications;
pub mod onboarding;
pub mod ops;
pub mod outbox;
pub mod store;
pub mod support;
pub mod templates;
pub mod web;
