//! `cargo run --release -p ctl-bench --example quick -- [SECONDS]`: the benchmark on a
//! throwaway container, without the `ctl` CLI (for working on the framework's speed).

use ctl_core::runner;

fn main() {
    ctl_bench::run_if_helper();
    runner::run_if_runner();
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let dir = std::env::temp_dir().join(format!("ctl-bench-quick-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = ctl_provision::Provisioner::new(&dir).unwrap();
    let name = format!("bq{}", std::process::id() % 10000);
    let ct = prov.create(&name, &Default::default()).unwrap();
    let started = ctl_provision::oracle::start(&ct);
    if let Err(e) = &started {
        eprintln!("warning: container not started: {e}");
    }
    let opts = ctl_bench::BenchOptions {
        seconds,
        runner: std::env::var_os("BENCH_RUNNER").map(Into::into),
        ..Default::default()
    };
    let report = ctl_bench::run(&ct, &opts);
    print!("{}", report.to_table());
    let _ = prov.destroy(&name);
    let _ = std::fs::remove_dir_all(&dir);
}
