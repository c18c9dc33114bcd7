//! Issue 12 item 5: the printed QR, honestly. A NATIVE code lives at most two
//! hours and scanpay replaces it when its screen life ends, so the paper says
//! until when it can be paid; an open print page never keeps offering a
//! replaced QR; once paid it prints a receipt.

use std::time::Duration;

use crate::helpers::*;

async fn print_page(app: &TestApp, token: &str) -> String {
    app.page(&app.anonymous(), app.url(&format!("/o/{token}/print")))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_paper_says_how_long_its_qr_can_be_paid_and_a_paid_order_prints_a_receipt() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("9.90", "").await;
    let page = print_page(&app, &token).await;
    assert!(page.contains("前可付款（约 5 分钟），之后作废"), "{page}");
    assert!(
        page.contains(r#"<meta http-equiv="refresh" content="302">"#),
        "the page reloads when its QR is replaced: {page}"
    );
    assert!(!page.contains("已作废。"), "the first QR replaced nothing");

    // Five minutes on, the QR is replaced (and the old one closed): the page
    // offers the new one and says an earlier paper is void.
    let first = app.status(&token).await["out_trade_no"].clone();
    app.advance(Duration::from_secs(301)).await;
    let s = app
        .wait_for(&token, "a new QR", Duration::from_secs(10), |s| {
            s["qr_state"] == "open" && s["out_trade_no"] != first
        })
        .await;
    let page = print_page(&app, &token).await;
    assert!(page.contains("v=2"), "the current QR: {page}");
    assert!(page.contains("这张纸上的二维码已作废。"), "{page}");
    assert_eq!(s["qr_version"], 2);

    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    let page = print_page(&app, &token).await;
    assert!(
        page.contains(r#"id="receipt""#) && page.contains("收款凭证"),
        "{page}"
    );
    let tx: String = app
        .db()
        .query_row(
            "SELECT transaction_id FROM orders WHERE token = ?1",
            [&token],
            |r| r.get(0),
        )
        .unwrap();
    assert!(page.contains(&tx), "the receipt names the payment: {page}");
    assert!(
        page.contains("微信支付") && page.contains("¥9.90"),
        "{page}"
    );
    assert!(
        !page.contains("qr.png") && !page.contains("http-equiv"),
        "no QR once paid: {page}"
    );
}
