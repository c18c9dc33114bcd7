//! `http.trusted_proxies`: forwarding headers are believed from a trusted peer
//! only, and the client they name is the one the rate limit, the gateway, the
//! notification log, the request log and the session cookie see.
//!
//! All of 127/8 is local, so a test client can come from 127.0.0.2 or
//! 127.0.0.3 (untrusted) or 127.0.0.1 (the trusted "proxy").

use std::net::IpAddr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::helpers::*;

/// A browser-like client (cookies on, redirects off) whose connections come
/// from `source` and carry `headers` on every request.
fn client_from(source: &str, headers: &[(&str, &str)]) -> reqwest::Client {
    scanpay::wxpay::v2::client::install_crypto_provider();
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn wrong_login(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.post(app.url("/login"))
        .form(&[("username", "admin"), ("password", "guess")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Fails to sign in until the limit answers 429 (at most 11 tries).
async fn exhaust_bucket(app: &TestApp, c: &reqwest::Client) {
    for _ in 0..11 {
        if wrong_login(app, c).await == 429 {
            return;
        }
    }
    panic!("the login limit never answered 429");
}

async fn sign_in(app: &TestApp, c: &reqwest::Client) -> reqwest::Response {
    let resp = c
        .post(app.url("/login"))
        .form(&[("username", "cashier"), ("password", "cashier")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "signed in");
    resp
}

fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("scanpay_session="))
        .expect("a session cookie")
}

async fn trusting_localhost() -> TestApp {
    spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.1".into()]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let app = trusting_localhost().await;
    let forged = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=198.51.100.1;proto=https"),
    ];
    let attacker = client_from("127.0.0.2", &forged);
    exhaust_bucket(&app, &attacker).await;

    // Naming someone else does not give the attacker a fresh bucket…
    let renamed = client_from("127.0.0.2", &[("x-forwarded-for", "203.0.113.77")]);
    assert_eq!(
        wrong_login(&app, &renamed).await,
        429,
        "the bucket is the peer's"
    );
    // …and the client it pretended to be is not locked out.
    let proxy = client_from("127.0.0.1", &[("x-forwarded-for", "203.0.113.9")]);
    assert_eq!(wrong_login(&app, &proxy).await, 401);
    // Another address has its own bucket.
    let other = client_from("127.0.0.3", &[]);
    assert_eq!(wrong_login(&app, &other).await, 401);

    // A claimed https makes neither a Secure cookie nor HSTS.
    let cashier = client_from("127.0.0.3", &forged);
    let resp = sign_in(&app, &cashier).await;
    let cookie = session_cookie(&resp);
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(resp.headers().get("strict-transport-security").is_none());

    // The gateway, the notification log and the request log see the peer.
    let resp = charge_at(&cashier, &app.base, "1.00", "x").await;
    assert_eq!(resp.status(), 303);
    let sent: String = app
        .db()
        .query_row("SELECT spbill_create_ip FROM qrs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sent, "127.0.0.3");
    let resp = attacker
        .post(app.url("/wxpay/notify"))
        .body("<xml><return_code>SUCCESS</return_code></xml>")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success() || resp.status().is_client_error());
    let logged: String = app
        .db()
        .query_row(
            "SELECT remote_addr FROM notifications ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, "127.0.0.2");
    assert!(!logs().contains("client_ip=198.51.100.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_names_the_client_and_its_scheme() {
    let app = trusting_localhost().await;
    // The proxy appended the real peer after whatever the client claimed.
    let via_proxy = |xff: &str| {
        client_from(
            "127.0.0.1",
            &[("x-forwarded-for", xff), ("x-forwarded-proto", "https")],
        )
    };
    exhaust_bucket(&app, &via_proxy("203.0.113.9")).await;
    assert_eq!(
        wrong_login(&app, &via_proxy("203.0.113.10")).await,
        401,
        "each client behind the proxy has its own bucket"
    );
    assert_eq!(
        wrong_login(&app, &via_proxy("203.0.113.10, 203.0.113.9")).await,
        429,
        "a forged left part does not pick the bucket"
    );
    // The proxy's own address is not locked by its clients either.
    assert_eq!(wrong_login(&app, &client_from("127.0.0.1", &[])).await, 401);

    // https at the proxy: a Secure cookie and HSTS.
    let cashier = via_proxy("2001:db8::7");
    let resp = sign_in(&app, &cashier).await;
    let cookie = session_cookie(&resp);
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // The order's gateway call carries the customer-side client, not the proxy.
    let resp = charge_at(&cashier, &app.base, "1.00", "x").await;
    assert_eq!(resp.status(), 303);
    let sent: String = app
        .db()
        .query_row("SELECT spbill_create_ip FROM qrs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sent, "2001:db8::7");

    // A notification relayed by the proxy is logged with the gateway's address.
    let gateway = client_from(
        "127.0.0.1",
        &[("forwarded", "for=\"[2001:db8::99]:443\";proto=https")],
    );
    gateway
        .post(app.url("/wxpay/notify"))
        .body("<xml><return_code>SUCCESS</return_code></xml>")
        .send()
        .await
        .unwrap();
    let logged: String = app
        .db()
        .query_row(
            "SELECT remote_addr FROM notifications ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, "2001:db8::99");
    assert!(logs().contains("client_ip=2001:db8::7"), "the request log");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_trusted_proxy_every_header_is_ignored() {
    let app = spawn_app().await;
    let c = client_from(
        "127.0.0.1",
        &[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-forwarded-proto", "https"),
        ],
    );
    exhaust_bucket(&app, &c).await;
    let other = client_from("127.0.0.1", &[("x-forwarded-for", "203.0.113.6")]);
    assert_eq!(wrong_login(&app, &other).await, 429, "one peer, one bucket");
    let resp = c.get(app.url("/login")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
}

/// What the gateway is told of the customer's address is the client the
/// trusted proxy named: v2's `spbill_create_ip`, v3's
/// `scene_info.payer_client_ip`, as the gateway (the simulator) received them.
async fn the_gateway_is_told_the_client_the_proxy_named(api: Api) {
    let sim = spawn_sim().await;
    let app = spawn_live_app_on(api, V3Keys::PublicKey, &sim.url, |s| {
        s.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let cashier = client_from("127.0.0.1", &[("x-forwarded-for", "203.0.113.9")]);
    let signed_in = cashier
        .post(app.url("/login"))
        .form(&[("username", "cashier"), ("password", "cashier-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let resp = charge_at(&cashier, &app.base, "1.00", "x").await;
    assert_eq!(resp.status(), 303);
    let seen: Vec<String> = sim
        .simulator
        .ledger()
        .orders()
        .map(|o| match &o.req.v3 {
            // v3's field as it was on the wire.
            Some(v3) => v3.request["scene_info"]["payer_client_ip"]
                .as_str()
                .unwrap_or("none")
                .to_string(),
            None => o.req.spbill_create_ip.clone(),
        })
        .collect();
    assert_eq!(seen, ["203.0.113.9"], "{api:?}");
}
both!(the_gateway_is_told_the_client_the_proxy_named);
