//! Small response builders every handler shares.

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// `303 See Other` to `location`: the answer to a successful form (Post/Redirect/Get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// `see_other` that also sets (or, made a removal, clears) `cookie`: signing in and out.
pub fn see_other_with_cookie(location: &str, cookie: Cookie<'_>) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Whether the request already holds the representation tagged `etag`
/// (`If-None-Match` may list several tags).
fn fresh(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|e| e.trim() == etag))
}

/// `304 Not Modified` when the client's `If-None-Match` is `etag` (a quoted
/// entity tag); otherwise `ok` with the `ETag` added, for `ok` to finish with
/// its body. `ok` is only called when the body is wanted.
pub fn etag_response(
    req: &HttpRequest,
    etag: &str,
    ok: impl FnOnce(HttpResponseBuilder) -> HttpResponse,
) -> HttpResponse {
    if fresh(req, etag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish();
    }
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::ETAG, etag));
    ok(builder)
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn see_other_points_at_the_location() {
        let r = see_other("/o/abc");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers().get(header::LOCATION).unwrap(), "/o/abc");
        let r = see_other_with_cookie("/", Cookie::new("k", "v"));
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers().get(header::LOCATION).unwrap(), "/");
        assert_eq!(r.headers().get(header::SET_COOKIE).unwrap(), "k=v");
    }

    #[test]
    fn a_matching_etag_is_not_modified() {
        let tag = "\"abc\"";
        let body = |mut b: HttpResponseBuilder| b.body("x");
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, tag))
            .to_http_request();
        let r = etag_response(&req, tag, body);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers().get(header::ETAG).unwrap(), tag);

        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"other\""))
            .to_http_request();
        let r = etag_response(&req, tag, body);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers().get(header::ETAG).unwrap(), tag);
        let r = etag_response(&TestRequest::default().to_http_request(), tag, body);
        assert_eq!(r.status(), StatusCode::OK);

        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"other\", \"abc\""))
            .to_http_request();
        assert_eq!(
            etag_response(&req, tag, body).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
