//! The XML reader must never panic, and what it accepts must survive a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanpay::wxpay::v2::v2::xml;

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = xml::from_xml(data) {
        let again = xml::from_xml(xml::to_xml(&fields).as_bytes()).expect("our own XML reads back");
        assert_eq!(again, fields);
    }
});
