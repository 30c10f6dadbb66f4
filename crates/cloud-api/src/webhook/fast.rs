//! The fast path of [`super::parse_webhook`]: the bodies Meta sends most — `messages` changes
//! with text messages, statuses, contacts and metadata — read in one pass straight into the
//! typed structs, without the JSON tree the tolerant parse builds, reads out and frees.
//!
//! Every struct here denies keys it does not name, and every scalar is read by the same
//! lenient readers as the tolerant parse (`json::de`). So a body the fast path accepts yields
//! exactly what the tolerant parse would; anything else — another field, another message
//! type, a key it does not know, a duplicate key, a list where an object belongs — makes it
//! give up, and the tolerant parse takes the body (tested on every conformance body and fuzz
//! input: `tests/api/webhooks.rs`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::raw::RawJson;
use super::{Change, ChangeValue, Entry, WebhookBody, WebhookField};
use super::{
    Contact, Context, Conversation, Message, MessageContent, MessagesValue, Metadata, Pricing,
    ReferredProduct, Status, StatusKind, WebhookError,
};
use crate::json::de::{opt_bool, opt_i64, opt_string};

/// The body, or `None` when the tolerant parse has to take it.
pub(super) fn parse(text: &str) -> Option<WebhookBody> {
    let Obj(body) = serde_json::from_str::<Obj<Body>>(text).ok()?;
    let shared: Arc<str> = Arc::from(text);
    let body_entries = body.entry.unwrap_or_default();
    let mut entries = Vec::with_capacity(body_entries.len());
    for (e, Obj(entry)) in body_entries.into_iter().enumerate() {
        let entry_changes = entry.changes.unwrap_or_default();
        let mut changes = Vec::with_capacity(entry_changes.len());
        for (c, Obj(change)) in entry_changes.into_iter().enumerate() {
            if change.field.as_deref() != Some("messages") {
                return None;
            }
            let Obj(value) = change.value?;
            let raw_messages = value.messages.unwrap_or_default();
            let messages = raw_messages
                .iter()
                .map(|m| serde_json::from_str::<Obj<FMessage>>(m.get()).ok().and_then(|Obj(m)| m.into_message()))
                .collect::<Option<Vec<Message>>>()?;
            changes.push(Change {
                field: WebhookField::Messages,
                field_inferred: false,
                value: ChangeValue::Messages(MessagesValue {
                    messaging_product: value.messaging_product,
                    metadata: value.metadata.map(|Obj(m)| Metadata {
                        display_phone_number: m.display_phone_number,
                        phone_number_id: m.phone_number_id,
                    }),
                    contacts: value.contacts.unwrap_or_default().into_iter().map(|Obj(c)| c.into_contact()).collect(),
                    messages,
                    statuses: value.statuses.unwrap_or_default().into_iter().map(|Obj(s)| s.into_status()).collect(),
                    errors: errors(value.errors),
                }),
                raw_value: RawJson::in_body(shared.clone(), e, c),
                messages_json: raw_messages,
            });
        }
        entries.push(Entry { id: entry.id, time: entry.time, changes });
    }
    Some(WebhookBody { object: body.object, entries })
}

/// A struct read only from a JSON object: serde's derive also reads a struct from an array,
/// by position, where the tolerant parse sees no object at all.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Obj<T>, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = Obj<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "opt_string")]
    object: Option<String>,
    #[serde(default)]
    entry: Option<Vec<Obj<FEntry>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FEntry {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    time: Option<i64>,
    #[serde(default)]
    changes: Option<Vec<Obj<FChange>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FChange {
    #[serde(default, deserialize_with = "opt_string")]
    field: Option<String>,
    #[serde(default)]
    value: Option<Obj<FMessagesValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FMessagesValue {
    #[serde(default, deserialize_with = "opt_string")]
    messaging_product: Option<String>,
    #[serde(default)]
    metadata: Option<Obj<FMetadata>>,
    #[serde(default)]
    contacts: Option<Vec<Obj<FContact>>>,
    /// Kept as text: the inbox stores each message as Meta sent it.
    #[serde(default)]
    messages: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    statuses: Option<Vec<Obj<FStatus>>>,
    #[serde(default)]
    errors: Option<Vec<Obj<FError>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FMetadata {
    #[serde(default, deserialize_with = "opt_string")]
    display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FContact {
    #[serde(default)]
    profile: Option<Obj<FProfile>>,
    #[serde(default, deserialize_with = "opt_string")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    parent_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    identity_key_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FProfile {
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    username: Option<String>,
}

impl FContact {
    fn into_contact(self) -> Contact {
        let (name, username) = self.profile.map_or((None, None), |Obj(p)| (p.name, p.username));
        Contact {
            name,
            username,
            wa_id: self.wa_id,
            user_id: self.user_id,
            parent_user_id: self.parent_user_id,
            identity_key_hash: self.identity_key_hash,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FError {
    #[serde(default, deserialize_with = "opt_i64")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    title: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<Obj<FErrorData>>,
    #[serde(default, deserialize_with = "opt_string")]
    details: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    href: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FErrorData {
    #[serde(default, deserialize_with = "opt_string")]
    details: Option<String>,
}

fn errors(errors: Option<Vec<Obj<FError>>>) -> Vec<WebhookError> {
    errors
        .unwrap_or_default()
        .into_iter()
        .map(|Obj(e)| WebhookError {
            code: e.code,
            title: e.title,
            message: e.message,
            details: e.error_data.and_then(|Obj(d)| d.details).or(e.details),
            href: e.href,
        })
        .collect()
}

/// A text message; any other type is the tolerant parse's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FMessage {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    from: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    from_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    from_parent_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    type_name: Option<String>,
    #[serde(default)]
    text: Option<Obj<FText>>,
    #[serde(default)]
    context: Option<Obj<FContext>>,
    #[serde(default)]
    errors: Option<Vec<Obj<FError>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FText {
    #[serde(default, deserialize_with = "opt_string")]
    body: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FContext {
    #[serde(default, deserialize_with = "opt_string")]
    from: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    forwarded: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    frequently_forwarded: Option<bool>,
    #[serde(default)]
    referred_product: Option<Obj<FReferredProduct>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FReferredProduct {
    #[serde(default, deserialize_with = "opt_string")]
    catalog_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    product_retailer_id: Option<String>,
}

impl FMessage {
    /// The message, or `None` when it is not a text message.
    fn into_message(self) -> Option<Message> {
        if self.type_name.as_deref() != Some("text") {
            return None;
        }
        Some(Message {
            id: self.id,
            from: self.from,
            from_user_id: self.from_user_id,
            from_parent_user_id: self.from_parent_user_id,
            timestamp: self.timestamp,
            content: MessageContent::Text { body: self.text.and_then(|Obj(t)| t.body).unwrap_or_default() },
            type_name: self.type_name,
            context: self.context.map(|Obj(c)| Context {
                from: c.from,
                id: c.id,
                forwarded: c.forwarded.unwrap_or(false),
                frequently_forwarded: c.frequently_forwarded.unwrap_or(false),
                referred_product: c.referred_product.map(|Obj(p)| ReferredProduct {
                    catalog_id: p.catalog_id,
                    product_retailer_id: p.product_retailer_id,
                }),
            }),
            referral: None,
            errors: errors(self.errors),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FStatus {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    parent_recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    recipient_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    recipient_participant_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    conversation: Option<Obj<FConversation>>,
    #[serde(default)]
    pricing: Option<Obj<FPricing>>,
    #[serde(default)]
    errors: Option<Vec<Obj<FError>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FConversation {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    expiration_timestamp: Option<i64>,
    #[serde(default)]
    origin: Option<Obj<FOrigin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FOrigin {
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    origin_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FPricing {
    #[serde(default, deserialize_with = "opt_bool")]
    billable: Option<bool>,
    #[serde(default, deserialize_with = "opt_string")]
    pricing_model: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    pricing_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    category: Option<String>,
}

impl FStatus {
    fn into_status(self) -> Status {
        Status {
            id: self.id,
            status: self.status.map(|s| StatusKind::parse(&s)),
            timestamp: self.timestamp,
            recipient_id: self.recipient_id,
            recipient_user_id: self.recipient_user_id,
            parent_recipient_user_id: self.parent_recipient_user_id,
            recipient_type: self.recipient_type,
            recipient_participant_id: self.recipient_participant_id,
            biz_opaque_callback_data: self.biz_opaque_callback_data,
            conversation: self.conversation.map(|Obj(c)| Conversation {
                id: c.id,
                expiration_timestamp: c.expiration_timestamp,
                origin_type: c.origin.and_then(|Obj(o)| o.origin_type),
            }),
            pricing: self.pricing.map(|Obj(p)| Pricing {
                billable: p.billable,
                pricing_model: p.pricing_model,
                pricing_type: p.pricing_type,
                category: p.category,
            }),
            errors: errors(self.errors),
        }
    }
}
