//! The five-minute refresh, expiry, late and double payments, on a clock the
//! test moves: the real five minutes and thirty minutes pass at once.

use std::time::{Duration, Instant};

use scanpay::wxpay::v2::{OrderQuery, OutTradeNo, SignType, TradeState};

use crate::helpers::*;

async fn gateway_state(app: &TestApp, out_trade_no: &str) -> TradeState {
    let wx = client(&app.url("/sim/"), SignType::Md5);
    wx.order_query(&OrderQuery {
        out_trade_no: OutTradeNo::new(out_trade_no).unwrap(),
    })
    .await
    .unwrap()
    .trade_state
}

async fn wait_gateway_closed(app: &TestApp, out_trade_no: &str) {
    let start = Instant::now();
    while gateway_state(app, out_trade_no).await != TradeState::Closed {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{out_trade_no} closed at the gateway"
        );
        app.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpaid_qr_is_replaced_and_the_old_one_closed() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("6.60", "refresh").await;
    let first = app.status(&token).await;
    let old_no = first["out_trade_no"].as_str().unwrap().to_string();
    let old_url = app.scan_qr(&token).await;

    app.advance(Duration::from_secs(299)).await;
    assert_eq!(
        app.status(&token).await["qr_version"],
        1,
        "not before five minutes"
    );
    app.advance(Duration::from_secs(1)).await;
    let second = app.status(&token).await;
    assert_eq!(
        (second["qr_version"].as_i64(), second["qr_state"].as_str()),
        (Some(2), Some("open"))
    );
    let new_no = second["out_trade_no"].as_str().unwrap().to_string();
    assert_ne!(new_no, old_no, "a new out_trade_no");
    wait_gateway_closed(&app, &old_no).await;
    assert_eq!(app.pay(&old_url).await, 410, "the old QR cannot be paid");

    let new_url = app.scan_qr(&token).await;
    assert_ne!(new_url, old_url);
    assert_eq!(app.pay(&new_url).await, 200);
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    assert_eq!(s["late"], false);
    assert_eq!(s["qr_version"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpaid_order_expires_and_its_last_qr_is_closed() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.00", "expire").await;
    app.advance(Duration::from_secs(300)).await;
    assert_eq!(app.status(&token).await["qr_version"], 2);
    app.advance(Duration::from_secs(1499)).await;
    assert_eq!(
        app.status(&token).await["state"],
        "open",
        "thirty minutes of life"
    );
    app.advance(Duration::from_secs(1)).await;
    let s = app.status(&token).await;
    assert_eq!(s["state"], "expired");
    let last = s["out_trade_no"].as_str().unwrap().to_string();
    wait_gateway_closed(&app, &last).await;
    let page = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(page.contains("已过期"));
    assert_eq!(
        app.get_anonymous(&format!("/o/{token}/qr.png"))
            .await
            .status(),
        404
    );
}

both!(late_and_double_payments_are_kept_and_flagged);

/// Payments of a superseded QR count, and a second payment is flagged.
async fn late_and_double_payments_are_kept_and_flagged(api: Api) {
    // The gateway refuses to close young orders, so superseded QRs stay payable.
    let app = spawn_app_on_manual_clock(move |s| {
        s.wxpay.api = api;
        s.sim.min_close_age_secs = 300;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("2.50", "late").await;
    let old_url = app.scan_qr(&token).await;
    app.advance(Duration::from_secs(300)).await;
    let s = app.status(&token).await;
    assert_eq!(
        (s["qr_version"].as_i64(), s["qr_state"].as_str()),
        (Some(2), Some("open"))
    );
    let new_url = app.scan_qr(&token).await;
    assert_ne!(old_url, new_url, "refreshed although the close was refused");

    // The customer scans the old paper QR: still money received, flagged late.
    assert_eq!(app.pay(&old_url).await, 200);
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    assert_eq!(s["late"], true);
    assert_eq!(s["double_paid"], false);

    // And someone pays the new one too: kept, flagged double_paid.
    assert_eq!(app.pay(&new_url).await, 200);
    app.wait_for(&token, "double_paid", Duration::from_secs(5), |s| {
        s["double_paid"] == true
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 2);
    assert_eq!(app.count("SELECT SUM(amount_fen) FROM payments"), 500);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE state = 'paid'"),
        1
    );
}
