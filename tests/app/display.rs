//! The counter (SPEC §10): the customer display paired to one cashier, and
//! the cashier's day on the checkout page.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// The event stream of the display paired as `token`, opened as the display
/// itself opens it: without any session.
async fn display_events(app: &TestApp, token: &str) -> Events {
    Events::open(
        &app.anonymous(),
        app.url(&format!("/display/{token}/events")),
    )
    .await
}

/// As `display_events`, past its first event, which says the display is idle.
async fn idle_display(app: &TestApp, token: &str) -> Events {
    let mut events = display_events(app, token).await;
    assert_eq!(
        events.next(Duration::from_secs(5)).await.unwrap()["mode"],
        "idle"
    );
    events
}

/// Pairs a display for `client`'s signed-in cashier; returns its token.
async fn pair(app: &TestApp, client: &reqwest::Client) -> String {
    let resp = post_csrf_at(client, &app.base, "/display").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("data:image/png;base64,"), "and its QR");
    display_token_in(&html)
}

/// A second cashier, signed in on a browser of their own.
async fn second_cashier(app: &TestApp) -> reqwest::Client {
    let out = run_cli(
        app.data_dir.path(),
        &["user", "add", "li", "--role", "cashier"],
        &[],
        "a long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let li = http();
    let resp = li
        .post(app.url("/login"))
        .form(&[("username", "li"), ("password", "a long password")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    li
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paired_display_shows_its_cashiers_order_then_paid_then_idle() {
    // On the manual clock: the paid screen's seconds pass when the test says.
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = pair(&app, &app.http).await;

    // Idle: the shop's name, a refresh for browsers without JS, nothing cached.
    let resp = app.get_anonymous(&format!("/display/{token}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("data-mode=\"idle\""), "{html}");
    assert!(html.contains("Demo Shop"));
    assert!(html.contains("http-equiv=\"refresh\""));

    let mut events = idle_display(&app, &token).await;

    // The link is the display's key: the request log names the route, not the token.
    let log = logs();
    assert!(log.contains("/display/…/events"), "the requests are logged");
    assert!(!log.contains(&token), "but not the token");

    let created = Instant::now();
    let order = app.create_order("8.00", "奶茶").await;
    let shown = events.until("mode", "open", Duration::from_secs(5)).await;
    eprintln!(
        "display: order created → QR on the display in {:?}",
        created.elapsed()
    );
    assert_eq!(shown["amount"], "¥8.00");
    assert_eq!(shown["description"], "奶茶");
    assert!(shown["seconds_left"].as_i64().unwrap() > 250);
    // The display's QR is the order's, and decodes to what the customer pays.
    let qr = shown["qr"].as_str().unwrap();
    assert!(qr.starts_with(&format!("/o/{order}/qr.png")), "{qr}");
    let png = app.get_anonymous(qr).await.bytes().await.unwrap();
    let code_url = decode_qr(&png);
    assert_eq!(code_url, app.scan_qr(&order).await);
    // Without JS the page shows the same.
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{token}")))
        .await;
    assert!(html.contains("data-mode=\"open\"") && html.contains("¥8.00"));

    let paying = Instant::now();
    assert_eq!(app.pay(&code_url).await, 200);
    let paid = events.until("mode", "paid", Duration::from_secs(5)).await;
    eprintln!(
        "display: payment → 支付成功 on the display in {:?}",
        paying.elapsed()
    );
    assert_eq!(paid["amount"], "¥8.00");
    assert_eq!(paid["announce"]["text"], "微信收款 八元");
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{token}")))
        .await;
    assert!(html.contains("支付成功") && html.contains("data-mode=\"paid\""));
    // A few seconds later, idle again by itself.
    app.advance(scanpay::checkout::counter::DISPLAY_OUTCOME_FOR)
        .await;
    events.until("mode", "idle", Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_cashiers_order_never_appears_on_the_display() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = pair(&app, &app.http).await;
    let li = second_cashier(&app).await;
    let li_token = pair(&app, &li).await;
    assert_ne!(token, li_token);

    let mut mine = idle_display(&app, &token).await;
    let mut theirs = idle_display(&app, &li_token).await;

    // li charges: li's display shows it, ours stays idle and hears nothing.
    let page = app.page(&li, app.url("/")).await;
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let resp = li
        .post(app.url("/orders"))
        .form(&[
            ("amount", "66.00"),
            ("description", "li's"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let shown = theirs.until("mode", "open", Duration::from_secs(5)).await;
    assert_eq!(shown["amount"], "¥66.00");
    assert!(
        mine.next(Duration::from_millis(1500)).await.is_none(),
        "nothing for our display"
    );
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{token}")))
        .await;
    assert!(html.contains("data-mode=\"idle\"") && !html.contains("66.00"));
    // An admin's order is not ours either.
    let admin = app.signed_in("admin", "admin").await;
    let page = app.page(&admin, app.url("/")).await;
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    admin
        .post(app.url("/orders"))
        .form(&[
            ("amount", "77.00"),
            ("description", ""),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(mine.next(Duration::from_millis(1000)).await.is_none());
    // The display page carries nothing of the staff pages.
    assert!(!html.contains("/admin") && !html.contains("csrf_token") && !html.contains("/logout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_or_replaced_display_shows_disconnected_at_once() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let first = pair(&app, &app.http).await;
    let mut events = idle_display(&app, &first).await;

    // A new pairing replaces the old one: one active display per cashier.
    let second = pair(&app, &app.http).await;
    let at = Instant::now();
    events
        .until("mode", "disconnected", Duration::from_secs(2))
        .await;
    eprintln!(
        "display: re-paired → old display disconnected in {:?}",
        at.elapsed()
    );
    assert!(
        events.next(Duration::from_millis(500)).await.is_none(),
        "and its stream ends"
    );
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{first}")))
        .await;
    assert!(html.contains("data-mode=\"disconnected\""));
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a disconnected display stops refreshing"
    );

    let page = app.page(&app.http, app.url("/display")).await;
    assert!(page.contains("id=\"paired\""));
    let mut events = idle_display(&app, &second).await;
    let resp = post_csrf_at(&app.http, &app.base, "/display/revoke").await;
    assert_is_redirect_to(&resp, "/display");
    events
        .until("mode", "disconnected", Duration::from_secs(2))
        .await;
    let page = app.page(&app.http, app.url("/display")).await;
    assert!(page.contains("id=\"not-paired\""));
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{second}")))
        .await;
    assert!(html.contains("data-mode=\"disconnected\""));

    // Tokens never issued, and junk, are not found; pairing needs a session and CSRF.
    for path in [
        format!("/display/{}", "0".repeat(32)),
        "/display/not-a-token".to_string(),
        format!("/display/{}/events", "a".repeat(32)),
    ] {
        assert_eq!(app.get_anonymous(&path).await.status(), 404, "{path}");
    }
    let resp = app.get_anonymous("/display").await;
    assert_eq!(resp.status(), 303);
    let resp = app
        .http
        .post(app.url("/display"))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The database keeps only the token's hash.
    let stored: i64 = app.count(&format!(
        "SELECT COUNT(*) FROM displays WHERE token_hash LIKE '%{second}%'"
    ));
    assert_eq!(stored, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM displays"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_display_that_reconnects_shows_the_state_it_missed() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = pair(&app, &app.http).await;
    let events = idle_display(&app, &token).await;
    // The network drops; meanwhile an order is created.
    drop(events);
    let order = app.create_order("12.50", "").await;
    app.wait_for_state(&order, "open", Duration::from_secs(5))
        .await;
    let mut events = display_events(&app, &token).await;
    let first = events.next(Duration::from_secs(5)).await.unwrap();
    assert!(
        first["mode"] == "open" || first["mode"] == "preparing",
        "{first}"
    );
    assert_eq!(first["amount"], "¥12.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_page_lists_the_cashiers_day_live() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let page = app.page(&app.http, app.url("/")).await;
    assert!(page.contains("id=\"day-none\""));
    assert!(page.contains("<span id=\"day-created\">0</span>"));

    let first = app.create_order("3.00", "茶").await;
    let second = app.create_order("12.50", "咖啡").await;
    // Another cashier's order is not on this page.
    let li = second_cashier(&app).await;
    let p = app.page(&li, app.url("/")).await;
    let csrf = hidden_value(&p, "csrf_token").unwrap();
    li.post(app.url("/orders"))
        .form(&[
            ("amount", "99.00"),
            ("description", "li"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();

    let mut events = Events::open(&app.http, app.url("/counter/events")).await;
    let day = events.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(day["created"], 2);
    assert_eq!(day["total"], "¥0.00");
    let orders = day["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["link"], format!("/o/{second}"), "newest first");
    assert_eq!(orders[1]["link"], format!("/o/{first}"));
    assert_eq!(orders[0]["amount"], "¥12.50");
    assert_eq!(orders[0]["state"], "open");

    // The customer pays the ¥12.50: the list says so at once, with what to announce.
    app.scan_and_pay(&second).await;
    let day = events
        .until("total", "¥12.50", Duration::from_secs(5))
        .await;
    assert_eq!(day["paid"], 1);
    assert_eq!(day["orders"][0]["state"], "paid");
    assert_eq!(day["orders"][0]["state_label"], "已支付");
    assert_eq!(day["orders"][0]["announce"], "微信收款 十二元五角");
    assert!(day["orders"][1]["announce"].is_null());

    // The page without JS says the same.
    let page = app.page(&app.http, app.url("/")).await;
    assert!(page.contains("<span id=\"day-created\">2</span>"));
    assert!(page.contains("<strong id=\"day-total\">¥12.50</strong>"));
    let (a, b) = (page.find(&second).unwrap(), page.find(&first).unwrap());
    assert!(a < b, "newest first");
    assert!(!page.contains("99.00"), "only this cashier's orders");
    assert!(page.contains("data-announce=\"微信收款 十二元五角\""));

    // Cancelling the other order shows too.
    let resp = app.post_action(&first, "cancel").await;
    assert_eq!(resp.status(), 303);
    loop {
        let day = events
            .next(Duration::from_secs(5))
            .await
            .expect("the cancel is pushed");
        if day["orders"][1]["state"] == "cancelled" {
            assert_eq!(day["orders"][1]["state_label"], "已取消");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_display_swaps_a_refreshed_qr_in_place_and_shows_an_expiry() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = pair(&app, &app.http).await;
    let mut events = idle_display(&app, &token).await;
    let order = app.create_order("6.60", "").await;
    let first = events.until("mode", "open", Duration::from_secs(5)).await;
    assert_eq!(first["qr_version"], 1);
    let old_qr = first["qr"].as_str().unwrap().to_string();

    // Five minutes later the order has a new QR: the display gets its image.
    app.advance(Duration::from_secs(300)).await;
    let second = loop {
        let ev = events
            .next(Duration::from_secs(5))
            .await
            .expect("the new QR is pushed");
        if ev["qr_version"] == 2 {
            break ev;
        }
    };
    assert_eq!(second["mode"], "open");
    let new_qr = second["qr"].as_str().unwrap();
    assert_ne!(new_qr, old_qr);
    let png = app.get_anonymous(new_qr).await.bytes().await.unwrap();
    assert_eq!(decode_qr(&png), app.scan_qr(&order).await);

    // Unpaid for thirty minutes: expired, said on the display.
    app.advance(Duration::from_secs(1500)).await;
    let ended = events
        .until("mode", "expired", Duration::from_secs(5))
        .await;
    assert_eq!(ended["amount"], "¥6.60");
    assert!(ended["qr"].is_null() && ended["announce"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_english_shop_announces_in_english() {
    let app = spawn_app_with(|s| s.shop.language = scanpay::config::Language::En).await;
    app.login_as("cashier", "cashier").await;
    let token = pair(&app, &app.http).await;
    let mut events = display_events(&app, &token).await;
    let order = app.create_order("10.05", "").await;
    events.until("mode", "open", Duration::from_secs(5)).await;
    app.scan_and_pay(&order).await;
    let paid = events.until("mode", "paid", Duration::from_secs(5)).await;
    assert_eq!(
        paid["announce"]["text"],
        "WeChat Pay received ten yuan and five fen"
    );
    let html = app
        .page(&app.anonymous(), app.url(&format!("/display/{token}")))
        .await;
    assert!(html.contains("Payment received") && html.contains("lang=\"en\""));
    let day = app.page(&app.http, app.url("/")).await;
    assert!(day.contains("data-announce=\"WeChat Pay received ten yuan and five fen\""));
}

/// Issue 19 item 6: disabling a cashier (`scanpay user disable`, even from
/// another process) ends their display with their sessions; an admin can
/// revoke any display, a cashier cannot.
#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_cashiers_display_goes_dark_and_an_admin_can_revoke_any_display() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let first = pair(&app, &app.http).await;
    app.create_order("6.60", "").await;
    let shows = |token: String| {
        let app = &app;
        async move {
            app.page(&app.anonymous(), app.url(&format!("/display/{token}")))
                .await
        }
    };
    assert!(shows(first.clone()).await.contains("data-mode=\"open\""));

    let out = run_cli(
        app.data_dir.path(),
        &["user", "disable", "cashier"],
        &[],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shows(first.clone())
            .await
            .contains("data-mode=\"disconnected\""),
        "a disabled cashier's display shows nothing of theirs"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM displays WHERE revoked_at IS NULL"),
        0,
        "and it is revoked"
    );
    let out = run_cli(app.data_dir.path(), &["user", "enable", "cashier"], &[], "");
    assert!(out.status.success());
    assert!(
        shows(first).await.contains("data-mode=\"disconnected\""),
        "enabling again does not bring the old display back"
    );

    // Paired again; the admin sees it and ends it, live.
    app.login_as("cashier", "cashier").await;
    let second = pair(&app, &app.http).await;
    // The 6.60 order is still open: the new display shows it.
    let mut events = display_events(&app, &second).await;
    let id: i64 = app
        .db()
        .query_row(
            "SELECT id FROM displays WHERE revoked_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let refused = post_csrf_at(
        &app.http,
        &app.base,
        &format!("/admin/displays/{id}/revoke"),
    )
    .await;
    assert_eq!(refused.status(), 403, "a cashier cannot");
    let admin = app.signed_in("admin", "admin").await;
    let list = app.page(&admin, app.url("/admin/displays")).await;
    assert!(list.contains(&format!("id=\"display-{id}\"")), "{list}");
    assert!(list.contains("cashier"));
    assert!(!list.contains(&second), "the token is not shown");
    let resp = post_csrf_at(&admin, &app.base, &format!("/admin/displays/{id}/revoke")).await;
    assert_is_redirect_to(&resp, "/admin/displays");
    events
        .until("mode", "disconnected", Duration::from_secs(2))
        .await;
    assert!(shows(second).await.contains("data-mode=\"disconnected\""));
    for hostile in ["0", "-1", "99999999999999999999", "x"] {
        let resp = post_csrf_at(
            &admin,
            &app.base,
            &format!("/admin/displays/{hostile}/revoke"),
        )
        .await;
        assert!(
            resp.status() == 303 || resp.status().is_client_error(),
            "{hostile}: {}",
            resp.status()
        );
    }
}
