//! A per-test time limit: a test that hangs (a client that never returns, a
//! loop whose stop signal was lost) ends the test binary with a message naming
//! it, instead of holding CI until its own time limit.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// The default limit, in seconds; `PACKAGES_TEST_TIMEOUT_SECS` overrides it.
const DEFAULT_SECS: u64 = 900;

/// Disarmed when dropped (the test returned or panicked).
pub struct Watchdog {
    _disarm: Sender<()>,
}

/// Arms a watchdog for the test `name`: if it is still running after the
/// limit, the whole process exits with status 101 after saying which test hung.
pub fn arm(name: &str) -> Watchdog {
    let secs = std::env::var("PACKAGES_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let (tx, rx) = mpsc::channel::<()>();
    let name = name.to_string();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
            eprintln!(
                "\nwatchdog: test `{name}` still running after {secs} s \
                 (PACKAGES_TEST_TIMEOUT_SECS); ending the test run"
            );
            std::process::exit(101);
        }
    });
    Watchdog { _disarm: tx }
}
