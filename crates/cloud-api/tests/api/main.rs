//! The cloud-api integration tests, one binary (each file in `tests/` would link its own).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod client;
mod errors;
mod fast_parse;
mod fuzz_corpus;
mod graph_responses;
mod helpers;
mod props;
mod signature;
mod webhooks;
