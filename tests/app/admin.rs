//! The admin area over HTTP: who may see it, filters and totals, the CSV
//! bytes, and one order's detail.

use std::time::Duration;

use scanpay::config::Settings;

use crate::helpers::*;

const PAID_WITHIN: Duration = Duration::from_secs(15);

/// The poller stays out of the way, so every payment arrives by notification
/// and its log line reads "applied".
fn notify_only(s: &mut Settings) {
    s.poller.fast_interval_ms = 60_000;
    s.poller.slow_interval_ms = 60_000;
}

const ADMIN_ROUTES: [&str; 3] = [
    "/admin",
    "/admin/orders.csv?from=2024-01-01",
    "/admin/orders/20240101000001",
];

async fn get(client: &reqwest::Client, url: String) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// The page's `id="…">value<` text.
fn by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_string()
}

/// Shown count and sum of the filtered paid orders.
fn selected(html: &str) -> (String, String) {
    (by_id(html, "filter-count"), by_id(html, "filter-sum"))
}

/// `order_no` of an order, from its status JSON.
async fn order_no(app: &TestApp, token: &str) -> String {
    app.status(token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn pay_order(app: &TestApp, token: &str) {
    let code_url = app.scan_qr(token).await;
    assert_eq!(app.pay(&code_url).await, 200);
    app.wait_for_state(token, "paid", PAID_WITHIN).await;
}

/// The customer scans `token`'s QR and the gateway tells of its payment now,
/// as transaction `42…0n`: an id no order number can be found in (it holds no
/// date), where the simulator's random ids hold today's date and could hold
/// an order number, which the search would find.
async fn paid_as_transaction(app: &TestApp, token: &str, n: u32) {
    app.scan_qr(token).await;
    let s = app.status(token).await;
    let now = jiff::Timestamp::now().in_tz("Asia/Shanghai").unwrap();
    let body = signed_notification_paid_at(
        &demo_merchant(scanpay::wxpay::v2::SignType::Md5),
        s["out_trade_no"].as_str().unwrap(),
        s["amount_fen"].as_i64().unwrap(),
        &format!("42{n:026}"),
        &now.strftime("%Y%m%d%H%M%S").to_string(),
    );
    let (status, answer) = app.notify(body).await;
    assert_eq!(status, 200, "{answer}");
    app.wait_for_state(token, "paid", PAID_WITHIN).await;
}

fn shop_today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .in_tz("Asia/Shanghai")
        .unwrap()
        .date()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_pages_need_an_admin() {
    let app = spawn_app().await;

    let anonymous = app.anonymous();
    let expected = [
        "/login?next=/admin",
        "/login?next=/admin/orders.csv%3Ffrom%3D2024-01-01",
        "/login?next=/admin/orders/20240101000001",
    ];
    for (route, location) in ADMIN_ROUTES.iter().zip(expected) {
        assert_is_redirect_to(&get(&anonymous, app.url(route)).await, location);
    }

    // Even a query the page would refuse: the login comes first.
    let resp = get(&anonymous, app.url("/admin?from=x&from=y")).await;
    assert_eq!(resp.status(), 303);

    app.login_as("cashier", "cashier").await;
    for route in ADMIN_ROUTES {
        let resp = get(&app.http, app.url(route)).await;
        assert_eq!(resp.status(), 403, "cashier {route}");
    }

    app.login_as("admin", "admin").await;
    let resp = get(&app.http, app.url("/admin")).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("href=\"/\""), "a way back to the checkout");
    assert_eq!(selected(&page), ("0".into(), "¥0.00".into()));
    let resp = get(&app.http, app.url("/admin/orders/20240101000001")).await;
    assert_eq!(resp.status(), 404, "unknown order");
    // Not an order number at all (not YYYYMMDD + a place): no such order either.
    for not_a_number in ["nope", "20241301000001", "2024010100", "20240101000001x"] {
        let resp = get(&app.http, app.url(&format!("/admin/orders/{not_a_number}"))).await;
        assert_eq!(resp.status(), 404, "{not_a_number}");
    }
    for bad in [
        "/admin?from=2024-02-30",
        "/admin/orders.csv?cashier=ann",
        "/admin?from=2024-01-01&from=2024-01-02",
        "/admin?from=1990-01-01",
    ] {
        let resp = get(&app.http, app.url(bad)).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

/// Two paid orders (latte, cake), one left open, one cancelled, made by the
/// cashier; then the admin is signed in.
struct Shop {
    app: TestApp,
    day_before: jiff::civil::Date,
    latte_no: String,
    latte_qr: String,
    latte_tx: String,
    cake_no: String,
    cake_qr: String,
    cake_tx: String,
    open_no: String,
    cancelled_no: String,
}

async fn a_day_of_sales() -> Shop {
    let app = spawn_app_with(notify_only).await;
    let day_before = shop_today();
    app.login_as("cashier", "cashier").await;
    let latte = app.create_order("12.50", "拿铁咖啡 Latte").await;
    let cake = app.create_order("0.29", "Cake, \"large\"").await;
    let open = app.create_order("3.00", "still open").await;
    let cancelled = app.create_order("4.00", "changed my mind").await;
    paid_as_transaction(&app, &latte, 1).await;
    paid_as_transaction(&app, &cake, 2).await;
    let resp = app.post_action(&cancelled, "cancel").await;
    assert_is_redirect_to(&resp, &format!("/o/{cancelled}"));
    app.wait_for_state(&cancelled, "cancelled", PAID_WITHIN)
        .await;
    let latte_status = app.status(&latte).await;
    let cake_status = app.status(&cake).await;
    let field = |s: &serde_json::Value, name: &str| s[name].as_str().unwrap().to_string();
    let transaction = |no: &str| -> String {
        app.db()
            .query_row(
                "SELECT transaction_id FROM orders WHERE order_no = ?1",
                [no],
                |r| r.get(0),
            )
            .unwrap()
    };
    let (latte_no, cake_no) = (
        field(&latte_status, "order_no"),
        field(&cake_status, "order_no"),
    );
    let (latte_tx, cake_tx) = (transaction(&latte_no), transaction(&cake_no));
    let open_no = order_no(&app, &open).await;
    let cancelled_no = order_no(&app, &cancelled).await;
    app.login_as("admin", "admin").await;
    Shop {
        latte_qr: field(&latte_status, "out_trade_no"),
        cake_qr: field(&cake_status, "out_trade_no"),
        app,
        day_before,
        latte_no,
        latte_tx,
        cake_no,
        cake_tx,
        open_no,
        cancelled_no,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_lists_exactly_the_paid_orders_with_their_totals() {
    let Shop {
        app,
        day_before,
        latte_no,
        latte_tx,
        cake_no,
        cake_tx,
        open_no,
        cancelled_no,
        ..
    } = a_day_of_sales().await;
    // The list: the paid two, counted and summed.
    let page = get(&app.http, app.url("/admin"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(selected(&page), ("2".into(), "¥12.79".into()));
    for no in [&latte_no, &cake_no] {
        assert!(
            page.contains(&format!("href=\"/admin/orders/{no}\"")),
            "{no} listed"
        );
    }
    for no in [&open_no, &cancelled_no] {
        assert!(!page.contains(no.as_str()), "{no} is not paid");
    }
    assert!(page.contains(&latte_tx) && page.contains(&cake_tx));
    assert!(page.contains("拿铁咖啡 Latte"));
    assert!(page.contains("<svg"), "the revenue chart");
    if shop_today() == day_before {
        assert_eq!(by_id(&page, "today-sum"), "¥12.79");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_filters_by_search_cashier_flags_and_dates() {
    let Shop {
        app,
        latte_no,
        latte_tx,
        cake_no,
        cake_qr,
        ..
    } = a_day_of_sales().await;
    // Filters: search by order number, out_trade_no and transaction_id; cashier; flags; dates.
    let filtered = |query: String| {
        let url = app.url(&format!("/admin?{query}"));
        let client = app.http.clone();
        async move {
            let resp = get(&client, url).await;
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let one = filtered(format!("q={latte_no}")).await;
    assert_eq!(selected(&one), ("1".into(), "¥12.50".into()));
    assert!(one.contains(&latte_no) && !one.contains(&cake_no));
    let one = filtered(format!("q={cake_qr}")).await;
    assert_eq!(selected(&one), ("1".into(), "¥0.29".into()));
    let one = filtered(format!("q={latte_tx}")).await;
    assert_eq!(selected(&one), ("1".into(), "¥12.50".into()));
    let admin_id: i64 = app
        .db()
        .query_row("SELECT id FROM users WHERE username = 'admin'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let cashier_id: i64 = app
        .db()
        .query_row("SELECT id FROM users WHERE username = 'cashier'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let none = filtered(format!("cashier={admin_id}")).await;
    assert_eq!(selected(&none).0, "0");
    let both = filtered(format!("cashier={cashier_id}")).await;
    assert_eq!(selected(&both), ("2".into(), "¥12.79".into()));
    assert_eq!(selected(&filtered("flagged=1".into()).await).0, "0");
    let old = filtered("from=2020-01-01&to=2020-01-31".into()).await;
    assert_eq!(selected(&old).0, "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_holds_the_paid_orders_oldest_first_quoted() {
    let Shop {
        app,
        latte_no,
        latte_qr,
        latte_tx,
        cake_no,
        cake_qr,
        cake_tx,
        ..
    } = a_day_of_sales().await;
    // The CSV: BOM, header, the paid rows oldest first, quoting intact.
    let resp = get(&app.http, app.url("/admin/orders.csv")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"scanpay-orders-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert_eq!(
        resp.headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked"),
        "the CSV is streamed"
    );
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.ends_with("\r\n"));
    let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    assert_eq!(
        lines[0],
        "order_no,paid_at,amount,description,cashier,out_trade_no,transaction_id,late,double_paid,refunded"
    );
    assert_eq!(lines.len(), 3, "header and the two paid orders: {text}");
    assert!(
        lines[1].starts_with(&format!("{latte_no},")),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(&format!(
            ",12.50,拿铁咖啡 Latte,cashier,{latte_qr},{latte_tx},0,0,0.00"
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with(&format!(
            ",0.29,\"Cake, \"\"large\"\"\",cashier,{cake_qr},{cake_tx},0,0,0.00"
        )),
        "{}",
        lines[2]
    );
    let paid_at = lines[1].split(',').nth(1).unwrap();
    assert!(
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", paid_at).is_ok(),
        "{paid_at}"
    );

    let resp = get(
        &app.http,
        app.url(&format!("/admin/orders.csv?q={cake_no}")),
    )
    .await;
    let text = resp.text().await.unwrap();
    assert_eq!(text.trim_end().lines().count(), 2, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_detail_shows_its_qr_and_notification_without_secrets() {
    let Shop {
        app,
        latte_no,
        latte_qr,
        latte_tx,
        cancelled_no,
        ..
    } = a_day_of_sales().await;
    // The detail page: the QR, the notification and its outcome, the flags.
    let resp = get(&app.http, app.url(&format!("/admin/orders/{latte_no}"))).await;
    assert_eq!(resp.status(), 200);
    let detail = resp.text().await.unwrap();
    assert!(detail.contains(&latte_qr), "the QR's out_trade_no");
    assert!(detail.contains(&latte_tx), "the transaction");
    // The payment's row says when the gateway took the money and when we heard
    // of it, both in the shop's time.
    let row = &detail[detail
        .find(&format!("<td class=\"mono\">{latte_tx}</td>"))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    let times = row.matches("<td class=\"nowrap\">20").count();
    assert_eq!(times, 2, "the gateway's time and ours: {row}");
    assert!(
        detail.contains("<strong class=\"outcome\">applied</strong>"),
        "the notification's outcome"
    );
    assert!(detail.contains("<details>"), "the notification body");
    assert!(
        detail.contains("[REDACTED]") && !detail.contains(DEMO_API_KEY),
        "no signature, no key"
    );
    let resp = get(&app.http, app.url(&format!("/admin/orders/{cancelled_no}"))).await;
    assert_eq!(resp.status(), 200, "unpaid orders have a detail page too");
}

#[tokio::test(flavor = "multi_thread")]
async fn late_and_double_payments_stand_out() {
    // Arrange: QRs live 2 s and the gateway refuses to close young orders, so a
    // superseded QR stays payable: paying it is late, paying the new one too is double.
    // The app's clock moves when the test says, so the 2 s pass at once.
    let app = spawn_app_on_manual_clock(|s| {
        s.checkout.qr_ttl_secs = 2;
        s.sim.min_close_age_secs = 300;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("5.00", "twice").await;
    let paid_normally = app.create_order("1.00", "once").await;
    pay_order(&app, &paid_normally).await;
    let first_qr = app.scan_qr(&token).await;
    app.advance(Duration::from_secs(2)).await;
    let s = app.status(&token).await;
    assert!(
        s["qr_version"] == 2 && s["qr_state"] == "open",
        "a second QR: {s}"
    );
    let second_qr = app.scan_qr(&token).await;
    assert_eq!(app.pay(&first_qr).await, 200);
    app.wait_for(&token, "a late payment", PAID_WITHIN, |s| {
        s["state"] == "paid" && s["late"] == true
    })
    .await;
    assert_eq!(app.pay(&second_qr).await, 200);
    let status = app
        .wait_for(&token, "a double payment", PAID_WITHIN, |s| {
            s["double_paid"] == true
        })
        .await;
    let no = status["order_no"].as_str().unwrap().to_string();

    app.login_as("admin", "admin").await;
    let page = get(&app.http, app.url("/admin"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("role=\"alert\"><strong>1</strong>"),
        "refund warning"
    );
    assert!(page.contains("class=\"flag late\""));
    assert!(page.contains("class=\"flag double\""));
    // Gross is what was taken: the order paid twice counts twice (issue 19).
    assert_eq!(selected(&page), ("2".into(), "¥11.00".into()));
    let flagged = get(&app.http, app.url("/admin?flagged=1"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(selected(&flagged), ("1".into(), "¥10.00".into()));

    let csv = get(&app.http, app.url("/admin/orders.csv?flagged=1"))
        .await
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.trim_end().split("\r\n").skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0].starts_with(&format!("{no},")), "{}", rows[0]);
    assert!(rows[0].ends_with(",1,1,0.00"), "{}", rows[0]);

    let detail = get(&app.http, app.url(&format!("/admin/orders/{no}")))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        detail.matches("<tr class=\"flag-").count(),
        2,
        "both payments flagged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admins_today_is_the_shop_day_on_the_apps_clock() {
    // The app's clock runs two days ahead of the wall's: an order paid now is
    // paid on the app's today, and the admin's default range must be that day.
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.advance(Duration::from_secs(2 * 24 * 3600)).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("3.00", "ahead").await;
    pay_order(&app, &token).await;
    app.login_as("admin", "admin").await;
    let page = get(&app.http, app.url("/admin"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(selected(&page), ("1".into(), "¥3.00".into()));
}
