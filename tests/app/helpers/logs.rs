//! Every log line of this test process, captured.

use super::*;

/// Everything logged in this test process, by every app (one subscriber per
/// process). Set `TEST_LOG=1` to see it on stderr as well.
pub(crate) static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

pub(crate) struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line at debug level, so the tests that no secret is
/// logged see all there is.
pub(crate) fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_target(false)
            .with_writer(|| Capture)
            .finish()
            .try_init();
    });
}

/// The log of this process so far (every app's, every test's).
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}
