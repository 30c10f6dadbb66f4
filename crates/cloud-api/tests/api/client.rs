//! Each client call against the local mock Graph server: method, path, headers, body; and
//! Meta error bodies, 5xx, timeouts and connection failures.

use std::time::Duration;

use axum::http::Method;
use bytes::Bytes;
use secrecy::SecretString;
use serde_json::{Value, json};
use wabridge_cloud_api::client::message::*;
use wabridge_cloud_api::client::{
    AppCredentials, CodeMethod, GraphClient, GraphConfig, NewTemplate, Pin,
};
use wabridge_cloud_api::{ApiError, ErrorClass};

use crate::helpers::MockGraph;

const TOKEN: &str = "EAAG-tenant-token";

fn token() -> SecretString {
    SecretString::from(TOKEN)
}

fn app() -> AppCredentials {
    AppCredentials {
        app_id: "4242".into(),
        app_secret: SecretString::from("s3cr3t"),
    }
}

fn assert_bearer(r: &crate::helpers::Recorded) {
    assert_eq!(r.header("authorization"), Some("Bearer EAAG-tenant-token"));
}

const SENT: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"4915112345678","wa_id":"4915112345678"}],"messages":[{"id":"wamid.OUT1"}]}"#;

#[tokio::test]
async fn code_exchange_puts_secrets_in_the_query_only() {
    let mock = MockGraph::start().await;
    mock.reply(
        200,
        r#"{"access_token":"EAAB-business","token_type":"bearer"}"#,
    );
    mock.client()
        .exchange_code(&app(), &SecretString::from("AQD-code"))
        .await
        .unwrap();
    let r = mock.single();
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.path, "/v26.0/oauth/access_token");
    assert_eq!(r.query_value("client_id").as_deref(), Some("4242"));
    assert_eq!(r.query_value("client_secret").as_deref(), Some("s3cr3t"));
    assert_eq!(r.query_value("code").as_deref(), Some("AQD-code"));
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn debug_token_uses_the_app_token() {
    let mock = MockGraph::start().await;
    mock.reply_json(
        200,
        &json!({ "data": {
        "app_id": "4242", "type": "SYSTEM_USER", "is_valid": true, "expires_at": 0,
        "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
        "granular_scopes": [
            { "scope": "whatsapp_business_management", "target_ids": ["111", 222] },
            { "scope": "whatsapp_business_messaging", "target_ids": ["111"] },
            { "scope": "business_management" }
        ] } }),
    );
    let info = mock.client().debug_token(&app(), &token()).await.unwrap();
    assert_eq!(info.waba_ids(), vec!["111", "222"]);
    assert_eq!(info.expires_at, Some(0));
    assert!(info.has_scope("business_management"));
    let r = mock.single();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::GET, "/v26.0/debug_token")
    );
    assert_eq!(r.query_value("input_token").as_deref(), Some(TOKEN));
    assert_eq!(r.header("authorization"), Some("Bearer 4242|s3cr3t"));
}

#[tokio::test]
async fn waba_and_phone_number_fields() {
    let mock = MockGraph::start().await;
    mock.reply_json(
        200,
        &json!({ "id": "WABA1", "name": "Praxis", "account_review_status": "APPROVED",
        "business_verification_status": "verified", "currency": "EUR", "timezone_id": 1 }),
    );
    let w = mock.client().waba(&token(), "WABA1").await.unwrap();
    assert_eq!(w.account_review_status.as_deref(), Some("APPROVED"));
    assert_eq!(w.business_verification_status.as_deref(), Some("verified"));
    assert_eq!(w.timezone_id.as_deref(), Some("1"));
    let r = mock.single();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::GET, "/v26.0/WABA1")
    );
    let fields = r.query_value("fields").unwrap();
    assert!(
        fields.contains("account_review_status") && fields.contains("business_verification_status")
    );
    assert_bearer(&r);

    let mock = MockGraph::start().await;
    mock.reply_json(200, &json!({ "id": "PN1", "display_phone_number": "+49 151 1234", "verified_name": "Praxis",
        "code_verification_status": "VERIFIED", "name_status": "APPROVED", "quality_rating": "GREEN",
        "status": "CONNECTED", "platform_type": "CLOUD_API", "throughput": { "level": "STANDARD" },
        "whatsapp_business_manager_messaging_limit": "TIER_250", "is_on_biz_app": false }));
    let p = mock.client().phone_number(&token(), "PN1").await.unwrap();
    assert_eq!(p.code_verification_status.as_deref(), Some("VERIFIED"));
    assert_eq!(p.status.as_deref(), Some("CONNECTED"));
    assert_eq!(p.throughput.as_deref(), Some("STANDARD"));
    assert_eq!(
        p.whatsapp_business_manager_messaging_limit.as_deref(),
        Some("TIER_250")
    );
    assert_eq!(p.is_on_biz_app, Some(false));
    let r = mock.single();
    assert_eq!(r.path, "/v26.0/PN1");
    for f in [
        "code_verification_status",
        "name_status",
        "quality_rating",
        "status",
        "platform_type",
        "throughput",
    ] {
        assert!(
            r.query_value("fields").unwrap().split(',').any(|x| x == f),
            "{f}"
        );
    }
}

#[tokio::test]
async fn phone_numbers_follow_cursors() {
    let mock = MockGraph::start().await;
    mock.reply_json(200, &json!({ "data": [{ "id": "A" }, { "id": "B" }],
        "paging": { "cursors": { "before": "b0", "after": "c1" }, "next": "https://graph.facebook.com/x" } }));
    mock.reply_json(200, &json!({ "data": [{ "id": "C" }], "paging": { "cursors": { "before": "c1", "after": "c2" } } }));
    let all = mock
        .client()
        .all_phone_numbers(&token(), "WABA1")
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|p| p.id.clone().unwrap()).collect();
    assert_eq!(ids, ["A", "B", "C"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/v26.0/WABA1/phone_numbers");
    assert_eq!(reqs[0].query_value("after"), None);
    assert_eq!(reqs[1].query_value("after").as_deref(), Some("c1"));
    assert_bearer(&reqs[1]);
}

#[tokio::test]
async fn registration_calls() {
    let mock = MockGraph::start().await;
    let c = mock.client();
    let pin = Pin::parse("246810").unwrap();
    c.register(&token(), "PN1", &pin, None).await.unwrap();
    c.register(&token(), "PN1", &pin, Some("DE")).await.unwrap();
    c.request_code(&token(), "PN1", CodeMethod::Voice, "de_DE")
        .await
        .unwrap();
    c.verify_code(&token(), "PN1", "135790").await.unwrap();
    c.set_two_step_pin(&token(), "PN1", &pin).await.unwrap();
    c.deregister(&token(), "PN1").await.unwrap();
    let r = mock.requests();
    let expect: [(&str, Value); 6] = [
        (
            "/v26.0/PN1/register",
            json!({ "messaging_product": "whatsapp", "pin": "246810" }),
        ),
        (
            "/v26.0/PN1/register",
            json!({ "messaging_product": "whatsapp", "pin": "246810", "data_localization_region": "DE" }),
        ),
        (
            "/v26.0/PN1/request_code",
            json!({ "code_method": "VOICE", "language": "de_DE" }),
        ),
        ("/v26.0/PN1/verify_code", json!({ "code": "135790" })),
        ("/v26.0/PN1", json!({ "pin": "246810" })),
        ("/v26.0/PN1/deregister", Value::Null),
    ];
    assert_eq!(r.len(), expect.len());
    for (req, (path, body)) in r.iter().zip(expect) {
        assert_eq!(req.method, Method::POST, "{path}");
        assert_eq!(req.path, path);
        assert_bearer(req);
        if body.is_null() {
            assert!(req.body.is_empty(), "{path}");
        } else {
            assert_eq!(
                req.header("content-type"),
                Some("application/json"),
                "{path}"
            );
            assert_eq!(req.json(), body, "{path}");
        }
    }
    assert!(
        Pin::parse("12345").is_err()
            && Pin::parse("1234567").is_err()
            && Pin::parse("12345a").is_err()
    );
    assert!(
        Pin::parse("１２３４５６").is_err(),
        "full-width digits are not ASCII digits"
    );
    assert!(!format!("{pin:?}").contains("246810"));
}

#[tokio::test]
async fn registration_errors_are_classified() {
    let mock = MockGraph::start().await;
    mock.reply_json(
        400,
        &json!({ "error": { "message": "(#133005) Two step verification PIN Mismatch",
        "type": "OAuthException", "code": 133005, "error_data": { "messaging_product": "whatsapp",
        "details": "Two step verification PIN incorrect" }, "fbtrace_id": "T1" } }),
    );
    mock.reply_json(
        400,
        &json!({ "error": { "message": "Rate limited", "code": 133016 } }),
    );
    let c = mock.client();
    let pin = Pin::parse("000000").unwrap();
    let e = c.register(&token(), "PN1", &pin, None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Pin);
    assert_eq!(
        e.graph().unwrap().details.as_deref(),
        Some("Two step verification PIN incorrect")
    );
    let e = c.register(&token(), "PN1", &pin, None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Registration);
}

#[tokio::test]
async fn subscribed_apps_calls() {
    let mock = MockGraph::start().await;
    mock.reply(200, r#"{"success":true}"#);
    mock.reply_json(
        200,
        &json!({ "data": [{ "whatsapp_business_api_data": { "id": "4242", "name": "wabridge" },
        "override_callback_uri": "https://x.example/hook" }] }),
    );
    mock.reply(200, r#"{"success":true}"#);
    let c = mock.client();
    c.subscribe_app(&token(), "WABA1").await.unwrap();
    let apps = c.subscribed_apps(&token(), "WABA1").await.unwrap();
    assert_eq!(apps[0].id.as_deref(), Some("4242"));
    assert_eq!(
        apps[0].override_callback_uri.as_deref(),
        Some("https://x.example/hook")
    );
    c.unsubscribe_app(&token(), "WABA1").await.unwrap();
    let r = mock.requests();
    let methods: Vec<_> = r.iter().map(|x| x.method.clone()).collect();
    assert_eq!(methods, [Method::POST, Method::GET, Method::DELETE]);
    assert!(r.iter().all(|x| x.path == "/v26.0/WABA1/subscribed_apps"));
    r.iter().for_each(assert_bearer);
}

#[tokio::test]
async fn template_calls() {
    let mock = MockGraph::start().await;
    mock.reply_json(
        200,
        &json!({ "id": "T1", "status": "PENDING", "category": "UTILITY" }),
    );
    mock.reply_json(200, &json!({ "data": [{ "id": "T1", "name": "booking_confirmation", "language": "de",
        "status": "APPROVED", "category": "UTILITY", "parameter_format": "NAMED", "components": [] }],
        "paging": { "cursors": { "before": "a", "after": "b" } } }));
    mock.reply_json(
        200,
        &json!({ "id": "T1", "name": "booking_confirmation", "status": "REJECTED",
        "rejected_reason": "INVALID_FORMAT" }),
    );
    mock.reply(200, r#"{"success":true}"#);
    let c = mock.client();
    let t = NewTemplate::utility_named(
        "booking_confirmation",
        "de",
        "Hallo {{customer_name}}, Ihr Termin für {{service}} ist bestätigt.",
        &[("customer_name", "Anna"), ("service", "Haarschnitt")],
        &["Absagen", "Verschieben"],
    );
    assert_eq!(
        c.create_template(&token(), "WABA1", &t)
            .await
            .unwrap()
            .id
            .as_deref(),
        Some("T1")
    );
    let page = c
        .templates(&token(), "WABA1", Some("booking_confirmation"), Some("cur"))
        .await
        .unwrap();
    assert_eq!(page.data[0].status.as_deref(), Some("APPROVED"));
    assert_eq!(page.data[0].parameter_format.as_deref(), Some("NAMED"));
    assert_eq!(page.after.as_deref(), Some("b"));
    assert!(!page.has_next());
    let one = c.template(&token(), "T1").await.unwrap();
    assert_eq!(one.rejected_reason.as_deref(), Some("INVALID_FORMAT"));
    c.delete_template(&token(), "WABA1", "booking_confirmation", Some("T1"))
        .await
        .unwrap();

    let r = mock.requests();
    assert_eq!(
        (r[0].method.clone(), r[0].path.as_str()),
        (Method::POST, "/v26.0/WABA1/message_templates")
    );
    let body = r[0].json();
    assert_eq!(body["name"], "booking_confirmation");
    assert_eq!(body["category"], "UTILITY");
    assert_eq!(body["parameter_format"], "NAMED");
    assert_eq!(body["components"][0]["type"], "BODY");
    assert_eq!(
        body["components"][0]["example"]["body_text_named_params"][1],
        json!({ "param_name": "service", "example": "Haarschnitt" })
    );
    assert_eq!(
        body["components"][1]["buttons"][1],
        json!({ "type": "QUICK_REPLY", "text": "Verschieben" })
    );
    assert_eq!(
        (r[1].method.clone(), r[1].path.as_str()),
        (Method::GET, "/v26.0/WABA1/message_templates")
    );
    assert_eq!(
        r[1].query_value("name").as_deref(),
        Some("booking_confirmation")
    );
    assert_eq!(r[1].query_value("after").as_deref(), Some("cur"));
    assert_eq!(
        (r[2].method.clone(), r[2].path.as_str()),
        (Method::GET, "/v26.0/T1")
    );
    assert_eq!(
        (r[3].method.clone(), r[3].path.as_str()),
        (Method::DELETE, "/v26.0/WABA1/message_templates")
    );
    assert_eq!(
        r[3].query_value("name").as_deref(),
        Some("booking_confirmation")
    );
    assert_eq!(r[3].query_value("hsm_id").as_deref(), Some("T1"));
    r.iter().for_each(assert_bearer);
}

async fn sent_body(message: OutboundMessage) -> Value {
    let mock = MockGraph::start().await;
    mock.reply(200, SENT);
    let resp = mock
        .client()
        .send_message(&token(), "PN1", &message)
        .await
        .unwrap();
    assert_eq!(resp.message_id(), Some("wamid.OUT1"));
    let r = mock.single();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::POST, "/v26.0/PN1/messages")
    );
    assert_bearer(&r);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    // What the client sends reads back as the same message (the sandbox relies on this).
    let back: OutboundMessage = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(back, message);
    body
}

fn phone() -> Recipient {
    Recipient::Phone("4915112345678".into())
}

#[tokio::test]
async fn send_text_reply_and_bsuid() {
    let body = sent_body(
        OutboundMessage::text(phone(), "Hallo!")
            .reply_to("wamid.IN1")
            .with_callback_data("outbox-7"),
    )
    .await;
    assert_eq!(
        body,
        json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915112345678",
        "context": { "message_id": "wamid.IN1" }, "biz_opaque_callback_data": "outbox-7",
        "type": "text", "text": { "body": "Hallo!", "preview_url": false } })
    );

    let body = sent_body(OutboundMessage::text(
        Recipient::UserId("DE.13491208655302741918".into()),
        "Hi",
    ))
    .await;
    assert_eq!(body["recipient"], "DE.13491208655302741918");
    assert!(body.get("to").is_none());
}

#[tokio::test]
async fn send_templates_positional_and_named() {
    let named = TemplateMessage::new("booking_confirmation", "de")
        .with_named_body([
            ("customer_name", "Anna"),
            ("service", "Haarschnitt"),
            ("date", "12.03.2026"),
            ("time", "14:30"),
            ("business_name", "Salon"),
        ])
        .with_quick_reply_payload(0, "CANCEL_42");
    let body = sent_body(OutboundMessage::template(phone(), named)).await;
    assert_eq!(body["type"], "template");
    let t = &body["template"];
    assert_eq!(t["name"], "booking_confirmation");
    assert_eq!(t["language"], json!({ "code": "de" }));
    assert_eq!(t["components"][0]["type"], "body");
    assert_eq!(
        t["components"][0]["parameters"][0],
        json!({ "type": "text", "parameter_name": "customer_name", "text": "Anna" })
    );
    assert_eq!(
        t["components"][0]["parameters"].as_array().unwrap().len(),
        5
    );
    assert_eq!(
        t["components"][1],
        json!({ "type": "button", "sub_type": "quick_reply", "index": "0",
        "parameters": [{ "type": "payload", "payload": "CANCEL_42" }] })
    );

    let positional = TemplateMessage::new("hello", "en_US")
        .with_component(TemplateComponent::header(vec![TemplateParameter::image(
            MediaRef::link("https://example.com/h.jpg"),
        )]))
        .with_positional_body(["Anna", "B-1042"]);
    let body = sent_body(OutboundMessage::template(phone(), positional)).await;
    let c = &body["template"]["components"];
    assert_eq!(
        c[0],
        json!({ "type": "header", "parameters": [{ "type": "image", "image": { "link": "https://example.com/h.jpg" } }] })
    );
    assert_eq!(
        c[1]["parameters"][1],
        json!({ "type": "text", "text": "B-1042" })
    );
    assert!(c[1]["parameters"][0].get("parameter_name").is_none());
}

#[tokio::test]
async fn send_media_by_id_and_link() {
    let cases = [
        (
            OutboundContent::Image {
                image: MediaRef::id("111").with_caption("Ihr Termin"),
            },
            "image",
            json!({ "id": "111", "caption": "Ihr Termin" }),
        ),
        (
            OutboundContent::Audio {
                audio: MediaRef::id("222"),
            },
            "audio",
            json!({ "id": "222" }),
        ),
        (
            OutboundContent::Video {
                video: MediaRef::link("https://example.com/v.mp4"),
            },
            "video",
            json!({ "link": "https://example.com/v.mp4" }),
        ),
        (
            OutboundContent::Document {
                document: MediaRef::link("https://example.com/r.pdf").with_filename("rechnung.pdf"),
            },
            "document",
            json!({ "link": "https://example.com/r.pdf", "filename": "rechnung.pdf" }),
        ),
        (
            OutboundContent::Sticker {
                sticker: MediaRef::id("333"),
            },
            "sticker",
            json!({ "id": "333" }),
        ),
    ];
    for (content, kind, object) in cases {
        let body = sent_body(OutboundMessage::new(phone(), content)).await;
        assert_eq!(body["type"], kind);
        assert_eq!(body[kind], object, "{kind}");
    }
}

#[tokio::test]
async fn send_location_contacts_interactive_reaction() {
    let body = sent_body(OutboundMessage::new(
        phone(),
        OutboundContent::Location {
            location: LocationBody {
                latitude: 52.52,
                longitude: 13.405,
                name: Some("Praxis".into()),
                address: Some("Musterstr. 1".into()),
            },
        },
    ))
    .await;
    assert_eq!(
        body["location"],
        json!({ "latitude": 52.52, "longitude": 13.405, "name": "Praxis", "address": "Musterstr. 1" })
    );

    let card = ContactCard {
        name: ContactName {
            formatted_name: "Max Muster".into(),
            first_name: Some("Max".into()),
            last_name: None,
        },
        phones: vec![ContactPhone {
            phone: "+49 151 1234".into(),
            kind: Some("CELL".into()),
            wa_id: Some("491511234".into()),
        }],
        emails: vec![ContactEmail {
            email: "max@example.com".into(),
            kind: Some("WORK".into()),
        }],
    };
    let body = sent_body(OutboundMessage::new(
        phone(),
        OutboundContent::Contacts {
            contacts: vec![card],
        },
    ))
    .await;
    assert_eq!(
        body["contacts"][0]["name"],
        json!({ "formatted_name": "Max Muster", "first_name": "Max" })
    );
    assert_eq!(
        body["contacts"][0]["phones"][0],
        json!({ "phone": "+49 151 1234", "type": "CELL", "wa_id": "491511234" })
    );
    assert_eq!(
        body["contacts"][0]["emails"][0],
        json!({ "email": "max@example.com", "type": "WORK" })
    );

    let buttons = InteractiveBody::buttons(
        "Termin bestätigen?",
        &[("confirm", "Ja"), ("cancel", "Nein")],
    );
    let body = sent_body(OutboundMessage::new(
        phone(),
        OutboundContent::Interactive {
            interactive: buttons,
        },
    ))
    .await;
    assert_eq!(
        body["interactive"],
        json!({ "type": "button", "body": { "text": "Termin bestätigen?" },
        "action": { "buttons": [{ "type": "reply", "reply": { "id": "confirm", "title": "Ja" } },
                                { "type": "reply", "reply": { "id": "cancel", "title": "Nein" } }] } })
    );

    let mut list = InteractiveBody::list(
        "Bitte wählen",
        "Auswahl",
        vec![ListSection {
            title: Some("Morgen".into()),
            rows: vec![ListRow {
                id: "slot_0900".into(),
                title: "09:00".into(),
                description: Some("Frau Dr. X".into()),
            }],
        }],
    );
    list.header = Some(InteractiveHeader {
        kind: "text".into(),
        text: "Termine".into(),
    });
    list.footer = Some(InteractiveText {
        text: "Fuß".into()
    });
    let body = sent_body(OutboundMessage::new(
        phone(),
        OutboundContent::Interactive { interactive: list },
    ))
    .await;
    assert_eq!(body["interactive"]["type"], "list");
    assert_eq!(
        body["interactive"]["header"],
        json!({ "type": "text", "text": "Termine" })
    );
    assert_eq!(body["interactive"]["footer"], json!({ "text": "Fuß" }));
    assert_eq!(body["interactive"]["action"]["button"], "Auswahl");
    assert_eq!(
        body["interactive"]["action"]["sections"][0]["rows"][0]["id"],
        "slot_0900"
    );

    let body = sent_body(OutboundMessage::new(
        phone(),
        OutboundContent::Reaction {
            reaction: ReactionBody {
                message_id: "wamid.IN1".into(),
                emoji: "👍".into(),
            },
        },
    ))
    .await;
    assert_eq!(
        body["reaction"],
        json!({ "message_id": "wamid.IN1", "emoji": "👍" })
    );
}

#[tokio::test]
async fn mark_read_with_and_without_typing_indicator() {
    let mock = MockGraph::start().await;
    let c = mock.client();
    c.mark_read(&token(), "PN1", "wamid.IN1", true)
        .await
        .unwrap();
    c.mark_read(&token(), "PN1", "wamid.IN2", false)
        .await
        .unwrap();
    let r = mock.requests();
    assert_eq!(r[0].path, "/v26.0/PN1/messages");
    assert_eq!(
        r[0].json(),
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1", "typing_indicator": { "type": "text" } })
    );
    assert_eq!(
        r[1].json(),
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2" })
    );
    r.iter().for_each(assert_bearer);
}

#[tokio::test]
async fn media_upload_lookup_download_delete() {
    let mock = MockGraph::start().await;
    mock.reply(200, r#"{"id":"MEDIA1"}"#);
    let c = mock.client();
    let data = Bytes::from_static(b"\x89PNG\r\n\x1a\nfake image bytes");
    assert_eq!(
        c.upload_media(&token(), "PN1", data.clone(), "image/png", "bild.png")
            .await
            .unwrap(),
        "MEDIA1"
    );
    let r = mock.single();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::POST, "/v26.0/PN1/media")
    );
    assert_bearer(&r);
    let ct = r.header("content-type").unwrap().to_owned();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let body = r.body.to_vec();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"));
    assert!(text.contains("name=\"type\"\r\n\r\nimage/png\r\n"));
    assert!(
        text.contains("name=\"file\"; filename=\"bild.png\"\r\nContent-Type: image/png\r\n\r\n")
    );
    assert!(body.windows(data.len()).any(|w| w == &data[..]));
    assert!(text.ends_with(&format!("--{boundary}--\r\n")));

    let mock = MockGraph::start().await;
    let file_url = format!("{}/whatsapp_business/attachments/?mid=77", mock.base_url);
    mock.reply_json(
        200,
        &json!({ "messaging_product": "whatsapp", "url": file_url, "mime_type": "image/jpeg",
        "sha256": "abc", "file_size": 5, "id": "MEDIA1" }),
    );
    mock.reply(200, "HELLO");
    mock.reply(200, r#"{"success":true}"#);
    let c = mock.client();
    let info = c.media_info(&token(), "MEDIA1").await.unwrap();
    assert_eq!(info.file_size, Some(5));
    let bytes = c
        .download_media(&token(), info.url.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"HELLO");
    c.delete_media(&token(), "MEDIA1").await.unwrap();
    let r = mock.requests();
    assert_eq!(
        (r[0].method.clone(), r[0].path.as_str()),
        (Method::GET, "/v26.0/MEDIA1")
    );
    assert_eq!(
        (r[1].method.clone(), r[1].path.as_str()),
        (Method::GET, "/whatsapp_business/attachments/")
    );
    assert_eq!(r[1].query_value("mid").as_deref(), Some("77"));
    assert_eq!(
        (r[2].method.clone(), r[2].path.as_str()),
        (Method::DELETE, "/v26.0/MEDIA1")
    );
    r.iter().for_each(assert_bearer);

    // The token never goes to a plain-http host other than the configured one.
    let e = c
        .download_media(&token(), "http://evil.example/file")
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidRequest(_)));
    assert_eq!(mock.requests().len(), 3);
    assert!(
        c.upload_media(&token(), "PN1", data, "image/png", "a\"b.png")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ids_are_path_segments_not_paths() {
    let mock = MockGraph::start().await;
    let c = mock.client();
    assert!(matches!(
        c.phone_number(&token(), "..").await,
        Err(ApiError::InvalidRequest(_))
    ));
    assert!(matches!(
        c.phone_number(&token(), "").await,
        Err(ApiError::InvalidRequest(_))
    ));
    mock.reply_json(200, &json!({ "id": "x" }));
    c.phone_number(&token(), "a/b?c").await.unwrap();
    assert_eq!(mock.single().path, "/v26.0/a%2Fb%3Fc");
}

#[tokio::test]
async fn base_url_and_version_come_from_config() {
    let mock = MockGraph::start().await;
    mock.reply_json(200, &json!({ "id": "x" }));
    let cfg = GraphConfig::new(format!("{}/graph/", mock.base_url), "v25.0");
    let c = GraphClient::new(cfg).unwrap();
    c.phone_number(&token(), "PN1").await.unwrap();
    assert_eq!(mock.single().path, "/graph/v25.0/PN1");
    let d = GraphConfig::default();
    assert_eq!(
        (d.base_url.as_str(), d.version.as_str()),
        ("https://graph.facebook.com", "v26.0")
    );
    assert!(GraphClient::new(GraphConfig::new("not a url", "v26.0")).is_err());
    assert!(GraphClient::new(GraphConfig::new("mailto:x@example.com", "v26.0")).is_err());
}

#[tokio::test]
async fn meta_errors_and_5xx() {
    let mock = MockGraph::start().await;
    mock.reply_json(400, &json!({ "error": { "message": "(#131047) Re-engagement message", "type": "OAuthException",
        "code": 131047, "error_data": { "messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
        "fbtrace_id": "AbC123xyz" } }));
    mock.reply(503, "Service Unavailable");
    mock.reply_json(500, &json!({ "error": { "message": "An unknown error occurred", "code": 1, "is_transient": true } }));
    mock.reply(200, "not json");
    mock.reply(200, "{}");
    let c = mock.client();
    let msg = OutboundMessage::text(phone(), "x");
    let e = c.send_message(&token(), "PN1", &msg).await.unwrap_err();
    let g = e.graph().unwrap();
    assert_eq!(
        (g.http_status, g.code, g.fbtrace_id.as_deref()),
        (400, Some(131047), Some("AbC123xyz"))
    );
    assert_eq!(e.class(), ErrorClass::WindowClosed);
    assert!(!e.outcome_unknown());
    let e = c.send_message(&token(), "PN1", &msg).await.unwrap_err();
    assert_eq!(
        (e.graph().unwrap().http_status, e.class()),
        (503, ErrorClass::Retry)
    );
    let e = c.send_message(&token(), "PN1", &msg).await.unwrap_err();
    assert_eq!(
        (e.graph().unwrap().is_transient, e.class()),
        (Some(true), ErrorClass::Retry)
    );
    let e = c.send_message(&token(), "PN1", &msg).await.unwrap_err();
    assert!(
        matches!(e, ApiError::UnexpectedResponse { status: 200, .. }),
        "{e:?}"
    );
    assert!(e.outcome_unknown());
    let e = c.send_message(&token(), "PN1", &msg).await.unwrap_err();
    assert!(
        e.outcome_unknown(),
        "a send without a wamid must be reconciled: {e:?}"
    );
}

#[tokio::test]
async fn timeout_after_sending_is_outcome_unknown() {
    let mock = MockGraph::start().await;
    mock.reply_after(200, SENT, Duration::from_secs(3));
    let e = mock
        .client()
        .send_message(&token(), "PN1", &OutboundMessage::text(phone(), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::OutcomeUnknown {
                timed_out: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.outcome_unknown());
    assert_eq!(e.class(), ErrorClass::Retry);
    // The request did reach the server.
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn refused_connection_is_not_sent() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = GraphConfig::new(format!("http://127.0.0.1:{port}"), "v26.0");
    cfg.timeout = Duration::from_secs(2);
    let c = GraphClient::new(cfg).unwrap();
    let e = c
        .send_message(&token(), "PN1", &OutboundMessage::text(phone(), "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::NotSent(_)), "{e:?}");
    assert!(!e.outcome_unknown());
}

#[tokio::test]
async fn secrets_stay_out_of_errors_and_debug() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = GraphClient::new(GraphConfig::new(
        format!("http://127.0.0.1:{port}"),
        "v26.0",
    ))
    .unwrap();
    let e = c
        .exchange_code(&app(), &SecretString::from("AQD-code"))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("AQD-code"),
        "{shown}"
    );
    let e = c.debug_token(&app(), &token()).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains(TOKEN),
        "{shown}"
    );
    let debug = format!("{:?} {:?}", app(), token());
    assert!(
        !debug.contains("s3cr3t") && !debug.contains(TOKEN),
        "{debug}"
    );
    assert!(!format!("{c:?}").contains(TOKEN));
}
