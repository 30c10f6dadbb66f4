//! The storage scenario, run on whichever backend `WABRIDGE_TEST_DB` names (the test script
//! runs it on both).

use wabridge::accounts::store::{self, CreateUserError};
use wabridge::accounts::{Role, TenantId};
use wabridge::store::{Db, Engine};
use wabridge::{with_pool, with_tx};

use crate::helpers::{backend, fresh_database_url};

async fn fresh_db() -> (Db, Option<crate::helpers::TempDir>) {
    let (url, dir) = fresh_database_url().await;
    let db = Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

#[tokio::test]
async fn the_backend_under_test_is_the_one_asked_for() {
    let (db, _dir) = fresh_db().await;
    let expected = if backend() == "postgres" { Engine::Postgres } else { Engine::Sqlite };
    assert_eq!(db.engine(), expected);
    // Migrating twice is harmless.
    db.migrate().await.unwrap();
}

#[tokio::test]
async fn users_tenants_and_sessions_round_trip() {
    let (db, _dir) = fresh_db().await;
    let t = store::create_tenant(&db, "Salon", 1).await.unwrap();
    let u = store::create_user(&db, Some(t), "a@salon.test", "A", "hash", Role::Owner, 1).await.unwrap();
    assert!(matches!(
        store::create_user(&db, Some(t), "a@salon.test", "A2", "hash", Role::Agent, 1).await,
        Err(CreateUserError::Duplicate)
    ));
    assert!(matches!(store::create_user(&db, None, "b@salon.test", "B", "h", Role::Owner, 1).await, Err(CreateUserError::BadTenant)));
    assert!(matches!(store::create_user(&db, Some(t), "c@salon.test", "C", "h", Role::Support, 1).await, Err(CreateUserError::BadTenant)));
    assert!(matches!(
        store::create_user(&db, Some(TenantId(987_654)), "d@salon.test", "D", "h", Role::Agent, 1).await,
        Err(CreateUserError::BadTenant)
    ));
    assert_eq!(store::credentials(&db, "a@salon.test").await.unwrap(), Some((u, "hash".to_owned())));

    store::create_session(&db, "live", u, "csrf1", 100, 200).await.unwrap();
    store::create_session(&db, "old", u, "csrf2", 10, 50).await.unwrap();
    let s = store::session_user(&db, "live", 150).await.unwrap().unwrap();
    assert_eq!((s.id, s.tenant_id, s.role, s.csrf_token.as_str()), (u, Some(t), Role::Owner, "csrf1"));
    assert!(store::session_user(&db, "live", 200).await.unwrap().is_none(), "expired at its end");
    assert!(store::session_user(&db, "old", 40).await.unwrap().is_some());
    store::delete_session(&db, "live", 150).await.unwrap();
    assert!(store::session_user(&db, "live", 150).await.unwrap().is_none());
    // The sweep removed the expired one too.
    assert!(store::session_user(&db, "old", 40).await.unwrap().is_none());

    store::set_locale(&db, u, "en").await.unwrap();
    store::create_session(&db, "again", u, "csrf3", 100, 300).await.unwrap();
    assert_eq!(store::session_user(&db, "again", 150).await.unwrap().unwrap().locale.as_deref(), Some("en"));

    store::record_failure(&db, "a@salon.test", "10.0.0.1", 100).await.unwrap();
    store::record_failure(&db, "x@salon.test", "10.0.0.1", 100).await.unwrap();
    assert_eq!(store::recent_failures(&db, "a@salon.test", "10.0.0.1", 50).await.unwrap(), (1, 2));
    assert_eq!(store::recent_failures(&db, "a@salon.test", "10.0.0.1", 100).await.unwrap(), (0, 0));
    store::clear_failures(&db, "a@salon.test", 0).await.unwrap();
    assert_eq!(store::recent_failures(&db, "a@salon.test", "10.0.0.1", 50).await.unwrap(), (0, 1));
}

#[tokio::test]
async fn an_uncommitted_transaction_changes_nothing() {
    let (db, _dir) = fresh_db().await;
    {
        let mut tx = db.begin().await.unwrap();
        with_tx!(&mut tx, |c| sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2)")
            .bind("ghost")
            .bind(1_i64)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
        // dropped without commit
    }
    let n = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tenants").fetch_one(p).await).unwrap();
    assert_eq!(n, 0);
    let mut tx = db.begin().await.unwrap();
    with_tx!(&mut tx, |c| sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2)")
        .bind("real")
        .bind(1_i64)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();
    let n = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tenants").fetch_one(p).await).unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn concurrent_writers_all_land() {
    let (db, _dir) = fresh_db().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move { store::create_tenant(&db, &format!("T{i}"), i).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store::all_tenants(&db).await.unwrap().len(), 40);
}

/// A fresh database with the migrations up to `version` applied (to test the next one on data).
async fn migrated_to(version: i64) -> (Db, Option<crate::helpers::TempDir>) {
    use wabridge::store::PoolRef;
    let (url, dir) = fresh_database_url().await;
    let db = Db::open(&url).await.unwrap();
    match db.write() {
        PoolRef::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run_to(version, p).await.unwrap(),
        PoolRef::Postgres(p) => sqlx::migrate!("./migrations/postgres").run_to(version, p).await.unwrap(),
    }
    (db, dir)
}

/// Migration 0009 rebuilds the notifications on SQLite (and swaps their indexes on both):
/// what users were notified of and what they read survives it, and the keys still hold.
#[tokio::test]
async fn notifications_and_read_marks_survive_the_partial_index_migration() {
    let (db, _dir) = migrated_to(8).await;
    let t = store::create_tenant(&db, "Salon", 1).await.unwrap();
    let u = store::create_user(&db, Some(t), "a@salon.test", "A", "hash", Role::Owner, 1).await.unwrap();
    const INSERT: &str = "INSERT INTO notifications (tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at)
         VALUES ($1, $2, 'inbound_message', $3, 'Kunde', 'Hallo', '/inbox', 1) RETURNING id";
    let count = async |sql: &'static str| with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap();
    let shared = with_pool!(db.write(), |p| {
        let shared = sqlx::query_scalar::<_, i64>(INSERT).bind(t).bind(None::<i64>).bind("msg:wamid.1").fetch_one(p).await.unwrap();
        sqlx::query_scalar::<_, i64>(INSERT).bind(t).bind(Some(u.0)).bind("onboarding:1").fetch_one(p).await.unwrap();
        sqlx::query("INSERT INTO notification_reads (notification_id, user_id, read_at) VALUES ($1, $2, 5)").bind(shared).bind(u).execute(p).await.unwrap();
        shared
    });

    db.migrate().await.unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM notifications").await, 2);
    assert_eq!(count("SELECT COUNT(*) FROM notification_reads").await, 1, "the read mark survived");
    with_pool!(db.write(), |p| {
        // A user's key still refuses a second notification of the same thing …
        let again = sqlx::query(
            "INSERT INTO notifications (tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at)
             VALUES ($1, $2, 'onboarding', 'onboarding:1', 'WhatsApp', 'x', '/', 2)
             ON CONFLICT (user_id, dedupe_key) WHERE user_id IS NOT NULL DO NOTHING",
        )
        .bind(t)
        .bind(u)
        .execute(p)
        .await
        .unwrap();
        assert_eq!(again.rows_affected(), 0);
        // … and so does the tenant's key for a shared one.
        let err = sqlx::query(INSERT).bind(t).bind(None::<i64>).bind("msg:wamid.1").execute(p).await.unwrap_err();
        assert!(wabridge::store::is_unique_violation(&err), "{err}");
        // Removing a notification still removes its read marks.
        sqlx::query("DELETE FROM notifications WHERE id = $1").bind(shared).execute(p).await.unwrap();
    });
    assert_eq!(count("SELECT COUNT(*) FROM notification_reads").await, 0);
}

/// Migration 0010 rebuilds the messages on SQLite (and swaps their key on both): every
/// message survives with its id, a customer's message is keyed by Meta's time and id, ours by
/// Meta's id.
#[tokio::test]
async fn messages_survive_the_inbound_key_migration_and_the_keys_hold() {
    let (db, _dir) = migrated_to(9).await;
    let t = store::create_tenant(&db, "Salon", 1).await.unwrap();
    let conversation = with_pool!(db.write(), |p| {
        let customer = sqlx::query_scalar::<_, i64>("INSERT INTO customers (tenant_id, phone, created_at, updated_at) VALUES ($1, '4915112345678', 1, 1) RETURNING id")
            .bind(t)
            .fetch_one(p)
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO conversations (tenant_id, phone_number_id, customer_id, last_message_at, last_preview, created_at) VALUES ($1, '1001', $2, 1, 'Hallo', 1) RETURNING id",
        )
        .bind(t)
        .bind(customer)
        .fetch_one(p)
        .await
        .unwrap()
    });
    const INSERT: &str = "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, outbox_id, status, status_rank, meta_at, created_at)
         VALUES ($1, $2, $3, $4, 'text', 'Hallo', '{}', NULL, 'received', 0, $5, 1) RETURNING id";
    let insert = async |direction: &str, wamid: Option<&str>, at: i64| {
        with_pool!(db.write(), |p| sqlx::query_scalar::<_, i64>(INSERT).bind(t).bind(conversation).bind(direction).bind(wamid).bind(at).fetch_one(p).await)
    };
    let kept = [insert("in", Some("wamid.IN"), 1_000).await.unwrap(), insert("out", Some("wamid.OUT"), 2_000).await.unwrap(), insert("out", None, 3_000).await.unwrap()];

    db.migrate().await.unwrap();
    let rows = with_pool!(db.read(), |p| sqlx::query_as::<_, (i64, Option<String>)>("SELECT id, wamid FROM messages ORDER BY id")
        .fetch_all(p)
        .await)
    .unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), kept.to_vec(), "every message kept its id");
    assert_eq!(rows[0].1.as_deref(), Some("wamid.IN"));
    // A customer's message again at the same time is a redelivery; ours again is a duplicate.
    let err = insert("in", Some("wamid.IN"), 1_000).await.unwrap_err();
    assert!(wabridge::store::is_unique_violation(&err), "{err}");
    let err = insert("out", Some("wamid.OUT"), 9_000).await.unwrap_err();
    assert!(wabridge::store::is_unique_violation(&err), "{err}");
    // Sends not yet accepted by Meta have no id, any number of them.
    insert("out", None, 4_000).await.unwrap();
    // The keys of the two directions are apart.
    insert("in", Some("wamid.OUT"), 2_000).await.unwrap();
    insert("out", Some("wamid.IN"), 5_000).await.unwrap();
}
