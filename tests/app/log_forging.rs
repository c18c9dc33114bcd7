//! Issue 14 item 7: what a client types cannot forge a log line, and a password
//! typed into the name box is never logged.

use crate::helpers::*;

async fn failed_login(app: &TestApp, username: &str, password: &str) {
    let resp = app
        .anonymous()
        .post(app.url("/login"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "{username:?} does not sign in");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_name_cannot_forge_a_line_or_leak_a_password() {
    let app = spawn_app().await;
    let forged = "ghost-7f3a\n2026-12-01T00:00:00Z  INFO signed in username=admin-forged-7f3a";
    failed_login(&app, forged, "whatever").await;
    let password_like = "Tr0ub4dor&3-9c1e";
    failed_login(&app, password_like, "").await;
    failed_login(&app, "cashier", "wrong-password-5d2b").await;

    let log = logs();
    assert!(
        !log.lines().any(|l| l.contains("admin-forged-7f3a")),
        "no line of the log is the forged one:\n{log}"
    );
    assert!(!log.contains("ghost-7f3a"), "an unknown name is not logged");
    assert!(
        !log.contains(password_like),
        "a password typed as a name is not logged"
    );
    assert!(
        log.lines().any(
            |l| l.contains("login failed: no such user") && l.contains("unknown_name_chars=16")
        ),
        "the unknown name's length is:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("login failed: wrong password")
                && l.contains("username=\"cashier\"")),
        "an existing name is logged, quoted:\n{log}"
    );
    assert!(
        !log.contains("wrong-password-5d2b"),
        "no password is logged"
    );
}

/// Issue 19 item 6: a customer's order link is the key to their order: the
/// request log names the route, never the token.
#[tokio::test(flavor = "multi_thread")]
async fn order_tokens_stay_out_of_the_request_log() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("4.20", "").await;
    for path in ["", "/status", "/qr.png", "/print"] {
        let resp = app.get_anonymous(&format!("/o/{token}{path}")).await;
        assert_eq!(resp.status(), 200, "{path}");
    }
    let log = logs();
    assert!(log.contains("path=/o/…/qr.png"), "the requests are logged");
    assert!(!log.contains(&token), "but not the token");
}
