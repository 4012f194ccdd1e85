//! ctl-lxc's own attach (`ctl_lxc::enter`) side by side with liblxc's: the same programs,
//! attached into the same real unprivileged container both ways, must see the same
//! confinement, as the kernel reports it from inside (`/proc/<pid>/status` ids, groups and
//! capability sets, `Seccomp`, `NoNewPrivs`; the namespaces; the cgroups; the limits; the
//! environment; the open fds; the working directory; the LSM label), and end with the
//! same exit codes.

use std::time::Duration;

use ctl_core::{Call, Stdio};
use tests::attach_probe::{AttachProbe, Probed};
use tests::fixtures::{test_runner_path, TestContainer};

/// What the probe prints: everything about the attached shell (`$$`) that confinement
/// decides, one section per source, with the values that differ between any two
/// processes (pids, counters, memory) left out.
const PROBE: &str = r#"
echo "== status"; grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/$$/status
echo "== ns"; for n in user mnt pid uts ipc net cgroup time; do echo "$n $(readlink /proc/$$/ns/$n)"; done
echo "== cgroup"; cat /proc/$$/cgroup
echo "== limits"; cat /proc/$$/limits
echo "== env"; env | sort
echo "== fds"; ls /proc/$$/fd
echo "== cwd"; pwd
echo "== id"; id
echo "== lsm"; cat /proc/self/attr/current 2>&1; true
"#;

fn probe(tc: &TestContainer, engine: &str, argv: &[&str]) -> Probed {
    let call = Call::new(tc.container())
        .runner(test_runner_path())
        .stderr(Stdio::Inherit)
        .deadline(Duration::from_secs(60));
    AttachProbe::run_with(
        &call,
        engine.to_owned(),
        argv.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap_or_else(|e| panic!("{engine}: {e}"))
}

/// Asserts that both probes ran and saw the same, section by section (so that a difference
/// names itself); returns the direct one's sections.
fn assert_same_confinement(liblxc: &Probed, direct: &Probed) -> Vec<(String, String)> {
    println!("liblxc:\n{}\ndirect:\n{}", liblxc.output, direct.output);
    assert_eq!(liblxc.code, 0, "{}", liblxc.output);
    assert_eq!(direct.code, 0, "{}", direct.output);
    // Every section, line by line, so a difference names itself.
    let sections = |text: &str| -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("== ") {
                current = name.to_owned();
            } else {
                out.push((current.clone(), line.to_owned()));
            }
        }
        out
    };
    let (a, b) = (sections(&liblxc.output), sections(&direct.output));
    for name in [
        "status", "ns", "cgroup", "limits", "env", "fds", "cwd", "id", "lsm",
    ] {
        let of = |v: &[(String, String)]| -> Vec<String> {
            v.iter()
                .filter(|(s, _)| s == name)
                .map(|(_, l)| l.clone())
                .collect()
        };
        assert!(!of(&a).is_empty(), "no {name} section:\n{}", liblxc.output);
        assert_eq!(
            of(&a),
            of(&b),
            "section {name} differs (left liblxc, right direct)"
        );
    }
    b
}

#[test]
fn the_direct_attach_confines_exactly_as_liblxcs() {
    let tc = TestContainer::running("adirect");
    let direct = probe(&tc, "direct", &["/bin/sh", "-c", PROBE]);
    let liblxc = probe(&tc, "liblxc", &["/bin/sh", "-c", PROBE]);
    let b = assert_same_confinement(&liblxc, &direct);
    // And what that means, in case both attaches were wrong the same way.
    let status = |field: &str| {
        b.iter()
            .find(|(s, l)| s == "status" && l.starts_with(field))
            .map(|(_, l)| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap()
    };
    assert_eq!(status("Uid:"), "0 0 0 0", "root inside");
    assert_eq!(status("Groups:"), "", "no supplementary groups of the host");
    assert_eq!(status("CapAmb:"), "0000000000000000");
    assert_ne!(
        status("CapBnd:"),
        "000001ffffffffff",
        "lxc.cap.drop narrows the bounding set"
    );
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert!(
        !b.iter()
            .any(|(s, l)| s == "ns" && l == &format!("mnt {}", host_ns.display())),
        "inside the container's mount namespace"
    );
    assert!(
        b.iter()
            .any(|(s, l)| s == "cgroup" && l.starts_with("0::/")),
        "in the container's cgroup namespace: {:?}",
        b
    );
}

#[test]
fn exit_codes_and_missing_programs_are_liblxcs() {
    let tc = TestContainer::running("acodes");
    // A script without `#!`: execvp (liblxc's) runs it with /bin/sh.
    let setup = probe(
        &tc,
        "direct",
        &[
            "/bin/sh",
            "-c",
            "printf 'exit 5\\n' > /noshebang && chmod 755 /noshebang",
        ],
    );
    assert_eq!(setup.code, 0, "{setup:?}");
    for argv in [
        &["/noshebang"][..],
        &["/bin/sh", "-c", "exit 7"][..],
        &["/bin/sh", "-c", "kill -TERM $$"][..],
        &["no-such-program"][..],
        &["/etc/passwd"][..],
        &["true"][..],
    ] {
        let liblxc = probe(&tc, "liblxc", argv);
        let direct = probe(&tc, "direct", argv);
        assert_eq!(
            liblxc.code, direct.code,
            "{argv:?}: liblxc {liblxc:?}, direct {direct:?}"
        );
    }
    assert_eq!(probe(&tc, "direct", &["/noshebang"]).code, 5);
    assert_eq!(probe(&tc, "direct", &["no-such-program"]).code, 127);
    assert_eq!(probe(&tc, "direct", &["/etc/passwd"]).code, 126);
    assert_eq!(
        probe(&tc, "direct", &["/bin/sh", "-c", "kill -TERM $$"]).code,
        128 + 15
    );
}

#[test]
fn the_default_engine_is_the_direct_one_for_a_covered_container() {
    let tc = TestContainer::running("aauto");
    let log = &tc.container().log_file;
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    // liblxc's attach leaves a warning in the container's log on this host ("No security
    // context received"); ours writes nothing there. The control first.
    let before = size();
    assert_eq!(probe(&tc, "liblxc", &["true"]).code, 0);
    assert!(
        size() > before,
        "liblxc's attach logged nothing: the check below means nothing"
    );
    let before = size();
    assert_eq!(probe(&tc, "auto", &["true"]).code, 0);
    assert_eq!(
        size(),
        before,
        "the default engine went through liblxc's attach"
    );
}

#[test]
fn a_setting_the_direct_attach_does_not_apply_is_never_skipped() {
    let tc = TestContainer::running("afallback");
    let ct = tc.container();
    // lxc.proc.* is applied by liblxc's attach to the attached process (from its parent,
    // which an unprivileged container's user may not do: liblxc's attach then fails), never
    // by ours.
    let config = ct.lxc_home.join(&ct.id).join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("lxc.proc.oom_score_adj = 123\n");
    std::fs::write(&config, text).unwrap();
    let argv: Vec<String> = ["/bin/sh", "-c", "cat /proc/$$/oom_score_adj"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let call = Call::new(ct)
        .runner(test_runner_path())
        .stderr(Stdio::Null)
        .deadline(Duration::from_secs(60));
    let attempt = |engine: &str| AttachProbe::run_with(&call, engine.to_owned(), argv.clone());
    // The default engine behaves as liblxc's attach does with this setting: had it run the
    // program without the setting, it would have succeeded with a score of 0.
    let liblxc = attempt("liblxc");
    let auto = attempt("auto");
    match (&liblxc, &auto) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.output, b.output);
            assert_eq!(b.output.trim(), "123");
        }
        (Err(a), Err(b)) => {
            assert!(a.to_string().contains("lxc attach"), "{a}");
            assert!(b.to_string().contains("lxc attach"), "{b}");
        }
        other => panic!("the default engine differs from liblxc's: {other:?}"),
    }
    // Asked for explicitly, ours refuses and names the key.
    let err = attempt("direct").unwrap_err().to_string();
    assert!(err.contains("lxc.proc.oom_score_adj"), "{err}");
    assert!(err.contains("not applied by ctl's own attach"), "{err}");
}

#[test]
fn a_stale_payload_beside_inits_is_never_entered() {
    // An earlier start can leave `lxc.payload.<name>` behind (a process kept it busy when
    // LXC removed it); LXC then starts the container in `lxc.payload.<name>-1`. No
    // attach may take the stale one for the container's.
    let tc = TestContainer::new("astale");
    let ct = tc.container();
    let stale: Vec<_> = ctl_core::cgroup::hierarchies()
        .iter()
        .map(|h| {
            h.path_of(&ct.cgroup_path)
                .join(format!("lxc.payload.{}", ct.id))
        })
        .collect();
    for dir in &stale {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    commands::Start::run_with(&tests::fixtures::command_call(ct)).expect("start");
    let init_cgroup = {
        let pid = ctl_lxc::command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid, 0], None)
            .unwrap()
            .and_then(|s| s.init_pid)
            .expect("init pid");
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
    };
    assert!(
        init_cgroup.contains(&format!("lxc.payload.{}-", ct.id)),
        "LXC started beside the stale payload: {init_cgroup}"
    );
    let argv: Vec<String> = ["/bin/sh", "-c", "cat /proc/$$/cgroup"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let call = Call::new(ct)
        .runner(test_runner_path())
        .stderr(Stdio::Null)
        .deadline(Duration::from_secs(60));
    // Both engines take the payload from the monitor: the program sees itself at the root
    // of the container's cgroup namespace (`/.lxc` in cgroup v2), never beside it (`/..`).
    for engine in ["direct", "auto", "liblxc"] {
        let probed = AttachProbe::run_with(&call, engine.to_owned(), argv.clone())
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(probed.code, 0, "{engine}: {probed:?}");
        assert!(
            probed.output.contains("0::/.lxc\n") && !probed.output.contains("/.."),
            "{engine}: {}",
            probed.output
        );
    }
    for dir in &stale {
        assert!(
            dir.is_dir(),
            "the stale payload {} was touched",
            dir.display()
        );
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.trim().is_empty(),
            "something entered the stale payload: {procs}"
        );
    }
}

/// LXC 5.0's `common.seccomp` (what vpsAdminOS uses by default), with one rule of ours.
const PROFILE: &str = "2\ndenylist\nreject_force_umount  # comment this to allow umount -f;  not recommended\n[all]\nkexec_load errno 1\nopen_by_handle_at errno 1\ninit_module errno 1\nfinit_module errno 1\ndelete_module errno 1\n[arm64]\numount2 errno 5\n";

/// A container with what `extra` returns for it appended to its config, started.
fn started_with(tag: &str, extra: impl FnOnce(&ctl_core::Container) -> String) -> TestContainer {
    let tc = TestContainer::new(tag);
    let ct = tc.container();
    let config = ct.lxc_home.join(&ct.id).join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&extra(ct));
    std::fs::write(&config, text).unwrap();
    commands::Start::run_with(&tests::fixtures::command_call(ct)).expect("start");
    tc
}

/// A container whose `lxc.seccomp.profile` is [`PROFILE`] (a file beside its config),
/// started.
fn with_profile(tag: &str) -> TestContainer {
    started_with(tag, |ct| {
        let profile = ct.lxc_home.join(&ct.id).join("ctl-test.seccomp");
        std::fs::write(&profile, PROFILE).unwrap();
        format!("lxc.seccomp.profile = {}\n", profile.display())
    })
}

#[test]
fn a_seccomp_profile_is_applied_as_liblxcs_attach_applies_it() {
    let tc = with_profile("aseccomp");
    let ct = tc.container();
    // A forced umount is what the profile refuses with EACCES (without it: ENOENT).
    let program =
        format!("{PROBE}\necho '== umount'; umount -f /nonexistent-ctl 2>&1 | sed 's/^[^:]*: //'");
    let direct = probe(&tc, "direct", &["/bin/sh", "-c", &program]);
    let liblxc = probe(&tc, "liblxc", &["/bin/sh", "-c", &program]);
    let b = assert_same_confinement(&liblxc, &direct);
    let of = |name: &str| -> Vec<String> {
        b.iter()
            .filter(|(s, _)| s == name)
            .map(|(_, l)| l.clone())
            .collect()
    };
    assert_eq!(
        of("umount"),
        {
            let a: Vec<(String, String)> = liblxc
                .output
                .lines()
                .skip_while(|l| *l != "== umount")
                .skip(1)
                .map(|l| ("umount".to_owned(), l.to_owned()))
                .collect();
            a.into_iter().map(|(_, l)| l).collect::<Vec<_>>()
        },
        "umount -f (left direct, right liblxc)"
    );
    assert!(
        of("umount").iter().any(|l| l.contains("Permission denied")),
        "the filter refuses a forced umount: {:?}",
        of("umount")
    );
    assert!(
        of("status")
            .iter()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{:?}",
        of("status")
    );
    // The default engine is ours for this container (liblxc's would log a warning).
    let log = &ct.log_file;
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let before = size();
    assert_eq!(probe(&tc, "auto", &["true"]).code, 0);
    assert_eq!(
        size(),
        before,
        "the default engine went through liblxc's attach"
    );
}

/// `PTRACE_SECCOMP_GET_FILTER` (`<linux/ptrace.h>`; not in the libc crate).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// The seccomp program the kernel holds for process `pid` (its first filter), read as
/// root with `PTRACE_SECCOMP_GET_FILTER` (the process is stopped meanwhile).
fn seccomp_program(pid: i32) -> Vec<u64> {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let target = nix::unistd::Pid::from_raw(pid);
    // SAFETY: ptrace requests with integer arguments on a process of the test's making;
    // PTRACE_SECCOMP_GET_FILTER writes at most the count it returned into `program`.
    unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0),
            0,
            "PTRACE_SEIZE {pid}: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
        waitpid(target, Some(WaitPidFlag::__WALL)).unwrap();
        let count = libc::ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            pid,
            0,
            std::ptr::null_mut::<libc::c_void>(),
        );
        assert!(
            count > 0,
            "PTRACE_SECCOMP_GET_FILTER {pid}: {}",
            std::io::Error::last_os_error()
        );
        let mut program = vec![0u64; count as usize];
        let got = libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, program.as_mut_ptr());
        assert_eq!(got, count);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        program
    }
}

/// The host pid of the process whose command line is exactly `argv`.
fn find_process(argv: &[&str]) -> Option<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
}

#[test]
fn the_attached_process_runs_the_very_filter_lxc_gave_init() {
    let tc = with_profile("abpf");
    let ct = tc.container();
    let init = ctl_lxc::command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid, 0], None)
        .unwrap()
        .and_then(|s| s.init_pid)
        .expect("init pid");
    let lxc_made = seccomp_program(init);
    for (engine, seconds) in [("direct", "41"), ("liblxc", "43")] {
        let program = std::thread::scope(|s| {
            let running = s.spawn(|| probe(&tc, engine, &["sleep", seconds]));
            let start = std::time::Instant::now();
            let pid = loop {
                if let Some(pid) = find_process(&["sleep", seconds]) {
                    break pid;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "{engine}: no sleep"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            let program = seccomp_program(pid);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            assert_eq!(running.join().unwrap().code, 128 + 9, "{engine}");
            program
        });
        assert_eq!(
            program, lxc_made,
            "{engine}: the attached process's filter is not the one LXC gave init"
        );
    }
}

/// A container configured as vpsAdminOS configures its containers: LXC's `common.conf`
/// and `userns.conf` included (with them `common.seccomp` and `common.conf.d/`). The default
/// engine is ours, and it confines as liblxc's does.
#[test]
fn a_container_including_lxcs_common_configuration_is_entered_directly() {
    let mut extra = String::new();
    for file in ["common.conf", "userns.conf"] {
        let path = std::path::Path::new("/usr/share/lxc/config").join(file);
        assert!(path.is_file(), "{} (the lxc package's)", path.display());
        extra.push_str(&format!("lxc.include = {}\n", path.display()));
    }
    let tc = started_with("ainclude", |_| extra);
    let ct = tc.container();
    let direct = probe(&tc, "direct", &["/bin/sh", "-c", PROBE]);
    let liblxc = probe(&tc, "liblxc", &["/bin/sh", "-c", PROBE]);
    let b = assert_same_confinement(&liblxc, &direct);
    assert!(
        b.iter()
            .any(|(s, l)| s == "status" && l.starts_with("Seccomp:") && l.ends_with('2')),
        "common.conf's seccomp profile: {b:?}"
    );
    let log = &ct.log_file;
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let before = size();
    assert_eq!(probe(&tc, "auto", &["true"]).code, 0);
    assert_eq!(
        size(),
        before,
        "the default engine went through liblxc's attach"
    );
}

/// `lxc.arch = i686` on an x86_64 host: liblxc's attach sets the personality of the running
/// configuration's architecture (PER_LINUX32), and so does ours.
#[test]
fn a_32_bit_architecture_gets_its_personality_through_both_attaches() {
    let tc = started_with("aarch", |_| "lxc.arch = i686\n".to_owned());
    let program = "uname -m; cat /proc/$$/personality";
    let direct = probe(&tc, "direct", &["/bin/sh", "-c", program]);
    let liblxc = probe(&tc, "liblxc", &["/bin/sh", "-c", program]);
    assert_eq!(direct.code, 0, "{direct:?}");
    assert_eq!(direct.output, liblxc.output);
    assert_eq!(direct.output, "i686\n00000008\n");
    // And without the setting, the host's.
    let tc = TestContainer::running("anative");
    let direct = probe(&tc, "direct", &["/bin/sh", "-c", program]);
    assert_eq!(direct.output, "x86_64\n00000000\n");
}
