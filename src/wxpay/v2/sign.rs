//! The one signer: MD5 or HMAC-SHA256 over the sorted non-empty fields plus `&key=`.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::types::{ApiKey, SignType};
use super::xml::Fields;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the message carries no signature")]
    Missing,
    #[error("the message's sign_type is not MD5 or HMAC-SHA256")]
    UnknownSignType,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the message is signed with {found}, but this merchant signs with {expected}")]
    WrongSignType { expected: SignType, found: SignType },
}

/// `k1=v1&k2=v2…&key=KEY` over every non-empty field but `sign`, sorted by name (bytes).
fn string_to_sign(fields: &Fields, key: &ApiKey) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = String::with_capacity(256);
    for (k, v) in pairs {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('&');
    }
    s.push_str("key=");
    s.push_str(key.expose());
    s
}

/// The signature of `fields` (upper-case hex).
pub fn sign(fields: &Fields, key: &ApiKey, sign_type: SignType) -> String {
    let data = string_to_sign(fields, key);
    match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(data.as_bytes())),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(data.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

/// Adds `sign_type` (for HMAC-SHA256, so the receiver knows) and `sign` to a message.
pub fn sign_fields(fields: &mut Fields, key: &ApiKey, sign_type: SignType) {
    fields.remove("sign");
    if sign_type == SignType::HmacSha256 {
        fields.set("sign_type", sign_type.as_str());
    }
    let s = sign(fields, key, sign_type);
    fields.set("sign", s);
}

/// Verifies a received message over all its fields, in constant time.
///
/// The algorithm is the message's `sign_type` when present, else the one the
/// signature's length implies (64 hex digits: HMAC-SHA256, otherwise MD5).
pub fn verify(fields: &Fields, key: &ApiKey) -> Result<SignType, SignError> {
    let received = fields.non_empty("sign").ok_or(SignError::Missing)?;
    let sign_type = match fields.non_empty("sign_type") {
        Some(st) => st.parse().map_err(|_| SignError::UnknownSignType)?,
        None if received.len() == 64 => SignType::HmacSha256,
        None => SignType::Md5,
    };
    let expected = sign(fields, key, sign_type);
    let received = received.to_ascii_uppercase();
    if bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
        Ok(sign_type)
    } else {
        Err(SignError::Mismatch)
    }
}

/// Verifies a message we receive as a merchant (an answer or a notification):
/// only the configured algorithm is accepted, so a message signed with the
/// other one (an MD5 signature where HMAC-SHA256 is configured) is refused
/// even when it would verify under that other algorithm.
pub fn verify_as(fields: &Fields, key: &ApiKey, expected: SignType) -> Result<(), SignError> {
    let received = fields.non_empty("sign").ok_or(SignError::Missing)?;
    let declared = match fields.non_empty("sign_type") {
        Some(st) => Some(st.parse().map_err(|_| SignError::UnknownSignType)?),
        None => None,
    };
    let implied = if received.len() == 64 {
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    let found = declared.unwrap_or(implied);
    if found != expected {
        return Err(SignError::WrongSignType { expected, found });
    }
    let computed = sign(fields, key, expected);
    if bool::from(
        computed
            .as_bytes()
            .ct_eq(received.to_ascii_uppercase().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(SignError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn official_example() -> (Fields, ApiKey) {
        // The example of the official "安全规范 / 签名算法" page.
        let fields: Fields = [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .collect();
        (
            fields,
            ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap(),
        )
    }

    #[test]
    fn official_string_to_sign() {
        let (fields, key) = official_example();
        assert_eq!(
            string_to_sign(&fields, &key),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100\
             &nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
        );
    }

    #[test]
    fn official_md5_vector() {
        let (fields, key) = official_example();
        assert_eq!(
            sign(&fields, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn official_hmac_sha256_vector() {
        let (fields, key) = official_example();
        assert_eq!(
            sign(&fields, &key, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_fields_and_sign_do_not_take_part() {
        let (mut fields, key) = official_example();
        let before = sign(&fields, &key, SignType::Md5);
        fields.set("attach", "");
        fields.set("sign", "WHATEVER");
        assert_eq!(sign(&fields, &key, SignType::Md5), before);
    }

    #[test]
    fn verify_accepts_own_signatures_and_refuses_tampering() {
        for st in [SignType::Md5, SignType::HmacSha256] {
            let (mut fields, key) = official_example();
            sign_fields(&mut fields, &key, st);
            assert_eq!(verify(&fields, &key), Ok(st));

            let mut lower = fields.clone();
            let s = lower.get("sign").unwrap().to_ascii_lowercase();
            lower.set("sign", s);
            assert_eq!(verify(&lower, &key), Ok(st), "hex case does not matter");

            let mut tampered = fields.clone();
            tampered.set("body", "test2");
            assert_eq!(verify(&tampered, &key), Err(SignError::Mismatch));

            let mut added = fields.clone();
            added.set("total_fee", "1");
            assert_eq!(
                verify(&added, &key),
                Err(SignError::Mismatch),
                "new fields count"
            );

            let other = ApiKey::new("00000000000000000000000000000000").unwrap();
            assert_eq!(verify(&fields, &other), Err(SignError::Mismatch));
        }
        let (mut fields, key) = official_example();
        assert_eq!(verify(&fields, &key), Err(SignError::Missing));
        fields.set("sign_type", "SHA1");
        fields.set("sign", "00");
        assert_eq!(verify(&fields, &key), Err(SignError::UnknownSignType));
    }

    #[test]
    fn a_merchant_accepts_only_its_configured_algorithm() {
        for (st, other) in [
            (SignType::Md5, SignType::HmacSha256),
            (SignType::HmacSha256, SignType::Md5),
        ] {
            let (mut fields, key) = official_example();
            sign_fields(&mut fields, &key, st);
            assert_eq!(verify_as(&fields, &key, st), Ok(()));
            assert_eq!(
                verify_as(&fields, &key, other),
                Err(SignError::WrongSignType {
                    expected: other,
                    found: st
                })
            );
        }
        // An MD5 signature with no sign_type, where HMAC-SHA256 is configured.
        let (mut fields, key) = official_example();
        let md5 = sign(&fields, &key, SignType::Md5);
        fields.set("sign", md5);
        assert!(verify_as(&fields, &key, SignType::HmacSha256).is_err());
        // A message that declares HMAC-SHA256 but carries an MD5-length signature.
        fields.set("sign_type", "HMAC-SHA256");
        assert_eq!(
            verify_as(&fields, &key, SignType::HmacSha256),
            Err(SignError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn signature_ignores_field_order(
            entries in prop::collection::btree_map("[a-zA-Z_]{1,12}", "[^&=]{0,12}", 1..12),
            seed in any::<u64>(),
        ) {
            let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap();
            let mut items: Vec<_> = entries.into_iter().collect();
            let sorted: Fields = items.clone().into_iter().collect();
            // A deterministic shuffle from the seed.
            let n = items.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
                items.swap(i, j);
            }
            let shuffled: Fields = items.into_iter().collect();
            for st in [SignType::Md5, SignType::HmacSha256] {
                prop_assert_eq!(sign(&sorted, &key, st), sign(&shuffled, &key, st));
            }
        }
    }
}
