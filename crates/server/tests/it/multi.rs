//! Several processors on one database: two server instances sharing PostgreSQL (a webhook
//! received by one reaches a browser connected to the other; each journal entry is processed
//! once), and two processors racing in one process on either backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wabridge::accounts::{Role, TenantId, store};
use wabridge::clock::Clock;
use wabridge::ingest::journal::Journal;
use wabridge::ingest::processor::Processor;
use wabridge::ingest::{ChangeHandler, Effects, HandlerFuture, Registry, RoutedChange};
use wabridge::live::LiveHub;
use wabridge::notifications::count_for_message;
use wabridge::store::{Db, Tx};

use crate::helpers::{backend, eventually, fresh_database_url, spawn_app_on};
use crate::ingest::{post_signed, read_events, tenant_attached, tenant_with_number, text_body};

async fn pending(db: &Db) -> i64 {
    wabridge::ingest::journal::pending_count(db).await.unwrap()
}

#[tokio::test]
async fn two_instances_on_one_postgres_database_share_live_events_and_process_each_entry_once() {
    if backend() != "postgres" {
        // One process owns a SQLite file: several instances are a PostgreSQL deployment.
        // scripts/test runs this test in its WABRIDGE_TEST_DB=postgres pass.
        eprintln!("two_instances_on_one_postgres_database…: PostgreSQL-only test, not applicable on {}", backend());
        return;
    }
    let (url, _) = fresh_database_url().await;
    let a = spawn_app_on(&url).await;
    let b = spawn_app_on(&url).await;
    let (t, number) = tenant_with_number(&a, "Salon Multi").await;
    let (c, _) = b.signed_in("owner@salonmulti.test").await;
    let stream = c.get(b.url("/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let reader = tokio::spawn(read_events(stream, "notification", 1));
    // The stream is subscribed once its response headers arrived; the body follows.
    let body = text_body(&number, "4966", "Mara", &[("wamid.MULTI", "Von Instanz A")]);
    assert_eq!(post_signed(&a, &body).await.status(), 200);
    let events = reader.await.unwrap();
    assert_eq!(events[0].1["title"], "Neue WhatsApp-Nachricht von Mara");
    assert_eq!(events[0].1["preview"], "Von Instanz A");

    // Many bodies to both instances at once: both processors claim from one journal.
    let mut posts = Vec::new();
    for i in 0..200 {
        let app = if i % 2 == 0 { &a } else { &b };
        let body = text_body(&number, "4966", "Mara", &[(&format!("wamid.M{i}"), "x")]);
        posts.push(async move { post_signed(app, &body).await.status() });
    }
    for status in futures_util::future::join_all(posts).await {
        assert_eq!(status, 200);
    }
    eventually("journal drained", || async { pending(&a.db).await == 0 }).await;
    for i in 0..200 {
        assert_eq!(count_for_message(&a.db, t, &format!("wamid.M{i}")).await.unwrap(), 1, "wamid.M{i}");
    }
}

/// Counts how often each change was handed to it.
#[derive(Default)]
struct Counter {
    seen: Mutex<HashMap<(i64, i64), usize>>,
}

impl ChangeHandler for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn apply<'a>(&'a self, _: &'a mut Tx, change: &'a RoutedChange<'a>, _: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            *self.seen.lock().unwrap().entry((change.journal_id, change.change_index)).or_default() += 1;
            Ok(())
        })
    }
}

#[tokio::test]
async fn two_processors_racing_on_one_journal_never_apply_an_entry_twice() {
    let (url, _dir) = fresh_database_url().await;
    let db = Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    let clock = Clock::default();
    let now = clock.now_ms();
    let tenant: TenantId = tenant_attached(&db, "Race", "WABA-RACE", "PN-RACE", now).await;
    store::create_user(&db, Some(tenant), "owner@race.test", "Owner", "x", Role::Owner, now).await.unwrap();

    let journal = Journal::start(db.clone(), clock.clone());
    let appends = (0..400).map(|i| {
        let journal = journal.clone();
        async move { journal.append(text_body("PN-RACE", "4977", "R", &[(&format!("wamid.R{i}"), "r")]).into()).await }
    });
    for r in futures_util::future::join_all(appends).await {
        r.unwrap();
    }

    let counter = Arc::new(Counter::default());
    let registry = Registry::standard().subscribe("messages", counter.clone());
    let workers = (0..2).map(|_| {
        let p = Processor::new(db.clone(), clock.clone(), registry.clone(), LiveHub::default(), Arc::default());
        tokio::spawn(async move {
            let mut applied = 0;
            loop {
                match p.process_batch().await.unwrap() {
                    0 => return applied,
                    n => applied += n,
                }
            }
        })
    });
    let mut total = 0;
    for w in futures_util::future::join_all(workers).await {
        total += w.unwrap();
    }
    assert_eq!(total, 400, "the two processors applied 400 entries between them");
    assert_eq!(pending(&db).await, 0);
    let seen = counter.seen.lock().unwrap();
    assert_eq!(seen.len(), 400);
    assert!(seen.values().all(|&n| n == 1), "a change was applied twice");
    drop(seen);
    for i in 0..400 {
        assert_eq!(count_for_message(&db, tenant, &format!("wamid.R{i}")).await.unwrap(), 1);
    }
    db.close().await;
}
