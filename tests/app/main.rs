//! The one integration-test binary: every black-box test of scanpay.

mod admin;
mod helpers;
mod protocol;
