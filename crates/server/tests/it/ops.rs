//! Health, readiness and metrics.

use crate::helpers::{client, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let c = client();
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    c.get(app.url("/sign-in")).send().await.unwrap();
    c.get(app.url("/sign-in")).send().await.unwrap();
    let metrics = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wabridge_http_requests_total{method=\"GET\",route=\"/sign-in\",status=\"200\"} 2"), "{metrics}");
    assert!(metrics.contains("wabridge_http_request_duration_seconds_count{method=\"GET\",route=\"/sign-in\"} 2"));

    // Not ready once the database is gone.
    app.db.close().await;
    let ready = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}
