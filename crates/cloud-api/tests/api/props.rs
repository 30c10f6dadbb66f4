//! Property tests: the parser and the signature check never panic.

use proptest::prelude::*;
use secrecy::SecretString;
use wabridge_cloud_api::{GraphError, parse_webhook, sign, verify_signature};

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        prop_oneof![
            Just("messages".to_owned()),
            Just("text".to_owned()),
            Just("interactive".to_owned()),
            Just("1697043223".to_owned()),
            ".{0,8}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("object"),
        Just("entry"),
        Just("id"),
        Just("time"),
        Just("changes"),
        Just("field"),
        Just("value"),
        Just("messages"),
        Just("statuses"),
        Just("contacts"),
        Just("metadata"),
        Just("type"),
        Just("text"),
        Just("timestamp"),
        Just("from"),
        Just("errors"),
        Just("event"),
        Just("waba_info"),
        Just("interactive"),
        Just("system"),
        Just("edit"),
        Just("message"),
        Just("message_echoes"),
        Just("history"),
        Just("threads"),
        Just("pricing"),
        Just("x"),
    ];
    leaf.prop_recursive(6, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_webhook(&bytes);
        let _ = GraphError::from_body(400, &bytes);
    }

    #[test]
    fn parser_accepts_every_json_document(v in json_value()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let body = parse_webhook(&bytes);
        prop_assert!(body.is_ok());
        let body = body.unwrap();
        for c in body.changes() {
            let _ = (c.phone_number_id(), c.waba_id(), c.messages().len(), c.statuses().len());
            for m in c.messages() {
                let _ = (m.customer_key(), m.content.type_name(), m.content.media());
            }
        }
    }

    #[test]
    fn parser_accepts_webhook_shaped_documents(
        messages in prop::collection::vec(json_value(), 0..4),
        statuses in prop::collection::vec(json_value(), 0..4),
        field in prop_oneof![Just("messages"), Just("account_update"), Just("history"), Just("smb_message_echoes")],
    ) {
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": field, "value": {
                "messages": messages, "statuses": statuses, "message_echoes": messages,
                "history": [{ "threads": [{ "messages": statuses }] }] } }] }]
        });
        prop_assert!(parse_webhook(body.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn signature_check_never_panics(
        secret in ".{0,40}",
        header in proptest::option::of(".{0,80}"),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let secret = SecretString::from(secret);
        let _ = verify_signature(&secret, header.as_deref(), &body);
    }

    #[test]
    fn signing_roundtrips_and_other_bodies_fail(
        secret in "[ -~]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
    ) {
        let secret = SecretString::from(secret);
        let header = sign(&secret, &body);
        prop_assert!(verify_signature(&secret, Some(&header), &body).is_ok());
        if !body.is_empty() {
            let mut other = body.clone();
            let i = flip.index(other.len());
            other[i] = other[i].wrapping_add(1);
            prop_assert!(verify_signature(&secret, Some(&header), &other).is_err());
        }
    }
}
