//! Outbound messages (`POST /<PHONE_NUMBER_ID>/messages`) in Meta's JSON shape.
//!
//! The types serialize to exactly the body Meta expects and deserialize from it, so the sandbox
//! can read what the client sends.

use serde::{Deserialize, Serialize};

fn whatsapp() -> String {
    "whatsapp".to_owned()
}

/// Who a message goes to: a phone number, a BSUID, or both (Meta then uses the phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A phone number (digits, optionally with `+`).
    Phone(String),
    /// A business-scoped user id (`CC.<id>`).
    UserId(String),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Always `whatsapp`.
    #[serde(default = "whatsapp")]
    pub messaging_product: String,
    /// `individual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    /// The phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The BSUID, when sending to a username user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Quote an earlier message (`context.message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// Echoed in status webhooks; wabridge puts the outbox id here (at most 512 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// The content, tagged by `type`.
    #[serde(flatten)]
    pub content: OutboundContent,
}

impl OutboundMessage {
    /// A message with `content` to `recipient`.
    pub fn new(recipient: Recipient, content: OutboundContent) -> Self {
        let (to, user_id) = match recipient {
            Recipient::Phone(p) => (Some(p), None),
            Recipient::UserId(u) => (None, Some(u)),
        };
        Self {
            messaging_product: whatsapp(),
            recipient_type: Some("individual".to_owned()),
            to,
            recipient: user_id,
            context: None,
            biz_opaque_callback_data: None,
            content,
        }
    }

    /// A text message.
    pub fn text(recipient: Recipient, body: impl Into<String>) -> Self {
        Self::new(
            recipient,
            OutboundContent::Text {
                text: TextBody {
                    body: body.into(),
                    preview_url: false,
                },
            },
        )
    }

    /// A template message.
    pub fn template(recipient: Recipient, template: TemplateMessage) -> Self {
        Self::new(recipient, OutboundContent::Template { template })
    }

    /// Quotes the message `wamid`.
    pub fn reply_to(mut self, wamid: impl Into<String>) -> Self {
        self.context = Some(ReplyContext {
            message_id: wamid.into(),
        });
        self
    }

    /// Sets `biz_opaque_callback_data`.
    pub fn with_callback_data(mut self, data: impl Into<String>) -> Self {
        self.biz_opaque_callback_data = Some(data.into());
        self
    }
}

/// `context` of an outbound reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// The wamid being answered.
    pub message_id: String,
}

/// The content of an outbound message; serialises as `"type": "<kind>", "<kind>": {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    /// Free-form text (at most 4096 characters).
    Text {
        /// The text.
        text: TextBody,
    },
    /// An approved template.
    Template {
        /// The template and its parameters.
        template: TemplateMessage,
    },
    /// An image.
    Image {
        /// The image.
        image: MediaRef,
    },
    /// An audio file.
    Audio {
        /// The audio.
        audio: MediaRef,
    },
    /// A video.
    Video {
        /// The video.
        video: MediaRef,
    },
    /// A document.
    Document {
        /// The document.
        document: MediaRef,
    },
    /// A sticker (webp).
    Sticker {
        /// The sticker.
        sticker: MediaRef,
    },
    /// A location pin.
    Location {
        /// The location.
        location: LocationBody,
    },
    /// Contact cards.
    Contacts {
        /// The cards.
        contacts: Vec<ContactCard>,
    },
    /// Reply buttons or a list.
    Interactive {
        /// The interactive message.
        interactive: InteractiveBody,
    },
    /// A reaction to a message (empty emoji removes it).
    Reaction {
        /// The reaction.
        reaction: ReactionBody,
    },
}

/// `text` of a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextBody {
    /// The text.
    pub body: String,
    /// Render a link preview.
    #[serde(default)]
    pub preview_url: bool,
}

/// A media object by uploaded `id` or public `link`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaRef {
    /// An id from the media upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An https URL Meta fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Caption (image, video, document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name (document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl MediaRef {
    /// Media uploaded earlier.
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// Media Meta downloads from `url`.
    pub fn link(url: impl Into<String>) -> Self {
        Self {
            link: Some(url.into()),
            ..Self::default()
        }
    }

    /// Adds a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Adds a file name.
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }
}

/// `location` of a location message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationBody {
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// Place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A contact card to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// The name (`formatted_name` is required by Meta).
    pub name: ContactName,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhone>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ContactEmail>,
}

/// The name on a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactName {
    /// The full name as shown.
    pub formatted_name: String,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// A phone number on a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactPhone {
    /// The number.
    pub phone: String,
    /// `CELL`, `HOME`, `WORK` …
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The WhatsApp id (adds a "message" button).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

/// An e-mail address on a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactEmail {
    /// The address.
    pub email: String,
    /// `HOME` or `WORK`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `reaction` of a reaction message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionBody {
    /// The wamid reacted to.
    pub message_id: String,
    /// The emoji; empty removes the reaction.
    pub emoji: String,
}

/// `template` of a template message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMessage {
    /// The template name.
    pub name: String,
    /// The language.
    pub language: TemplateLanguage,
    /// Parameters by component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

/// `template.language`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateLanguage {
    /// E.g. `de`, `en_US`.
    pub code: String,
}

impl TemplateMessage {
    /// A template without parameters.
    pub fn new(name: impl Into<String>, language: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            language: TemplateLanguage {
                code: language.into(),
            },
            components: Vec::new(),
        }
    }

    /// Adds a body with named text parameters (`{{customer_name}}` …).
    pub fn with_named_body<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.components.push(TemplateComponent::body(
            params
                .into_iter()
                .map(|(k, v)| TemplateParameter::named_text(k, v))
                .collect(),
        ));
        self
    }

    /// Adds a body with positional text parameters (`{{1}}` …).
    pub fn with_positional_body<V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = V>,
    ) -> Self {
        self.components.push(TemplateComponent::body(
            params.into_iter().map(TemplateParameter::text).collect(),
        ));
        self
    }

    /// Sets the payload of the quick-reply button at `index`.
    pub fn with_quick_reply_payload(mut self, index: u32, payload: impl Into<String>) -> Self {
        self.components.push(TemplateComponent {
            kind: "button".to_owned(),
            sub_type: Some("quick_reply".to_owned()),
            index: Some(index.to_string()),
            parameters: vec![TemplateParameter::payload(payload)],
        });
        self
    }

    /// Adds any component.
    pub fn with_component(mut self, component: TemplateComponent) -> Self {
        self.components.push(component);
        self
    }
}

/// A component's parameters (`header`, `body` or `button`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateComponent {
    /// `header`, `body` or `button`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For buttons: `quick_reply`, `url`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// For buttons: the button's position, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The parameters.
    #[serde(default)]
    pub parameters: Vec<TemplateParameter>,
}

impl TemplateComponent {
    /// A `body` component.
    pub fn body(parameters: Vec<TemplateParameter>) -> Self {
        Self {
            kind: "body".to_owned(),
            sub_type: None,
            index: None,
            parameters,
        }
    }

    /// A `header` component.
    pub fn header(parameters: Vec<TemplateParameter>) -> Self {
        Self {
            kind: "header".to_owned(),
            ..Self::body(parameters)
        }
    }
}

/// One template parameter; `parameter_name` is set for named templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TemplateParameter {
    /// `text`, `payload`, `currency`, `date_time`, `image`, `document`, `video`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The placeholder's name in a `NAMED` template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_name: Option<String>,
    /// For `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// For `payload` (quick-reply buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// For `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaRef>,
    /// For `document`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<MediaRef>,
    /// For `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaRef>,
    /// For `currency`: `{fallback_value, code, amount_1000}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<serde_json::Value>,
    /// For `date_time`: `{fallback_value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<serde_json::Value>,
}

impl TemplateParameter {
    /// A positional text parameter.
    pub fn text(value: impl Into<String>) -> Self {
        Self {
            kind: "text".to_owned(),
            text: Some(value.into()),
            ..Self::default()
        }
    }

    /// A named text parameter.
    pub fn named_text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            parameter_name: Some(name.into()),
            ..Self::text(value)
        }
    }

    /// A quick-reply button payload.
    pub fn payload(value: impl Into<String>) -> Self {
        Self {
            kind: "payload".to_owned(),
            payload: Some(value.into()),
            ..Self::default()
        }
    }

    /// A header image.
    pub fn image(media: MediaRef) -> Self {
        Self {
            kind: "image".to_owned(),
            image: Some(media),
            ..Self::default()
        }
    }
}

/// `interactive` of an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractiveBody {
    /// `button` or `list`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional text header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    /// The body text.
    pub body: InteractiveText,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<InteractiveText>,
    /// Buttons or list sections.
    pub action: InteractiveAction,
}

/// A text header of an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractiveHeader {
    /// `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The header text.
    pub text: String,
}

/// A `{ "text": … }` object (body, footer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractiveText {
    /// The text.
    pub text: String,
}

/// The action of an interactive message: reply buttons, or a list button and sections.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InteractiveAction {
    /// Up to three reply buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ReplyButton>,
    /// The list's button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// The list's sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<ListSection>,
}

/// A reply button (`{"type": "reply", "reply": {id, title}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// `reply`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The id and title.
    pub reply: ButtonReply,
}

/// The id (returned when tapped) and title of a reply button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReply {
    /// Returned in the `button_reply` webhook.
    pub id: String,
    /// At most 20 characters.
    pub title: String,
}

/// A section of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// Required when there is more than one section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// A row of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// Returned in the `list_reply` webhook.
    pub id: String,
    /// At most 24 characters.
    pub title: String,
    /// At most 72 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl InteractiveBody {
    /// A message with up to three reply buttons given as `(id, title)`.
    pub fn buttons(body: impl Into<String>, buttons: &[(&str, &str)]) -> Self {
        Self {
            kind: "button".to_owned(),
            header: None,
            body: InteractiveText { text: body.into() },
            footer: None,
            action: InteractiveAction {
                buttons: buttons
                    .iter()
                    .map(|(id, title)| ReplyButton {
                        kind: "reply".to_owned(),
                        reply: ButtonReply {
                            id: (*id).to_owned(),
                            title: (*title).to_owned(),
                        },
                    })
                    .collect(),
                ..InteractiveAction::default()
            },
        }
    }

    /// A list message opened by `button`.
    pub fn list(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: Vec<ListSection>,
    ) -> Self {
        Self {
            kind: "list".to_owned(),
            header: None,
            body: InteractiveText { text: body.into() },
            footer: None,
            action: InteractiveAction {
                button: Some(button.into()),
                sections,
                ..InteractiveAction::default()
            },
        }
    }
}

/// The body of a mark-as-read request, optionally showing a typing indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    /// `whatsapp`.
    pub messaging_product: String,
    /// `read`.
    pub status: String,
    /// The wamid of the customer's message.
    pub message_id: String,
    /// `{"type": "text"}` to show "typing…" for up to 25 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing_indicator: Option<TypingIndicator>,
}

/// A typing indicator (`text` is the only type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingIndicator {
    /// `text`.
    #[serde(rename = "type")]
    pub kind: String,
}
