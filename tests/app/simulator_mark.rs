//! Issue 14 item 4: in simulator mode every page says so; in live mode none does.

use crate::helpers::*;

const MARK: &str = "模拟支付 · SIMULATOR";

/// Every page of the app as `app`'s staff and customers see it: (what, body).
async fn every_page(app: &TestApp, admin_password: &str) -> Vec<(&'static str, String)> {
    let mut pages = vec![("login", app.page(&app.anonymous(), app.url("/login")).await)];
    app.login_as("admin", admin_password).await;
    pages.push(("checkout", app.page(&app.http, app.url("/")).await));
    let token = app.create_order("1.23", "mark").await;
    let order_no = app.status(&token).await["order_no"]
        .as_str()
        .unwrap()
        .to_string();
    let customer = app.anonymous();
    pages.push((
        "order",
        app.page(&customer, app.url(&format!("/o/{token}"))).await,
    ));
    pages.push((
        "print",
        app.page(&customer, app.url(&format!("/o/{token}/print")))
            .await,
    ));
    pages.push(("admin", app.page(&app.http, app.url("/admin")).await));
    pages.push((
        "admin order",
        app.page(&app.http, app.url(&format!("/admin/orders/{order_no}")))
            .await,
    ));
    let missing = app.get_anonymous("/o/no-such-order").await;
    assert_eq!(missing.status(), 404);
    pages.push(("error", missing.text().await.unwrap()));
    pages
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_of_the_simulator_says_so() {
    for language in [
        scanpay::config::Language::ZhCn,
        scanpay::config::Language::En,
    ] {
        let app = spawn_app_with(|s| s.shop.language = language).await;
        for (what, page) in every_page(&app, "admin").await {
            assert!(page.contains(MARK), "{language:?} {what} page:\n{page}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_live_page_carries_the_simulator_mark() {
    let sim = spawn_sim().await;
    let app = spawn_live_app(&sim.url, |_| {}).await;
    for (what, page) in every_page(&app, "admin-password").await {
        assert!(page.contains("<html"), "{what} is a page");
        assert!(!page.contains(MARK), "live {what} page:\n{page}");
        assert!(!page.contains("simulator-mark"), "live {what} page");
    }
}
