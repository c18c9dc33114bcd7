//! API v3 platform certificates, downloaded again before they expire (hourly,
//! as WeChat Pay's own SDK does), or soon after a failed download.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::wxpay::v3::aead::ApiV3Key;
use crate::wxpay::v3::client::V3Client;

/// The v3 client whose platform certificates are downloaded again before they expire.
pub struct CertificateRefresh {
    client: Arc<V3Client>,
    apiv3_key: ApiV3Key,
    /// After a failed download, try again this soon (`CERTIFICATE_RETRY`).
    retry: Duration,
}

/// How often platform certificates are downloaded again (WeChat Pay's own SDK:
/// hourly; certificates overlap for weeks when they rotate).
const CERTIFICATE_REFRESH: Duration = Duration::from_secs(3600);
/// After a failed download, try again this soon.
const CERTIFICATE_RETRY: Duration = Duration::from_secs(10);

impl CertificateRefresh {
    pub fn new(client: Arc<V3Client>, apiv3_key: ApiV3Key) -> Self {
        CertificateRefresh {
            client,
            apiv3_key,
            retry: CERTIFICATE_RETRY,
        }
    }

    /// Tries a failed download again after `every` instead of `CERTIFICATE_RETRY`.
    pub fn retry_after(&mut self, every: Duration) {
        self.retry = every;
    }

    pub async fn run(self, stop: CancellationToken) {
        let mut wait = if self.client.certificates().is_empty() {
            self.retry
        } else {
            CERTIFICATE_REFRESH
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.client.refresh_certificates(&self.apiv3_key).await {
                Ok(certs) => {
                    tracing::info!(count = certs.len(), "platform certificates refreshed");
                    CERTIFICATE_REFRESH
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "platform certificates not refreshed; will retry");
                    self.retry
                }
            };
        }
    }
}
