//! Platform certificates: `GET /v3/certificates` lists WeChat Pay's
//! certificates, each encrypted with the APIv3 key (associated data
//! `certificate`). Of a certificate scanpay needs only its serial and its
//! public key, read here from the DER without an X.509 library; what makes it
//! believable is that it decrypted with our APIv3 key and that the answer
//! verifies with it.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::KeyError;
use super::aead::{self, AeadError, ApiV3Key};

/// `GET /v3/certificates`.
pub const CERTIFICATES_PATH: &str = "/v3/certificates";
/// The associated data of an encrypted certificate.
pub const ASSOCIATED_DATA: &str = "certificate";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptCertificate {
    pub algorithm: String,
    pub nonce: String,
    #[serde(default)]
    pub associated_data: String,
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    pub serial_no: String,
    pub effective_time: String,
    pub expire_time: String,
    pub encrypt_certificate: EncryptCertificate,
}

/// The answer of `GET /v3/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatesAnswer {
    pub data: Vec<CertificateEntry>,
}

/// A platform certificate as scanpay keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformCert {
    /// Upper-case hex, as `Wechatpay-Serial` names it.
    pub serial: String,
    /// The certificate's SubjectPublicKeyInfo (DER).
    pub spki: Vec<u8>,
    /// When it stops being valid, if the listing said.
    pub expires: Option<jiff::Timestamp>,
}

impl PlatformCert {
    pub fn from_pem(pem: &[u8]) -> Result<PlatformCert, KeyError> {
        let der = CertificateDer::from_pem_slice(pem).map_err(|_| KeyError::Pem("CERTIFICATE"))?;
        Self::from_der(der.as_ref())
    }

    /// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    /// serialNumber INTEGER, signature, issuer, validity, subject,
    /// subjectPublicKeyInfo, … }, … }
    pub fn from_der(der: &[u8]) -> Result<PlatformCert, KeyError> {
        let bad = |what: &str| KeyError::Rsa(format!("not an X.509 certificate ({what})"));
        let (cert, _) = element(der, 0x30).ok_or_else(|| bad("certificate"))?;
        let (tbs, _) = element(content(cert), 0x30).ok_or_else(|| bad("tbsCertificate"))?;
        let mut rest = content(tbs);
        if rest.first() == Some(&0xa0) {
            rest = element(rest, 0xa0).ok_or_else(|| bad("version"))?.1;
        }
        let (serial, r) = element(rest, 0x02).ok_or_else(|| bad("serial"))?;
        rest = r;
        let mut validity: &[u8] = &[];
        for what in ["signature", "issuer", "validity", "subject"] {
            let (this, r) = element(rest, 0x30).ok_or_else(|| bad(what))?;
            if what == "validity" {
                validity = this;
            }
            rest = r;
        }
        let (spki, _) = element(rest, 0x30).ok_or_else(|| bad("subjectPublicKeyInfo"))?;
        let serial = content(serial);
        let serial = match serial {
            [0, tail @ ..] if !tail.is_empty() => tail,
            s => s,
        };
        Ok(PlatformCert {
            serial: hex::encode_upper(serial),
            spki: spki.to_vec(),
            expires: not_after(validity),
        })
    }
}

/// When a certificate stops being valid: `Validity ::= SEQUENCE { notBefore
/// Time, notAfter Time }`, `Time` a UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049)
/// or a GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280 §4.1.2.5 has them.
fn not_after(validity: &[u8]) -> Option<jiff::Timestamp> {
    fn time(input: &[u8]) -> Option<(&[u8], &[u8], bool)> {
        match input.first()? {
            0x17 => element(input, 0x17).map(|(t, r)| (t, r, true)),
            0x18 => element(input, 0x18).map(|(t, r)| (t, r, false)),
            _ => None,
        }
    }
    let (_, rest, _) = time(content(validity))?;
    let (t, _, utc_time) = time(rest)?;
    let text = std::str::from_utf8(content(t)).ok()?.strip_suffix('Z')?;
    let full = if utc_time {
        let yy: u8 = text.get(..2)?.parse().ok()?;
        format!("{}{text}", if yy >= 50 { "19" } else { "20" })
    } else {
        text.to_string()
    };
    jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", &full)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// One DER element with tag `tag` at the start of `input`: (the whole element, what follows).
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((whole, &input[end..]))
}

/// The content of an element `element` returned.
fn content(element: &[u8]) -> &[u8] {
    let first = element.get(1).copied().unwrap_or(0);
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    element.get(header..).unwrap_or(&[])
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate list is not JSON: {0}")]
    Json(String),
    #[error("certificate {serial}: {source}")]
    Decrypt { serial: String, source: AeadError },
    #[error("certificate {serial}: {source}")]
    Key { serial: String, source: KeyError },
    #[error(
        "certificate {serial}: the listing says serial {serial} but the certificate is {actual}"
    )]
    Serial { serial: String, actual: String },
}

/// Decrypts every certificate of a `/v3/certificates` answer.
pub fn decrypt_all(answer: &[u8], key: &ApiV3Key) -> Result<Vec<PlatformCert>, CertError> {
    let list: CertificatesAnswer =
        serde_json::from_slice(answer).map_err(|e| CertError::Json(e.to_string()))?;
    list.data
        .iter()
        .map(|e| {
            let c = &e.encrypt_certificate;
            let pem = aead::decrypt(
                key,
                &c.algorithm,
                &c.nonce,
                &c.associated_data,
                &c.ciphertext,
            )
            .map_err(|source| CertError::Decrypt {
                serial: e.serial_no.clone(),
                source,
            })?;
            let mut cert = PlatformCert::from_pem(&pem).map_err(|source| CertError::Key {
                serial: e.serial_no.clone(),
                source,
            })?;
            if !cert.serial.eq_ignore_ascii_case(&e.serial_no) {
                return Err(CertError::Serial {
                    serial: e.serial_no.clone(),
                    actual: cert.serial,
                });
            }
            // The listing's word, else the certificate's own notAfter.
            cert.expires = e
                .expire_time
                .parse::<jiff::Timestamp>()
                .ok()
                .or(cert.expires);
            Ok(cert)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../sim/v3/sim_platform_cert.pem");
    const SERIAL: &str = "5311F63F7F553C48090DFBE9D1F405C3F32C7B9D";

    fn listing(key: &ApiV3Key, serial: &str, pem: &[u8]) -> Vec<u8> {
        let answer = CertificatesAnswer {
            data: vec![CertificateEntry {
                serial_no: serial.into(),
                effective_time: "2026-12-01T19:17:31+08:00".into(),
                expire_time: "2036-11-28T19:17:31+08:00".into(),
                encrypt_certificate: EncryptCertificate {
                    algorithm: aead::ALGORITHM.into(),
                    nonce: "0123456789ab".into(),
                    associated_data: ASSOCIATED_DATA.into(),
                    ciphertext: aead::encrypt(key, "0123456789ab", ASSOCIATED_DATA, pem).unwrap(),
                },
            }],
        };
        serde_json::to_vec(&answer).unwrap()
    }

    #[test]
    fn a_certificate_says_when_it_expires() {
        // UTCTime: the simulator's platform certificate (openssl: notAfter=Nov 28 11:17:31 2036 GMT).
        let c = PlatformCert::from_pem(CERT.as_bytes()).unwrap();
        assert_eq!(c.expires, Some("2036-11-28T11:17:31Z".parse().unwrap()));
        // GeneralizedTime, from 2050 on, and a UTCTime in the last century.
        for (year, expect) in [
            (2051, "2051-03-04T05:06:07Z"),
            (1999, "1999-03-04T05:06:07Z"),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["10000100".into()]).unwrap();
            params.not_before = rcgen::date_time_ymd(1990, 1, 1);
            params.not_after = rcgen::date_time_ymd(year, 3, 4)
                + std::time::Duration::from_secs(5 * 3600 + 6 * 60 + 7);
            let pem = params.self_signed(&key).unwrap().pem();
            let c = PlatformCert::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(c.expires, Some(expect.parse().unwrap()), "{year}");
        }
    }

    #[test]
    fn a_listing_decrypts_to_the_certificates_serial_key_and_expiry() {
        let key = ApiV3Key::new("scanpay-demo-apiv3-key-000000000").unwrap();
        let certs = decrypt_all(&listing(&key, SERIAL, CERT.as_bytes()), &key).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].serial, SERIAL);
        assert_eq!(
            certs[0].expires,
            Some("2036-11-28T11:17:31Z".parse().unwrap())
        );
        let mut k = super::super::verify::WechatPayKeys::default();
        k.add_spki_der(&certs[0].serial, &certs[0].spki).unwrap();

        let other = ApiV3Key::new("another-apiv3-key-00000000000000").unwrap();
        assert!(matches!(
            decrypt_all(&listing(&key, SERIAL, CERT.as_bytes()), &other),
            Err(CertError::Decrypt { .. })
        ));
        assert!(matches!(
            decrypt_all(&listing(&key, "0A", CERT.as_bytes()), &key),
            Err(CertError::Serial { .. })
        ));
        assert!(matches!(
            decrypt_all(&listing(&key, SERIAL, b"not a certificate"), &key),
            Err(CertError::Key { .. })
        ));
        assert!(PlatformCert::from_der(&[0x30, 0x03, 0x02, 0x01]).is_err());
    }
}
