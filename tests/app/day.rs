//! Issue 20: the checkout page lists the cashier's newest orders only, while
//! its count and total cover the whole day; the whole day is `/day`, paged
//! newest first, live, behind the same login.

use std::time::Duration;

use crate::helpers::*;

/// Caps off: these tests take more orders than a real counter makes a minute.
async fn uncapped(tweak: impl FnOnce(&mut scanpay::config::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.checkout.max_open_orders_per_cashier = 0;
        s.checkout.max_orders_per_minute = 0;
        tweak(s);
    })
    .await
}

/// The order numbers a page lists, top to bottom.
fn listed(html: &str) -> Vec<String> {
    let start = html.find("id=\"day-list\"").expect("the day's list");
    let end = start + html[start..].find("</ol>").expect("the list ends");
    html[start..end]
        .split("data-order-no=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The page's link to the older orders, if shown.
fn older_link(html: &str) -> Option<String> {
    let at = html.find("id=\"day-older\" href=\"")? + "id=\"day-older\" href=\"".len();
    Some(
        html[at..at + html[at..].find('"')?]
            .replace("&#x3d;", "=")
            .replace("&amp;", "&"),
    )
}

/// The cashier's order numbers today as the database has them, newest first.
fn day_in_db(app: &TestApp, user: &str) -> Vec<String> {
    let db = app.db();
    let mut st = db
        .prepare(
            "SELECT order_no FROM orders WHERE cashier_id = (SELECT id FROM users WHERE username = ?1)
             ORDER BY created_at DESC, id DESC",
        )
        .unwrap();
    st.query_map([user], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_page_lists_the_newest_orders_while_count_and_total_cover_the_day() {
    let app = uncapped(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let mut tokens = Vec::new();
    for i in 1..=20 {
        tokens.push(app.create_order(&format!("{i}.00"), "").await);
    }
    // The oldest order (long off the list) and the newest are paid.
    for t in [&tokens[0], &tokens[19]] {
        app.scan_and_pay(t).await;
        app.wait_for_state(t, "paid", Duration::from_secs(10)).await;
    }

    let page = app.page(&app.http, app.url("/")).await;
    let all = day_in_db(&app, "cashier");
    assert_eq!(all.len(), 20);
    assert_eq!(listed(&page), all[..15], "the 15 newest, newest first");
    assert!(page.contains("<span id=\"day-created\">20</span>"));
    assert!(
        page.contains("<strong id=\"day-total\">¥21.00</strong>"),
        "¥1 + ¥20, the first paid off the list"
    );
    assert!(page.contains("<a href=\"/day\" id=\"day-all\">查看今日全部订单</a>"));

    // Live, the same: and a new order pushes the oldest listed one off.
    let mut events = Events::open(&app.http, app.url("/counter/events")).await;
    let day = events.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(day["orders"].as_array().unwrap().len(), 15);
    assert_eq!(
        (day["created"].clone(), day["paid"].clone()),
        (20.into(), 2.into())
    );
    assert_eq!(day["total"], "¥21.00");
    app.create_order("0.50", "").await;
    let day = loop {
        let day = events
            .next(Duration::from_secs(5))
            .await
            .expect("the new order is pushed");
        if day["created"] == 21 {
            break day;
        }
    };
    let live: Vec<&str> = day["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    let all = day_in_db(&app, "cashier");
    assert_eq!(live, all[..15]);
    assert_eq!(day["total"], "¥21.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_day_pages_newest_first_and_loses_or_repeats_no_order() {
    let app = uncapped(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    for i in 0..120 {
        app.create_order(&format!("{}.{:02}", 1 + i / 100, i % 100), "")
            .await;
    }
    let before = day_in_db(&app, "cashier");

    let first = app.page(&app.http, app.url("/day")).await;
    assert!(first.contains("今日全部订单") && first.contains("返回收款"));
    assert!(first.contains("<span id=\"day-created\">120</span>"));
    assert!(!first.contains("id=\"day-newest\""), "already the newest");
    let mut seen = listed(&first);
    assert_eq!(seen.len(), 50);
    // Orders taken while the cashier reads go on top, not onto the next page.
    let mut fresh = Vec::new();
    for _ in 0..3 {
        fresh.push(app.create_order("9.99", "").await);
    }
    let mut next = older_link(&first);
    let mut pages = 1;
    while let Some(link) = next {
        let page = app.page(&app.http, app.url(&link)).await;
        assert!(
            page.contains("id=\"day-newest\""),
            "a way back to the newest"
        );
        assert!(
            page.contains("<span id=\"day-created\">123</span>"),
            "the whole day's count"
        );
        let rows = listed(&page);
        assert!(!rows.is_empty() && rows.len() <= 50);
        seen.extend(rows);
        next = older_link(&page);
        pages += 1;
        assert!(pages <= 3, "120 orders are three pages of 50");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, before, "every order once, newest first");

    // The first page now starts with the three new ones.
    let now = app.page(&app.http, app.url("/day")).await;
    let top = listed(&now);
    assert_eq!(top[..3], day_in_db(&app, "cashier")[..3]);
    assert_eq!(top[3], before[0]);

    // A later page is live too: its orders' states, and its next page's link.
    let second = format!("/day/events?after={}", before[49]);
    let mut events = Events::open(&app.http, app.url(&second)).await;
    let ev = events.next(Duration::from_secs(5)).await.unwrap();
    let rows: Vec<&str> = ev["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(rows, before[50..100]);
    assert_eq!(ev["older"], format!("/day?after={}", before[99]));
    assert_eq!(ev["created"], 123);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_day_needs_a_login_and_shows_only_the_cashiers_own() {
    let app = uncapped(|_| {}).await;
    for path in ["/day", "/day/events"] {
        let resp = app.get_anonymous(path).await;
        assert_is_redirect_to(&resp, &format!("/login?next={path}"));
    }
    app.login_as("cashier", "cashier").await;
    let mine = app.create_order("5.00", "").await;
    let no = app.status(&mine).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app.get_anonymous(&format!("/day?after={no}")).await;
    assert_eq!(resp.status(), 303, "a page of the day is gated too");

    // Another member of staff sees their own day, and nothing below my order.
    let admin = app.signed_in("admin", "admin").await;
    let theirs = app.page(&admin, app.url("/day")).await;
    assert!(listed(&theirs).is_empty());
    assert!(theirs.contains("<span id=\"day-created\">0</span>"));
    let below = app.page(&admin, app.url(&format!("/day?after={no}"))).await;
    assert!(listed(&below).is_empty());
    let mine_page = app.page(&app.http, app.url("/day")).await;
    assert_eq!(listed(&mine_page), [no]);

    // A cursor that is no order number is a bad link.
    let resp = app
        .http
        .get(app.url("/day?after=junk"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_english_shop_pages_its_day_in_english() {
    let app = uncapped(|s| s.shop.language = scanpay::config::Language::En).await;
    app.login_as("cashier", "cashier").await;
    app.create_order("1.00", "").await;
    let checkout = app.page(&app.http, app.url("/")).await;
    // askama escapes the apostrophe.
    assert!(
        checkout.contains("id=\"day-all\">All of today&#39;s orders</a>"),
        "{checkout}"
    );
    let day = app.page(&app.http, app.url("/day")).await;
    assert!(day.contains("lang=\"en\"") && day.contains("Back to checkout"));
    assert_eq!(listed(&day).len(), 1);
}
