//! Meta's error table: classification and explanations.

use wabridge_cloud_api::{ErrorClass, GraphError, Lang, error_info, error_key, explain};

/// Every code the issue lists, with its expected class.
const TABLE: &[(i64, ErrorClass)] = &[
    (0, ErrorClass::Reauthenticate),
    (1, ErrorClass::Retry),
    (2, ErrorClass::Retry),
    (3, ErrorClass::Permanent),
    (4, ErrorClass::Throttled),
    (10, ErrorClass::Reauthenticate),
    (100, ErrorClass::Permanent),
    (190, ErrorClass::Reauthenticate),
    (200, ErrorClass::Reauthenticate),
    (250, ErrorClass::Reauthenticate),
    (299, ErrorClass::Reauthenticate),
    (368, ErrorClass::Permanent),
    (80007, ErrorClass::Throttled),
    (130429, ErrorClass::Throttled),
    (130472, ErrorClass::Permanent),
    (130497, ErrorClass::Permanent),
    (131000, ErrorClass::Retry),
    (131005, ErrorClass::Reauthenticate),
    (131008, ErrorClass::Permanent),
    (131009, ErrorClass::Permanent),
    (131016, ErrorClass::Retry),
    (131021, ErrorClass::Permanent),
    (131026, ErrorClass::Permanent),
    (131030, ErrorClass::Permanent),
    (131031, ErrorClass::Permanent),
    (131037, ErrorClass::Permanent),
    (131042, ErrorClass::Payment),
    (131045, ErrorClass::Registration),
    (131047, ErrorClass::WindowClosed),
    (131048, ErrorClass::Throttled),
    (131049, ErrorClass::Permanent),
    (131050, ErrorClass::Permanent),
    (131051, ErrorClass::Permanent),
    (131052, ErrorClass::Permanent),
    (131053, ErrorClass::Permanent),
    (131056, ErrorClass::Throttled),
    (131057, ErrorClass::Retry),
    (131060, ErrorClass::Permanent),
    (131062, ErrorClass::Permanent),
    (131063, ErrorClass::Permanent),
    (131064, ErrorClass::Permanent),
    (132000, ErrorClass::Template),
    (132001, ErrorClass::Template),
    (132005, ErrorClass::Template),
    (132007, ErrorClass::Template),
    (132012, ErrorClass::Template),
    (132015, ErrorClass::Template),
    (132016, ErrorClass::Template),
    (132068, ErrorClass::Permanent),
    (132069, ErrorClass::Throttled),
    (133000, ErrorClass::Registration),
    (133004, ErrorClass::Retry),
    (133005, ErrorClass::Pin),
    (133006, ErrorClass::Registration),
    (133008, ErrorClass::Pin),
    (133009, ErrorClass::Pin),
    (133010, ErrorClass::Registration),
    (133015, ErrorClass::Registration),
    (133016, ErrorClass::Registration),
    (135000, ErrorClass::Permanent),
    (137000, ErrorClass::Permanent),
];

#[test]
fn every_listed_code_has_a_class_and_two_explanations() {
    let generic_de = explain(999_999_999, Lang::De);
    let generic_en = explain(999_999_999, Lang::En);
    let mut seen_texts = std::collections::HashSet::new();
    for &(code, class) in TABLE {
        let info = error_info(code).unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(info.class, class, "{code}");
        let (de, en) = (explain(code, Lang::De), explain(code, Lang::En));
        assert!(!de.is_empty() && !en.is_empty() && de != en, "{code}");
        assert_ne!(de, generic_de, "{code}");
        assert_ne!(en, generic_en, "{code}");
        assert!(de.len() < 200 && en.len() < 200, "{code}: keep it short");
        assert!(error_key(code).starts_with("meta_error."), "{code}");
        seen_texts.insert(en);
    }
    // 200–299 share one text; everything else is specific.
    assert_eq!(seen_texts.len(), TABLE.len() - 2);
    assert_eq!(error_key(131047), "meta_error.131047");
    assert_eq!(error_key(250), "meta_error.200");
    assert!(explain(131047, Lang::De).contains("24 Stunden"));
    assert!(explain(131047, Lang::En).contains("template"));
}

#[test]
fn unknown_codes_are_permanent_with_metas_text() {
    assert!(error_info(424242).is_none());
    assert_eq!(error_key(424242), "meta_error.unknown");
    let e = GraphError {
        http_status: 400,
        code: Some(424242),
        message: Some("(#424242) Something new".into()),
        details: Some("A brand-new failure".into()),
        ..GraphError::default()
    };
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(e.key(), "meta_error.unknown");
    let de = e.explain(Lang::De);
    assert!(
        de.starts_with(explain(424242, Lang::De)) && de.contains("A brand-new failure"),
        "{de}"
    );
    let en = e.explain(Lang::En);
    assert!(
        en.contains("unknown error") && en.contains("A brand-new failure"),
        "{en}"
    );
}

#[test]
fn codeless_errors_are_classified_by_status() {
    let by_status = |s: u16| {
        GraphError {
            http_status: s,
            ..GraphError::default()
        }
        .class()
    };
    assert_eq!(by_status(500), ErrorClass::Retry);
    assert_eq!(by_status(503), ErrorClass::Retry);
    assert_eq!(by_status(429), ErrorClass::Throttled);
    assert_eq!(by_status(401), ErrorClass::Reauthenticate);
    assert_eq!(by_status(400), ErrorClass::Permanent);
    let transient = GraphError {
        http_status: 400,
        is_transient: Some(true),
        ..GraphError::default()
    };
    assert_eq!(transient.class(), ErrorClass::Retry);
    assert!(ErrorClass::Retry.is_retryable() && ErrorClass::Throttled.is_retryable());
    assert!(!ErrorClass::WindowClosed.is_retryable());
    assert_eq!(ErrorClass::WindowClosed.as_str(), "window_closed");
}

#[test]
fn display_carries_code_subcode_text_and_trace() {
    let e = GraphError::from_body(
        401,
        br#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"Abc"}}"#,
    );
    let s = e.to_string();
    assert!(
        s.contains("HTTP 401")
            && s.contains("code 190")
            && s.contains("subcode 463")
            && s.contains("Abc"),
        "{s}"
    );
    assert_eq!(e.class(), ErrorClass::Reauthenticate);
    // Bodies that are not JSON keep a snippet of their text.
    let e = GraphError::from_body(502, b"<html>Bad Gateway</html>");
    assert_eq!(e.class(), ErrorClass::Retry);
    assert_eq!(e.message.as_deref(), Some("<html>Bad Gateway</html>"));
}
