//! `POST /wxpay/notify`: only a genuine notification for our order and amount pays.

use std::time::Duration;

use scanpay::wxpay::v2::notify;
use scanpay::wxpay::v2::{ApiKey, Merchant, SignType, xml};

use crate::helpers::*;

/// A new ¥1.00 order paid by a genuine notification (the cashier signed in).
async fn paid_by_notification(app: &TestApp, transaction_id: &str) -> String {
    let token = app.create_order("1.00", "").await;
    let no = app.out_trade_no(&token).await;
    let (_, answer) = app
        .notify(signed_notification(
            &demo_merchant(SignType::Md5),
            &no,
            100,
            transaction_id,
        ))
        .await;
    assert!(is_success(&answer), "{answer}");
    token
}

fn is_success(body: &str) -> bool {
    notify::is_success_ack(body.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tampered_and_foreign_notifications_change_nothing() {
    let app = spawn_app_with(|s| s.sim.faults = "drop_notify=1.0".into()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("12.50", "x").await;
    let no = app.out_trade_no(&token).await;
    let demo = demo_merchant(SignType::Md5);

    let wrong_key = Merchant {
        key: ApiKey::new("ffffffffffffffffffffffffffffffff").unwrap(),
        ..demo.clone()
    };
    let other_merchant = Merchant {
        mch_id: "1900000109".into(),
        ..demo.clone()
    };
    let genuine = signed_notification(&demo, &no, 1250, "4200000000000000000000000001");
    let tampered = genuine.replace("<total_fee>1250</total_fee>", "<total_fee>1</total_fee>");
    assert_ne!(tampered, genuine);
    let unsigned = {
        let mut f = xml::from_xml(genuine.as_bytes()).unwrap();
        f.remove("sign");
        xml::to_xml(&f)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong key",
            signed_notification(&wrong_key, &no, 1250, "4200000000000000000000000002"),
        ),
        ("tampered amount", tampered),
        ("unsigned", unsigned),
        (
            "other merchant",
            signed_notification(&other_merchant, &no, 1250, "4200000000000000000000000003"),
        ),
        (
            "wrong amount, genuinely signed",
            signed_notification(&demo, &no, 1, "4200000000000000000000000004"),
        ),
        (
            "unknown order",
            signed_notification(&demo, "NOT-OURS-1", 1250, "4200000000000000000000000005"),
        ),
        (
            "doctype",
            format!(
                "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
                genuine.replace("<xml>", "<xml><a>&x;</a>")
            ),
        ),
        ("garbage", "\u{0}\u{1}not xml".into()),
    ];
    for (what, body) in cases {
        let (status, answer) = app.notify(body).await;
        assert_eq!(status, 200, "{what}");
        assert!(
            !is_success(&answer),
            "{what} must be answered FAIL: {answer}"
        );
    }
    let (status, _) = app.notify(vec![b'<'; 4 * 1024 * 1024]).await;
    assert!(
        status == 413 || status == 400,
        "a 4 MiB body is refused ({status})"
    );
    let (status, _) = app.notify(vec![0xff, 0xfe, 0x00, 0x3c]).await;
    assert_eq!(status, 200);

    assert_eq!(app.status(&token).await["state"], "open");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE outcome LIKE 'refused%'"),
        9
    );
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);

    // The genuine one pays; the stored log has no signature in it.
    let (_, answer) = app.notify(genuine.clone()).await;
    assert!(is_success(&answer), "{answer}");
    assert_eq!(app.status(&token).await["state"], "paid");
    let sign = xml::from_xml(genuine.as_bytes())
        .unwrap()
        .get("sign")
        .unwrap()
        .to_string();
    let logged: String = app
        .db()
        .query_row(
            "SELECT group_concat(body, '') FROM notifications",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!logged.contains(&sign), "signatures are not logged");
    let logs = logs();
    assert!(
        !logs.contains(&sign) && !logs.contains(DEMO_API_KEY),
        "nor in the server log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_identical_notifications_at_once_pay_once() {
    let app = spawn_app_with(|s| s.sim.faults = "drop_notify=1.0".into()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("0.29", "").await;
    let no = app.out_trade_no(&token).await;
    let body = signed_notification(
        &demo_merchant(SignType::Md5),
        &no,
        29,
        "4200000000000000000000000042",
    );
    let sends = (0..20).map(|_| app.notify(body.clone()));
    let answers = futures_util::future::join_all(sends).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200);
        assert!(is_success(answer), "every copy is acknowledged: {answer}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications"), 20);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM notifications WHERE outcome = 'duplicate: already applied'"
        ),
        19
    );
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(1))
        .await;
    assert_eq!(s["double_paid"], false);
}

/// Only the configured algorithm is accepted: an HMAC-SHA256 shop takes
/// HMAC-SHA256 notifications and refuses MD5 ones, and the other way round.
#[tokio::test(flavor = "multi_thread")]
async fn notifications_are_accepted_only_with_the_configured_sign_type() {
    for (configured, other) in [
        (SignType::HmacSha256, SignType::Md5),
        (SignType::Md5, SignType::HmacSha256),
    ] {
        let app = spawn_app_with(move |s| {
            s.sim.faults = "drop_notify=1.0".into();
            s.wxpay.sign_type = configured;
        })
        .await;
        app.login_as("cashier", "cashier").await;
        let token = app.create_order("1.00", "").await;
        let no = app.out_trade_no(&token).await;
        let wrong = signed_notification(
            &demo_merchant(other),
            &no,
            100,
            "4200000000000000000000000076",
        );
        let (_, answer) = app.notify(wrong).await;
        assert!(
            !is_success(&answer),
            "{configured}: {other} accepted: {answer}"
        );
        assert_eq!(app.status(&token).await["state"], "open");

        let right = signed_notification(
            &demo_merchant(configured),
            &no,
            100,
            "4200000000000000000000000077",
        );
        let (_, answer) = app.notify(right).await;
        assert!(is_success(&answer), "{configured}: {answer}");
        assert_eq!(app.status(&token).await["state"], "paid");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_or_signature_reaches_a_log_line_or_a_page() {
    // The log is captured at debug level (see helpers). The manual clock skips
    // the pauses between the resends of the failing code request below.
    let app = spawn_app_on_manual_clock(|s| s.sim.faults = "duplicate_notify=1".into()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("2.22", "secret test").await;
    let no = app.out_trade_no(&token).await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;

    // Our own genuine and forged notifications, whose signatures we know.
    let demo = demo_merchant(SignType::Md5);
    let mut signs = Vec::new();
    for (i, fee) in [(1, 222), (2, 1)] {
        let body = signed_notification(&demo, &no, fee, &format!("420000000000000000000000009{i}"));
        signs.push(
            xml::from_xml(body.as_bytes())
                .unwrap()
                .get("sign")
                .unwrap()
                .to_string(),
        );
        let _ = app.notify(body).await;
    }
    // Failure paths log too.
    app.set_faults("bad_sign_rate=1").await;
    let _ = app.create_order("1.00", "").await;
    app.set_faults("").await;

    let logs = logs();
    // The simulator's transaction id is this payment's alone (order numbers
    // repeat across the tests' apps).
    let transaction_id: String = app
        .db()
        .query_row("SELECT transaction_id FROM payments", [], |r| r.get(0))
        .unwrap();
    assert!(
        logs.lines()
            .any(|l| l.contains("payment applied") && l.contains(&transaction_id)),
        "the log is captured"
    );
    assert!(!logs.contains(DEMO_API_KEY), "the API key is never logged");
    for s in &signs {
        assert!(!logs.contains(s.as_str()), "a signature was logged");
    }
    assert!(
        !logs.contains("<sign>"),
        "no raw message with its signature is logged"
    );
    for path in [
        format!("/o/{token}"),
        format!("/o/{token}/status"),
        "/".into(),
    ] {
        let page = app.page(&app.http, app.url(&path)).await;
        assert!(
            !page.contains(DEMO_API_KEY) && signs.iter().all(|s| !page.contains(s.as_str())),
            "{path}"
        );
    }
}

/// Only the same transaction for the same QR is a duplicate: a second
/// transaction for a paid QR is a second payment, kept and flagged; a
/// transaction already recorded for another order is flagged as an anomaly on
/// the order it was reported for. Each is acknowledged, and none is lost.
#[tokio::test(flavor = "multi_thread")]
async fn no_payment_fact_is_dropped_as_a_duplicate() {
    let app = spawn_app_with(|s| s.sim.faults = "drop_notify=1.0".into()).await;
    app.login_as("cashier", "cashier").await;
    let m = demo_merchant(SignType::Md5);
    let first = app.create_order("3.00", "").await;
    let first_no = app.out_trade_no(&first).await;
    let (_, answer) = app
        .notify(signed_notification(
            &m,
            &first_no,
            300,
            "4200000000000000000000000101",
        ))
        .await;
    assert!(is_success(&answer), "{answer}");

    // The same QR reported paid again with another transaction.
    let (_, answer) = app
        .notify(signed_notification(
            &m,
            &first_no,
            300,
            "4200000000000000000000000102",
        ))
        .await;
    assert!(is_success(&answer), "{answer}");
    let s = app.status(&first).await;
    assert_eq!(
        (s["state"].as_str(), s["double_paid"].as_bool()),
        (Some("paid"), Some(true))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE double_paid = 1"),
        1
    );

    // Another order's QR reported paid with the first order's transaction.
    let other = app.create_order("3.00", "").await;
    let other_no = app.out_trade_no(&other).await;
    let reused = signed_notification(&m, &other_no, 300, "4200000000000000000000000101");
    for _ in 0..2 {
        let (_, answer) = app.notify(reused.clone()).await;
        assert!(is_success(&answer), "acknowledged: {answer}");
    }
    assert_eq!(app.status(&other).await["state"], "open", "no money moved");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE anomaly = 1"),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'anomaly'"),
        1,
        "told once, however often it is reported"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE outcome LIKE 'anomaly%'"),
        2
    );

    // The admin sees it on the order.
    app.login_as("admin", "admin").await;
    let order_no: String = app
        .db()
        .query_row("SELECT order_no FROM orders WHERE anomaly = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(
        page.contains("anomaly") && page.contains("4200000000000000000000000101"),
        "{page}"
    );
}

/// Junk cannot fill the disk: refused notifications are kept short, and past a
/// few a minute from one address only counted; other addresses and verified
/// notifications are not affected.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_junk_notifications_is_counted_not_stored() {
    // On the manual clock the sixty posts all fall in one minute, however slow
    // the machine (on the wall clock a minute's edge could split them).
    let app = spawn_app_on_manual_clock(|s| s.sim.faults = "drop_notify=1.0".into()).await;
    let junk = format!("<xml><sign>x</sign>{}</xml>", "j".repeat(4000));
    for _ in 0..60 {
        let (_, answer) = app.notify(junk.clone()).await;
        assert!(!is_success(&answer));
    }
    let stored = "SELECT COUNT(*) FROM notifications WHERE verified = 0";
    assert_eq!(app.count(stored), 10, "ten a minute from one address");
    assert_eq!(
        app.count("SELECT MAX(length(body)) FROM notifications"),
        512,
        "and each kept short"
    );
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let status = elsewhere
        .post(app.url("/wxpay/notify"))
        .body(junk.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        app.count(stored),
        11,
        "another address has its own allowance"
    );
    // A minute later the first address has a new allowance.
    app.advance(Duration::from_secs(60)).await;
    let (_, answer) = app.notify(junk.clone()).await;
    assert!(!is_success(&answer));
    assert_eq!(app.count(stored), 12, "the next minute's first one is kept");

    // A genuine notification is still taken and logged in full.
    app.login_as("cashier", "cashier").await;
    let token = paid_by_notification(&app, "4200000000000000000000000201").await;
    assert_eq!(app.status(&token).await["state"], "paid");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 1"),
        1
    );
}

/// The log is pruned: verified notifications after `retention.notification_days`,
/// refused ones beyond the newest `retention.refused_notifications`; payments stay.
#[tokio::test(flavor = "multi_thread")]
async fn the_notification_log_is_pruned_by_its_retention_settings() {
    let app = spawn_app_on_manual_clock(|s| {
        s.sim.faults = "drop_notify=1.0".into();
        s.retention.notification_days = 1;
        s.retention.refused_notifications = 3;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    paid_by_notification(&app, "4200000000000000000000000301").await;
    for i in 0..6 {
        app.notify(format!("<xml>junk {i}</xml>")).await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 0"),
        6
    );

    app.advance(Duration::from_secs(3600)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 0"),
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE body LIKE '%junk 5%'"),
        1,
        "the newest are kept"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 1"),
        1
    );

    app.advance(Duration::from_secs(24 * 3600)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 1"),
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments"),
        1,
        "the money stays"
    );
}
