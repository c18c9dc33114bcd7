//! The outbound HTTP client both gateway protocols use: rustls with ring, a
//! request deadline, a short connect deadline, our user agent, and transport
//! errors described without the URL's query or anything secret.

use std::time::Duration;

use crate::base::cause::Failure;

/// Installs the process-wide TLS crypto provider once (reqwest is built without one).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client whose every request ends within `timeout`.
pub fn build(timeout: Duration) -> Result<reqwest::Client, Failure> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("scanpay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::because("cannot build the HTTP client", e.without_url()))
}

/// Percent-encodes `s` for a URL, keeping the unreserved characters and `keep`.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || keep.contains(&b)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What went wrong with a request, fit for a log line and a page.
pub fn describe(e: reqwest::Error) -> String {
    summary(&e.without_url())
}

/// The short description of an error whose URL is already removed.
fn summary(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

/// A request that got no usable answer: the short description (with the TLS
/// reason when there is one: a refused client certificate must say so, not
/// just "connection failed"), and the reqwest error behind it, its URL removed.
pub fn failure(e: reqwest::Error) -> Failure {
    // Without the URL, in the text and in the kept error: its query may carry
    // a token (a bill's download link).
    let e = e.without_url();
    let mut text = summary(&e);
    if let Some(tls) = tls_reason(&e) {
        text = format!("{text} (TLS: {tls})");
    }
    Failure::because(text, e)
}

fn tls_reason(e: &reqwest::Error) -> Option<String> {
    let mut tls = None;
    for c in crate::base::cause::levels(e).skip(1) {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            tls = Some(r.to_string());
        }
        let text = c.to_string();
        if tls.is_none() && (text.contains("certificate") || text.contains("alert")) {
            tls = Some(text);
        }
    }
    tls
}

/// A URL fit for a log or a page: scheme, host, port and path; no query
/// (a WeCom robot's `key`), no user or password.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let query = if u.query().is_some() { "?…" } else { "" };
            format!(
                "{}://{}{port}{}{query}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            )
        }
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_keys_and_passwords() {
        assert_eq!(
            redact_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET"),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?…"
        );
        assert_eq!(
            redact_url("http://u:p@127.0.0.1:8000/h"),
            "http://127.0.0.1:8000/h"
        );
    }
}
