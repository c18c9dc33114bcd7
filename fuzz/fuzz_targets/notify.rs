//! The notification parser must never panic, and must never accept an unsigned or
//! wrongly signed message as a payment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanpay::wxpay::v2::v2::notify::{self, Notice};
use scanpay::wxpay::v2::v2::{ApiKey, Merchant, SignType, sign};

fuzz_target!(|data: &[u8]| {
    let merchant = Merchant {
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: "10000100".into(),
        key: ApiKey::new("192006250b4c09247ec02edce69f6a2d").expect("a key"),
        sign_type: SignType::Md5,
    };
    if let Ok((fields, notice)) = notify::verify(data, &merchant) {
        // Anything accepted carries a valid signature over all its fields.
        assert!(sign::verify(&fields, &merchant.key).is_ok());
        if let Notice::Paid(p) = notice {
            assert!(p.total_fee.get() > 0);
        }
    }
});
