//! The `messages` field: inbound messages, statuses of sent messages, contacts and errors.

use serde_json::Value;

use crate::json::{array, boolean, float, get, int, object, string};

/// The `value` of a `messages` change: what customers sent and what happened to what we sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessagesValue {
    /// Always `whatsapp` when present.
    pub messaging_product: Option<String>,
    /// The business number the change belongs to.
    pub metadata: Option<Metadata>,
    /// The customers the messages or statuses concern.
    pub contacts: Vec<Contact>,
    /// Inbound messages.
    pub messages: Vec<Message>,
    /// Status updates of messages the business sent.
    pub statuses: Vec<Status>,
    /// Errors not tied to one message.
    pub errors: Vec<WebhookError>,
}

impl MessagesValue {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            messaging_product: string(v, "messaging_product"),
            metadata: Metadata::parse_in(v),
            contacts: Contact::parse_all(v),
            messages: array(v, "messages").iter().map(Message::parse).collect(),
            statuses: array(v, "statuses").iter().map(Status::parse).collect(),
            errors: WebhookError::parse_all(v),
        }
    }

    /// The contact entry that describes the sender of `message` (by BSUID, then phone), or the
    /// only contact when there is exactly one.
    pub fn contact_for(&self, message: &Message) -> Option<&Contact> {
        let by_user = message.from_user_id.as_deref().and_then(|uid| {
            self.contacts
                .iter()
                .find(|c| c.user_id.as_deref() == Some(uid))
        });
        let by_phone = || {
            message
                .from
                .as_deref()
                .filter(|f| !f.is_empty())
                .and_then(|from| {
                    self.contacts
                        .iter()
                        .find(|c| c.wa_id.as_deref() == Some(from))
                })
        };
        by_user
            .or_else(by_phone)
            .or(match self.contacts.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    }
}

impl MessagesValue {
    /// The contact entry describing the recipient of a status (BSUID first, then phone).
    pub fn contact_for_status(&self, status: &Status) -> Option<&Contact> {
        let by_user = status.recipient_user_id.as_deref().and_then(|uid| {
            self.contacts
                .iter()
                .find(|c| c.user_id.as_deref() == Some(uid))
        });
        by_user.or_else(|| {
            status
                .recipient_id
                .as_deref()
                .and_then(|r| self.contacts.iter().find(|c| c.wa_id.as_deref() == Some(r)))
        })
    }
}

/// The business phone number a change belongs to (`value.metadata`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// The number as displayed, e.g. `15550783881`.
    pub display_phone_number: Option<String>,
    /// The phone number id wabridge routes by.
    pub phone_number_id: Option<String>,
}

impl Metadata {
    pub(crate) fn parse_in(v: &Value) -> Option<Self> {
        object(v, "metadata").map(|m| Self {
            display_phone_number: string(m, "display_phone_number"),
            phone_number_id: string(m, "phone_number_id"),
        })
    }
}

/// A customer as a `contacts[]` entry describes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    /// The WhatsApp profile name.
    pub name: Option<String>,
    /// The WhatsApp username (`profile.username`), when the customer has one.
    pub username: Option<String>,
    /// The phone number; missing for username users whose number is withheld.
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID).
    pub user_id: Option<String>,
    /// The parent BSUID for managed businesses.
    pub parent_user_id: Option<String>,
    /// The identity key hash, if identity checks are enabled.
    pub identity_key_hash: Option<String>,
}

impl Contact {
    pub(crate) fn parse(v: &Value) -> Self {
        let profile = object(v, "profile");
        Self {
            name: profile.and_then(|p| string(p, "name")),
            username: profile.and_then(|p| string(p, "username")),
            wa_id: string(v, "wa_id"),
            user_id: string(v, "user_id"),
            parent_user_id: string(v, "parent_user_id"),
            identity_key_hash: string(v, "identity_key_hash"),
        }
    }

    pub(crate) fn parse_all(v: &Value) -> Vec<Self> {
        array(v, "contacts").iter().map(Self::parse).collect()
    }
}

/// An error Meta reports inside a webhook (`errors[]` of a value, message or status).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookError {
    /// Meta's error code, see [`crate::error::explain`].
    pub code: Option<i64>,
    /// A short title.
    pub title: Option<String>,
    /// Meta's message.
    pub message: Option<String>,
    /// `error_data.details` (or a top-level `details`).
    pub details: Option<String>,
    /// A link to Meta's error documentation.
    pub href: Option<String>,
}

impl WebhookError {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            code: int(v, "code"),
            title: string(v, "title"),
            message: string(v, "message"),
            details: object(v, "error_data")
                .and_then(|d| string(d, "details"))
                .or_else(|| string(v, "details")),
            href: string(v, "href"),
        }
    }

    pub(crate) fn parse_all(v: &Value) -> Vec<Self> {
        array(v, "errors").iter().map(Self::parse).collect()
    }
}

/// One inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message id (wamid); peers' test bodies sometimes lack it.
    pub id: Option<String>,
    /// The sender's phone number; missing for username users.
    pub from: Option<String>,
    /// The sender's BSUID.
    pub from_user_id: Option<String>,
    /// The sender's parent BSUID.
    pub from_parent_user_id: Option<String>,
    /// Unix seconds (sent as a string by Meta, as a number by some peers).
    pub timestamp: Option<i64>,
    /// The `type` as sent; `None` when the key is missing.
    pub type_name: Option<String>,
    /// The typed content.
    pub content: MessageContent,
    /// Reply, forward and product context.
    pub context: Option<Context>,
    /// Click-to-WhatsApp ad referral.
    pub referral: Option<Referral>,
    /// Message-level errors (e.g. 131051 for unsupported types).
    pub errors: Vec<WebhookError>,
}

impl Message {
    pub(crate) fn parse(v: &Value) -> Self {
        let type_name = string(v, "type");
        Self {
            id: string(v, "id"),
            from: string(v, "from"),
            from_user_id: string(v, "from_user_id"),
            from_parent_user_id: string(v, "from_parent_user_id"),
            timestamp: int(v, "timestamp"),
            content: MessageContent::parse(type_name.as_deref(), v),
            type_name,
            context: object(v, "context").map(Context::parse),
            referral: object(v, "referral").map(Referral::parse),
            errors: WebhookError::parse_all(v),
        }
    }

    /// The key wabridge stores a customer under: the BSUID when present, the phone otherwise.
    pub fn customer_key(&self) -> Option<&str> {
        self.from_user_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.from.as_deref().filter(|s| !s.is_empty()))
    }
}

/// The content of a message, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// `text`.
    Text {
        /// The text.
        body: String,
    },
    /// `image`.
    Image(Media),
    /// `audio`; `voice` is set for voice notes.
    Audio(Media),
    /// `video`.
    Video(Media),
    /// `document`.
    Document(Media),
    /// `sticker`.
    Sticker(Media),
    /// `location`.
    Location(Location),
    /// `contacts`: contact cards the customer shared.
    Contacts(Vec<SharedContact>),
    /// `interactive`: a reply to buttons, a list or a flow.
    Interactive(Interactive),
    /// `button`: a quick-reply tap on a template.
    Button {
        /// The payload we set on the button.
        payload: Option<String>,
        /// The button's label.
        text: Option<String>,
    },
    /// `reaction`; an empty or missing emoji removes the reaction.
    Reaction {
        /// The wamid reacted to.
        message_id: Option<String>,
        /// The emoji.
        emoji: Option<String>,
    },
    /// `order` from a catalog.
    Order(Order),
    /// `system`: the customer changed number or BSUID.
    System(SystemChange),
    /// `unsupported` (or `unknown`): a type the Cloud API does not deliver; see the errors.
    Unsupported {
        /// The real type, when Meta names it (`unsupported.type`).
        original_type: Option<String>,
    },
    /// `request_welcome`: the customer opened the chat for the first time.
    RequestWelcome,
    /// `edit`: the customer edited an earlier message.
    Edit {
        /// The wamid of the edited message.
        original_message_id: Option<String>,
        /// The new content.
        content: Box<MessageContent>,
    },
    /// `revoke`: the customer deleted an earlier message.
    Revoke {
        /// The wamid of the deleted message.
        original_message_id: Option<String>,
    },
    /// A type this crate does not model; `raw` is the content object (or `null`).
    Unknown {
        /// The `type` as sent.
        type_name: Option<String>,
        /// The object under the type's key.
        raw: Value,
    },
}

const CONTENT_KEYS: [&str; 15] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "edit",
    "revoke",
];

impl MessageContent {
    /// Parses the content of a message object `v` whose `type` is `type_name`; without a type
    /// the first known content key decides (some peers omit `type`).
    pub(crate) fn parse(type_name: Option<&str>, v: &Value) -> Self {
        let inferred;
        let ty = match type_name {
            Some(t) => t,
            None => {
                inferred = CONTENT_KEYS.iter().find(|k| get(v, k).is_some()).copied();
                match inferred {
                    Some(t) => t,
                    None => {
                        return Self::Unknown {
                            type_name: None,
                            raw: Value::Null,
                        };
                    }
                }
            }
        };
        let body = get(v, ty).cloned().unwrap_or(Value::Null);
        let c = &body;
        match ty {
            "text" => Self::Text {
                body: string(c, "body").unwrap_or_default(),
            },
            "image" => Self::Image(Media::parse(c)),
            "audio" => Self::Audio(Media::parse(c)),
            "video" => Self::Video(Media::parse(c)),
            "document" => Self::Document(Media::parse(c)),
            "sticker" => Self::Sticker(Media::parse(c)),
            "location" => Self::Location(Location::parse(c)),
            "contacts" => Self::Contacts(
                array(v, "contacts")
                    .iter()
                    .map(SharedContact::parse)
                    .collect(),
            ),
            "interactive" => Self::Interactive(Interactive::parse(c)),
            "button" => Self::Button {
                payload: string(c, "payload"),
                text: string(c, "text"),
            },
            "reaction" => Self::Reaction {
                message_id: string(c, "message_id"),
                emoji: string(c, "emoji"),
            },
            "order" => Self::Order(Order::parse(c)),
            "system" => Self::System(SystemChange::parse(c)),
            "unsupported" | "unknown" => Self::Unsupported {
                original_type: string(c, "type"),
            },
            "request_welcome" => Self::RequestWelcome,
            "edit" => {
                let inner = get(c, "message").cloned().unwrap_or(Value::Null);
                let inner_type = string(&inner, "type");
                Self::Edit {
                    original_message_id: string(c, "original_message_id"),
                    content: Box::new(Self::parse(inner_type.as_deref(), &inner)),
                }
            }
            "revoke" => Self::Revoke {
                original_message_id: string(c, "original_message_id"),
            },
            other => Self::Unknown {
                type_name: Some(other.to_owned()),
                raw: body,
            },
        }
    }

    /// The media object of an image, audio, video, document or sticker.
    pub fn media(&self) -> Option<&Media> {
        match self {
            Self::Image(m)
            | Self::Audio(m)
            | Self::Video(m)
            | Self::Document(m)
            | Self::Sticker(m) => Some(m),
            _ => None,
        }
    }

    /// The type name this content has on the wire (`text`, `image`, …).
    pub fn type_name(&self) -> Option<&str> {
        Some(match self {
            Self::Text { .. } => "text",
            Self::Image(_) => "image",
            Self::Audio(_) => "audio",
            Self::Video(_) => "video",
            Self::Document(_) => "document",
            Self::Sticker(_) => "sticker",
            Self::Location(_) => "location",
            Self::Contacts(_) => "contacts",
            Self::Interactive(_) => "interactive",
            Self::Button { .. } => "button",
            Self::Reaction { .. } => "reaction",
            Self::Order(_) => "order",
            Self::System(_) => "system",
            Self::Unsupported { .. } => "unsupported",
            Self::RequestWelcome => "request_welcome",
            Self::Edit { .. } => "edit",
            Self::Revoke { .. } => "revoke",
            Self::Unknown { type_name, .. } => return type_name.as_deref(),
        })
    }
}

/// An inbound media object; download it by `id` (or `url`) with the business token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Media {
    /// The media id for `GET /<MEDIA_ID>`.
    pub id: Option<String>,
    /// The MIME type.
    pub mime_type: Option<String>,
    /// Base64 SHA-256 of the file.
    pub sha256: Option<String>,
    /// Caption (image, video, document).
    pub caption: Option<String>,
    /// File name (document).
    pub filename: Option<String>,
    /// Direct download URL (newer payloads).
    pub url: Option<String>,
    /// Voice note (audio).
    pub voice: Option<bool>,
    /// Animated (sticker).
    pub animated: Option<bool>,
}

impl Media {
    fn parse(v: &Value) -> Self {
        Self {
            id: string(v, "id"),
            mime_type: string(v, "mime_type"),
            sha256: string(v, "sha256"),
            caption: string(v, "caption"),
            filename: string(v, "filename"),
            url: string(v, "url"),
            voice: boolean(v, "voice"),
            animated: boolean(v, "animated"),
        }
    }
}

/// A location the customer shared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    /// Latitude (not range-checked: peers send out-of-range values).
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Place name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Map URL.
    pub url: Option<String>,
}

impl Location {
    fn parse(v: &Value) -> Self {
        Self {
            latitude: float(v, "latitude"),
            longitude: float(v, "longitude"),
            name: string(v, "name"),
            address: string(v, "address"),
            url: string(v, "url"),
        }
    }
}

/// A contact card inside a `contacts` message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedContact {
    /// `name.formatted_name`.
    pub formatted_name: Option<String>,
    /// `name.first_name`.
    pub first_name: Option<String>,
    /// `name.last_name`.
    pub last_name: Option<String>,
    /// The card's phone numbers.
    pub phones: Vec<SharedPhone>,
    /// The card's e-mail addresses.
    pub emails: Vec<String>,
    /// The card as received (addresses, org, urls, birthday …).
    pub raw: Value,
}

/// A phone number on a shared contact card.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedPhone {
    /// The number as formatted by the customer.
    pub phone: Option<String>,
    /// The WhatsApp id, if the number is on WhatsApp.
    pub wa_id: Option<String>,
    /// `CELL`, `HOME`, `WORK` …
    pub kind: Option<String>,
}

impl SharedContact {
    fn parse(v: &Value) -> Self {
        let name = object(v, "name");
        Self {
            formatted_name: name.and_then(|n| string(n, "formatted_name")),
            first_name: name.and_then(|n| string(n, "first_name")),
            last_name: name.and_then(|n| string(n, "last_name")),
            phones: array(v, "phones")
                .iter()
                .map(|p| SharedPhone {
                    phone: string(p, "phone"),
                    wa_id: string(p, "wa_id"),
                    kind: string(p, "type"),
                })
                .collect(),
            emails: array(v, "emails")
                .iter()
                .filter_map(|e| string(e, "email"))
                .collect(),
            raw: v.clone(),
        }
    }
}

/// The customer's answer to an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub enum Interactive {
    /// A reply button was tapped.
    ButtonReply {
        /// The button id we set.
        id: Option<String>,
        /// The button title.
        title: Option<String>,
    },
    /// A list row was chosen.
    ListReply {
        /// The row id we set.
        id: Option<String>,
        /// The row title.
        title: Option<String>,
        /// The row description.
        description: Option<String>,
    },
    /// A flow was completed.
    NfmReply {
        /// Usually `flow`.
        name: Option<String>,
        /// Usually `Sent`.
        body: Option<String>,
        /// The flow's answer, a JSON document in a string (not validated).
        response_json: Option<String>,
    },
    /// Another interactive type (e.g. `call_permission_reply`) or none.
    Other {
        /// `interactive.type`.
        kind: Option<String>,
        /// The interactive object as received.
        raw: Value,
    },
}

impl Interactive {
    fn parse(v: &Value) -> Self {
        let kind = string(v, "type");
        let part = |k: &str| get(v, k).cloned().unwrap_or(Value::Null);
        match kind.as_deref() {
            Some("button_reply") => {
                let p = part("button_reply");
                Self::ButtonReply {
                    id: string(&p, "id"),
                    title: string(&p, "title"),
                }
            }
            Some("list_reply") => {
                let p = part("list_reply");
                Self::ListReply {
                    id: string(&p, "id"),
                    title: string(&p, "title"),
                    description: string(&p, "description"),
                }
            }
            Some("nfm_reply") => {
                let p = part("nfm_reply");
                Self::NfmReply {
                    name: string(&p, "name"),
                    body: string(&p, "body"),
                    response_json: match get(&p, "response_json") {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => Some(other.to_string()),
                        None => None,
                    },
                }
            }
            _ => Self::Other {
                kind,
                raw: v.clone(),
            },
        }
    }
}

/// An order placed from a catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    /// The catalog id.
    pub catalog_id: Option<String>,
    /// The customer's note.
    pub text: Option<String>,
    /// The ordered items.
    pub product_items: Vec<ProductItem>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductItem {
    /// The product's retailer id (SKU).
    pub product_retailer_id: Option<String>,
    /// Quantity.
    pub quantity: Option<i64>,
    /// Unit price.
    pub item_price: Option<f64>,
    /// ISO 4217 currency.
    pub currency: Option<String>,
}

impl Order {
    fn parse(v: &Value) -> Self {
        Self {
            catalog_id: string(v, "catalog_id"),
            text: string(v, "text"),
            product_items: array(v, "product_items")
                .iter()
                .map(|p| ProductItem {
                    product_retailer_id: string(p, "product_retailer_id"),
                    quantity: int(p, "quantity"),
                    item_price: float(p, "item_price"),
                    currency: string(p, "currency"),
                })
                .collect(),
        }
    }
}

/// What a `system` message reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemKind {
    /// The customer moved to a new phone number (`wa_id` is the new one).
    UserChangedNumber,
    /// The customer's BSUID changed (`user_id` is the new one).
    UserChangedUserId,
    /// Any other system type, e.g. `customer_identity_changed`.
    Other(String),
}

/// A `system` message: the customer's identity changed.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemChange {
    /// What changed; `None` when `system.type` is missing.
    pub kind: Option<SystemKind>,
    /// Meta's human-readable text.
    pub body: Option<String>,
    /// The new phone number.
    pub wa_id: Option<String>,
    /// The new BSUID.
    pub user_id: Option<String>,
    /// The new parent BSUID.
    pub parent_user_id: Option<String>,
    /// The BSUID before the change.
    pub previous_user_id: Option<String>,
    /// The parent BSUID before the change.
    pub previous_parent_user_id: Option<String>,
}

impl SystemChange {
    fn parse(v: &Value) -> Self {
        Self {
            kind: string(v, "type").map(|t| match t.as_str() {
                "user_changed_number" => SystemKind::UserChangedNumber,
                "user_changed_user_id" => SystemKind::UserChangedUserId,
                _ => SystemKind::Other(t),
            }),
            body: string(v, "body"),
            wa_id: string(v, "wa_id").or_else(|| string(v, "new_wa_id")),
            user_id: string(v, "user_id"),
            parent_user_id: string(v, "parent_user_id"),
            previous_user_id: string(v, "previous_user_id"),
            previous_parent_user_id: string(v, "previous_parent_user_id"),
        }
    }
}

/// Why a message relates to another: a reply, a forward or a product inquiry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    /// The sender of the quoted message (our business number for replies to us).
    pub from: Option<String>,
    /// The wamid of the quoted message.
    pub id: Option<String>,
    /// The message was forwarded.
    pub forwarded: bool,
    /// The message was forwarded more than five times.
    pub frequently_forwarded: bool,
    /// The product the customer asked about ("Message business" on a product).
    pub referred_product: Option<ReferredProduct>,
}

/// A catalog product a message refers to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferredProduct {
    /// The catalog id.
    pub catalog_id: Option<String>,
    /// The product's retailer id.
    pub product_retailer_id: Option<String>,
}

impl Context {
    fn parse(v: &Value) -> Self {
        Self {
            from: string(v, "from"),
            id: string(v, "id"),
            forwarded: boolean(v, "forwarded").unwrap_or(false),
            frequently_forwarded: boolean(v, "frequently_forwarded").unwrap_or(false),
            referred_product: object(v, "referred_product").map(|p| ReferredProduct {
                catalog_id: string(p, "catalog_id"),
                product_retailer_id: string(p, "product_retailer_id"),
            }),
        }
    }
}

/// A Click-to-WhatsApp ad or post the customer came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Referral {
    /// The ad's or post's URL.
    pub source_url: Option<String>,
    /// The ad's or post's id.
    pub source_id: Option<String>,
    /// `ad` or `post`.
    pub source_type: Option<String>,
    /// The ad's headline.
    pub headline: Option<String>,
    /// The ad's text.
    pub body: Option<String>,
    /// `image` or `video`.
    pub media_type: Option<String>,
    /// The image URL.
    pub image_url: Option<String>,
    /// The video URL.
    pub video_url: Option<String>,
    /// The video thumbnail URL.
    pub thumbnail_url: Option<String>,
    /// The click id for conversion tracking.
    pub ctwa_clid: Option<String>,
    /// `welcome_message.text`.
    pub welcome_message: Option<String>,
}

impl Referral {
    fn parse(v: &Value) -> Self {
        Self {
            source_url: string(v, "source_url"),
            source_id: string(v, "source_id"),
            source_type: string(v, "source_type"),
            headline: string(v, "headline"),
            body: string(v, "body"),
            media_type: string(v, "media_type"),
            image_url: string(v, "image_url"),
            video_url: string(v, "video_url"),
            thumbnail_url: string(v, "thumbnail_url"),
            ctwa_clid: string(v, "ctwa_clid"),
            welcome_message: object(v, "welcome_message").and_then(|w| string(w, "text")),
        }
    }
}

/// The state a sent message reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// Meta sent it.
    Sent,
    /// It reached the customer's device.
    Delivered,
    /// The customer read it (may come without `delivered`).
    Read,
    /// The customer played a voice message.
    Played,
    /// It failed; see the errors.
    Failed,
    /// A status this crate does not know.
    Other(String),
}

impl StatusKind {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status as Meta writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }
}

/// A status update for a message the business sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The wamid of our message.
    pub id: Option<String>,
    /// The new state; `None` when missing.
    pub status: Option<StatusKind>,
    /// Unix seconds.
    pub timestamp: Option<i64>,
    /// The recipient's phone (or group id); omitted when sent to a BSUID.
    pub recipient_id: Option<String>,
    /// The recipient's BSUID.
    pub recipient_user_id: Option<String>,
    /// The recipient's parent BSUID.
    pub parent_recipient_user_id: Option<String>,
    /// `group` for group messages.
    pub recipient_type: Option<String>,
    /// The group participant, for group messages.
    pub recipient_participant_id: Option<String>,
    /// What we put in `biz_opaque_callback_data` when sending (wabridge: the outbox id).
    pub biz_opaque_callback_data: Option<String>,
    /// The conversation (omitted from v24.0 except in free entry point windows).
    pub conversation: Option<Conversation>,
    /// How Meta bills the message.
    pub pricing: Option<Pricing>,
    /// Why it failed.
    pub errors: Vec<WebhookError>,
}

impl Status {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            id: string(v, "id"),
            status: string(v, "status").map(|s| StatusKind::parse(&s)),
            timestamp: int(v, "timestamp"),
            recipient_id: string(v, "recipient_id"),
            recipient_user_id: string(v, "recipient_user_id"),
            parent_recipient_user_id: string(v, "parent_recipient_user_id"),
            recipient_type: string(v, "recipient_type"),
            recipient_participant_id: string(v, "recipient_participant_id"),
            biz_opaque_callback_data: string(v, "biz_opaque_callback_data"),
            conversation: object(v, "conversation").map(|c| Conversation {
                id: string(c, "id"),
                expiration_timestamp: int(c, "expiration_timestamp"),
                origin_type: object(c, "origin").and_then(|o| string(o, "type")),
            }),
            pricing: object(v, "pricing").map(|p| Pricing {
                billable: boolean(p, "billable"),
                pricing_model: string(p, "pricing_model"),
                pricing_type: string(p, "type"),
                category: string(p, "category"),
            }),
            errors: WebhookError::parse_all(v),
        }
    }
}

/// The conversation a status belongs to (legacy conversation-based pricing).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    /// The conversation id.
    pub id: Option<String>,
    /// When the conversation expires, unix seconds (on `sent` only).
    pub expiration_timestamp: Option<i64>,
    /// `origin.type`, e.g. `service`, `marketing`.
    pub origin_type: Option<String>,
}

/// How Meta bills a message: category and type, never an amount.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pricing {
    /// Deprecated by Meta; use `pricing_type` and `category`.
    pub billable: Option<bool>,
    /// `PMP` (per message) or `CBP` (before July 2025).
    pub pricing_model: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point` …
    pub pricing_type: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service` …
    pub category: Option<String>,
}

/// A message the business sent from the WhatsApp Business app (coexistence echo).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEcho {
    /// The customer's phone number.
    pub to: Option<String>,
    /// The customer's BSUID.
    pub to_user_id: Option<String>,
    /// The customer's parent BSUID.
    pub to_parent_user_id: Option<String>,
    /// The message itself (`from` is the business number).
    pub message: Message,
}

impl MessageEcho {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            to: string(v, "to"),
            to_user_id: string(v, "to_user_id"),
            to_parent_user_id: string(v, "to_parent_user_id"),
            message: Message::parse(v),
        }
    }
}

/// A customer's marketing-message preference change (`user_preferences` field).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserPreference {
    /// The customer's phone.
    pub wa_id: Option<String>,
    /// The customer's BSUID.
    pub user_id: Option<String>,
    /// Meta's description.
    pub detail: Option<String>,
    /// `marketing_messages`.
    pub category: Option<String>,
    /// `stop` or `resume`.
    pub value: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<i64>,
}

impl UserPreference {
    pub(crate) fn parse(v: &Value) -> Self {
        Self {
            wa_id: string(v, "wa_id"),
            user_id: string(v, "user_id"),
            detail: string(v, "detail"),
            category: string(v, "category"),
            value: string(v, "value"),
            timestamp: int(v, "timestamp"),
        }
    }
}
