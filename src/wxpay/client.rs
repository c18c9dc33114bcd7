//! The thin transport: sign, POST, read at most a capped body, verify, parse.

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use super::api::{
    self, CloseOrder, Endpoint, Merchant, OrderQuery, Prepay, QueryResult, UnifiedOrder, WxPayError,
};
use super::xml::{self, MAX_XML_BYTES};

use crate::http_client::describe;
pub use crate::http_client::install_crypto_provider;

/// A fresh random `nonce_str` (32 alphanumerics).
pub fn nonce() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

#[derive(Debug, Clone)]
pub struct WxPayClient {
    http: reqwest::Client,
    base_url: String,
    merchant: Merchant,
}

impl WxPayClient {
    /// `base_url` is the gateway root, e.g. `https://api.mch.weixin.qq.com/`.
    pub fn new(base_url: &str, merchant: Merchant, timeout: Duration) -> Result<Self, WxPayError> {
        let http = crate::http_client::build(timeout).map_err(WxPayError::Transport)?;
        let mut base_url = base_url.to_string();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(WxPayClient {
            http,
            base_url,
            merchant,
        })
    }

    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// One call: the answer is believed only after its signature and merchant check out.
    #[tracing::instrument(name = "wxpay", skip_all, fields(endpoint = E::PATH))]
    pub async fn call<E: Endpoint>(&self, req: &E) -> Result<E::Output, WxPayError> {
        let body = self.post(E::PATH, req, MAX_XML_BYTES).await?;
        let answer = xml::from_xml(&body).map_err(|e| WxPayError::BadResponse(e.to_string()))?;
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
        let mut resp = self
            .http
            .post(&url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(xml::to_xml(&fields))
            .send()
            .await
            .map_err(|e| WxPayError::Transport(describe(e)))?;
        if !resp.status().is_success() {
            return Err(WxPayError::Transport(format!("HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| WxPayError::Transport(describe(e)))?
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
}
