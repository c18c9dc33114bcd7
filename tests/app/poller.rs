//! Payments whose notification never comes are found by the poller, also across a restart.

use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_notification_is_found_by_the_poller() {
    // The test is about the poller's own loop: it runs in the background, and
    // finds the payment whether or not the waiting below ticks it too.
    let app = TestApp::builder()
        .background_jobs()
        .settings(|s| s.sim.faults = "drop_notify=1.0".into())
        .start()
        .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("9.99", "no notify").await;
    app.scan_and_pay(&token).await;
    let t = Instant::now();
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    eprintln!("payment found by the poller after {:?}", t.elapsed());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE source = 'poll'"),
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_polling_where_it_left_off() {
    let sim = spawn_sim_with(|s| s.sim.faults = "drop_notify=1.0".into()).await;
    let mut app = spawn_app_process(&sim);
    app.login_as("cashier", "cashier-password").await;
    let token = app.create_order("4.20", "survives").await;
    let code_url = app.scan_qr(&token).await;

    app.restart();
    // Paid while the server was starting again; no notification will ever come.
    assert_eq!(sim.pay(&code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
}

#[test]
fn live_mode_refuses_to_start_without_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |env: &[(&str, &str)]| {
        let out = run_cli(dir.path(), &["serve", "--listen", "127.0.0.1:0"], env, "");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let live = [
        ("SCANPAY_WXPAY_GATEWAY", "https://api.mch.weixin.qq.com/"),
        ("SCANPAY_WXPAY_APPID", "wx0123456789abcdef"),
    ];
    let err = serve(&live);
    for key in ["wxpay.mch_id", "wxpay.api_key", "wxpay.notify_url"] {
        assert!(err.contains(key), "names {key}: {err}");
    }
    assert!(!err.contains("wxpay.appid ("), "appid was given: {err}");

    // With every key but no admin user: refused, with what to do.
    let key = "0123456789abcdef0123456789abcdef";
    let err = serve(
        &[
            &live[..],
            &[
                ("SCANPAY_WXPAY_MCH_ID", "1900000109"),
                ("SCANPAY_WXPAY_API_KEY", key),
                (
                    "SCANPAY_WXPAY_NOTIFY_URL",
                    "https://shop.example/wxpay/notify",
                ),
            ],
        ]
        .concat(),
    );
    assert!(err.contains("scanpay user add"), "{err}");
    assert!(!err.contains(key), "the key is never printed");
}
