//! v3 trade bills: `tradebill` hands out a download URL for the day's bill,
//! and the download serves the file.

use actix_web::{HttpRequest, HttpResponse, web};
use jiff::Timestamp;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;

use super::{
    ApiError, BILL_DOWNLOAD_PATH, BILL_PATH, Simulator, json, param_error, verify_request,
};
use crate::base::lock::LockExt;

/// How many bill downloads are kept ready (a download URL lives minutes).
const BILLS_KEPT: usize = 32;

/// `GET /v3/bill/tradebill`: the day's bill from the ledger, kept under a
/// token; the answer names its download URL (on this simulator, wherever it
/// is mounted) and the SHA-1 of the uncompressed file.
pub(super) fn tradebill(
    sim: &Simulator,
    req: &HttpRequest,
    auth_mchid: &str,
) -> Result<(u16, Vec<u8>), ApiError> {
    #[derive(Deserialize)]
    struct Q {
        bill_date: Option<String>,
        bill_type: Option<String>,
        tar_type: Option<String>,
    }
    let q = web::Query::<Q>::from_query(req.query_string())
        .map_err(|_| param_error("查询参数格式错误"))?;
    let day: jiff::civil::Date = q
        .bill_date
        .as_deref()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| param_error("bill_date格式错误，应为yyyy-MM-DD"))?;
    if !matches!(q.bill_type.as_deref(), None | Some("ALL") | Some("SUCCESS")) {
        return Err(param_error("bill_type参数错误"));
    }
    let gzip = match q.tar_type.as_deref() {
        None => false,
        Some("GZIP") => true,
        Some(_) => return Err(param_error("tar_type参数错误")),
    };
    let today = Timestamp::now()
        .to_zoned(crate::wxpay::bill::beijing())
        .date();
    if day > today {
        return Err(ApiError::new(
            400,
            "STATEMENT_CREATING",
            "账单生成中，请稍后再试",
        ));
    }
    let v3 = sim.v3();
    let bill = crate::sim::bill::day_bill(
        &sim.ledger(),
        crate::sim::bill::BillOf::V3 { mchid: auth_mchid },
        &v3.merchant.appid,
        auth_mchid,
        day,
        &sim.faults(),
    );
    if bill.rows.is_empty() {
        return Err(ApiError::new(400, "NO_STATEMENT_EXIST", "账单文件不存在"));
    }
    let text = crate::wxpay::bill::render(&bill);
    let file = if gzip {
        crate::base::gzip::gzip(text.as_bytes())
    } else {
        text.clone().into_bytes()
    };
    let token = Alphanumeric.sample_string(&mut rand::rng(), 24);
    {
        let mut kept = v3.bills.lock_or_recover();
        kept.push_back((token.clone(), file));
        while kept.len() > BILLS_KEPT {
            kept.pop_front();
        }
    }
    let info = req.connection_info();
    let prefix = req.path().strip_suffix(BILL_PATH).unwrap_or("");
    let answer = crate::wxpay::v3::bill::TradeBill {
        hash_type: "SHA1".into(),
        hash_value: crate::wxpay::v3::bill::sha1_hex(text.as_bytes()),
        download_url: format!(
            "{}://{}{prefix}{BILL_DOWNLOAD_PATH}?token={token}",
            info.scheme(),
            info.host()
        ),
    };
    Ok((200, json(&answer)?))
}

/// `GET {download_url}`: the file, after the request's signature is checked;
/// the answer is not signed (as WeChat Pay's is not).
pub(super) async fn download_bill(req: HttpRequest, sim: web::Data<Simulator>) -> HttpResponse {
    let v3 = sim.v3();
    if let Err(e) = verify_request(v3, &req, b"", Timestamp::now()) {
        return e.response();
    }
    #[derive(Deserialize)]
    struct Q {
        token: String,
    }
    let Ok(q) = web::Query::<Q>::from_query(req.query_string()) else {
        return param_error("缺少参数token").response();
    };
    let file = v3
        .bills
        .lock_or_recover()
        .iter()
        .find(|(t, _)| *t == q.token)
        .map(|(_, f)| f.clone());
    match file {
        Some(f) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(f),
        None => ApiError::new(400, "INVALID_REQUEST", "下载链接已过期").response(),
    }
}
