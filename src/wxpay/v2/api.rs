//! Each endpoint as pure steps: request → fields, and the checked answer → typed result.
//! No network here; `client.rs` adds the transport.

use jiff::Timestamp;

use super::sign::{self, SignError};
use super::types::{ApiKey, ErrCode, OutTradeNo, SignType, TradeState, format_time};
use super::xml::Fields;
use crate::base::cause::Failure;
use crate::values::money::Fen;

/// Who we are at the gateway.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub appid: String,
    pub mch_id: String,
    pub key: ApiKey,
    pub sign_type: SignType,
}

impl Merchant {
    /// Whether a message names this merchant (its appid and mch_id), the check
    /// every signed message gets, whichever way it travels.
    pub fn named_in(&self, fields: &Fields) -> bool {
        fields.get("appid") == Some(self.appid.as_str())
            && fields.get("mch_id") == Some(self.mch_id.as_str())
    }
}

/// Why a call did not produce a result, kept at the protocol's three levels
/// plus "the answer could not be believed".
#[derive(Debug, thiserror::Error)]
pub enum WxPayError {
    /// No usable HTTP answer: connection, timeout, non-200 status. The
    /// reqwest error, if one is behind it, is its source.
    #[error("could not reach the payment gateway: {0}")]
    Transport(#[source] Failure),
    /// An answer came but cannot be believed: not XML, bad signature, other
    /// merchant. The XML or signature error, if one is behind it, is its source.
    #[error("the payment gateway's answer was not valid: {0}")]
    BadResponse(#[source] Failure),
    /// `return_code=FAIL`: the request itself was refused (signature, parameters).
    #[error("the payment gateway refused the request: {return_msg}")]
    Protocol { return_msg: String },
    /// `result_code=FAIL`: the business operation failed with `err_code`.
    #[error("the payment gateway answered {code}: {description}")]
    Business { code: ErrCode, description: String },
    /// The call needs the merchant's API certificate, and none is configured.
    #[error(
        "refunds need the merchant's API certificate: set wxpay.client_cert_file and wxpay.client_key_file (apiclient_cert.pem and apiclient_key.pem from the merchant platform)"
    )]
    NoClientCertificate,
}

impl WxPayError {
    pub fn err_code(&self) -> Option<&ErrCode> {
        match self {
            WxPayError::Business { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The outcome at the gateway is unknown: the same request may be sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            WxPayError::Transport(_) | WxPayError::BadResponse(_) => true,
            WxPayError::Business { code, .. } => code.is_retryable(),
            WxPayError::Protocol { .. } | WxPayError::NoClientCertificate => false,
        }
    }
}

/// One gateway endpoint: what it is called, what it sends, what it returns.
pub trait Endpoint {
    const PATH: &'static str;
    /// Sent over mutual TLS with the merchant's API certificate (`secapi/…`).
    const NEEDS_CLIENT_CERT: bool = false;
    type Output;
    /// The request's own fields (the client adds appid, mch_id, nonce_str and the signature).
    fn fields(&self) -> Fields;
    /// Reads the business fields of a successful, verified answer.
    fn parse(fields: &Fields) -> Result<Self::Output, WxPayError>;
}

/// Adds the envelope every request carries and signs it.
pub fn build_request<E: Endpoint>(req: &E, merchant: &Merchant, nonce_str: &str) -> Fields {
    let mut f = Fields::new();
    f.set("appid", merchant.appid.as_str());
    f.set("mch_id", merchant.mch_id.as_str());
    f.set("nonce_str", nonce_str);
    for (k, v) in req.fields().iter() {
        f.set(k, v);
    }
    sign::sign_fields(&mut f, &merchant.key, merchant.sign_type);
    f
}

/// Checks an answer's envelope level by level: `Ok` only when `return_code`
/// and `result_code` are both SUCCESS and the signature and merchant are ours.
pub fn check_response(fields: &Fields, merchant: &Merchant) -> Result<(), WxPayError> {
    match fields.get("return_code") {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            return Err(WxPayError::Protocol {
                return_msg: fields.get("return_msg").unwrap_or("").to_string(),
            });
        }
        _ => return Err(WxPayError::BadResponse("no return_code".into())),
    }
    sign::verify_as(fields, &merchant.key, merchant.sign_type).map_err(|e| match e {
        SignError::Missing => {
            WxPayError::BadResponse(Failure::because("the answer is not signed", e))
        }
        e => WxPayError::BadResponse(Failure::of(e)),
    })?;
    match fields.get("result_code") {
        Some("SUCCESS") => {}
        // A failed result pays nothing, so its merchant fields need no check.
        Some("FAIL") => {
            return Err(WxPayError::Business {
                code: ErrCode::parse(fields.get("err_code").unwrap_or("")),
                description: fields.get("err_code_des").unwrap_or("").to_string(),
            });
        }
        _ => return Err(WxPayError::BadResponse("no result_code".into())),
    }
    if !merchant.named_in(fields) {
        return Err(WxPayError::BadResponse(
            "the answer is for another merchant".into(),
        ));
    }
    Ok(())
}

fn required<'a>(fields: &'a Fields, key: &str) -> Result<&'a str, WxPayError> {
    fields
        .non_empty(key)
        .ok_or_else(|| WxPayError::BadResponse(format!("the answer has no {key}").into()))
}

fn fen_field(fields: &Fields, key: &str) -> Result<Option<Fen>, WxPayError> {
    match fields.non_empty(key) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(|n| Some(Fen::new(n))).map_err(|e| {
            WxPayError::BadResponse(Failure::because(format!("{key} is not an integer"), e))
        }),
    }
}

/// `pay/unifiedorder` for a NATIVE (scan-to-pay) QR.
#[derive(Debug, Clone)]
pub struct UnifiedOrder {
    pub body: String,
    pub out_trade_no: OutTradeNo,
    pub total_fee: Fen,
    pub spbill_create_ip: String,
    pub time_start: Timestamp,
    pub time_expire: Timestamp,
    pub notify_url: String,
    pub product_id: String,
    pub attach: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepay {
    pub prepay_id: String,
    pub code_url: String,
}

impl Endpoint for UnifiedOrder {
    const PATH: &'static str = "pay/unifiedorder";
    type Output = Prepay;

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        f.set("body", self.body.as_str());
        f.set_opt("attach", self.attach.as_deref());
        f.set("out_trade_no", self.out_trade_no.as_str());
        f.set("fee_type", "CNY");
        f.set("total_fee", self.total_fee.get().to_string());
        f.set("spbill_create_ip", self.spbill_create_ip.as_str());
        f.set("time_start", format_time(self.time_start));
        f.set("time_expire", format_time(self.time_expire));
        f.set("notify_url", self.notify_url.as_str());
        f.set("trade_type", "NATIVE");
        f.set("product_id", self.product_id.as_str());
        f
    }

    fn parse(fields: &Fields) -> Result<Prepay, WxPayError> {
        Ok(Prepay {
            prepay_id: required(fields, "prepay_id")?.to_string(),
            code_url: required(fields, "code_url")?.to_string(),
        })
    }
}

/// `pay/orderquery` by our `out_trade_no`.
#[derive(Debug, Clone)]
pub struct OrderQuery {
    pub out_trade_no: OutTradeNo,
}

/// What the gateway knows of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    pub trade_state: TradeState,
    pub trade_state_desc: String,
    pub out_trade_no: String,
    pub transaction_id: Option<String>,
    pub total_fee: Option<Fen>,
    pub openid: Option<String>,
    pub time_end: Option<String>,
}

impl Endpoint for OrderQuery {
    const PATH: &'static str = "pay/orderquery";
    type Output = QueryResult;

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        f.set("out_trade_no", self.out_trade_no.as_str());
        f
    }

    fn parse(fields: &Fields) -> Result<QueryResult, WxPayError> {
        let trade_state = TradeState::parse(required(fields, "trade_state")?);
        let transaction_id = fields.non_empty("transaction_id").map(str::to_string);
        let total_fee = fen_field(fields, "total_fee")?;
        if trade_state.is_paid() && (transaction_id.is_none() || total_fee.is_none()) {
            return Err(WxPayError::BadResponse(
                "a paid order without transaction_id or total_fee".into(),
            ));
        }
        // Absent means CNY; anything else is not money in our fen.
        if let Some(c) = fields.non_empty("fee_type").filter(|c| *c != "CNY") {
            return Err(WxPayError::BadResponse(
                format!("a trade in {c:.8}, not CNY").into(),
            ));
        }
        Ok(QueryResult {
            trade_state,
            trade_state_desc: fields.get("trade_state_desc").unwrap_or("").to_string(),
            out_trade_no: fields.get("out_trade_no").unwrap_or("").to_string(),
            transaction_id,
            total_fee,
            openid: fields.non_empty("openid").map(str::to_string),
            time_end: fields.non_empty("time_end").map(str::to_string),
        })
    }
}

/// `pay/closeorder`.
#[derive(Debug, Clone)]
pub struct CloseOrder {
    pub out_trade_no: OutTradeNo,
}

impl Endpoint for CloseOrder {
    const PATH: &'static str = "pay/closeorder";
    type Output = ();

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        f.set("out_trade_no", self.out_trade_no.as_str());
        f
    }

    fn parse(_: &Fields) -> Result<(), WxPayError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> Merchant {
        Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            key: ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap(),
            sign_type: SignType::Md5,
        }
    }

    fn signed(pairs: &[(&str, &str)]) -> Fields {
        let mut f: Fields = pairs.iter().copied().collect();
        sign::sign_fields(&mut f, &merchant().key, SignType::Md5);
        f
    }

    #[test]
    fn unifiedorder_request_has_every_native_field() {
        let req = UnifiedOrder {
            body: "Demo Shop - coffee".into(),
            out_trade_no: OutTradeNo::new("SP1").unwrap(),
            total_fee: Fen::new(1250),
            spbill_create_ip: "127.0.0.1".into(),
            time_start: "2026-01-01T00:00:00Z".parse().unwrap(),
            time_expire: "2026-01-01T00:06:00Z".parse().unwrap(),
            notify_url: "https://shop.example/wxpay/notify".into(),
            product_id: "P1".into(),
            attach: None,
        };
        let f = build_request(&req, &merchant(), "nonce");
        for (k, v) in [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("trade_type", "NATIVE"),
            ("product_id", "P1"),
            ("total_fee", "1250"),
            ("time_start", "20260101080000"),
            ("time_expire", "20260101080600"),
        ] {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        assert!(f.get("attach").is_none());
        assert!(f.get("sign_type").is_none(), "MD5 is the default");
        assert_eq!(sign::verify(&f, &merchant().key), Ok(SignType::Md5));
    }

    #[test]
    fn three_failure_levels_stay_apart() {
        let m = merchant();
        let fail: Fields = [("return_code", "FAIL"), ("return_msg", "签名错误")]
            .into_iter()
            .collect();
        assert!(
            matches!(check_response(&fail, &m), Err(WxPayError::Protocol { return_msg }) if return_msg == "签名错误")
        );

        let biz = signed(&[
            ("return_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("nonce_str", "n"),
            ("result_code", "FAIL"),
            ("err_code", "ORDERPAID"),
            ("err_code_des", "该订单已支付"),
        ]);
        let err = check_response(&biz, &m).unwrap_err();
        assert_eq!(err.err_code(), Some(&ErrCode::OrderPaid));
        assert!(!err.is_retryable());

        let mut forged = biz.clone();
        forged.set("err_code", "SYSTEMERROR");
        assert!(matches!(
            check_response(&forged, &m),
            Err(WxPayError::BadResponse(_))
        ));

        let other = signed(&[
            ("return_code", "SUCCESS"),
            ("appid", "wx0000000000000000"),
            ("mch_id", "10000100"),
            ("result_code", "SUCCESS"),
        ]);
        assert!(matches!(
            check_response(&other, &m),
            Err(WxPayError::BadResponse(_))
        ));

        let ok = signed(&[
            ("return_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("result_code", "SUCCESS"),
            ("trade_state", "SUCCESS"),
            ("transaction_id", "4200000001"),
            ("total_fee", "1250"),
        ]);
        check_response(&ok, &m).unwrap();
        let q = OrderQuery::parse(&ok).unwrap();
        assert!(q.trade_state.is_paid());
        assert_eq!(q.total_fee, Some(Fen::new(1250)));
    }
}
