//! Issue 19 item 6: signed notifications that still must not be believed as
//! they stand — another currency, a `TRANSACTION.*` event other than
//! success, an absurd time of payment, and a refund notice about another
//! payment than the refund's.

use scanpay::values::money::Fen;
use scanpay::wxpay::v2::refund::{RefundInfo, RefundStatusV2, build_notification};
use scanpay::wxpay::v2::{SignType, xml};

use crate::helpers::*;
use crate::refunds::{paid_order, refund};

both!(a_notification_in_another_currency_pays_nothing);
both!(an_absurd_time_of_payment_is_not_kept);
both!(a_refund_notice_about_another_payment_settles_nothing);

/// A paid notification for `out_trade_no` in `api`'s form, with `currency`
/// and `paid_at` (v2 `yyyyMMddHHmmss` Beijing / v3 RFC 3339): (status, body).
async fn notify_paid(
    app: &TestApp,
    api: Api,
    out_trade_no: &str,
    fen: i64,
    tx: &str,
    currency: &str,
    paid_at: jiff::Timestamp,
) -> (u16, String) {
    match api {
        Api::V2 => {
            let m = demo_merchant(SignType::Md5);
            let notice = scanpay::wxpay::v2::notify::PaymentNotice {
                out_trade_no: scanpay::wxpay::v2::OutTradeNo::new(out_trade_no).unwrap(),
                transaction_id: tx.into(),
                total_fee: Fen::new(fen),
                openid: Some("oUpF8uTEST".into()),
                time_end: Some(
                    paid_at
                        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
                        .strftime("%Y%m%d%H%M%S")
                        .to_string(),
                ),
                bank_type: None,
            };
            let mut f = scanpay::wxpay::v2::notify::build(&notice, &m, m.sign_type, "n", None);
            f.set("fee_type", currency);
            f.remove("sign");
            scanpay::wxpay::v2::sign::sign_fields(&mut f, &m.key, m.sign_type);
            app.notify(xml::to_xml(&f)).await
        }
        Api::V3 => {
            let mut body = v3_paid(out_trade_no, fen, tx);
            body["amount"]["currency"] = currency.into();
            body["success_time"] = paid_at
                .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
                .into();
            let now = jiff::Timestamp::now().as_second();
            let (b, h) = v3_notification(&format!("EV-{tx}"), &body, DEMO_V3_APIV3_KEY, now);
            app.notify_v3(&b, &h).await
        }
    }
}

fn accepted(api: Api, (status, body): &(u16, String)) -> bool {
    match api {
        Api::V2 => *status == 200 && body.contains("SUCCESS"),
        Api::V3 => matches!(status, 200 | 204),
    }
}

async fn open_order(app: &TestApp, amount: &str) -> (String, String) {
    let token = app.create_order(amount, "").await;
    let out_trade_no = app.out_trade_no(&token).await;
    (token, out_trade_no)
}

async fn a_notification_in_another_currency_pays_nothing(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    let (token, out_trade_no) = open_order(&app, "1.00").await;
    let now = jiff::Timestamp::now();
    for currency in ["USD", "HKD", "cny"] {
        let answer = notify_paid(
            &app,
            api,
            &out_trade_no,
            100,
            "4200000001202612010001",
            currency,
            now,
        )
        .await;
        assert!(!accepted(api, &answer), "{currency}: {answer:?}");
    }
    assert_eq!(app.status(&token).await["state"], "open");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 0);
    // The same in CNY pays.
    let answer = notify_paid(
        &app,
        api,
        &out_trade_no,
        100,
        "4200000001202612010002",
        "CNY",
        now,
    )
    .await;
    assert!(accepted(api, &answer), "{answer:?}");
    assert_eq!(app.status(&token).await["state"], "paid");
}

async fn an_absurd_time_of_payment_is_not_kept(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    let now = jiff::Timestamp::now();
    let cases = [
        ("2099-12-31T12:00:00Z", false),
        ("2001-01-01T12:00:00Z", false),
        // Paid a day before its QR existed.
        (
            &*(now - jiff::SignedDuration::from_hours(24)).to_string(),
            false,
        ),
        (&*now.to_string(), true),
    ];
    for (i, (at, kept)) in cases.iter().enumerate() {
        let (token, out_trade_no) = open_order(&app, "2.00").await;
        let tx = format!("42000000012026120200{i:02}");
        let answer = notify_paid(
            &app,
            api,
            &out_trade_no,
            200,
            &tx,
            "CNY",
            at.parse().unwrap(),
        )
        .await;
        // The money is real whatever the time says.
        assert!(accepted(api, &answer), "{at}: {answer:?}");
        assert_eq!(app.status(&token).await["state"], "paid", "{at}");
        let stored: Option<i64> = app
            .db()
            .query_row(
                "SELECT gateway_paid_at FROM payments WHERE transaction_id = ?1",
                [&tx],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored.is_some(), *kept, "{at}: {stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_transaction_success_event_pays() {
    let app = spawn_app_on(Api::V3, |_| {}).await;
    app.login_as("cashier", "cashier").await;
    let (token, out_trade_no) = open_order(&app, "3.00").await;
    let body = v3_paid(&out_trade_no, 300, "4200000001202612030001");
    let now = jiff::Timestamp::now().as_second();
    for (i, event) in [
        "TRANSACTION.CLOSED",
        "TRANSACTION.PAYERROR",
        "TRANSACTION.X",
    ]
    .iter()
    .enumerate()
    {
        let (b, h) = v3_notification_of(event, &format!("EV-T{i}"), &body, DEMO_V3_APIV3_KEY, now);
        app.notify_v3(&b, &h).await;
        assert_eq!(app.status(&token).await["state"], "open", "{event}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM payments"), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE outcome LIKE '%not applied: event TRANSACTION.%'"),
        3
    );
}

async fn a_refund_notice_about_another_payment_settles_nothing(api: Api) {
    let app = spawn_app_on(api, |_| {}).await;
    app.login_as("admin", "admin").await;
    // The simulator keeps the refund processing and says nothing: every
    // notice here is ours to send.
    let (order_no, token) = paid_order(&app, "5.00").await;
    app.set_faults("drop_notify=1,refund_delay_ms=600000").await;
    let out_trade_no = app.out_trade_no(&token).await;
    let transaction_id: String = app
        .db()
        .query_row("SELECT transaction_id FROM payments", [], |r| r.get(0))
        .unwrap();
    let no = refund(&app, &order_no, "1.00", "").await;
    let state = |app: &TestApp| -> String {
        app.db()
            .query_row(
                "SELECT state FROM refunds WHERE out_refund_no = ?1",
                [&no],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(state(&app), "processing");
    let other_tx = "4200000001209912310001";
    for (trade, tx, ours) in [
        ("SP-SOMEONE-ELSES", transaction_id.as_str(), false),
        (out_trade_no.as_str(), other_tx, false),
        (out_trade_no.as_str(), transaction_id.as_str(), true),
    ] {
        let ok = refund_notice(&app, api, &no, trade, tx, 100).await;
        assert_eq!(ok, ours, "{trade} / {tx}");
        let want = if ours { "succeeded" } else { "processing" };
        assert_eq!(state(&app), want, "{trade} / {tx}");
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM notifications WHERE outcome LIKE 'refused: refund % is of %'"
        ),
        2
    );
}

/// A SUCCESS notice for refund `no` naming `out_trade_no` and `transaction_id`: acknowledged?
async fn refund_notice(
    app: &TestApp,
    api: Api,
    no: &str,
    out_trade_no: &str,
    transaction_id: &str,
    fee: i64,
) -> bool {
    match api {
        Api::V2 => {
            let info = RefundInfo {
                out_refund_no: no.into(),
                out_trade_no: Some(out_trade_no.into()),
                transaction_id: Some(transaction_id.into()),
                refund_id: Some("50000000000000000001".into()),
                refund_fee: Some(Fen::new(fee)),
                status: RefundStatusV2::parse("SUCCESS"),
                account: Some("支付用户零钱".into()),
                success_time: None,
            };
            let body = xml::to_xml(&build_notification(
                &info,
                &demo_merchant(SignType::Md5),
                "n",
            ));
            let resp = app
                .anonymous()
                .post(app.url("/wxpay/refund-notify"))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            status == 200 && resp.text().await.unwrap().contains("SUCCESS")
        }
        Api::V3 => {
            let now = jiff::Timestamp::now().as_second();
            let notice = serde_json::json!({"mchid": DEMO_V3_MCH_ID, "out_trade_no": out_trade_no,
                "transaction_id": transaction_id,
                "refund_id": "50000000000000000001", "out_refund_no": no, "refund_status": "SUCCESS",
                "user_received_account": "支付用户零钱",
                "amount": {"total": 500, "refund": fee, "payer_total": 500, "payer_refund": fee}});
            let id = format!("EV-R-{out_trade_no}-{transaction_id}");
            let (body, _) = v3_notification(&id, &notice, DEMO_V3_APIV3_KEY, now);
            let mut env: serde_json::Value = serde_json::from_slice(&body).unwrap();
            env["event_type"] = "REFUND.SUCCESS".into();
            let body = serde_json::to_vec(&env).unwrap();
            let (status, _) = app.notify_v3(&body, &sign_v3(&body, now)).await;
            matches!(status, 200 | 204)
        }
    }
}
