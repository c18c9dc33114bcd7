//! `GET /v3/bill/tradebill` and its download (wxpay-v3-refunds-bills.md §1.6):
//! the first answer is signed JSON naming a `download_url` and the SHA-1 of the
//! uncompressed file; the download itself is not signed, so the hash is what
//! vouches for it. The file's text is the same family as v2's (`crate::wxpay::bill`).

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// A bill of a busy shop is a few MB; this bounds a runaway (or hostile) file.
pub const MAX_BILL_BYTES: u64 = 64 * 1024 * 1024;

/// The signed answer to `GET /v3/bill/tradebill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeBill {
    pub hash_type: String,
    pub hash_value: String,
    pub download_url: String,
}

/// The request's path and query (signed as such): every kind of row, gzip.
pub fn tradebill_path(day: jiff::civil::Date) -> String {
    format!("/v3/bill/tradebill?bill_date={day}&bill_type=ALL&tar_type=GZIP")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillFileError {
    #[error("the bill's hash type {0:?} is not SHA1")]
    HashType(String),
    #[error("the bill does not unpack: {0}")]
    Gzip(String),
    #[error("the bill is larger than {MAX_BILL_BYTES} bytes")]
    TooLarge,
    #[error("the bill's SHA-1 is not the one its answer named")]
    Hash,
    #[error("the bill is not UTF-8 text")]
    NotText,
    #[error("the download URL {0:?} is not on the gateway")]
    Foreign(String),
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

/// Unpacks a downloaded bill and checks it against its signed answer.
pub fn open_file(bytes: &[u8], answer: &TradeBill) -> Result<String, BillFileError> {
    if !answer.hash_type.eq_ignore_ascii_case("SHA1") {
        return Err(BillFileError::HashType(answer.hash_type.clone()));
    }
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_BILL_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| BillFileError::Gzip(e.to_string()))?;
    if text.len() as u64 > MAX_BILL_BYTES {
        return Err(BillFileError::TooLarge);
    }
    if !sha1_hex(&text).eq_ignore_ascii_case(answer.hash_value.trim()) {
        return Err(BillFileError::Hash);
    }
    String::from_utf8(text).map_err(|_| BillFileError::NotText)
}

/// Our Authorization goes only to the gateway we talk to: the download URL must
/// be under its base URL. Returns the path and query after the base URL.
pub fn download_path<'a>(download_url: &'a str, base_url: &str) -> Result<&'a str, BillFileError> {
    let base = base_url.trim_end_matches('/');
    match download_url.strip_prefix(base) {
        Some(rest) if rest.starts_with('/') => Ok(rest),
        // Named without its query: the token in it is a credential.
        _ => Err(BillFileError::Foreign(
            download_url.split('?').next().unwrap_or("").to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::gzip::gzip;

    fn answer_for(text: &str) -> TradeBill {
        TradeBill {
            hash_type: "SHA1".into(),
            hash_value: sha1_hex(text.as_bytes()).to_uppercase(),
            download_url: "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x".into(),
        }
    }

    #[test]
    fn a_file_is_believed_only_with_its_hash() {
        let text = "交易时间,公众账号ID\n`2026-12-01 10:00:00,`wx\n";
        let gz = gzip(text.as_bytes());
        assert_eq!(open_file(&gz, &answer_for(text)).unwrap(), text);
        assert_eq!(
            open_file(&gz, &answer_for("another")),
            Err(BillFileError::Hash)
        );
        let mut md5 = answer_for(text);
        md5.hash_type = "MD5".into();
        assert!(matches!(
            open_file(&gz, &md5),
            Err(BillFileError::HashType(_))
        ));
        assert!(matches!(
            open_file(b"not gzip", &answer_for(text)),
            Err(BillFileError::Gzip(_))
        ));
    }

    #[test]
    fn sha1_is_sha1() {
        // FIPS 180 "abc".
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn the_authorization_goes_only_to_the_gateway() {
        let base = "https://api.mch.weixin.qq.com";
        assert_eq!(
            download_path(
                "https://api.mch.weixin.qq.com/v3/billdownload/file?token=a",
                base
            ),
            Ok("/v3/billdownload/file?token=a")
        );
        assert_eq!(
            download_path(
                "http://127.0.0.1:8080/sim/v3/billdownload/file?t=1",
                "http://127.0.0.1:8080/sim/"
            ),
            Ok("/v3/billdownload/file?t=1")
        );
        assert!(
            download_path(
                "http://127.0.0.1:8080/other/v3/x",
                "http://127.0.0.1:8080/sim"
            )
            .is_err(),
            "not under the base"
        );
        for evil in [
            "https://api.mch.weixin.qq.com.evil.example/v3/x",
            "https://evil.example/v3/billdownload/file",
            "http://api.mch.weixin.qq.com/v3/x",
        ] {
            assert!(download_path(evil, base).is_err(), "{evil}");
        }
        assert_eq!(
            tradebill_path(jiff::civil::date(2026, 12, 1)),
            "/v3/bill/tradebill?bill_date=2026-12-01&bill_type=ALL&tar_type=GZIP"
        );
    }
}
