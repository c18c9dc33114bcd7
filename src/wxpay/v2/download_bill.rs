//! `pay/downloadbill`: one day's trade bill. The answer is the bill's text
//! itself, not signed XML (only HTTPS vouches for it); a failure is XML with
//! `return_code` FAIL and a `return_msg` that says why (wxpay-v3-refunds-bills.md §2.4).

use super::api::{Endpoint, WxPayError};
use super::client::WxPayClient;
use super::xml::{self, Fields};

/// A bill of a busy shop is a few MB; this bounds a runaway answer.
pub const MAX_BILL_BYTES: usize = 64 * 1024 * 1024;

/// The request (`bill_date` as `yyyyMMdd`, every kind of row).
#[derive(Debug, Clone)]
pub struct DownloadBill {
    pub bill_date: String,
}

impl Endpoint for DownloadBill {
    const PATH: &'static str = "pay/downloadbill";
    type Output = ();

    fn fields(&self) -> Fields {
        let mut f = Fields::new();
        f.set("bill_date", &self.bill_date);
        f.set("bill_type", "ALL");
        f
    }

    fn parse(_: &Fields) -> Result<(), WxPayError> {
        Ok(())
    }
}

/// What the gateway had for the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillDownload {
    /// The bill's text.
    Bill(String),
    /// "No Bill Exist": the merchant had no trade that day, so there is no bill.
    NoTrades,
    /// "Bill Creating": not ready yet (bills come after 10:00 the next day).
    NotReady,
}

/// Reads the gateway's answer to [`DownloadBill`].
pub fn read_answer(body: &[u8]) -> Result<BillDownload, WxPayError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        WxPayError::BadResponse(crate::base::cause::Failure::because(
            "the bill is not UTF-8 text",
            e,
        ))
    })?;
    if !text.trim_start().starts_with('<') {
        return Ok(BillDownload::Bill(text.to_string()));
    }
    let fields = xml::from_xml(body)
        .map_err(|e| WxPayError::BadResponse(crate::base::cause::Failure::of(e)))?;
    let msg = fields.get("return_msg").unwrap_or("").trim();
    match msg.to_ascii_lowercase().as_str() {
        "no bill exist" => Ok(BillDownload::NoTrades),
        "bill creating" => Ok(BillDownload::NotReady),
        _ => Err(WxPayError::Protocol {
            return_msg: msg.to_string(),
        }),
    }
}

impl WxPayClient {
    pub async fn download_bill(&self, req: &DownloadBill) -> Result<BillDownload, WxPayError> {
        let body = self.post(DownloadBill::PATH, req, MAX_BILL_BYTES).await?;
        read_answer(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_bill_and_each_documented_failure() {
        let bill = "交易时间,公众账号ID\n`2019-07-25 08:35:41,`wx\n";
        assert_eq!(
            read_answer(bill.as_bytes()).unwrap(),
            BillDownload::Bill(bill.into())
        );
        // The failure shape the official API description gives.
        let none = "<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg><error_code>20002</error_code></xml>";
        assert_eq!(
            read_answer(none.as_bytes()).unwrap(),
            BillDownload::NoTrades
        );
        let creating =
            "<xml><return_code>FAIL</return_code><return_msg>Bill Creating</return_msg></xml>";
        assert_eq!(
            read_answer(creating.as_bytes()).unwrap(),
            BillDownload::NotReady
        );
        let sign = "<xml><return_code>FAIL</return_code><return_msg>SIGN ERROR</return_msg></xml>";
        assert!(matches!(
            read_answer(sign.as_bytes()),
            Err(WxPayError::Protocol { return_msg }) if return_msg == "SIGN ERROR"
        ));
        assert!(read_answer(b"<xml><oops").is_err());
        assert!(read_answer(&[0xff, 0xfe]).is_err());
    }
}
