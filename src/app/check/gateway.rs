//! The checks against the gateway: one harmless signed query (v2 or v3),
//! what its answer means, the platform certificates, the refund certificate.

use super::network::clock;
use super::*;

/// One signed `orderquery` for an order that cannot exist, and the gateway's clock.
pub(super) async fn gateway(settings: &Settings) -> Vec<Outcome> {
    let wx = &settings.wxpay;
    let client = match wx
        .merchant_or_demo()
        .map_err(|e| e.to_string())
        .and_then(|m| {
            WxPayClient::new(&wx.gateway, m, wx.timeout()).map_err(|e| chain(&e).to_string())
        }) {
        Ok(c) => c,
        Err(e) => return vec![Outcome::new(Status::Fail, "gateway", e)],
    };
    let probe = format!("scanpaycheck{}", &crate::wxpay::v2::client::nonce()[..16]);
    let Ok(out_trade_no) = OutTradeNo::new(probe) else {
        return vec![Outcome::new(
            Status::Fail,
            "gateway",
            "cannot make a probe order number",
        )];
    };
    let answer = client.order_query(&OrderQuery { out_trade_no }).await;
    let reached = !matches!(answer, Err(WxPayError::Transport(_)));
    let mut out = gateway_outcomes(&wx.gateway, &answer);
    if reached {
        out.push(clock(&wx.gateway, wx.timeout()).await);
    }
    out
}

/// v3: one signed query for an order that cannot exist, verified as every
/// answer is. Without a public key the platform certificates are downloaded
/// first, and their expiry is reported.
pub(super) async fn gateway_v3(settings: &Settings) -> Vec<Outcome> {
    use crate::wxpay::v3::api::ErrorCode;
    use crate::wxpay::v3::client::{V3Client, V3Error};
    let wx = &settings.wxpay;
    let merchant = match wx.v3_merchant_or_demo() {
        Ok(m) => m,
        Err(e) => return vec![Outcome::new(Status::Fail, "settings", e.to_string())],
    };
    let base = wx.gateway.trim_end_matches('/');
    let client = match V3Client::connect(base, &merchant, wx.timeout()).await {
        Ok(c) => c,
        Err(e) => return vec![Outcome::new(Status::Fail, "gateway", chain(&e).to_string())],
    };
    let mut out = Vec::new();
    if merchant.public_key.is_none() {
        let certs = client.certificates();
        if certs.is_empty() {
            out.push(Outcome::new(
                Status::Fail,
                "certificates",
                "no platform certificate could be downloaded and decrypted from /v3/certificates \
                 (a wrong wxpay.apiv3_key, or a merchant with a WeChat Pay public key: set \
                 wxpay.public_key_file and wxpay.public_key_id)",
            ));
        }
        for c in certs {
            out.push(certificate_outcome(&c, jiff::Timestamp::now()));
        }
    }
    let probe = format!("scanpaycheck{}", &crate::wxpay::v2::client::nonce()[..16]);
    let (sig, ans) = ("signature", "answer");
    match client.query(&probe).await {
        Err(V3Error::Api {
            code: ErrorCode::OrderNotExist,
            ..
        }) => out.push(Outcome::new(
            Status::Pass,
            sig,
            "the gateway accepted our signature (ORDER_NOT_EXIST for a made-up order)",
        )),
        Ok(_) => {
            out.push(Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature",
            ));
            out.push(Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer verified with a WeChat Pay key we hold",
            ));
        }
        Err(V3Error::Api {
            code: ErrorCode::SignError,
            message,
            ..
        }) => out.push(Outcome::new(
            Status::Fail,
            sig,
            format!(
                "signature refused: wxpay.private_key_file and wxpay.cert_serial must be the \
                 merchant's API key and its certificate's serial (the gateway said {message:?})"
            ),
        )),
        Err(V3Error::Api {
            raw_code, message, ..
        }) => {
            out.push(Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature",
            ));
            out.push(Outcome::new(
                Status::Fail,
                "merchant",
                format!(
                    "the gateway answered {raw_code}: {message} (check wxpay.appid and wxpay.mch_id)"
                ),
            ));
        }
        Err(V3Error::Key(e)) => out.push(Outcome::new(Status::Fail, "settings", e.to_string())),
        Err(V3Error::Unbelievable(why)) => out.push(Outcome::new(
            Status::Fail,
            ans,
            format!(
                "cannot verify the gateway's answer: {} (wxpay.public_key_file / \
                 public_key_id, or the platform certificates)",
                chain(&why)
            ),
        )),
        Err(V3Error::Transport(why)) => {
            out.push(Outcome::new(
                Status::Fail,
                "gateway",
                format!(
                    "cannot reach the gateway at {}: {}",
                    wx.gateway,
                    chain(&why)
                ),
            ));
            return out;
        }
    }
    out.push(clock(&wx.gateway, wx.timeout()).await);
    out
}

/// A platform certificate is renewed by WeChat Pay weeks before it expires.
pub fn certificate_outcome(
    c: &crate::wxpay::v3::cert::PlatformCert,
    now: jiff::Timestamp,
) -> Outcome {
    let name = format!("platform certificate {}", c.serial);
    expiry(
        "certificates",
        &name,
        c.expires,
        now,
        "refreshed hourly",
        "answers signed with it cannot be believed; the app downloads the new one \
         hourly (is the APIv3 key right?)",
    )
}

/// A certificate's expiry: fine, near (under 30 days: a warning), or past (a failure).
pub(super) fn expiry(
    check: &'static str,
    name: &str,
    expires: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    meanwhile: &str,
    once_expired: &str,
) -> Outcome {
    match expires {
        Some(t) if t <= now => Outcome::new(
            Status::Fail,
            check,
            format!("{name} expired at {t}: {once_expired}"),
        ),
        Some(t) => {
            let days = t.duration_since(now).as_secs() / 86_400;
            let status = if days < 30 {
                Status::Warn
            } else {
                Status::Pass
            };
            Outcome::new(
                status,
                check,
                format!("{name} expires in {days} days ({t}); {meanwhile}"),
            )
        }
        None => Outcome::new(Status::Warn, check, format!("{name}: no expiry given")),
    }
}

/// What the probe's answer says about our signature and theirs.
pub fn gateway_outcomes<T>(gateway: &str, answer: &Result<T, WxPayError>) -> Vec<Outcome> {
    let (sig, ans) = ("signature", "answer");
    match answer {
        Err(WxPayError::Business { code, .. }) if *code == ErrCode::OrderNotExist => vec![
            Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature (ORDERNOTEXIST for a made-up order)",
            ),
            Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer is signed with our API key",
            ),
        ],
        Ok(_) => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer is signed with our API key",
            ),
        ],
        // A temporary failure: the setup may be right; asking again will tell.
        Err(WxPayError::Business { code, description }) if code.is_retryable() => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Warn,
                ans,
                format!("signed, but answered {code}: {description}; run the check again"),
            ),
        ],
        // Any other refusal of a query for a made-up order is about the merchant.
        Err(WxPayError::Business { code, description }) => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Fail,
                "merchant",
                format!(
                    "the gateway answered {code}: {description} \
                     (check wxpay.appid and wxpay.mch_id)"
                ),
            ),
        ],
        Err(WxPayError::Protocol { return_msg }) if is_signature_refusal(return_msg) => {
            vec![Outcome::new(
                Status::Fail,
                sig,
                format!(
                    "signature refused: the API key does not match the merchant \
                     (wxpay.api_key, wxpay.sign_type; the gateway said {return_msg:?})"
                ),
            )]
        }
        Err(WxPayError::Protocol { return_msg }) => vec![Outcome::new(
            Status::Fail,
            sig,
            format!(
                "the gateway refused the request: {return_msg} (check wxpay.appid and wxpay.mch_id)"
            ),
        )],
        Err(WxPayError::BadResponse(why)) => vec![Outcome::new(
            Status::Fail,
            ans,
            format!(
                "cannot verify the gateway's answer: {} (a wrong API key or sign type, \
                 or {gateway} is not a WeChat Pay gateway)",
                chain(why)
            ),
        )],
        Err(WxPayError::Transport(why)) => vec![Outcome::new(
            Status::Fail,
            "gateway",
            format!("cannot reach the gateway at {gateway}: {}", chain(why)),
        )],
        // The probe is an order query, which needs no certificate; kept for completeness.
        Err(e @ WxPayError::NoClientCertificate) => {
            vec![Outcome::new(Status::Fail, "certificate", e.to_string())]
        }
    }
}

pub(super) fn is_signature_refusal(msg: &str) -> bool {
    msg.contains("签名") || msg.to_ascii_lowercase().contains("sign")
}

/// API v2 refunds go over mutual TLS with the merchant's API certificate: the
/// two files must parse and belong together, or refunds are refused.
pub(super) fn refund_certificate(settings: &Settings) -> Outcome {
    let wx = &settings.wxpay;
    let check = "refund certificate";
    match wx.refund_tls() {
        Err(e) => Outcome::new(Status::Fail, check, e.to_string()),
        Ok((_, Some(_))) => {
            let expires = wx
                .client_cert_file
                .as_ref()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|pem| crate::wxpay::v3::cert::PlatformCert::from_pem(&pem).ok())
                .and_then(|c| c.expires);
            let when = expiry(
                check,
                "the merchant's API certificate (wxpay.client_cert_file)",
                expires,
                jiff::Timestamp::now(),
                "renew it on the merchant platform before then",
                "the gateway refuses refunds with it; download a new one from the merchant \
                 platform (账户中心 → API安全)",
            );
            match when.status {
                Status::Pass => Outcome::new(
                    Status::Pass,
                    check,
                    format!(
                        "wxpay.client_cert_file and client_key_file parse and belong together; {}",
                        when.detail
                    ),
                ),
                _ => when,
            }
        }
        Ok((_, None)) if wx.is_simulator() => Outcome::new(
            Status::Skip,
            check,
            "simulator mode: its refunds need no certificate",
        ),
        Ok((_, None)) => Outcome::new(
            Status::Warn,
            check,
            "not set: refunds will be refused until wxpay.client_cert_file and \
             wxpay.client_key_file name the merchant's API certificate and key \
             (apiclient_cert.pem, apiclient_key.pem from the merchant platform)",
        ),
    }
}
