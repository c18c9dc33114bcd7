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

/// Live mode starts only with a database this binary knows and an admin in it.
/// Read-only: the check never creates nor migrates the database.
fn database(data_dir: &Path) -> Outcome {
    let check = "database";
    let add_admin = "create an admin with `scanpay user add NAME --role admin`";
    let shown = data_dir.join(crate::store::DB_FILE);
    let shown = shown.display();
    let (conn, version) = match crate::store::backup::open_read_only(data_dir) {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Outcome::new(
                Status::Fail,
                check,
                format!("no database at {shown} yet: {add_admin}"),
            );
        }
        Err(e) => return Outcome::new(Status::Fail, check, format!("{shown}: {e}")),
    };
    let known = crate::store::migrations::newest();
    if version > known {
        return Outcome::new(
            Status::Fail,
            check,
            format!("{shown} has schema {version}; this scanpay knows up to {known}"),
        );
    }
    match crate::store::users::count_admins(&conn) {
        Ok(0) => Outcome::new(
            Status::Fail,
            check,
            format!("no admin user in {shown}: {add_admin}"),
        ),
        Ok(n) => Outcome::new(
            Status::Pass,
            check,
            format!("{shown}, schema {version}, {n} admin user(s)"),
        ),
        Err(e) => Outcome::new(Status::Fail, check, format!("{shown}: {e}")),
    }
}

/// A file that holds a secret, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub what: &'static str,
    pub path: PathBuf,
}

/// Every file named by the settings that holds a secret. The v2 API key is a
/// setting, so the config file is one when it sets `wxpay.api_key`.
pub fn key_files(settings: &Settings, config_file: Option<&Path>) -> Vec<KeyFile> {
    let mut files = Vec::new();
    if let Some(path) = config_file {
        let table = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok());
        let holds = |key: &str| {
            table
                .as_ref()
                .and_then(|t| t.get("wxpay")?.get(key).map(|_| ()))
                .is_some()
        };
        if holds("api_key") {
            files.push(KeyFile {
                what: "the config file (it holds wxpay.api_key)",
                path: path.to_path_buf(),
            });
        } else if holds("apiv3_key") {
            files.push(KeyFile {
                what: "the config file (it holds wxpay.apiv3_key)",
                path: path.to_path_buf(),
            });
        }
    }
    if settings.wxpay.api == Api::V2
        && let Some(path) = &settings.wxpay.client_key_file
    {
        files.push(KeyFile {
            what: "the merchant's API certificate key (wxpay.client_key_file)",
            path: path.clone(),
        });
    }
    if settings.wxpay.api == Api::V3
        && let Some(path) = &settings.wxpay.private_key_file
    {
        files.push(KeyFile {
            what: "the merchant's API private key (wxpay.private_key_file)",
            path: path.clone(),
        });
    }
    files
}

fn key_file(f: &KeyFile) -> Outcome {
    let check = "key file";
    let shown = f.path.display();
    match std::fs::metadata(&f.path) {
        Err(e) => Outcome::new(
            Status::Fail,
            check,
            format!("{shown}, {}: cannot read it: {e}", f.what),
        ),
        Ok(meta) => match exposure(&meta, us()) {
            Some(exposed) => Outcome::new(
                Status::Warn,
                check,
                format!(
                    "{shown}, {}: {exposed} (mode {:o}); `chmod 600 {shown}`, or `chown root:<the service's group> {shown} && chmod 640 {shown}`",
                    f.what,
                    mode_bits(&meta)
                ),
            ),
            None => Outcome::new(
                Status::Pass,
                check,
                format!(
                    "{shown}, {}: readable only by its owner and the service",
                    f.what
                ),
            ),
        },
    }
}

/// Who besides the owner may read or change a key file, if anyone should not.
/// Group read is the deployment's own pattern (`root:scanpay 0640`: root
/// writes, the service reads), so it is fine when someone else owns the file
/// and its group is the one this check runs as (the service's, run as the
/// README says). Anything for others, group write, another group, or group
/// read of a file we own ourselves (a group such as `users` may hold everyone)
/// is not.
#[cfg(unix)]
fn exposure(meta: &std::fs::Metadata, us: Identity) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = mode_bits(meta);
    if mode & 0o007 != 0 {
        Some("readable by every user on the machine".into())
    } else if mode & 0o020 != 0 {
        Some(format!("writable by group {}", meta.gid()))
    } else if mode & 0o040 == 0 {
        None
    } else if meta.gid() != us.gid {
        Some(format!(
            "readable by group {}, which is not the group this check runs as ({})",
            meta.gid(),
            us.gid
        ))
    } else if meta.uid() == us.uid {
        Some(format!(
            "readable by group {}: the file is the service's own, so no group needs it",
            meta.gid()
        ))
    } else {
        None
    }
}

#[cfg(not(unix))]
fn exposure(_meta: &std::fs::Metadata, _us: Identity) -> Option<String> {
    None
}

#[cfg(unix)]
fn mode_bits(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_bits(_meta: &std::fs::Metadata) -> u32 {
    0
}

/// Who this process runs as: the service, when run as the README says.
#[derive(Debug, Clone, Copy)]
struct Identity {
    uid: u32,
    gid: u32,
}

#[cfg(unix)]
fn us() -> Identity {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe {
        Identity {
            uid: libc::geteuid(),
            gid: libc::getegid(),
        }
    }
}

#[cfg(not(unix))]
fn us() -> Identity {
    Identity { uid: 0, gid: 0 }
}

/// The gateway must reach `notify_url` over https from the internet.
pub fn notify_url(url: &str) -> Outcome {
    let check = "notify_url";
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Outcome::new(Status::Fail, check, format!("{url}: not a URL ({e})")),
    };
    let mut problems = Vec::new();
    if parsed.scheme() != "https" {
        problems.push("not https: the real gateway only notifies https URLs".to_string());
    }
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) if !is_public(ip) => problems.push(format!("{ip} is not a public address")),
        Ok(_) => {}
        Err(_) => {
            if host == "localhost"
                || host.ends_with(".localhost")
                || host.ends_with(".local")
                || host.ends_with(".internal")
                || !host.contains('.')
            {
                problems.push(format!("{host} is not a public name"));
            }
        }
    }
    if problems.is_empty() {
        Outcome::new(Status::Pass, check, format!("{url} (https, public)"))
    } else {
        Outcome::new(
            Status::Warn,
            check,
            format!(
                "{url}: {}; WeChat Pay cannot notify it (payments still arrive by polling)",
                problems.join(", ")
            ),
        )
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

/// One signed `orderquery` for an order that cannot exist, and the gateway's clock.
async fn gateway(settings: &Settings) -> Vec<Outcome> {
    let wx = &settings.wxpay;
    let client = match wx
        .merchant_or_demo()
        .map_err(|e| e.to_string())
        .and_then(|m| {
            WxPayClient::new(&wx.gateway, m, wx.timeout()).map_err(|e| chain(&e).to_string())
        }) {
        Ok(c) => c,
        Err(e) => return vec![Outcome::new(Status::Fail, "gateway", e)],
    };
    let probe = format!("scanpaycheck{}", &crate::wxpay::v2::client::nonce()[..16]);
    let Ok(out_trade_no) = OutTradeNo::new(probe) else {
        return vec![Outcome::new(
            Status::Fail,
            "gateway",
            "cannot make a probe order number",
        )];
    };
    let answer = client.order_query(&OrderQuery { out_trade_no }).await;
    let reached = !matches!(answer, Err(WxPayError::Transport(_)));
    let mut out = gateway_outcomes(&wx.gateway, &answer);
    if reached {
        out.push(clock(&wx.gateway, wx.timeout()).await);
    }
    out
}

/// v3: one signed query for an order that cannot exist, verified as every
/// answer is. Without a public key the platform certificates are downloaded
/// first, and their expiry is reported.
async fn gateway_v3(settings: &Settings) -> Vec<Outcome> {
    use crate::wxpay::v3::api::ErrorCode;
    use crate::wxpay::v3::client::{V3Client, V3Error};
    let wx = &settings.wxpay;
    let merchant = match wx.v3_merchant_or_demo() {
        Ok(m) => m,
        Err(e) => return vec![Outcome::new(Status::Fail, "settings", e.to_string())],
    };
    let base = wx.gateway.trim_end_matches('/');
    let client = match V3Client::connect(base, &merchant, wx.timeout()).await {
        Ok(c) => c,
        Err(e) => return vec![Outcome::new(Status::Fail, "gateway", chain(&e).to_string())],
    };
    let mut out = Vec::new();
    if merchant.public_key.is_none() {
        let certs = client.certificates();
        if certs.is_empty() {
            out.push(Outcome::new(
                Status::Fail,
                "certificates",
                "no platform certificate could be downloaded and decrypted from /v3/certificates \
                 (a wrong wxpay.apiv3_key, or a merchant with a WeChat Pay public key: set \
                 wxpay.public_key_file and wxpay.public_key_id)",
            ));
        }
        for c in certs {
            out.push(certificate_outcome(&c, jiff::Timestamp::now()));
        }
    }
    let probe = format!("scanpaycheck{}", &crate::wxpay::v2::client::nonce()[..16]);
    let (sig, ans) = ("signature", "answer");
    match client.query(&probe).await {
        Err(V3Error::Api {
            code: ErrorCode::OrderNotExist,
            ..
        }) => out.push(Outcome::new(
            Status::Pass,
            sig,
            "the gateway accepted our signature (ORDER_NOT_EXIST for a made-up order)",
        )),
        Ok(_) => {
            out.push(Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature",
            ));
            out.push(Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer verified with a WeChat Pay key we hold",
            ));
        }
        Err(V3Error::Api {
            code: ErrorCode::SignError,
            message,
            ..
        }) => out.push(Outcome::new(
            Status::Fail,
            sig,
            format!(
                "signature refused: wxpay.private_key_file and wxpay.cert_serial must be the \
                 merchant's API key and its certificate's serial (the gateway said {message:?})"
            ),
        )),
        Err(V3Error::Api {
            raw_code, message, ..
        }) => {
            out.push(Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature",
            ));
            out.push(Outcome::new(
                Status::Fail,
                "merchant",
                format!(
                    "the gateway answered {raw_code}: {message} (check wxpay.appid and wxpay.mch_id)"
                ),
            ));
        }
        Err(V3Error::Key(e)) => out.push(Outcome::new(Status::Fail, "settings", e.to_string())),
        Err(V3Error::Unbelievable(why)) => out.push(Outcome::new(
            Status::Fail,
            ans,
            format!(
                "cannot verify the gateway's answer: {} (wxpay.public_key_file / \
                 public_key_id, or the platform certificates)",
                chain(&why)
            ),
        )),
        Err(V3Error::Transport(why)) => {
            out.push(Outcome::new(
                Status::Fail,
                "gateway",
                format!(
                    "cannot reach the gateway at {}: {}",
                    wx.gateway,
                    chain(&why)
                ),
            ));
            return out;
        }
    }
    out.push(clock(&wx.gateway, wx.timeout()).await);
    out
}

/// A platform certificate is renewed by WeChat Pay weeks before it expires.
pub fn certificate_outcome(
    c: &crate::wxpay::v3::cert::PlatformCert,
    now: jiff::Timestamp,
) -> Outcome {
    let name = format!("platform certificate {}", c.serial);
    expiry(
        "certificates",
        &name,
        c.expires,
        now,
        "refreshed hourly",
        "answers signed with it cannot be believed; the app downloads the new one \
         hourly (is the APIv3 key right?)",
    )
}

/// A certificate's expiry: fine, near (under 30 days: a warning), or past (a failure).
fn expiry(
    check: &'static str,
    name: &str,
    expires: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    meanwhile: &str,
    once_expired: &str,
) -> Outcome {
    match expires {
        Some(t) if t <= now => Outcome::new(
            Status::Fail,
            check,
            format!("{name} expired at {t}: {once_expired}"),
        ),
        Some(t) => {
            let days = t.duration_since(now).as_secs() / 86_400;
            let status = if days < 30 {
                Status::Warn
            } else {
                Status::Pass
            };
            Outcome::new(
                status,
                check,
                format!("{name} expires in {days} days ({t}); {meanwhile}"),
            )
        }
        None => Outcome::new(Status::Warn, check, format!("{name}: no expiry given")),
    }
}

/// What the probe's answer says about our signature and theirs.
pub fn gateway_outcomes<T>(gateway: &str, answer: &Result<T, WxPayError>) -> Vec<Outcome> {
    let (sig, ans) = ("signature", "answer");
    match answer {
        Err(WxPayError::Business { code, .. }) if *code == ErrCode::OrderNotExist => vec![
            Outcome::new(
                Status::Pass,
                sig,
                "the gateway accepted our signature (ORDERNOTEXIST for a made-up order)",
            ),
            Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer is signed with our API key",
            ),
        ],
        Ok(_) => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Pass,
                ans,
                "the gateway's answer is signed with our API key",
            ),
        ],
        // A temporary failure: the setup may be right; asking again will tell.
        Err(WxPayError::Business { code, description }) if code.is_retryable() => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Warn,
                ans,
                format!("signed, but answered {code}: {description}; run the check again"),
            ),
        ],
        // Any other refusal of a query for a made-up order is about the merchant.
        Err(WxPayError::Business { code, description }) => vec![
            Outcome::new(Status::Pass, sig, "the gateway accepted our signature"),
            Outcome::new(
                Status::Fail,
                "merchant",
                format!(
                    "the gateway answered {code}: {description} \
                     (check wxpay.appid and wxpay.mch_id)"
                ),
            ),
        ],
        Err(WxPayError::Protocol { return_msg }) if is_signature_refusal(return_msg) => {
            vec![Outcome::new(
                Status::Fail,
                sig,
                format!(
                    "signature refused: the API key does not match the merchant \
                     (wxpay.api_key, wxpay.sign_type; the gateway said {return_msg:?})"
                ),
            )]
        }
        Err(WxPayError::Protocol { return_msg }) => vec![Outcome::new(
            Status::Fail,
            sig,
            format!(
                "the gateway refused the request: {return_msg} (check wxpay.appid and wxpay.mch_id)"
            ),
        )],
        Err(WxPayError::BadResponse(why)) => vec![Outcome::new(
            Status::Fail,
            ans,
            format!(
                "cannot verify the gateway's answer: {} (a wrong API key or sign type, \
                 or {gateway} is not a WeChat Pay gateway)",
                chain(why)
            ),
        )],
        Err(WxPayError::Transport(why)) => vec![Outcome::new(
            Status::Fail,
            "gateway",
            format!("cannot reach the gateway at {gateway}: {}", chain(why)),
        )],
        // The probe is an order query, which needs no certificate; kept for completeness.
        Err(e @ WxPayError::NoClientCertificate) => {
            vec![Outcome::new(Status::Fail, "certificate", e.to_string())]
        }
    }
}

fn is_signature_refusal(msg: &str) -> bool {
    msg.contains("签名") || msg.to_ascii_lowercase().contains("sign")
}

/// The gateway's clock, from the `Date` header of any answer at its root.
async fn clock(gateway: &str, timeout: Duration) -> Outcome {
    let check = "clock";
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return Outcome::new(Status::Skip, check, format!("not checked: {e}")),
    };
    let date = match http.get(gateway).send().await {
        Ok(resp) => resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .map(str::to_string),
        Err(_) => None,
    };
    match date {
        Some(d) => clock_outcome(&d, jiff::Timestamp::now()),
        None => Outcome::new(
            Status::Skip,
            check,
            "not checked: the gateway's answer has no Date header",
        ),
    }
}

/// Compares the gateway's `Date` with `now`.
pub fn clock_outcome(date: &str, now: jiff::Timestamp) -> Outcome {
    let check = "clock";
    let theirs = match jiff::fmt::rfc2822::parse(date) {
        Ok(z) => z.timestamp(),
        Err(_) => {
            return Outcome::new(
                Status::Skip,
                check,
                format!("not checked: cannot read the gateway's Date {date:?}"),
            );
        }
    };
    let skew_ms = (now.as_millisecond() - theirs.as_millisecond()).unsigned_abs();
    let skew = Duration::from_millis(skew_ms);
    // The header has whole seconds: under two seconds is agreement.
    if skew > MAX_CLOCK_SKEW {
        let ahead = if now > theirs { "ahead of" } else { "behind" };
        Outcome::new(
            Status::Warn,
            check,
            format!(
                "this clock is {}s {ahead} the gateway's: set up time sync (e.g. systemd-timesyncd)",
                skew.as_secs()
            ),
        )
    } else {
        Outcome::new(
            Status::Pass,
            check,
            format!("within {}s of the gateway's", skew.as_secs().max(1)),
        )
    }
}

/// API v2 refunds go over mutual TLS with the merchant's API certificate: the
/// two files must parse and belong together, or refunds are refused.
fn refund_certificate(settings: &Settings) -> Outcome {
    let wx = &settings.wxpay;
    let check = "refund certificate";
    match wx.refund_tls() {
        Err(e) => Outcome::new(Status::Fail, check, e.to_string()),
        Ok((_, Some(_))) => {
            let expires = wx
                .client_cert_file
                .as_ref()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|pem| crate::wxpay::v3::cert::PlatformCert::from_pem(&pem).ok())
                .and_then(|c| c.expires);
            let when = expiry(
                check,
                "the merchant's API certificate (wxpay.client_cert_file)",
                expires,
                jiff::Timestamp::now(),
                "renew it on the merchant platform before then",
                "the gateway refuses refunds with it; download a new one from the merchant \
                 platform (账户中心 → API安全)",
            );
            match when.status {
                Status::Pass => Outcome::new(
                    Status::Pass,
                    check,
                    format!(
                        "wxpay.client_cert_file and client_key_file parse and belong together; {}",
                        when.detail
                    ),
                ),
                _ => when,
            }
        }
        Ok((_, None)) if wx.is_simulator() => Outcome::new(
            Status::Skip,
            check,
            "simulator mode: its refunds need no certificate",
        ),
        Ok((_, None)) => Outcome::new(
            Status::Warn,
            check,
            "not set: refunds will be refused until wxpay.client_cert_file and \
             wxpay.client_key_file name the merchant's API certificate and key \
             (apiclient_cert.pem, apiclient_key.pem from the merchant platform)",
        ),
    }
}

#[cfg(test)]
mod tests {
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
