//! The checks of reachability: notify_url from the internet, and the
//! gateway's clock against ours.

use super::*;

/// The gateway must reach `notify_url` over https from the internet.
pub fn notify_url(url: &str) -> Outcome {
    let check = "notify_url";
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Outcome::new(Status::Fail, check, format!("{url}: not a URL ({e})")),
    };
    let mut problems = Vec::new();
    if parsed.scheme() != "https" {
        problems.push("not https: the real gateway only notifies https URLs".to_string());
    }
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) if !is_public(ip) => problems.push(format!("{ip} is not a public address")),
        Ok(_) => {}
        Err(_) => {
            if host == "localhost"
                || host.ends_with(".localhost")
                || host.ends_with(".local")
                || host.ends_with(".internal")
                || !host.contains('.')
            {
                problems.push(format!("{host} is not a public name"));
            }
        }
    }
    if problems.is_empty() {
        Outcome::new(Status::Pass, check, format!("{url} (https, public)"))
    } else {
        Outcome::new(
            Status::Warn,
            check,
            format!(
                "{url}: {}; WeChat Pay cannot notify it (payments still arrive by polling)",
                problems.join(", ")
            ),
        )
    }
}

pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

/// The gateway's clock, from the `Date` header of any answer at its root.
pub(super) async fn clock(gateway: &str, timeout: Duration) -> Outcome {
    let check = "clock";
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return Outcome::new(Status::Skip, check, format!("not checked: {e}")),
    };
    let date = match http.get(gateway).send().await {
        Ok(resp) => resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .map(str::to_string),
        Err(_) => None,
    };
    match date {
        Some(d) => clock_outcome(&d, jiff::Timestamp::now()),
        None => Outcome::new(
            Status::Skip,
            check,
            "not checked: the gateway's answer has no Date header",
        ),
    }
}

/// Compares the gateway's `Date` with `now`.
pub fn clock_outcome(date: &str, now: jiff::Timestamp) -> Outcome {
    let check = "clock";
    let theirs = match jiff::fmt::rfc2822::parse(date) {
        Ok(z) => z.timestamp(),
        Err(_) => {
            return Outcome::new(
                Status::Skip,
                check,
                format!("not checked: cannot read the gateway's Date {date:?}"),
            );
        }
    };
    let skew_ms = (now.as_millisecond() - theirs.as_millisecond()).unsigned_abs();
    let skew = Duration::from_millis(skew_ms);
    // The header has whole seconds: under two seconds is agreement.
    if skew > MAX_CLOCK_SKEW {
        let ahead = if now > theirs { "ahead of" } else { "behind" };
        Outcome::new(
            Status::Warn,
            check,
            format!(
                "this clock is {}s {ahead} the gateway's: set up time sync (e.g. systemd-timesyncd)",
                skew.as_secs()
            ),
        )
    } else {
        Outcome::new(
            Status::Pass,
            check,
            format!("within {}s of the gateway's", skew.as_secs().max(1)),
        )
    }
}
