#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The server's integration tests: one binary, the real router on a free port, a fresh
//! database per test. `WABRIDGE_TEST_DB=postgres` runs the same tests on PostgreSQL
//! (`WABRIDGE_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

mod accounts;
mod admin_cli;
mod api;
mod billing;
mod browser;
mod config;
mod connection;
mod crash;
mod errors;
mod helpers;
mod inbox;
mod ingest;
mod isolation;
mod live_browser;
mod mail;
mod multi;
mod onboarding;
mod onboarding_browser;
mod ops;
mod storage;
mod support;
mod templates;
