//! The one integration-test binary: every black-box test of scanpay.

mod admin;
mod browser;
mod checkout;
mod faults;
mod helpers;
mod notify;
mod poller;
mod protocol;
mod refresh;
mod webdriver;
