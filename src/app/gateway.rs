//! The gateway of `wxpay.api`, built from the settings: its base URL and our
//! notify_url (the simulator's own address in simulator mode), the v2 or v3
//! adapter, and for v3 the platform certificates' refresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::checkout::gateway::Gateway;
use crate::config::{Api, Settings};
use crate::gateway::{WxPayV2, WxPayV3};
use crate::jobs::certificates::CertificateRefresh;
use crate::wxpay::v2::WxPayClient;
use crate::wxpay::v3::PublicKey;
use crate::wxpay::v3::client::V3Client;

/// The gateway of `wxpay.api`: `WxPayV2`, or `WxPayV3` with WeChat Pay
/// verified by its public key (`public_key_file`, or the simulator's own in
/// simulator mode) and/or by platform certificates downloaded now and kept
/// fresh (when no public key is configured; a failed first download is
/// retried in the background, answers meanwhile unbelievable).
pub(super) async fn build_gateway(
    settings: &Settings,
    addr: SocketAddr,
) -> anyhow::Result<(Arc<dyn Gateway>, Option<CertificateRefresh>)> {
    let (base, notify_url) = gateway(settings, addr);
    let wx = &settings.wxpay;
    if wx.api == Api::V2 {
        let client = WxPayClient::new(&base, wx.merchant_or_demo()?, wx.timeout())?;
        // Refunds' mutual TLS: the certificate is checked here, at start-up.
        let (gateway_ca, identity) = wx.refund_tls()?;
        let client = client.with_tls(gateway_ca.as_deref(), identity.as_ref())?;
        return Ok((Arc::new(WxPayV2::new(client, notify_url)), None));
    }
    let mut merchant = wx.v3_merchant_or_demo()?;
    if wx.is_simulator() && merchant.public_key.is_none() {
        // The app in simulator mode believes the simulator's own public key.
        merchant.public_key = Some(PublicKey {
            id: crate::sim::v3::keys::PUBLIC_KEY_ID.into(),
            pem: crate::sim::v3::keys::PUBLIC_KEY_PEM.into(),
        });
    }
    let (client, refresh) = v3_client(&base, &merchant, wx.timeout()).await?;
    let gateway = WxPayV3::new(client.clone(), merchant.apiv3_key.clone(), notify_url);
    Ok((Arc::new(gateway), refresh))
}

/// A v3 client for `merchant` at `base`; without a public key, its platform
/// certificates (downloaded by `connect`) and the refresh that keeps them.
async fn v3_client(
    base: &str,
    merchant: &crate::wxpay::v3::Merchant,
    timeout: Duration,
) -> anyhow::Result<(Arc<V3Client>, Option<CertificateRefresh>)> {
    let client = Arc::new(
        V3Client::connect(base.trim_end_matches('/'), merchant, timeout)
            .await
            .context("the API v3 client")?,
    );
    let refresh = merchant
        .public_key
        .is_none()
        .then(|| CertificateRefresh::new(client.clone(), merchant.apiv3_key.clone()));
    Ok((client, refresh))
}

/// Where a server listening on `listen` is reached from this machine
/// (`0.0.0.0:8080` is reached at `127.0.0.1:8080`).
pub(super) fn running_server(listen: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("listen address {listen:?}"))?
        .next()
        .with_context(|| format!("listen address {listen:?} names no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// The gateway's base URL and our notify_url. In simulator mode both are on our
/// own address: the simulator is mounted at `/sim/`.
fn gateway(settings: &Settings, addr: SocketAddr) -> (String, String) {
    let wx = &settings.wxpay;
    if wx.is_simulator() {
        let notify_url = wx
            .notify_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}{}", wx.notify_path()));
        (format!("http://{addr}/sim/"), notify_url)
    } else {
        (
            wx.gateway.clone(),
            wx.notify_url.clone().unwrap_or_default(),
        )
    }
}
