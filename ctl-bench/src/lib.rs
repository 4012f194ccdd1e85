//! The measurements behind `ctl bench`: the cost of one command, side by side with the
//! host's process-creation floor, LXC's own tools and a Ruby runner, all in one run.
//!
//! Every case reports count, median, p90 and p99 in microseconds; ratios are computed from
//! medians of the same run. A case that cannot run here is reported as skipped with the
//! reason, never dropped. See `docs/performance.md`.

mod cases;
mod migrate;
mod placed;
mod report;

pub use cases::{run, BenchOptions};
pub use migrate::{run_if_helper, HELPER_TITLE};
pub use report::{CaseResult, Report};
