//! `/metrics` is never exposed by accident; `/healthz` is public and says nothing.

use crate::helpers::*;

const TOKEN: &str = "metrics-token-0123456789";

async fn get(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut req = http().get(url);
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_on_the_main_address_need_the_token_and_loopback_is_not_enough() {
    // Off by default: not even from loopback (behind a proxy everyone is loopback).
    let app = spawn_app().await;
    assert_eq!(get(&app.url("/metrics"), None).await.0, 404);
    assert_eq!(get(&app.url("/metrics"), Some("anything")).await.0, 404);

    let app = spawn_app_with(|s| s.metrics.token = Some(TOKEN.to_string().into())).await;
    for bearer in [
        None,
        Some(""),
        Some("metrics-token-012345678"),
        Some("wrong"),
    ] {
        let (status, body) = get(&app.url("/metrics"), bearer).await;
        assert_eq!(status, 404, "{bearer:?}");
        assert!(!body.contains("scanpay_"), "{bearer:?}");
    }
    let (status, body) = get(&app.url("/metrics"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.contains("scanpay_payments_total 0"), "{body}");
    let lower = http()
        .get(app.url("/metrics"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme name is case-insensitive");
    let basic = http()
        .get(app.url("/metrics"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 404);
    // A token in the query string or a cookie is not the header.
    assert_eq!(
        get(&app.url(&format!("/metrics?token={TOKEN}")), None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_serves_metrics_alone_on_its_own_address() {
    let port = free_port();
    let app = spawn_app_with(|s| s.metrics.listen = Some(format!("127.0.0.1:{port}"))).await;
    let metrics = format!("http://127.0.0.1:{port}");
    let (status, body) = get(&format!("{metrics}/metrics"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE scanpay_orders gauge"), "{body}");
    // Only /metrics there; and still not on the main address without a token.
    assert_eq!(get(&format!("{metrics}/"), None).await.0, 404);
    assert_eq!(get(&format!("{metrics}/admin"), None).await.0, 404);
    assert_eq!(get(&app.url("/metrics"), None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_public_and_says_nothing_sensitive() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/healthz").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.text().await.unwrap();
    assert_eq!(body, "ok", "no versions, paths, counts or keys");
}
