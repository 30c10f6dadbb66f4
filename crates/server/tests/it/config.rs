//! Configuration: defaults, file, environment; every missing setting named at once.

use std::collections::BTreeMap;

use wabridge::config::Settings;

#[test]
fn missing_required_settings_are_all_reported_by_name() {
    let err = Settings::from_sources(&BTreeMap::new(), None).unwrap_err().to_string();
    for name in ["META_APP_ID", "META_APP_SECRET", "META_CONFIG_ID", "META_VERIFY_TOKEN", "WABRIDGE_ENCRYPTION_KEY"] {
        assert!(err.contains(&format!("{name} is required")), "{err}");
    }
    assert!(!err.contains("DATABASE_URL"), "DATABASE_URL has a default: {err}");
}

#[test]
fn file_then_environment_and_defaults() {
    let key = wabridge::crypto::Keyring::generate_key();
    let toml = format!(
        "meta_app_id = \"1\"\nMETA_APP_SECRET = \"from-file\"\nmeta_config_id = \"2\"\nmeta_verify_token = \"v\"\nwabridge_encryption_key = \"{key}\"\nmeta_signup_origins = [\"facebook.com\", \"https://sandbox.test\"]\nwabridge_session_hours = 12\n"
    );
    let mut env = BTreeMap::new();
    env.insert("META_APP_SECRET".to_owned(), "from-env".to_owned());
    env.insert("UNRELATED".to_owned(), "x".to_owned());
    let s = Settings::from_sources(&env, Some(&toml)).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&s.meta.app_secret), "from-env");
    assert_eq!(s.meta.app_id, "1");
    assert_eq!(s.meta.signup_origins, vec!["facebook.com", "https://sandbox.test"]);
    assert_eq!(s.session_hours, 12);
    assert_eq!(s.meta.graph_version, "v26.0");
    assert_eq!(s.meta.graph_url, "https://graph.facebook.com");
    assert_eq!(s.database_url, "sqlite:./wabridge-data/wabridge.db");
    assert!(!format!("{s:?}").contains("from-env"), "secrets never in Debug");
    assert!(matches!(s.media, wabridge::inbox::media::MediaStore::Database), "files in the database by default");
    let mut env = env.clone();
    for (k, v) in [("WABRIDGE_MEDIA_BUCKET", "https://s3.eu-central-1.amazonaws.com/salon-files"), ("WABRIDGE_MEDIA_BUCKET_ACCESS_KEY", "AKIA1"), ("WABRIDGE_MEDIA_BUCKET_SECRET_KEY", "bucket-secret-value")] {
        env.insert(k.to_owned(), v.to_owned());
    }
    let s = Settings::from_sources(&env, Some(&toml)).unwrap();
    assert!(matches!(s.media, wabridge::inbox::media::MediaStore::Bucket(_)));
    assert!(!format!("{s:?}").contains("bucket-secret-value"), "the bucket's secret never in Debug");
}

#[test]
fn invalid_values_are_named() {
    let mut env = BTreeMap::new();
    for (k, v) in [("META_APP_ID", "1"), ("META_APP_SECRET", "s"), ("META_CONFIG_ID", "2"), ("META_VERIFY_TOKEN", "v")] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.insert("WABRIDGE_ENCRYPTION_KEY".to_owned(), "short".to_owned());
    env.insert("WABRIDGE_LISTEN".to_owned(), "nowhere".to_owned());
    env.insert("WABRIDGE_JOURNAL_RETENTION_DAYS".to_owned(), "-1".to_owned());
    env.insert("WABRIDGE_MEDIA_RETENTION_DAYS".to_owned(), "1".to_owned());
    env.insert("WABRIDGE_MEDIA_BUCKET".to_owned(), "https://s3.eu-central-1.amazonaws.com/salon-files".to_owned());
    let err = Settings::from_sources(&env, Some("no_such_setting = 1")).unwrap_err().to_string();
    assert!(err.contains("WABRIDGE_MEDIA_BUCKET needs WABRIDGE_MEDIA_BUCKET_ACCESS_KEY and WABRIDGE_MEDIA_BUCKET_SECRET_KEY"), "{err}");
    env.insert("WABRIDGE_MEDIA_BUCKET".to_owned(), "ftp://files".to_owned());
    let not_http = Settings::from_sources(&env, None).unwrap_err().to_string();
    assert!(not_http.contains("WABRIDGE_MEDIA_BUCKET: bucket URL: must be an http(s) URL"), "{not_http}");
    assert!(err.contains("WABRIDGE_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("WABRIDGE_LISTEN"), "{err}");
    assert!(err.contains("WABRIDGE_JOURNAL_RETENTION_DAYS"), "{err}");
    assert!(err.contains("WABRIDGE_MEDIA_RETENTION_DAYS must be a number of days, at least 2 (0: keep for ever)"), "{err}");
    assert!(err.contains("NO_SUCH_SETTING"), "{err}");
}
