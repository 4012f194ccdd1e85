//! Warm Ping timings against a cold /bin/true: `warm CONTAINER_JSON N` with BENCH_RUNNER.
use std::time::{Duration, Instant};
fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
fn main() {
    let ct: ctl_core::Container =
        serde_json::from_str(&std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap())
            .unwrap();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let runner = std::env::var("BENCH_RUNNER").unwrap();
    let pool = ctl_core::frontend::WarmPool::new(Duration::from_secs(60));
    let call = ctl_core::Call::new(&ct)
        .runner(&runner)
        .stdout(ctl_core::Stdio::Null)
        .stderr(ctl_core::Stdio::Null)
        .warm(&pool);
    let (mut w, mut t) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let s = Instant::now();
        ctl_core::diag::Ping::run_with(&call, serde_json::json!(1)).unwrap();
        w.push(s.elapsed().as_secs_f64() * 1e6);
        let s = Instant::now();
        std::process::Command::new("/bin/true").status().unwrap();
        t.push(s.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "warm {:.1} us, /bin/true {:.1} us, ratio {:.3}",
        med(w.clone()),
        med(t.clone()),
        med(w) / med(t)
    );
}
