//! Property tests: any envelope and any reply survive encode + decode unchanged, and the
//! decoders never panic on arbitrary bytes.

use ctl_core::envelope::{EntryCgroup, Envelope, Extension, PlacementSpec, UserSpec, WarmSpec};
use ctl_core::{Reply, Rlimit, RlimitValue};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn rlimit_value() -> impl Strategy<Value = RlimitValue> {
    prop_oneof![
        Just(RlimitValue::Unlimited),
        (0u64..u64::MAX).prop_map(RlimitValue::Limited)
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (
            "[A-Za-z:_]{1,40}",
            ".{0,16}",
            ".{0,16}",
            ".{0,30}",
            ".{0,30}",
            proptest::option::of(".{0,30}"),
        ),
        (
            prop::collection::vec(json_value(), 0..4),
            prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..4),
        ),
        (
            3i32..1000,
            proptest::option::of(0i32..1000),
            proptest::option::of(1i32..1000),
            proptest::option::of(1i32..1000),
        ),
        proptest::option::of((
            any::<u32>(),
            proptest::option::of(1i32..100_000),
            prop::collection::btree_map("[a-z]{1,8}", (rlimit_value(), rlimit_value()), 0..3),
            prop::collection::vec("/[a-z/]{1,30}", 0..4),
            proptest::option::of(("[a-z]{1,8}", any::<u32>())),
            any::<bool>(),
        )),
    )
        .prop_filter_map("valid fds", |(names, (args, kwargs), fds, ext)| {
            let (name, pool, id, lxc_home, user_home, log_file) = names;
            let (ret, stdin, stdout, stderr) = fds;
            let e = Envelope {
                name,
                pool,
                id,
                lxc_home,
                user_home,
                log_file,
                args,
                kwargs: kwargs.into_iter().collect::<Map<_, _>>(),
                return_fd: ret,
                stdin,
                stdout,
                stderr,
                ctl: ext.map(
                    |(version, parent_pid, rlimits, procs, user, setuid_helpers)| Extension {
                        version,
                        parent_pid,
                        warm: (version % 2 == 0).then(|| WarmSpec {
                            idle_timeout_ms: u64::from(version),
                            warm_up: version % 4 == 0,
                        }),
                        container_path: (version % 5 == 0).then(|| "/bin:/usr/bin".to_owned()),
                        lock_fd: (version % 3 == 0).then_some(9),
                        placement: Some(PlacementSpec {
                            rlimits: rlimits
                                .into_iter()
                                .map(|(k, (soft, hard))| (k, Rlimit { soft, hard }))
                                .collect(),
                            create_cgroup: procs.first().map(|p| EntryCgroup {
                                relative: p.trim_start_matches('/').to_owned(),
                                ugid: 7,
                            }),
                            born_in: procs.last().cloned().into_iter().collect(),
                            // osctld's layout names the container's cgroup too.
                            container_cgroup: procs
                                .first()
                                .filter(|_| version % 5 == 0)
                                .map(|p| format!("ct/{}", p.trim_start_matches('/'))),
                            // One slot per path (every other one kept open), or none.
                            procs_fds: if version % 3 == 0 {
                                Vec::new()
                            } else {
                                (0..procs.len())
                                    .map(|i| (i % 2 == 0).then_some(10 + i as i32))
                                    .collect()
                            },
                            cgroup_procs: procs,
                            user: user.map(|(name, ugid)| UserSpec { name, ugid }),
                            setuid_helpers,
                            own_process_group: !setuid_helpers,
                        }),
                    },
                ),
            };
            e.validate().is_ok().then_some(e)
        })
}

proptest! {
    #[test]
    fn envelopes_round_trip(e in envelope()) {
        let bytes = e.to_vec();
        prop_assert!(!bytes.contains(&b'\n'), "an envelope is one line");
        prop_assert_eq!(Envelope::from_slice(&bytes).unwrap(), e);
    }

    #[test]
    fn replies_round_trip(v in json_value(), message in ".{0,40}", ok in any::<bool>()) {
        let r = if ok { Reply::ok(v) } else { Reply::error(message) };
        let line = r.to_line();
        prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        prop_assert_eq!(Reply::from_line(&line).unwrap(), r);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::from_slice(&bytes);
        let _ = Reply::from_line(&bytes);
    }
}
