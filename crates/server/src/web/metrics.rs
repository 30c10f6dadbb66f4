//! Prometheus metrics without a metrics framework: request counts and latency histograms by
//! route (axum's matched path, so ids in URLs do not explode the label set), plus named
//! counters features increment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
    }
}

/// Requests of one method on one route.
#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    /// By route, then method: found by `&str` under one lock, so that a request allocates
    /// nothing once its route and method have been seen (every webhook passes here).
    routes: Mutex<BTreeMap<String, BTreeMap<String, RouteStats>>>,
    counters: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Adds `n` to the counter `name` (a Prometheus metric name).
    pub fn add(&self, name: &'static str, n: u64) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(name).or_default() += n;
        }
    }

    /// The counter's current value.
    pub fn get(&self, name: &'static str) -> u64 {
        self.counters.lock().map(|c| c.get(name).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Counts a request of `method` on `route` answered with `status` after `seconds`.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let Some(stats) = slot(&mut routes, route).and_then(|methods| slot(methods, method)) else { return };
        *stats.by_status.entry(status).or_default() += 1;
        stats.latency.observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wabridge_http_requests_total HTTP requests by method, route and status.\n# TYPE wabridge_http_requests_total counter\n");
        // A panic elsewhere cannot leave the counts half-updated: render them anyway.
        let routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = || routes.iter().flat_map(|(route, methods)| methods.iter().map(move |(method, s)| (route, method, s)));
        for (route, method, s) in stats() {
            for (status, n) in &s.by_status {
                let _ = writeln!(out, "wabridge_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP wabridge_http_request_duration_seconds HTTP request latency by method and route.\n# TYPE wabridge_http_request_duration_seconds histogram\n");
        for (route, method, s) in stats() {
            let h = &s.latency;
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "wabridge_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "wabridge_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "wabridge_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "wabridge_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}", h.count);
        }
        drop(routes);
        if let Ok(c) = self.counters.lock() {
            for (name, n) in c.iter() {
                let _ = writeln!(out, "# TYPE {name} counter\n{name} {n}");
            }
        }
        out
    }
}

/// The value under `key`, created on first use (the only time the key is allocated).
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
}

/// Middleware: records every request.
pub async fn record(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Standard methods clone without allocating.
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    app.metrics.observe(method.as_str(), route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Route layer: hands the matched route to [`record`], which runs outside routing and so
/// cannot see it on the request.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn requests_are_counted_by_method_route_and_status() {
        let m = Metrics::default();
        m.observe("GET", "/inbox", 200, 0.002);
        m.observe("GET", "/inbox", 200, 0.2);
        m.observe("POST", "/inbox", 303, 0.004);
        m.observe("GET", "/inbox", 404, 0.001);
        let text = m.render();
        for line in [
            "wabridge_http_requests_total{method=\"GET\",route=\"/inbox\",status=\"200\"} 2",
            "wabridge_http_requests_total{method=\"GET\",route=\"/inbox\",status=\"404\"} 1",
            "wabridge_http_requests_total{method=\"POST\",route=\"/inbox\",status=\"303\"} 1",
            "wabridge_http_request_duration_seconds_count{method=\"GET\",route=\"/inbox\"} 3",
            "wabridge_http_request_duration_seconds_bucket{method=\"GET\",route=\"/inbox\",le=\"0.0025\"} 2",
            "wabridge_http_request_duration_seconds_bucket{method=\"GET\",route=\"/inbox\",le=\"+Inf\"} 3",
            "wabridge_http_request_duration_seconds_count{method=\"POST\",route=\"/inbox\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
