//! Security headers on every page, and pages that keep the policy they send:
//! no inline script or style for the Content-Security-Policy to block (the
//! browser test checks that no violation is reported).

use crate::helpers::*;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
                   object-src 'none'";

/// What the Content-Security-Policy would block in `html`: inline scripts,
/// `<style>` elements, `style=` attributes and `on…=` handlers.
fn inline_code(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for (i, _) in lower.match_indices("<script") {
        let tag_end = lower[i..].find('>').map_or(lower.len(), |e| i + e);
        if !lower[i..tag_end].contains(" src=") {
            found.push(html[i..tag_end.min(i + 60)].to_string());
        }
    }
    if lower.contains("<style") {
        found.push("<style>".into());
    }
    for attr in [
        " style=",
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        " onchange=",
        "javascript:",
    ] {
        if lower.contains(attr) {
            found.push(attr.trim().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_sends_the_headers_and_satisfies_its_policy() {
    let app = spawn_app().await;
    let login = app.get_anonymous("/login").await;
    assert_eq!(login.headers()["cache-control"], "no-store");
    app.login_as("admin", "admin").await;
    let token = app.create_order("3.20", "茶").await;
    let code_url = app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", std::time::Duration::from_secs(5))
        .await;
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();

    // The order number starts with its shop day, YYYYMMDD.
    let shop_day = format!("{}-{}-{}", &order_no[..4], &order_no[4..6], &order_no[6..8]);
    let private_pages = [
        "/login".to_string(),
        "/".to_string(),
        format!("/o/{token}"),
        format!("/o/{token}/print"),
        format!("/o/{token}/status"),
        "/admin".to_string(),
        format!("/admin/orders/{order_no}"),
        "/admin/orders.csv".to_string(),
        "/o/00000000000000000000000000000000".to_string(),
        "/sim/".to_string(),
        format!("/sim/scan?code_url={}", urlencode(&code_url)),
        "/admin/refunds".to_string(),
        "/admin/reconciliation".to_string(),
        // A day not reconciled yet is a 404 page (reconcile.rs sees a checked one).
        format!("/admin/reconciliation/{shop_day}"),
        "/admin/webhooks".to_string(),
        "/display".to_string(),
        format!("/display/{}", pair_display_at(&app.http, &app.base).await),
        // Errors are pages too: an unknown address, an unknown order.
        "/no-such-page".to_string(),
        "/admin/orders/2000010100001".to_string(),
    ];
    for path in &private_pages {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        let expected = if path.starts_with("/no-such")
            || path.starts_with("/admin/orders/2000")
            || path.starts_with("/o/0000")
            || path.starts_with("/admin/reconciliation/")
        {
            404
        } else {
            200
        };
        assert_eq!(resp.status(), expected, "{path}");
        let h = resp.headers().clone();
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http: {path}"
        );
        let is_html = h
            .get("content-type")
            .unwrap_or_else(|| panic!("{path}: no content-type"))
            .to_str()
            .unwrap()
            .starts_with("text/html");
        let body = resp.text().await.unwrap();
        if is_html {
            assert_eq!(inline_code(&body), Vec::<String>::new(), "{path}");
        }
    }
    // Live updates carry orders too: never stored, and under the same policy.
    let display = pair_display_at(&app.http, &app.base).await;
    for path in [
        format!("/o/{token}/events"),
        "/counter/events".to_string(),
        format!("/display/{display}/events"),
    ] {
        let resp = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h["content-type"], "text/event-stream", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
    // A refused form (no CSRF token) is answered under the same headers.
    let refused = app
        .http
        .post(app.url("/orders"))
        .form(&[("amount", "1.00")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["content-security-policy"], CSP);
    assert_eq!(refused.headers()["cache-control"], "no-store");
    // Files that may be cached still say who may frame them and what they may run.
    for path in [
        "/static/app.css",
        "/static/order.js",
        "/static/print.js",
        "/sim/sim.css",
    ] {
        let resp = app.get_anonymous(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
        assert!(
            resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standalone_simulator_sends_them_too() {
    let sim = spawn_sim().await;
    let resp = http().get(&sim.url).send().await.unwrap();
    assert_eq!(resp.headers()["content-security-policy"], CSP);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let body = resp.text().await.unwrap();
    assert_eq!(inline_code(&body), Vec::<String>::new());
    assert!(body.contains("href=\"sim.css\""));
    let css = http()
        .get(format!("{}sim.css", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
