//! The webhook parser's fast path (text messages, statuses, contacts) gives exactly what the
//! tolerant parse gives, or leaves the body to it: on every conformance body, and on mutants
//! of the bodies it takes — every node replaced by `null`, a number, a numeric string, a
//! boolean, an array, an object with an extra key — and on hand-made edge cases.

use serde_json::{Value, json};
use wabridge_cloud_api::webhook::{ChangeValue, MessageContent, parse_webhook_fast, parse_webhook_tolerant};
use wabridge_cloud_api::parse_webhook;

use crate::helpers::{conformance_dir, json_files};

/// Both parses agree on `bytes`; returns whether the fast path took it.
fn agree(bytes: &[u8], what: &str) -> bool {
    let tolerant = parse_webhook_tolerant(bytes);
    let fast = parse_webhook_fast(bytes);
    match (&tolerant, &fast) {
        (Ok(t), Some(f)) => {
            assert_eq!(f, t, "{what}: the fast path differs");
            for (fc, tc) in f.changes().zip(t.changes()) {
                for i in 0..fc.messages().len() {
                    let text = fc.change.raw_message_json(i).unwrap();
                    let parsed: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(Some(&parsed), tc.change.raw_message(i), "{what}: message {i}'s text");
                }
            }
        }
        (Err(_), Some(_)) => panic!("{what}: the fast path took a body that is not JSON"),
        _ => {}
    }
    // What the callers get is the tolerant parse's in either case.
    assert_eq!(parse_webhook(bytes).ok(), tolerant.ok(), "{what}: parse_webhook");
    fast.is_some()
}

/// Every node of `v` by its path.
fn paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(PathStep::Key(k.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(PathStep::Index(i));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

#[test]
fn the_fast_path_agrees_with_the_tolerant_parse_on_every_conformance_body_and_its_mutants() {
    let files = json_files(&conformance_dir().join("webhooks"));
    let mut taken = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        if agree(&bytes, &path.display().to_string()) {
            taken.push(serde_json::from_slice::<Value>(&bytes).unwrap());
        }
    }
    // Not a vacuous test: the fast path takes a good part of the corpus.
    // (68 of 194 when this was written.)
    assert!(taken.len() >= 60, "the fast path took only {} of {} bodies", taken.len(), files.len());

    let mut mutants = 0;
    let mut mutants_taken = 0;
    for body in &taken {
        let mut all = Vec::new();
        paths(body, &mut Vec::new(), &mut all);
        for path in &all {
            let original = node(&mut body.clone(), path).clone();
            let mut replacements = vec![json!(null), json!(7), json!(" 12 "), json!(true), json!(1.5), json!("x")];
            match &original {
                Value::Object(m) => {
                    replacements.push(Value::Array(m.values().cloned().collect()));
                    let mut extra = m.clone();
                    extra.insert("unexpected".to_owned(), json!(1));
                    replacements.push(Value::Object(extra));
                    replacements.push(json!({}));
                }
                Value::Array(a) => {
                    replacements.push(json!({}));
                    replacements.push(Value::Array(a.iter().chain(a.iter()).cloned().collect()));
                    replacements.push(json!([null]));
                }
                _ => {}
            }
            for replacement in replacements {
                let mut mutant = body.clone();
                *node(&mut mutant, path) = replacement;
                mutants += 1;
                if agree(&serde_json::to_vec(&mutant).unwrap(), "a mutant") {
                    mutants_taken += 1;
                }
            }
        }
    }
    // (14,802 mutants, 7,458 of them taken, when this was written.)
    assert!(mutants > 10_000 && mutants_taken > 5_000, "{mutants} mutants, {mutants_taken} taken by the fast path");
}

#[test]
fn the_fast_path_leaves_what_it_cannot_read_alike_to_the_tolerant_parse() {
    let text = |extra: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"2"}},"messages":[{{"from":"49","id":"wamid.A","timestamp":"1700000000","type":"text","text":{{"body":"Hallo\nWelt"}}{extra}}}]}}}}]}}]}}"#
        )
    };
    assert!(agree(text("").as_bytes(), "plain"), "a plain text message takes the fast path");
    let body = parse_webhook(text("").as_bytes()).unwrap();
    let change = body.changes().next().unwrap();
    assert_eq!(change.messages()[0].content, MessageContent::Text { body: "Hallo\nWelt".into() });
    assert!(matches!(change.value(), ChangeValue::Messages(_)));
    assert_eq!(change.change.raw_message_json(0).as_deref(), Some(r#"{"from":"49","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"Hallo\nWelt"}}"#));
    assert_eq!(change.change.raw_value["metadata"]["phone_number_id"], "2", "the raw value on demand");

    for (extra, what) in [
        (r#","id":"wamid.B""#, "a duplicate key"),
        (r#","referral":{"source_url":"u"}"#, "a key the fast path does not read"),
        (r#","image":{"id":"m"}"#, "a second content"),
    ] {
        assert!(!agree(text(extra).as_bytes(), what), "{what}: left to the tolerant parse");
    }
    for (body, what) in [
        (r#"["whatsapp_business_account",[]]"#, "an array for the body"),
        (r#"{"entry":[["1",null,[]]]}"#, "an array for an entry"),
        (r#"{"entry":[{"changes":[{"field":"messages","value":{"metadata":["1","2"]}}]}]}"#, "an array for the metadata"),
        (r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"type":"image","image":{"id":"m"}}]}}]}]}"#, "another type"),
        (r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"text":{"body":"x"}}]}}]}]}"#, "a message without a type"),
        (r#"{"entry":[{"changes":[{"value":{"messages":[]}}]}]}"#, "a change without a field"),
        (r#"{"entry":[{"changes":[{"field":"security","value":{"event":"PIN_CHANGED"}}]}]}"#, "another field"),
        (r#"{"entry":{}}"#, "an object for the entries"),
    ] {
        assert!(!agree(body.as_bytes(), what), "{what}: left to the tolerant parse");
    }
}
