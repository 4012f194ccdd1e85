//! Micro-benchmarks of the pure parts on the hot path of every call: envelope encode and
//! decode, registry lookup, argument decoding. `cargo bench -p ctl-core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ctl_core::{Args, Envelope, Registry, Reply};
use serde_json::json;

const ENVELOPE: &str = r#"{"name":"Ping","pool":"default","id":"ct1","lxc_home":"/var/lib/ctl/ct1/lxc","user_home":"/var/lib/ctl/ct1/home","log_file":"/var/lib/ctl/ct1/lxc/ct1.log","args":[{"a":1}],"kwargs":{"timeout":60,"message":null},"return":3,"stdin":null,"stdout":4,"stderr":5,"ctl":{"version":6,"placement":{"rlimits":{"nofile":{"soft":1024,"hard":4096}},"cgroup_procs":["/sys/fs/cgroup/cpu/ctl/ct1/cgroup.procs","/sys/fs/cgroup/cpuacct/ctl/ct1/cgroup.procs","/sys/fs/cgroup/cpuset/ctl/ct1/cgroup.procs","/sys/fs/cgroup/memory/ctl/ct1/cgroup.procs","/sys/fs/cgroup/devices/ctl/ct1/cgroup.procs","/sys/fs/cgroup/freezer/ctl/ct1/cgroup.procs","/sys/fs/cgroup/blkio/ctl/ct1/cgroup.procs","/sys/fs/cgroup/pids/ctl/ct1/cgroup.procs","/sys/fs/cgroup/systemd/ctl/ct1/cgroup.procs","/sys/fs/cgroup/unified/ctl/ct1/cgroup.procs"],"user":{"name":"ctl-ct1","ugid":900000},"setuid_helpers":false},"parent_pid":1234}}"#;

fn envelope(c: &mut Criterion) {
    c.bench_function("envelope_decode", |b| {
        b.iter(|| Envelope::from_slice(black_box(ENVELOPE.as_bytes())).unwrap())
    });
    let e = Envelope::from_slice(ENVELOPE.as_bytes()).unwrap();
    c.bench_function("envelope_encode", |b| b.iter(|| black_box(&e).to_vec()));
    let reply = Reply::ok(json!({"id":"ct1","state":"running","init_pid":4242})).to_line();
    c.bench_function("reply_decode", |b| {
        b.iter(|| Reply::from_line(black_box(&reply)).unwrap())
    });
}

fn registry(c: &mut Criterion) {
    let r = Registry::global().unwrap();
    c.bench_function("registry_lookup_snake", |b| {
        b.iter(|| r.lookup(black_box("ping")).unwrap())
    });
    c.bench_function("registry_lookup_osctld", |b| {
        b.iter(|| {
            r.lookup(black_box("OsCtld::ContainerControl::Commands::Identity"))
                .unwrap()
        })
    });
}

fn args(c: &mut Criterion) {
    let named = json!({"timeout": 60, "message": "bye", "valid_rcs": [0, 1, 2]});
    c.bench_function("args_decode_stop_shaped", |b| {
        b.iter(|| {
            let mut a = Args::new(vec![json!("shutdown")], named.as_object().unwrap().clone());
            let mode: String = a.positional("mode").unwrap();
            let timeout: u64 = a.named("timeout").unwrap();
            let message: Option<String> = a.named("message").unwrap();
            let rcs: Vec<i32> = a.named_or_default("valid_rcs").unwrap();
            a.finish().unwrap();
            black_box((mode, timeout, message, rcs))
        })
    });
}

criterion_group!(benches, envelope, registry, args);
criterion_main!(benches);
