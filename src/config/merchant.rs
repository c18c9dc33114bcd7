//! The merchant behind `[wxpay]`: its keys read (the demo merchant filling
//! what simulator mode leaves unset) and the checks live mode makes before
//! it may take real money.

use super::*;

impl Wxpay {
    /// The merchant from the `wxpay.*` keys, the demo merchant filling what is unset.
    /// (Live mode refuses to start with anything unset: see `validate_live`.)
    pub fn merchant_or_demo(&self) -> Result<Merchant, ConfigError> {
        if self.api == Api::V3 {
            // appid and mch_id are the v3 merchant's: the v2 side stays the demo's.
            return Ok(Merchant {
                appid: DEMO_APPID.into(),
                mch_id: DEMO_MCH_ID.into(),
                key: ApiKey::new(DEMO_API_KEY)
                    .map_err(|_| ConfigError::Invalid("wxpay.api_key is empty".into()))?,
                sign_type: self.sign_type,
            });
        }
        let key = self
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_else(|| DEMO_API_KEY.to_string());
        Ok(Merchant {
            appid: self.appid.clone().unwrap_or_else(|| DEMO_APPID.into()),
            mch_id: self.mch_id.clone().unwrap_or_else(|| DEMO_MCH_ID.into()),
            key: ApiKey::new(key)
                .map_err(|_| ConfigError::Invalid("wxpay.api_key is empty".into()))?,
            sign_type: self.sign_type,
        })
    }

    /// The refund call's TLS: the gateway CA to trust (PEM bytes) and the
    /// merchant's certificate, read and checked (they parse and belong together).
    pub fn refund_tls(&self) -> Result<(Option<Vec<u8>>, Option<ClientIdentity>), ConfigError> {
        let ca = self
            .gateway_ca_file
            .as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| {
                    ConfigError::Invalid(format!("wxpay.gateway_ca_file {}: {e}", p.display()))
                })
            })
            .transpose()?;
        let identity = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some(ClientIdentity::from_files(cert, key).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "wxpay.client_cert_file / wxpay.client_key_file: {e}"
                    ))
                })?)
            }
            (Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "wxpay.client_cert_file is set but wxpay.client_key_file is not: refunds need both".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "wxpay.client_key_file is set but wxpay.client_cert_file is not: refunds need both".into(),
                ));
            }
        };
        Ok((ca, identity))
    }

    /// The path notify_url ends in for the protocol.
    pub fn notify_path(&self) -> &'static str {
        match self.api {
            Api::V2 => "/wxpay/notify",
            Api::V3 => "/wxpay/v3/notify",
        }
    }

    /// The v3 merchant from the `wxpay.*` keys, the demo v3 merchant filling
    /// what is unset (live mode refuses to start with anything unset: see
    /// `validate_live`). Reads the key files; names the key that is wrong.
    pub fn v3_merchant_or_demo(&self) -> Result<crate::wxpay::v3::Merchant, ConfigError> {
        // With `api = "v2"`, appid and mch_id are the v2 merchant's: v3 stays the demo's.
        let source = if self.api == Api::V3 {
            self.clone()
        } else {
            Wxpay::default()
        };
        let (m, problems) = source.read_v3(true);
        match m {
            Some(m) if problems.is_empty() => Ok(m),
            _ => Err(ConfigError::Invalid(problems.join("; "))),
        }
    }

    /// The v3 merchant and every problem with its keys; with `demo`, unset keys
    /// take the demo merchant's values (simulator mode), else they are missing.
    fn read_v3(&self, demo: bool) -> (Option<crate::wxpay::v3::Merchant>, Vec<String>) {
        use crate::wxpay::v3::{Merchant as V3, OFFICIAL_TEST_KEY_PEM, PublicKey, aead::ApiV3Key};
        let mut problems = Vec::new();
        let text =
            |key: &Option<String>, name: &str, env: &str, demo_value: &str, p: &mut Vec<String>| {
                match key.as_deref().filter(|v| !v.is_empty()) {
                    Some(v) => Some(v.to_string()),
                    None if demo => Some(demo_value.to_string()),
                    None => {
                        p.push(format!("missing wxpay.{name} ({env})"));
                        None
                    }
                }
            };
        let appid = text(
            &self.appid,
            "appid",
            "SCANPAY_WXPAY_APPID",
            DEMO_V3_APPID,
            &mut problems,
        );
        let mchid = text(
            &self.mch_id,
            "mch_id",
            "SCANPAY_WXPAY_MCH_ID",
            DEMO_V3_MCH_ID,
            &mut problems,
        );
        let cert_serial = text(
            &self.cert_serial,
            "cert_serial",
            "SCANPAY_WXPAY_CERT_SERIAL",
            DEMO_V3_CERT_SERIAL,
            &mut problems,
        );
        if let Some(s) = &cert_serial
            && !s.chars().all(|c| c.is_ascii_hexdigit())
        {
            problems.push(format!(
                "wxpay.cert_serial must be the certificate's serial in hex, as the merchant platform shows it, got {s:?}"
            ));
        }
        let apiv3_key = match &self.apiv3_key {
            Some(k) => match ApiV3Key::new(k.expose_secret()) {
                Ok(k) => Some(k),
                Err(_) => {
                    problems.push(
                        "wxpay.apiv3_key must be the 32-character APIv3 key set on the merchant platform"
                            .into(),
                    );
                    None
                }
            },
            None if demo => ApiV3Key::new(DEMO_V3_APIV3_KEY).ok(),
            None => {
                problems.push("missing wxpay.apiv3_key (SCANPAY_WXPAY_APIV3_KEY)".into());
                None
            }
        };
        let private_key_pem = match &self.private_key_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(pem) => {
                    match crate::wxpay::v3::sign::MerchantSigner::from_pem("", "", pem.as_bytes()) {
                        Ok(_) => Some(pem),
                        Err(e) => {
                            problems.push(format!(
                                "wxpay.private_key_file {}: not the merchant's API private key                                  (apiclient_key.pem, PKCS#8): {e}",
                                path.display()
                            ));
                            None
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!(
                        "wxpay.private_key_file {}: cannot read it: {e}",
                        path.display()
                    ));
                    None
                }
            },
            None if demo => Some(OFFICIAL_TEST_KEY_PEM.to_string()),
            None => {
                problems.push(
                    "missing wxpay.private_key_file (SCANPAY_WXPAY_PRIVATE_KEY_FILE): apiclient_key.pem"
                        .into(),
                );
                None
            }
        };
        let public_key = match (&self.public_key_file, self.public_key_id.as_deref()) {
            (None, None) => None,
            (Some(_), None) | (Some(_), Some("")) => {
                problems.push(
                    "wxpay.public_key_file is set without wxpay.public_key_id (PUB_KEY_ID_…)"
                        .into(),
                );
                None
            }
            (None, Some(_)) => {
                problems.push(
                    "wxpay.public_key_id is set without wxpay.public_key_file (pub_key.pem)".into(),
                );
                None
            }
            (Some(path), Some(id)) => match std::fs::read_to_string(path) {
                Ok(pem) => {
                    let mut k = crate::wxpay::v3::verify::WechatPayKeys::default();
                    match k.add_public_key_pem(id, pem.as_bytes()) {
                        Ok(()) => Some(PublicKey {
                            id: id.to_string(),
                            pem,
                        }),
                        Err(e) => {
                            problems.push(format!(
                                "wxpay.public_key_file {}: not a WeChat Pay public key (pub_key.pem, SPKI): {e}",
                                path.display()
                            ));
                            None
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!(
                        "wxpay.public_key_file {}: cannot read it: {e}",
                        path.display()
                    ));
                    None
                }
            },
        };
        let merchant = match (appid, mchid, cert_serial, private_key_pem, apiv3_key) {
            (Some(appid), Some(mchid), Some(cert_serial), Some(pem), Some(apiv3_key)) => Some(V3 {
                appid,
                mchid,
                cert_serial: cert_serial.to_ascii_uppercase(),
                private_key_pem: SecretString::from(pem),
                apiv3_key,
                public_key,
            }),
            _ => None,
        };
        (merchant, problems)
    }

    /// Live mode's checks: every credential present and well-formed. A notify_url
    /// that is not https is allowed (a test gateway) but warned about.
    pub fn validate_live(&self) -> Result<(), ConfigError> {
        let mut missing = Vec::new();
        let mut invalid = Vec::new();
        if self.api == Api::V3 {
            return self.validate_live_v3();
        }
        if self.appid.as_deref().is_none_or(str::is_empty) {
            missing.push("wxpay.appid (SCANPAY_WXPAY_APPID)");
        }
        if self.mch_id.as_deref().is_none_or(str::is_empty) {
            missing.push("wxpay.mch_id (SCANPAY_WXPAY_MCH_ID)");
        }
        match &self.api_key {
            None => missing.push("wxpay.api_key (SCANPAY_WXPAY_API_KEY)"),
            Some(k) if k.expose_secret().len() != 32 => invalid.push(
                "wxpay.api_key must be the 32-character API key from the merchant platform"
                    .to_string(),
            ),
            Some(_) => {}
        }
        let (no_notify_url, wrong) = self.live_endpoints(256);
        missing.extend(no_notify_url);
        invalid.extend(wrong);
        let problems = missing.into_iter().map(|m| format!("missing {m}"));
        self.live_verdict(
            "live mode needs its merchant settings:",
            problems.chain(invalid).collect(),
        )
    }

    /// Live mode's verdict on `problems`: all of them under `heading`, or none
    /// (then only a warning if notify_url is not https, as a test gateway may be).
    fn live_verdict(&self, heading: &str, problems: Vec<String>) -> Result<(), ConfigError> {
        if problems.is_empty() {
            if !self
                .notify_url
                .as_deref()
                .unwrap_or("")
                .starts_with("https://")
            {
                tracing::warn!(
                    "wxpay.notify_url is not https: the real gateway needs an https notify_url"
                );
            }
            return Ok(());
        }
        let mut msg = String::from(heading);
        for p in problems {
            msg.push_str(&format!("\n  - {p}"));
        }
        Err(ConfigError::Invalid(msg))
    }

    /// What a live gateway needs of `notify_url` (ending in the protocol's
    /// path, no query, at most `max_len` bytes) and `gateway`: the missing
    /// notify_url (its key and env var), and every other problem.
    fn live_endpoints(&self, max_len: usize) -> (Option<&'static str>, Vec<String>) {
        let mut wrong = Vec::new();
        let path = self.notify_path();
        let missing = match self.notify_url.as_deref() {
            None | Some("") => Some("wxpay.notify_url (SCANPAY_WXPAY_NOTIFY_URL)"),
            Some(u) => {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || !u.ends_with(path)
                    || u.contains('?')
                    || u.len() > max_len
                {
                    wrong.push(format!(
                        "wxpay.notify_url must be an absolute URL ending in {path} with no query, got {u:?}"
                    ));
                }
                None
            }
        };
        if !(self.gateway.starts_with("https://") || self.gateway.starts_with("http://")) {
            wrong.push(format!(
                "wxpay.gateway must be \"simulator\" or the gateway's base URL, got {:?}",
                self.gateway
            ));
        }
        (missing, wrong)
    }

    /// Live v3: every key present, every key file readable and of the right kind.
    fn validate_live_v3(&self) -> Result<(), ConfigError> {
        let (_, mut problems) = self.read_v3(false);
        let (no_notify_url, wrong) = self.live_endpoints(255);
        problems.extend(no_notify_url.map(|m| format!("missing {m}")));
        problems.extend(wrong);
        self.live_verdict(
            "live mode (wxpay.api = \"v3\") needs its merchant settings:",
            problems,
        )
    }
}
