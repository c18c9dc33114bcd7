//! `static/` embedded in the binary, served with an ETag.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use md5::{Digest, Md5};

use super::respond::etag_response;

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "print.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/print.css"),
    ),
    (
        "print.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/print.js"),
    ),
    (
        "order.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/order.js"),
    ),
    (
        "counter.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/counter.js"),
    ),
    (
        "counter.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/counter.css"),
    ),
];

pub async fn serve(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some((_, mime, body)) = ASSETS.iter().find(|(name, _, _)| *name == path.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    let etag = format!("\"{}\"", hex::encode(&Md5::digest(body)[..8]));
    etag_response(&req, &etag, |mut ok| {
        ok.content_type(*mime)
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(*body)
    })
}
