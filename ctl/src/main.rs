//! `ctl`: the command-line front of the framework. Also its own runner: started with a
//! runner's process title, it serves one envelope and exits (see `docs/design.md`).

mod app;
mod cli;
mod ct;
mod demo;
mod output;
mod signals;

fn main() {
    ctl_core::runner::run_if_runner();
    std::process::exit(app::main());
}
