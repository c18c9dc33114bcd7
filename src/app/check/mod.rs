//! `scanpay check`: what an operator runs before going live. A list of checks,
//! each one line (✓ pass, ! warning, ✗ failure, - skipped), over the settings
//! as `serve` loads them and one harmless signed request to the gateway (a query
//! for an order that cannot exist). Exit 0 when nothing failed: warnings are
//! printed but do not fail (a test gateway on plain http is a fair setup).
//!
//! New protocols and keys add entries: `key_files` lists every file holding a
//! secret (today the config file, which holds the v2 API key; v3 adds the
//! merchant's private key), and `certificates` gets the platform certificates.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::base::cause::chain;
use crate::config::{Api, Settings};
use crate::wxpay::v2::{ErrCode, OrderQuery, OutTradeNo, WxPayClient, WxPayError};

mod files;
mod gateway;
mod network;

pub use files::{KeyFile, key_files};
use files::{database, key_file};
pub use gateway::{certificate_outcome, gateway_outcomes};
use gateway::{gateway, gateway_v3, refund_certificate};
pub use network::{clock_outcome, notify_url};

/// Past this difference with the gateway's clock, signed timestamps (v3) and
/// `time_expire` go wrong.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
}

impl Outcome {
    fn new(status: Status, check: &'static str, detail: impl Into<String>) -> Self {
        Outcome {
            status,
            check,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.mark(), self.check, self.detail)
    }
}

/// Runs every check, prints one line each, and gives the exit code.
pub async fn run(settings: &Settings, config_file: Option<&Path>) -> ExitCode {
    let outcomes = checks(settings, config_file).await;
    for o in &outcomes {
        println!("{o}");
    }
    let failed = outcomes.iter().filter(|o| o.status == Status::Fail).count();
    let warned = outcomes.iter().filter(|o| o.status == Status::Warn).count();
    // 0 only when all is well; a warning (a refund certificate not set, a
    // notify_url WeChat Pay cannot reach, a certificate near its end) is 2, so a
    // script can tell "ready but look" from "not ready" (1).
    if failed > 0 {
        println!("scanpay check: {failed} failed, {warned} warning(s): not ready");
        ExitCode::FAILURE
    } else if warned > 0 {
        println!("scanpay check: nothing failed, but look at the {warned} warning(s) above");
        ExitCode::from(2)
    } else {
        println!("scanpay check: all well");
        ExitCode::SUCCESS
    }
}

/// Every check, in the order they are printed.
pub async fn checks(settings: &Settings, config_file: Option<&Path>) -> Vec<Outcome> {
    let wx = &settings.wxpay;
    let mut out = Vec::new();
    if wx.is_simulator() {
        out.push(Outcome::new(
            Status::Warn,
            "mode",
            "simulator mode (wxpay.gateway = \"simulator\"): no real money; \
             set wxpay.gateway and the merchant keys to check a real gateway",
        ));
    } else {
        out.push(Outcome::new(
            Status::Pass,
            "mode",
            format!("live mode, gateway {}", wx.gateway),
        ));
        match wx.validate_live() {
            Ok(()) if wx.api == Api::V3 => out.push(Outcome::new(
                Status::Pass,
                "settings",
                "appid, mch_id, apiv3_key (32 characters), private_key_file (PKCS#8), \
                 cert_serial and notify_url are set",
            )),
            Ok(()) => out.push(Outcome::new(
                Status::Pass,
                "settings",
                "appid, mch_id, api_key (32 characters) and notify_url are set",
            )),
            Err(e) => out.push(Outcome::new(Status::Fail, "settings", e.to_string())),
        }
    }
    out.push(protocol(settings));
    if !wx.is_simulator() {
        out.push(database(&settings.data_dir));
    }
    out.extend(key_files(settings, config_file).iter().map(key_file));
    if let Some(url) = wx.notify_url.as_deref() {
        out.push(notify_url(url));
    } else if !wx.is_simulator() {
        out.push(Outcome::new(
            Status::Fail,
            "notify_url",
            "wxpay.notify_url is not set",
        ));
    }
    // The gateway is asked whenever the merchant settings are complete, even if
    // other checks failed: the key can be checked before the admin exists.
    let settings_ok = !out
        .iter()
        .any(|o| o.status == Status::Fail && o.check == "settings");
    if wx.is_simulator() {
        out.push(Outcome::new(
            Status::Skip,
            "gateway",
            "simulator mode: the gateway is the app's own /sim/",
        ));
    } else if settings_ok && wx.api == Api::V3 {
        out.extend(gateway_v3(settings).await);
    } else if settings_ok {
        out.extend(gateway(settings).await);
    } else {
        out.push(Outcome::new(
            Status::Skip,
            "gateway",
            "not asked until the settings above are right",
        ));
    }
    if wx.api == Api::V2 {
        out.push(refund_certificate(settings));
    }
    out
}

/// Which protocol, and how answers are believed.
fn protocol(settings: &Settings) -> Outcome {
    let wx = &settings.wxpay;
    if wx.api == Api::V2 {
        return Outcome::new(
            Status::Pass,
            "protocol",
            format!(
                "WeChat Pay API v2, {} signatures; every answer is believed only after its \
                 signature checks out with the API key",
                wx.sign_type.as_str()
            ),
        );
    }
    let how = match wx.public_key_id.as_deref() {
        Some(id) if wx.public_key_file.is_some() => format!(
            "the WeChat Pay public key {id} (and platform certificates by serial, if WeChat Pay still uses them)"
        ),
        _ if wx.is_simulator() => "the simulator's public key".to_string(),
        _ => "platform certificates downloaded from /v3/certificates, decrypted with the APIv3 key"
            .to_string(),
    };
    Outcome::new(
        Status::Pass,
        "protocol",
        format!(
            "WeChat Pay API v3, SHA256-RSA2048 requests signed with the merchant's API key; \
             every answer and notification is believed only after its signature checks out with {how}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::files::*;
    use super::gateway::*;
    use super::network::*;
    use super::*;

    #[test]
    fn notify_urls_that_the_gateway_cannot_reach_are_warned_about() {
        for url in [
            "http://shop.example.com/wxpay/notify",
            "https://127.0.0.1/wxpay/notify",
            "https://10.1.2.3/wxpay/notify",
            "https://192.168.0.5:8443/wxpay/notify",
            "https://172.20.0.1/wxpay/notify",
            "https://100.64.0.1/wxpay/notify",
            "https://[::1]/wxpay/notify",
            "https://[fd00::1]/wxpay/notify",
            "https://localhost/wxpay/notify",
            "https://till.local/wxpay/notify",
            "https://intranet/wxpay/notify",
        ] {
            assert_eq!(notify_url(url).status, Status::Warn, "{url}");
        }
        assert_eq!(
            notify_url("https://shop.example.com/wxpay/notify").status,
            Status::Pass
        );
        assert_eq!(
            notify_url("https://8.8.8.8/wxpay/notify").status,
            Status::Pass
        );
        assert_eq!(notify_url("not a url").status, Status::Fail);
    }

    #[test]
    fn the_probe_answer_says_who_refused_what() {
        let ok = gateway_outcomes::<()>(
            "g",
            &Err(WxPayError::Business {
                code: ErrCode::OrderNotExist,
                description: "no".into(),
            }),
        );
        assert!(ok.iter().all(|o| o.status == Status::Pass), "{ok:?}");
        let refused = gateway_outcomes::<()>(
            "g",
            &Err(WxPayError::Protocol {
                return_msg: "签名错误".into(),
            }),
        );
        assert_eq!(refused[0].status, Status::Fail);
        assert!(
            refused[0]
                .detail
                .starts_with("signature refused: the API key does not match the merchant"),
            "{refused:?}"
        );
        let other_merchant = gateway_outcomes::<()>(
            "g",
            &Err(WxPayError::Business {
                code: ErrCode::parse("MCHID_NOT_EXIST"),
                description: "商户号不存在".into(),
            }),
        );
        assert_eq!(other_merchant[1].status, Status::Fail, "{other_merchant:?}");
        assert!(other_merchant[1].detail.contains("wxpay.mch_id"));
        let unverified =
            gateway_outcomes::<()>("g", &Err(WxPayError::BadResponse("bad sign".into())));
        assert_eq!(unverified[0].status, Status::Fail);
        assert!(unverified[0].detail.contains("cannot verify"));
        let down = gateway_outcomes::<()>(
            "http://127.0.0.1:9/",
            &Err(WxPayError::Transport("connection failed".into())),
        );
        assert_eq!(down[0].status, Status::Fail);
        assert!(
            down[0]
                .detail
                .contains("cannot reach the gateway at http://127.0.0.1:9/")
        );
    }

    #[test]
    fn clock_skew_past_five_minutes_is_a_warning() {
        let now: jiff::Timestamp = "2026-12-01T09:30:51Z".parse().unwrap();
        let o = clock_outcome("Tue, 01 Dec 2026 09:30:50 GMT", now);
        assert_eq!(o.status, Status::Pass, "{o}");
        let o = clock_outcome("Tue, 01 Dec 2026 09:20:51 GMT", now);
        assert_eq!(o.status, Status::Warn, "{o}");
        assert!(o.detail.contains("600s ahead"), "{o}");
        assert_eq!(clock_outcome("yesterday", now).status, Status::Skip);
    }

    #[test]
    fn the_v2_refund_certificate_is_checked_before_the_first_refund() {
        let dir = tempfile::tempdir().unwrap();
        let pair = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["10000100".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let (c, k) = (
                dir.path().join(format!("{name}_cert.pem")),
                dir.path().join(format!("{name}_key.pem")),
            );
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            (c, k)
        };
        let (cert, key) = pair("a");
        let (_, other_key) = pair("b");
        let mut s = Settings::default();
        s.wxpay.gateway = "https://api.mch.weixin.qq.com/".into();
        let o = refund_certificate(&s);
        assert_eq!(o.status, Status::Warn, "{o}");
        assert!(
            o.detail.contains("client_cert_file"),
            "says what to set: {o}"
        );
        s.wxpay.client_cert_file = Some(cert.clone());
        s.wxpay.client_key_file = Some(key.clone());
        assert_eq!(refund_certificate(&s).status, Status::Pass);
        assert_eq!(
            key_files(&s, None).len(),
            1,
            "the key's permissions are checked too"
        );
        s.wxpay.client_key_file = Some(other_key);
        let o = refund_certificate(&s);
        assert_eq!(o.status, Status::Fail, "{o}");
        assert!(o.detail.contains("does not belong"), "{o}");
        s.wxpay.client_key_file = None;
        assert_eq!(refund_certificate(&s).status, Status::Fail, "half a pair");
    }

    #[test]
    fn the_v2_refund_certificate_is_warned_of_near_expiry_and_fails_once_expired() {
        let dir = tempfile::tempdir().unwrap();
        let today = jiff::Zoned::now().date();
        let mut s = Settings::default();
        s.wxpay.gateway = "https://api.mch.weixin.qq.com/".into();
        for (days, status, says) in [
            (400, Status::Pass, "expires in"),
            (10, Status::Warn, "expires in"),
            (-1, Status::Fail, "expired at"),
        ] {
            let end = today.checked_add(jiff::Span::new().days(days)).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["10000100".into()]).unwrap();
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(
                i32::from(end.year()),
                end.month().try_into().unwrap(),
                end.day().try_into().unwrap(),
            );
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, params.self_signed(&key).unwrap().pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            s.wxpay.client_cert_file = Some(c);
            s.wxpay.client_key_file = Some(k);
            let o = refund_certificate(&s);
            assert_eq!(o.status, status, "{days} days: {o}");
            assert!(o.detail.contains(says), "{days} days: {o}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_config_file_with_the_key_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scanpay.toml");
        std::fs::write(&path, "[wxpay]\napi_key = \"x\"\n").unwrap();
        let settings = Settings::default();
        let files = key_files(&settings, Some(&path));
        assert_eq!(files.len(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = key_file(&files[0]);
        assert_eq!(o.status, Status::Warn, "{o}");
        assert!(o.detail.contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key_file(&files[0]).status, Status::Pass);
        std::fs::write(&path, "[shop]\nname = \"x\"\n").unwrap();
        assert!(
            key_files(&settings, Some(&path)).is_empty(),
            "no key, no key file"
        );
    }

    #[test]
    fn platform_certificates_pass_warn_near_expiry_and_fail_once_expired() {
        let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let cert = |days: i64| crate::wxpay::v3::cert::PlatformCert {
            serial: "5157F09EFDC096DE15EBE81A47057A72".into(),
            spki: Vec::new(),
            expires: (days != 0).then(|| now + jiff::SignedDuration::from_hours(24 * days)),
        };
        let o = certificate_outcome(&cert(400), now);
        assert_eq!(o.status, Status::Pass, "{o}");
        assert!(o.detail.contains("expires in 400 days"), "{o}");
        let o = certificate_outcome(&cert(29), now);
        assert_eq!(o.status, Status::Warn, "{o}");
        assert!(o.detail.contains("expires in 29 days"), "{o}");
        let o = certificate_outcome(&cert(-1), now);
        assert_eq!(o.status, Status::Fail, "{o}");
        assert!(o.detail.contains("expired"), "{o}");
        assert_eq!(
            certificate_outcome(&cert(0), now).status,
            Status::Warn,
            "no expiry given"
        );
    }

    /// The README's `root:scanpay 0640` passes for the service, not for a
    /// stranger's group; group write and anything for others never pass.
    #[cfg(unix)]
    #[test]
    fn group_read_passes_only_for_the_service_reading_a_file_it_does_not_own() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiclient_key.pem");
        std::fs::write(&path, "key").unwrap();
        let meta = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::metadata(&path).unwrap()
        };
        let mine = meta(0o640);
        // The README's file: root's, readable by the service's group.
        let service = Identity {
            uid: mine.uid().wrapping_add(1),
            gid: mine.gid(),
        };
        assert_eq!(
            exposure(&mine, service),
            None,
            "the service's group reads it"
        );
        assert_eq!(exposure(&meta(0o600), service), None);
        let stranger = Identity {
            gid: mine.gid().wrapping_add(1),
            ..service
        };
        let other = exposure(&meta(0o640), stranger).expect("another group");
        assert!(other.contains("not the group"), "{other}");
        let owner = Identity {
            uid: mine.uid(),
            gid: mine.gid(),
        };
        let own = exposure(&meta(0o640), owner).expect("our own file, group-readable");
        assert!(own.contains("no group needs it"), "{own}");
        assert!(
            exposure(&meta(0o660), service)
                .expect("group write")
                .contains("writable")
        );
        assert!(
            exposure(&meta(0o604), service)
                .expect("others")
                .contains("every user")
        );
        let o = key_file(&KeyFile {
            what: "a key",
            path: path.clone(),
        });
        assert_eq!(
            o.status,
            Status::Warn,
            "0604 is still readable by others: {o}"
        );
        meta(0o600);
        assert_eq!(
            key_file(&KeyFile {
                what: "a key",
                path
            })
            .status,
            Status::Pass,
            "our own file, for us alone"
        );
    }
}
