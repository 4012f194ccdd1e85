//! `ctl`: the command-line front of the framework. Also its own runner: started with a
//! runner's process title, it serves one envelope and exits (see `docs/design.md`).
//!
//! Which runner ctl starts: `CTL_RUNNER` if set; else the dedicated `ctl-runner` installed
//! beside ctl (built from the same workspace), which starts about 200 µs faster than ctl
//! itself (a small `no_main` binary without clap; docs/performance.md); else ctl itself.

mod app;
mod bench;
mod cli;
mod ct;
mod demo;
mod output;
mod signals;

fn main() {
    // `ctl bench` starts this binary again to measure the cgroup floor (ctl-bench's
    // `migrate` module).
    ctl_bench::run_if_helper();
    ctl_core::runner::run_if_runner();
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("ctl-runner");
        if sibling.is_file() {
            ctl_core::set_runner_path(sibling);
        }
    }
    std::process::exit(app::main());
}
