//! Micro-benchmarks of the hot pure functions: the signer, the XML codec and
//! the QR renderer. Run with `cargo bench --bench micro`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scanpay::values::money::Fen;
use scanpay::wxpay::v2::notify::{self, PaymentNotice};
use scanpay::wxpay::v2::{ApiKey, Fields, Merchant, OutTradeNo, SignType, sign, xml};

const DEMO_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fn merchant(sign_type: SignType) -> Merchant {
    Merchant {
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: "10000100".into(),
        key: ApiKey::new(DEMO_KEY).expect("the demo key is 32 characters"),
        sign_type,
    }
}

/// A payment notification as the gateway sends it (17 fields plus `sign`).
fn typical_notification(sign_type: SignType) -> Fields {
    let notice = PaymentNotice {
        out_trade_no: OutTradeNo::new("20250101000123-1-a1B2c3").expect("a valid out_trade_no"),
        transaction_id: "4200001234202501011234567890".into(),
        total_fee: Fen::new(1250),
        openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
        time_end: Some("20250101120000".into()),
        bank_type: Some("CMC".into()),
    };
    notify::build(
        &notice,
        &merchant(sign_type),
        sign_type,
        "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        None,
    )
}

fn signing(c: &mut Criterion) {
    let key = ApiKey::new(DEMO_KEY).expect("the demo key is 32 characters");
    for (name, st) in [
        ("MD5", SignType::Md5),
        ("HMAC-SHA256", SignType::HmacSha256),
    ] {
        let fields = typical_notification(st);
        c.bench_function(&format!("sign/{name}"), |b| {
            b.iter(|| sign::sign(black_box(&fields), &key, st))
        });
        c.bench_function(&format!("verify/{name}"), |b| {
            b.iter(|| sign::verify(black_box(&fields), &key))
        });
    }
}

fn xml_codec(c: &mut Criterion) {
    let fields = typical_notification(SignType::Md5);
    let body = xml::to_xml(&fields);
    c.bench_function("xml/write notification", |b| {
        b.iter(|| xml::to_xml(black_box(&fields)))
    });
    c.bench_function("xml/read notification", |b| {
        b.iter(|| xml::from_xml(black_box(body.as_bytes())))
    });
    let m = merchant(SignType::Md5);
    c.bench_function("notify/verify (read + check + MD5)", |b| {
        b.iter(|| notify::verify(black_box(body.as_bytes()), &m))
    });
}

fn qr_png(c: &mut Criterion) {
    // The shape of a simulator / WeChat code_url.
    let code_url = "weixin://wxpay/bizpayurl?pr=Ab3dE6gH9k";
    let size = scanpay::web::qr::DEFAULT_SIZE;
    let png = scanpay::web::qr::render_png(code_url, size).expect("renders");
    eprintln!("qr/render_png: {} bytes at size {size}", png.len());
    c.bench_function("qr/render_png default size", |b| {
        b.iter(|| scanpay::web::qr::render_png(black_box(code_url), size))
    });
}

criterion_group!(benches, signing, xml_codec, qr_png);
criterion_main!(benches);
