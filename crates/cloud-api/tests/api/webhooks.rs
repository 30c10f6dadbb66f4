//! Every conformance webhook body parses, and its content comes out right.

use serde_json::Value;
use wabridge_cloud_api::parse_webhook;
use wabridge_cloud_api::webhook::*;

use crate::helpers::{conformance_dir, json_files, webhook};

fn raw_str(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks the parsed body against the raw JSON, generically, for every file in the corpus:
/// counts of entries, changes, messages, statuses, echoes; ids, senders, timestamps, types,
/// statuses, pricing and error codes.
#[test]
fn every_conformance_webhook_parses_and_matches_its_json() {
    let files = json_files(&conformance_dir().join("webhooks"));
    assert!(files.len() >= 190, "corpus has only {} bodies", files.len());
    let mut messages_seen = 0;
    let mut statuses_seen = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let body = parse_webhook(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let raw_entries = raw["entry"].as_array().cloned().unwrap_or_default();
        assert_eq!(body.entries.len(), raw_entries.len(), "{name}: entries");
        for (entry, raw_entry) in body.entries.iter().zip(&raw_entries) {
            assert_eq!(entry.id, raw_str(raw_entry, "id"), "{name}: entry.id");
            let raw_changes = raw_entry["changes"].as_array().cloned().unwrap_or_default();
            assert_eq!(entry.changes.len(), raw_changes.len(), "{name}: changes");
            for (change, raw_change) in entry.changes.iter().zip(&raw_changes) {
                if let Some(f) = raw_change["field"].as_str() {
                    assert_eq!(change.field.as_str(), f, "{name}: field");
                    assert!(!change.field_inferred);
                }
                assert_eq!(
                    change.raw_value,
                    raw_change.get("value").cloned().unwrap_or(Value::Null)
                );
                let value = &raw_change["value"];
                if let ChangeValue::Messages(m) = &change.value {
                    let raw_msgs = value["messages"].as_array().cloned().unwrap_or_default();
                    assert_eq!(m.messages.len(), raw_msgs.len(), "{name}: messages");
                    for (i, (msg, raw_msg)) in m.messages.iter().zip(&raw_msgs).enumerate() {
                        messages_seen += 1;
                        check_message(&name, msg, raw_msg);
                        assert_eq!(change.raw_message(i), Some(raw_msg), "{name}: raw message");
                    }
                    let raw_sts = value["statuses"].as_array().cloned().unwrap_or_default();
                    assert_eq!(m.statuses.len(), raw_sts.len(), "{name}: statuses");
                    for (st, raw_st) in m.statuses.iter().zip(&raw_sts) {
                        statuses_seen += 1;
                        check_status(&name, st, raw_st);
                    }
                    let raw_contacts = value["contacts"].as_array().cloned().unwrap_or_default();
                    assert_eq!(m.contacts.len(), raw_contacts.len(), "{name}: contacts");
                    for (c, rc) in m.contacts.iter().zip(&raw_contacts) {
                        assert_eq!(c.wa_id, raw_str(rc, "wa_id"), "{name}");
                        assert_eq!(c.user_id, raw_str(rc, "user_id"), "{name}");
                        assert_eq!(c.name, raw_str(&rc["profile"], "name"), "{name}");
                        assert_eq!(c.username, raw_str(&rc["profile"], "username"), "{name}");
                    }
                    let raw_errs = value["errors"].as_array().cloned().unwrap_or_default();
                    assert_eq!(m.errors.len(), raw_errs.len(), "{name}: value errors");
                    assert_eq!(
                        m.metadata
                            .as_ref()
                            .and_then(|md| md.phone_number_id.clone()),
                        raw_str(&value["metadata"], "phone_number_id"),
                        "{name}: phone_number_id"
                    );
                } else if raw_change.get("field").is_none() {
                    assert!(value.get("messages").is_none() && value.get("statuses").is_none());
                }
                if let ChangeValue::SmbMessageEchoes(e) = &change.value {
                    let raw_echoes = value["message_echoes"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    assert_eq!(e.message_echoes.len(), raw_echoes.len(), "{name}: echoes");
                    for (echo, raw_echo) in e.message_echoes.iter().zip(&raw_echoes) {
                        assert_eq!(echo.to, raw_str(raw_echo, "to"), "{name}");
                        assert_eq!(echo.to_user_id, raw_str(raw_echo, "to_user_id"), "{name}");
                        check_message(&name, &echo.message, raw_echo);
                    }
                }
            }
        }
    }
    assert!(messages_seen >= 90, "only {messages_seen} messages");
    assert!(statuses_seen >= 45, "only {statuses_seen} statuses");
}

fn check_message(name: &str, msg: &Message, raw: &Value) {
    assert_eq!(msg.id, raw_str(raw, "id"), "{name}: id");
    assert_eq!(msg.from, raw_str(raw, "from"), "{name}: from");
    assert_eq!(
        msg.from_user_id,
        raw_str(raw, "from_user_id"),
        "{name}: from_user_id"
    );
    let ts = raw_str(raw, "timestamp").map(|t| t.parse::<i64>().unwrap());
    assert_eq!(msg.timestamp, ts, "{name}: timestamp");
    assert_eq!(msg.type_name, raw_str(raw, "type"), "{name}: type");
    let raw_errs = raw["errors"].as_array().map_or(0, Vec::len);
    assert_eq!(msg.errors.len(), raw_errs, "{name}: message errors");
    match raw_str(raw, "type").as_deref() {
        // Content types this crate models must never come out as Unknown.
        Some("unknown") => assert_eq!(msg.content.type_name(), Some("unsupported"), "{name}"),
        Some(t) if t != "interactive" || raw.get("interactive").is_some() => {
            assert_eq!(msg.content.type_name(), Some(t), "{name}: content type");
            assert!(
                !matches!(msg.content, MessageContent::Unknown { .. }),
                "{name}: unknown {t}"
            );
        }
        Some(_) => {}
        None => assert!(
            !matches!(msg.content, MessageContent::Unknown { .. }),
            "{name}: untyped"
        ),
    }
    if let MessageContent::Text { body } = &msg.content {
        assert_eq!(
            Some(body.clone()),
            raw_str(&raw["text"], "body"),
            "{name}: text"
        );
    }
}

fn check_status(name: &str, st: &Status, raw: &Value) {
    assert_eq!(st.id, raw_str(raw, "id"), "{name}");
    assert_eq!(
        st.status.as_ref().map(|s| s.as_str().to_owned()),
        raw_str(raw, "status"),
        "{name}"
    );
    let ts = raw_str(raw, "timestamp").map(|t| t.parse::<i64>().unwrap());
    assert_eq!(st.timestamp, ts, "{name}: timestamp");
    assert_eq!(st.recipient_id, raw_str(raw, "recipient_id"), "{name}");
    assert_eq!(
        st.recipient_user_id,
        raw_str(raw, "recipient_user_id"),
        "{name}"
    );
    assert_eq!(
        st.biz_opaque_callback_data,
        raw_str(raw, "biz_opaque_callback_data"),
        "{name}"
    );
    assert_eq!(
        st.pricing.as_ref().and_then(|p| p.category.clone()),
        raw_str(&raw["pricing"], "category"),
        "{name}"
    );
    let codes: Vec<Option<i64>> = raw["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["code"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(
        st.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        codes,
        "{name}"
    );
}

fn only_change(rel: &str) -> (Entry, Change) {
    let body = webhook(rel);
    let c = body
        .changes()
        .next()
        .unwrap_or_else(|| panic!("{rel}: no change"));
    (c.entry.clone(), c.change.clone())
}

fn messages_value(rel: &str) -> MessagesValue {
    match only_change(rel).1.value {
        ChangeValue::Messages(m) => m,
        other => panic!("{rel}: not messages: {other:?}"),
    }
}

fn only_message(rel: &str) -> Message {
    let m = messages_value(rel);
    assert_eq!(m.messages.len(), 1, "{rel}");
    m.messages.into_iter().next().unwrap()
}

fn only_status(rel: &str) -> Status {
    let m = messages_value(rel);
    assert_eq!(m.statuses.len(), 1, "{rel}");
    m.statuses.into_iter().next().unwrap()
}

#[test]
fn text_message_with_routing_contact_and_bsuid() {
    let body = webhook("pywa/message__text.json");
    assert_eq!(body.object.as_deref(), Some("whatsapp_business_account"));
    let change = body.changes().next().unwrap();
    assert_eq!(change.field(), &WebhookField::Messages);
    assert_eq!(change.phone_number_id(), Some("1122334455667"));
    assert_eq!(change.waba_id(), Some("1234567890987654321"));
    let msg = &change.messages()[0];
    assert_eq!(msg.id.as_deref(), Some("wamid.xyzxyz"));
    assert_eq!(msg.from.as_deref(), Some("972987654321"));
    assert_eq!(msg.timestamp, Some(1697043223));
    assert_eq!(
        msg.content,
        MessageContent::Text {
            body: "Body Text".into()
        }
    );
    let contact = change.messages_value().unwrap().contact_for(msg).unwrap();
    assert_eq!(contact.name.as_deref(), Some("Test Name"));
    assert_eq!(contact.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(
        contact.parent_user_id.as_deref(),
        Some("US.ENT.11815799212886844830")
    );
}

#[test]
fn username_user_without_phone() {
    let m =
        messages_value("whatsapp-api-js/incoming_message__with_username__has_parent_bsuid.json");
    let msg = &m.messages[0];
    assert_eq!(msg.from, None);
    assert_eq!(msg.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(
        msg.from_parent_user_id.as_deref(),
        Some("US.ENT.506847293015824")
    );
    assert_eq!(msg.customer_key(), Some("US.13491208655302741918"));
    let c = m.contact_for(msg).unwrap();
    assert_eq!(c.username.as_deref(), Some("@testusername"));
    assert_eq!(c.wa_id, None);

    let msg = only_message("chatwoot/messages_text_bsuid_only_no_from.json");
    assert_eq!(msg.from, None);
    assert!(msg.from_user_id.is_some());
    assert_eq!(msg.customer_key(), msg.from_user_id.as_deref());
}

#[test]
fn media_messages() {
    let m = only_message("pywa/message__image.json");
    let MessageContent::Image(img) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(img.id.as_deref(), Some("65463453"));
    assert_eq!(img.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(img.sha256.as_deref(), Some("4654+8g="));

    let m = only_message("pywa/message__voice.json");
    let MessageContent::Audio(a) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(a.voice, Some(true));
    assert_eq!(a.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));

    let m = only_message("pywa/message__audio.json");
    assert!(matches!(&m.content, MessageContent::Audio(a) if a.voice != Some(true)));

    let m = only_message("pywa/message__video.json");
    let MessageContent::Video(v) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(v.caption.as_deref(), Some("caption"));
    assert_eq!(v.id.as_deref(), Some("765756756"));
    assert!(m.context.as_ref().unwrap().forwarded);

    let m = only_message("pywa/message__document.json");
    let MessageContent::Document(d) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(d.filename.as_deref(), Some("filename.pdf"));
    assert_eq!(d.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        m.content.media().unwrap().caption.as_deref(),
        Some("caption")
    );

    let m = only_message("pywa/message__animated_sticker.json");
    assert!(matches!(&m.content, MessageContent::Sticker(s) if s.animated == Some(true)));
    let m = only_message("pywa/message__static_sticker.json");
    assert!(matches!(&m.content, MessageContent::Sticker(s) if s.animated == Some(false)));

    let m = only_message("pywa/message__media_with_url.json");
    assert!(
        m.content
            .media()
            .unwrap()
            .url
            .as_deref()
            .unwrap()
            .starts_with("http")
    );

    let m = only_message("chatwoot/messages_document_accented_filename.json");
    let d = m.content.media().unwrap();
    assert!(!d.filename.as_deref().unwrap().is_ascii(), "{d:?}");

    let m = only_message("chatwoot/messages_image_with_media_download_errors.json");
    assert_eq!(
        m.content.media().unwrap().caption.as_deref(),
        Some("Check out my product!")
    );
    assert_eq!(m.errors[0].code, Some(400));
    assert!(
        m.errors[0]
            .details
            .as_deref()
            .unwrap()
            .contains("ServerThrottle")
    );
}

#[test]
fn location_contacts_order() {
    let m = only_message("pywa/message__chosen_location.json");
    let MessageContent::Location(l) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(l.latitude, Some(37.4611978));
    assert_eq!(l.longitude, Some(-122.2164385));
    assert_eq!(l.name.as_deref(), Some("Facebook HQ"));
    assert!(l.url.is_some());

    // No `type` key: the content key decides; out-of-range latitude is kept as sent.
    let m = only_message("whatsapp-business-rs/location_message.json");
    assert_eq!(m.type_name, None);
    assert_eq!(m.timestamp, Some(1238838484));
    let MessageContent::Location(l) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!((l.latitude, l.longitude), (Some(-233.0), Some(40.0)));

    let m = only_message("pywa/message__contacts.json");
    let MessageContent::Contacts(cards) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(cards.len(), 3);
    assert_eq!(cards[0].formatted_name.as_deref(), Some("Chandler Bing"));
    assert_eq!(cards[0].phones[0].phone.as_deref(), Some("+1 555-555-5555"));
    assert_eq!(cards[1].phones[0].kind.as_deref(), Some("HOME"));

    let m = only_message("pywa/message__order.json");
    let MessageContent::Order(o) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(o.catalog_id.as_deref(), Some("354160437058781"));
    assert_eq!(o.product_items.len(), 3);
    assert_eq!(
        o.product_items[0].product_retailer_id.as_deref(),
        Some("HAMBURGER")
    );
    assert_eq!(o.product_items[0].quantity, Some(3));
    assert_eq!(o.product_items[0].item_price, Some(30.0));
    assert_eq!(o.product_items[0].currency.as_deref(), Some("ILS"));

    let m = only_message("whatsapp-business-rs/order_message.json");
    assert!(matches!(&m.content, MessageContent::Order(o) if !o.product_items.is_empty()));
    assert!(m.context.is_some());
}

#[test]
fn interactive_replies_and_template_buttons() {
    let m = only_message("pywa/callback_button__button.json");
    assert_eq!(
        m.content,
        MessageContent::Interactive(Interactive::ButtonReply {
            id: Some("callback_data".into()),
            title: Some("title".into())
        })
    );
    assert_eq!(
        m.context.as_ref().unwrap().id.as_deref(),
        Some("wamid.xyzxyz")
    );

    let m = only_message("pywa/callback_selection__description.json");
    assert_eq!(
        m.content,
        MessageContent::Interactive(Interactive::ListReply {
            id: Some("callback_data".into()),
            title: Some("title".into()),
            description: Some("description".into())
        })
    );

    let m = only_message("pywa/flow_completion__completion.json");
    let MessageContent::Interactive(Interactive::NfmReply {
        name,
        body,
        response_json,
    }) = &m.content
    else {
        panic!("{m:?}")
    };
    assert_eq!(name.as_deref(), Some("flow"));
    assert_eq!(body.as_deref(), Some("Sent"));
    let answer: Value = serde_json::from_str(response_json.as_deref().unwrap()).unwrap();
    assert_eq!(answer["flow_token"], "AQAAAAACS5FpgQ_cAAAAAD0QI3s.");

    let m = only_message("chatwoot/messages_interactive_nfm_reply_null_response_json.json");
    assert!(matches!(
        &m.content,
        MessageContent::Interactive(Interactive::NfmReply {
            response_json: None,
            ..
        })
    ));
    let m = only_message("chatwoot/messages_interactive_nfm_reply_invalid_response_json.json");
    assert!(
        matches!(&m.content, MessageContent::Interactive(Interactive::NfmReply { response_json: Some(s), .. }) if s == "{invalid-json")
    );

    // An interactive type this crate does not model keeps its raw object.
    let m = only_message("pywa/call_permission_update__accept.json");
    let MessageContent::Interactive(Interactive::Other { kind, raw }) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(kind.as_deref(), Some("call_permission_reply"));
    assert_eq!(raw["call_permission_reply"]["response"], "accept");

    let m = only_message("pywa/callback_button__quick_reply.json");
    assert_eq!(
        m.content,
        MessageContent::Button {
            payload: Some("callback_data".into()),
            text: Some("title".into())
        }
    );
    assert_eq!(
        m.context.as_ref().unwrap().from.as_deref(),
        Some("972123456789")
    );
    let m = only_message("pywa/callback_button__quick_reply_without_context.json");
    assert!(matches!(m.content, MessageContent::Button { .. }));
    assert!(m.context.is_none());
    assert!(m.from_user_id.is_some());

    // An interactive message with no interactive object plus a value-level error.
    let v = messages_value("pywa/message__interactive_message_with_err.json");
    assert_eq!(v.errors[0].code, Some(131000));
    assert_eq!(
        v.errors[0].details.as_deref(),
        Some("Unsupported webhook payload")
    );
    assert!(matches!(
        &v.messages[0].content,
        MessageContent::Interactive(Interactive::Other { kind: None, .. })
    ));
}

#[test]
fn reactions() {
    let m = only_message("pywa/message__reaction.json");
    assert_eq!(
        m.content,
        MessageContent::Reaction {
            message_id: Some("wamid.yzxyzx=".into()),
            emoji: Some("😮".into())
        }
    );
    let m = only_message("pywa/message__unreaction_empty.json");
    assert!(matches!(&m.content, MessageContent::Reaction { emoji: Some(e), .. } if e.is_empty()));
    let m = only_message("pywa/message__unreaction_no_emoji.json");
    assert!(matches!(
        &m.content,
        MessageContent::Reaction {
            emoji: None,
            message_id: Some(_)
        }
    ));
    let m = only_message("chatwoot/messages_reaction_without_message_id.json");
    assert!(
        matches!(&m.content, MessageContent::Reaction { emoji: Some(e), message_id: None } if e == "👍")
    );
    assert_eq!(m.id, None);
}

#[test]
fn context_forwards_replies_referrals() {
    let m = only_message("pywa/message__forwarded_many_times.json");
    assert!(m.context.as_ref().unwrap().frequently_forwarded);
    let m = only_message("pywa/message__reply.json");
    let ctx = m.context.unwrap();
    assert_eq!(ctx.id.as_deref(), Some("wamid.xyzxyz=="));
    assert!(!ctx.forwarded);

    let m = only_message("piusalfred-whatsapp/product_inquiry.json");
    let p = m.context.unwrap().referred_product.unwrap();
    assert_eq!(p.catalog_id.as_deref(), Some("CATALOG_9999"));
    assert_eq!(p.product_retailer_id.as_deref(), Some("SKU-1234"));

    let m = only_message("pywa/message__referral.json");
    let r = m.referral.unwrap();
    assert_eq!(r.source_id.as_deref(), Some("ADID"));
    assert_eq!(r.ctwa_clid.as_deref(), Some("CTWA_CLID"));
    assert_eq!(r.headline.as_deref(), Some("AD_TITLE"));
    assert_eq!(r.thumbnail_url.as_deref(), Some("RAW_THUMBNAIL_URL"));

    let m = only_message("chatwoot/messages_text_with_ctwa_referral.json");
    assert!(m.referral.is_some());
    let m = only_message("chatwoot/messages_contacts_with_ctwa_referral.json");
    assert!(m.referral.is_some());
    assert!(matches!(m.content, MessageContent::Contacts(ref c) if !c.is_empty()));
}

#[test]
fn system_unsupported_welcome_edit_revoke() {
    let m = only_message("pywa/system__phone_number_change.json");
    let MessageContent::System(s) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(s.kind, Some(SystemKind::UserChangedNumber));
    assert_eq!(s.wa_id.as_deref(), Some("972912345678"));
    assert!(s.body.as_deref().unwrap().contains("changed"));

    let m = only_message("chatwoot/messages_system_user_changed_user_id_with_parent.json");
    let MessageContent::System(s) = &m.content else {
        panic!("{m:?}")
    };
    assert_eq!(s.kind, Some(SystemKind::UserChangedUserId));
    assert_eq!(s.previous_user_id.as_deref(), Some("IN.PREVIOUSBSUID"));
    assert_eq!(s.user_id.as_deref(), Some("IN.CURRENTBSUID"));
    assert_eq!(
        s.previous_parent_user_id.as_deref(),
        Some("IN.ENT.PREVIOUSBSUID")
    );
    assert_eq!(s.parent_user_id.as_deref(), Some("IN.ENT.CURRENTBSUID"));
    assert_eq!(m.from, None);

    let m = only_message("pywa/system__identity_change.json");
    assert!(
        matches!(&m.content, MessageContent::System(s) if s.kind == Some(SystemKind::Other("customer_identity_changed".into())))
    );

    let v = messages_value("chatwoot/messages_text_and_system_in_one_change.json");
    assert_eq!(v.messages.len(), 2);
    assert!(matches!(v.messages[0].content, MessageContent::Text { .. }));
    assert!(matches!(v.messages[1].content, MessageContent::System(_)));

    let m = only_message("pywa/message__unsupported_with_type.json");
    assert_eq!(
        m.content,
        MessageContent::Unsupported {
            original_type: Some("pool".into())
        }
    );
    assert_eq!(m.errors[0].code, Some(131051));
    assert_eq!(
        m.errors[0].details.as_deref(),
        Some("Message type is currently not supported.")
    );
    let m = only_message("whatsapp-business-rs/unknown.json");
    assert_eq!(
        m.content,
        MessageContent::Unsupported {
            original_type: None
        }
    );
    assert_eq!(m.errors[0].code, Some(131051));

    let m = only_message("pywa/chat_opened__chat_opened.json");
    assert_eq!(m.content, MessageContent::RequestWelcome);
    let m = only_message("chatwoot/messages_request_welcome_without_contacts.json");
    assert_eq!(m.content, MessageContent::RequestWelcome);

    let m = only_message("pywa/edited_message__image.json");
    let MessageContent::Edit {
        original_message_id,
        content,
    } = &m.content
    else {
        panic!("{m:?}")
    };
    assert!(
        original_message_id
            .as_deref()
            .unwrap()
            .starts_with("wamid.")
    );
    assert_eq!(
        content.media().unwrap().caption.as_deref(),
        Some("Updated image caption")
    );

    let m = only_message("pywa/deleted_message__revoke.json");
    assert_eq!(
        m.content,
        MessageContent::Revoke {
            original_message_id: Some("<ORIGINAL_WHATSAPP_MESSAGE_ID>".into())
        }
    );
}

#[test]
fn several_messages_and_changes() {
    let body = webhook("piusalfred-whatsapp/multiple_change_values1.json");
    let changes: Vec<_> = body.changes().collect();
    assert_eq!(changes.len(), 3);
    let fields: Vec<_> = changes.iter().map(|c| c.field().as_str()).collect();
    assert!(
        fields.contains(&"messages") && fields.contains(&"user_preferences"),
        "{fields:?}"
    );
    let total: usize = changes.iter().map(|c| c.messages().len()).sum();
    assert!(total >= 3);
    let prefs = changes
        .iter()
        .find_map(|c| match c.value() {
            ChangeValue::UserPreferences(p) => Some(p),
            _ => None,
        })
        .unwrap();
    assert_eq!(prefs.user_preferences.len(), 2);

    let v = messages_value("piusalfred-whatsapp/multiple_messages.json");
    assert_eq!(v.messages.len(), 2);
    assert!(matches!(
        v.messages[1].content,
        MessageContent::Reaction { .. }
    ));
}

#[test]
fn statuses_of_every_kind() {
    let s = only_status("pywa/message_status__sent.json");
    assert_eq!(s.status, Some(StatusKind::Sent));
    assert_eq!(s.id.as_deref(), Some("wamid.xyzxyz"));
    assert_eq!(s.timestamp, Some(1698266945));
    assert_eq!(s.recipient_id.as_deref(), Some("972987654321"));
    let conv = s.conversation.as_ref().unwrap();
    assert_eq!(conv.expiration_timestamp, Some(1698339900));
    assert_eq!(conv.origin_type.as_deref(), Some("service"));
    let p = s.pricing.as_ref().unwrap();
    assert_eq!(p.billable, Some(true));
    assert_eq!(p.pricing_model.as_deref(), Some("CBP"));
    assert_eq!(p.category.as_deref(), Some("service"));

    assert_eq!(
        only_status("pywa/message_status__delivered.json").status,
        Some(StatusKind::Delivered)
    );
    assert_eq!(
        only_status("pywa/message_status__read.json").status,
        Some(StatusKind::Read)
    );
    assert_eq!(
        only_status("pywa/message_status__played.json").status,
        Some(StatusKind::Played)
    );

    let s = only_status("pywa/message_status__failed.json");
    assert_eq!(s.status, Some(StatusKind::Failed));
    assert_eq!(s.errors[0].code, Some(130472));
    assert!(s.errors[0].href.is_some());

    let s = only_status("cp4m/status_failed_131047_reengagement.json");
    assert_eq!(s.errors[0].code, Some(131047));
    assert!(s.errors[0].details.as_deref().unwrap().contains("24 hours"));
    assert_eq!(
        wabridge_cloud_api::error_info(s.errors[0].code.unwrap())
            .unwrap()
            .class,
        wabridge_cloud_api::ErrorClass::WindowClosed
    );

    let s = only_status("whatsapp-business-rs/message_update_failed.json");
    assert_eq!(s.timestamp, Some(12999990));
    assert_eq!(s.errors[0].code, Some(131050));
    assert_eq!(s.errors[0].message, None);

    let s = only_status("pywa/message_status__with_tracker.json");
    assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("some data"));

    let s = only_status("pywa/message_status__group.json");
    assert_eq!(s.recipient_type.as_deref(), Some("group"));
    assert!(s.recipient_participant_id.is_some());

    let v = messages_value(
        "whatsapp-api-js/delivered_status__with_username__has_parent_bsuid__was_sent_to_bsuid.json",
    );
    let s = &v.statuses[0];
    assert_eq!(s.recipient_id, None);
    assert_eq!(
        s.recipient_user_id.as_deref(),
        Some("US.13491208655302741918")
    );
    assert_eq!(
        s.parent_recipient_user_id.as_deref(),
        Some("US.ENT.506847293015824")
    );
    assert_eq!(v.contacts[0].username.as_deref(), Some("@testusername"));
    assert_eq!(
        v.contact_for_status(s).unwrap().username.as_deref(),
        Some("@testusername")
    );

    // A status without `field` (trimmed by the peer) is still recognised as `messages`.
    let (_, change) = only_change("chatwoot/statuses_delivered_minimal.json");
    assert!(change.field_inferred);
    assert_eq!(change.field, WebhookField::Messages);
}

#[test]
fn account_updates_every_event() {
    let cases = [
        ("account_deleted", AccountUpdateEvent::AccountDeleted),
        ("account_disabled", AccountUpdateEvent::DisabledUpdate),
        ("account_offboarded", AccountUpdateEvent::AccountOffboarded),
        (
            "account_reconnected",
            AccountUpdateEvent::AccountReconnected,
        ),
        (
            "account_restriction",
            AccountUpdateEvent::AccountRestriction,
        ),
        ("account_violation", AccountUpdateEvent::AccountViolation),
        ("ad_account_linked", AccountUpdateEvent::AdAccountLinked),
        (
            "authentication_international_eligibility",
            AccountUpdateEvent::AuthIntlPriceEligibilityUpdate,
        ),
        (
            "mm_api_for_wa_terms_of_service",
            AccountUpdateEvent::MmLiteTermsSigned,
        ),
        ("partner_added", AccountUpdateEvent::PartnerAdded),
        (
            "partner_app_installed",
            AccountUpdateEvent::PartnerAppInstalled,
        ),
        (
            "partner_app_uninstalled",
            AccountUpdateEvent::PartnerAppUninstalled,
        ),
        (
            "partner_led_business_verification_status",
            AccountUpdateEvent::PartnerClientCertificationStatusUpdate,
        ),
        ("partner_removed", AccountUpdateEvent::PartnerRemoved),
        (
            "partner_removed_wa_app_disconnection",
            AccountUpdateEvent::PartnerRemoved,
        ),
        (
            "pricing_tiering_update",
            AccountUpdateEvent::VolumeBasedPricingTierUpdate,
        ),
        (
            "primary_business_location_set",
            AccountUpdateEvent::BusinessPrimaryLocationCountryUpdate,
        ),
    ];
    for (file, event) in cases {
        let rel = format!("pywa/account_update__{file}.json");
        let (entry, change) = only_change(&rel);
        assert_eq!(change.field, WebhookField::AccountUpdate, "{rel}");
        assert!(entry.time.is_some(), "{rel}");
        let ChangeValue::Account(a) = &change.value else {
            panic!("{rel}")
        };
        assert_eq!(a.event.as_ref(), Some(&event), "{rel}");
    }

    // Partner events: entry.id is the partner's business, the WABA is in waba_info.
    let body = webhook("pywa/account_update__partner_app_installed.json");
    let c = body.changes().next().unwrap();
    assert_eq!(c.entry.id.as_deref(), Some("2949482758682047"));
    assert_eq!(c.waba_id(), Some("1191624265890717"));
    let ChangeValue::Account(a) = c.value() else {
        panic!()
    };
    let w = a.waba_info.as_ref().unwrap();
    assert_eq!(w.owner_business_id.as_deref(), Some("2329417887457253"));
    assert_eq!(w.partner_app_id.as_deref(), Some("5731794616896507"));
    assert_eq!(w.solution_partner_business_ids.len(), 2);

    // Events without waba_info route by entry.id.
    let body = webhook("pywa/account_update__account_deleted.json");
    assert_eq!(
        body.changes().next().unwrap().waba_id(),
        Some("102290129340398")
    );

    let account = |rel: &str| match only_change(rel).1.value {
        ChangeValue::Account(a) => a,
        other => panic!("{other:?}"),
    };
    let a = account("pywa/account_update__account_disabled.json");
    let ban = a.ban_info.unwrap();
    assert_eq!(ban.waba_ban_state.as_deref(), Some("REINSTATE"));
    assert_eq!(ban.waba_ban_date.as_deref(), Some("April 17, 2025"));
    let a = account("pywa/account_update__account_restriction.json");
    assert_eq!(a.restriction_info.len(), 2);
    assert_eq!(
        a.restriction_info[0].restriction_type.as_deref(),
        Some("RESTRICTED_BIZ_INITIATED_MESSAGING")
    );
    assert_eq!(a.restriction_info[0].expiration, Some(1641330498));
    let a = account("pywa/account_update__account_violation.json");
    assert_eq!(a.violation_type.as_deref(), Some("ADULT"));
    let a = account("pywa/account_update__partner_removed_wa_app_disconnection.json");
    let d = a.disconnection_info.unwrap();
    assert_eq!(
        (d.reason.as_deref(), d.initiated_by.as_deref()),
        (Some("PRIMARY_INACTIVITY"), Some("SYSTEM"))
    );
    let a = account("pywa/account_update__partner_led_business_verification_status.json");
    let cert = a.partner_client_certification.unwrap();
    assert_eq!(cert.status.as_deref(), Some("APPROVED"));
    assert_eq!(cert.rejection_reasons, vec!["NONE".to_owned()]);
    let a = account("pywa/account_update__primary_business_location_set.json");
    assert_eq!(a.country.as_deref(), Some("IN"));
    let a = account("pywa/account_update__ad_account_linked.json");
    assert_eq!(
        a.waba_info.unwrap().ad_account_linked.as_deref(),
        Some("980198427534243")
    );
    let a = account("pywa/account_update__pricing_tiering_update.json");
    assert_eq!(a.volume_tier_info.unwrap()["pricing_category"], "UTILITY");
    let a = account("whatsapp-business-rs/waba.json");
    assert_eq!(a.event, Some(AccountUpdateEvent::PartnerAdded));
    assert_eq!(
        a.waba_info.unwrap().waba_id.as_deref(),
        Some("495709166956424")
    );
}

#[test]
fn template_fields() {
    let t = |rel: &str| match only_change(rel).1.value {
        ChangeValue::TemplateStatus(t) => t,
        other => panic!("{other:?}"),
    };
    let a = t("pywa/template_status_update__approved.json");
    assert_eq!(a.event, Some(TemplateStatusEvent::Approved));
    assert_eq!(a.message_template_id.as_deref(), Some("1689556908129832"));
    assert_eq!(
        a.message_template_name.as_deref(),
        Some("order_confirmation")
    );
    assert_eq!(a.message_template_language.as_deref(), Some("en_US"));
    assert_eq!(a.reason.as_deref(), Some("NONE"));
    assert_eq!(a.message_template_category.as_deref(), Some("UTILITY"));
    let r = t("pywa/template_status_update__rejected.json");
    assert_eq!(r.event, Some(TemplateStatusEvent::Rejected));
    assert_eq!(r.reason.as_deref(), Some("INVALID_FORMAT"));
    assert!(
        r.rejection_reason
            .as_deref()
            .unwrap()
            .contains("parameters")
    );
    assert!(r.rejection_recommendation.is_some());
    let n = t("piusalfred-whatsapp/template_status_update_approved_without_reason.json");
    assert_eq!(n.reason, None);
    assert_eq!(n.message_template_id.as_deref(), Some("12345"));

    let ChangeValue::TemplateQuality(q) = only_change("pywa/template_quality_update__yellow.json")
        .1
        .value
    else {
        panic!()
    };
    assert_eq!(q.previous_quality_score.as_deref(), Some("GREEN"));
    assert_eq!(q.new_quality_score.as_deref(), Some("YELLOW"));
    assert_eq!(q.message_template_id.as_deref(), Some("806312974732579"));

    let ChangeValue::TemplateCategory(c) =
        only_change("pywa/template_category_update__marketing.json")
            .1
            .value
    else {
        panic!()
    };
    assert_eq!(c.new_category.as_deref(), Some("MARKETING"));
    assert_eq!(
        c.message_template_name.as_deref(),
        Some("my_message_template")
    );

    // A field this crate keeps raw: the components update, with an odd extra top-level key.
    let (_, change) = only_change("pywa/template_components_update__element.json");
    assert_eq!(change.field, WebhookField::MessageTemplateComponentsUpdate);
    assert_eq!(change.value, ChangeValue::Unknown);
    assert_eq!(change.raw_value["message_template_id"], 12345678);
}

#[test]
fn user_preferences_and_coexistence_echoes() {
    let (_, change) = only_change("pywa/user_marketing_preferences__resume.json");
    let ChangeValue::UserPreferences(p) = change.value else {
        panic!()
    };
    assert_eq!(
        p.metadata.unwrap().phone_number_id.as_deref(),
        Some("106540352242922")
    );
    let pref = &p.user_preferences[0];
    assert_eq!(pref.value.as_deref(), Some("resume"));
    assert_eq!(pref.category.as_deref(), Some("marketing_messages"));
    assert_eq!(pref.timestamp, Some(1731705721));
    assert_eq!(pref.wa_id.as_deref(), Some("16505551234"));
    let (_, change) = only_change("pywa/user_marketing_preferences__signup.json");
    assert!(
        matches!(change.value, ChangeValue::UserPreferences(ref p) if !p.user_preferences.is_empty())
    );

    let body = webhook("pywa/outgoing_message__text.json");
    let c = body.changes().next().unwrap();
    assert_eq!(c.field(), &WebhookField::SmbMessageEchoes);
    assert_eq!(c.phone_number_id(), Some("1122334455667"));
    let ChangeValue::SmbMessageEchoes(e) = c.value() else {
        panic!()
    };
    let echo = &e.message_echoes[0];
    assert_eq!(echo.to.as_deref(), Some("<WHATSAPP_USER_PHONE_NUMBER>"));
    assert_eq!(echo.to_user_id.as_deref(), Some("<BSUID>"));
    assert_eq!(echo.to_parent_user_id.as_deref(), Some("<PARENT_BSUID>"));
    assert_eq!(
        echo.message.content,
        MessageContent::Text {
            body: "Test message".into()
        }
    );

    let ChangeValue::SmbMessageEchoes(e) = only_change("pywa/outgoing_message__edit.json").1.value
    else {
        panic!()
    };
    assert!(matches!(&e.message_echoes[0].message.content,
        MessageContent::Edit { content, .. } if **content == MessageContent::Text { body: "Text was edited".into() }));
    let ChangeValue::SmbMessageEchoes(e) =
        only_change("pywa/outgoing_message__delete.json").1.value
    else {
        panic!()
    };
    assert!(matches!(
        e.message_echoes[0].message.content,
        MessageContent::Revoke { .. }
    ));

    let ChangeValue::SmbMessageEchoes(e) =
        only_change("chatwoot/smb_message_echoes_bsuid_with_empty_to.json")
            .1
            .value
    else {
        panic!()
    };
    assert_eq!(e.message_echoes[0].to.as_deref(), Some(""));
    assert_eq!(
        e.message_echoes[0].to_user_id.as_deref(),
        Some("IN.2081978709342942")
    );
}

#[test]
fn odd_envelopes_and_unknown_fields() {
    assert!(
        webhook("chatwoot/invalid_entry_is_empty_object.json")
            .entries
            .is_empty()
    );
    assert!(
        webhook("piusalfred-whatsapp/entry_empty_array.json")
            .entries
            .is_empty()
    );

    let body = webhook("chatwoot/invalid_change_is_empty_object.json");
    let c = body.changes().next().unwrap();
    assert_eq!(c.field(), &WebhookField::Missing);
    assert_eq!(c.change.raw_value, Value::Null);
    assert_eq!(c.entry.id, None);
    assert_eq!(c.phone_number_id(), None);

    let (_, change) = only_change("piusalfred-whatsapp/unrecognized_field_minimal.json");
    assert_eq!(
        change.field,
        WebhookField::Other("unknown_field_xyz".into())
    );
    assert_eq!(change.value, ChangeValue::Unknown);
    assert_eq!(change.raw_value, serde_json::json!({}));

    let (_, change) = only_change("piusalfred-whatsapp/unrecognized_field.json");
    assert_eq!(change.field, WebhookField::Other("automatic_events".into()));
    assert_eq!(change.value, ChangeValue::Unknown);
    assert_eq!(change.raw_value["details"]["key"], "value");

    let (_, change) = only_change("pywa/call_connect__user_initiated.json");
    assert_eq!(change.field, WebhookField::Calls);
    assert_eq!(change.value, ChangeValue::Unknown);
    assert!(change.raw_value.get("calls").is_some());

    let (_, change) = only_change("piusalfred-whatsapp/group_lifecycle_update.json");
    assert_eq!(
        change.field,
        WebhookField::Other("group_lifecycle_update".into())
    );

    // A messages value with only contacts, or only metadata.
    let v = messages_value("pywa/messages_without_messages_or_statuses.json");
    assert!(v.messages.is_empty() && v.statuses.is_empty());
    assert_eq!(v.contacts.len(), 1);
    let v = messages_value("cp4m/no_messages.json");
    assert!(v.messages.is_empty());

    // phone_number_id: null is absent, not an error.
    let body = webhook("chatwoot/messages_reaction_without_message_id.json");
    let c = body.changes().next().unwrap();
    assert_eq!(c.phone_number_id(), None);
    assert!(c.change.field_inferred);
    assert_eq!(c.field(), &WebhookField::Messages);

    // entry before object, numeric timestamps.
    let m = only_message("whatsapp-business-rs/text_message.json");
    assert!(m.timestamp.is_some());
}

#[test]
fn fields_absent_from_the_corpus_parse_from_metas_documented_shapes() {
    let body = |field: &str, value: Value| {
        let b = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "WABA1", "time": "1751247548", "changes": [{ "field": field, "value": value }] }]
        });
        parse_webhook(b.to_string().as_bytes()).unwrap()
    };
    let v = |b: &WebhookBody| b.changes().next().unwrap().change.value.clone();

    let b = body(
        "account_review_update",
        serde_json::json!({ "decision": "APPROVED" }),
    );
    assert_eq!(b.entries[0].time, Some(1751247548));
    assert_eq!(
        v(&b),
        ChangeValue::AccountReview(AccountReviewUpdate {
            decision: Some("APPROVED".into())
        })
    );

    let b = body(
        "phone_number_name_update",
        serde_json::json!({
        "display_phone_number": "15550783881", "decision": "REJECTED",
        "requested_verified_name": "Praxis Muster", "rejection_reason": "NAME_FORMAT_UNACCEPTABLE" }),
    );
    let ChangeValue::PhoneNumberName(n) = v(&b) else {
        panic!()
    };
    assert_eq!(n.decision.as_deref(), Some("REJECTED"));
    assert_eq!(
        n.rejection_reason.as_deref(),
        Some("NAME_FORMAT_UNACCEPTABLE")
    );
    assert_eq!(n.requested_verified_name.as_deref(), Some("Praxis Muster"));

    let b = body(
        "phone_number_quality_update",
        serde_json::json!({
        "display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE",
        "max_daily_conversations_per_business": "TIER_10K" }),
    );
    let ChangeValue::PhoneNumberQuality(q) = v(&b) else {
        panic!()
    };
    assert_eq!(q.event.as_deref(), Some("THROUGHPUT_UPGRADE"));
    assert_eq!(
        q.max_daily_conversations_per_business.as_deref(),
        Some("TIER_10K")
    );

    let b = body(
        "business_capability_update",
        serde_json::json!({
        "max_daily_conversations_per_business": -1, "max_phone_numbers_per_business": 2 }),
    );
    let ChangeValue::BusinessCapability(c) = v(&b) else {
        panic!()
    };
    assert_eq!(c.max_daily_conversations_per_business, Some(-1));
    assert_eq!(c.max_phone_numbers_per_business, Some(2));

    let b = body(
        "security",
        serde_json::json!({
        "display_phone_number": "15550783881", "event": "PIN_CHANGED", "requester": "12345" }),
    );
    let ChangeValue::Security(s) = v(&b) else {
        panic!()
    };
    assert_eq!(s.event.as_deref(), Some("PIN_CHANGED"));

    let b = body(
        "smb_app_state_sync",
        serde_json::json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
        "state_sync": [{ "type": "contact", "contact": { "full_name": "Anna Muster", "first_name": "Anna",
            "phone_number": "4915112345678" }, "action": "add", "metadata": { "timestamp": "1738787225" } }] }),
    );
    assert_eq!(
        b.changes().next().unwrap().phone_number_id(),
        Some("106540352242922")
    );
    let ChangeValue::SmbAppStateSync(s) = v(&b) else {
        panic!()
    };
    assert_eq!(s.state_sync[0].full_name.as_deref(), Some("Anna Muster"));
    assert_eq!(s.state_sync[0].action.as_deref(), Some("add"));
    assert_eq!(s.state_sync[0].timestamp, Some(1738787225));

    let b = body(
        "history",
        serde_json::json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
        "history": [{ "metadata": { "phase": 0, "chunk_order": 1, "progress": 55 },
            "threads": [{ "id": "4915112345678", "messages": [
                { "from": "4915112345678", "id": "wamid.A", "timestamp": "1738787225", "type": "text",
                  "text": { "body": "Hallo" }, "history_context": { "status": "READ" } },
                { "from": "15550783881", "to": "4915112345678", "id": "wamid.B", "timestamp": "1738787300",
                  "type": "image", "image": { "id": "77" }, "history_context": { "status": "DELIVERED" } }
            ] }] }] }),
    );
    let ChangeValue::History(h) = v(&b) else {
        panic!()
    };
    let chunk = &h.history[0];
    assert_eq!(
        (chunk.phase, chunk.chunk_order, chunk.progress),
        (Some(0), Some(1), Some(55))
    );
    let msgs = &chunk.threads[0].messages;
    assert_eq!(msgs[0].status.as_deref(), Some("READ"));
    assert_eq!(
        msgs[0].echo.message.content,
        MessageContent::Text {
            body: "Hallo".into()
        }
    );
    assert_eq!(msgs[1].echo.to.as_deref(), Some("4915112345678"));

    let b = body(
        "history",
        serde_json::json!({ "messaging_product": "whatsapp",
        "errors": [{ "code": 2593109, "title": "History sharing is turned off by the business" }] }),
    );
    let ChangeValue::History(h) = v(&b) else {
        panic!()
    };
    assert_eq!(h.errors[0].code, Some(2593109));

    // Unknown enum values and unknown message types come through raw.
    let b = body(
        "messages",
        serde_json::json!({
        "messages": [{ "from": "1", "id": "wamid.X", "timestamp": 1, "type": "hologram", "hologram": { "x": 1 } }],
        "statuses": [{ "id": "wamid.Y", "status": "teleported", "timestamp": "2" }] }),
    );
    let ChangeValue::Messages(m) = v(&b) else {
        panic!()
    };
    assert_eq!(
        m.messages[0].content,
        MessageContent::Unknown {
            type_name: Some("hologram".into()),
            raw: serde_json::json!({ "x": 1 })
        }
    );
    assert_eq!(
        m.statuses[0].status,
        Some(StatusKind::Other("teleported".into()))
    );
    let b = body(
        "account_update",
        serde_json::json!({ "event": "VERIFIED_ACCOUNT" }),
    );
    assert!(
        matches!(v(&b), ChangeValue::Account(a) if a.event == Some(AccountUpdateEvent::Other("VERIFIED_ACCOUNT".into())))
    );
    let b = body(
        "message_template_status_update",
        serde_json::json!({ "event": "NEW_EVENT", "message_template_id": "5" }),
    );
    assert!(
        matches!(v(&b), ChangeValue::TemplateStatus(t) if t.event == Some(TemplateStatusEvent::Other("NEW_EVENT".into())))
    );
}

#[test]
fn only_non_json_is_an_error() {
    assert!(parse_webhook(b"").is_err());
    assert!(parse_webhook(b"{not json").is_err());
    assert!(parse_webhook(&[0xff, 0xfe]).is_err());
    // Not UTF-8 inside a string of otherwise good JSON: the error names the place.
    let e = parse_webhook(b"{\"object\":\"wh\xc3\"}").unwrap_err();
    assert!(e.to_string().contains("line 1 column"), "{e}");
    // UTF-8 beyond ASCII, and escapes of it, arrive as sent.
    let b = parse_webhook("{\"object\":\"Grüße \\u00fc \\ud83d\\ude00 😀\"}".as_bytes()).unwrap();
    assert_eq!(b.object.as_deref(), Some("Grüße ü 😀 😀"));
    for ok in [
        "{}",
        "[]",
        "null",
        "42",
        "\"x\"",
        r#"{"entry":null}"#,
        r#"{"entry":[null,1,"x",{"changes":[null,{"field":7,"value":[]}]}]}"#,
    ] {
        parse_webhook(ok.as_bytes()).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let b = parse_webhook(br#"{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"timestamp":"abc","type":null,"text":{"body":5}}]}}]}]}"#).unwrap();
    let m = &b.changes().next().unwrap().messages()[0];
    assert_eq!(m.timestamp, None);
    assert_eq!(m.content, MessageContent::Text { body: "5".into() });
}
