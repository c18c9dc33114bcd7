//! The payment notification: read, verify, and the two possible answers.

use super::api::Merchant;
use super::sign::{self, SignError};
use super::types::{OutTradeNo, SignType};
use super::xml::{self, Fields, XmlError};
use crate::values::money::Fen;

/// A verified payment, as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    pub out_trade_no: OutTradeNo,
    pub transaction_id: String,
    pub total_fee: Fen,
    pub openid: Option<String>,
    pub time_end: Option<String>,
    pub bank_type: Option<String>,
}

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Paid(PaymentNotice),
    /// `result_code=FAIL`: a payment attempt failed; nothing to apply.
    Failed {
        out_trade_no: Option<String>,
        err_code: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("unreadable notification: {0}")]
    Xml(#[from] XmlError),
    #[error("notification signature: {0}")]
    Signature(#[from] SignError),
    #[error("notification return_code is not SUCCESS")]
    NotSuccess,
    #[error("notification is for another merchant")]
    OtherMerchant,
    #[error("notification field {0} is missing or invalid")]
    Field(&'static str),
    /// `fee_type` other than CNY (absent means CNY): our orders are in fen of CNY.
    #[error("notification is in {0:.8}, not CNY")]
    Currency(String),
}

/// Longest notification body kept in the log.
pub const MAX_LOGGED_BODY: usize = 4096;

/// Reads and verifies a notification body: XML, signature over all fields,
/// our appid and mch_id, and the fields a payment needs.
pub fn verify(body: &[u8], merchant: &Merchant) -> Result<(Fields, Notice), NotifyError> {
    let fields = xml::from_xml(body)?;
    let notice = verify_fields(&fields, merchant)?;
    Ok((fields, notice))
}

/// Reads a notification once: what it says (verified), and the body as it may
/// be kept in the log (signature removed, capped at [`MAX_LOGGED_BODY`]).
pub fn read(body: &[u8], merchant: &Merchant) -> (Result<Notice, NotifyError>, String) {
    match xml::from_xml(body) {
        Ok(mut fields) => {
            let notice = verify_fields(&fields, merchant);
            if fields.get("sign").is_some() {
                fields.set("sign", "[REDACTED]");
            }
            let mut logged = xml::to_xml(&fields);
            logged.truncate(logged.floor_char_boundary(MAX_LOGGED_BODY));
            (notice, logged)
        }
        Err(e) => (Err(e.into()), loggable_raw(body)),
    }
}

/// An unreadable body, capped, with anything that looks like a signature removed.
fn loggable_raw(body: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&body[..body.len().min(MAX_LOGGED_BODY)]).into_owned();
    if let Some(start) = s.find("<sign>") {
        let end = s[start..]
            .find("</sign>")
            .map(|e| start + e + "</sign>".len())
            .unwrap_or(s.len());
        s.replace_range(start..end, "<sign>[REDACTED]</sign>");
    }
    s
}

fn verify_fields(fields: &Fields, merchant: &Merchant) -> Result<Notice, NotifyError> {
    if fields.get("return_code") != Some("SUCCESS") {
        return Err(NotifyError::NotSuccess);
    }
    sign::verify_as(fields, &merchant.key, merchant.sign_type)?;
    if !merchant.named_in(fields) {
        return Err(NotifyError::OtherMerchant);
    }
    if fields.get("result_code") != Some("SUCCESS") {
        return Ok(Notice::Failed {
            out_trade_no: fields.non_empty("out_trade_no").map(str::to_string),
            err_code: fields.get("err_code").unwrap_or("").to_string(),
        });
    }
    let out_trade_no = fields
        .non_empty("out_trade_no")
        .and_then(|s| OutTradeNo::new(s).ok())
        .ok_or(NotifyError::Field("out_trade_no"))?;
    let transaction_id = fields
        .non_empty("transaction_id")
        .filter(|s| s.len() <= 64)
        .ok_or(NotifyError::Field("transaction_id"))?
        .to_string();
    let total_fee = fields
        .non_empty("total_fee")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map(Fen::new)
        .ok_or(NotifyError::Field("total_fee"))?;
    if let Some(c) = fields.non_empty("fee_type").filter(|c| *c != "CNY") {
        return Err(NotifyError::Currency(c.to_string()));
    }
    Ok(Notice::Paid(PaymentNotice {
        out_trade_no,
        transaction_id,
        total_fee,
        openid: fields.non_empty("openid").map(str::to_string),
        time_end: fields.non_empty("time_end").map(str::to_string),
        bank_type: fields.non_empty("bank_type").map(str::to_string),
    }))
}

/// Builds the signed notification the gateway sends for a payment (used by the simulator).
pub fn build(
    notice: &PaymentNotice,
    merchant: &Merchant,
    sign_type: SignType,
    nonce_str: &str,
    attach: Option<&str>,
) -> Fields {
    let mut f = Fields::new();
    f.set("return_code", "SUCCESS");
    f.set("return_msg", "OK");
    f.set("appid", merchant.appid.as_str());
    f.set("mch_id", merchant.mch_id.as_str());
    f.set("nonce_str", nonce_str);
    f.set("result_code", "SUCCESS");
    f.set_opt("openid", notice.openid.as_deref());
    f.set("is_subscribe", "N");
    f.set("trade_type", "NATIVE");
    f.set("bank_type", notice.bank_type.as_deref().unwrap_or("OTHERS"));
    f.set("total_fee", notice.total_fee.get().to_string());
    f.set("fee_type", "CNY");
    f.set("cash_fee", notice.total_fee.get().to_string());
    f.set("transaction_id", notice.transaction_id.as_str());
    f.set("out_trade_no", notice.out_trade_no.as_str());
    f.set("attach", attach.unwrap_or(""));
    f.set_opt("time_end", notice.time_end.as_deref());
    sign::sign_fields(&mut f, &merchant.key, sign_type);
    f
}

/// The answer that stops the gateway's retries: only after the payment is durably recorded.
pub fn ack_success() -> String {
    let f: Fields = [("return_code", "SUCCESS"), ("return_msg", "OK")]
        .into_iter()
        .collect();
    xml::to_xml(&f)
}

/// The answer that makes the gateway send the notification again.
pub fn ack_fail(msg: &str) -> String {
    xml::to_xml(&return_fail(msg))
}

/// `return_code=FAIL` with a message: the refusal of a whole message, in
/// either direction (our ack, or the gateway's answer to a bad request).
pub fn return_fail(msg: &str) -> Fields {
    [("return_code", "FAIL"), ("return_msg", msg)]
        .into_iter()
        .collect()
}

/// Whether a merchant's answer to a notification was SUCCESS.
pub fn is_success_ack(body: &[u8]) -> bool {
    xml::from_xml(body)
        .map(|f| f.get("return_code") == Some("SUCCESS"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v2::types::ApiKey;

    fn merchant() -> Merchant {
        Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            key: ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap(),
            sign_type: SignType::Md5,
        }
    }

    fn notice() -> PaymentNotice {
        PaymentNotice {
            out_trade_no: OutTradeNo::new("SP20260101A").unwrap(),
            transaction_id: "4200000001202601011234567890".into(),
            total_fee: Fen::new(29),
            openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
            time_end: Some("20260101120000".into()),
            bank_type: Some("OTHERS".into()),
        }
    }

    #[test]
    fn built_notifications_verify_with_both_sign_types() {
        for st in [SignType::Md5, SignType::HmacSha256] {
            let m = Merchant {
                sign_type: st,
                ..merchant()
            };
            let f = build(&notice(), &m, st, "nonce", None);
            let body = xml::to_xml(&f);
            let (_, n) = verify(body.as_bytes(), &m).unwrap();
            assert_eq!(n, Notice::Paid(notice()));
        }
    }

    #[test]
    fn a_notification_signed_with_the_other_algorithm_is_refused() {
        let hmac = Merchant {
            sign_type: SignType::HmacSha256,
            ..merchant()
        };
        let md5_signed = build(&notice(), &hmac, SignType::Md5, "nonce", None);
        assert!(matches!(
            verify(xml::to_xml(&md5_signed).as_bytes(), &hmac),
            Err(NotifyError::Signature(SignError::WrongSignType { .. }))
        ));
    }

    #[test]
    fn refuses_forgeries() {
        let m = merchant();
        let good = build(&notice(), &m, SignType::Md5, "nonce", None);

        let mut tampered = good.clone();
        tampered.set("total_fee", "1");
        assert_eq!(
            verify(xml::to_xml(&tampered).as_bytes(), &m).unwrap_err(),
            NotifyError::Signature(SignError::Mismatch)
        );

        let mut unsigned = good.clone();
        unsigned.remove("sign");
        assert_eq!(
            verify(xml::to_xml(&unsigned).as_bytes(), &m).unwrap_err(),
            NotifyError::Signature(SignError::Missing)
        );

        let other = Merchant {
            appid: "wx1111111111111111".into(),
            ..merchant()
        };
        let theirs = build(&notice(), &other, SignType::Md5, "n", None);
        assert_eq!(
            verify(xml::to_xml(&theirs).as_bytes(), &m).unwrap_err(),
            NotifyError::OtherMerchant
        );

        assert!(matches!(
            verify(b"<!DOCTYPE x><xml></xml>", &m),
            Err(NotifyError::Xml(XmlError::Doctype))
        ));
    }

    #[test]
    fn read_parses_once_and_keeps_no_signature() {
        let m = merchant();
        let fields = build(&notice(), &m, SignType::Md5, "nonce", None);
        let sign = fields.get("sign").unwrap().to_string();
        let (n, logged) = read(xml::to_xml(&fields).as_bytes(), &m);
        assert_eq!(n.unwrap(), Notice::Paid(notice()));
        assert!(
            logged.contains("[REDACTED]") && !logged.contains(&sign),
            "{logged}"
        );
        assert!(logged.contains("SP20260101A"));

        let junk = format!("<xml><sign>SECRET</sign>{}", "x".repeat(10_000));
        let (n, logged) = read(junk.as_bytes(), &m);
        assert!(n.is_err());
        assert!(!logged.contains("SECRET"));
        assert!(logged.len() <= MAX_LOGGED_BODY + "[REDACTED]".len());
    }

    #[test]
    fn acks() {
        assert!(is_success_ack(ack_success().as_bytes()));
        assert!(!is_success_ack(ack_fail("no").as_bytes()));
        assert!(!is_success_ack(b"SUCCESS"));
    }
}
