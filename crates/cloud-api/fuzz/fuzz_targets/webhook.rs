#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use wabridge_cloud_api::{parse_webhook, verify_signature};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = parse_webhook(data) {
        for change in body.changes() {
            let _ = (change.phone_number_id(), change.waba_id(), change.contacts().len());
            for message in change.messages() {
                let _ = (message.customer_key(), message.content.type_name());
            }
        }
    }
    // The signature check sees the same untrusted bytes, header included.
    let secret = SecretString::from("fuzz-secret");
    let header = std::str::from_utf8(data.get(..data.len().min(80)).unwrap_or_default()).ok();
    let _ = verify_signature(&secret, header, data);
});
