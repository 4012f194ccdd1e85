//! Ping timings in a few call variants, for finding the frontend's overhead:
//! `one CONTAINER_JSON [N] [VARIANT]` with BENCH_RUNNER set (VARIANT: all, fork, exec).
use std::time::Instant;
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
        .unwrap_or(1);
    let only = std::env::args().nth(3).unwrap_or_else(|| "all".to_owned());
    let runner = std::env::var("BENCH_RUNNER").unwrap();
    let base = ctl_core::Call::new(&ct)
        .runner(&runner)
        .stdout(ctl_core::Stdio::Null)
        .stderr(ctl_core::Stdio::Null);
    let variants: Vec<(&str, ctl_core::Call<'_>)> = vec![
        ("fork", base.clone().placement(ctl_core::Placement::Fork)),
        ("exec", base.clone().placement(ctl_core::Placement::Exec)),
    ]
    .into_iter()
    .filter(|(name, _)| only == "all" || only == *name)
    .collect();
    let mut times = vec![Vec::new(); variants.len() + 1];
    for _ in 0..n {
        for (i, (_, c)) in variants.iter().enumerate() {
            let t = Instant::now();
            ctl_core::diag::Ping::run_with(c, serde_json::json!(1)).unwrap();
            times[i].push(t.elapsed().as_secs_f64() * 1e6);
        }
        if only == "all" {
            let t = Instant::now();
            std::process::Command::new("/bin/true").status().unwrap();
            times[variants.len()].push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    for (i, (name, _)) in variants.iter().enumerate() {
        println!("{:>8.1} us  {name}", med(times[i].clone()));
    }
    if only == "all" {
        println!("{:>8.1} us  /bin/true", med(times[variants.len()].clone()));
    }
}
