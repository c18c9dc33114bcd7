//! The one integration-test binary: every black-box test of scanpay.

mod helpers;
mod protocol;
