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

/// Issue 19 item 4: wrong guesses against `admin` from many addresses at once
/// (all of 127.0.0.0/8 is this machine). The account's budget for strangers
/// caps the password checks; staff keep signing in from their own addresses
/// and browsers, and a cashier from a new address too, all through the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_burst_over_many_addresses_checks_few_passwords_and_locks_no_staff_out() {
    let app = spawn_app().await;
    let base = app.url("").trim_end_matches('/').to_string();
    // Staff who signed in before, each from their own address.
    let admin_at = std::net::IpAddr::from([127, 0, 0, 10]);
    let cashier_at = std::net::IpAddr::from([127, 0, 0, 11]);
    sign_in_at(&http_from(admin_at), &base, "admin", "admin").await;
    sign_in_at(&http_from(cashier_at), &base, "cashier", "cashier").await;

    let stop = tokio_util::sync::CancellationToken::new();
    let burst = {
        let (base, stop) = (base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = std::collections::HashMap::<u16, usize>::new();
            // Waves of 100 addresses at once, a new 127.1.x.y for each guess.
            for wave in 0..10u32 {
                let guesses = (0..100u32).map(|i| {
                    let n = wave * 100 + i;
                    let ip = std::net::IpAddr::from([127, 1, (n >> 8) as u8, n as u8]);
                    let base = base.clone();
                    async move {
                        http_from(ip)
                            .post(format!("{base}/login"))
                            .form(&[("username", "admin"), ("password", "guess")])
                            .send()
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0)
                    }
                });
                for s in futures_util::future::join_all(guesses).await {
                    *statuses.entry(s).or_default() += 1;
                }
                if stop.is_cancelled() {
                    break;
                }
            }
            statuses
        })
    };
    // Eight staff sign-ins during the burst, from their own addresses, and
    // a cashier from an address never seen: none is refused.
    let mut staff = Vec::new();
    for i in 0..8 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (who, at) = match i % 3 {
            0 => ("admin", admin_at),
            1 => ("cashier", cashier_at),
            _ => ("cashier", std::net::IpAddr::from([127, 0, 1, i as u8])),
        };
        let resp = http_from(at)
            .post(format!("{base}/login"))
            .form(&[("username", who), ("password", who)])
            .send()
            .await
            .unwrap();
        staff.push((who, at, resp.status().as_u16()));
    }
    stop.cancel();
    let statuses = burst.await.unwrap();
    eprintln!("burst answers: {statuses:?}; staff: {staff:?}");
    assert!(
        staff.iter().all(|(_, _, s)| *s == 303),
        "every staff sign-in got through: {staff:?}"
    );
    // 401 is a password checked and wrong; the rest were refused unchecked.
    // Guesses one at a time from yet more addresses spend what is left of
    // the account's budget: then every stranger is refused unchecked.
    let mut checked = statuses.get(&401).copied().unwrap_or(0);
    for n in 0..=20u8 {
        let status = http_from(std::net::IpAddr::from([127, 2, 0, n]))
            .post(format!("{base}/login"))
            .form(&[("username", "admin"), ("password", "guess")])
            .send()
            .await
            .unwrap()
            .status();
        match status.as_u16() {
            401 => checked += 1,
            429 => break,
            other => panic!("a guess answered {other}"),
        }
    }
    assert!(
        checked <= 20,
        "{checked} passwords checked against admin: {statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    // A browser that signed in before gets in from anywhere by its device
    // cookie; without it, a new address waits until the burst's window ends.
    let signed_in = http_from(admin_at)
        .post(format!("{base}/login"))
        .form(&[("username", "admin"), ("password", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let device = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("scanpay_device="))
        .and_then(|c| c.split(';').next())
        .expect("a device cookie")
        .to_string();
    let roaming = std::net::IpAddr::from([127, 0, 2, 1]);
    let try_from_roaming = |cookie: Option<String>| {
        let mut req = http_from(roaming)
            .post(format!("{base}/login"))
            .form(&[("username", "admin"), ("password", "admin")]);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("scanpay_device={c}"));
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        try_from_roaming(None).await,
        429,
        "a stranger waits out the burst"
    );
    assert_eq!(
        try_from_roaming(Some("not-a-device-we-issued".into())).await,
        429
    );
    assert_eq!(
        try_from_roaming(Some(device)).await,
        303,
        "the known browser"
    );
}
