//! The browsers: HTTP clients, signing in, the checkout form, reading pages.

use super::*;

pub fn http() -> reqwest::Client {
    scanpay::wxpay::v2::client::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The body of `GET url` (a page of the simulator's phone, say).
pub async fn get_text(url: &str) -> String {
    http().get(url).send().await.unwrap().text().await.unwrap()
}

/// A browser on the loopback address `from` (all of 127.0.0.0/8 is this
/// machine), keeping its cookies, not following redirects, and taking any TLS
/// certificate (the proxy test's is self-signed).
pub fn http_from(from: std::net::IpAddr) -> reqwest::Client {
    scanpay::wxpay::v2::client::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(from)
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Where a 303 sends the browser.
pub fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 303, "a redirect");
    resp.headers()["location"].to_str().unwrap().to_string()
}

pub fn assert_is_redirect_to(resp: &reqwest::Response, location: &str) {
    assert_eq!(resp.status(), 303, "a redirect to {location}");
    assert_eq!(resp.headers()["location"], location);
}

/// Signs `client` in at `base` as `user` (the answer must be the 303 of a sign-in).
pub async fn sign_in_at(client: &reqwest::Client, base: &str, user: &str, password: &str) {
    let resp = post_login(client, base, user, password, &[]).await;
    assert_eq!(resp.status(), 303, "login as {user}");
}

/// `POST {base}/login` as `client` with extra request `headers`: the answer,
/// whatever it is.
pub async fn post_login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/login"))
        .form(&[("username", user), ("password", password)]);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.send().await.unwrap()
}

/// Charges `amount` at `base` as `client` (signed in): the new order's token.
pub async fn order_at(
    client: &reqwest::Client,
    base: &str,
    amount: &str,
    description: &str,
) -> String {
    let resp = charge_at(client, base, amount, description).await;
    location(&resp)
        .strip_prefix("/o/")
        .expect("redirect to /o/{token}")
        .to_string()
}

/// The CSRF token of the checkout form at `base` (`client` signed in).
pub async fn csrf_at(client: &reqwest::Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_value(&page, "csrf_token").unwrap_or_else(|| panic!("no checkout form at {base}/"))
}

/// Charges `amount` from the checkout form at `base` as `client`; the answer
/// (a 303 to the order's page when it worked).
pub async fn charge_at(
    client: &reqwest::Client,
    base: &str,
    amount: &str,
    description: &str,
) -> reqwest::Response {
    let csrf = csrf_at(client, base).await;
    client
        .post(format!("{base}/orders"))
        .form(&[
            ("amount", amount),
            ("description", description),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

/// Pairs a customer display at `base` for `client`'s signed-in user; its token.
pub async fn pair_display_at(client: &reqwest::Client, base: &str) -> String {
    let resp = post_csrf_at(client, base, "/display").await;
    assert_eq!(resp.status(), 200, "paired at {base}");
    display_token_in(&resp.text().await.unwrap())
}

/// `POST {base}{path}` with nothing but the checkout form's CSRF token (a
/// pairing, a revocation): the answer.
pub async fn post_csrf_at(client: &reqwest::Client, base: &str, path: &str) -> reqwest::Response {
    let csrf = csrf_at(client, base).await;
    client
        .post(format!("{base}{path}"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

/// The display token in a pairing page's `/display/{token}` link.
pub fn display_token_in(html: &str) -> String {
    let at = html.find("/display/").expect("the display link") + "/display/".len();
    let token: String = html[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 32, "a 128-bit token: {token}");
    token
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

pub fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    grids[0].decode().unwrap().1
}

impl TestApp {
    pub async fn login_as(&self, user: &str, password: &str) {
        sign_in_at(&self.http, &self.base, user, password).await;
    }

    /// Another browser (a second member of staff, a second tab), signed in as `user`.
    pub async fn signed_in(&self, user: &str, password: &str) -> reqwest::Client {
        let browser = self.anonymous();
        sign_in_at(&browser, &self.base, user, password).await;
        browser
    }

    /// The CSRF token of the signed-in session, read from the checkout form.
    pub async fn csrf(&self) -> String {
        let page = self.page(&self.http, self.url("/")).await;
        hidden_value(&page, "csrf_token").expect("checkout form carries a csrf_token")
    }

    pub async fn post_order(&self, amount: &str, description: &str) -> reqwest::Response {
        charge_at(&self.http, &self.base, amount, description).await
    }

    /// Creates an order as the signed-in user and returns its token.
    pub async fn create_order(&self, amount: &str, description: &str) -> String {
        order_at(&self.http, &self.base, amount, description).await
    }

    /// `POST /o/{token}/ACTION` (cancel, retry) with the session's CSRF token.
    pub async fn post_action(&self, token: &str, action: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.http
            .post(self.url(&format!("/o/{token}/{action}")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// The body of `GET url` as `client` sees it.
    pub async fn page(&self, client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
        client.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// `GET path` as the customer (no cookies).
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.anonymous().get(self.url(path)).send().await.unwrap()
    }

    pub async fn status(&self, token: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(self.url(&format!("/o/{token}/status")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// The order's `out_trade_no` (of its current QR), from its status.
    pub async fn out_trade_no(&self, token: &str) -> String {
        self.status(token).await["out_trade_no"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Reads the QR image the customer sees and decodes it like a phone would.
    pub async fn scan_qr(&self, token: &str) -> String {
        let resp = self.get_anonymous(&format!("/o/{token}/qr.png")).await;
        assert_eq!(resp.status(), 200, "QR image");
        assert_eq!(resp.headers()["content-type"], "image/png");
        decode_qr(&resp.bytes().await.unwrap())
    }

    /// The customer scans the order's QR and pays it on the simulator's phone.
    pub async fn scan_and_pay(&self, token: &str) -> String {
        let code_url = self.scan_qr(token).await;
        assert_eq!(self.pay(&code_url).await, 200, "paying {code_url}");
        code_url
    }

    /// The customer pays `code_url` on the simulator's phone; returns the HTTP status.
    pub async fn pay(&self, code_url: &str) -> u16 {
        pay_on(&self.url("/sim/"), code_url).await
    }

    pub async fn set_faults(&self, faults: &str) {
        set_faults_on(&self.url("/sim/"), faults).await;
    }

    /// A client with no cookies (the customer, or an attacker).
    pub fn anonymous(&self) -> reqwest::Client {
        http()
    }
}
