//! Issue 19, books that never lie: a refund the gateway carried out is never
//! booked as refused, and a double payment reads the same on the order page,
//! the admin, the CSV, the status JSON and the reconciliation.

use std::time::Duration;

use crate::helpers::*;
use crate::reconcile::{beijing_today, reconcile};
use crate::refunds::{paid_on_manual_clock, post_refund, refund, state_of, wait_refund};

const WAIT: Duration = Duration::from_secs(20);

/// A live app (manual clock) whose gateway is the simulator behind an
/// interposer that answers refunds and refund queries as `refunds` and
/// `queries` say; one order of ¥6.00 paid. The simulator's faults are then
/// `faults`.
struct Books {
    app: TestApp,
    sim: TestSim,
    _gate: Interposer,
    order_no: String,
    token: String,
}

async fn books(
    api: Api,
    faults: &str,
    refunds: &[Scripted],
    queries: &[Scripted],
    tweak: impl FnOnce(&mut scanpay::config::Settings),
) -> Books {
    let sim = spawn_sim().await;
    let gate = Interposer::start(api, &sim.url, refunds, queries).await;
    let app = spawn_live_app_on_manual_clock_on(api, &gate.url, tweak).await;
    app.login_as("admin", "admin-password").await;
    let token = app.create_order("6.00", "books").await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    let s = app.wait_for_state(&token, "paid", WAIT).await;
    sim.set_faults(faults).await;
    Books {
        order_no: s["order_no"].as_str().unwrap().to_string(),
        app,
        sim,
        _gate: gate,
        token,
    }
}

/// What the simulated gateway itself holds of refund `no` (its status).
fn at_sim(sim: &TestSim, no: &str) -> Option<String> {
    let ledger = sim.simulator.ledger();
    ledger
        .refunds
        .get(no)
        .map(|r| r.status.as_str().to_string())
}

/// Nothing is left to refund of the order: the smallest refund is refused.
async fn nothing_left(app: &TestApp, order_no: &str) {
    let csrf = app.csrf().await;
    let more = post_refund(
        app,
        &app.http,
        &csrf,
        order_no,
        &[("amount", "0.01"), ("confirm", "1")],
    )
    .await;
    assert_eq!(more.status(), 422, "the money is not offered again");
}

both!(a_refused_resend_after_a_lost_answer_asks_the_gateway_first);

async fn a_refused_resend_after_a_lost_answer_asks_the_gateway_first(api: Api) {
    let b = books(
        api,
        "drop_notify=1,refund_delay_ms=600000",
        &[Scripted::LoseAnswer, Scripted::RefuseNotEnough],
        &[],
        |_| {},
    )
    .await;
    let no = refund(&b.app, &b.order_no, "6.00", "").await;
    assert_eq!(state_of(&b.app, &no), "pending", "its answer was lost");
    assert_eq!(at_sim(&b.sim, &no).as_deref(), Some("PROCESSING"));

    // Sent again with the same number, and refused: the gateway is asked.
    b.app.advance(Duration::from_secs(3)).await;
    assert_eq!(
        state_of(&b.app, &no),
        "processing",
        "refused, but the gateway has it: it is followed, not failed"
    );
    assert_eq!(
        b.app
            .count("SELECT COUNT(*) FROM events WHERE kind = 'refund_failed'"),
        0
    );
    nothing_left(&b.app, &b.order_no).await;
}

both!(the_gateways_success_overrules_a_refund_booked_as_refused);

async fn the_gateways_success_overrules_a_refund_booked_as_refused(api: Api) {
    // The first copy is on its way (its answer lost); the resend is refused
    // and, asked at once, the gateway has not got the first copy yet.
    let b = books(
        api,
        "refund_delay_ms=3000",
        &[Scripted::LoseAnswer, Scripted::RefuseNotEnough],
        &[Scripted::NoSuchRefund],
        |_| {},
    )
    .await;
    let no = refund(&b.app, &b.order_no, "6.00", "").await;
    b.app.advance(Duration::from_secs(3)).await;
    assert_eq!(state_of(&b.app, &no), "failed", "refused, and none known");

    // The first copy is carried out and its SUCCESS notification arrives.
    wait_refund(&b.app, &no, "succeeded").await;
    let s = b.app.status(&b.token).await;
    assert_eq!(s["refunded_fen"], 600, "{s}");
    assert_eq!(
        b.app.count(&format!(
            "SELECT COUNT(*) FROM notifications WHERE outcome = 'refund {no}: failed → succeeded'"
        )),
        1,
        "acknowledged and applied, not dropped as a duplicate"
    );
    assert_eq!(
        b.app.count(&format!(
            "SELECT COUNT(*) FROM events WHERE kind = 'refund_corrected' AND detail LIKE '{no}:%'"
        )),
        1
    );
    let page = b
        .app
        .page(
            &b.app.http,
            b.app.url(&format!("/admin/orders/{}", b.order_no)),
        )
        .await;
    assert!(page.contains("refund_corrected"), "on the timeline: {page}");
    let customer = b
        .app
        .page(&b.app.anonymous(), b.app.url(&format!("/o/{}", b.token)))
        .await;
    assert!(customer.contains("已退款"), "{customer}");
    nothing_left(&b.app, &b.order_no).await;
}

both!(reconciliation_corrects_its_own_refund_instead_of_calling_it_foreign);

async fn reconciliation_corrects_its_own_refund_instead_of_calling_it_foreign(api: Api) {
    // As above, but no notification ever comes: only the bill tells.
    let b = books(
        api,
        "drop_notify=1,refund_delay_ms=0",
        &[Scripted::LoseAnswer, Scripted::RefuseNotEnough],
        &[Scripted::NoSuchRefund],
        |s| s.bill.fetch_at = "00:00".into(),
    )
    .await;
    let no = refund(&b.app, &b.order_no, "2.00", "").await;
    b.app.advance(Duration::from_secs(3)).await;
    assert_eq!(state_of(&b.app, &no), "failed");
    let start = std::time::Instant::now();
    while at_sim(&b.sim, &no).as_deref() != Some("SUCCESS") {
        assert!(start.elapsed() < WAIT, "the gateway never refunded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A day later (the app's clock) today's bill is due and reconciled.
    let today = beijing_today();
    b.app.advance(Duration::from_secs(24 * 3600)).await;
    b.app
        .wait_count(
            "today reconciled",
            &format!("SELECT COUNT(*) FROM bills WHERE day = '{today}'"),
            1,
            WAIT,
        )
        .await;
    let (state, error): (String, Option<String>) = b
        .app
        .db()
        .query_row("SELECT state, last_error FROM bills", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "matched", "{error:?}");
    assert_eq!(
        b.app.count("SELECT COUNT(*) FROM bill_differences"),
        0,
        "our own refund is not another system's"
    );
    assert_eq!(
        b.app.count(&format!(
            "SELECT COUNT(*) FROM bills WHERE day = '{today}' AND state = 'matched'"
        )),
        1
    );
    assert_eq!(state_of(&b.app, &no), "succeeded", "corrected by the bill");
    assert_eq!(
        b.app
            .count("SELECT COUNT(*) FROM events WHERE kind = 'refund_corrected'"),
        1
    );
    assert_eq!(b.app.status(&b.token).await["refunded_fen"], 200);
}

both!(a_resend_of_an_accepted_refund_is_answered_with_it_whatever_the_faults);

async fn a_resend_of_an_accepted_refund_is_answered_with_it_whatever_the_faults(api: Api) {
    let app = spawn_app_on_manual_clock(|s| s.wxpay.api = api).await;
    app.login_as("admin", "admin").await;
    let (order_no, _) = paid_on_manual_clock(&app, "2.00", "resent").await;

    // Accepted, but its answer cannot be believed.
    app.set_faults("bad_sign_rate=1,drop_notify=1,refund_delay_ms=600000")
        .await;
    let no = refund(&app, &order_no, "2.00", "").await;
    assert_eq!(state_of(&app, &no), "pending");
    // The same number again meets a gateway that would refuse a new refund.
    app.set_faults(
        "refund_systemerror_rate=1,refund_notenough_rate=1,drop_notify=1,refund_delay_ms=600000",
    )
    .await;
    app.advance(Duration::from_secs(3)).await;
    assert_eq!(
        state_of(&app, &no),
        "processing",
        "answered with the refund it accepted"
    );
}

both!(a_double_payment_reads_the_same_everywhere);

/// A ¥1.00 order paid twice took ¥2.00: the order page, the admin's totals,
/// rows and chart, the CSV, `/status` and the reconciliation all say so, and
/// each refund is held against what was paid.
async fn a_double_payment_reads_the_same_everywhere(api: Api) {
    // The gateway refuses to close young orders, so the superseded QR stays payable.
    let app = spawn_app_on_manual_clock(move |s| {
        s.wxpay.api = api;
        s.sim.min_close_age_secs = 300;
    })
    .await;
    app.login_as("admin", "admin").await;
    let token = app.create_order("1.00", "twice").await;
    let old_url = app.scan_qr(&token).await;
    app.advance(Duration::from_secs(300)).await;
    let new_url = app.scan_qr(&token).await;
    assert_eq!(app.pay(&old_url).await, 200);
    assert_eq!(app.pay(&new_url).await, 200);
    let s = app
        .wait_for(&token, "double_paid", WAIT, |s| s["double_paid"] == true)
        .await;
    let order_no = s["order_no"].as_str().unwrap().to_string();
    assert_eq!(
        (s["amount_fen"].clone(), s["paid_fen"].clone()),
        (100.into(), 200.into()),
        "{s}"
    );
    let totals = |gross: &str, refunded: &str, net: &str| {
        let app = &app;
        let want = [
            format!(r#"<strong id="filter-gross">{gross}</strong>"#),
            format!(r#"<strong id="filter-refunded">{refunded}</strong>"#),
            format!(r#"<strong id="filter-net">{net}</strong>"#),
            format!(r#"<td class="num">1</td><td class="num">{gross}</td>"#),
        ];
        async move {
            let admin = app.page(&app.http, app.url("/admin")).await;
            for w in &want {
                assert!(admin.contains(w.as_str()), "{w}: {admin}");
            }
        }
    };
    let csv_row = || {
        let app = &app;
        let order_no = order_no.clone();
        async move {
            let csv = app.page(&app.http, app.url("/admin/orders.csv")).await;
            let row = csv
                .lines()
                .find(|l| l.starts_with(&order_no))
                .unwrap()
                .to_string();
            let cells: Vec<String> = row.split(',').map(str::to_string).collect();
            (cells[2].clone(), cells[9].clone())
        }
    };
    totals("¥2.00", "¥0.00", "¥2.00").await;
    assert_eq!(csv_row().await, ("2.00".into(), "0.00".into()));

    // Only the second payment back: partly refunded, and its button is gone.
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    let form = &page[page.find(r#"id="refund-second""#).unwrap()..];
    let second_tx = hidden_value(form, "transaction_id").unwrap();
    let csrf = app.csrf().await;
    let fields = [
        ("amount", "1.00"),
        ("transaction_id", second_tx.as_str()),
        ("reason", "重复付款退款"),
    ];
    let confirm = post_refund(&app, &app.http, &csrf, &order_no, &fields).await;
    assert_eq!(confirm.status(), 200);
    let no = hidden_value(&confirm.text().await.unwrap(), "out_refund_no").unwrap();
    let mut confirmed = fields.to_vec();
    confirmed.extend([("out_refund_no", no.as_str()), ("confirm", "1")]);
    let done = post_refund(&app, &app.http, &csrf, &order_no, &confirmed).await;
    assert_eq!(done.status(), 303);
    wait_refund(&app, &no, "succeeded").await;
    let s = app.status(&token).await;
    assert_eq!(
        (s["refunded_fen"].clone(), s["paid_fen"].clone()),
        (100.into(), 200.into()),
        "{s}"
    );
    let customer = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(
        customer.contains(r#"id="refunded">部分退款<"#),
        "half of what was paid went back: {customer}"
    );
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(
        !page.contains(r#"id="refund-second""#),
        "nothing is left of the second payment: {page}"
    );
    assert!(page.contains("部分退款"), "{page}");

    // Then the first: everything paid went back.
    let first = refund(&app, &order_no, "1.00", "").await;
    wait_refund(&app, &first, "succeeded").await;
    let s = app.status(&token).await;
    assert_eq!(
        (s["refunded_fen"].clone(), s["paid_fen"].clone()),
        (200.into(), 200.into()),
        "{s}"
    );
    let customer = app
        .page(&app.anonymous(), app.url(&format!("/o/{token}")))
        .await;
    assert!(customer.contains(r#"id="refunded">已退款<"#), "{customer}");
    totals("¥2.00", "¥2.00", "¥0.00").await;
    assert_eq!(csv_row().await, ("2.00".into(), "2.00".into()));

    let (code, line) = reconcile(&app, api, &beijing_today()).await;
    assert_eq!(code, 0, "{line}");
    assert!(
        line.contains("2 payments 2.00 yuan, refunds 2.00 yuan"),
        "{line}"
    );
    let days = app.page(&app.http, app.url("/admin/reconciliation")).await;
    assert!(days.contains(r#"<td class="num">¥2.00</td>"#), "{days}");
}

both!(refund_refusals_read_in_chinese_on_a_chinese_page);

async fn refund_refusals_read_in_chinese_on_a_chinese_page(api: Api) {
    let app = crate::refunds::admin_app_on(api).await;
    let (order_no, _) = crate::refunds::paid_order(&app, "4.00").await;
    let csrf = app.csrf().await;
    let no = scanpay::values::trade::OutRefundNo::random().to_string();
    let form = |amount: &'static str| {
        [
            ("amount", amount),
            ("out_refund_no", no.as_str()),
            ("confirm", "1"),
        ]
    };
    let made = post_refund(&app, &app.http, &csrf, &order_no, &form("1.00")).await;
    assert_eq!(made.status(), 303);
    wait_refund(&app, &no, "succeeded").await;

    // The same number for another amount is not that refund.
    let other = post_refund(&app, &app.http, &csrf, &order_no, &form("2.00")).await;
    assert_eq!(other.status(), 422);
    let page = other.text().await.unwrap();
    assert!(
        page.contains("没有这笔退款") && !page.contains("No such refund"),
        "{page}"
    );
    // A refund that was not refused cannot be retried.
    let retry = app
        .http
        .post(app.url(&format!("/admin/orders/{order_no}/refunds/{no}/retry")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 400);
    let page = retry.text().await.unwrap();
    assert!(
        page.contains("不能重试") && !page.contains("cannot be retried"),
        "{page}"
    );
    // A refusal for want of balance is explained in Chinese.
    app.set_faults("refund_notenough_rate=1").await;
    let poor = refund(&app, &order_no, "1.00", "").await;
    assert_eq!(state_of(&app, &poor), "failed");
    let page = app
        .page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
        .await;
    assert!(
        page.contains(">商户账户余额不足，请充值后重试 (支付网关应答 "),
        "{page}"
    );
}
