//! `ctl bench` end to end: every case and ratio is reported (or skipped with a reason), no
//! case had an error, and the throwaway container is gone afterwards. Speed itself is not
//! asserted here (that is what the benchmark reports).

use ctl_test_support::cli::StateDir;

const CASES: &[&str] = &[
    "spawn_true",
    "cgroup_migrate",
    "exec_noop",
    "exec_noop_dynamic",
    "fork_noop",
    "warm_noop",
    "exec_noop_1g",
    "ruby_noop",
    "freeze_cycle",
    "lxc_freeze_cycle",
    "freeze_runner_cycle",
    "warm_freeze_cycle",
    "state",
    "lxc_info_state",
    "state_runner",
    "warm_state",
    "exec_true",
    "lxc_attach_true",
    "nsenter_true",
    "warm_exec_true",
    "throughput_1",
    "throughput_2",
    "throughput_8",
    "throughput_64",
];

const RATIOS: &[&str] = &[
    "exec_noop_vs_floor",
    "exec_noop_dynamic_vs_floor",
    "fork_noop_vs_spawn",
    "big_caller",
    "ruby_vs_exec",
    "freeze_vs_lxc",
    "state_vs_lxc",
    "exec_true_vs_lxc",
    "exec_true_vs_nsenter",
    "warm_noop_vs_spawn",
    "throughput_8_vs_1",
];

#[test]
fn bench_reports_every_case_and_cleans_up() {
    let state = StateDir::new();
    let run = state.ctl(&["--json", "bench", "--seconds", "3"]);
    let doc = run.json();
    assert_eq!(doc["ok"], true, "{run}");
    let report = &doc["result"];
    let cases = report["cases"].as_array().expect("cases");
    for name in CASES {
        let case = cases
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap_or_else(|| panic!("case {name} missing: {run}"));
        if let Some(why) = case.get("skipped") {
            assert!(
                why.as_str().is_some_and(|w| !w.is_empty()),
                "{name}: a skip needs a reason"
            );
            assert!(
                !why.as_str().unwrap().starts_with("failed"),
                "{name} failed: {why}"
            );
            continue;
        }
        assert!(case["count"].as_u64().unwrap() > 0, "{name}: no samples");
        assert_eq!(case["errors"], 0, "{name} had errors");
        let (m, p90, p99) = (
            case["median_us"].as_f64().unwrap(),
            case["p90_us"].as_f64().unwrap(),
            case["p99_us"].as_f64().unwrap(),
        );
        assert!(0.0 < m && m <= p90 && p90 <= p99, "{name}: {m} {p90} {p99}");
    }
    for name in ["throughput_1", "throughput_8"] {
        let case = cases.iter().find(|c| c["name"] == name).unwrap();
        assert!(case["per_second"].as_f64().unwrap() > 0.0);
    }
    for ratio in RATIOS {
        assert!(
            report["ratios"].get(*ratio).is_some(),
            "ratio {ratio} missing"
        );
    }
    assert!(report["runner_peak_rss_kib"].as_u64().unwrap() > 0);
    // scripts/test builds the static runner beside ctl-runner: the no-op cases use it.
    let static_runner = report["static_runner"].as_str().expect("a static runner");
    assert!(
        static_runner.ends_with("/ctl-runner-static"),
        "{static_runner}"
    );
    // Nothing of the benchmark container is left.
    let name = report["container"]
        .as_str()
        .expect("the report names its container");
    assert!(name.starts_with("bench-"), "{name}");
    ctl_test_support::leaks::assert_gone(&state, name);
}

/// A duration that is not positive is a one-line usage error.
#[test]
fn bench_rejects_a_bad_duration() {
    let state = StateDir::new();
    let run = state.ctl(&["bench", "--seconds", "0"]);
    let message = run.fails(1);
    assert!(message.contains("--seconds"), "{message}");
}
