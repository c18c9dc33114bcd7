//! Issue 14 item 8: `scanpay user disable|enable|role NAME` on a running shop.

use crate::helpers::*;

fn cli_ok(app: &TestApp, args: &[&str]) -> String {
    let out = run_cli(app.data_dir.path(), args, &[], "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn sign_in(app: &TestApp, client: &reqwest::Client, user: &str) -> u16 {
    client
        .post(app.url("/login"))
        .form(&[("username", user), ("password", user)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_user_is_signed_out_at_once_and_cannot_sign_in() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let checkout = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(checkout.status(), 200);

    cli_ok(&app, &["user", "disable", "cashier"]);
    let after = app.http.get(app.url("/")).send().await.unwrap();
    assert_is_redirect_to(&after, "/login?next=/");
    assert_eq!(sign_in(&app, &app.anonymous(), "cashier").await, 401);
    assert!(cli_ok(&app, &["user", "list"]).contains("cashier\tcashier\tdisabled\n"));

    cli_ok(&app, &["user", "enable", "cashier"]);
    assert_eq!(sign_in(&app, &app.http, "cashier").await, 303);
    assert_eq!(
        app.http.get(app.url("/")).send().await.unwrap().status(),
        200
    );

    let none = run_cli(app.data_dir.path(), &["user", "disable", "nobody"], &[], "");
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no user named"));
}

/// What the signed-in browser gets at `/admin`.
async fn admin_status(app: &TestApp) -> u16 {
    app.http
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_applies_to_open_sessions() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    assert_eq!(admin_status(&app).await, 403);
    cli_ok(&app, &["user", "role", "cashier", "admin"]);
    assert_eq!(admin_status(&app).await, 200);
    cli_ok(&app, &["user", "role", "cashier", "cashier"]);
    assert_eq!(admin_status(&app).await, 403);
    assert!(cli_ok(&app, &["user", "list"]).contains("cashier\tcashier\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_cannot_be_disabled_or_demoted() {
    let app = spawn_app().await;
    for args in [
        &["user", "disable", "admin"][..],
        &["user", "role", "admin", "cashier"],
    ] {
        let out = run_cli(app.data_dir.path(), args, &[], "");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("last admin") && err.contains("scanpay user role"),
            "{err}"
        );
    }
    assert_eq!(
        sign_in(&app, &app.http, "admin").await,
        303,
        "still an admin"
    );
    assert_eq!(admin_status(&app).await, 200);
    // With a second admin the first may go.
    cli_ok(&app, &["user", "role", "cashier", "admin"]);
    cli_ok(&app, &["user", "disable", "admin"]);
    assert_eq!(admin_status(&app).await, 303, "signed out at once");
}

/// Issue 19 item 6: a mistyped `--data-dir` creates nothing: every command
/// but `serve`, `restore` and the first `user add` needs a database there
/// and says where it looked.
#[test]
fn commands_on_a_mistyped_data_dir_create_no_database() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("dta");
    let copy = root.path().join("copy.sqlite3");
    let copy = copy.to_str().unwrap();
    for args in [
        &["user", "list"][..],
        &["user", "passwd", "admin"],
        &["user", "disable", "admin"],
        &["user", "enable", "admin"],
        &["user", "role", "admin", "cashier"],
        &["reconcile", "--date", "2026-12-01"],
        &["backup", copy],
    ] {
        // No stdin: each refuses before it reads a password.
        let out = run_cli(&typo, args, &[], "");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(said.contains("no database at"), "{args:?}: {said}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // `check` reads, and creates nothing either.
    run_cli(&typo, &["check"], &[], "");
    assert!(!typo.exists(), "check created {}", typo.display());
    // The first admin of a live install is what creates it, and it says so.
    let out = run_cli(
        &typo,
        &["user", "add", "boss", "--role", "admin"],
        &[],
        "a long enough password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("created a new database at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(typo.join(scanpay::store::DB_FILE).is_file());
}
