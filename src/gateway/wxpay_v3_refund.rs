//! API v3 refunds behind the seam (the adapter's refund half, kept apart from
//! `wxpay_v3.rs` so the two can change independently).

use crate::checkout::gateway::{GatewayError, RefundRequest, RefundStatus};
use crate::trade::OutRefundNo;
use crate::wxpay_v3::client::V3Client;

pub(super) async fn refund(
    _client: &V3Client,
    _req: &RefundRequest,
) -> Result<RefundStatus, GatewayError> {
    Err(GatewayError::Protocol(
        "API v3 refunds are not available in this version".into(),
    ))
}

pub(super) async fn query(
    _client: &V3Client,
    _out_refund_no: &OutRefundNo,
) -> Result<RefundStatus, GatewayError> {
    Err(GatewayError::Protocol(
        "API v3 refunds are not available in this version".into(),
    ))
}
