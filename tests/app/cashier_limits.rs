//! Issue 14 item 8: each open order costs gateway calls until it ends, so one
//! cashier (or a stolen session) may keep only so many open and create only so
//! many a minute; the message says what to do, and others are not affected.

use std::time::Duration;

use crate::helpers::*;

async fn refused(app: &TestApp, why: &str) {
    let resp = app.post_order("1.00", "").await;
    assert_eq!(resp.status(), 429, "{why}");
    let page = resp.text().await.unwrap();
    assert!(page.contains(why), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cashier_keeps_only_so_many_orders_open() {
    let app = spawn_app_with(|s| {
        s.checkout.max_open_orders_per_cashier = 3;
        s.checkout.max_orders_per_minute = 0;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.create_order("1.00", "").await);
    }
    refused(&app, "3 笔未完成的订单").await;
    // Another member of staff is not held up by this cashier's orders.
    let admin = app.signed_in("admin", "admin").await;
    let page = app.page(&admin, app.url("/")).await;
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let resp = admin
        .post(app.url("/orders"))
        .form(&[("amount", "1.00"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "another's orders do not count");
    // An order that ends makes room: paid, or cancelled.
    app.scan_and_pay(&open[0]).await;
    app.wait_for_state(&open[0], "paid", Duration::from_secs(10))
        .await;
    app.create_order("1.00", "").await;
    refused(&app, "3 笔未完成的订单").await;
    assert_eq!(app.post_action(&open[1], "cancel").await.status(), 303);
    app.create_order("1.00", "").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE state = 'open' AND cashier_id = (SELECT id FROM users WHERE username = 'cashier')"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cashier_creates_only_so_many_orders_a_minute() {
    let app = spawn_app_on_manual_clock(|s| {
        s.checkout.max_open_orders_per_cashier = 0;
        s.checkout.max_orders_per_minute = 4;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    for _ in 0..4 {
        app.create_order("1.00", "").await;
    }
    refused(&app, "每分钟最多创建 4 笔订单").await;
    app.advance(Duration::from_secs(30)).await;
    refused(&app, "每分钟最多创建 4 笔订单").await;
    // The refused tries do not count: a minute after the first four, four more.
    app.advance(Duration::from_secs(31)).await;
    for _ in 0..4 {
        app.create_order("1.00", "").await;
    }
    refused(&app, "每分钟最多创建 4 笔订单").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM orders"), 8);
}
