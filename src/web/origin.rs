//! Whether a state-changing post comes from our own pages (or from no browser
//! at all: the gateway, tests, curl). A page elsewhere must not make a
//! visitor's browser sign in, pay a simulated order or change faults.
//!
//! Browsers say where a request comes from in `Sec-Fetch-Site` (all current
//! ones) or `Origin`; a cross-site form can set neither.

use actix_web::HttpRequest;

pub fn same_origin(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let host = req.connection_info().host().to_string();
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with(headers: &[(&str, &str)]) -> bool {
        let mut r = TestRequest::post().insert_header(("host", "shop.example"));
        for h in headers {
            r = r.insert_header(*h);
        }
        same_origin(&r.to_http_request())
    }

    #[test]
    fn only_our_own_pages_or_no_browser_pass() {
        assert!(with(&[]), "no browser at all");
        assert!(with(&[("sec-fetch-site", "same-origin")]));
        assert!(with(&[("sec-fetch-site", "none")]), "typed or bookmarked");
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]), "a sibling host");
        assert!(with(&[("origin", "https://shop.example")]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("origin", "null")]), "a sandboxed or file page");
        assert!(
            !with(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://shop.example")
            ]),
            "the browser's own word wins"
        );
    }
}
