//! Issue 14 item 8: the login form cannot be posted from another site, and a
//! form posted after the session ended leads back to a page that exists.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn another_site_cannot_sign_a_browser_in() {
    let app = spawn_app().await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "null"),
    ] {
        let client = http();
        let resp = client
            .post(app.url("/login"))
            .header(name, value)
            .form(&[("username", "cashier"), ("password", "cashier")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}: {value}");
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "{name}: {value}"
        );
        let text = resp.text().await.unwrap();
        assert!(text.contains("其他网站"), "says why: {text}");
        // Nothing was signed in: the checkout still asks for a login.
        let home = client.get(app.url("/")).send().await.unwrap();
        assert_eq!(location(&home), "/login?next=/", "{name}: {value}");
    }
    // The site's own form still works, as browsers and scripts send it.
    let own_origin = app.url("").trim_end_matches('/').to_string();
    for headers in [
        vec![("sec-fetch-site", "same-origin".to_string())],
        vec![("origin", own_origin)],
        vec![],
    ] {
        let mut req = http()
            .post(app.url("/login"))
            .form(&[("username", "cashier"), ("password", "cashier")]);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 303, "{headers:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_posted_after_the_session_ended_leads_to_a_real_page() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("2.00", "").await;
    let csrf = app.csrf().await;
    // The session ends (another device signed out, or it expired)...
    let stranger = http();
    let order_page = app.url(&format!("/o/{token}"));
    let resp = stranger
        .post(app.url(&format!("/o/{token}/cancel")))
        .header("referer", &order_page)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    // ...so after signing in the cashier sees the order again, not a
    // POST-only address answered 404/405.
    assert_eq!(
        location(&resp),
        format!("/login?next=/o/{token}"),
        "back to the page the form was on"
    );
    let resp = stranger
        .post(app.url("/orders"))
        .form(&[("amount", "1.00"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&resp),
        "/login?next=/",
        "no referer: the start page"
    );
    let resp = stranger
        .post(app.url("/orders"))
        .header("referer", "https://evil.example/somewhere")
        .form(&[("amount", "1.00"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&resp),
        "/login?next=/",
        "a foreign referer is not followed"
    );
    // A page asked for by GET is still shown again after the login.
    let resp = stranger
        .get(app.url("/admin?day=2026-01-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/login?next=/admin%3Fday%3D2026-01-01");
    assert_eq!(
        app.status(&token).await["state"],
        "open",
        "nothing was cancelled"
    );
}
