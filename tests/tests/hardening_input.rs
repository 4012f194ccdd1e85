//! Hardening: the runner treats its envelope as untrusted. Fds that are not open, misused
//! or not what they claim, odd names, hostile placements, huge or deeply nested JSON: each
//! is refused with one line (exit status 2 and one line on stderr, or a `status:false`
//! reply when the return fd is usable), never a panic, never a command run on it.
//!
//! Runs the real `ctl-runner` binary (`cargo build --workspace --bins` first).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use tests::fixtures::{ctl_runner_path, serial, TestUser};

/// Runs `ctl-runner` with `input` on stdin, stdout and stderr captured, and each
/// `(fd, number)` of `extra` at that fd number in the runner.
fn run_runner(input: &[u8], extra: &[(&OwnedFd, RawFd)]) -> Output {
    let mut cmd = Command::new(ctl_runner_path());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let map: Vec<(RawFd, RawFd)> = extra.iter().map(|(fd, n)| (fd.as_raw_fd(), *n)).collect();
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl
    // (async-signal-safe) on fds that stay open in the parent for the whole spawn.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in &map {
                let rc = if from == to {
                    libc::fcntl(*to, libc::F_SETFD, 0)
                } else {
                    libc::dup2(*from, *to)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // A runner that refuses early stops reading: a broken pipe here is expected.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// An osctld-style envelope for `Ping` (no placement) with the reply on fd 1; `patch` is
/// merged over it.
fn envelope(patch: Value) -> Vec<u8> {
    let mut e = json!({
        "name": "Ping", "pool": "tank", "id": "ct1", "lxc_home": "/tmp", "user_home": "/tmp",
        "log_file": null, "args": ["pong"], "kwargs": {}, "return": 1,
        "stdin": null, "stdout": null, "stderr": null,
    });
    for (k, v) in patch.as_object().unwrap() {
        e[k] = v.clone();
    }
    serde_json::to_vec(&e).unwrap()
}

/// Refused before any reply could be written: exit status 2, exactly one line on stderr
/// that contains `needle`, nothing on stdout.
#[track_caller]
fn assert_exit_2(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("ctl-runner: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Refused with a `status:false` reply (on stdout, the return fd) containing `needle`.
#[track_caller]
fn assert_refused(out: &Output, needle: &str) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches('\n').count(),
        1,
        "not one reply line: {text:?} (stderr {stderr:?})"
    );
    let reply: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(reply["status"], false, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
    assert!(!message.contains("pong"), "the command ran: {reply}");
    reply
}

fn tmpfile(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

fn open_ro(path: &std::path::Path) -> OwnedFd {
    std::fs::File::open(path).unwrap().into()
}

#[test]
fn the_control_case_runs() {
    let out = run_runner(&envelope(json!({})), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"status\":true,\"output\":\"pong\"}\n"
    );
}

#[test]
fn fds_that_are_not_open() {
    let _serial = serial();
    // The return fd: nothing to reply on.
    for fd in [57, 1023, 65_535, i32::MAX] {
        let out = run_runner(&envelope(json!({"return": fd})), &[]);
        assert_exit_2(&out, &format!("return fd {fd} is not open"));
    }
    // The command's stdio: refused on the return fd.
    for (what, fd) in [("stdin", 40), ("stdout", 41), ("stderr", i32::MAX)] {
        let out = run_runner(&envelope(json!({ what: fd })), &[]);
        let reply = assert_refused(&out, &format!("{what} fd {fd} is not open"));
        assert_eq!(reply["ctl_error"]["kind"], "envelope", "{reply}");
    }
}

#[test]
fn fds_out_of_range_and_misused_are_refused_before_anything_runs() {
    let _serial = serial();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"return": 0}), "return fd 0 is the envelope itself"),
        (json!({"return": -1}), "bad return fd -1"),
        (json!({"return": 4_294_967_296_u64}), "malformed envelope"),
        (json!({"return": "1"}), "malformed envelope"),
        (json!({"return": 1.5}), "malformed envelope"),
        (json!({"return": null}), "malformed envelope"),
        (json!({"stdout": 0}), "fd 0 is the envelope, not an output"),
        (json!({"stderr": 0}), "fd 0 is the envelope, not an output"),
        (json!({"stdout": -5}), "bad stdout fd -5"),
        (json!({"stdin": 1}), "stdin fd 1 is also the return fd"),
        (json!({"stdout": 1}), "stdout fd 1 is also the return fd"),
    ];
    for (patch, needle) in cases {
        let out = run_runner(&envelope(patch.clone()), &[]);
        assert_exit_2(&out, needle);
    }
}

#[test]
fn fds_that_are_not_what_they_claim() {
    let _serial = serial();
    let (_dir, path) = tmpfile(b"not for writing\n");
    let read_only = open_ro(&path);
    let dir: OwnedFd = std::fs::File::open(_dir.path()).unwrap().into();
    let write_only: OwnedFd = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .into();
    let o_path: OwnedFd = nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();

    // The return fd: a read-only file, a directory, an O_PATH descriptor.
    for fd in [&read_only, &dir, &o_path] {
        let out = run_runner(&envelope(json!({"return": 30})), &[(fd, 30)]);
        assert_exit_2(&out, "return fd 30 is not");
    }
    // stdout or stderr read-only; stdin write-only; stdin the runner's own diagnostics.
    let out = run_runner(&envelope(json!({"stdout": 30})), &[(&read_only, 30)]);
    assert_refused(&out, "stdout fd 30 is not writable");
    let out = run_runner(&envelope(json!({"stderr": 30})), &[(&read_only, 30)]);
    assert_refused(&out, "stderr fd 30 is not writable");
    let out = run_runner(&envelope(json!({"stdin": 30})), &[(&write_only, 30)]);
    assert_refused(&out, "stdin fd 30 is not readable");
    let out = run_runner(&envelope(json!({"stdin": 2})), &[]);
    assert_refused(&out, "stdin fd 2 is not readable");
    // A directory or an O_PATH descriptor is no stdio, whatever its access mode: command
    // code running as the container's user must not get a handle to a directory it could
    // not open itself (openat below it).
    for (what, fd) in [
        ("stdin", &dir),
        ("stdout", &dir),
        ("stdin", &o_path),
        ("stdout", &o_path),
    ] {
        let out = run_runner(&envelope(json!({ what: 30 })), &[(fd, 30)]);
        assert_refused(&out, &format!("{what} fd 30 is not"));
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"not for writing\n");
}

#[test]
fn odd_names_are_refused() {
    let _serial = serial();
    let long = "A".repeat(300);
    for name in ["", "Ping\n", "Ping\u{0}", "\u{1b}[2JPing", long.as_str()] {
        let out = run_runner(&envelope(json!({ "name": name })), &[]);
        assert_exit_2(&out, "bad command name");
    }
    // Well-formed but unknown: a status:false reply naming it, on one line.
    for name in [
        "../../bin/sh",
        "/proc/self/exe",
        "Ping ",
        "P\u{130}ng",
        "ピング",
        "OsCtld::ContainerControl::Commands::",
        "::",
    ] {
        let out = run_runner(&envelope(json!({ "name": name })), &[]);
        assert_refused(&out, "unknown command");
    }
    // Pool and id end up in paths and process titles: no separators, dot names, control
    // characters or endless strings.
    let long = "c".repeat(300);
    for (field, value) in [
        ("id", "../../etc"),
        ("id", "a/b"),
        ("id", ".."),
        ("id", "."),
        ("id", "ct\n1"),
        ("id", long.as_str()),
        ("pool", "tank/../x"),
        ("pool", "t\u{7}"),
    ] {
        let out = run_runner(&envelope(json!({ field: value })), &[]);
        assert_exit_2(&out, &format!("bad {field}"));
    }
    // Paths with a NUL byte cannot name anything.
    for field in ["lxc_home", "user_home", "log_file"] {
        let out = run_runner(&envelope(json!({ field: "/tmp/\u{0}x" })), &[]);
        assert_exit_2(&out, &format!("{field} contains a NUL byte"));
    }
    // Unicode ids are names like others.
    let out = run_runner(
        &envelope(json!({"id": "контейнер-1", "pool": "tank-ü"})),
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"status\":true,\"output\":\"pong\"}\n"
    );
}

#[test]
fn huge_and_deep_json_is_refused() {
    let _serial = serial();
    // Larger than the bound, in one string, in many keys, in a long array.
    let big_string = envelope(json!({"args": ["x".repeat(2 << 20)]}));
    assert_exit_2(&run_runner(&big_string, &[]), "envelope larger than");
    let many: serde_json::Map<String, Value> =
        (0..100_000).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_exit_2(
        &run_runner(&envelope(json!({ "kwargs": many })), &[]),
        "envelope larger than",
    );
    // Within the bound: a well-formed envelope with far too many arguments is refused by
    // the command's decoding, in one reply line.
    let many: serde_json::Map<String, Value> =
        (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_refused(
        &run_runner(&envelope(json!({ "kwargs": many })), &[]),
        "unknown keyword argument",
    );
    let out = run_runner(&envelope(json!({"args": vec![json!(1); 100_000]})), &[]);
    assert_refused(
        &out,
        "expected at most 1 positional argument(s), got 100000",
    );

    // Nesting beyond serde_json's limit of 128, at the top and inside the arguments.
    let deep = format!("{}1{}", "[".repeat(200_000), "]".repeat(200_000));
    assert_exit_2(&run_runner(deep.as_bytes(), &[]), "malformed envelope");
    let text = String::from_utf8(envelope(json!({}))).unwrap();
    let nested = text.replace(
        "[\"pong\"]",
        &format!("[{}1{}]", "[".repeat(500), "]".repeat(500)),
    );
    assert_exit_2(
        &run_runner(nested.as_bytes(), &[]),
        "recursion limit exceeded",
    );
    let nested = text.replace(
        "{}",
        &format!("{}1{}", "{\"a\":".repeat(500), "}".repeat(500)),
    );
    assert_exit_2(
        &run_runner(nested.as_bytes(), &[]),
        "recursion limit exceeded",
    );
    // 100 levels are fine and come back unchanged.
    let value = (0..100).fold(json!("pong-deep"), |v, _| json!([v]));
    let out = run_runner(&envelope(json!({ "args": [value.clone()] })), &[]);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["output"], value);

    // Not JSON, not UTF-8, a byte-order mark, duplicate keys, trailing garbage, an empty
    // or endless-whitespace input.
    let dup = br#"{"name":"Ping","name":"Identity","pool":"p","id":"c","lxc_home":"/","user_home":"/","return":1}"#;
    let trailing = [envelope(json!({})), b" {}".to_vec()].concat();
    let bom = [b"\xef\xbb\xbf".to_vec(), envelope(json!({}))].concat();
    let spaces = vec![b' '; (1 << 20) + 10];
    for input in [
        &b"\xff\xfe\x00"[..],
        &bom,
        dup,
        &trailing,
        b"",
        &spaces,
        b"null",
        b"{}",
        b"\"Ping\"",
    ] {
        let out = run_runner(input, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_exit_2(&out, "envelope");
    }
}

/// The placement is applied by root: paths in it must be what they claim too. A
/// `cgroup.procs` entry naming a regular file must not make root write to that file.
#[test]
fn a_placement_naming_a_file_that_is_no_cgroup_is_refused() {
    let _serial = serial();
    let (_dir, path) = tmpfile(b"precious\n");
    let fake_procs = _dir.path().join("cgroup.procs");
    std::fs::write(&fake_procs, b"precious\n").unwrap();
    for target in [&path, &fake_procs] {
        let e = envelope(json!({
            "ctl": {
                "version": ctl_core::PROTOCOL_VERSION,
                "placement": {"cgroup_procs": [target.to_str().unwrap()]},
                "parent_pid": std::process::id(),
            }
        }));
        let out = run_runner(&e, &[]);
        let reply = assert_refused(&out, "is not a cgroup");
        assert_eq!(reply["ctl_error"]["kind"], "placement", "{reply}");
        assert_eq!(
            std::fs::read(target).unwrap(),
            b"precious\n",
            "root wrote to {}",
            target.display()
        );
    }
    // Unknown rlimits and users that do not exist are refused the same way.
    let e = envelope(json!({
        "ctl": {"version": ctl_core::PROTOCOL_VERSION, "placement": {"rlimits": {"bogus": {"soft": 1, "hard": 1}}}}
    }));
    assert_refused(&run_runner(&e, &[]), "unknown rlimit");
}

/// A real placement with a hostile stdio: the refusal comes before the placement, and the
/// reply still arrives.
#[test]
fn hostile_fds_with_a_real_placement() {
    let _serial = serial();
    let user = TestUser::new("hinput");
    let ct = user.container();
    let dir: OwnedFd = std::fs::File::open("/root").unwrap().into();
    let e = envelope(json!({
        "stdin": 30,
        "ctl": {
            "version": ctl_core::PROTOCOL_VERSION,
            "placement": {"user": {"name": ct.user, "ugid": ct.ugid}},
            "parent_pid": std::process::id(),
        }
    }));
    assert_refused(&run_runner(&e, &[(&dir, 30)]), "stdin fd 30 is not");
}

/// A terminal among the stdio of one of our envelopes is refused: our frontends relay
/// terminals (`ctl_core::terminal`), so one arriving here is a bug or a forged envelope,
/// and it must not reach command code (a program in the container would get the terminal:
/// read what is typed, write escape sequences to it). An osctld envelope (no extension)
/// is served as it comes.
#[test]
fn a_terminal_among_the_stdio_of_our_envelope_is_refused() {
    let _serial = serial();
    let pty = nix::pty::openpty(None, None).unwrap();
    let ours = json!({"ctl": {"version": ctl_core::PROTOCOL_VERSION}});
    for what in ["stdin", "stdout", "stderr"] {
        let mut patch = ours.clone();
        patch[what] = json!(30);
        let out = run_runner(&envelope(patch), &[(&pty.slave, 30)]);
        assert_refused(&out, &format!("the {what} fd is a terminal"));
    }
    let out = run_runner(&envelope(json!({"stdout": 30})), &[(&pty.slave, 30)]);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], true, "{reply}");
}
