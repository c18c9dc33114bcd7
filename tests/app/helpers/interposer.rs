//! A gateway in front of the simulator: passes everything on, but answers the
//! refund requests and queries its script names otherwise (a lost answer, a
//! refusal, "no such refund"), as a real gateway can.

use std::sync::Mutex;

use actix_web::{App, HttpResponse, HttpServer, web};
use scanpay::config::Api;
use scanpay::wxpay::v2::SignType;

use super::{demo_merchant, http};

/// What the gateway in front of the simulator does with the next refund
/// request or refund query; once its script is done it passes everything on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// Passed on (the simulator carries it out), but its answer is lost: a 502.
    LoseAnswer,
    /// Refused NOTENOUGH without being passed on, as a gateway that checks the
    /// balance before it looks the refund number up would.
    RefuseNotEnough,
    /// "No such refund" (the gateway has not got the copy still on its way).
    NoSuchRefund,
}

#[derive(Default)]
struct Script {
    refunds: std::collections::VecDeque<Scripted>,
    queries: std::collections::VecDeque<Scripted>,
}

/// The payment gateway as the app sees it: the simulator at `upstream`,
/// with the refund requests and queries the script names answered otherwise.
pub struct Interposer {
    /// Ends in `/`, like `TestSim::url`.
    pub url: String,
    handle: actix_web::dev::ServerHandle,
}

struct Passing {
    api: Api,
    upstream: String,
    script: Mutex<Script>,
    http: reqwest::Client,
}

impl Interposer {
    pub async fn start(
        api: Api,
        upstream: &str,
        refunds: &[Scripted],
        queries: &[Scripted],
    ) -> Interposer {
        let passing = web::Data::new(Passing {
            api,
            upstream: upstream.to_string(),
            script: Mutex::new(Script {
                refunds: refunds.iter().copied().collect(),
                queries: queries.iter().copied().collect(),
            }),
            http: http(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(passing.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(interpose))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}/", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Interposer { url, handle }
    }
}

impl Drop for Interposer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn interpose(
    req: actix_web::HttpRequest,
    body: web::Bytes,
    p: web::Data<Passing>,
) -> HttpResponse {
    let path = req.path();
    let post = req.method() == actix_web::http::Method::POST;
    let step = {
        let mut script = p.script.lock().unwrap();
        if path.ends_with("secapi/pay/refund") || (post && path == "/v3/refund/domestic/refunds") {
            script.refunds.pop_front()
        } else if path.ends_with("pay/refundquery")
            || (!post && path.starts_with("/v3/refund/domestic/refunds/"))
        {
            script.queries.pop_front()
        } else {
            None
        }
    };
    match step {
        Some(Scripted::RefuseNotEnough) => {
            return refusal(
                p.api,
                &body,
                "NOTENOUGH",
                "NOT_ENOUGH",
                403,
                "基本账户余额不足,请充值后重新发起",
            );
        }
        Some(Scripted::NoSuchRefund) => {
            return refusal(
                p.api,
                &body,
                "REFUNDNOTEXIST",
                "RESOURCE_NOT_EXISTS",
                404,
                "退款单不存在",
            );
        }
        Some(Scripted::LoseAnswer) | None => {}
    }
    let target = format!(
        "{}{}",
        p.upstream,
        req.uri()
            .path_and_query()
            .map_or("", |pq| pq.as_str())
            .trim_start_matches('/')
    );
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = p.http.request(method, target).body(body.to_vec());
    for (name, value) in req.headers() {
        // The Host header too: the gateway's links (a bill's download URL) name the interposer.
        if !matches!(name.as_str(), "content-length" | "connection") {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = out.send().await.unwrap();
    if step == Some(Scripted::LoseAnswer) {
        return HttpResponse::BadGateway().finish();
    }
    let mut back = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap(),
    );
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            back.insert_header((name.as_str(), value.as_bytes()));
        }
    }
    back.body(answer.bytes().await.unwrap())
}

/// The gateway's refusal, in `api`'s form (v2: signed with the demo key).
fn refusal(
    api: Api,
    request: &[u8],
    v2_code: &str,
    v3_code: &str,
    v3_status: u16,
    message: &str,
) -> HttpResponse {
    match api {
        Api::V2 => {
            use scanpay::wxpay::v2::{sign, xml};
            let asked = xml::from_xml(request).unwrap();
            let mut f = xml::Fields::new();
            f.set("return_code", "SUCCESS");
            f.set("return_msg", "OK");
            f.set("appid", asked.get("appid").unwrap_or(""));
            f.set("mch_id", asked.get("mch_id").unwrap_or(""));
            f.set("nonce_str", "interposed");
            f.set("result_code", "FAIL");
            f.set("err_code", v2_code);
            f.set("err_code_des", message);
            let sign_type = asked
                .non_empty("sign_type")
                .map_or(SignType::Md5, |s| s.parse().unwrap());
            sign::sign_fields(&mut f, &demo_merchant(sign_type).key, sign_type);
            HttpResponse::Ok()
                .content_type("text/xml; charset=utf-8")
                .body(xml::to_xml(&f))
        }
        Api::V3 => HttpResponse::build(actix_web::http::StatusCode::from_u16(v3_status).unwrap())
            .json(serde_json::json!({"code": v3_code, "message": message})),
    }
}
