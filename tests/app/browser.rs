//! The pages in a real browser: headless Chromium driven over WebDriver.
//!
//! Without Chromium the test says loudly that it was skipped; with
//! `SCANPAY_REQUIRE_BROWSER=1` (set by `.ci/run`) a missing browser fails it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::webdriver::{Driver, Session, missing_browser};

fn browser_available() -> bool {
    match missing_browser() {
        None => true,
        Some(why) if std::env::var("SCANPAY_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("the browser test is required here but cannot run: {why}")
        }
        Some(why) => {
            eprintln!("\n*** SKIPPED browser test: {why} ***\n");
            false
        }
    }
}

/// Where screenshots go when `SCANPAY_SCREENSHOTS=DIR` is set (README images).
fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("SCANPAY_SCREENSHOTS").map(std::path::PathBuf::from)
}

both!(cashier_and_customer_in_a_real_browser);

/// The README's screenshots come from the v2 run.
async fn cashier_and_customer_in_a_real_browser(api: Api) {
    if !browser_available() {
        return;
    }
    // The browser, not the test, waits for what the jobs do (a QR replaced,
    // a payment found): they run in the background as in service.
    let app = TestApp::builder().api(api).background_jobs().start().await;
    let driver = Driver::start().await;
    let shots = screenshot_dir().filter(|_| api == Api::V2);

    // The cashier signs in and charges ¥12.50.
    let b = driver.session(1280, 900).await;
    b.goto(&app.url("/")).await;
    assert!(
        b.current_url().await.contains("/login?next="),
        "sign-in first"
    );
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("login.png")).await;
    }
    b.type_into("input[name=username]", "cashier").await;
    b.type_into("input[name=password]", "cashier").await;
    b.click("button[type=submit]").await;
    b.wait_until(
        "the checkout form",
        "document.querySelector('input[name=amount]')",
        Duration::from_secs(5),
    )
    .await;
    b.type_into("input[name=amount]", "12.50").await;
    b.type_into("input[name=description]", "两杯咖啡").await;
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("checkout.png")).await;
    }
    b.click("form[action='/orders'] button[type=submit]").await;
    let token = order_page_token(&b).await;

    // The QR image loads and says what the gateway gave.
    b.wait_until("the QR image", "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth >= 320", Duration::from_secs(5)).await;
    assert_eq!(b.text("#state").await, "待支付");
    assert!(b.text("main").await.contains("¥12.50"));
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("order.png")).await;
    }
    let code_url = app.scan_qr(&token).await;

    // The customer pays on the phone; the open page turns to paid with no reload.
    b.script("window.__notReloaded = true", json!([])).await;
    assert_eq!(app.pay(&code_url).await, 200);
    let latency = b
        .wait_until(
            "the paid state",
            "document.getElementById('order').dataset.state === 'paid'",
            Duration::from_secs(3),
        )
        .await;
    eprintln!("browser: pay → page shows paid in {latency:?}");
    assert_eq!(
        b.script("return window.__notReloaded === true", json!([]))
            .await,
        json!(true),
        "no reload"
    );
    assert_eq!(b.text("#state").await, "已支付");
    assert!(b.text(".show-paid").await.contains("支付成功"));
    assert_eq!(
        b.script(
            "return getComputedStyle(document.querySelector('.show-open-ready')).display",
            json!([])
        )
        .await,
        json!("none"),
        "the QR is gone"
    );
    assert_eq!(
        b.script(
            "return getComputedStyle(document.querySelector('form[action$=cancel]')).display",
            json!([])
        )
        .await,
        json!("none"),
        "no cancel for a paid order"
    );
    if let Some(dir) = &shots {
        b.screenshot(&dir.join("paid.png")).await;
    }
    // The print page (its button's script is a file too).
    b.goto(&app.url(&format!("/o/{token}/print"))).await;
    b.wait_until(
        "the print page",
        "document.querySelector('[data-print]')",
        Duration::from_secs(5),
    )
    .await;
    // The simulator's phone pages, under the same policy.
    b.goto(&app.url("/sim/")).await;
    b.wait_until(
        "the simulator's stylesheet",
        "getComputedStyle(document.querySelector('header')).backgroundColor === 'rgb(7, 193, 96)'",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        b.csp_violations().await,
        Vec::<String>::new(),
        "login, checkout, order, print and simulator pages keep their Content-Security-Policy"
    );
    // The watch itself works: an inline style set now is refused and reported.
    b.script(
        "document.body.setAttribute('style', 'color: red')",
        json!([]),
    )
    .await;
    b.wait_until(
        "the refused inline style to be reported",
        "(sessionStorage.getItem('cspViolations') || '').includes('style-src')",
        Duration::from_secs(3),
    )
    .await;
    let seen = b.csp_violations().await;
    assert!(
        seen.iter().any(|m| m.contains("Content Security Policy")),
        "the console reports it too: {seen:?}"
    );
    b.quit().await;

    // The owner signs in and sees the money.
    let admin = driver.session(1280, 1000).await;
    admin.goto(&app.url("/admin")).await;
    admin.type_into("input[name=username]", "admin").await;
    admin.type_into("input[name=password]", "admin").await;
    admin.click("button[type=submit]").await;
    admin
        .wait_until(
            "the admin page",
            "document.getElementById('today-sum')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(admin.text("#today-sum").await, "¥12.50");
    assert_eq!(admin.text("#filter-count").await, "1");
    assert_eq!(admin.text("#filter-sum").await, "¥12.50");
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let table = admin.text("main").await;
    assert!(
        table.contains(&order_no) && table.contains("两杯咖啡"),
        "the paid order is listed"
    );
    assert_eq!(
        admin
            .script(
                "return document.querySelectorAll('svg rect').length > 0",
                json!([])
            )
            .await,
        json!(true),
        "a revenue chart"
    );
    if let Some(dir) = &shots {
        admin.screenshot(&dir.join("admin.png")).await;
    }
    admin
        .goto(&app.url(&format!("/admin/orders/{order_no}")))
        .await;
    admin
        .wait_until(
            "the order detail",
            "document.querySelector('main')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        admin.csp_violations().await,
        Vec::<String>::new(),
        "the admin pages keep their Content-Security-Policy"
    );
    admin.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_page_fits_a_390px_phone() {
    if !browser_available() {
        return;
    }
    // On the wall clock, not the manual one: the page counts down to the QR's
    // expiry (an instant) by the browser's clock, so the app's must agree with it.
    // The browser waits for the poller's QR swap: the jobs run in the background.
    let app = TestApp::builder()
        .background_jobs()
        .settings(|s| s.checkout.qr_ttl_secs = 6)
        .start()
        .await;
    app.login_as("cashier", "cashier").await;
    let token = app
        .create_order(
            "88.88",
            "一个很长的商品说明，用来检查窄屏幕上的换行是否正常，而不会出现横向滚动条",
        )
        .await;
    let driver = Driver::start().await;
    let phone = driver.session(390, 844).await;
    phone.goto(&app.url(&format!("/o/{token}"))).await;
    phone.wait_until("the QR image", "document.getElementById('order').dataset.qrState === 'open' && document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0", Duration::from_secs(5)).await;
    let m = phone
        .script(
            "const q = document.getElementById('qr').getBoundingClientRect();
             return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                     qrWidth: q.width, qrLeft: q.left, qrRight: q.right, qrBottom: q.bottom, height: window.innerHeight}",
            json!([]),
        )
        .await;
    assert_eq!(m["inner"], 390, "{m}");
    assert!(
        m["scroll"].as_f64() <= m["inner"].as_f64(),
        "no sideways scroll: {m}"
    );
    assert!(m["qrWidth"].as_f64().unwrap() >= 280.0, "a big QR: {m}");
    assert!(
        m["qrLeft"].as_f64().unwrap() >= 0.0 && m["qrRight"].as_f64().unwrap() <= 390.0,
        "{m}"
    );
    assert!(
        m["qrBottom"].as_f64().unwrap() <= m["height"].as_f64().unwrap(),
        "the QR is on the first screen: {m}"
    );
    if let Some(dir) = screenshot_dir() {
        phone.screenshot(&dir.join("order-phone.png")).await;
    }
    // When its six seconds are over the QR is replaced in place: new image, no reload.
    phone.script("window.__notReloaded = true", json!([])).await;
    phone
        .wait_until(
            "the second QR",
            "document.getElementById('qr').src.endsWith('v=2') && document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        phone
            .script("return window.__notReloaded === true", json!([]))
            .await,
        json!(true)
    );
    // The countdown text follows within one 250 ms tick of the swap.
    phone
        .wait_until(
            "the countdown to restart",
            "Number(document.getElementById('seconds').textContent) >= 1",
            Duration::from_secs(2),
        )
        .await;
    let seconds: i64 = phone.text("#seconds").await.parse().unwrap();
    assert!(
        (1..=6).contains(&seconds),
        "the countdown restarted: {seconds}"
    );
    assert_eq!(
        phone.csp_violations().await,
        Vec::<String>::new(),
        "the live order page keeps its Content-Security-Policy"
    );
    phone.quit().await;
}

/// Replaces the browser's speech synthesis in every page of a session with a
/// recorder (kept in `sessionStorage`, so it survives navigations): the test
/// reads what the page asked to say, in which language.
const SPEECH_STUB: &str = "(function () {
    function said(u) {
        var s = JSON.parse(sessionStorage.getItem('spoken') || '[]');
        s.push({ text: u.text, lang: u.lang });
        sessionStorage.setItem('spoken', JSON.stringify(s));
    }
    var fake = {
        speak: said,
        cancel: function () {},
        getVoices: function () { return [{ lang: 'zh-CN', name: 'stub' }, { lang: 'en-US', name: 'stub' }]; }
    };
    try { Object.defineProperty(window, 'speechSynthesis', { value: fake, configurable: true }); }
    catch (e) { window.speechSynthesis.speak = said; window.speechSynthesis.getVoices = fake.getVoices; }
})();";

/// What the pages of a session asked to say so far.
async fn spoken(b: &crate::webdriver::Session) -> Vec<String> {
    let v = b
        .script(
            "return JSON.parse(sessionStorage.getItem('spoken') || '[]').map(function (u) { return u.lang + ' ' + u.text; })",
            json!([]),
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Layout facts of the display: sideways scroll, and where its QR sits.
async fn display_fits(b: &crate::webdriver::Session, w: f64, h: f64) {
    let m = b
        .script(
            "const q = document.getElementById('d-qr').getBoundingClientRect();
             return {scroll: document.documentElement.scrollWidth, qrWidth: q.width, qrLeft: q.left, qrRight: q.right, qrBottom: q.bottom}",
            json!([]),
        )
        .await;
    assert!(
        m["scroll"].as_f64().unwrap() <= w,
        "no sideways scroll: {m}"
    );
    assert!(
        m["qrWidth"].as_f64().unwrap() >= 0.5 * w.min(h),
        "a big QR: {m}"
    );
    assert!(
        m["qrLeft"].as_f64().unwrap() >= 0.0 && m["qrRight"].as_f64().unwrap() <= w,
        "{m}"
    );
    assert!(
        m["qrBottom"].as_f64().unwrap() <= h,
        "the QR on the first screen: {m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_counter_display_and_announcements_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    // On the manual clock: the display's paid screen ends when the test says.
    // The browser, not the test, waits for what the jobs do: they run in the
    // background as in service (on the manual clock).
    let app = TestApp::builder()
        .manual_clock()
        .background_jobs()
        .start()
        .await;
    let driver = Driver::start().await;
    let shots = screenshot_dir();

    // The cashier signs in and pairs a display.
    let cashier = driver.session(1280, 900).await;
    cashier.on_new_document(SPEECH_STUB).await;
    cashier.goto(&app.url("/display")).await;
    cashier.type_into("input[name=username]", "cashier").await;
    cashier.type_into("input[name=password]", "cashier").await;
    cashier.click("button[type=submit]").await;
    cashier
        .wait_until(
            "the pairing page",
            "document.getElementById('pairing')",
            Duration::from_secs(5),
        )
        .await;
    cashier
        .click("#pairing form[action='/display'] button")
        .await;
    cashier
        .wait_until(
            "the display link",
            "document.getElementById('display-link')",
            Duration::from_secs(5),
        )
        .await;
    if let Some(dir) = &shots {
        cashier.screenshot(&dir.join("display-pairing.png")).await;
    }
    let link = cashier
        .script(
            "return document.getElementById('display-link').href",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();

    // The tablet facing the customer opens it: idle, with the shop's name.
    let tablet = driver.session(1024, 768).await;
    tablet.on_new_document(SPEECH_STUB).await;
    tablet.goto(&link).await;
    tablet
        .wait_until(
            "the idle display",
            "document.getElementById('display').dataset.mode === 'idle'",
            Duration::from_secs(5),
        )
        .await;
    assert!(tablet.text("main").await.contains("Demo Shop"));
    tablet.click("#voice-toggle").await;
    if let Some(dir) = &shots {
        tablet.screenshot(&dir.join("display-idle.png")).await;
    }

    // The cashier turns announcements on and charges ¥8.00 with Enter.
    cashier.goto(&app.url("/")).await;
    cashier.click("#voice-toggle").await;
    assert_eq!(
        cashier
            .script("return localStorage.getItem('scanpay.voice')", json!([]))
            .await,
        json!("on"),
        "remembered"
    );
    cashier
        .type_into("input[name=amount]", "8.00\u{E007}")
        .await;
    let token = order_page_token(&cashier).await;
    let created = std::time::Instant::now();
    let shown = tablet
        .wait_until(
            "the QR on the display",
            "document.getElementById('display').dataset.mode === 'open' && document.getElementById('d-qr').complete && document.getElementById('d-qr').naturalWidth > 0",
            Duration::from_secs(5),
        )
        .await;
    eprintln!(
        "browser: order created → its QR on the display within {shown:?} (since the order page loaded: {:?})",
        created.elapsed()
    );
    assert!(tablet.text("#d-amount").await.contains("¥8.00"));
    display_fits(&tablet, 1024.0, 768.0).await;
    let src = tablet
        .script(
            "return document.getElementById('d-qr').getAttribute('src')",
            json!([]),
        )
        .await;
    let png = app
        .get_anonymous(src.as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    let code_url = decode_qr(&png);
    assert_eq!(
        code_url,
        app.scan_qr(&token).await,
        "the display's QR is the order's"
    );
    if let Some(dir) = &shots {
        tablet.screenshot(&dir.join("display-tablet.png")).await;
    }
    // The same display on a phone held upright.
    let phone = driver.session(390, 844).await;
    phone.goto(&link).await;
    phone
        .wait_until(
            "the QR on the phone",
            "document.getElementById('display').dataset.mode === 'open' && document.getElementById('d-qr').complete && document.getElementById('d-qr').naturalWidth > 0",
            Duration::from_secs(5),
        )
        .await;
    display_fits(&phone, 390.0, 844.0).await;
    if let Some(dir) = &shots {
        phone.screenshot(&dir.join("display-phone.png")).await;
    }
    phone.quit().await;

    // The customer pays: the display and the cashier's page both say it, once.
    let paying = std::time::Instant::now();
    assert_eq!(app.pay(&code_url).await, 200);
    let paid = tablet
        .wait_until(
            "支付成功 on the display",
            "document.getElementById('display').dataset.mode === 'paid'",
            Duration::from_secs(3),
        )
        .await;
    eprintln!(
        "browser: pay → display shows 支付成功 in {paid:?} ({:?} since the pay call)",
        paying.elapsed()
    );
    assert!(tablet.text("main").await.contains("支付成功"));
    if let Some(dir) = &shots {
        tablet.screenshot(&dir.join("display-paid.png")).await;
    }
    tablet
        .wait_until(
            "the display's announcement",
            "JSON.parse(sessionStorage.getItem('spoken') || '[]').length >= 2",
            Duration::from_secs(3),
        )
        .await;
    assert_eq!(
        spoken(&tablet).await,
        ["zh-CN 语音播报已开启", "zh-CN 微信收款 八元"],
        "the toggle's confirmation, then the payment, once"
    );
    cashier
        .wait_until(
            "the cashier's announcement",
            "JSON.parse(sessionStorage.getItem('spoken') || '[]').length >= 2",
            Duration::from_secs(3),
        )
        .await;
    // After the payment the form is back for the next customer, with no click.
    cashier
        .wait_until(
            "the form for the next customer",
            "location.pathname === '/' && document.activeElement && document.activeElement.name === 'amount'",
            Duration::from_secs(8),
        )
        .await;
    cashier
        .wait_until(
            "today's list",
            "document.querySelector('#day-list li[data-state=paid]')",
            Duration::from_secs(3),
        )
        .await;
    assert_eq!(cashier.text("#day-total").await, "¥8.00");
    assert_eq!(cashier.text("#day-created").await, "1");
    if let Some(dir) = &shots {
        cashier.screenshot(&dir.join("checkout-day.png")).await;
    }
    // Said once on the order page, not again on the form.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        spoken(&cashier).await,
        ["zh-CN 语音播报已开启", "zh-CN 微信收款 八元"]
    );

    // A few seconds later the display is idle again.
    app.advance(scanpay::checkout::counter::DISPLAY_OUTCOME_FOR)
        .await;
    tablet
        .wait_until(
            "the idle display",
            "document.getElementById('display').dataset.mode === 'idle'",
            Duration::from_secs(5),
        )
        .await;
    // Unpaired: the display says so at once.
    cashier.goto(&app.url("/display")).await;
    cashier.click("form[action='/display/revoke'] button").await;
    tablet
        .wait_until(
            "disconnected",
            "document.getElementById('display').dataset.mode === 'disconnected'",
            Duration::from_secs(3),
        )
        .await;
    assert_eq!(
        tablet.csp_violations().await,
        Vec::<String>::new(),
        "the display keeps the CSP"
    );
    assert_eq!(
        cashier.csp_violations().await,
        Vec::<String>::new(),
        "the cashier's pages keep the CSP"
    );
    tablet.quit().await;
    cashier.quit().await;
}

/// Issue 20: the whole day on a phone: a page of 50 that fits 390 px, a link
/// to the older ones, and each order's state live.
#[tokio::test(flavor = "multi_thread")]
async fn the_whole_day_fits_a_390px_phone_and_is_live() {
    if !browser_available() {
        return;
    }
    let app = TestApp::builder()
        .background_jobs()
        .settings(|s| {
            s.checkout.max_open_orders_per_cashier = 0;
            s.checkout.max_orders_per_minute = 0;
        })
        .start()
        .await;
    app.login_as("cashier", "cashier").await;
    let mut tokens = Vec::new();
    for i in 0..55 {
        tokens.push(
            app.create_order(
                &format!("{}.00", i + 1),
                "一个很长的商品说明，窄屏幕上不应出现横向滚动条",
            )
            .await,
        );
    }
    let driver = Driver::start().await;
    let phone = driver.session(390, 844).await;
    phone.goto(&app.url("/day")).await;
    phone.type_into("input[name=username]", "cashier").await;
    phone.type_into("input[name=password]", "cashier").await;
    phone.click("button[type=submit]").await;
    phone
        .wait_until(
            "the whole day",
            "location.pathname === '/day' && document.querySelectorAll('#day-list li').length === 50",
            Duration::from_secs(5),
        )
        .await;
    let m = phone
        .script(
            "return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                     older: !document.getElementById('day-older').hidden}",
            json!([]),
        )
        .await;
    assert!(
        m["scroll"].as_f64() <= m["inner"].as_f64(),
        "no sideways scroll: {m}"
    );
    assert_eq!(m["older"], true, "55 orders: an older page follows");
    assert_eq!(phone.text("#day-created").await, "55");
    // The newest order is paid: its row says so without a reload.
    app.scan_and_pay(&tokens[54]).await;
    phone
        .wait_until(
            "the paid row",
            "document.querySelector('#day-list li[data-state=paid]')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(phone.text("#day-total").await, "¥55.00");
    phone.click("#day-older").await;
    phone
        .wait_until(
            "the older page",
            "document.querySelectorAll('#day-list li').length === 5 && document.getElementById('day-older').hidden",
            Duration::from_secs(5),
        )
        .await;
    phone.quit().await;
}

/// Waits for the browser to land on an order page (after the checkout form);
/// the order's token, from its address.
async fn order_page_token(b: &Session) -> String {
    b.wait_until(
        "the order page",
        "location.pathname.startsWith('/o/')",
        Duration::from_secs(10),
    )
    .await;
    b.current_url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}
