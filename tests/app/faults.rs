//! What scanpay survives: a flaky, lying, slow or absent gateway, and kill -9.

use std::time::Duration;

use scanpay::values::money::Fen;
use scanpay::wxpay::v2::notify::{self, PaymentNotice};
use scanpay::wxpay::v2::{OrderQuery, OutTradeNo, SignType, TradeState, xml};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn duplicated_and_delayed_notifications_are_applied_once() {
    let app =
        spawn_app_with(|s| s.sim.faults = "duplicate_notify=3,notify_delay_ms=200".into()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("7.77", "dup").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    app.wait_count(
        "all four copies",
        "SELECT COUNT(*) FROM notifications",
        4,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
}

/// Three orders created and paid under `fault` (half the notifications lost, so
/// the poller finds those payments). The app's clock moves a second at a time:
/// QR lives and retry backoffs pass without waiting for them.
async fn orders_are_created_and_paid_despite(fault: &str) {
    let app = spawn_app_on_manual_clock(|s| {
        s.checkout.qr_ttl_secs = 2;
        s.poller.max_backoff_secs = 1;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    app.set_faults(fault).await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(app.create_order(&format!("1.0{i}"), fault).await);
    }
    let second = Duration::from_secs(1);
    for token in &tokens {
        // A QR that failed every attempt is replaced at the QR's pace.
        app.advance_until(token, "an open QR", second, 60, |s| s["qr_state"] == "open")
            .await;
        let code_url = app.scan_qr(token).await;
        assert_eq!(app.pay(&code_url).await, 200, "{fault}");
    }
    for token in &tokens {
        app.advance_until(token, "paid", second, 60, |s| s["state"] == "paid")
            .await;
    }
    app.set_faults("").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE state = 'paid'"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_system_errors_are_survived() {
    orders_are_created_and_paid_despite("systemerror_rate=0.4,drop_notify=0.5").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_http_500s_are_survived() {
    orders_are_created_and_paid_despite("http500_rate=0.4,drop_notify=0.5").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_answers_that_are_not_xml_are_survived() {
    orders_are_created_and_paid_despite("bad_xml_rate=0.4,drop_notify=0.5").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_and_failing_gateway_is_survived() {
    orders_are_created_and_paid_despite("latency_ms=300,systemerror_rate=0.3,drop_notify=0.5")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_with_bad_signatures_are_never_believed() {
    let app = spawn_app_on_manual_clock(|s| {
        s.sim.faults = "drop_notify=1.0".into();
        s.poller.max_backoff_secs = 1;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    // A paid order whose only news comes from polls with forged signatures.
    let token = app.create_order("3.30", "").await;
    let code_url = app.scan_qr(&token).await;
    app.set_faults("drop_notify=1.0,bad_sign_rate=1").await;
    assert_eq!(app.pay(&code_url).await, 200);
    // Polled: the forged answer is refused, with the reason kept.
    let second = Duration::from_secs(1);
    app.advance_until_count(
        "a poll with a forged answer",
        "SELECT COUNT(*) FROM qrs WHERE last_error LIKE '%signature%'",
        1,
        second,
        10,
    )
    .await;
    assert_eq!(app.status(&token).await["state"], "open", "not believed");

    // Creating under forged answers fails visibly.
    let bad = app.create_order("1.00", "").await;
    let s = app.status(&bad).await;
    assert_eq!(s["qr_state"], "failed");
    assert!(s["qr_error"].as_str().unwrap().contains("not valid"), "{s}");

    app.set_faults("drop_notify=1.0").await;
    app.advance_until(&token, "paid", second, 10, |s| s["state"] == "paid")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_close_is_tried_again_until_the_gateway_accepts() {
    // The simulated gateway refuses to close an order younger than one (wall) second.
    let app = spawn_app_on_manual_clock(|s| s.sim.min_close_age_secs = 1).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("2.00", "").await;
    let old = app.out_trade_no(&token).await;
    app.advance(Duration::from_secs(300)).await;
    assert_eq!(app.status(&token).await["qr_version"], 2);
    let wx = client(&app.url("/sim/"), SignType::Md5);
    let q = OrderQuery {
        out_trade_no: OutTradeNo::new(old).unwrap(),
    };
    assert_eq!(
        wx.order_query(&q).await.unwrap().trade_state,
        TradeState::NotPay,
        "refused at first"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.advance(Duration::from_secs(4)).await;
    assert_eq!(
        wx.order_query(&q).await.unwrap().trade_state,
        TradeState::NotPay,
        "not tried again before its retry time"
    );
    app.advance(Duration::from_secs(1)).await;
    assert_eq!(
        wx.order_query(&q).await.unwrap().trade_state,
        TradeState::Closed,
        "closed when tried again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_down_and_back() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut sim = spawn_sim_process(&listen);
    let app = spawn_live_app_on_manual_clock(&sim.url, |s| {
        s.checkout.qr_ttl_secs = 1;
        s.wxpay.timeout_secs = 2;
        s.poller.max_backoff_secs = 1;
    })
    .await;
    app.login_as("cashier", "cashier-password").await;

    let _ = sim.child.kill();
    let _ = sim.child.wait();
    let token = app.create_order("4.00", "").await;
    let s = app.status(&token).await;
    assert_eq!(s["qr_state"], "failed");
    assert!(
        s["qr_error"].as_str().unwrap().contains("could not reach"),
        "{s}"
    );
    // A second on, the poller has tried the failed QR again (and failed): the
    // page still shows why.
    app.advance(Duration::from_secs(1)).await;
    let page = app.page(&app.http, app.url(&format!("/o/{token}"))).await;
    assert!(
        page.contains("could not reach the payment gateway"),
        "the page shows why the QR failed: {page}"
    );
    // The customer reads a translated, generic reason: the gateway's
    // diagnostics (and where it is) are for staff.
    let resp = app.get_anonymous(&format!("/o/{token}/status")).await;
    let s: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(s["qr_state"], "failed", "{s}");
    let reason = s["qr_error"].as_str().unwrap();
    assert!(reason.contains("收银员"), "{s}");
    assert!(
        !reason.contains("reach") && !reason.contains("127.0.0.1"),
        "{s}"
    );
    let customer_page = app
        .get_anonymous(&format!("/o/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !customer_page.contains("could not reach"),
        "{customer_page}"
    );
    let health = app.get_anonymous("/healthz").await;
    let status = health.status();
    assert_eq!(status, 200, "healthz: {}", health.text().await.unwrap());

    sim = spawn_sim_process(&listen);
    app.advance_until(&token, "an open QR", Duration::from_secs(1), 15, |s| {
        s["qr_state"] == "open"
    })
    .await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(pay_on(&sim.url, &code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
}

both!(killed_while_the_order_is_in_flight);

/// Killed while unifiedorder (on v3: the re-order) is in flight.
async fn killed_while_the_order_is_in_flight(api: Api) {
    let sim = spawn_sim_with(|s| s.sim.faults = "latency_ms=2000".into()).await;
    let mut app = TestApp::builder().api(api).live(&sim.url).process();
    app.login_as("cashier", "cashier-password").await;
    let csrf = app.csrf().await;
    let request = app
        .http
        .post(app.url("/orders"))
        .form(&[
            ("amount", "6.00"),
            ("description", "crash"),
            ("csrf_token", csrf.as_str()),
        ])
        .send();
    let pending = tokio::spawn(request);
    app.wait_count(
        "the QR row written first",
        "SELECT COUNT(*) FROM qrs WHERE state = 'creating'",
        1,
        Duration::from_secs(5),
    )
    .await;
    app.restart(); // kill -9 with unifiedorder unanswered
    assert!(
        pending.await.unwrap().is_err(),
        "the cashier's request died with the server"
    );

    assert_eq!(app.count("SELECT COUNT(*) FROM orders"), 1);
    let token: String = app
        .db()
        .query_row("SELECT token FROM orders", [], |r| r.get(0))
        .unwrap();
    // The gateway stays slow until the resent request is answered, so the one
    // that died with the server, if the gateway still handles it, is handled
    // first: on v3 an identical re-order issues a new code_url and kills the
    // old one, and a loaded machine could otherwise let the dead request
    // overtake the resend (the code_url the app keeps would then be dead).
    app.wait_for(
        &token,
        "the creation resumed",
        Duration::from_secs(10),
        |s| s["qr_state"] == "open",
    )
    .await;
    sim.set_faults("").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM qrs"),
        1,
        "the same QR, sent again with the same parameters"
    );
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
}

both!(killed_after_the_payment_before_any_notification);

async fn killed_after_the_payment_before_any_notification(api: Api) {
    let sim = spawn_sim_with(|s| s.sim.faults = "notify_delay_ms=60000".into()).await;
    let mut app = TestApp::builder().api(api).live(&sim.url).process();
    app.login_as("cashier", "cashier-password").await;
    let token = app.create_order("5.50", "").await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    app.restart();
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE source = 'poll'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_committed_before_a_kill_is_not_paid_twice() {
    let sim = spawn_sim().await;
    let mut app = spawn_app_process(&sim);
    app.login_as("cashier", "cashier-password").await;
    let token = app.create_order("1.23", "").await;
    let no = app.out_trade_no(&token).await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    app.restart();

    // The gateway never saw our SUCCESS (we died first), so it sends it again.
    let q = client(&sim.url, SignType::Md5)
        .order_query(&OrderQuery {
            out_trade_no: OutTradeNo::new(&no).unwrap(),
        })
        .await
        .unwrap();
    let notice = PaymentNotice {
        out_trade_no: OutTradeNo::new(&no).unwrap(),
        transaction_id: q.transaction_id.unwrap(),
        total_fee: Fen::new(123),
        openid: q.openid,
        time_end: q.time_end,
        bank_type: None,
    };
    let body = xml::to_xml(&notify::build(
        &notice,
        &demo_merchant(SignType::Md5),
        SignType::Md5,
        "again",
        None,
    ));
    let (_, answer) = app.notify(body).await;
    assert!(notify::is_success_ack(answer.as_bytes()), "{answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
    assert_eq!(app.status(&token).await["double_paid"], false);
}
