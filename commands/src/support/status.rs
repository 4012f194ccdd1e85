//! Texts about how processes ended and about bounds.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ctl_core::CommandError;

pub use ctl_core::process::exit_code;

/// "exited with status N" / "was killed by signal N (SIGNAME)".
pub fn describe_status(status: ExitStatus) -> String {
    ctl_core::process::describe(status)
}

/// The error for a helper attached into the container that was killed at its bound:
/// `<what> inside the container did not finish within <bound>; killed`.
pub fn helper_timed_out(what: &str, bound: Duration) -> CommandError {
    CommandError::msg(format!(
        "{what} inside the container did not finish within {}; killed",
        seconds(bound)
    ))
}

/// `5 s`, `0.3 s`: a bound for messages, to a tenth of a second (a deadline taken a few
/// microseconds before the start still reads `5 s`).
pub fn seconds(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() as u64;
    if tenths % 10 == 0 {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// The earlier of `now + bound` and `limit`: the deadline of one helper inside a command
/// that has a deadline of its own (Stop's `--timeout`).
pub fn bounded_by(bound: Duration, limit: Option<Instant>) -> Instant {
    let own = Instant::now() + bound;
    limit.map_or(own, |limit| limit.min(own))
}
