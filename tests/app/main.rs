//! The one integration-test binary: every black-box test of scanpay.
//!
//! Most of these tests wait on the wall clock (QR lives of 1–6 s, a refused close
//! tried again after 5 s, a browser), not on the CPU, so by default they run
//! `TEST_THREADS` at a time rather than one per core. `--test-threads=N` or
//! `RUST_TEST_THREADS` still decide when given.

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

/// Tests run at once when nothing else is asked for.
const TEST_THREADS: &str = "8";

/// libtest reads `RUST_TEST_THREADS` when it starts running tests; this sets
/// its default from `.init_array`, before `main`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static DEFAULT_TEST_THREADS: extern "C" fn() = {
    extern "C" fn default_test_threads() {
        if std::env::var_os("RUST_TEST_THREADS").is_none() {
            // SAFETY: `.init_array` runs before `main`, while this process has
            // one thread, so nothing reads the environment concurrently.
            unsafe { std::env::set_var("RUST_TEST_THREADS", TEST_THREADS) };
        }
    }
    default_test_threads
};
