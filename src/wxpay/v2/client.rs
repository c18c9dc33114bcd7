//! The thin transport: sign, POST, read at most a capped body, verify, parse.

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use super::api::{
    self, CloseOrder, Endpoint, Merchant, OrderQuery, Prepay, QueryResult, UnifiedOrder, WxPayError,
};
use super::refund::{Refund, RefundAccepted, RefundInfo, RefundQuery};
use super::xml::{self, MAX_XML_BYTES};

use crate::base::cause::Failure;
use crate::base::http::failure;
pub use crate::base::http::install_crypto_provider;

/// A fresh random `nonce_str` (32 alphanumerics).
pub fn nonce() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

#[derive(Debug, Clone)]
pub struct WxPayClient {
    http: reqwest::Client,
    /// How `secapi/…` calls (refunds) travel: with the merchant's certificate.
    secure: SecureHttp,
    base_url: String,
    merchant: Merchant,
    timeout: Duration,
}

/// The transport of calls that need the merchant's API certificate.
#[derive(Debug, Clone)]
enum SecureHttp {
    /// Mutual TLS with the merchant's certificate.
    WithIdentity(reqwest::Client),
    /// A plain-http gateway (the built-in simulator, a local `scanpay sim`):
    /// there is no TLS to present a certificate in.
    Plain,
    /// An https gateway and no certificate configured: such calls are refused here.
    Missing,
}

/// The merchant's API certificate and key (PEM), checked to parse and to belong together.
#[derive(Clone)]
pub struct ClientIdentity {
    pem: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity([REDACTED])")
    }
}

impl ClientIdentity {
    /// Reads `apiclient_cert.pem` and `apiclient_key.pem` as the merchant
    /// platform's zip provides them.
    pub fn from_files(
        cert_file: &std::path::Path,
        key_file: &std::path::Path,
    ) -> Result<Self, String> {
        let cert = std::fs::read(cert_file)
            .map_err(|e| format!("cannot read {}: {e}", cert_file.display()))?;
        let key = std::fs::read(key_file)
            .map_err(|e| format!("cannot read {}: {e}", key_file.display()))?;
        Self::from_pem(&cert, &key)
    }

    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, String> {
        use rustls::sign::CertifiedKey;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the client certificate is not PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the client certificate file holds no CERTIFICATE".into());
        }
        let private = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("the client key is not a PEM private key: {e}"))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&private)
            .map_err(|e| format!("the client key cannot be used: {e}"))?;
        match CertifiedKey::new(certs, signing).keys_match() {
            Ok(()) => {}
            // The key type cannot say its public key: nothing to compare.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => return Err("the client key does not belong to the client certificate".into()),
        }
        let mut pem = cert.to_vec();
        pem.push(b'\n');
        pem.extend_from_slice(key);
        Ok(ClientIdentity { pem })
    }
}

/// A client with our settings, trusting `ca` too and presenting `identity`.
fn build_http(
    timeout: Duration,
    ca: Option<&reqwest::Certificate>,
    identity: Option<&ClientIdentity>,
) -> Result<reqwest::Client, WxPayError> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("scanpay/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        b = b.add_root_certificate(ca.clone());
    }
    if let Some(id) = identity {
        let id = reqwest::Identity::from_pem(&id.pem).map_err(|e| {
            WxPayError::Transport(Failure::because(
                format!("cannot use the client certificate: {e}"),
                e,
            ))
        })?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| WxPayError::Transport(Failure::because("cannot build the HTTP client", e)))
}

impl WxPayClient {
    /// `base_url` is the gateway root, e.g. `https://api.mch.weixin.qq.com/`.
    pub fn new(base_url: &str, merchant: Merchant, timeout: Duration) -> Result<Self, WxPayError> {
        let http = crate::base::http::build(timeout).map_err(WxPayError::Transport)?;
        let mut base_url = base_url.to_string();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        let secure = if base_url.starts_with("https://") {
            SecureHttp::Missing
        } else {
            SecureHttp::Plain
        };
        Ok(WxPayClient {
            http,
            secure,
            base_url,
            merchant,
            timeout,
        })
    }

    /// Trusts `gateway_ca` (PEM; a test gateway's CA) besides the usual roots,
    /// and sends `secapi/…` calls with the merchant's certificate.
    pub fn with_tls(
        mut self,
        gateway_ca: Option<&[u8]>,
        identity: Option<&ClientIdentity>,
    ) -> Result<Self, WxPayError> {
        let ca = gateway_ca
            .map(|pem| {
                reqwest::Certificate::from_pem(pem).map_err(|e| {
                    WxPayError::Transport(Failure::because(
                        format!("the gateway CA is not a PEM certificate: {e}"),
                        e,
                    ))
                })
            })
            .transpose()?;
        if ca.is_some() {
            self.http = build_http(self.timeout, ca.as_ref(), None)?;
        }
        if let Some(id) = identity {
            self.secure =
                SecureHttp::WithIdentity(build_http(self.timeout, ca.as_ref(), Some(id))?);
        }
        Ok(self)
    }

    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// One call: the answer is believed only after its signature and merchant check out.
    #[tracing::instrument(name = "wxpay", skip_all, fields(endpoint = E::PATH))]
    pub async fn call<E: Endpoint>(&self, req: &E) -> Result<E::Output, WxPayError> {
        let body = self.post(E::PATH, req, MAX_XML_BYTES).await?;
        let answer = xml::from_xml(&body).map_err(|e| WxPayError::BadResponse(Failure::of(e)))?;
        api::check_response(&answer, &self.merchant)?;
        E::parse(&answer)
    }

    /// Signs and posts `req` to `path`; the raw answer, at most `limit` bytes.
    pub(super) async fn post<E: Endpoint>(
        &self,
        path: &str,
        req: &E,
        limit: usize,
    ) -> Result<Vec<u8>, WxPayError> {
        let fields = api::build_request(req, &self.merchant, &nonce());
        let url = format!("{}{}", self.base_url, path);
        let http = match (&self.secure, E::NEEDS_CLIENT_CERT) {
            (_, false) | (SecureHttp::Plain, true) => &self.http,
            (SecureHttp::WithIdentity(secure), true) => secure,
            (SecureHttp::Missing, true) => return Err(WxPayError::NoClientCertificate),
        };
        let mut resp = http
            .post(&url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(xml::to_xml(&fields))
            .send()
            .await
            .map_err(|e| WxPayError::Transport(failure(e)))?;
        if !resp.status().is_success() {
            return Err(WxPayError::Transport(
                format!("HTTP {}", resp.status()).into(),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| WxPayError::Transport(failure(e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(WxPayError::BadResponse("the answer is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub async fn unified_order(&self, req: &UnifiedOrder) -> Result<Prepay, WxPayError> {
        self.call(req).await
    }

    pub async fn order_query(&self, req: &OrderQuery) -> Result<QueryResult, WxPayError> {
        self.call(req).await
    }

    pub async fn close_order(&self, req: &CloseOrder) -> Result<(), WxPayError> {
        self.call(req).await
    }

    pub async fn refund(&self, req: &Refund) -> Result<RefundAccepted, WxPayError> {
        self.call(req).await
    }

    /// The refund with our number, as the gateway lists it.
    pub async fn refund_query(&self, req: &RefundQuery) -> Result<RefundInfo, WxPayError> {
        self.call(req)
            .await?
            .into_iter()
            .find(|r| r.out_refund_no == req.out_refund_no.as_str())
            .ok_or_else(|| {
                WxPayError::BadResponse("the answer does not list the refund asked for".into())
            })
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn cert_and_key() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["10000100".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn the_certificate_and_key_must_parse_and_belong_together() {
        let (cert, key) = cert_and_key();
        assert!(ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
        let (_, other_key) = cert_and_key();
        let e = ClientIdentity::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
        let e = ClientIdentity::from_pem(b"junk", key.as_bytes()).unwrap_err();
        assert!(e.contains("CERTIFICATE") || e.contains("PEM"), "{e}");
        let e = ClientIdentity::from_pem(cert.as_bytes(), b"junk").unwrap_err();
        assert!(e.contains("private key"), "{e}");
        assert!(
            format!(
                "{:?}",
                ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
            )
            .contains("REDACTED")
        );
    }

    #[tokio::test]
    async fn an_https_gateway_without_a_certificate_refuses_refunds_here() {
        use crate::values::money::Fen;
        use crate::values::trade::{OutRefundNo, OutTradeNo};
        let merchant = Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            key: super::super::ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap(),
            sign_type: super::super::SignType::Md5,
        };
        // Nothing listens there: the refusal comes before any connection.
        let c = WxPayClient::new("https://127.0.0.1:9/", merchant, Duration::from_secs(1)).unwrap();
        let e = c
            .refund(&Refund {
                out_trade_no: OutTradeNo::new("T1").unwrap(),
                transaction_id: None,
                out_refund_no: OutRefundNo::new("R1").unwrap(),
                total_fee: Fen::new(100),
                refund_fee: Fen::new(100),
                refund_desc: String::new(),
                notify_url: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(e, WxPayError::NoClientCertificate), "{e}");
        assert!(e.to_string().contains("wxpay.client_cert_file"));
    }
}
