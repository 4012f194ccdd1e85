//! A plugin-style runner: the built-in commands plus the test crate's fault commands.
//!
//! With `selftest-multicall` as its only argument it acts as a tiny daemon that is its own
//! runner: it calls `run_if_runner()` first, then runs `Ping` on a container described by
//! the JSON on stdin and prints the result.
//!
//! With `selftest-daemon-dies [deadline-seconds]` it is a daemon that starts the slow
//! `PidThenSleep` command (its runner prints its own pid on the daemon's stdout) and waits
//! for it; the test kills this daemon with SIGKILL and checks that the runner does not
//! outlive it (parent-death signal).

use commands as _;
use tests as _;

fn main() {
    ctl_core::runner::run_if_runner();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("selftest-multicall") {
        let ct: ctl_core::Container = match serde_json::from_reader(std::io::stdin()) {
            Ok(ct) => ct,
            Err(e) => {
                eprintln!("error: container JSON on stdin: {e}");
                std::process::exit(2);
            }
        };
        match ctl_core::diag::Ping::run(&ct, serde_json::json!("multicall")) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        match ctl_core::runner_path() {
            Ok(p) => println!("{}", p.display()),
            Err(e) => println!("error: {e}"),
        }
        return;
    }
    if args.first().map(String::as_str) == Some("selftest-daemon-dies") {
        daemon_dies(args.get(1).and_then(|s| s.parse::<f64>().ok()));
    }
    ctl_core::runner::main()
}

/// The `selftest-daemon-dies` mode: never returns before the runner does (an hour).
fn daemon_dies(deadline: Option<f64>) -> ! {
    let ct: ctl_core::Container = match serde_json::from_reader(std::io::stdin()) {
        Ok(ct) => ct,
        Err(e) => {
            eprintln!("error: container JSON on stdin: {e}");
            std::process::exit(2);
        }
    };
    // The runner writes its pid to our stdout (a pipe the test reads).
    let call = ctl_core::Call::new(&ct)
        .stdout(ctl_core::Stdio::Inherit)
        .stderr(ctl_core::Stdio::Null)
        .deadline(deadline.map(std::time::Duration::from_secs_f64));
    let result = tests::faults::PidThenSleep::run_with(&call, 3600.0);
    println!("finished: {result:?}");
    std::process::exit(0)
}
