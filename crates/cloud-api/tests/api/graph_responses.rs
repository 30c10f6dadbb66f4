//! Every conformance Graph response that belongs to a call this crate makes is understood by
//! that call, served by the mock Graph server with the status the peer used.

use secrecy::SecretString;
use serde_json::json;
use wabridge_cloud_api::client::{AppCredentials, CodeMethod, NewTemplate, Pin};
use wabridge_cloud_api::{ApiError, ErrorClass, GraphError, OutboundMessage, Recipient};

use crate::helpers::{MockGraph, graph_json, read};

fn token() -> SecretString {
    SecretString::from("EAAG-test-token")
}

fn app() -> AppCredentials {
    AppCredentials {
        app_id: "123456789012345".into(),
        app_secret: SecretString::from("app-secret"),
    }
}

async fn serve(rel: &str, status: u16) -> MockGraph {
    let mock = MockGraph::start().await;
    mock.reply(
        status,
        String::from_utf8(read(&format!("graph-responses/{rel}"))).unwrap(),
    );
    mock
}

/// Serves an `error_object_*` file wrapped as Meta sends it.
async fn serve_error_object(rel: &str, status: u16) -> MockGraph {
    let mock = MockGraph::start().await;
    mock.reply_json(status, &json!({ "error": graph_json(rel) }));
    mock
}

fn text() -> OutboundMessage {
    OutboundMessage::text(Recipient::Phone("16505551234".into()), "Hallo")
}

async fn send_err(mock: &MockGraph) -> GraphError {
    match mock
        .client()
        .send_message(&token(), "1122334455667", &text())
        .await
    {
        Err(ApiError::Graph(g)) => *g,
        other => panic!("expected a Graph error, got {other:?}"),
    }
}

#[tokio::test]
async fn send_message_success_bodies() {
    for (rel, wamid, status) in [
        ("pywa/send_message_success.json", "wamid.xx==", None),
        (
            "cp4m/send_message_success.json",
            "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
            Some("accepted"),
        ),
        (
            "cp4m/send_message_empty_contacts_message_status_accepted.json",
            "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM9Q0Q0Q2RTY3RTcA",
            Some("accepted"),
        ),
        ("chatwoot/send_message_minimal.json", "message_id", None),
        (
            "whatsapp-api-js/send_message_success.json",
            "something_random",
            None,
        ),
        (
            "whatsapp-api-js/send_message_success__logger.json",
            "4",
            None,
        ),
        (
            "whatsapp-nodejs-sdk/send_message_success.json",
            "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
            None,
        ),
        ("whatsapp-business-rs/send_message_success.json", "", None),
        (
            "whatsapp-business-rs/send_message_messages_only.json",
            "wamid.mock_message_id",
            None,
        ),
    ] {
        let mock = serve(rel, 200).await;
        let r = mock
            .client()
            .send_message(&token(), "1122334455667", &text())
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        if !wamid.is_empty() {
            assert_eq!(r.message_id(), Some(wamid), "{rel}");
        }
        assert_eq!(r.messages[0].message_status.as_deref(), status, "{rel}");
    }
    let mock = serve("pywa/send_message_success.json", 200).await;
    let r = mock
        .client()
        .send_message(&token(), "1", &text())
        .await
        .unwrap();
    assert_eq!(r.contacts[0].input.as_deref(), Some("135792468"));
    assert_eq!(r.contacts[0].wa_id.as_deref(), Some("135792468"));
}

#[tokio::test]
async fn error_bodies_with_their_statuses() {
    let e = send_err(&serve("chatwoot/error_100_invalid_message_format.json", 400).await).await;
    assert_eq!(
        (e.http_status, e.code, e.class()),
        (400, Some(100), ErrorClass::Permanent)
    );
    assert_eq!(e.message.as_deref(), Some("Invalid message format"));

    let e = send_err(&serve("chatwoot/error_empty_object.json", 400).await).await;
    assert_eq!(
        (e.code, e.message.clone(), e.class()),
        (None, None, ErrorClass::Permanent)
    );

    let e =
        send_err(&serve("piusalfred-whatsapp/error_100_invalid_parameter.json", 400).await).await;
    assert_eq!(e.code, Some(100));
    let e = send_err(&serve("piusalfred-whatsapp/error_130429_rate_limit.json", 429).await).await;
    assert_eq!((e.code, e.class()), (Some(130429), ErrorClass::Throttled));
    let e = send_err(
        &serve(
            "piusalfred-whatsapp/calls_error_130429_rate_limit.json",
            429,
        )
        .await,
    )
    .await;
    assert_eq!(e.class(), ErrorClass::Throttled);
    let e = send_err(
        &serve(
            "piusalfred-whatsapp/calls_error_100_oauth_invalid_parameter.json",
            400,
        )
        .await,
    )
    .await;
    assert_eq!(e.code, Some(100));

    let e = send_err(
        &serve(
            "piusalfred-whatsapp/error_131030_recipient_not_allowed_with_outer_code.json",
            500,
        )
        .await,
    )
    .await;
    assert_eq!(e.http_status, 500);
    assert_eq!(e.code, Some(131030));
    assert_eq!(e.subcode, Some(2655007));
    assert_eq!(e.error_type.as_deref(), Some("OAuthException"));
    assert_eq!(
        e.details.as_deref(),
        Some("Recipient phone number not in allowed list")
    );
    assert_eq!(
        e.user_title.as_deref(),
        Some("Recipient phone number not in allowed list")
    );
    assert_eq!(
        e.user_message.as_deref(),
        Some("Add recipient phone number to recipient list and try again.")
    );
    assert_eq!(e.fbtrace_id.as_deref(), Some("AI5Ob2z72R0JAUB5zOF-nao"));
    assert_eq!(
        e.class(),
        ErrorClass::Permanent,
        "the code decides, not the 500"
    );

    let e = send_err(
        &serve(
            "piusalfred-whatsapp/error_500_internal_server_error.json",
            500,
        )
        .await,
    )
    .await;
    assert_eq!((e.code, e.class()), (None, ErrorClass::Retry));
    assert_eq!(e.message.as_deref(), Some("Internal Server Error"));

    let e = send_err(
        &serve(
            "piusalfred-whatsapp/error_validation_with_outer_code.json",
            400,
        )
        .await,
    )
    .await;
    assert_eq!(
        (e.code, e.class(), e.key()),
        (Some(400), ErrorClass::Permanent, "meta_error.unknown")
    );

    let e = send_err(&serve("pywa/error_generic_oauth_400.json", 400).await).await;
    assert_eq!((e.code, e.class()), (Some(1), ErrorClass::Retry));

    // Served with HTTP 200 by the peer: still an error.
    let e = send_err(&serve("whatsapp-api-js/error_190_invalid_oauth_token.json", 200).await).await;
    assert_eq!(
        (e.http_status, e.code, e.class()),
        (200, Some(190), ErrorClass::Reauthenticate)
    );
    assert_eq!(e.fbtrace_id.as_deref(), Some("Azr7Sq738VC5zzOnPvZzPwj"));

    let e = send_err(&serve_error_object("pywa/error_object_131047_reengagement.json", 400).await)
        .await;
    assert_eq!(e.class(), ErrorClass::WindowClosed);
    assert!(e.details.as_deref().unwrap().contains("24 hours"));
    let e =
        send_err(&serve_error_object("pywa/error_object_190_expired_access_token.json", 401).await)
            .await;
    assert_eq!(
        (e.code, e.subcode, e.class()),
        (Some(190), Some(463), ErrorClass::Reauthenticate)
    );
    assert_eq!(e.fbtrace_id.as_deref(), Some("ACEyrTehk6IAd0lm05Ixogh"));
    let e =
        send_err(&serve_error_object("cp4m/error_object_130429_rate_limit.json", 429).await).await;
    assert_eq!(e.class(), ErrorClass::Throttled);

    let mock = serve_error_object("pywa/error_object_131053_media_upload.json", 400).await;
    let err = mock
        .client()
        .upload_media(
            &token(),
            "1",
            bytes::Bytes::from_static(b"x"),
            "image/png",
            "a.png",
        )
        .await
        .unwrap_err();
    assert_eq!(err.graph().unwrap().code, Some(131053));
    assert!(
        err.graph()
            .unwrap()
            .details
            .as_deref()
            .unwrap()
            .contains("429")
    );
}

#[tokio::test]
async fn token_exchange_and_debug_token() {
    let mock = serve("whatsapp-business-rs/oauth_access_token_exchange.json", 200).await;
    let t = mock
        .client()
        .exchange_code(&app(), &SecretString::from("code"))
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(t.access_token.expose_secret(), "NEW_EXTENDED_TOKEN");
    assert_eq!(t.token_type.as_deref(), Some("bearer"));
    assert_eq!(t.expires_in, Some(5184000));
    let mock = serve(
        "whatsapp-business-rs/oauth_access_token_from_code_no_expiry.json",
        200,
    )
    .await;
    let t = mock
        .client()
        .exchange_code(&app(), &SecretString::from("code"))
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "EAAD...");
    assert_eq!(t.expires_in, None);
    assert!(
        !format!("{t:?}").contains("EAAD"),
        "token leaked into Debug"
    );

    let mock = serve("whatsapp-business-rs/debug_token.json", 200).await;
    let info = mock.client().debug_token(&app(), &token()).await.unwrap();
    assert_eq!(info.app_id.as_deref(), Some("123456789012345"));
    assert_eq!(info.is_valid, Some(true));
    assert_eq!(info.expires_at, Some(123456));
    assert_eq!(info.token_type.as_deref(), Some("USER"));
    assert!(info.has_scope("whatsapp_business_management"));
    assert!(info.waba_ids().is_empty());
}

#[tokio::test]
async fn phone_numbers_subscriptions_registration() {
    let mock = serve("whatsapp-business-rs/waba_phone_numbers_list.json", 200).await;
    let page = mock
        .client()
        .phone_numbers(&token(), "WABA", None)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.data[0].id.as_deref(), Some("phone1"));
    assert_eq!(
        page.data[1].display_phone_number.as_deref(),
        Some("+44 20 7123 4567")
    );
    assert_eq!(page.data[0].verified_name.as_deref(), Some("My Business"));
    assert!(!page.has_next());

    let mock = serve("whatsapp-business-rs/waba_subscribed_apps_list.json", 200).await;
    let apps = mock
        .client()
        .subscribed_apps(&token(), "WABA")
        .await
        .unwrap();
    assert_eq!(apps[0].id.as_deref(), Some("app_id_1"));
    assert_eq!(apps[0].name.as_deref(), Some("My Main App"));

    let pin = Pin::parse("123456").unwrap();
    let mock = serve(
        "whatsapp-business-rs/phone_number_register_success_with_id.json",
        200,
    )
    .await;
    mock.client()
        .register(&token(), "PHONE", &pin, None)
        .await
        .unwrap();
    let mock = serve(
        "whatsapp-nodejs-sdk/phone_number_request_code_success.json",
        200,
    )
    .await;
    mock.client()
        .request_code(&token(), "PHONE", CodeMethod::Sms, "de")
        .await
        .unwrap();
    let mock = serve(
        "whatsapp-nodejs-sdk/phone_number_request_code_success.json",
        200,
    )
    .await;
    mock.client()
        .verify_code(&token(), "PHONE", "123456")
        .await
        .unwrap();
    let mock = serve(
        "whatsapp-nodejs-sdk/two_step_verification_set_pin_success.json",
        200,
    )
    .await;
    mock.client()
        .set_two_step_pin(&token(), "PHONE", &pin)
        .await
        .unwrap();
    for call in 0..4 {
        let mock = serve("whatsapp-business-rs/success_true.json", 200).await;
        let c = mock.client();
        match call {
            0 => c.subscribe_app(&token(), "WABA").await.unwrap(),
            1 => c.unsubscribe_app(&token(), "WABA").await.unwrap(),
            2 => c.deregister(&token(), "PHONE").await.unwrap(),
            _ => c
                .mark_read(&token(), "PHONE", "wamid.X", true)
                .await
                .unwrap(),
        }
    }
    let mock = serve("whatsapp-api-js/mark_as_read_success.json", 200).await;
    mock.client()
        .mark_read(&token(), "PHONE", "wamid.X", false)
        .await
        .unwrap();

    // `success: false` is not a success.
    let mock = MockGraph::start().await;
    mock.reply(200, r#"{"success":false}"#);
    assert!(mock.client().subscribe_app(&token(), "WABA").await.is_err());
}

#[tokio::test]
async fn templates_pages() {
    let names = ["test_template", "test_template_2", "last_template"];
    for (i, rel) in [
        "chatwoot/message_templates_page1.json",
        "chatwoot/message_templates_page2.json",
        "chatwoot/message_templates_page3_last.json",
    ]
    .iter()
    .enumerate()
    {
        let mock = serve(rel, 200).await;
        let page = mock
            .client()
            .templates(&token(), "WABA", None, None)
            .await
            .unwrap();
        assert_eq!(page.has_next(), i < 2, "{rel}");
        assert_eq!(page.data[0].id.as_deref(), Some("123456789"), "{rel}");
        if i != 1 {
            assert_eq!(page.data[0].name.as_deref(), Some(names[i]), "{rel}");
        }
    }
    // all_templates follows `paging.next` when it points at the configured Graph host.
    let mock = MockGraph::start().await;
    for rel in [
        "chatwoot/message_templates_page1.json",
        "chatwoot/message_templates_page2.json",
        "chatwoot/message_templates_page3_last.json",
    ] {
        let body = String::from_utf8(read(&format!("graph-responses/{rel}"))).unwrap();
        mock.reply(
            200,
            body.replace("https://graph.facebook.com", &mock.base_url),
        );
    }
    let all = mock
        .client()
        .all_templates(&token(), "WABA", None)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].name.as_deref(), Some("last_template"));
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].path, "/v14.0/123456789/message_templates");
    assert_eq!(
        reqs[1].header("authorization"),
        Some("Bearer EAAG-test-token")
    );

    // A `next` pointing elsewhere is not followed (the token would travel there).
    let mock = serve("chatwoot/message_templates_page1.json", 200).await;
    let all = mock
        .client()
        .all_templates(&token(), "WABA", None)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(mock.requests().len(), 1);

    let mock = MockGraph::start().await;
    mock.reply_json(
        200,
        &json!({ "id": "594425479261596", "status": "PENDING", "category": "UTILITY" }),
    );
    let t = NewTemplate::utility_named(
        "booking_confirmation",
        "de",
        "Hallo {{customer_name}}",
        &[("customer_name", "Anna")],
        &["Absagen"],
    );
    let created = mock
        .client()
        .create_template(&token(), "WABA", &t)
        .await
        .unwrap();
    assert_eq!(created.id.as_deref(), Some("594425479261596"));
    assert_eq!(created.status.as_deref(), Some("PENDING"));
}

#[tokio::test]
async fn media_bodies() {
    for (rel, size, url) in [
        ("chatwoot/media_url_retrieve.json", None, None),
        ("whatsapp-api-js/media_retrieve.json", None, Some("URL")),
        (
            "cp4m/media_url_retrieve.json",
            Some(111),
            Some("https://example.com/image.jpg"),
        ),
    ] {
        let mock = serve(rel, 200).await;
        let info = mock
            .client()
            .media_info(&token(), "2")
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(info.file_size, size, "{rel}");
        assert!(info.mime_type.is_some(), "{rel}");
        if let Some(url) = url {
            assert_eq!(info.url.as_deref(), Some(url), "{rel}");
        }
    }
    for (rel, id) in [
        ("whatsapp-api-js/media_upload.json", "2"),
        ("whatsapp-business-rs/media_upload.json", "133489585902390"),
    ] {
        let mock = serve(rel, 200).await;
        let got = mock
            .client()
            .upload_media(
                &token(),
                "1",
                bytes::Bytes::from_static(b"img"),
                "image/png",
                "a.png",
            )
            .await
            .unwrap();
        assert_eq!(got, id);
    }
    let mock = serve("whatsapp-api-js/media_delete_success.json", 200).await;
    mock.client().delete_media(&token(), "2").await.unwrap();
}

#[test]
fn every_error_shaped_response_reads_without_panicking() {
    for path in
        crate::helpers::json_files(&crate::helpers::conformance_dir().join("graph-responses"))
    {
        let bytes = std::fs::read(&path).unwrap();
        let e = GraphError::from_body(400, &bytes);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("error_")
            && !name.starts_with("error_object_")
            && name != "error_empty_object.json"
        {
            assert!(e.message.is_some(), "{name}");
        }
        let _ = (e.class(), e.explain(wabridge_cloud_api::Lang::De));
    }
}
