//! Replays the fuzz corpus (`fuzz/corpus/webhook`) through the parser, as the fuzz target does.

use std::path::PathBuf;

use wabridge_cloud_api::parse_webhook;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/webhook"));
    let mut count = 0;
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        count += 1;
        if let Ok(body) = parse_webhook(&bytes) {
            parsed += 1;
            for c in body.changes() {
                let _ = (c.phone_number_id(), c.waba_id(), c.messages().len());
            }
        }
    }
    // Seeded from the conformance bodies, which are all JSON.
    assert!(count >= 190, "corpus has {count} files");
    assert!(parsed >= 190, "only {parsed} corpus files parsed");
}
