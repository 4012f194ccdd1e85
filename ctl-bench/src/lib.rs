//! The measurements behind `ctl bench`: the cost of one command, side by side with the
//! host's process-creation floor, LXC's own tools and a Ruby runner, all in one run.
//!
//! Every case reports count, median, p90 and p99 in microseconds; ratios are computed from
//! medians of the same run. A case that cannot run here is reported as skipped with the
//! reason, never dropped. `async_1000_sleep1` (issue 15) runs 1000 calls in flight at once
//! on a two-worker tokio runtime through the async frontend and reports wall time, threads,
//! fds and what a cancelled half leaves behind. See `docs/performance.md`.

mod cases;
mod in_flight;
mod migrate;
mod placed;
mod report;

pub use cases::{case_names, run, BenchOptions, DEFAULT_ASYNC_IN_FLIGHT};
pub use in_flight::{CancelRound, InFlight, Limits};
pub use migrate::{run_if_helper, HELPER_TITLE};
pub use report::{CaseResult, Report};
