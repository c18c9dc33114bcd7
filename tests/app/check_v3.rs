//! `scanpay check` on API v3 against `scanpay sim`: the public key and the
//! platform certificates both pass; a wrong certificate serial or APIv3 key
//! fails with a sentence that says what to fix.

use crate::helpers::*;

fn check_v3(gateway: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = staffed_data_dir();
    let key = dir.path().join("apiclient_key.pem");
    std::fs::write(&key, scanpay::wxpay::v3::OFFICIAL_TEST_KEY_PEM).unwrap();
    let mut env = vec![
        ("SCANPAY_WXPAY_API", "v3"),
        ("SCANPAY_WXPAY_GATEWAY", gateway),
        ("SCANPAY_WXPAY_APPID", DEMO_V3_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_V3_MCH_ID),
        ("SCANPAY_WXPAY_APIV3_KEY", DEMO_V3_APIV3_KEY),
        ("SCANPAY_WXPAY_PRIVATE_KEY_FILE", key.to_str().unwrap()),
        ("SCANPAY_WXPAY_CERT_SERIAL", DEMO_V3_CERT_SERIAL),
        (
            "SCANPAY_WXPAY_NOTIFY_URL",
            "http://127.0.0.1:8080/wxpay/v3/notify",
        ),
    ];
    let pub_file = dir.path().join("pub_key.pem");
    std::fs::write(&pub_file, scanpay::sim::v3::keys::PUBLIC_KEY_PEM).unwrap();
    let pub_path = pub_file.to_str().unwrap().to_string();
    let mut extra: Vec<(&str, &str)> = extra.to_vec();
    if let Some(i) = extra
        .iter()
        .position(|(k, _)| *k == "SCANPAY_WXPAY_PUBLIC_KEY_FILE")
    {
        extra[i].1 = &pub_path;
    }
    for (k, v) in extra {
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    }
    let out = run_cli(dir.path(), &["check"], &env, "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

const WITH_PUBLIC_KEY: &[(&str, &str)] = &[
    ("SCANPAY_WXPAY_PUBLIC_KEY_FILE", "(written by check_v3)"),
    (
        "SCANPAY_WXPAY_PUBLIC_KEY_ID",
        scanpay::sim::v3::keys::PUBLIC_KEY_ID,
    ),
];

#[test]
fn the_demo_v3_keys_pass_with_the_public_key_and_with_certificates() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let (code, out) = check_v3(&sim.url, WITH_PUBLIC_KEY);
    assert_eq!(code, Some(2), "nothing failed, warnings: {out}");
    for line in [
        "✓ protocol: WeChat Pay API v3",
        "public key PUB_KEY_ID_",
        "✓ signature: the gateway accepted our signature (ORDER_NOT_EXIST",
        "apiclient_key.pem, the merchant's API private key",
        "scanpay check: nothing failed, but look at the",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    let (code, out) = check_v3(&sim.url, &[]);
    assert_eq!(code, Some(2), "nothing failed, warnings: {out}");
    assert!(
        out.contains(&format!(
            "✓ certificates: platform certificate {}",
            scanpay::sim::v3::keys::PLATFORM_SERIAL
        )),
        "{out}"
    );
}

#[test]
fn a_wrong_serial_or_apiv3_key_fails_with_what_to_fix() {
    let sim = spawn_sim_process("127.0.0.1:0");
    let (code, out) = check_v3(
        &sim.url,
        &[
            (
                "SCANPAY_WXPAY_CERT_SERIAL",
                "0123456789ABCDEF0123456789ABCDEF01234567",
            ),
            WITH_PUBLIC_KEY[0],
            WITH_PUBLIC_KEY[1],
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("✗ signature: signature refused"), "{out}");
    let (code, out) = check_v3(
        &sim.url,
        &[(
            "SCANPAY_WXPAY_APIV3_KEY",
            "another-apiv3-key-00000000000000",
        )],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ certificates: no platform certificate"),
        "{out}"
    );
    let (code, out) = check_v3(&sim.url, &[("SCANPAY_WXPAY_APIV3_KEY", "short")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("32-character APIv3 key"), "{out}");
    assert!(
        !out.contains("short\""),
        "the key itself is never echoed: {out}"
    );
}
