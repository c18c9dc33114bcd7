//! The cashier's and the customer's path through a real server.

use std::time::{Duration, Instant};

use scanpay::config::Language;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn cashier_charges_customer_scans_and_pays() {
    // The poller waits a minute before it asks: the notification, which this
    // test follows, pays the order first even on a busy machine.
    let app = spawn_app_with(|s| {
        s.poller.fast_interval_ms = 60_000;
        s.poller.slow_interval_ms = 60_000;
    })
    .await;
    app.login_as("cashier", "cashier").await;

    let t0 = Instant::now();
    let token = app.create_order("12.50", "两杯咖啡").await;
    let create_latency = t0.elapsed();
    assert_eq!(token.len(), 32, "an unguessable 128-bit token");

    let s = app.status(&token).await;
    assert_eq!(s["state"], "open");
    assert_eq!(s["amount_fen"], 1250);
    assert_eq!(s["qr_version"], 1);
    assert!(s["out_trade_no"].as_str().unwrap().len() <= 32);
    assert!(s["paid_at"].is_null());
    let order_no = s["order_no"].as_str().unwrap().to_string();
    assert!(!token.contains(&order_no));

    let page = app.get_anonymous(&format!("/o/{token}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("¥12.50") && html.contains("Demo Shop") && html.contains("两杯咖啡"));
    assert!(html.contains(&format!("/o/{token}/qr.png")));

    let code_url = app.scan_qr(&token).await;
    assert!(code_url.starts_with("weixin://wxpay/bizpayurl?pr="));
    let t1 = Instant::now();
    assert_eq!(app.pay(&code_url).await, 200);
    let s = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    eprintln!(
        "create order: {create_latency:?}; pay → status paid: {:?}",
        t1.elapsed()
    );
    assert!(s["paid_at"].is_string());
    assert_eq!(s["late"], false);
    assert_eq!(s["double_paid"], false);

    // A paid order shows no QR any more.
    let qr = app.get_anonymous(&format!("/o/{token}/qr.png")).await;
    assert_eq!(qr.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE outcome = 'applied' AND verified = 1"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_learns_of_the_payment_through_sse() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("3.00", "tea").await;
    let code_url = app.scan_qr(&token).await;

    let mut events = Events::order(&app.anonymous(), &app.base, &token).await;
    // The first event is the current state.
    let first = Duration::from_secs(5);
    events.until_text("\"state\":\"open\"", first).await;
    let paid_at = Instant::now();
    assert_eq!(app.pay(&code_url).await, 200);
    // A paid event within 3 s.
    let (at, paid) = events
        .until_text("\"state\":\"paid\"", Duration::from_secs(3))
        .await;
    let latency = at - paid_at;
    eprintln!("pay → SSE event: {latency:?}");
    assert!(paid.contains("event: status"));
}

#[tokio::test(flavor = "multi_thread")]
async fn amounts_are_parsed_exactly_and_bad_input_is_refused() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("0.29", "").await;
    assert_eq!(app.status(&token).await["amount_fen"], 29);
    assert_eq!(app.count("SELECT amount_fen FROM orders"), 29);

    for (amount, message) in [
        ("", "请输入金额"),
        ("abc", "金额格式不正确"),
        ("1.234", "两位小数"),
        ("0", "大于零"),
        ("-5", "大于零"),
        ("100000.01", "上限"),
    ] {
        let resp = app.post_order(amount, "x").await;
        assert_eq!(resp.status(), 422, "{amount:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(message), "{amount:?} → {message}");
        assert!(
            html.contains("name=\"csrf_token\""),
            "the form is shown again"
        );
    }
    let long = "长".repeat(101);
    assert_eq!(app.post_order("1", &long).await.status(), 422);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders"),
        1,
        "nothing recorded for bad input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_data_dir_gets_the_demo_users() {
    let app = TestApp::builder().fresh_database().start().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 2);
    app.login_as("admin", "admin").await;
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    app.login_as("cashier", "cashier").await;
    app.create_order("1.00", "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_needs_a_login() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/").await;
    assert_is_redirect_to(&resp, "/login?next=/");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_and_a_right_one_sets_a_safe_cookie() {
    let app = spawn_app().await;
    let resp = app
        .anonymous()
        .post(app.url("/login"))
        .form(&[("username", "cashier"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("用户名或密码不正确"));

    let resp = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "cashier"),
            ("password", "cashier"),
            ("next", "/o/abc"),
        ])
        .send()
        .await
        .unwrap();
    assert_is_redirect_to(&resp, "/o/abc");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_post_without_the_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let resp = app
        .http
        .post(app.url("/orders"))
        .form(&[("amount", "1.00"), ("description", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_login_failures_from_one_address_are_slowed_down() {
    let app = spawn_app().await;
    let anon = app.anonymous();
    let mut last = 0;
    for _ in 0..12 {
        last = anon
            .post(app.url("/login"))
            .form(&[("username", "admin"), ("password", "guess")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_failure_shows_the_reason_and_a_retry_works() {
    // The manual clock skips the pauses between the automatic resends.
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    app.set_faults("systemerror_rate=1").await;
    let token = app.create_order("5.00", "retry me").await;
    let s = app.status(&token).await;
    assert_eq!(s["state"], "open");
    assert_eq!(s["qr_state"], "failed");
    assert!(
        s["qr_error"].as_str().unwrap().contains("SYSTEMERROR"),
        "{s}"
    );
    let page = app.page(&app.http, app.url(&format!("/o/{token}"))).await;
    assert!(page.contains("SYSTEMERROR") && page.contains(&format!("/o/{token}/retry")));

    app.set_faults("").await;
    let resp = app.post_action(&token, "retry").await;
    assert_is_redirect_to(&resp, &format!("/o/{token}"));
    let s = app.status(&token).await;
    assert_eq!(s["qr_state"], "open");
    assert_eq!(s["qr_version"], 2);

    // A second click finds nothing to retry, and says so (the order is not over).
    let again = app.post_action(&token, "retry").await;
    assert_eq!(again.status(), 409);
    let page = again.text().await.unwrap();
    assert!(
        page.contains("无需重试") && !page.contains("已结束"),
        "{page}"
    );

    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_staff_can_cancel_and_a_cancelled_qr_cannot_be_paid() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("8.80", "cancel me").await;
    let code_url = app.scan_qr(&token).await;

    let resp = app
        .anonymous()
        .post(app.url(&format!("/o/{token}/cancel")))
        .form(&[("csrf_token", "guess")])
        .send()
        .await
        .unwrap();
    assert!(
        location(&resp).starts_with("/login"),
        "the customer's link cannot cancel"
    );
    assert_eq!(app.status(&token).await["state"], "open");

    let resp = app.post_action(&token, "cancel").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(app.status(&token).await["state"], "cancelled");

    // Cancelling again: the order has ended.
    let again = app.post_action(&token, "cancel").await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("该订单已结束"));
    // The poller closes the gateway order; then the phone cannot pay it.
    app.wait_count(
        "the QR closed at the gateway",
        "SELECT COUNT(*) FROM qrs WHERE state = 'closed'",
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(app.pay(&code_url).await, 410);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_unknown_orders() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/healthz").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    for path in [
        "/o/00000000000000000000000000000000",
        "/o/nope/status",
        "/o/../../etc/passwd",
    ] {
        let resp = app.get_anonymous(path).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
    // /metrics is not for anyone who asks (tests/app/ops.rs has who may).
    assert_eq!(app.get_anonymous("/metrics").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_qr_is_replaced_by_itself_once_the_gateway_is_back() {
    let app = spawn_app_on_manual_clock(|s| {
        s.checkout.qr_ttl_secs = 1;
        s.poller.max_backoff_secs = 1;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    app.set_faults("http500_rate=1").await;
    let token = app.create_order("5.00", "down").await;
    let s = app.status(&token).await;
    assert_eq!(s["qr_state"], "failed");
    assert!(s["qr_error"].as_str().unwrap().contains("500"), "{s}");
    let health = app.get_anonymous("/healthz").await;
    assert_eq!(
        health.status(),
        200,
        "the app stays healthy while the gateway is down"
    );

    app.set_faults("").await;
    // Retried at the QR's pace: the test moves the app's clock a second at a time.
    app.advance_until(&token, "a new QR", Duration::from_secs(1), 8, |s| {
        s["qr_state"] == "open"
    })
    .await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_speak_english_when_configured() {
    let app = spawn_app_with(|s| {
        s.shop.language = Language::En;
        s.shop.name = "Corner Café".into();
    })
    .await;
    let login = app.page(&app.anonymous(), app.url("/login")).await;
    assert!(
        login.contains("lang=\"en\"") && login.contains("Sign in") && login.contains("Corner Café")
    );
    app.login_as("cashier", "cashier").await;
    let resp = app.post_order("1.234", "").await;
    assert!(resp.text().await.unwrap().contains("at most two decimals"));
    let token = app.create_order("1.00", "").await;
    let page = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(page.contains("Waiting for payment") && page.contains("Scan with WeChat to pay"));
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    let page = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(page.contains(">Paid<"), "a paid order reads Paid");
    let print = app.get_anonymous(&format!("/o/{token}/print")).await;
    assert_eq!(print.status(), 200);

    // Error pages speak the shop's language too.
    let missing = app
        .get_anonymous("/o/00000000000000000000000000000000")
        .await;
    assert_eq!(missing.status(), 404);
    let page = missing.text().await.unwrap();
    assert!(
        page.contains("lang=\"en\"") && page.contains("No such page or order."),
        "{page}"
    );
    let again = app.post_action(&token, "cancel").await;
    assert_eq!(again.status(), 409);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This order has already ended.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_images_have_an_etag_per_qr_and_a_size() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.00", "").await;
    let url = app.url(&format!("/o/{token}/qr.png"));
    let resp = app.anonymous().get(&url).send().await.unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let out_trade_no = app.status(&token).await["out_trade_no"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(etag.contains(&out_trade_no), "{etag}");
    let again = app
        .anonymous()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // `?size=N` is N × N pixels, clamped to 128..=1024.
    for (asked, side) in [("600", 600), ("333", 333), ("5", 128), ("99999", 1024)] {
        let png = app
            .anonymous()
            .get(format!("{url}?size={asked}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (side, side),
            "size {asked} → {}×{}",
            img.width(),
            img.height()
        );
        assert_eq!(decode_qr(&png), app.scan_qr(&token).await);
    }
}

#[test]
fn the_user_commands_add_list_and_change_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| run_cli(dir.path(), args, &[], stdin);
    let add = run(
        &["user", "add", "li", "--role", "cashier"],
        "a long password\n",
    );
    assert!(
        add.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&add.stderr)
    );
    let list = run(&["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout), "li\tcashier\n");
    let dup = run(
        &["user", "add", "li", "--role", "admin"],
        "another password\n",
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let short = run(&["user", "passwd", "li"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    assert!(
        run(&["user", "passwd", "li"], "a new long password\n")
            .status
            .success()
    );
    let none = run(&["user", "passwd", "nobody"], "a new long password\n");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no user named"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_is_logged_once_with_its_id_status_and_no_query() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.00", "").await;
    let resp = app
        .get_anonymous(&format!("/o/{token}?next=secret-in-the-query"))
        .await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let log = logs();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    let served: Vec<&&str> = lines.iter().filter(|l| l.contains(" served ")).collect();
    assert_eq!(served.len(), 1, "logged once: {lines:?}");
    assert!(
        served[0].contains("method=GET")
            // Issue 19: the order's token is its key, logged as `…`.
            && served[0].contains("path=/o/…")
            && !served[0].contains(&token)
            && served[0].contains("status=200")
            && served[0].contains("latency_ms="),
        "{}",
        served[0]
    );
    assert!(!log.contains("secret-in-the-query"), "no query string");

    // What a request logs is tagged with its id.
    app.scan_and_pay(&token).await;
    let status = app
        .wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    assert_eq!(status["state"], "paid");
    // Order numbers repeat across the tests' apps (each counts from 1 today);
    // the gateway's transaction id is this payment's alone.
    let transaction_id: String = app
        .db()
        .query_row("SELECT transaction_id FROM payments", [], |r| r.get(0))
        .unwrap();
    let after = logs();
    let applied = after
        .lines()
        .find(|l| l.contains("payment applied") && l.contains(&transaction_id));
    assert!(
        applied.is_some_and(|l| l.contains("request{id=") && l.contains("path=/wxpay/notify")),
        "{applied:?}"
    );
}

/// The customer's order number is the shop day and the order's place in it:
/// it says nothing of how many orders the shop took before that day.
#[tokio::test(flavor = "multi_thread")]
async fn order_numbers_are_counted_per_shop_day() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .strftime("%Y%m%d")
        .to_string();
    for n in 1..=3 {
        let token = app.create_order("1.00", "").await;
        let no = app.status(&token).await["order_no"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(no, format!("{today}{n:04}"));
    }
}

/// A simulator pays without money: it does not listen where other machines
/// reach it unless `sim.allow_network` says so.
#[tokio::test(flavor = "multi_thread")]
async fn simulator_mode_stays_on_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = scanpay::config::Settings {
        data_dir: dir.path().to_path_buf(),
        listen: "0.0.0.0:0".into(),
        ..Default::default()
    };
    let err = match scanpay::app::Application::build(settings.clone()).await {
        Ok(_) => panic!("simulator mode started on 0.0.0.0"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("sim.allow_network"), "{err}");
    settings.sim.allow_network = true;
    assert!(scanpay::app::Application::build(settings).await.is_ok());
}

/// The simulator's state-changing posts come from its own pages only: a page
/// elsewhere cannot make a visitor's browser pay an order.
#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_refuses_cross_site_posts() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.00", "").await;
    let code_url = app.scan_qr(&token).await;
    let post = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = app
            .anonymous()
            .post(app.url("/sim/pay"))
            .form(&[("code_url", code_url.as_str())]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let evil = post(&[("origin", "http://evil.example")]).await.unwrap();
    assert_eq!(evil.status(), 403);
    let fetch = post(&[("sec-fetch-site", "cross-site")]).await.unwrap();
    assert_eq!(fetch.status(), 403);
    let faults = app
        .anonymous()
        .post(app.url("/sim/faults"))
        .header("origin", "http://evil.example")
        .body("drop_notify=1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 403);
    assert_eq!(
        app.status(&token).await["state"],
        "open",
        "nothing was paid"
    );

    let own = post(&[("sec-fetch-site", "same-origin")]).await.unwrap();
    assert_eq!(own.status(), 200, "the simulator's own page still pays");
    app.wait_for_state(&token, "paid", std::time::Duration::from_secs(5))
        .await;
}

/// A burst of 200 concurrent guesses from one address is counted before any
/// password is checked: at most the limit is evaluated, and a staff member at
/// another address signs in meanwhile without waiting behind the burst.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_guesses_is_refused_before_it_is_evaluated() {
    let app = spawn_app().await;
    let attacker = http_from(std::net::IpAddr::from([127, 0, 0, 2]));
    let guesses = (0..200).map(|i| {
        attacker
            .post(app.url("/login"))
            .form(&[
                ("username", "admin"),
                ("password", format!("guess{i}").as_str()),
            ])
            .send()
    });
    let staff = async {
        let cashier = http_from(std::net::IpAddr::from([127, 0, 0, 3]));
        let started = std::time::Instant::now();
        let resp = cashier
            .post(app.url("/login"))
            .form(&[("username", "cashier"), ("password", "cashier")])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), started.elapsed())
    };
    let (answers, (staff_status, staff_wait)) =
        tokio::join!(futures_util::future::join_all(guesses), staff);
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    assert!(evaluated <= 10, "{evaluated} guesses were evaluated");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        200 - evaluated,
        "the rest refused at once"
    );
    assert_eq!(staff_status, 303, "the cashier signs in");
    eprintln!("burst: {evaluated} of 200 evaluated; the staff login took {staff_wait:?}");
    assert!(
        staff_wait < std::time::Duration::from_secs(3),
        "{staff_wait:?}"
    );
}
