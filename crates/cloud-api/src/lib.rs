//! The WhatsApp Cloud API as types: webhook payloads, Graph API requests and responses,
//! Meta's error codes, the webhook signature check and an HTTP client.
//!
//! Everything in wabridge speaks to Meta through this crate; it has no database and no web
//! server.

#![warn(missing_docs)]

mod json;

pub mod client;
pub mod error;
pub mod signature;
pub mod webhook;

pub use client::message::{OutboundContent, OutboundMessage, Recipient, TemplateMessage};
pub use client::{AppCredentials, GraphClient, GraphConfig, Pin};
pub use error::{
    ApiError, ErrorClass, ErrorInfo, GraphError, Lang, error_info, error_key, explain,
};
pub use signature::{SIGNATURE_HEADER, SignatureError, VerificationQuery, sign, verify_signature};
pub use webhook::{WebhookBody, WebhookParseError, parse_webhook};
