//! Microtimings of the frontend's fixed costs (for docs/performance.md).
use std::time::Instant;
fn main() {
    let n = 2000;
    let rel = "ctl-bench-pieces/x";
    ctl_core::cgroup::create_entry(rel, 65534).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        ctl_core::cgroup::create_entry(rel, 65534).unwrap();
    }
    println!(
        "create_entry (exists): {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let files = ctl_core::cgroup::procs_files(rel);
    let t = Instant::now();
    for _ in 0..n {
        for f in &files {
            drop(std::fs::OpenOptions::new().write(true).open(f).unwrap());
        }
    }
    println!(
        "open all cgroup.procs: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n {
        let (a, b) = nix::unistd::pipe().unwrap();
        drop((a, b));
    }
    println!("pipe: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let env = serde_json::json!({"name":"Ping","pool":"p","id":"x","lxc_home":"/a","user_home":"/b","log_file":"/c","args":[1],"kwargs":{},"return":3,"stdin":null,"stdout":4,"stderr":5,"ctl":{"version":6,"placement":{"rlimits":{},"cgroup_procs":files,"user":{"name":"u","ugid":1},"setuid_helpers":false},"parent_pid":1}}).to_string();
    let t = Instant::now();
    for _ in 0..n {
        let e = ctl_core::Envelope::from_slice(env.as_bytes()).unwrap();
        std::hint::black_box(e.to_vec());
    }
    println!(
        "envelope decode+encode: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let _ = ctl_core::cgroup::remove_entry("ctl-bench-pieces");
}
