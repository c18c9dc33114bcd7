//! The pages in a real browser: headless Chromium driven over WebDriver.
//!
//! Without Chromium the test says loudly that it was skipped; with
//! `SCANPAY_REQUIRE_BROWSER=1` (set by `.ci/run`) a missing browser fails it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::webdriver::{Driver, missing_browser};

fn browser_available() -> bool {
    match missing_browser() {
        None => true,
        Some(why) if std::env::var("SCANPAY_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("the browser test is required here but cannot run: {why}")
        }
        Some(why) => {
            eprintln!("\n*** SKIPPED browser test: {why} ***\n");
            false
        }
    }
}

/// Where screenshots go when `SCANPAY_SCREENSHOTS=DIR` is set (README images).
fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("SCANPAY_SCREENSHOTS").map(std::path::PathBuf::from)
}

#[tokio::test(flavor = "multi_thread")]
async fn cashier_and_customer_in_a_real_browser() {
    in_a_real_browser(Api::V2).await;
}

/// Also run on API v3 (`both_apis.rs`); the README's screenshots come from v2.
pub(crate) async fn in_a_real_browser(api: Api) {
    if !browser_available() {
        return;
    }
    let app = spawn_app_on(api, |_| {}).await;
    let driver = Driver::start().await;
    let shots = screenshot_dir().filter(|_| api == Api::V2);

    // The cashier signs in and charges ¥12.50.
    let b = driver.session(1280, 900).await;
    b.goto(&app.url("/")).await;
    assert!(
        b.current_url().await.contains("/login?next="),
        "sign-in first"
    );
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("login.png")).await;
    }
    b.type_into("input[name=username]", "cashier").await;
    b.type_into("input[name=password]", "cashier").await;
    b.click("button[type=submit]").await;
    b.wait_until(
        "the checkout form",
        "document.querySelector('input[name=amount]')",
        Duration::from_secs(5),
    )
    .await;
    b.type_into("input[name=amount]", "12.50").await;
    b.type_into("input[name=description]", "两杯咖啡").await;
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("checkout.png")).await;
    }
    b.click("form[action='/orders'] button[type=submit]").await;
    b.wait_until(
        "the order page",
        "location.pathname.startsWith('/o/')",
        Duration::from_secs(10),
    )
    .await;
    let token = b
        .current_url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // The QR image loads and says what the gateway gave.
    b.wait_until("the QR image", "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth >= 320", Duration::from_secs(5)).await;
    assert_eq!(b.text("#state").await, "待支付");
    assert!(b.text("main").await.contains("¥12.50"));
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("order.png")).await;
    }
    let code_url = app.scan_qr(&token).await;

    // The customer pays on the phone; the open page turns to paid with no reload.
    b.script("window.__notReloaded = true", json!([])).await;
    assert_eq!(app.pay(&code_url).await, 200);
    let latency = b
        .wait_until(
            "the paid state",
            "document.getElementById('order').dataset.state === 'paid'",
            Duration::from_secs(3),
        )
        .await;
    eprintln!("browser: pay → page shows paid in {latency:?}");
    assert_eq!(
        b.script("return window.__notReloaded === true", json!([]))
            .await,
        json!(true),
        "no reload"
    );
    assert_eq!(b.text("#state").await, "已支付");
    assert!(b.text(".show-paid").await.contains("支付成功"));
    assert_eq!(
        b.script(
            "return getComputedStyle(document.querySelector('.show-open-ready')).display",
            json!([])
        )
        .await,
        json!("none"),
        "the QR is gone"
    );
    assert_eq!(
        b.script(
            "return getComputedStyle(document.querySelector('form[action$=cancel]')).display",
            json!([])
        )
        .await,
        json!("none"),
        "no cancel for a paid order"
    );
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("paid.png")).await;
    }
    // The print page (its button's script is a file too).
    b.goto(&app.url(&format!("/o/{token}/print"))).await;
    b.wait_until(
        "the print page",
        "document.querySelector('[data-print]')",
        Duration::from_secs(5),
    )
    .await;
    // The simulator's phone pages, under the same policy.
    b.goto(&app.url("/sim/")).await;
    b.wait_until(
        "the simulator's stylesheet",
        "getComputedStyle(document.querySelector('header')).backgroundColor === 'rgb(7, 193, 96)'",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        b.csp_violations().await,
        Vec::<String>::new(),
        "login, checkout, order, print and simulator pages keep their Content-Security-Policy"
    );
    // The watch itself works: an inline style set now is refused and reported.
    b.script(
        "document.body.setAttribute('style', 'color: red')",
        json!([]),
    )
    .await;
    b.wait_until(
        "the refused inline style to be reported",
        "(sessionStorage.getItem('cspViolations') || '').includes('style-src')",
        Duration::from_secs(3),
    )
    .await;
    let seen = b.csp_violations().await;
    assert!(
        seen.iter().any(|m| m.contains("Content Security Policy")),
        "the console reports it too: {seen:?}"
    );
    b.quit().await;

    // The owner signs in and sees the money.
    let admin = driver.session(1280, 1000).await;
    admin.goto(&app.url("/admin")).await;
    admin.type_into("input[name=username]", "admin").await;
    admin.type_into("input[name=password]", "admin").await;
    admin.click("button[type=submit]").await;
    admin
        .wait_until(
            "the admin page",
            "document.getElementById('today-sum')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(admin.text("#today-sum").await, "¥12.50");
    assert_eq!(admin.text("#filter-count").await, "1");
    assert_eq!(admin.text("#filter-sum").await, "¥12.50");
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let table = admin.text("main").await;
    assert!(
        table.contains(&order_no) && table.contains("两杯咖啡"),
        "the paid order is listed"
    );
    assert_eq!(
        admin
            .script(
                "return document.querySelectorAll('svg rect').length > 0",
                json!([])
            )
            .await,
        json!(true),
        "a revenue chart"
    );
    if let Some(dir) = &shots {
        admin.screenshot(&dir.join("admin.png")).await;
    }
    admin
        .goto(&app.url(&format!("/admin/orders/{order_no}")))
        .await;
    admin
        .wait_until(
            "the order detail",
            "document.querySelector('main')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        admin.csp_violations().await,
        Vec::<String>::new(),
        "the admin pages keep their Content-Security-Policy"
    );
    admin.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_page_fits_a_390px_phone() {
    if !browser_available() {
        return;
    }
    let app = spawn_app_with(|s| s.checkout.qr_ttl_secs = 6).await;
    app.login_as("cashier", "cashier").await;
    let token = app
        .create_order(
            "88.88",
            "一个很长的商品说明，用来检查窄屏幕上的换行是否正常，而不会出现横向滚动条",
        )
        .await;
    let driver = Driver::start().await;
    let phone = driver.session(390, 844).await;
    phone.goto(&app.url(&format!("/o/{token}"))).await;
    phone.wait_until("the QR image", "document.getElementById('order').dataset.qrState === 'open' && document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0", Duration::from_secs(5)).await;
    let m = phone
        .script(
            "const q = document.getElementById('qr').getBoundingClientRect();
             return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                     qrWidth: q.width, qrLeft: q.left, qrRight: q.right, qrBottom: q.bottom, height: window.innerHeight}",
            json!([]),
        )
        .await;
    assert_eq!(m["inner"], 390, "{m}");
    assert!(
        m["scroll"].as_f64() <= m["inner"].as_f64(),
        "no sideways scroll: {m}"
    );
    assert!(m["qrWidth"].as_f64().unwrap() >= 280.0, "a big QR: {m}");
    assert!(
        m["qrLeft"].as_f64().unwrap() >= 0.0 && m["qrRight"].as_f64().unwrap() <= 390.0,
        "{m}"
    );
    assert!(
        m["qrBottom"].as_f64().unwrap() <= m["height"].as_f64().unwrap(),
        "the QR is on the first screen: {m}"
    );
    if let Some(dir) = screenshot_dir() {
        phone.screenshot(&dir.join("order-phone.png")).await;
    }
    // When its six seconds are over the QR is replaced in place: new image, no reload.
    phone.script("window.__notReloaded = true", json!([])).await;
    phone
        .wait_until(
            "the second QR",
            "document.getElementById('qr').src.endsWith('v=2') && document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        phone
            .script("return window.__notReloaded === true", json!([]))
            .await,
        json!(true)
    );
    // The countdown text follows within one 250 ms tick of the swap.
    phone
        .wait_until(
            "the countdown to restart",
            "Number(document.getElementById('seconds').textContent) >= 1",
            Duration::from_secs(2),
        )
        .await;
    let seconds: i64 = phone.text("#seconds").await.parse().unwrap();
    assert!(
        (1..=6).contains(&seconds),
        "the countdown restarted: {seconds}"
    );
    assert_eq!(
        phone.csp_violations().await,
        Vec::<String>::new(),
        "the live order page keeps its Content-Security-Policy"
    );
    phone.quit().await;
}
