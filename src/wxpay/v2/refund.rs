//! v2 refunds: `secapi/pay/refund` (mutual TLS), `pay/refundquery`, and the
//! refund notification, whose `req_info` is AES-256-ECB ciphertext under the
//! MD5 of the API key (it carries no signature: decrypting it is the proof).
//! Pure steps, as in `api.rs`; the client adds the transport.

use crate::values::words::words;
use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};

use super::api::{Endpoint, Merchant, WxPayError};
use super::types::{ApiKey, OutTradeNo};
use super::xml::{self, Fields, XmlError};
use crate::values::money::Fen;
use crate::values::trade::OutRefundNo;

/// The longest `refund_desc` the gateway takes (80 bytes), cut on a character boundary.
pub const MAX_REFUND_DESC_BYTES: usize = 80;

/// `secapi/pay/refund`: part or all of one payment back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub out_trade_no: OutTradeNo,
    pub transaction_id: Option<String>,
    pub out_refund_no: OutRefundNo,
    pub total_fee: Fen,
    pub refund_fee: Fen,
    pub refund_desc: String,
    /// Overrides the refund notification URL set on the merchant platform.
    pub notify_url: Option<String>,
}

/// The gateway accepted the refund (its outcome comes later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAccepted {
    pub out_refund_no: String,
    pub refund_id: Option<String>,
    pub refund_fee: Option<Fen>,
}

fn fen(fields: &Fields, key: &str) -> Result<Option<Fen>, WxPayError> {
    match fields.non_empty(key) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(|n| Some(Fen::new(n))).map_err(|e| {
            WxPayError::BadResponse(crate::base::cause::Failure::because(
                format!("{key} is not an integer"),
                e,
            ))
        }),
    }
}

impl Endpoint for Refund {
    const PATH: &'static str = "secapi/pay/refund";
    const NEEDS_CLIENT_CERT: bool = true;
    type Output = RefundAccepted;

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        // transaction_id takes precedence at the gateway; both are sent when known.
        f.set_opt("transaction_id", self.transaction_id.as_deref());
        f.set("out_trade_no", self.out_trade_no.as_str());
        f.set("out_refund_no", self.out_refund_no.as_str());
        f.set("total_fee", self.total_fee.get().to_string());
        f.set("refund_fee", self.refund_fee.get().to_string());
        f.set("refund_fee_type", "CNY");
        let mut desc = self.refund_desc.clone();
        desc.truncate(desc.floor_char_boundary(MAX_REFUND_DESC_BYTES));
        if !desc.is_empty() {
            f.set("refund_desc", desc);
        }
        f.set_opt("notify_url", self.notify_url.as_deref());
        f
    }

    fn parse(fields: &Fields) -> Result<RefundAccepted, WxPayError> {
        Ok(RefundAccepted {
            out_refund_no: fields.get("out_refund_no").unwrap_or("").to_string(),
            refund_id: fields.non_empty("refund_id").map(str::to_string),
            refund_fee: fen(fields, "refund_fee")?,
        })
    }
}

words! {
    /// `refund_status` of v2 (query and notification).
    RefundStatusV2 {
        Success = "SUCCESS",
        Processing = "PROCESSING",
        /// `REFUNDCLOSE`: failed for good.
        Closed = "REFUNDCLOSE",
        /// `CHANGE`: abnormal (the customer's card is frozen or closed).
        Change = "CHANGE",
    }
}

/// `pay/refundquery` by our `out_refund_no` (no certificate needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuery {
    pub out_refund_no: OutRefundNo,
}

/// One refund as `refundquery` or the notification reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInfo {
    pub out_refund_no: String,
    pub out_trade_no: Option<String>,
    /// The payment's `transaction_id`, when the gateway says it.
    pub transaction_id: Option<String>,
    pub refund_id: Option<String>,
    pub refund_fee: Option<Fen>,
    pub status: RefundStatusV2,
    /// `refund_recv_accout` (sic): where the money went.
    pub account: Option<String>,
    pub success_time: Option<String>,
}

impl Endpoint for RefundQuery {
    const PATH: &'static str = "pay/refundquery";
    type Output = Vec<RefundInfo>;

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        f.set("out_refund_no", self.out_refund_no.as_str());
        f
    }

    /// The answer lists the trade's refunds as `…_$n` (ours among them).
    fn parse(fields: &Fields) -> Result<Vec<RefundInfo>, WxPayError> {
        let count = fields
            .non_empty("refund_count")
            .and_then(|c| c.parse::<usize>().ok())
            .ok_or_else(|| WxPayError::BadResponse("the answer has no refund_count".into()))?;
        let mut out = Vec::new();
        for n in 0..count.min(MAX_LISTED) {
            let at = |k: &str| fields.non_empty(&format!("{k}_{n}"));
            let Some(no) = at("out_refund_no") else {
                return Err(WxPayError::BadResponse(
                    format!("the answer has no out_refund_no_{n}").into(),
                ));
            };
            let status = at("refund_status").ok_or_else(|| {
                WxPayError::BadResponse(format!("the answer has no refund_status_{n}").into())
            })?;
            out.push(RefundInfo {
                out_refund_no: no.to_string(),
                out_trade_no: fields.non_empty("out_trade_no").map(str::to_string),
                transaction_id: fields.non_empty("transaction_id").map(str::to_string),
                refund_id: at("refund_id").map(str::to_string),
                refund_fee: fen(fields, &format!("refund_fee_{n}"))?,
                status: RefundStatusV2::parse(status),
                account: at("refund_recv_accout").map(str::to_string),
                success_time: at("refund_success_time").map(str::to_string),
            });
        }
        Ok(out)
    }
}

/// At most this many refunds are read from one answer (the gateway allows 50 per payment).
const MAX_LISTED: usize = 100;

/// The AES-256 key of `req_info`: the lower-case hex MD5 of the API key, as 32 ASCII bytes.
fn req_info_key(key: &ApiKey) -> Aes256 {
    let digest = Md5::digest(key.expose().as_bytes());
    let hex_key = hex::encode(digest);
    // 32 hex characters are exactly an AES-256 key: this cannot fail.
    Aes256::new_from_slice(hex_key.as_bytes()).expect("32 bytes make an AES-256 key")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundNotifyError {
    #[error("unreadable notification: {0}")]
    Xml(#[from] XmlError),
    #[error("notification return_code is not SUCCESS")]
    NotSuccess,
    #[error("notification is for another merchant")]
    OtherMerchant,
    #[error("req_info is missing")]
    NoReqInfo,
    #[error("req_info does not decrypt with our key")]
    Undecryptable,
    #[error("req_info field {0} is missing or invalid")]
    Field(&'static str),
}

/// Decrypts `req_info`: Base64 → AES-256-ECB → PKCS#7 padding removed → text.
pub fn decrypt_req_info(req_info: &str, key: &ApiKey) -> Result<String, RefundNotifyError> {
    let mut data = B64
        .decode(req_info.trim())
        .map_err(|_| RefundNotifyError::Undecryptable)?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(RefundNotifyError::Undecryptable);
    }
    let cipher = req_info_key(key);
    // ECB by hand: each 16-byte block on its own (the protocol's choice, not ours).
    for block in data.chunks_exact_mut(16) {
        let block: &mut [u8; 16] = block
            .try_into()
            .map_err(|_| RefundNotifyError::Undecryptable)?;
        cipher.decrypt_block(block.into());
    }
    let pad = usize::from(*data.last().ok_or(RefundNotifyError::Undecryptable)?);
    if pad == 0
        || pad > 16
        || data[data.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(RefundNotifyError::Undecryptable);
    }
    data.truncate(data.len() - pad);
    String::from_utf8(data).map_err(|_| RefundNotifyError::Undecryptable)
}

/// Encrypts a `req_info` plaintext (the simulator's side of [`decrypt_req_info`]).
pub fn encrypt_req_info(plaintext: &str, key: &ApiKey) -> String {
    let mut data = plaintext.as_bytes().to_vec();
    let pad = 16 - data.len() % 16;
    data.extend(std::iter::repeat_n(pad as u8, pad));
    let cipher = req_info_key(key);
    for block in data.chunks_exact_mut(16) {
        if let Ok(block) = <&mut [u8; 16]>::try_from(block) {
            cipher.encrypt_block(block.into());
        }
    }
    B64.encode(data)
}

/// The plaintext's root is `<root>`; the codec reads flat `<xml>` messages.
fn read_root(plaintext: &str) -> Result<Fields, RefundNotifyError> {
    let t = plaintext.trim();
    let inner = t
        .strip_prefix("<root>")
        .and_then(|r| r.strip_suffix("</root>"))
        .ok_or(RefundNotifyError::Undecryptable)?;
    Ok(xml::from_xml(format!("<xml>{inner}</xml>").as_bytes())?)
}

/// Reads and authenticates a refund notification: our appid and mch_id, and a
/// `req_info` that decrypts with our key into a refund with a known status.
pub fn read_notification(
    body: &[u8],
    merchant: &Merchant,
) -> Result<RefundInfo, RefundNotifyError> {
    let outer = xml::from_xml(body)?;
    if outer.get("return_code") != Some("SUCCESS") {
        return Err(RefundNotifyError::NotSuccess);
    }
    if !merchant.named_in(&outer) {
        return Err(RefundNotifyError::OtherMerchant);
    }
    let req_info = outer
        .non_empty("req_info")
        .ok_or(RefundNotifyError::NoReqInfo)?;
    let inner = read_root(&decrypt_req_info(req_info, &merchant.key)?)?;
    let out_refund_no = inner
        .non_empty("out_refund_no")
        .ok_or(RefundNotifyError::Field("out_refund_no"))?;
    let status = inner
        .non_empty("refund_status")
        .ok_or(RefundNotifyError::Field("refund_status"))?;
    Ok(RefundInfo {
        out_refund_no: out_refund_no.to_string(),
        out_trade_no: inner.non_empty("out_trade_no").map(str::to_string),
        transaction_id: inner.non_empty("transaction_id").map(str::to_string),
        refund_id: inner.non_empty("refund_id").map(str::to_string),
        refund_fee: inner
            .non_empty("refund_fee")
            .map(|v| v.parse::<i64>().map(Fen::new))
            .transpose()
            .map_err(|_| RefundNotifyError::Field("refund_fee"))?,
        status: RefundStatusV2::parse(status),
        account: inner.non_empty("refund_recv_accout").map(str::to_string),
        success_time: inner.non_empty("success_time").map(str::to_string),
    })
}

/// The refund notification the gateway sends (used by the simulator).
pub fn build_notification(info: &RefundInfo, merchant: &Merchant, nonce_str: &str) -> Fields {
    let mut inner = Fields::new();
    inner.set_opt("out_trade_no", info.out_trade_no.as_deref());
    inner.set_opt("transaction_id", info.transaction_id.as_deref());
    inner.set_opt("refund_id", info.refund_id.as_deref());
    inner.set("out_refund_no", info.out_refund_no.as_str());
    inner.set_opt("refund_fee", info.refund_fee.map(|f| f.get().to_string()));
    inner.set("refund_status", info.status.as_str());
    inner.set_opt("success_time", info.success_time.as_deref());
    inner.set_opt("refund_recv_accout", info.account.as_deref());
    inner.set("refund_request_source", "API");
    let body = xml::to_xml(&inner);
    let root = format!(
        "<root>{}</root>",
        body.trim_start_matches("<xml>").trim_end_matches("</xml>")
    );
    let mut outer = Fields::new();
    outer.set("return_code", "SUCCESS");
    outer.set("appid", merchant.appid.as_str());
    outer.set("mch_id", merchant.mch_id.as_str());
    outer.set("nonce_str", nonce_str);
    outer.set("req_info", encrypt_req_info(&root, &merchant.key));
    outer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v2::SignType;
    use crate::wxpay::v2::api::build_request;
    use crate::wxpay::v2::sign;

    const DEMO_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    /// `wxpay-v3-refunds-bills.md` §2.3.
    const VECTOR_PLAINTEXT: &str = "<root><out_refund_no><![CDATA[R1]]></out_refund_no><out_trade_no><![CDATA[T1]]></out_trade_no><refund_fee><![CDATA[1]]></refund_fee><refund_status><![CDATA[SUCCESS]]></refund_status></root>";
    const VECTOR_REQ_INFO: &str = "WBzGpzQuNpcFxIlFjUUD9BZv+lpBMzd2SHiKCkwfALWid5G8ZvfOussfMIHLbKJmI/uKTSu1206Pv8FVtDW3T06pYa1/HmXN2h1zd07OZRodZ6wJEKB1uc7xpcuyUPewSwPLXxWmJQdPOGz3P8OF6CstOFoxPorz/j1FPhn8ojk6hWdIiQDcxmxoRUeIWsWmS8ew3USFrkvoZMbYnPfHJN5qRorvbogZTU6GJIOEdIslgkorIPK7v8Z99XaaElpG";

    fn merchant() -> Merchant {
        Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            key: ApiKey::new(DEMO_KEY).unwrap(),
            sign_type: SignType::Md5,
        }
    }

    #[test]
    fn the_req_info_vector_decrypts_and_encrypts_exactly() {
        assert_eq!(
            hex::encode(Md5::digest(DEMO_KEY.as_bytes())),
            "d96eb16afdd491fa1e705096edbc2205"
        );
        let key = ApiKey::new(DEMO_KEY).unwrap();
        assert_eq!(
            decrypt_req_info(VECTOR_REQ_INFO, &key).unwrap(),
            VECTOR_PLAINTEXT
        );
        assert_eq!(encrypt_req_info(VECTOR_PLAINTEXT, &key), VECTOR_REQ_INFO);
    }

    #[test]
    fn a_notification_is_believed_only_when_it_decrypts_with_our_key() {
        let m = merchant();
        let body = format!(
            "<xml><return_code>SUCCESS</return_code><appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><nonce_str>n</nonce_str><req_info><![CDATA[{VECTOR_REQ_INFO}]]></req_info></xml>"
        );
        let info = read_notification(body.as_bytes(), &m).unwrap();
        assert_eq!(info.out_refund_no, "R1");
        assert_eq!(info.out_trade_no.as_deref(), Some("T1"));
        assert_eq!(info.refund_fee, Some(Fen::new(1)));
        assert_eq!(info.status, RefundStatusV2::Success);

        let mut other = m.clone();
        other.key = ApiKey::new("00000000000000000000000000000000").unwrap();
        assert_eq!(
            read_notification(body.as_bytes(), &other),
            Err(RefundNotifyError::Undecryptable)
        );
        let forged = body.replace("WBzG", "XBzG");
        assert!(read_notification(forged.as_bytes(), &m).is_err());
        let elsewhere = body.replace("10000100", "10000999");
        assert_eq!(
            read_notification(elsewhere.as_bytes(), &m),
            Err(RefundNotifyError::OtherMerchant)
        );
        assert_eq!(
            decrypt_req_info("not base64!", &m.key),
            Err(RefundNotifyError::Undecryptable)
        );
        assert_eq!(
            decrypt_req_info("AAAA", &m.key),
            Err(RefundNotifyError::Undecryptable)
        );
    }

    #[test]
    fn the_simulators_notification_reads_back() {
        let m = merchant();
        let info = RefundInfo {
            out_refund_no: "R2".into(),
            out_trade_no: Some("T2".into()),
            transaction_id: Some("4200000002".into()),
            refund_id: Some("50000000012026".into()),
            refund_fee: Some(Fen::new(250)),
            status: RefundStatusV2::Change,
            account: Some("支付用户零钱".into()),
            success_time: None,
        };
        let body = xml::to_xml(&build_notification(&info, &m, "nonce"));
        assert!(
            !body.contains("<sign>"),
            "refund notifications are not signed"
        );
        assert_eq!(read_notification(body.as_bytes(), &m).unwrap(), info);
    }

    #[test]
    fn refund_request_and_query_answer() {
        let req = Refund {
            out_trade_no: OutTradeNo::new("T1").unwrap(),
            transaction_id: Some("4200000001".into()),
            out_refund_no: OutRefundNo::new("R1").unwrap(),
            total_fee: Fen::new(1000),
            refund_fee: Fen::new(100),
            refund_desc: "退".repeat(40),
            notify_url: Some("https://shop.example/wxpay/refund-notify".into()),
        };
        let f = build_request(&req, &merchant(), "nonce");
        for (k, v) in [
            ("out_refund_no", "R1"),
            ("transaction_id", "4200000001"),
            ("total_fee", "1000"),
            ("refund_fee", "100"),
            ("refund_fee_type", "CNY"),
        ] {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        assert!(f.get("refund_desc").unwrap().len() <= MAX_REFUND_DESC_BYTES);
        assert_eq!(sign::verify(&f, &merchant().key), Ok(SignType::Md5));

        let answer: Fields = [
            ("out_refund_no", "R1"),
            ("refund_count", "2"),
            ("out_trade_no", "T1"),
            ("out_refund_no_0", "R0"),
            ("refund_status_0", "SUCCESS"),
            ("out_refund_no_1", "R1"),
            ("refund_id_1", "5000"),
            ("refund_fee_1", "100"),
            ("refund_status_1", "PROCESSING"),
            ("refund_recv_accout_1", "支付用户零钱"),
        ]
        .into_iter()
        .collect();
        let listed = RefundQuery::parse(&answer).unwrap();
        assert_eq!(listed.len(), 2);
        let info = &listed[1];
        assert_eq!(info.out_refund_no, "R1");
        assert_eq!(info.refund_id.as_deref(), Some("5000"));
        assert_eq!(info.status, RefundStatusV2::Processing);
        assert_eq!(info.account.as_deref(), Some("支付用户零钱"));
        let mut short = answer.clone();
        short.set("refund_count", "3");
        assert!(RefundQuery::parse(&short).is_err());
    }
}
