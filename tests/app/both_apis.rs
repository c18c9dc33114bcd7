//! The core black-box flows, once per protocol (`wxpay.api = "v2"` and
//! `"v3"`): each flow is one function taking the `Api`, and `both!` makes
//! its two tests. What only v3 has (signed headers, timestamps, replays,
//! probes, platform certificates) is at the end.

use std::time::Duration;

use crate::helpers::*;

both!(create_scan_pay_notify_paid);
both!(paid_by_polling_alone_when_no_notification_comes);
both!(a_superseded_qr_is_closed_and_cannot_be_paid);
both!(gateway_faults_fail_visibly_and_recover);
both!(a_badly_signed_answer_is_not_believed);
both!(live_mode_against_scanpay_sim);

async fn create_scan_pay_notify_paid(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("12.50", "茶").await;
    let out_trade_no = app.out_trade_no(&token).await;
    app.scan_and_pay(&token).await;
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    assert_eq!(s["amount_fen"], 1250);
    app.wait_count(
        "the verified notification",
        &format!(
            "SELECT COUNT(*) FROM notifications WHERE verified = 1 AND out_trade_no = '{out_trade_no}'"
        ),
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
    app.login_as("admin", "admin").await;
    let admin = app.page(&app.http, app.url("/admin")).await;
    assert!(admin.contains("12.50"), "the admin sees it ({api:?})");
}

async fn paid_by_polling_alone_when_no_notification_comes(api: Api) {
    let app = spawn_app_on(api, |s| s.sim.faults = "drop_notify=1.0".into()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("3.30", "poll").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications"), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE source = 'poll'"),
        1
    );
}

async fn a_superseded_qr_is_closed_and_cannot_be_paid(api: Api) {
    // QRs live 4 s of the app's clock, which moves only when the test says: QR 2
    // is paid before it is superseded in turn.
    let app = spawn_app_on_manual_clock(move |s| {
        s.wxpay.api = api;
        s.checkout.qr_ttl_secs = 4;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("6.60", "refresh").await;
    let old_no = app.out_trade_no(&token).await;
    let old_url = app.scan_qr(&token).await;
    let s = app
        .advance_until(&token, "QR 2", Duration::from_secs(4), 1, |s| {
            s["qr_version"] == 2 && s["qr_state"] == "open"
        })
        .await;
    assert_ne!(s["out_trade_no"], old_no.as_str(), "a new out_trade_no");
    app.wait_count(
        "the old QR closed at the gateway",
        &format!("SELECT COUNT(*) FROM qrs WHERE out_trade_no = '{old_no}' AND state = 'closed'"),
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(app.pay(&old_url).await, 410, "the old QR cannot be paid");
    let new_url = app.scan_qr(&token).await;
    assert_ne!(new_url, old_url);
    assert_eq!(app.pay(&new_url).await, 200);
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    assert_eq!(s["late"], false);
}

async fn gateway_faults_fail_visibly_and_recover(api: Api) {
    // A failed QR is replaced at the QR's pace, on the app's clock, which moves
    // only when the test says: it is read failed, then the time passes.
    let app = spawn_app_on_manual_clock(move |s| {
        s.wxpay.api = api;
        s.checkout.qr_ttl_secs = 4;
        s.poller.max_backoff_secs = 1;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    for (fault, shown) in [
        ("systemerror_rate=1", api.system_error()),
        ("http500_rate=1", "500"),
    ] {
        app.set_faults(fault).await;
        let token = app.create_order("5.00", fault).await;
        let s = app.status(&token).await;
        assert_eq!(s["qr_state"], "failed", "{fault}: {s}");
        assert!(
            s["qr_error"].as_str().unwrap().contains(shown),
            "{fault}: {s}"
        );
        app.set_faults("").await;
        app.advance_until(&token, "a new QR", Duration::from_secs(1), 15, |s| {
            s["qr_state"] == "open"
        })
        .await;
        app.scan_and_pay(&token).await;
        app.wait_for_state(&token, "paid", Duration::from_secs(5))
            .await;
    }
}

async fn a_badly_signed_answer_is_not_believed(api: Api) {
    for fault in ["bad_sign_rate=1", "bad_xml_rate=1"] {
        // The manual clock skips the pauses between the automatic resends.
        let app = spawn_app_on_manual_clock(move |s| s.wxpay.api = api).await;
        app.login_as("cashier", "cashier").await;
        app.set_faults(fault).await;
        let token = app.create_order("4.40", fault).await;
        let s = app.status(&token).await;
        assert_eq!(s["qr_state"], "failed", "{api:?} {fault}: {s}");
        assert!(
            s["qr_error"].as_str().unwrap().contains("not valid"),
            "{api:?} {fault}: {s}"
        );
        app.set_faults("").await;
        let resp = app.post_action(&token, "retry").await;
        assert_is_redirect_to(&resp, &format!("/o/{token}"));
        app.scan_and_pay(&token).await;
        app.wait_for_state(&token, "paid", Duration::from_secs(5))
            .await;
    }
}

/// The app in live mode against `scanpay sim` in this process: v2, and v3
/// with the public key and with platform certificates.
async fn live_mode_against_scanpay_sim(api: Api) {
    let sim = spawn_sim().await;
    for &k in api.verifications() {
        let app = spawn_live_app_on(api, k, &sim.url, |_| {}).await;
        app.login_as("cashier", "cashier-password").await;
        let token = app.create_order("8.80", "live").await;
        let code_url = app.scan_qr(&token).await;
        assert_eq!(sim.pay(&code_url).await, 200);
        app.wait_for_state(&token, "paid", Duration::from_secs(10))
            .await;
        // The poller may find the payment first on a busy machine; the
        // notification still comes, and is verified.
        app.wait_count(
            &format!("{api:?} {k:?}: its verified notification"),
            "SELECT COUNT(*) FROM notifications WHERE verified = 1",
            1,
            Duration::from_secs(5),
        )
        .await;
    }
}

// ---------------------------------------------------------------- v3 only

/// An order on v3 in simulator mode, and its out_trade_no.
async fn v3_order(app: &TestApp) -> (String, String) {
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("9.99", "hostile").await;
    let no = app.out_trade_no(&token).await;
    (token, no)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_v3_notifications_are_refused_and_change_nothing() {
    let app = spawn_app_on(Api::V3, |s| s.sim.faults = "drop_notify=1.0".into()).await;
    let (token, no) = v3_order(&app).await;
    let now = jiff::Timestamp::now().as_second();
    let good = v3_paid(&no, 999, "4200000001202612010000000001");
    let mut cases: Vec<(&str, Vec<u8>, V3Headers)> = Vec::new();
    let (body, mut h) = v3_notification("EV-1", &good, DEMO_V3_APIV3_KEY, now);
    h.signature = format!("WECHATPAY/SIGNTEST/{}", h.signature);
    cases.push(("signature probe", body, h));
    let (body, mut h) = v3_notification("EV-2", &good, DEMO_V3_APIV3_KEY, now);
    h.signature = sign_v3(b"other bytes", now).signature;
    cases.push(("bad signature", body, h));
    let (body, mut h) = v3_notification("EV-3", &good, DEMO_V3_APIV3_KEY, now);
    h.serial = scanpay::sim::v3::keys::PLATFORM_SERIAL.into();
    cases.push(("wrong serial (another key)", body, h));
    let (body, mut h) = v3_notification("EV-3b", &good, DEMO_V3_APIV3_KEY, now);
    h.serial = "PUB_KEY_ID_UNKNOWN".into();
    cases.push(("unknown serial", body, h));
    cases.push({
        let (b, h) = v3_notification("EV-4", &good, DEMO_V3_APIV3_KEY, now - 300);
        ("stale timestamp", b, h)
    });
    cases.push({
        let (b, h) = v3_notification("EV-5", &good, "another-apiv3-key-00000000000000", now);
        ("encrypted with another APIv3 key", b, h)
    });
    {
        let (b, _) = v3_notification("EV-6", &good, DEMO_V3_APIV3_KEY, now);
        let mut env: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let c = env["resource"]["ciphertext"].as_str().unwrap().to_string();
        let tampered = format!("{}{}", if c.starts_with('A') { "B" } else { "A" }, &c[1..]);
        env["resource"]["ciphertext"] = tampered.into();
        let body = serde_json::to_vec(&env).unwrap();
        let h = sign_v3(&body, now);
        cases.push(("tampered ciphertext (re-signed)", body, h));
    }
    let mut other = good.clone();
    other["mchid"] = "1900000001".into();
    cases.push({
        let (b, h) = v3_notification("EV-7", &other, DEMO_V3_APIV3_KEY, now);
        ("another merchant", b, h)
    });
    let mut wrong_amount = good.clone();
    wrong_amount["amount"]["total"] = 1.into();
    cases.push({
        let (b, h) = v3_notification("EV-8", &wrong_amount, DEMO_V3_APIV3_KEY, now);
        ("wrong amount", b, h)
    });
    let unknown = v3_paid("SPNOTOURS000001", 999, "4200000001202612010000000002");
    cases.push({
        let (b, h) = v3_notification("EV-9", &unknown, DEMO_V3_APIV3_KEY, now);
        ("unknown order", b, h)
    });
    for (what, body, h) in &cases {
        let (status, answer) = app.notify_v3(body, h).await;
        assert!(status >= 400, "{what}: {status} {answer}");
        assert!(answer.contains("FAIL"), "{what}: {answer}");
    }
    assert_eq!(app.status(&token).await["state"], "open");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 0);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM notifications WHERE verified = 1 AND outcome LIKE 'applied%'"
        ),
        0
    );

    // The real one pays; WeChat Pay's retry (same id, same body, signed anew)
    // is acknowledged again; the same id with another body is a replay.
    let (body, h) = v3_notification("EV-REAL", &good, DEMO_V3_APIV3_KEY, now);
    assert_eq!(app.notify_v3(&body, &h).await.0, 204);
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    let again = sign_v3(&body, now + 1);
    assert_eq!(app.notify_v3(&body, &again).await.0, 204, "a retry");
    let mut changed = good.clone();
    changed["transaction_id"] = "4200000001202612019999999999".into();
    let (replay, h) = v3_notification("EV-REAL", &changed, DEMO_V3_APIV3_KEY, now);
    let (status, answer) = app.notify_v3(&replay, &h).await;
    assert!(status >= 400, "a replay: {status} {answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1, "paid once");
    assert_eq!(app.status(&token).await["double_paid"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn refund_events_about_no_refund_of_ours_are_refused_and_forgeries_fail() {
    let app = spawn_app_on(Api::V3, |_| {}).await;
    let now = jiff::Timestamp::now().as_second();
    let refund = serde_json::json!({"mchid": DEMO_V3_MCH_ID, "out_trade_no": "SP1",
        "refund_id": "50000000382019052709732678859", "out_refund_no": "R1",
        "refund_status": "SUCCESS", "amount": {"total": 1, "refund": 1, "payer_total": 1, "payer_refund": 1}});
    let (body, _) = v3_notification("EV-R", &refund, DEMO_V3_APIV3_KEY, now);
    let mut env: serde_json::Value = serde_json::from_slice(&body).unwrap();
    env["event_type"] = "REFUND.SUCCESS".into();
    let body = serde_json::to_vec(&env).unwrap();
    // Verified, but no refund of ours has that number: not taken (WeChat Pay
    // sends it again, and the day's reconciliation shows it), and logged.
    assert!(app.notify_v3(&body, &sign_v3(&body, now)).await.0 >= 400);
    let mut forged = sign_v3(&body, now);
    forged.signature = sign_v3(b"x", now).signature;
    assert!(app.notify_v3(&body, &forged).await.0 >= 400);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 1 AND outcome = 'refused: unknown out_refund_no R1'"),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE verified = 0"),
        1,
        "the forgery"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_v3_keys_are_published_and_its_certificates_decrypt() {
    let sim = spawn_sim().await;
    let keys: serde_json::Value = http()
        .get(format!("{}v3/sim-keys", sim.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["public_key_id"], scanpay::sim::v3::keys::PUBLIC_KEY_ID);
    assert!(
        keys["public_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert!(
        keys["platform_certificate_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // Unsigned requests to the API are refused as WeChat Pay refuses them.
    let resp = http()
        .get(format!("{}v3/certificates", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(e["code"], "SIGN_ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_v3_key_reaches_a_log_line_or_a_page() {
    let app = spawn_app_on(Api::V3, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.11", "secret?").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    app.login_as("admin", "admin").await;
    let mut seen = logs();
    for path in ["/admin".to_string(), format!("/o/{token}"), "/sim/".into()] {
        seen.push_str(&app.page(&app.http, app.url(&path)).await);
    }
    // The private key's body (its first line past the header) and the APIv3 key.
    let key_line = scanpay::wxpay::v3::OFFICIAL_TEST_KEY_PEM
        .lines()
        .nth(1)
        .unwrap();
    for secret in [DEMO_V3_APIV3_KEY, key_line] {
        assert!(!seen.contains(secret), "a secret leaked: {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_certificates_missed_at_start_are_fetched_when_the_gateway_is_back() {
    let listen = format!("127.0.0.1:{}", free_port());
    let gateway = format!("http://{listen}/");
    // The gateway is down while the app starts: it starts anyway, believing
    // nothing yet, and tries the download again a second later (in service: 10 s).
    // The test is about the certificate refresh: it runs in the background.
    let app = TestApp::builder()
        .api(Api::V3)
        .live_verifying(&gateway, V3Keys::Certificates)
        .manual_clock()
        .background_jobs()
        .prepare(|app| app.retry_certificates_after(Duration::from_secs(1)))
        .settings(|s| {
            s.checkout.qr_ttl_secs = 1;
            s.wxpay.timeout_secs = 2;
            s.poller.max_backoff_secs = 1;
        })
        .start()
        .await;
    app.login_as("cashier", "cashier-password").await;
    let sim = spawn_sim_process(&listen);
    let token = app.create_order("2.22", "later").await;
    // Until the certificates arrive no answer is believed: the failed QR is
    // tried again at the QR's pace (the app's clock moved a second at a time)
    // until one is.
    let start = std::time::Instant::now();
    loop {
        let s = app.status(&token).await;
        if s["qr_state"] == "open" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no open QR: {s}");
        app.advance(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The app's clock stands still now: the code cannot be replaced between
    // the scan and the payment.
    let code_url = app.scan_qr(&token).await;
    assert_eq!(pay_on(&sim.url, &code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_notification_the_store_cannot_take_is_try_again_not_a_refusal() {
    let app = spawn_app_on(Api::V3, |s| s.sim.faults = "drop_notify=1.0".into()).await;
    let (token, no) = v3_order(&app).await;
    let now = jiff::Timestamp::now().as_second();
    let good = v3_paid(&no, 999, "4200000001202612010000000003");
    // The database refuses the notification's id, as a full disk would.
    let db = rusqlite::Connection::open(app.data_dir.path().join(scanpay::store::DB_FILE)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER ids_fail BEFORE INSERT ON notification_ids
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let (body, h) = v3_notification("EV-STORE", &good, DEMO_V3_APIV3_KEY, now);
    let (status, answer) = app.notify_v3(&body, &h).await;
    assert!(
        status >= 500,
        "the gateway is asked to send it again: {status} {answer}"
    );
    assert!(answer.contains("try again"), "{answer}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE outcome LIKE 'refused%'"),
        0,
        "a verified notification is not booked as a refusal"
    );
    // Once the store takes it again, the same notification pays.
    db.execute_batch("DROP TRIGGER ids_fail").unwrap();
    assert_eq!(app.notify_v3(&body, &h).await.0, 204);
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
}
