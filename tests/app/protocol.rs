//! The crate's own client against `scanpay sim`: the simulator alone on its own
//! port (in this process, and once as the real `scanpay sim` command).

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use scanpay::values::money::Fen;
use scanpay::wxpay::v2::notify::{self, Notice};
use scanpay::wxpay::v2::{
    ApiKey, CloseOrder, ErrCode, Merchant, OrderQuery, OutTradeNo, SignType, TradeState,
    UnifiedOrder, WxPayClient, WxPayError,
};

use crate::helpers::*;

fn order(no: &str, fee: i64, notify_url: &str) -> UnifiedOrder {
    let now = Timestamp::now();
    UnifiedOrder {
        body: "Demo Shop - 咖啡 & <cake>".into(),
        out_trade_no: OutTradeNo::new(no).unwrap(),
        total_fee: Fen::new(fee),
        spbill_create_ip: "127.0.0.1".into(),
        time_start: now,
        time_expire: now + SignedDuration::from_secs(6 * 60),
        notify_url: notify_url.into(),
        product_id: "P1".into(),
        attach: Some("shop-1".into()),
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Timestamp::now().as_nanosecond() % 1_000_000_000_000
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn create_query_pay_notify_retry_query_with_both_sign_types() {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let sim = spawn_sim().await;
        let sink = NotifySink::start(1).await;
        let wx = client(&sim.url, sign_type);
        let no = unique("FLOW");

        let started = Instant::now();
        let prepay = wx
            .unified_order(&order(&no, 1250, &sink.url))
            .await
            .unwrap();
        assert!(prepay.code_url.starts_with("weixin://wxpay/bizpayurl?pr="));
        let q = wx
            .order_query(&OrderQuery {
                out_trade_no: OutTradeNo::new(&no).unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::NotPay);

        // The phone lists it, then pays it.
        let phone = get_text(&sim.url).await;
        assert!(
            phone.contains(&prepay.code_url),
            "phone page lists the order"
        );
        assert_eq!(sim.pay(&prepay.code_url).await, 200);

        // First delivery answered FAIL, so it comes again (15 s / 1000).
        sink.wait_for(2, Duration::from_secs(10)).await;
        let loop_time = started.elapsed();
        let bodies = sink.bodies();
        assert_eq!(
            bodies[0], bodies[1],
            "a retry repeats the same notification"
        );
        let (_, notice) = notify::verify(&bodies[0], &demo_merchant(sign_type)).unwrap();
        let Notice::Paid(paid) = notice else {
            panic!("not a payment")
        };
        assert_eq!(paid.out_trade_no.as_str(), no);
        assert_eq!(paid.total_fee, Fen::new(1250));

        // Acknowledged: the gateway's retry loop has ended (its phone says so),
        // and there was no third delivery.
        let acked = format!("{no} · merchant acknowledged the notification");
        let start = Instant::now();
        while !get_text(&sim.url).await.contains(&acked) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the gateway never saw the SUCCESS"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(sink.count(), 2, "SUCCESS stops the retries");

        let q = wx
            .order_query(&OrderQuery {
                out_trade_no: OutTradeNo::new(&no).unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::Success);
        assert_eq!(
            q.transaction_id.as_deref(),
            Some(paid.transaction_id.as_str())
        );
        assert_eq!(q.total_fee, Some(Fen::new(1250)));
        eprintln!("{sign_type}: create → pay → notify (with one retry) in {loop_time:?}");

        // Paying twice is refused; re-creating a paid order says ORDERPAID.
        assert_eq!(sim.pay(&prepay.code_url).await, 409);
        let err = wx
            .unified_order(&order(&no, 1250, &sink.url))
            .await
            .unwrap_err();
        assert_eq!(err.err_code(), Some(&ErrCode::OrderPaid));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn close_makes_an_order_unpayable() {
    let sim = spawn_sim().await;
    let wx = client(&sim.url, SignType::Md5);
    let no = OutTradeNo::new(unique("CLOSE")).unwrap();
    let prepay = wx
        .unified_order(&order(no.as_str(), 1, "http://127.0.0.1:9/wxpay/notify"))
        .await
        .unwrap();
    wx.close_order(&CloseOrder {
        out_trade_no: no.clone(),
    })
    .await
    .unwrap();
    let q = wx
        .order_query(&OrderQuery {
            out_trade_no: no.clone(),
        })
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Closed);
    assert_eq!(sim.pay(&prepay.code_url).await, 410);
    let err = wx
        .close_order(&CloseOrder { out_trade_no: no })
        .await
        .unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::OrderClosed));
    let err = wx
        .order_query(&OrderQuery {
            out_trade_no: OutTradeNo::new("NOSUCH").unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::OrderNotExist));
}

#[tokio::test(flavor = "multi_thread")]
async fn unifiedorder_rules_of_the_gateway() {
    let sim = spawn_sim().await;
    let wx = client(&sim.url, SignType::Md5);
    let no = unique("RULES");
    let notify = "http://127.0.0.1:9/wxpay/notify";
    let first = order(&no, 100, notify);
    let a = wx.unified_order(&first).await.unwrap();
    let b = wx.unified_order(&first).await.unwrap();
    assert_eq!(a, b, "same out_trade_no and parameters: the same order");
    let mut changed = first.clone();
    changed.total_fee = Fen::new(101);
    let err = wx.unified_order(&changed).await.unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::InvalidRequest));

    let mut short = order(&unique("SHORT"), 100, notify);
    short.time_expire = short.time_start + SignedDuration::from_secs(60);
    let err = wx.unified_order(&short).await.unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::InvalidRequest), "{err}");
    assert!(err.to_string().contains("time_expire"), "{err}");

    let mut no_product = order(&unique("NOPROD"), 100, notify);
    no_product.product_id = String::new();
    let err = wx.unified_order(&no_product).await.unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::LackParams), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_key_is_a_signature_error() {
    let sim = spawn_sim().await;
    let wrong = Merchant {
        key: ApiKey::new("00000000000000000000000000000000").unwrap(),
        ..demo_merchant(SignType::Md5)
    };
    let wx = WxPayClient::new(&sim.url, wrong, Duration::from_secs(5)).unwrap();
    let err = wx
        .order_query(&OrderQuery {
            out_trade_no: OutTradeNo::new("X1").unwrap(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WxPayError::Protocol { return_msg } if return_msg == "签名错误"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_too_early_is_refused_when_configured() {
    let sim = spawn_sim_with(|s| s.sim.min_close_age_secs = 300).await;
    let wx = client(&sim.url, SignType::Md5);
    let no = OutTradeNo::new(unique("EARLY")).unwrap();
    wx.unified_order(&order(no.as_str(), 1, "http://127.0.0.1:9/wxpay/notify"))
        .await
        .unwrap();
    let err = wx
        .close_order(&CloseOrder {
            out_trade_no: no.clone(),
        })
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("5分钟"), "{err}");
    let q = wx
        .order_query(&OrderQuery { out_trade_no: no })
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::NotPay);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_gateway_fault_is_observed() {
    let sim = spawn_sim().await;
    let wx = client(&sim.url, SignType::Md5);
    let q = || OrderQuery {
        out_trade_no: OutTradeNo::new("FAULTY").unwrap(),
    };

    sim.set_faults("systemerror_rate=1").await;
    let err = wx.order_query(&q()).await.unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::SystemError));
    assert!(err.is_retryable());

    sim.set_faults("http500_rate=1").await;
    assert!(
        matches!(wx.order_query(&q()).await, Err(WxPayError::Transport(m)) if m.text().contains("500"))
    );

    sim.set_faults("bad_xml_rate=1").await;
    assert!(matches!(
        wx.order_query(&q()).await,
        Err(WxPayError::BadResponse(_))
    ));

    sim.set_faults("bad_sign_rate=1").await;
    let err = wx.order_query(&q()).await.unwrap_err();
    assert!(
        matches!(&err, WxPayError::BadResponse(m) if m.text().contains("signature")),
        "{err:?}"
    );

    sim.set_faults("latency_ms=300").await;
    let t = Instant::now();
    let _ = wx.order_query(&q()).await;
    assert!(t.elapsed() >= Duration::from_millis(300));

    // Bad fault text is refused and changes nothing; an empty body clears.
    let resp = http()
        .post(format!("{}faults", sim.url))
        .body("drop_notify=7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    sim.set_faults("").await;
    let t = Instant::now();
    let err = wx.order_query(&q()).await.unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::OrderNotExist));
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_faults_drop_duplicate_and_delay() {
    let sim = spawn_sim().await;
    let wx = client(&sim.url, SignType::Md5);

    // Dropped: never sent, but the payment is there to be queried.
    sim.set_faults("drop_notify=1.0").await;
    let sink = NotifySink::start(0).await;
    let no = unique("DROP");
    let p = wx.unified_order(&order(&no, 5, &sink.url)).await.unwrap();
    assert_eq!(sim.pay(&p.code_url).await, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
    let q = wx
        .order_query(&OrderQuery {
            out_trade_no: OutTradeNo::new(&no).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Success);

    // Duplicated: extra copies of the same notification.
    sim.set_faults("duplicate_notify=2").await;
    let sink = NotifySink::start(0).await;
    let p = wx
        .unified_order(&order(&unique("DUP"), 5, &sink.url))
        .await
        .unwrap();
    assert_eq!(sim.pay(&p.code_url).await, 200);
    sink.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|b| b == &bodies[0]));

    // Delayed.
    sim.set_faults("notify_delay_ms=400").await;
    let sink = NotifySink::start(0).await;
    let p = wx
        .unified_order(&order(&unique("LATE"), 5, &sink.url))
        .await
        .unwrap();
    let t = Instant::now();
    assert_eq!(sim.pay(&p.code_url).await, 200);
    sink.wait_for(1, Duration::from_secs(5)).await;
    let first = sink.received.lock().unwrap()[0].0;
    assert!(first.duration_since(t) >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_payments_of_one_code_url_pay_once() {
    let sim = spawn_sim().await;
    let wx = client(&sim.url, SignType::Md5);
    let sink = NotifySink::start(0).await;
    let p = wx
        .unified_order(&order(&unique("RACE"), 5, &sink.url))
        .await
        .unwrap();
    let tries = (0..20).map(|_| sim.pay(&p.code_url));
    let statuses = futures_util::future::join_all(tries).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19);
    sink.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sim_command_serves_the_gateway_and_the_phone() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let banner = sim.stdout.lock().unwrap().clone();
    assert!(
        banner.contains(&format!("(merchant {DEMO_MCH_ID})")),
        "{banner}"
    );
    let wx = client(&sim.url, SignType::Md5);
    let no = unique("CLI");
    let prepay = wx
        .unified_order(&order(&no, 100, "http://127.0.0.1:9/wxpay/notify"))
        .await
        .unwrap();
    let phone = get_text(&sim.url).await;
    assert!(phone.contains(&prepay.code_url), "the phone lists it");
    assert_eq!(pay_on(&sim.url, &prepay.code_url).await, 200);
    let q = wx
        .order_query(&OrderQuery {
            out_trade_no: OutTradeNo::new(&no).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Success);
}
