//! Webhook ingestion benchmark (not a test): drives distinct, pre-signed webhook bodies in
//! Meta's 2026 shape at an in-process server over loopback and reports messages (and statuses)
//! per second acknowledged and applied, acknowledgement latency, and webhook-to-browser
//! notification latency through an SSE client on `/events`.
//!
//! cargo bench -p wabridge --bench webhooks -- [--seconds 10] [--connections 64] [--db sqlite|postgres] [--handlers all|notifications|none]
//!
//! The mix (issue 5): 55 % bodies with one text message, 10 % with 2–4 messages, 30 % with one
//! status, 5 % with 2–5 statuses. The load generator is a minimal HTTP/1.1 keep-alive client on
//! raw sockets, so that it takes as little of the machine as possible from the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wabridge::accounts::{Role, TenantId, password, store as accounts};
use wabridge::app::Application;
use wabridge::clock::Clock;
use wabridge::config::Settings;
use wabridge::crypto::Keyring;
use wabridge::onboarding::store::{Attachment, attach};
use wabridge::store::Db;
use wabridge::with_pool;

/// The binary's allocator (src/main.rs), so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const APP_SECRET: &str = "bench-app-secret";
const NUMBERS: usize = 4;
const USERS: usize = 3;
const BENCH_PASSWORD: &str = "bench password 123";

struct Args {
    seconds: u64,
    connections: usize,
    db: String,
    /// `all` (Registry::standard) or `notifications` (only the ingest road's own handler).
    handlers: String,
    /// Offered load in messages+statuses per second (paced), or as fast as the server answers.
    rate: Option<f64>,
    /// Drive a bare receiver instead of wabridge: the machine's ceiling for the same load.
    reference: bool,
    /// Open event streams (browser tabs), spread over the tenant's users; the first is timed.
    streams: usize,
    /// Journal this many bodies first, then time the processor alone draining them.
    drain: Option<usize>,
    /// With `--drain`: journal the bodies but apply none (what the fill alone costs).
    fill_only: bool,
    /// Leave the database behind (SQLite: its folder is printed) to look at afterwards.
    keep: bool,
    /// Customers drawn from this many (returning customers); without it every body comes
    /// from a new customer.
    customers: Option<u64>,
    /// Instances of wabridge on the one database (PostgreSQL), the connections spread over
    /// them; the timed event stream is the first instance's.
    instances: usize,
}

fn args() -> Args {
    let mut a = Args { seconds: 10, connections: 64, db: "sqlite".to_owned(), handlers: "all".to_owned(), rate: None, reference: false, streams: 1, drain: None, fill_only: false, keep: false, customers: None, instances: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--connections" => a.connections = it.next().and_then(|v| v.parse().ok()).expect("--connections N"),
            "--db" => a.db = it.next().expect("--db sqlite|postgres"),
            "--handlers" => a.handlers = it.next().expect("--handlers all|notifications|none"),
            "--rate" => a.rate = Some(it.next().and_then(|v| v.parse().ok()).expect("--rate messages-per-second")),
            "--reference" => a.reference = true,
            "--drain" => a.drain = Some(it.next().and_then(|v| v.parse().ok()).expect("--drain BODIES")),
            "--fill-only" => a.fill_only = true,
            "--keep" => a.keep = true,
            "--customers" => a.customers = Some(it.next().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).expect("--customers N (at least 1)")),
            "--streams" => a.streams = it.next().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).expect("--streams N (at least 1)"),
            "--instances" => a.instances = it.next().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).expect("--instances N (at least 1)"),
            // cargo bench passes --bench to harness=false targets.
            "--bench" => {}
            other => panic!("unknown argument {other}; use --seconds N --connections N --db sqlite|postgres --handlers all|notifications|none --rate N --streams N --reference --drain BODIES [--fill-only] --keep --customers N --instances N"),
        }
    }
    assert!(a.instances == 1 || a.db == "postgres", "several instances share one PostgreSQL database: --instances needs --db postgres");
    a
}

/// One pre-signed request.
struct Request {
    bytes: Vec<u8>,
    /// Messages plus statuses in the body.
    items: u32,
    /// Whether its first message is a text whose notification we time.
    timed: bool,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A message id in the shape Meta gives them (`wamid.HBgM…`: base64 of the customer's number
/// and 20 random hex digits), so that ids land in an index as scattered as real ones do.
fn wamid(rng: &mut StdRng, wa: &str) -> String {
    let mut raw = vec![0x1C, 0x18, u8::try_from(wa.len()).unwrap()];
    raw.extend_from_slice(wa.as_bytes());
    raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, 0x14]);
    raw.extend(format!("{:020X}", rng.random_range(0..u128::MAX) >> 48).bytes());
    raw.push(0x00);
    format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Meta's timestamp (Unix seconds) of body `idx`: advancing as a run's time does, about
/// 20,000 bodies a second, the same in every run.
fn meta_timestamp(idx: usize) -> u64 {
    1_770_000_000 + (idx / 20_000) as u64
}

fn text_message(rng: &mut StdRng, idx: usize, k: usize, wa: &str, bsuid: &str) -> String {
    let preview = if k == 0 { format!("b{idx}") } else { format!("b{idx}.{k}") };
    format!(
        r#"{{"from":"{wa}","from_user_id":"{bsuid}","id":"{id}","timestamp":"{at}","type":"text","text":{{"body":"{preview}\nSecond line of the customer's message"}}}}"#,
        id = wamid(rng, wa),
        at = meta_timestamp(idx)
    )
}

fn status(rng: &mut StdRng, idx: usize, k: usize, wa: &str, bsuid: &str) -> String {
    let s = ["sent", "delivered", "read"][k % 3];
    format!(
        r#"{{"id":"{id}","status":"{s}","timestamp":"{at}","recipient_id":"{wa}","recipient_user_id":"{bsuid}","pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}}}"#,
        id = wamid(rng, wa),
        at = meta_timestamp(idx) + 1
    )
}

/// Body `idx` in Meta's 2026 shape, with the issue's mix; the same for the same `idx` in
/// every run (each run has a fresh database), so that runs of `--drain` compare. From a new
/// customer each, or with `customers`, from one of that many (their number, BSUID and name
/// follow from which one).
fn body(idx: usize, numbers: &[String], waba: &str, customers: Option<u64>) -> (String, u32, bool) {
    let mut rng = StdRng::seed_from_u64(idx as u64);
    let rng = &mut rng;
    let number = &numbers[idx % numbers.len()];
    // A customer's number and BSUID, scattered like real ones.
    let identity = |r: &mut StdRng| (format!("49170{:07}", r.random_range(0..10_000_000)), format!("DE.{}", r.random_range(1_000_000_000_000_000u64..9_000_000_000_000_000)));
    let ((wa, bsuid), name) = match customers {
        None => (identity(rng), idx as u64),
        Some(n) => {
            let c = rng.random_range(0..n);
            // The same for the same customer.
            (identity(&mut StdRng::seed_from_u64(c ^ 0x5eed_c057_0e25)), c)
        }
    };
    let roll = rng.random_range(0..100);
    let contacts = format!(r#"[{{"profile":{{"name":"Kunde {name}"}},"wa_id":"{wa}","user_id":"{bsuid}"}}]"#);
    let (kind, list, n, timed) = if roll < 55 {
        ("messages", vec![text_message(rng, idx, 0, &wa, &bsuid)], 1, true)
    } else if roll < 65 {
        let n = rng.random_range(2..=4);
        ("messages", (0..n).map(|k| text_message(rng, idx, k, &wa, &bsuid)).collect(), n, true)
    } else if roll < 95 {
        ("statuses", vec![status(rng, idx, 0, &wa, &bsuid)], 1, false)
    } else {
        let n = rng.random_range(2..=5);
        ("statuses", (0..n).map(|k| status(rng, idx, k, &wa, &bsuid)).collect(), n, false)
    };
    let json = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"4930123456{}","phone_number_id":"{number}"}},"contacts":{contacts},"{kind}":[{}]}},"field":"messages"}}]}}]}}"#,
        idx % 10,
        list.join(",")
    );
    (json, u32::try_from(n).unwrap(), timed)
}

/// Where the bodies' customers come from, for the report.
fn customers_label(customers: Option<u64>) -> String {
    match customers {
        None => "a new customer per body".to_owned(),
        Some(n) => format!("customers from {n}"),
    }
}

fn request(json: &str, secret: &SecretString) -> Vec<u8> {
    let signature = wabridge_cloud_api::sign(secret, json.as_bytes());
    let mut out = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: facebookexternalua\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
        json.len()
    )
    .into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

async fn fresh_db(kind: &str) -> (String, Option<std::path::PathBuf>, Option<(String, String)>) {
    match kind {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("wabridge-bench-{}", random_hex(6)));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite:{}", dir.join("wabridge.db").display()), Some(dir), None)
        }
        "postgres" => {
            use sqlx::Connection as _;
            let admin = std::env::var("WABRIDGE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let name = format!("wabridge_bench_{}", random_hex(6));
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable (WABRIDGE_TEST_PG_URL)");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
            let base = admin.rsplit_once('/').unwrap().0.to_owned();
            (format!("{base}/{name}"), None, Some((admin, name)))
        }
        other => panic!("--db must be sqlite or postgres, not {other}"),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Sends requests back to back on one keep-alive connection; returns ack latencies (µs).
async fn drive(
    addr: std::net::SocketAddr,
    requests: Arc<Vec<Request>>,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    sent_at: Arc<Vec<AtomicU64>>,
    origin: Instant,
    acked_items: Arc<AtomicU64>,
    interval: Option<Duration>,
) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    // Paced runs start the connections spread over one interval.
    let mut next_at = tokio::time::Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(rand::rng().random_range(0.0..1.0)));
    while !stop.load(Ordering::Relaxed) {
        if let Some(interval) = interval {
            tokio::time::sleep_until(next_at).await;
            next_at += interval;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        let start = Instant::now();
        sent_at[i].store(u64::try_from(start.duration_since(origin).as_micros()).unwrap(), Ordering::Relaxed);
        stream.write_all(&req.bytes).await.unwrap();
        // Read one response: headers, then Content-Length bytes.
        let mut have = 0;
        let status_ok;
        loop {
            let n = stream.read(&mut buf[have..]).await.unwrap();
            assert!(n > 0, "server closed the connection");
            have += n;
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap().to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                while have < end + 4 + len {
                    let n = stream.read(&mut buf[have..]).await.unwrap();
                    assert!(n > 0);
                    have += n;
                }
                status_ok = head.starts_with("http/1.1 200");
                break;
            }
        }
        latencies.push(u64::try_from(start.elapsed().as_micros()).unwrap());
        if status_ok {
            acked_items.fetch_add(u64::from(req.items), Ordering::Relaxed);
        } else {
            eprintln!("non-200 answer: {}", String::from_utf8_lossy(&buf[..have.min(200)]));
        }
    }
    latencies
}

/// Signs `email` in and opens its event stream.
async fn event_stream(addr: std::net::SocketAddr, email: &str) -> reqwest::Response {
    let web = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = web.get(format!("http://{addr}/sign-in")).send().await.unwrap().text().await.unwrap();
    let at = form.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let csrf = form[at..at + 64].to_owned();
    let signed = web
        .post(format!("http://{addr}/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("email", email), ("password", BENCH_PASSWORD), ("next", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303, "sign-in failed");
    let events = web.get(format!("http://{addr}/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    events
}

/// Reads a stream to its end like a browser tab would; returns how many events it got.
async fn drain_stream(resp: reqwest::Response, done: Arc<AtomicBool>) -> u64 {
    use futures_util::StreamExt as _;
    let mut stream = resp.bytes_stream();
    let (mut events, mut last) = (0, 0u8);
    while !done.load(Ordering::Relaxed) {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await else { continue };
        // An event ends with an empty line; the two newlines may straddle chunks.
        for &b in chunk.iter() {
            events += u64::from(b == b'\n' && last == b'\n');
            last = if b == b'\n' && last == b'\n' { 0 } else { b };
        }
    }
    events
}

/// Reads `notification` events of the owner's stream; returns webhook-to-browser latencies (µs).
async fn watch_notifications(
    resp: reqwest::Response,
    sent_at: Arc<Vec<AtomicU64>>,
    origin: Instant,
    done: Arc<AtomicBool>,
) -> (Vec<u64>, u64) {
    use futures_util::StreamExt as _;
    let mut stream = resp.bytes_stream();
    let mut buffer = Vec::<u8>::new();
    let mut out = Vec::new();
    let mut resyncs = 0;
    while !done.load(Ordering::Relaxed) {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await else { continue };
        let now = u64::try_from(origin.elapsed().as_micros()).unwrap();
        buffer.extend_from_slice(&chunk);
        // A chunk may hold many events (a commit's row): walk them, then drop them at once.
        let mut start = 0;
        while let Some(len) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = String::from_utf8_lossy(&buffer[start..start + len + 2]);
            start += len + 2;
            if frame.contains("event: resync") || frame.contains("event:resync") {
                resyncs += 1;
                continue;
            }
            // The preview of a timed message is "b<index>".
            if let Some(at) = frame.find("\"preview\":\"b") {
                let digits: String = frame[at + 12..].chars().take_while(char::is_ascii_digit).collect();
                let rest = &frame[at + 12 + digits.len()..];
                if rest.starts_with('"') {
                    if let Ok(i) = digits.parse::<usize>() {
                        let sent = sent_at[i].load(Ordering::Relaxed);
                        if sent > 0 && now >= sent {
                            out.push(now - sent);
                        }
                    }
                }
            }
        }
        buffer.drain(..start);
    }
    (out, resyncs)
}

/// CPU time of this process (server and load generator together), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime, fields 14 and 15 of proc(5), in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's load average over the last minute.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned()
}

async fn pending_bodies(db: &Db) -> i64 {
    wabridge::ingest::journal::pending_count(db).await.unwrap()
}

/// Enough distinct pre-signed bodies for a run at 100,000 messages a second (2.5 times the
/// target; on a fast machine the server with its own handler alone acknowledged 52,000).
fn presign(seconds: u64, numbers: &[String], waba: &str, customers: Option<u64>) -> Arc<Vec<Request>> {
    let count = usize::try_from(seconds).unwrap() * 75_000;
    eprintln!("pre-signing {count} distinct bodies…");
    let secret = SecretString::from(APP_SECRET);
    let requests: Vec<Request> = (0..count)
        .map(|i| {
            let (json, items, timed) = body(i, numbers, waba, customers);
            Request { bytes: request(&json, &secret), items, timed }
        })
        .collect();
    let total_items: u64 = requests.iter().map(|r| u64::from(r.items)).sum();
    eprintln!(
        "{} bodies, {:.2} messages and statuses per body, {} with messages",
        count,
        total_items as f64 / count as f64,
        requests.iter().filter(|r| r.timed).count()
    );
    Arc::new(requests)
}

/// What the connections achieved.
struct Driven {
    /// Acknowledgement latencies (µs), one per body answered.
    latencies: Vec<u64>,
    /// Messages and statuses acknowledged with 200.
    acked: u64,
    /// From the first request to the last answer.
    elapsed: Duration,
    /// Whether the pre-signed bodies ran out.
    exhausted: bool,
    cpu_before: f64,
    load_before: String,
    started: Instant,
}

/// Drives the bodies at `addr` over `args.connections` keep-alive connections for `args.seconds`.
async fn drive_all(addrs: &[std::net::SocketAddr], requests: &Arc<Vec<Request>>, args: &Args, sent_at: &Arc<Vec<AtomicU64>>, origin: Instant) -> Driven {
    // Each connection sends one body per interval: bodies/s = rate / (items per body).
    let total_items: u64 = requests.iter().map(|r| u64::from(r.items)).sum();
    let items_per_body = total_items as f64 / requests.len() as f64;
    let interval = args.rate.map(|r| Duration::from_secs_f64(args.connections as f64 * items_per_body / r));
    let at: Vec<String> = addrs.iter().map(|a| format!("http://{a}/webhooks/whatsapp")).collect();
    eprintln!("driving {} connections for {} s at {} …", args.connections, args.seconds, at.join(", "));
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acked_items = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let load_before = load_average();
    let drivers: Vec<_> = (0..args.connections)
        .map(|k| tokio::spawn(drive(addrs[k % addrs.len()], requests.clone(), next.clone(), stop.clone(), sent_at.clone(), origin, acked_items.clone(), interval)))
        .collect();
    let timer = {
        let stop = stop.clone();
        let secs = args.seconds;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut latencies = Vec::new();
    for d in drivers {
        latencies.extend(d.await.unwrap());
    }
    let elapsed = started.elapsed();
    timer.abort();
    Driven {
        latencies,
        acked: acked_items.load(Ordering::Relaxed),
        elapsed,
        exhausted: next.load(Ordering::Relaxed) >= requests.len(),
        cpu_before,
        load_before,
        started,
    }
}

/// The bare receiver of `--reference`: checks the signature, parses the body into Meta's
/// types and answers 200 — no journal, no processing, no middleware.
async fn bare_receiver(
    axum::extract::State(secret): axum::extract::State<Arc<SecretString>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let signature = headers.get(wabridge_cloud_api::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if wabridge_cloud_api::verify_signature(&secret, signature, &body).is_err() {
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    match wabridge_cloud_api::parse_webhook(&body) {
        Ok(parsed) => {
            std::hint::black_box(parsed.changes().count());
            axum::http::StatusCode::OK
        }
        Err(_) => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// `--reference`: the same load at a receiver that does only what every receiver must (verify
/// and parse), on the same machine in the same hour — the ceiling wabridge's figures compare to.
async fn run_reference(args: Args) {
    let numbers: Vec<String> = (0..NUMBERS).map(|i| format!("10{i}000000000001")).collect();
    let requests = presign(args.seconds, &numbers, "WABA-BENCH", args.customers);
    let router = axum::Router::new()
        .route("/webhooks/whatsapp", axum::routing::post(bare_receiver))
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .with_state(Arc::new(SecretString::from(APP_SECRET)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..requests.len()).map(|_| AtomicU64::new(0)).collect());
    let Driven { mut latencies, acked, elapsed, exhausted, cpu_before, load_before, .. } = drive_all(&[addr], &requests, &args, &sent_at, Instant::now()).await;
    let cpu = cpu_seconds() - cpu_before;
    latencies.sort_unstable();
    println!();
    println!("webhooks benchmark — REFERENCE bare receiver (signature + parse, nothing kept) on {}, {} connections, {} s", std::env::consts::ARCH, args.connections, args.seconds);
    println!("  bodies answered                {} ({acked} messages+statuses){}", latencies.len(), if exhausted { " — ran out of pre-signed bodies" } else { "" });
    println!("  answered                       {:>9.0} messages/s   ({:.0} bodies/s)", acked as f64 / elapsed.as_secs_f64(), latencies.len() as f64 / elapsed.as_secs_f64());
    println!("  latency                        p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms", percentile(&latencies, 0.50), percentile(&latencies, 0.99), percentile(&latencies, 1.0));
    println!(
        "  CPU used (server + generator)  {:.2} s of {:.2} s wall = {:.1} ms per 1000 messages; load average before: {load_before}",
        cpu,
        elapsed.as_secs_f64(),
        cpu * 1e6 / acked.max(1) as f64
    );
    server.abort();
}

/// A fresh database with the bench tenant, its users and its numbers attached.
struct Setup {
    url: String,
    dir: Option<std::path::PathBuf>,
    pg: Option<(String, String)>,
    db: Db,
    clock: Clock,
    numbers: Vec<String>,
    waba: String,
}

async fn setup(kind: &str) -> Setup {
    let (url, dir, pg) = fresh_db(kind).await;
    let db = Db::open(&url).await.unwrap();
    db.migrate().await.unwrap();
    let clock = Clock::default();
    let now = clock.now_ms();
    let tenant: TenantId = accounts::create_tenant(&db, "Bench Salon", now).await.unwrap();
    let hash = password::hash(BENCH_PASSWORD.to_owned()).await.unwrap();
    for u in 0..USERS {
        let role = if u == 0 { Role::Owner } else { Role::Agent };
        accounts::create_user(&db, Some(tenant), &format!("user{u}@bench.test"), &format!("User {u}"), &hash, role, now).await.unwrap();
    }
    let waba = "WABA-BENCH".to_owned();
    let numbers: Vec<String> = (0..NUMBERS).map(|i| format!("10{i}000000000001")).collect();
    for n in &numbers {
        let a = Attachment { waba_id: &waba, business_id: None, phone_number_id: n, display_phone_number: None, token_ciphertext: None, status: "connected" };
        attach(&db, tenant, &a, now).await.unwrap();
    }
    Setup { url, dir, pg, db, clock, numbers, waba }
}

impl Setup {
    /// Closes the database and removes it, unless it is to be kept.
    async fn remove(self, keep: bool) {
        self.db.close().await;
        if keep {
            println!("  database kept                  {}", self.url);
            return;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = self.pg {
            use sqlx::Connection as _;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await;
            }
        }
    }
}

fn registry(handlers: &str) -> wabridge::ingest::Registry {
    match handlers {
        "all" => wabridge::ingest::Registry::standard(),
        "notifications" => wabridge::ingest::Registry::default().subscribe("messages", Arc::new(wabridge::notifications::InboundMessageNotifier::default())),
        // The road alone: journaled, read, parsed and routed to a handler that writes nothing.
        "none" => wabridge::ingest::Registry::default().subscribe("messages", Arc::new(Nothing)),
        other => panic!("--handlers must be all, notifications or none, not {other}"),
    }
}

/// A handler that takes every change and does nothing (`--handlers none`).
struct Nothing;

impl wabridge::ingest::ChangeHandler for Nothing {
    fn name(&self) -> &'static str {
        "nothing"
    }

    fn apply<'a>(
        &'a self,
        _: &'a mut wabridge::store::Tx,
        _: &'a wabridge::ingest::RoutedChange<'a>,
        _: &'a mut wabridge::ingest::Effects,
    ) -> wabridge::ingest::HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// `--drain N`: journals N bodies of the mix, then applies them with the processor alone (no
/// HTTP, no event streams) — what applying costs, repeatable enough to compare builds (also
/// under `valgrind --tool=callgrind`, against `--fill-only`).
async fn run_drain(args: Args, bodies: usize) {
    let set = setup(&args.db).await;
    let mut items = 0u64;
    let journal = wabridge::ingest::journal::Journal::start(set.db.clone(), set.clock.clone());
    let mut pending = Vec::new();
    for i in 0..bodies {
        let (json, n, _) = body(i, &set.numbers, &set.waba, args.customers);
        items += u64::from(n);
        let journal = journal.clone();
        pending.push(tokio::spawn(async move { journal.append(axum::body::Bytes::from(json)).await.is_ok() }));
        if pending.len() == 512 || i + 1 == bodies {
            for p in pending.drain(..) {
                assert!(p.await.unwrap(), "journal append failed");
            }
        }
    }
    eprintln!("journaled {bodies} bodies ({items} messages and statuses)");
    if !args.fill_only {
        let processor = wabridge::ingest::processor::Processor::new(
            set.db.clone(),
            set.clock.clone(),
            registry(&args.handlers),
            wabridge::live::LiveHub::default(),
            Arc::default(),
        );
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut applied = 0;
        loop {
            match processor.process_batch().await.unwrap() {
                0 => break,
                n => applied += n,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        assert_eq!(applied, bodies, "every journaled body applied");
        assert_eq!(pending_bodies(&set.db).await, 0);
        println!();
        println!(
            "processor drain — {} on {}, handlers: {}, {}, {bodies} bodies ({items} messages and statuses)",
            args.db,
            std::env::consts::ARCH,
            args.handlers,
            customers_label(args.customers)
        );
        println!("  applied                        {:>9.0} messages/s   ({:.0} bodies/s, {elapsed:.2} s)", items as f64 / elapsed, bodies as f64 / elapsed);
        println!("  CPU used                       {cpu:.2} s = {:.1} ms per 1000 messages", cpu * 1e6 / items.max(1) as f64);
    }
    set.remove(args.keep).await;
}

async fn run(args: Args) {
    wabridge_testkit::install_tls();
    let set = setup(&args.db).await;
    let (db, clock) = (set.db.clone(), set.clock.clone());
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("DATABASE_URL", set.url.clone()),
        ("WABRIDGE_LISTEN", "127.0.0.1:0".to_owned()),
        ("META_APP_ID", "100000000000001".to_owned()),
        ("META_APP_SECRET", APP_SECRET.to_owned()),
        ("META_CONFIG_ID", "200000000000001".to_owned()),
        ("META_VERIFY_TOKEN", "bench".to_owned()),
        ("WABRIDGE_ENCRYPTION_KEY", Keyring::generate_key()),
        ("WABRIDGE_LOG", "error".to_owned()),
    ] {
        env.insert(k.to_owned(), v);
    }
    let requests = presign(args.seconds, &set.numbers, &set.waba, args.customers);
    let count = requests.len();

    // Each instance with its own pool, as separate processes would have.
    let mut addrs = Vec::with_capacity(args.instances);
    let mut servers = Vec::with_capacity(args.instances);
    for i in 0..args.instances {
        let db = if i == 0 { db.clone() } else { Db::open(&set.url).await.unwrap() };
        let settings = Settings::from_sources(&env, None).unwrap();
        let app = Application::with_registry(settings, db, clock.clone(), registry(&args.handlers)).await.unwrap();
        addrs.push(app.local_addr());
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        servers.push((stop_server, tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }))));
    }
    let addr = addrs[0];

    // Browser-less clients signed in as the tenant's users, each subscribed to /events (a tab);
    // the owner's first stream is the one timed.
    let mut streams = Vec::with_capacity(args.streams);
    for k in 0..args.streams {
        streams.push(event_stream(addr, &format!("user{}@bench.test", k % USERS)).await);
    }
    let mut streams = streams.into_iter();
    let events = streams.next().expect("at least one stream");

    let origin = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let watcher_done = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_notifications(events, sent_at.clone(), origin, watcher_done.clone()));
    let others: Vec<_> = streams.map(|s| tokio::spawn(drain_stream(s, watcher_done.clone()))).collect();

    let driven = drive_all(&addrs, &requests, &args, &sent_at, origin).await;
    let Driven { mut latencies, acked, elapsed: ack_elapsed, exhausted, cpu_before, load_before, started } = driven;
    let bodies_sent = latencies.len();
    let mut backlog_at_end = pending_bodies(&db).await;
    let backlog_peak = backlog_at_end;
    while backlog_at_end > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        backlog_at_end = pending_bodies(&db).await;
    }
    let applied_elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    // Let the last events reach the stream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    watcher_done.store(true, Ordering::Relaxed);
    let (mut notif, resyncs) = watcher.await.unwrap();
    let mut other_frames = 0;
    for o in others {
        other_frames += o.await.unwrap();
    }

    latencies.sort_unstable();
    notif.sort_unstable();
    let notifications = with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notifications").fetch_one(p).await).unwrap();
    let sent_timed = (0..bodies_sent.min(count)).filter(|&i| requests[i].timed).count();

    println!();
    let offered = args.rate.map_or_else(|| "as fast as answered".to_owned(), |r| format!("offered {r:.0} messages/s"));
    println!(
        "webhooks benchmark — {}{} on {}, {} connections, {} s, {offered}, handlers: {}, {}",
        args.db,
        if args.instances > 1 { format!(" ({} instances)", args.instances) } else { String::new() },
        std::env::consts::ARCH,
        args.connections,
        args.seconds,
        args.handlers,
        customers_label(args.customers)
    );
    println!("  bodies acknowledged            {bodies_sent} ({acked} messages+statuses){}", if exhausted { " — ran out of pre-signed bodies" } else { "" });
    println!("  acknowledged durably           {:>9.0} messages/s   ({:.0} bodies/s)", acked as f64 / ack_elapsed.as_secs_f64(), bodies_sent as f64 / ack_elapsed.as_secs_f64());
    println!("  applied (backlog drained)      {:>9.0} messages/s   (backlog at last 200: {backlog_peak} bodies, drained after {:.2} s)", acked as f64 / applied_elapsed.as_secs_f64(), applied_elapsed.as_secs_f64());
    println!("  ack latency                    p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms", percentile(&latencies, 0.50), percentile(&latencies, 0.99), percentile(&latencies, 1.0));
    println!(
        "  webhook-to-browser (SSE)       p50 {:.2} ms   p99 {:.2} ms   ({} of {} bodies with messages timed, {} resyncs)",
        percentile(&notif, 0.50),
        percentile(&notif, 0.99),
        notif.len(),
        sent_timed,
        resyncs
    );
    println!("  notifications stored           {notifications} ({USERS} users)");
    if args.streams > 1 {
        println!("  event streams                  {} open; the {} untimed received {other_frames} events", args.streams, args.streams - 1);
    }
    println!(
        "  CPU used (server + generator)  {:.2} s of {:.2} s wall on {} cores = {:.1} ms per 1000 messages; load average before: {load_before}",
        cpu,
        applied_elapsed.as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu * 1e6 / acked.max(1) as f64
    );

    for (stop_server, server) in servers {
        let _ = stop_server.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    set.remove(args.keep).await;
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if let Some(bodies) = args.drain {
        runtime.block_on(run_drain(args, bodies));
    } else if args.reference {
        runtime.block_on(run_reference(args));
    } else {
        runtime.block_on(run(args));
    }
}
