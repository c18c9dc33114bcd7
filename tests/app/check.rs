//! `scanpay check` against `scanpay sim`: the right keys pass, a wrong key and an
//! unreachable gateway fail with a sentence that says what to fix.

use crate::helpers::{
    DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, free_port, run_cli, set_faults_on, spawn_sim_process,
    staffed_data_dir,
};

fn check(gateway: &str, api_key: &str) -> (Option<i32>, String) {
    check_in(&staffed_data_dir(), gateway, api_key)
}

fn check_in(dir: &tempfile::TempDir, gateway: &str, api_key: &str) -> (Option<i32>, String) {
    let out = run_cli(
        dir.path(),
        &["check"],
        &[
            ("SCANPAY_WXPAY_GATEWAY", gateway),
            ("SCANPAY_WXPAY_APPID", DEMO_APPID),
            ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
            ("SCANPAY_WXPAY_API_KEY", api_key),
            (
                "SCANPAY_WXPAY_NOTIFY_URL",
                "http://127.0.0.1:8080/wxpay/notify",
            ),
        ],
        "",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn the_demo_keys_pass_against_the_simulator_with_warnings_for_the_notify_url() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let (code, out) = check(&sim.url, DEMO_API_KEY);
    assert_eq!(code, Some(2), "nothing failed, warnings: {out}");
    for line in [
        "✓ mode: live mode",
        "✓ protocol: WeChat Pay API v2, MD5",
        "✓ signature: the gateway accepted our signature",
        "✓ answer: the gateway's answer is signed with our API key",
        "✓ clock: within",
        "✓ database: ",
        "1 admin user(s)",
        "! notify_url: http://127.0.0.1:8080/wxpay/notify: not https",
        "scanpay check: nothing failed, but look at the",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

/// Exit 0 only when all is well: a public https notify_url, the refund
/// certificate in place, private key files, an admin, the gateway agreeing.
#[test]
fn a_setup_with_nothing_to_fix_is_all_well_and_exits_0() {
    use std::os::unix::fs::PermissionsExt;
    let sim = spawn_sim_process("127.0.0.1:0");
    let dir = staffed_data_dir();
    let keys = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["10000100".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (
        keys.path().join("apiclient_cert.pem"),
        keys.path().join("apiclient_key.pem"),
    );
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_cli(
        dir.path(),
        &["check"],
        &[
            ("SCANPAY_WXPAY_GATEWAY", sim.url.as_str()),
            ("SCANPAY_WXPAY_APPID", DEMO_APPID),
            ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
            ("SCANPAY_WXPAY_API_KEY", DEMO_API_KEY),
            (
                "SCANPAY_WXPAY_NOTIFY_URL",
                "https://pay.example.com/wxpay/notify",
            ),
            (
                "SCANPAY_WXPAY_CLIENT_CERT_FILE",
                cert_file.to_str().unwrap(),
            ),
            ("SCANPAY_WXPAY_CLIENT_KEY_FILE", key_file.to_str().unwrap()),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.ends_with("scanpay check: all well\n"), "{text}");
    assert!(!text.contains("\n! ") && !text.contains("\n✗ "), "{text}");
    assert!(text.contains("✓ refund certificate: "), "{text}");
}

#[test]
fn without_an_admin_the_check_fails_but_still_checks_the_keys() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let (code, out) = check_in(&tempfile::tempdir().unwrap(), &sim.url, DEMO_API_KEY);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("✗ database: no database at"), "{out}");
    assert!(
        out.contains("✓ signature: the gateway accepted our signature"),
        "{out}"
    );
}

#[test]
fn a_wrong_api_key_is_named_as_such_and_fails() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let (code, out) = check(&sim.url, "0123456789abcdef0123456789abcdef");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ signature: signature refused: the API key does not match the merchant"),
        "{out}"
    );
    assert!(
        !out.contains("0123456789abcdef0123456789abcdef"),
        "the key is never printed"
    );
}

#[test]
fn an_unreachable_gateway_is_named_and_fails() {
    let gateway = format!("http://127.0.0.1:{}/", free_port());
    let (code, out) = check(&gateway, DEMO_API_KEY);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("✗ gateway: cannot reach the gateway at {gateway}")),
        "{out}"
    );
}

#[test]
fn missing_live_settings_fail_without_asking_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        &["check"],
        &[("SCANPAY_WXPAY_GATEWAY", "https://api.mch.weixin.qq.com/")],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("✗ settings:") && text.contains("wxpay.mch_id"),
        "{text}"
    );
    assert!(text.contains("- gateway: not asked"), "{text}");
    assert!(
        text.contains("✗ database: no database at") && text.contains("scanpay user add"),
        "{text}"
    );
    assert!(
        !dir.path().join(scanpay::store::DB_FILE).exists(),
        "the check creates nothing"
    );
}

#[test]
fn an_answer_that_fails_its_signature_is_reported_as_unverifiable() {
    let sim = spawn_sim_process("127.0.0.1:0");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(set_faults_on(&sim.url, "bad_sign_rate=1.0"));
    let (code, out) = check(&sim.url, DEMO_API_KEY);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ answer: cannot verify the gateway's answer"),
        "{out}"
    );
}

/// Start-up and `scanpay check` refuse extreme settings (config.rs); handed one
/// anyway, the app still starts and stops without a panic.
#[tokio::test]
async fn an_app_built_with_a_huge_max_in_flight_starts_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = scanpay::config::Settings {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Default::default()
    };
    settings.poller.max_in_flight = usize::MAX;
    settings.sim.time_scale = 1e-300;
    assert!(settings.validate().is_err(), "refused at start");
    let app = scanpay::app::Application::build(settings)
        .await
        .expect("builds without a panic");
    app.run_until(tokio::time::sleep(std::time::Duration::from_millis(300)))
        .await
        .expect("runs and stops");
}
