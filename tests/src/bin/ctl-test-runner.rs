//! A plugin-style runner: the built-in commands plus the test crate's fault commands.
//!
//! With `selftest-multicall` as its only argument it acts as a tiny daemon that is its own
//! runner: it calls `run_if_runner()` first, then runs `Ping` on a container described by
//! the JSON on stdin and prints the result.

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
    ctl_core::runner::main()
}
