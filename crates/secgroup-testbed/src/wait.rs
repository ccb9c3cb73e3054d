//! Polling with a deadline.

use std::time::{Duration, Instant};

/// How often [`poll`] asks.
const INTERVAL: Duration = Duration::from_millis(5);

/// Asks `check` every 5 ms until it yields a value; `None` after
/// `timeout`. `check` runs at least once.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(INTERVAL);
    }
}

/// [`poll`], panicking with "timed out after {timeout} waiting for
/// {what}" when nothing came.
pub fn wait_for<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(timeout, check).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_a_value_or_the_deadline() {
        let mut calls = 0;
        let got = poll(Duration::from_secs(1), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
        assert_eq!(poll(Duration::ZERO, || None::<()>), None);
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn wait_for_names_what_it_waited_for() {
        wait_for(Duration::from_millis(10), "the impossible", || None::<()>);
    }
}
