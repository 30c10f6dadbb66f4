//! The sandbox's integration tests: every rule through its HTTP surface.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod graph;
mod messaging;
mod resilience;
mod reviews;
mod signup;
mod support;
mod webhooks;
