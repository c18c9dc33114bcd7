//! Issue 11, the books: `scanpay reconcile --date` downloads the day's bill
//! from the gateway (here the simulator of the running server) and holds it
//! against the payments scanpay recorded, exit 0 / 3 / 1 as SPEC §9 says.

use std::time::Duration;

use crate::helpers::*;

/// Today in Beijing: the simulator's bill serves the current day.
pub(crate) fn beijing_today() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .to_string()
}

fn listen_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// `scanpay reconcile --date DAY` against the running app: (exit code, stdout).
pub(crate) async fn reconcile(app: &TestApp, api: Api, day: &str) -> (i32, String) {
    let (dir, listen, day) = (
        app.data_dir.path().to_path_buf(),
        listen_of(app),
        day.to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        run_cli(
            &dir,
            &["reconcile", "--date", &day, "--listen", &listen],
            api.cli_env(),
            "",
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

async fn paid_orders(app: &TestApp, amounts: &[&str]) -> Vec<String> {
    let mut tokens = Vec::new();
    for a in amounts {
        let token = app.create_order(a, "").await;
        app.scan_and_pay(&token).await;
        app.wait_for_state(&token, "paid", Duration::from_secs(10))
            .await;
        tokens.push(token);
    }
    tokens
}

both!(a_day_that_matches_and_one_the_bill_disagrees_with);

async fn a_day_that_matches_and_one_the_bill_disagrees_with(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    paid_orders(&app, &["12.50", "3.00", "100.01"]).await;
    let today = beijing_today();

    let (code, line) = reconcile(&app, api, &today).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("matched"), "{line}");
    assert!(line.contains("3 payments 115.51 yuan"), "{line}");
    // 0.6 % of 115.51 is 0.69306: 69 fen of fees.
    assert!(line.contains("fees 0.69 yuan, net 114.82 yuan"), "{line}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM bills WHERE day = '{today}' AND state = 'matched'"
        )),
        1
    );

    // The bill is kept as it came (gzip), and reads back as the same bill.
    let kept: Vec<u8> = app
        .db()
        .query_row("SELECT raw_gzip FROM bills WHERE day = ?1", [&today], |r| {
            r.get(0)
        })
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&kept[..]), &mut text).unwrap();
    assert_eq!(
        scanpay::wxpay::bill::parse(&text).unwrap().rows.len(),
        3,
        "{text}"
    );

    // The gateway's bill leaves one out, changes one and adds one nobody made.
    app.set_faults("bill_omit=1,bill_alter=1,bill_extra=1")
        .await;
    let (code, line) = reconcile(&app, api, &today).await;
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("3 difference(s)"), "{line}");
    for kind in ["missing_in_bill", "amount_differs", "missing_here"] {
        assert!(line.contains(&format!("1 {kind}")), "{line}");
    }
    // The owner is told of each difference once (the webhook outbox), however
    // often the day is checked.
    let told = "SELECT COUNT(*) FROM outbox WHERE event = 'reconciliation_difference'";
    assert_eq!(app.count(told), 3);
    assert_eq!(reconcile(&app, api, &today).await.0, 3);
    assert_eq!(app.count(told), 3);
    // The last run of a day stands, with its differences kept for the admin.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM bill_differences WHERE day = '{today}'"
        )),
        3
    );
    let not_ours = app.count(&format!(
        "SELECT COUNT(*) FROM bill_differences WHERE day = '{today}' AND kind = 'missing_here' AND order_id IS NULL"
    ));
    assert_eq!(not_ours, 1, "money that is not ours is flagged, not booked");
    // The admin sees the day, its differences with links, and a CSV of them.
    assert_eq!(
        app.http
            .get(app.url("/admin/reconciliation"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "a cashier does not"
    );
    app.login_as("admin", "admin").await;
    let list = app.page(&app.http, app.url("/admin/reconciliation")).await;
    assert!(
        list.contains(&format!("/admin/reconciliation/{today}")),
        "{list}"
    );
    assert!(list.contains("有差异"), "{list}");
    let day_url = app.url(&format!("/admin/reconciliation/{today}"));
    let headers = app.http.get(&day_url).send().await.unwrap();
    assert_eq!(
        headers.headers()["cache-control"],
        "no-store",
        "the books are private"
    );
    assert!(headers.headers().contains_key("content-security-policy"));
    let page = app
        .page(
            &app.http,
            app.url(&format!("/admin/reconciliation/{today}")),
        )
        .await;
    for kind in ["missing_in_bill", "amount_differs", "missing_here"] {
        assert!(page.contains(&format!("difference {kind}")), "{page}");
    }
    assert_eq!(
        page.matches("href=\"/admin/orders/").count(),
        2,
        "ours link to the order: {page}"
    );
    let csv = app
        .page(
            &app.http,
            app.url(&format!("/admin/reconciliation/{today}.csv")),
        )
        .await;
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and three differences: {csv}"
    );
    assert!(csv.contains(",missing_here,,NOT-OURS-"), "{csv}");
    let unknown = app
        .http
        .get(app.url("/admin/reconciliation/2020-02-30"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    app.set_faults("").await;
    assert_eq!(reconcile(&app, api, &today).await.0, 0, "and matches again");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM bill_differences WHERE day = '{today}'"
        )),
        0
    );
}

both!(a_payment_only_the_bill_knows_of_is_recorded_on_its_order);

async fn a_payment_only_the_bill_knows_of_is_recorded_on_its_order(api: Api) {
    // No poller runs on a manual clock unless moved, and the notification is
    // dropped: the payment reaches scanpay only through the bill.
    let app = spawn_app_on_manual_clock(|s| {
        s.wxpay.api = api;
        s.sim.faults = "drop_notify=1.0".into();
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("8.88", "").await;
    app.scan_and_pay(&token).await;
    assert_eq!(app.status(&token).await["state"], "open");

    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("1 missing_here") && line.contains("recorded now"),
        "{line}"
    );
    let s = app.status(&token).await;
    assert_eq!(s["state"], "paid", "{s}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payments WHERE source = 'bill'"),
        1
    );
    // Checked again, the day now matches: the payment is in our books.
    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 0, "{line}");
}

both!(a_day_without_trades_and_a_gateway_that_cannot_be_reached);

async fn a_day_without_trades_and_a_gateway_that_cannot_be_reached(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    let (code, line) = reconcile(&app, api, "2026-01-02").await;
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("no bill"), "{line}");

    let tomorrow = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .tomorrow()
        .unwrap()
        .to_string();
    let (code, line) = reconcile(&app, api, &tomorrow).await;
    assert_eq!(code, 1, "{line}");
    // Each protocol says "not yet" its own way.
    let not_yet = api.bill_not_ready();
    assert!(
        line.contains("not checked") && line.contains(not_yet),
        "{line}"
    );

    // Nothing listens at this address: the day stays pending, exit 1.
    let dir = app.data_dir.path().to_path_buf();
    let closed = format!("127.0.0.1:{}", free_port());
    let out = tokio::task::spawn_blocking(move || {
        run_cli(
            &dir,
            &["reconcile", "--date", "2026-01-03", "--listen", &closed],
            api.cli_env(),
            "",
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not reach"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM bills WHERE day = '2026-01-03' AND state = 'pending'"),
        1
    );
}

both!(the_poller_reconciles_yesterday_once_the_bill_is_due);

async fn the_poller_reconciles_yesterday_once_the_bill_is_due(api: Api) {
    let app = spawn_app_on_manual_clock(|s| {
        s.wxpay.api = api;
        s.bill.fetch_at = "00:00".into();
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("6.60", "").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    let today = beijing_today();
    // Today's bill is not due today: nothing is fetched yet.
    app.advance(Duration::from_secs(60)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM bills"), 0);
    // A day later (on the app's clock) today is "yesterday": its bill is
    // fetched and reconciled, once.
    app.advance(Duration::from_secs(24 * 3600)).await;
    app.wait_count(
        "yesterday reconciled",
        &format!("SELECT COUNT(*) FROM bills WHERE day = '{today}' AND state = 'matched' AND gross_fen = 660"),
        1,
        Duration::from_secs(10),
    )
    .await;
    app.advance(Duration::from_secs(120)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM bills"),
        1,
        "not again, and no day before the first order"
    );
}

both!(refunds_are_reconciled_and_the_owner_told_of_them);

async fn refunds_are_reconciled_and_the_owner_told_of_them(api: Api) {
    use crate::refunds::{admin_app_on, paid_order, refund, wait_refund};
    let app = admin_app_on(api).await;
    let (order_no, _) = paid_order(&app, "20.00").await;
    let no = refund(&app, &order_no, "5.00", "one cup short").await;
    wait_refund(&app, &no, "succeeded").await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE event = 'refund' AND event_id = 'refund-{no}'"
        )),
        1,
        "written with the refund's success"
    );
    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 0, "{line}");
    // 20.00 paid, 5.00 back; the 0.6 % fee is charged on the 20 and returned on the 5.
    assert!(
        line.contains("1 payments 20.00 yuan, refunds 5.00 yuan, fees 0.09 yuan, net 14.91 yuan"),
        "{line}"
    );
    // A refund the books have and the bill lacks is a difference of its own
    // (the books are changed behind the app's back to make them disagree).
    let books =
        rusqlite::Connection::open(app.data_dir.path().join(scanpay::store::DB_FILE)).unwrap();
    books.busy_timeout(Duration::from_secs(10)).unwrap();
    books
        .execute(
            "UPDATE refunds SET out_refund_no = 'R-NOT-IN-BILL' WHERE out_refund_no = ?1",
            [&no],
        )
        .unwrap();
    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("1 refund_missing_here") && line.contains("1 refund_missing_in_bill"),
        "{line}"
    );
}

both!(a_refund_learned_of_after_midnight_is_on_the_gateways_day);

/// The bill lists a refund on the day the gateway paid it back. When the app
/// learns of it only a day later (no notification, the poller's query late),
/// it is still that day's refund, not a difference on both days.
async fn a_refund_learned_of_after_midnight_is_on_the_gateways_day(api: Api) {
    let app = spawn_app_on_manual_clock(move |s| s.wxpay.api = api).await;
    app.login_as("admin", "admin").await;
    let token = app.create_order("3.00", "").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    // The gateway refunds at once but tells no one: the app must ask.
    app.set_faults("drop_notify=1,refund_delay_ms=0").await;
    let no = crate::refunds::refund(&app, &order_no, "1.00", "late news").await;
    // The app's clock is a day on when its query finds the refund done.
    app.advance(Duration::from_secs(24 * 3600)).await;
    app.advance_until_count(
        "the refund found succeeded",
        &format!(
            "SELECT COUNT(*) FROM refunds WHERE out_refund_no = '{no}' AND state = 'succeeded'"
        ),
        1,
        Duration::from_secs(60),
        60,
    )
    .await;
    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("refunds 1.00 yuan"), "{line}");
}

both!(a_day_with_a_double_payment_and_a_refund_reconciles_exactly);

/// A double payment is two payments in the bill and in the books; a refund of
/// one of them is a third line; each bill fault then shows as exactly one
/// difference of its kind.
async fn a_day_with_a_double_payment_and_a_refund_reconciles_exactly(api: Api) {
    // The gateway refuses to close young orders, so the superseded QR stays payable.
    let app = spawn_app_on_manual_clock(move |s| {
        s.wxpay.api = api;
        s.sim.min_close_age_secs = 300;
    })
    .await;
    app.login_as("admin", "admin").await;
    let token = app.create_order("2.50", "twice").await;
    let old_url = app.scan_qr(&token).await;
    app.advance(Duration::from_secs(300)).await;
    let new_url = app.scan_qr(&token).await;
    assert_eq!(app.pay(&old_url).await, 200);
    assert_eq!(app.pay(&new_url).await, 200);
    app.wait_for(&token, "double_paid", Duration::from_secs(10), |s| {
        s["double_paid"] == true
    })
    .await;
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let no = crate::refunds::refund(&app, &order_no, "2.50", "paid twice").await;
    crate::refunds::wait_refund(&app, &no, "succeeded").await;

    let today = beijing_today();
    let (code, line) = reconcile(&app, api, &today).await;
    assert_eq!(code, 0, "{line}");
    assert!(
        line.contains("2 payments 5.00 yuan, refunds 2.50 yuan"),
        "{line}"
    );

    for (fault, kind) in [
        ("bill_omit=1", "missing_in_bill"),
        ("bill_alter=1", "amount_differs"),
        ("bill_extra=1", "missing_here"),
    ] {
        app.set_faults(fault).await;
        let (code, line) = reconcile(&app, api, &today).await;
        assert_eq!(code, 3, "{fault}: {line}");
        assert!(
            line.contains(&format!("1 difference(s): 1 {kind}")),
            "{fault}: {line}"
        );
    }
    app.set_faults("").await;
    assert_eq!(
        reconcile(&app, api, &today).await.0,
        0,
        "idempotent: matched again"
    );
}
