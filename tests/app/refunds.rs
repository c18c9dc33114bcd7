//! Refunds, black-box: an admin refunds part or all of a payment from the order
//! page (confirmation first), the simulator takes it, and the refund is followed
//! to its end by the refund notification or, when that is lost, by the poller's
//! refund query; never more than was paid, whatever the timing.

use std::time::Duration;

use crate::helpers::*;
use scanpay::values::money::Fen;
use scanpay::values::trade::OutRefundNo;
use scanpay::wxpay::v2::refund::{RefundInfo, RefundQuery, RefundStatusV2};
use scanpay::wxpay::v2::{SignType, xml};

const WAIT: Duration = Duration::from_secs(20);

/// A paid order of `amount` yuan, created and paid as the admin; its order_no and token.
pub(crate) async fn paid_order(app: &TestApp, amount: &str) -> (String, String) {
    let token = app.create_order(amount, "refundable").await;
    app.scan_and_pay(&token).await;
    let s = app.wait_for_state(&token, "paid", WAIT).await;
    (s["order_no"].as_str().unwrap().to_string(), token)
}

/// On a manual-clock app: an order of `amount` yuan paid on the simulator's
/// phone, its notification taken as a second passes; its order_no and token.
pub(crate) async fn paid_on_manual_clock(
    app: &TestApp,
    amount: &str,
    description: &str,
) -> (String, String) {
    let token = app.create_order(amount, description).await;
    let code = app.scan_qr(&token).await;
    assert_eq!(app.pay(&code).await, 200);
    app.advance(Duration::from_secs(1)).await;
    let s = app.status(&token).await;
    (s["order_no"].as_str().unwrap().to_string(), token)
}

pub(crate) async fn admin_app_on(api: Api) -> TestApp {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("admin", "admin").await;
    app
}

pub(crate) async fn admin_app() -> TestApp {
    admin_app_on(Api::V2).await
}

/// `POST /admin/orders/{order_no}/refunds` with `fields` (and the session's CSRF token).
pub(crate) async fn post_refund(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    order_no: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", csrf));
    client
        .post(app.url(&format!("/admin/orders/{order_no}/refunds")))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Asks for the confirmation, then confirms it: the refund's out_refund_no.
pub(crate) async fn refund(app: &TestApp, order_no: &str, amount: &str, reason: &str) -> String {
    let csrf = app.csrf().await;
    let confirm = post_refund(
        app,
        &app.http,
        &csrf,
        order_no,
        &[("amount", amount), ("reason", reason)],
    )
    .await;
    assert_eq!(confirm.status(), 200, "the confirmation page");
    let page = confirm.text().await.unwrap();
    assert!(
        page.contains(&format!("¥{amount}")),
        "it says what goes back: {page}"
    );
    let no = hidden_value(&page, "out_refund_no").expect("the confirmation carries its number");
    let tx = hidden_value(&page, "transaction_id").unwrap();
    let done = post_refund(
        app,
        &app.http,
        &csrf,
        order_no,
        &[
            ("amount", amount),
            ("reason", reason),
            ("transaction_id", &tx),
            ("out_refund_no", &no),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_is_redirect_to(&done, &format!("/admin/orders/{order_no}#refunds"));
    no
}

pub(crate) fn state_of(app: &TestApp, no: &str) -> String {
    app.db()
        .query_row(
            "SELECT state FROM refunds WHERE out_refund_no = ?1",
            [no],
            |r| r.get(0),
        )
        .unwrap()
}

pub(crate) async fn wait_refund(app: &TestApp, no: &str, state: &str) {
    let sql =
        format!("SELECT COUNT(*) FROM refunds WHERE out_refund_no = '{no}' AND state = '{state}'");
    app.wait_count(&format!("refund {no} {state}"), &sql, 1, WAIT)
        .await;
}

both!(full_and_partial_refunds_succeed_through_the_notification);

async fn full_and_partial_refunds_succeed_through_the_notification(api: Api) {
    let app = admin_app_on(api).await;
    let (order_no, token) = paid_order(&app, "10.00").await;

    let first = refund(&app, &order_no, "1.00", "customer returned one cup").await;
    wait_refund(&app, &first, "succeeded").await;
    assert_eq!(app.status(&token).await["refunded_fen"], 100);
    let customer = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(customer.contains("部分退款"), "{customer}");

    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    for shown in [
        first.as_str(),
        "¥1.00",
        "customer returned one cup",
        "admin",
        "succeeded",
        "支付用户零钱",
    ] {
        assert!(page.contains(shown), "the order page shows {shown}: {page}");
    }
    assert!(
        app.count(&format!(
            "SELECT COUNT(*) FROM notifications WHERE outcome LIKE 'refund {first}:%succeeded'"
        )) == 1,
        "the refund notification is in the log"
    );
    let refund_id: String = app
        .db()
        .query_row(
            "SELECT refund_id FROM refunds WHERE out_refund_no = ?1",
            [&first],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        page.contains(&refund_id),
        "the gateway's refund_id is shown"
    );

    let rest = refund(&app, &order_no, "9.00", "").await;
    wait_refund(&app, &rest, "succeeded").await;
    assert_eq!(app.status(&token).await["refunded_fen"], 1000);
    let customer = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(customer.contains("已退款"), "{customer}");

    // The timeline says who refunded what and why.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'refund_requested' AND detail LIKE '%by admin: customer returned one cup'"),
        1
    );
    // Nothing more to refund.
    let csrf = app.csrf().await;
    let more = post_refund(
        &app,
        &app.http,
        &csrf,
        &order_no,
        &[("amount", "0.01"), ("confirm", "1")],
    )
    .await;
    assert_eq!(more.status(), 422);

    // The list, the totals and the CSV see it.
    let list = app.page(&app.http, app.url("/admin/refunds")).await;
    assert!(list.contains(&first) && list.contains(&rest), "{list}");
    assert!(
        list.find(&rest).unwrap() < list.find(&first).unwrap(),
        "newest first"
    );
    let admin = app.page(&app.http, app.url("/admin")).await;
    assert!(
        admin.contains(r#"<strong id="filter-refunded">¥10.00</strong>"#),
        "{admin}"
    );
    assert!(
        admin.contains(r#"<strong id="filter-net">¥0.00</strong>"#),
        "{admin}"
    );
    let csv = app.page(&app.http, app.url("/admin/orders.csv")).await;
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&order_no) && l.ends_with(",10.00")),
        "{csv}"
    );
}

both!(with_notifications_lost_the_poller_finds_the_outcome);

async fn with_notifications_lost_the_poller_finds_the_outcome(api: Api) {
    let app = spawn_app_on_manual_clock(|s| s.wxpay.api = api).await;
    app.login_as("admin", "admin").await;
    app.set_faults("drop_notify=1,refund_delay_ms=50").await;
    let (order_no, token) = paid_on_manual_clock(&app, "5.00", "lost").await;
    assert_eq!(app.status(&token).await["state"], "paid");

    let no = refund(&app, &order_no, "5.00", "").await;
    assert_eq!(state_of(&app, &no), "processing", "accepted, not yet done");
    // The gateway finishes it on its own (wall) clock, 50 ms later: read it there.
    let start = std::time::Instant::now();
    while app.gateway().query_refund(&no).await.as_deref() != Some("SUCCESS") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the gateway never finished the refund"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.advance(Duration::from_secs(30)).await;
    assert_eq!(
        state_of(&app, &no),
        "processing",
        "the first query is about a minute after"
    );
    app.advance(Duration::from_secs(31)).await;
    assert_eq!(state_of(&app, &no), "succeeded");
    assert_eq!(app.status(&token).await["refunded_fen"], 500);

    // The notification, late, is applied no second time.
    let out_trade_no = app.out_trade_no(&token).await;
    assert!(
        app.gateway()
            .notify_refund_succeeded(&no, &out_trade_no, 500)
            .await
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'refund_succeeded'"),
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM notifications WHERE outcome LIKE '%duplicate, already succeeded'"
        ),
        1
    );
}

#[tokio::test]
async fn a_notification_before_the_poll_is_applied_once_and_forgeries_change_nothing() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("admin", "admin").await;
    // The simulator takes its time and says nothing: the notification is ours to send.
    app.set_faults("drop_notify=1,refund_delay_ms=600000").await;
    let (order_no, token) = paid_on_manual_clock(&app, "3.00", "early").await;
    let out_trade_no = app.out_trade_no(&token).await;
    let no = refund(&app, &order_no, "1.50", "").await;
    assert_eq!(state_of(&app, &no), "processing");

    // Forged: a req_info that does not decrypt with our key; a wrong amount.
    let forged = format!(
        "<xml><return_code>SUCCESS</return_code><appid>{DEMO_APPID}</appid><mch_id>{DEMO_MCH_ID}</mch_id><nonce_str>n</nonce_str><req_info>AAAAAAAAAAAAAAAAAAAAAA==</req_info></xml>"
    );
    let (_, answer) = app.notify_at("/wxpay/refund-notify", forged).await;
    assert!(answer.contains("FAIL"), "{answer}");
    let (_, answer) = v2_refund_notice(&app, &no, &out_trade_no, 999, "SUCCESS").await;
    assert!(answer.contains("FAIL"), "{answer}");
    assert_eq!(
        state_of(&app, &no),
        "processing",
        "forgeries change nothing"
    );

    let (_, answer) = v2_refund_notice(&app, &no, &out_trade_no, 150, "SUCCESS").await;
    assert!(answer.contains("SUCCESS"), "{answer}");
    assert_eq!(state_of(&app, &no), "succeeded");
    let (_, again) = v2_refund_notice(&app, &no, &out_trade_no, 150, "SUCCESS").await;
    assert!(again.contains("SUCCESS"), "a duplicate is acknowledged");
    // A final refund is asked about no more, and nothing is applied twice.
    app.advance(Duration::from_secs(120)).await;
    assert_eq!(state_of(&app, &no), "succeeded");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'refund_succeeded'"),
        1
    );
    assert_eq!(app.status(&token).await["refunded_fen"], 150);
}

both!(two_admins_at_once_cannot_refund_more_than_was_paid);

async fn two_admins_at_once_cannot_refund_more_than_was_paid(api: Api) {
    let app = admin_app_on(api).await;
    let other = app.signed_in("admin", "admin").await;
    let other_csrf = hidden_value(&app.page(&other, app.url("/")).await, "csrf_token").unwrap();
    let (order_no, token) = paid_order(&app, "8.00").await;
    let csrf = app.csrf().await;
    let whole = [
        ("amount", "8.00"),
        ("reason", "all of it"),
        ("confirm", "1"),
    ];
    let (a, b) = tokio::join!(
        post_refund(&app, &app.http, &csrf, &order_no, &whole),
        post_refund(&app, &other, &other_csrf, &order_no, &whole),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 422], "one refund, one refusal");
    let refused = if a.status() == 422 { a } else { b };
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("¥0.00"),
        "the refusal says what is left: {page}"
    );
    app.wait_count(
        "the refund",
        "SELECT COUNT(*) FROM refunds WHERE state = 'succeeded'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 1);
    assert_eq!(app.status(&token).await["refunded_fen"], 800);
}

both!(a_form_sent_twice_is_one_refund);

async fn a_form_sent_twice_is_one_refund(api: Api) {
    let app = admin_app_on(api).await;
    let (order_no, _) = paid_order(&app, "4.00").await;
    let csrf = app.csrf().await;
    let no = OutRefundNo::random().to_string();
    let form = [
        ("amount", "1.00"),
        ("out_refund_no", no.as_str()),
        ("confirm", "1"),
    ];
    for _ in 0..3 {
        let resp = post_refund(&app, &app.http, &csrf, &order_no, &form).await;
        assert_eq!(resp.status(), 303);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 1);
    wait_refund(&app, &no, "succeeded").await;
}

both!(after_systemerror_the_same_out_refund_no_is_sent_again);

async fn after_systemerror_the_same_out_refund_no_is_sent_again(api: Api) {
    let app = spawn_app_on_manual_clock(|s| s.wxpay.api = api).await;
    app.login_as("admin", "admin").await;
    let (order_no, _) = paid_on_manual_clock(&app, "2.00", "busy").await;

    app.set_faults("refund_systemerror_rate=1").await;
    let no = refund(&app, &order_no, "2.00", "").await;
    assert_eq!(
        state_of(&app, &no),
        "pending",
        "the outcome is unknown: kept to send again"
    );
    let error: String = app
        .db()
        .query_row(
            "SELECT last_error FROM refunds WHERE out_refund_no = ?1",
            [&no],
            |r| r.get(0),
        )
        .unwrap();
    // Each protocol spells the gateway's trouble its own way.
    let code = api.system_error();
    assert!(error.contains(code), "{error}");
    assert_eq!(
        app.gateway().query_refund(&no).await,
        None,
        "the gateway has none yet"
    );

    app.set_faults("").await;
    app.advance(Duration::from_secs(3)).await;
    assert_eq!(state_of(&app, &no), "processing", "sent again and accepted");
    wait_refund(&app, &no, "succeeded").await;
    assert_eq!(
        app.gateway().query_refund(&no).await.as_deref(),
        Some("SUCCESS"),
        "the same number, refunded once"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 1);
    assert!(app.count("SELECT attempts FROM refunds") >= 2);
}

both!(notenough_is_explained_and_a_retry_keeps_the_number);

async fn notenough_is_explained_and_a_retry_keeps_the_number(api: Api) {
    let app = admin_app_on(api).await;
    let (order_no, token) = paid_order(&app, "6.00").await;
    app.set_faults("refund_notenough_rate=1").await;
    let no = refund(&app, &order_no, "6.00", "").await;
    assert_eq!(state_of(&app, &no), "failed");
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(
        page.contains("the merchant account lacks the balance; top it up and retry"),
        "{page}"
    );
    let retry_url = format!("/admin/orders/{order_no}/refunds/{no}/retry");
    assert!(page.contains(&retry_url), "a retry button");

    app.set_faults("").await;
    let csrf = app.csrf().await;
    let resp = app
        .http
        .post(app.url(&retry_url))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_is_redirect_to(&resp, &format!("/admin/orders/{order_no}#refunds"));
    wait_refund(&app, &no, "succeeded").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 1);
    assert_eq!(app.status(&token).await["refunded_fen"], 600);
}

both!(abnormal_refunds_are_shown_and_followed);

async fn abnormal_refunds_are_shown_and_followed(api: Api) {
    let app = admin_app_on(api).await;
    let (order_no, _) = paid_order(&app, "1.00").await;
    app.set_faults("refund_abnormal_rate=1").await;
    let no = refund(&app, &order_no, "1.00", "").await;
    wait_refund(&app, &no, "abnormal").await;
    let next: Option<i64> = app
        .db()
        .query_row(
            "SELECT next_query_at FROM refunds WHERE out_refund_no = ?1",
            [&no],
            |r| r.get(0),
        )
        .unwrap();
    assert!(next.is_some(), "an abnormal refund is still followed");
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(page.contains("abnormal"), "{page}");
}

#[tokio::test]
async fn bad_amounts_are_refused_with_the_reason() {
    let app = admin_app().await;
    let (order_no, _) = paid_order(&app, "3.00").await;
    let csrf = app.csrf().await;
    for (amount, says) in [
        ("0", "大于零"),
        ("-1", "大于零"),
        ("0.001", "两位小数"),
        ("abc", "格式"),
        ("3.01", "可退金额"),
    ] {
        for confirm in ["", "1"] {
            let resp = post_refund(
                &app,
                &app.http,
                &csrf,
                &order_no,
                &[("amount", amount), ("confirm", confirm)],
            )
            .await;
            assert_eq!(resp.status(), 422, "{amount}");
            let page = resp.text().await.unwrap();
            assert!(page.contains(says), "{amount}: {page}");
            assert!(
                page.contains(&format!(r#"value="{amount}""#)),
                "the form keeps the value"
            );
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 0);
}

#[tokio::test]
async fn cashiers_cannot_refund_and_the_form_needs_its_csrf_token() {
    let app = admin_app().await;
    let (order_no, _) = paid_order(&app, "2.00").await;
    let resp = post_refund(
        &app,
        &app.http,
        "not-the-token",
        &order_no,
        &[("amount", "1.00"), ("confirm", "1")],
    )
    .await;
    assert_eq!(resp.status(), 403, "CSRF");

    let cashier = app.signed_in("cashier", "cashier").await;
    let csrf = hidden_value(&app.page(&cashier, app.url("/")).await, "csrf_token").unwrap();
    let resp = post_refund(
        &app,
        &cashier,
        &csrf,
        &order_no,
        &[("amount", "1.00"), ("confirm", "1")],
    )
    .await;
    assert_eq!(resp.status(), 403, "a cashier cannot refund");
    let resp = cashier.get(app.url("/admin/refunds")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 0);
}

#[tokio::test]
async fn at_most_fifty_refunds_per_payment() {
    let app = admin_app().await;
    let (order_no, _) = paid_order(&app, "1.00").await;
    let csrf = app.csrf().await;
    for _ in 0..50 {
        let resp = post_refund(
            &app,
            &app.http,
            &csrf,
            &order_no,
            &[("amount", "0.01"), ("confirm", "1")],
        )
        .await;
        assert_eq!(resp.status(), 303);
    }
    let resp = post_refund(
        &app,
        &app.http,
        &csrf,
        &order_no,
        &[("amount", "0.01"), ("confirm", "1")],
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("50"));
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 50);
}

#[tokio::test]
async fn no_refund_a_year_after_the_payment() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("admin", "admin").await;
    let (order_no, _) = paid_on_manual_clock(&app, "2.00", "old").await;
    app.advance(Duration::from_secs(364 * 24 * 3600)).await;
    let csrf = app.csrf().await;
    let ok = post_refund(&app, &app.http, &csrf, &order_no, &[("amount", "0.50")]).await;
    assert_eq!(ok.status(), 200, "still refundable at 364 days");
    app.advance(Duration::from_secs(2 * 24 * 3600)).await;
    let csrf = app.csrf().await;
    let late = post_refund(
        &app,
        &app.http,
        &csrf,
        &order_no,
        &[("amount", "0.50"), ("confirm", "1")],
    )
    .await;
    assert_eq!(late.status(), 422);
    assert!(late.text().await.unwrap().contains("一年"));
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 0);
}

#[tokio::test]
async fn the_double_paid_warning_refunds_the_second_payment_in_one_step() {
    let app = admin_app().await;
    let (order_no, token) = paid_order(&app, "7.00").await;
    // The same order paid again (a second transaction for its QR).
    let out_trade_no = app.out_trade_no(&token).await;
    let second = signed_notification(
        &demo_merchant(SignType::Md5),
        &out_trade_no,
        700,
        "4200000000000000000000000002",
    );
    let (status, _) = app.notify(second).await;
    assert_eq!(status, 200);
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(page.contains(r#"id="refund-second""#), "{page}");
    let form_tx = hidden_value(
        &page[page.find(r#"id="refund-second""#).unwrap()..],
        "transaction_id",
    )
    .unwrap();
    assert_eq!(
        form_tx, "4200000000000000000000000002",
        "it targets the second payment"
    );
    let csrf = app.csrf().await;
    let confirm = post_refund(
        &app,
        &app.http,
        &csrf,
        &order_no,
        &[
            ("amount", "7.00"),
            ("transaction_id", &form_tx),
            ("reason", "重复付款退款"),
        ],
    )
    .await;
    assert_eq!(confirm.status(), 200);
    let page = confirm.text().await.unwrap();
    assert!(
        page.contains("4200000000000000000000000002") && page.contains("¥7.00"),
        "{page}"
    );
}

// ---------------------------------------------------------------- mutual TLS

/// A throwaway CA with a server certificate for 127.0.0.1 and a client
/// certificate, and a second CA's client certificate (the wrong one).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            p.distinguished_name.push(DnType::CommonName, name);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let leaf = |issuer: &CertifiedIssuer<'_, KeyPair>, sans: Vec<String>, purpose, cn: &str| {
            let mut p = CertificateParams::new(sans).unwrap();
            p.extended_key_usages = vec![purpose];
            p.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let test_ca = ca("scanpay test CA");
        write("ca.pem", test_ca.pem());
        let (cert, key) = leaf(
            &test_ca,
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "127.0.0.1",
        );
        write("server.pem", cert);
        write("server.key", key);
        let (cert, key) = leaf(
            &test_ca,
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
            DEMO_MCH_ID,
        );
        write("client.pem", cert);
        write("client.key", key);
        let other_ca = ca("someone else's CA");
        let (cert, key) = leaf(
            &other_ca,
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
            DEMO_MCH_ID,
        );
        write("wrong.pem", cert);
        write("wrong.key", key);
        Pki { dir }
    }

    /// A browser that trusts the test CA.
    fn http(&self) -> reqwest::Client {
        scanpay::wxpay::v2::client::install_crypto_provider();
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(self.path("ca.pem")).unwrap()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// `scanpay sim --tls-cert --tls-key --client-ca` in this process; its https URL.
async fn tls_sim(pki: &Pki) -> (TestSim, String) {
    let sim = spawn_sim_with(|s| {
        s.sim.tls_cert_file = Some(pki.path("server.pem"));
        s.sim.tls_key_file = Some(pki.path("server.key"));
        s.sim.client_ca_file = Some(pki.path("ca.pem"));
    })
    .await;
    let url = sim.url.replacen("http://", "https://", 1);
    (sim, url)
}

/// The app in live mode against the TLS simulator, with `client` as its
/// certificate (`None`: none configured); a paid order's number.
async fn live_app_paid(pki: &Pki, sim: &str, client: Option<&str>) -> (TestApp, String) {
    let app = spawn_live_app(sim, |s| {
        s.wxpay.gateway_ca_file = Some(pki.path("ca.pem"));
        if let Some(name) = client {
            s.wxpay.client_cert_file = Some(pki.path(&format!("{name}.pem")));
            s.wxpay.client_key_file = Some(pki.path(&format!("{name}.key")));
        }
    })
    .await;
    app.login_as("admin", "admin-password").await;
    let token = app.create_order("2.00", "over TLS").await;
    let code_url = app.scan_qr(&token).await;
    let paid = pki
        .http()
        .post(format!("{sim}pay"))
        .form(&[("code_url", code_url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    let s = app.wait_for_state(&token, "paid", WAIT).await;
    (app, s["order_no"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn v2_refunds_go_over_mutual_tls_with_the_merchant_certificate() {
    let pki = Pki::new();
    let (_sim, sim_url) = tls_sim(&pki).await;
    // Over TLS the simulator's pages are served as over plain http: the same
    // security headers, and HSTS since the scheme is https.
    let phone = pki.http().get(&sim_url).send().await.unwrap();
    assert_eq!(phone.status(), 200);
    assert_eq!(phone.headers()["x-frame-options"], "DENY");
    assert!(phone.headers().contains_key("content-security-policy"));
    assert!(phone.headers().contains_key("strict-transport-security"));

    // The right certificate: refunded.
    let (app, order_no) = live_app_paid(&pki, &sim_url, Some("client")).await;
    let no = refund(&app, &order_no, "2.00", "over mutual TLS").await;
    wait_refund(&app, &no, "succeeded").await;

    // No certificate configured: refused here, saying what to configure.
    let (app, order_no) = live_app_paid(&pki, &sim_url, None).await;
    let no = refund(&app, &order_no, "1.00", "").await;
    assert_eq!(state_of(&app, &no), "failed");
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(
        page.contains("wxpay.client_cert_file") && page.contains("wxpay.client_key_file"),
        "{page}"
    );

    // A refund sent without a certificate anyway: the gateway refuses it.
    let merchant = demo_merchant(SignType::Md5);
    let ask = scanpay::wxpay::v2::Refund {
        out_trade_no: scanpay::wxpay::v2::OutTradeNo::new("whatever").unwrap(),
        transaction_id: None,
        out_refund_no: OutRefundNo::random(),
        total_fee: Fen::new(200),
        refund_fee: Fen::new(100),
        refund_desc: String::new(),
        notify_url: None,
    };
    let body = xml::to_xml(&scanpay::wxpay::v2::api::build_request(
        &ask, &merchant, "nonce",
    ));
    let answer = pki
        .http()
        .post(format!("{sim_url}secapi/pay/refund"))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        answer.contains("FAIL") && answer.contains("证书"),
        "{answer}"
    );

    // A certificate from another CA: the handshake fails, nothing is refunded.
    let (app, order_no) = live_app_paid(&pki, &sim_url, Some("wrong")).await;
    let no = refund(&app, &order_no, "1.00", "").await;
    assert_eq!(
        state_of(&app, &no),
        "pending",
        "not refunded, and not known to be refused"
    );
    let error: String = app
        .db()
        .query_row(
            "SELECT last_error FROM refunds WHERE out_refund_no = ?1",
            [&no],
            |r| r.get(0),
        )
        .unwrap();
    assert!(error.contains("TLS"), "the reason names TLS: {error}");
    let gateway = scanpay::wxpay::v2::WxPayClient::new(&sim_url, merchant, Duration::from_secs(5))
        .unwrap()
        .with_tls(Some(&std::fs::read(pki.path("ca.pem")).unwrap()), None)
        .unwrap();
    let query = RefundQuery {
        out_refund_no: OutRefundNo::new(no).unwrap(),
    };
    assert!(
        gateway.refund_query(&query).await.is_err(),
        "the gateway has no such refund"
    );
}

/// `pay/refundquery` by out_trade_no: every refund the gateway holds for a trade.
struct RefundsOfTrade(String);

impl scanpay::wxpay::v2::Endpoint for RefundsOfTrade {
    const PATH: &'static str = "pay/refundquery";
    type Output = Vec<RefundInfo>;
    fn fields(&self) -> xml::Fields {
        let mut f = xml::Fields::new();
        f.set("out_trade_no", self.0.as_str());
        f
    }
    fn parse(fields: &xml::Fields) -> Result<Self::Output, scanpay::wxpay::v2::WxPayError> {
        RefundQuery::parse(fields)
    }
}

#[tokio::test]
async fn killed_while_the_refund_is_in_flight_the_restart_completes_it_once() {
    let sim = spawn_sim().await;
    let mut app = spawn_app_process(&sim);
    app.login_as("admin", "admin-password").await;
    let token = app.create_order("9.00", "crash").await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    let s = app.wait_for_state(&token, "paid", WAIT).await;
    let order_no = s["order_no"].as_str().unwrap().to_string();
    let out_trade_no = s["out_trade_no"].as_str().unwrap().to_string();

    // The gateway is slow to answer: the refund is recorded, then the process dies.
    sim.set_faults("latency_ms=3000").await;
    let csrf = app.csrf().await;
    let request = {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!("/admin/orders/{order_no}/refunds")),
        );
        tokio::spawn(async move {
            let _ = http
                .post(url)
                .form(&[
                    ("amount", "9.00"),
                    ("confirm", "1"),
                    ("csrf_token", csrf.as_str()),
                ])
                .send()
                .await;
        })
    };
    app.wait_count(
        "the refund recorded",
        "SELECT COUNT(*) FROM refunds WHERE state = 'pending'",
        1,
        WAIT,
    )
    .await;
    let no: String = app
        .db()
        .query_row("SELECT out_refund_no FROM refunds", [], |r| r.get(0))
        .unwrap();
    app.restart();
    request.abort();
    sim.set_faults("").await;

    wait_refund(&app, &no, "succeeded").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds"), 1);
    let gateway = client(&sim.url, SignType::Md5);
    let at_gateway = gateway.call(&RefundsOfTrade(out_trade_no)).await.unwrap();
    assert_eq!(
        at_gateway.len(),
        1,
        "one refund at the gateway: {at_gateway:?}"
    );
    assert_eq!(
        at_gateway[0].out_refund_no, no,
        "sent again with the same number"
    );
    assert_eq!(at_gateway[0].status, RefundStatusV2::Success);
}

#[tokio::test]
async fn the_refunds_list_has_the_filters_of_admin() {
    let app = admin_app().await;
    let (tea, _) = paid_order(&app, "2.00").await;
    let (cake, _) = paid_order(&app, "3.00").await;
    let tea_refund = refund(&app, &tea, "1.00", "tea").await;
    let cake_refund = refund(&app, &cake, "2.00", "cake").await;
    let list = |q: String| {
        let app = &app;
        async move {
            app.page(&app.http, app.url(&format!("/admin/refunds?{q}")))
                .await
        }
    };
    let by_order = list(format!("q={tea}")).await;
    assert!(
        by_order.contains(&tea_refund) && !by_order.contains(&cake_refund),
        "{by_order}"
    );
    let by_number = list(format!("q={cake_refund}")).await;
    assert!(by_number.contains(&cake_refund) && !by_number.contains(&tea_refund));
    let long_ago = list("from=2020-01-01&to=2020-01-31".into()).await;
    assert!(!long_ago.contains(&tea_refund) && !long_ago.contains(&cake_refund));
    let flagged = list("flagged=1".into()).await;
    assert!(!flagged.contains(&tea_refund), "neither order is flagged");
}
