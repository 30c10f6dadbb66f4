//! The `pricing` object of status webhooks, by Meta's per-message pricing rules (PMP since
//! 2025-07-01): templates are charged by category on delivery, except utility templates inside
//! an open customer service window; non-template messages are free service messages; every
//! message inside a free entry point window is free. From `paid_service_from` (2026-10-01,
//! announced by Meta) service messages and in-window utility templates are charged; the sandbox
//! reports them as `type: regular` (assumption, configurable).

use serde_json::{Value, json};

/// Pricing of one outbound message.
pub struct Pricing {
    pub r#type: &'static str,
    pub category: String,
}

/// Decides `type` and `category` for a message.
pub fn price(template_category: Option<&str>, in_window: bool, in_fep: bool, sent_ms: i64, paid_service_from: i64) -> Pricing {
    let category = match template_category {
        Some(c) => c.to_ascii_lowercase(),
        None => "service".to_string(),
    };
    let charged_service = sent_ms / 1000 >= paid_service_from;
    let r#type = if in_fep {
        "free_entry_point"
    } else {
        match category.as_str() {
            "service" if !charged_service => "free_customer_service",
            "utility" if in_window && !charged_service => "free_customer_service",
            _ => "regular",
        }
    };
    Pricing { r#type, category }
}

/// The webhook `pricing` object.
pub fn pricing_json(pricing_type: &str, category: &str) -> Value {
    json!({
        "billable": pricing_type == "regular",
        "pricing_model": "PMP",
        "type": pricing_type,
        "category": category,
    })
}
