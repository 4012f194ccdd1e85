//! Exec, Runscript and Syscmd on real unprivileged LXC containers, run through the
//! standalone `ctl-runner`: attached to a running container, and started just for the
//! command (`run`) on a stopped one. LXC's own tools (the oracle) check the container's
//! state independently.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use commands::{Exec, ExecOptions, Runscript, ScriptSource, Syscmd, SyscmdOutput, ValidRcs};
use ctl_core::{Call, Container, Error, ErrorKind, Stdio};
use ctl_provision::{oracle, CreateOptions, Net};
use tests::fixtures::{command_call as call, command_error, lingering_zombies, TestContainer};

/// What a program printed and how it ended.
#[derive(Debug)]
struct Ran {
    status: i32,
    stdout: String,
    stderr: String,
}

/// A pipe whose read end holds `input` and EOF.
fn input(input: &str) -> OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut w = File::from(w);
    w.write_all(input.as_bytes()).unwrap();
    r
}

fn read_back(mut f: File) -> String {
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// Runs `f` with a call whose stdin is `stdin` and whose stdout and stderr are temporary
/// files, and returns what went there.
fn with_stdio(
    ct: &Container,
    stdin: Option<&str>,
    f: impl FnOnce(&Call<'_>) -> Result<i32, Error>,
) -> Result<Ran, Error> {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let stdin = stdin.map(input);
    let c = call(ct)
        .stdin(stdin.as_ref().map(|fd| fd.as_fd()))
        .stdout(Stdio::Fd(out.as_fd()))
        .stderr(Stdio::Fd(err.as_fd()));
    let status = f(&c)?;
    Ok(Ran {
        status,
        stdout: read_back(out),
        stderr: read_back(err),
    })
}

fn exec(ct: &Container, cmd: &[&str], run: bool, stdin: Option<&str>) -> Result<Ran, Error> {
    let cmd: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
    let t = Instant::now();
    let ran = with_stdio(ct, stdin, |c| {
        Exec::run_with(c, cmd.clone(), run, false, Default::default())
    });
    eprintln!("Exec {cmd:?} run={run}: {:?}", t.elapsed());
    ran
}

fn runscript(
    ct: &Container,
    script: ScriptSource,
    run: bool,
    stdin: Option<&str>,
) -> Result<Ran, Error> {
    let t = Instant::now();
    let ran = with_stdio(ct, stdin, |c| {
        Runscript::run_with(c, script.clone(), Vec::new(), run, false)
    });
    eprintln!("Runscript {script:?} run={run}: {:?}", t.elapsed());
    ran
}

fn rootfs(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("rootfs")
}

/// Temporary Runscript files left in the rootfs.
fn leftover_scripts(ct: &Container) -> Vec<String> {
    std::fs::read_dir(rootfs(ct))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".ctl-runscript"))
        .collect()
}

/// osctld's four cases (stdout, stderr, exit status, unknown command) plus stdin, the
/// environment and a signal, through Exec.
fn exec_cases(ct: &Container, run: bool) {
    let r = exec(ct, &["echo", "hi"], run, None).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "hi\n", ""),
        "{r:?}"
    );

    let r = exec(ct, &["sh", "-c", ">&2 echo hi"], run, None).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "hi\n"),
        "{r:?}"
    );

    let r = exec(ct, &["sh", "-c", "exit 33"], run, None).unwrap();
    assert_eq!(r.status, 33, "{r:?}");

    let r = exec(ct, &["no-such-command-here"], run, None).unwrap();
    assert_ne!(r.status, 0, "{r:?}");
    if !run {
        // (With `run`, init.lxc reports a failed exec to the container's log, not stderr.)
        assert_eq!(r.status, 127, "{r:?}");
        assert!(r.stderr.contains("no-such-command-here"), "{r:?}");
    }

    let r = exec(ct, &["cat"], run, Some("passed\nthrough\n")).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "passed\nthrough\n"),
        "{r:?}"
    );

    // No stdin given: the program reads EOF (not the runner's envelope socket).
    let r = exec(ct, &["cat"], run, None).unwrap();
    assert_eq!((r.status, r.stdout.as_str()), (0, ""), "{r:?}");

    let r = exec(
        ct,
        &[
            "sh",
            "-c",
            "echo $HOME $USER $PATH; env | cut -d= -f1 | sort | tr '\\n' ' '",
        ],
        run,
        None,
    )
    .unwrap();
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("/root root {}", ctl_lxc::SYSTEM_PATH).as_str()),
        "{r:?}"
    );
    let names = lines.next().unwrap_or_default();
    for leaked in ["XDG_RUNTIME_DIR", "LOGNAME", "container_ttys"] {
        assert!(
            !names.split(' ').any(|n| n == leaked),
            "{leaked} leaked into {names:?}"
        );
    }

    let r = exec(ct, &["sh", "-c", "kill -9 $$"], run, None).unwrap();
    assert_eq!(r.status, 128 + 9, "{r:?}");
}

#[test]
fn exec_on_a_running_container() {
    let t = TestContainer::running("exr");
    let ct = t.container();
    let init = oracle::lxc_init_pid(ct).unwrap();
    exec_cases(ct, false);
    // `run` on a running container attaches, as osctld does: the same init afterwards.
    exec_cases(ct, true);
    assert_eq!(t.lxc_state(), "running");
    assert_eq!(oracle::lxc_init_pid(ct).unwrap(), init);
    // The program ran as root inside, in the container's namespaces.
    let r = exec(ct, &["sh", "-c", "id -u; hostname"], false, None).unwrap();
    assert_eq!(r.stdout, format!("0\n{}\n", ct.id));
    // A frozen container is refused (an attached process would freeze with it).
    assert!(oracle::lxc_tool(ct, "lxc-freeze", &[])
        .unwrap()
        .status
        .success());
    let message = command_error(exec(ct, &["true"], true, None));
    assert!(message.contains("frozen"), "{message}");
    assert!(oracle::lxc_tool(ct, "lxc-unfreeze", &[])
        .unwrap()
        .status
        .success());
    assert!(lingering_zombies().is_empty());
}

#[test]
fn exec_killed_by_the_deadline_leaves_nothing_running() {
    let t = TestContainer::running("exd");
    let ct = t.container();
    let sleep = vec!["sleep".to_owned(), "60".to_owned()];
    let t0 = Instant::now();
    match Exec::run_with(
        &call(ct).deadline(Duration::from_secs(2)),
        sleep.clone(),
        false,
        false,
        Default::default(),
    ) {
        Err(e) if matches!(e.kind(), ErrorKind::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    wait_until(
        || !inside_ps(ct).contains("sleep 60"),
        "the attached program to go",
    );
    assert_eq!(t.lxc_state(), "running");

    // With `run`: the container started for the program goes with it.
    oracle::stop(ct).unwrap();
    match Exec::run_with(
        &call(ct).deadline(Duration::from_secs(3)),
        sleep,
        true,
        false,
        Default::default(),
    ) {
        Err(e) if matches!(e.kind(), ErrorKind::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    wait_until(|| t.lxc_state() == "stopped", "the container to stop");
    assert!(lingering_zombies().is_empty());
}

fn inside_ps(ct: &Container) -> String {
    let ps = oracle::attach(ct, &["ps", "-o", "args"]).unwrap();
    String::from_utf8_lossy(&ps.stdout).into_owned()
}

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn exec_runs_a_stopped_container_only_with_run() {
    let t = TestContainer::new("exs");
    let ct = t.container();
    let message = command_error(exec(ct, &["echo", "hi"], false, None));
    assert!(
        message.contains("not running") && message.contains("run"),
        "{message}"
    );

    exec_cases(ct, true);
    assert_eq!(t.lxc_state(), "stopped");
    // Started with LXC's init as pid 1 and the program as its child, without networking
    // (a loopback device only).
    let r = exec(
        ct,
        &[
            "sh",
            "-c",
            "echo $$; cut -d: -f1 /proc/net/dev | tail -n +3",
        ],
        true,
        None,
    )
    .unwrap();
    let lines: Vec<&str> = r.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["2", "lo"], "{r:?}");
    assert_eq!(t.lxc_state(), "stopped");
    // A program that does not exist is also just a non-zero status in this mode.
    let r = exec(ct, &["/no/such/program"], true, None).unwrap();
    assert_ne!(r.status, 0, "{r:?}");
    assert!(lingering_zombies().is_empty());
}

/// Exec's options (environment set, kept, cleared; working directory; ids inside), attached
/// to a running container and in a container started for the command.
#[test]
fn exec_options_environment_cwd_and_ids() {
    let t = TestContainer::running("exo");
    let ct = t.container();
    let show =
        "echo \"${FOO-unset} ${HOME-unset} ${PATH-unset} ${CARGO_PKG_NAME-unset}\"; pwd; id -u; id -g";
    let cmd: Vec<String> = ["sh", "-c", show].iter().map(|s| (*s).to_owned()).collect();
    // The test's own environment is the caller's: a kept variable comes from it (cargo
    // sets CARGO_PKG_NAME for the tests it runs).
    let kept = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let options = ExecOptions {
        env: [("FOO".to_owned(), "bar baz".to_owned())].into(),
        cwd: Some("/tmp".to_owned()),
        uid: Some(1000),
        gid: Some(1001),
        ..ExecOptions::default()
    }
    .keep_from_this_process(&["CARGO_PKG_NAME", "CTL_NOT_SET_ANYWHERE"])
    .unwrap();
    for run in [false, true] {
        if run {
            oracle::stop(ct).unwrap();
        }
        let r = with_stdio(ct, None, |c| {
            Exec::run_with(c, cmd.clone(), run, false, options.clone())
        })
        .unwrap();
        assert_eq!(
            (r.status, r.stdout.as_str()),
            (
                0,
                format!(
                    "bar baz /root {} {kept}\n/tmp\n1000\n1001\n",
                    ctl_lxc::SYSTEM_PATH
                )
                .as_str()
            ),
            "run={run}: {r:?}"
        );
        // A cleared environment has only what is set.
        let cleared = ExecOptions {
            env: [("FOO".to_owned(), "only".to_owned())].into(),
            clear: true,
            ..ExecOptions::default()
        };
        let r = with_stdio(ct, None, |c| {
            Exec::run_with(
                c,
                vec!["/bin/sh".into(), "-c".into(), show.into()],
                run,
                false,
                cleared.clone(),
            )
        })
        .unwrap();
        let first = r.stdout.lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with("only unset ") && first.ends_with(" unset"),
            "run={run}: {r:?}"
        );
        assert!(!first.contains(ctl_lxc::SYSTEM_PATH), "run={run}: {r:?}");
    }
    assert_eq!(t.lxc_state(), "stopped");

    // Bad options are refused before anything starts.
    for bad in [
        ExecOptions {
            env: [("A=B".to_owned(), "x".to_owned())].into(),
            ..ExecOptions::default()
        },
        ExecOptions {
            cwd: Some("relative".to_owned()),
            ..ExecOptions::default()
        },
        ExecOptions {
            uid: Some(u32::MAX),
            ..ExecOptions::default()
        },
    ] {
        let message = command_error(Exec::run_with(
            &call(ct),
            vec!["true".into()],
            true,
            false,
            bad,
        ));
        assert!(
            message.contains("environment variable name")
                || message.contains("absolute path")
                || message.contains("is not an id"),
            "{message}"
        );
    }
    assert_eq!(t.lxc_state(), "stopped");
}

/// The programs' `PATH` is the container's `container_path` when set (osctld's system path
/// otherwise, checked in `exec_cases`), attached and started.
#[test]
fn container_path_is_configurable() {
    let t = TestContainer::running("exp");
    let mut ct = t.container().clone();
    ct.container_path = Some("/usr/bin:/bin:/opt/custom/bin".to_owned());
    for run in [false, true] {
        if run {
            oracle::stop(&ct).unwrap();
        }
        let r = exec(&ct, &["sh", "-c", "echo $PATH"], run, None).unwrap();
        assert_eq!(
            (r.status, r.stdout.as_str()),
            (0, "/usr/bin:/bin:/opt/custom/bin\n"),
            "run={run}: {r:?}"
        );
    }
}

#[test]
fn exec_with_run_and_network_sets_up_the_configured_network() {
    let t = TestContainer::with_options(
        "exn",
        &CreateOptions {
            net: Net::Veth,
            ..CreateOptions::default()
        },
    );
    let ct = t.container();
    let config = ct.lxc_home.join(&ct.id).join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("lxc.net.0.name = eth0\nlxc.net.0.ipv4.address = 10.213.77.2/24\n");
    std::fs::write(&config, text).unwrap();

    let show = ["sh", "-c", "ip -4 -o addr show | cut -d' ' -f2,7 | sort"];
    let cmd: Vec<String> = show.iter().map(|s| (*s).to_owned()).collect();
    let r = with_stdio(ct, None, |c| {
        Exec::run_with(c, cmd.clone(), true, true, Default::default())
    })
    .unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "eth0 10.213.77.2/24\nlo 127.0.0.1/8\n"),
        "{r:?}"
    );
    // Without `network`: only the loopback device.
    let r = with_stdio(ct, None, |c| {
        Exec::run_with(c, cmd.clone(), true, false, Default::default())
    })
    .unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "lo 127.0.0.1/8\n"),
        "{r:?}"
    );
    assert_eq!(t.lxc_state(), "stopped");
    // On a running container `network` changes nothing: it attaches.
    oracle::start(ct).unwrap();
    let r = with_stdio(ct, None, |c| {
        Exec::run_with(c, vec!["true".into()], true, true, Default::default())
    })
    .unwrap();
    assert_eq!(r.status, 0);
}

/// The same cases with scripts, from a host file and from stdin.
fn runscript_cases(ct: &Container, run: bool) {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| -> ScriptSource {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        ScriptSource::File(path)
    };
    let from_stdin = |body: &str| format!("#!/bin/sh\n{body}\n");

    // The script's arguments, as given (one with a space stays one).
    let args = script("args", "echo \"$#:$1:$2\"");
    let r = with_stdio(ct, None, |c| {
        Runscript::run_with(c, args.clone(), vec!["a b".into(), "-c".into()], run, false)
    })
    .unwrap();
    assert_eq!((r.status, r.stdout.as_str()), (0, "2:a b:-c\n"), "{r:?}");

    let r = runscript(ct, script("out", "echo hi"), run, None).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "hi\n", ""),
        "{r:?}"
    );
    let r = runscript(ct, ScriptSource::Stdin, run, Some(&from_stdin("echo hi"))).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "hi\n", ""),
        "{r:?}"
    );

    let r = runscript(ct, script("err", ">&2 echo hi"), run, None).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "hi\n"),
        "{r:?}"
    );
    let r = runscript(
        ct,
        ScriptSource::Stdin,
        run,
        Some(&from_stdin(">&2 echo hi")),
    )
    .unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "hi\n"),
        "{r:?}"
    );

    let r = runscript(ct, script("exit", "exit 33"), run, None).unwrap();
    assert_eq!(r.status, 33, "{r:?}");
    let r = runscript(ct, ScriptSource::Stdin, run, Some(&from_stdin("exit 33"))).unwrap();
    assert_eq!(r.status, 33, "{r:?}");

    let r = runscript(ct, script("unknown", "no-such-command-here"), run, None).unwrap();
    assert_ne!(r.status, 0, "{r:?}");
    let r = runscript(
        ct,
        ScriptSource::Stdin,
        run,
        Some(&from_stdin("no-such-command-here")),
    )
    .unwrap();
    assert_ne!(r.status, 0, "{r:?}");

    // A script from a file gets the call's stdin; one from stdin gets none.
    let r = runscript(ct, script("cat", "cat"), run, Some("to the script\n")).unwrap();
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "to the script\n"),
        "{r:?}"
    );
    let r = runscript(
        ct,
        ScriptSource::Stdin,
        run,
        Some(&from_stdin("cat; echo end")),
    )
    .unwrap();
    assert_eq!((r.status, r.stdout.as_str()), (0, "end\n"), "{r:?}");

    // The script ran as a 0500 file of the container's root, in the top directory.
    let r = runscript(
        ct,
        script("self", "stat -c '%a %u %g' \"$0\"; dirname \"$0\""),
        run,
        None,
    )
    .unwrap();
    assert_eq!((r.status, r.stdout.as_str()), (0, "500 0 0\n/\n"), "{r:?}");

    assert!(
        leftover_scripts(ct).is_empty(),
        "left in the rootfs: {:?}",
        leftover_scripts(ct)
    );
}

#[test]
fn runscript_on_a_running_container() {
    let t = TestContainer::running("rsr");
    runscript_cases(t.container(), false);
    assert_eq!(t.lxc_state(), "running");
}

#[test]
fn runscript_runs_a_stopped_container_only_with_run() {
    let t = TestContainer::new("rss");
    let ct = t.container();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
    let message = command_error(runscript(ct, ScriptSource::File(path), false, None));
    assert!(message.contains("not running"), "{message}");
    assert!(
        leftover_scripts(ct).is_empty(),
        "a refused call left {:?}",
        leftover_scripts(ct)
    );

    runscript_cases(ct, true);
    assert_eq!(t.lxc_state(), "stopped");
}

#[test]
fn runscript_refusals_leave_nothing_behind() {
    let t = TestContainer::running("rsx");
    let ct = t.container();

    // A missing script is a clear error naming it.
    let missing = PathBuf::from("/nonexistent/ctl-script.sh");
    let message = command_error(runscript(ct, ScriptSource::File(missing), false, None));
    assert!(
        message.contains("/nonexistent/ctl-script.sh") && message.contains("No such file"),
        "{message}"
    );
    // Stdin as the source, but no stdin.
    let message = command_error(Runscript::run_with(
        &call(ct),
        ScriptSource::Stdin,
        Vec::new(),
        false,
        false,
    ));
    assert!(message.contains("no stdin"), "{message}");
    assert!(leftover_scripts(ct).is_empty());

    // A container whose /tmp is a symlink to a host directory: nothing is written there.
    let host_dir = tempfile::tempdir().unwrap();
    let tmp = rootfs(ct).join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::os::unix::fs::symlink(host_dir.path(), &tmp).unwrap();
    let r = runscript(ct, ScriptSource::Stdin, false, Some("#!/bin/sh\necho ok\n")).unwrap();
    assert_eq!(r.stdout, "ok\n");
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 0);

    // A config whose rootfs points at a host directory (not the container root's): refused.
    let config = ct.lxc_home.join(&ct.id).join("config");
    let original = std::fs::read_to_string(&config).unwrap();
    let fake = tempfile::tempdir().unwrap();
    std::fs::set_permissions(fake.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = original
        .lines()
        .find(|l| l.starts_with("lxc.rootfs.path"))
        .unwrap();
    std::fs::write(
        &config,
        original.replace(
            line,
            &format!("lxc.rootfs.path = dir:{}", fake.path().display()),
        ),
    )
    .unwrap();
    let message = command_error(runscript(
        ct,
        ScriptSource::Stdin,
        false,
        Some("#!/bin/sh\necho ok\n"),
    ));
    assert!(
        message.contains("owned by uid 0") && message.contains("refusing"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(fake.path()).unwrap().count(), 0);
    // A rootfs that is a symlink: refused as well.
    let link = host_dir.path().join("link");
    std::os::unix::fs::symlink(rootfs(ct), &link).unwrap();
    std::fs::write(
        &config,
        original.replace(line, &format!("lxc.rootfs.path = dir:{}", link.display())),
    )
    .unwrap();
    let message = command_error(runscript(
        ct,
        ScriptSource::Stdin,
        false,
        Some("#!/bin/sh\necho ok\n"),
    ));
    assert!(message.contains("cannot open the rootfs"), "{message}");
    std::fs::write(&config, &original).unwrap();
    assert!(leftover_scripts(ct).is_empty());
}

fn syscmd(ct: &Container, cmd: &[&str], valid: &[i32], run: bool) -> Result<SyscmdOutput, Error> {
    let cmd = cmd.iter().map(|s| (*s).to_owned()).collect();
    Syscmd::run_with(&call(ct), cmd, valid.to_vec().into(), run, false, None)
}

/// The message of Syscmd's [`ErrorKind::ProgramFailed`].
fn program_failure(result: Result<SyscmdOutput, Error>) -> String {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::ProgramFailed { .. }) => e.to_string(),
        other => panic!("expected ProgramFailed, got {other:?}"),
    }
}

#[test]
fn syscmd_collects_output_and_checks_the_status() {
    let t = TestContainer::running("sys");
    let ct = t.container();
    let out = syscmd(
        ct,
        &["sh", "-c", "echo out; echo err >&2; echo again"],
        &[],
        false,
    )
    .unwrap();
    assert_eq!(
        out,
        SyscmdOutput {
            exitstatus: 0,
            output: "out\nerr\nagain\n".into()
        }
    );

    let message = program_failure(syscmd(ct, &["sh", "-c", "echo why; exit 3"], &[], false));
    assert!(
        message.contains("exit status 3") && message.contains("why"),
        "{message}"
    );
    let out = syscmd(ct, &["sh", "-c", "echo why; exit 3"], &[1, 3], false).unwrap();
    assert_eq!(
        out,
        SyscmdOutput {
            exitstatus: 3,
            output: "why\n".into()
        }
    );
    let message = program_failure(syscmd(ct, &["no-such-command-here"], &[], false));
    assert!(message.contains("127"), "{message}");

    // A background process keeping the output open does not make Syscmd wait for it.
    let t0 = Instant::now();
    let out = syscmd(ct, &["sh", "-c", "sleep 30 & echo started"], &[], false).unwrap();
    assert_eq!(out.output, "started\n");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // Every status accepted with `valid_rcs` "all"; a refused one keeps its status and
    // output as fields.
    let all = Syscmd::run_with(
        &call(ct),
        vec!["sh".into(), "-c".into(), "echo x; exit 7".into()],
        ValidRcs::All,
        false,
        false,
        None,
    )
    .unwrap();
    assert_eq!((all.exitstatus, all.output.as_str()), (7, "x\n"));
    match Syscmd::run_with(
        &call(ct),
        vec!["sh".into(), "-c".into(), "echo y; exit 5".into()],
        vec![1].into(),
        false,
        false,
        None,
    )
    .map_err(Error::into_kind)
    {
        Err(ErrorKind::ProgramFailed {
            exitstatus, output, ..
        }) => assert_eq!((exitstatus, output.as_str()), (5, "y\n")),
        other => panic!("expected ProgramFailed, got {other:?}"),
    }
    // Input as bytes instead of an fd; not both.
    let out = Syscmd::run_with(
        &call(ct),
        vec!["cat".into()],
        Default::default(),
        false,
        false,
        Some(b"as bytes\n".to_vec()),
    )
    .unwrap();
    assert_eq!(out.output, "as bytes\n");
    let both = input("fd");
    let message = match Syscmd::run_with(
        &call(ct).stdin(Some(both.as_fd())),
        vec!["cat".into()],
        Default::default(),
        false,
        false,
        Some(b"bytes".to_vec()),
    )
    .map_err(Error::into_kind)
    {
        Err(ErrorKind::Arguments { message }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(message.contains("not both"), "{message}");

    // The call's stdin reaches the command.
    let stdin = input("typed\n");
    let c = call(ct).stdin(Some(stdin.as_fd()));
    let out = Syscmd::run_with(
        &c,
        vec!["cat".into()],
        Default::default(),
        false,
        false,
        None,
    )
    .unwrap();
    assert_eq!(out.output, "typed\n");

    oracle::stop(ct).unwrap();
    let message = command_error(syscmd(ct, &["true"], &[], false));
    assert!(message.contains("not running"), "{message}");
    let out = syscmd(ct, &["sh", "-c", "echo ran"], &[], true).unwrap();
    assert_eq!(
        out,
        SyscmdOutput {
            exitstatus: 0,
            output: "ran\n".into()
        }
    );
    assert_eq!(t.lxc_state(), "stopped");
}

/// Nothing above may leave a script behind even when the frontend's caller is gone: the
/// guard is in the frontend, so a runner that is killed by the deadline still has its
/// script removed.
#[test]
fn runscript_removes_the_script_when_the_deadline_kills_the_runner() {
    let t = TestContainer::running("rsd");
    let ct = t.container();
    let c = call(ct).deadline(Duration::from_secs(2));
    let stdin = input("#!/bin/sh\nsleep 60\n");
    let c = c.stdin(Some(stdin.as_fd()));
    let t0 = Instant::now();
    match Runscript::run_with(&c, ScriptSource::Stdin, Vec::new(), false, false) {
        Err(e) if matches!(e.kind(), ErrorKind::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(
        leftover_scripts(ct).is_empty(),
        "{:?}",
        leftover_scripts(ct)
    );
    // The script's process went with the runner's process group.
    wait_until(|| !inside_ps(ct).contains("sleep 60"), "the script to go");
}

/// Scripts placed and run from many threads at once (osctld saw ETXTBSY here: a script
/// still open for writing in some forked child cannot be executed).
#[test]
fn runscript_in_parallel() {
    let t = TestContainer::running("rsp");
    let ct = t.container();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for i in 0..8 {
            s.spawn(move || {
                for j in 0..4 {
                    let body = format!("#!/bin/sh\necho {i}-{j}\n");
                    let r = runscript(ct, ScriptSource::Stdin, false, Some(&body)).unwrap();
                    assert_eq!(
                        (r.status, r.stdout.trim()),
                        (0, format!("{i}-{j}").as_str()),
                        "{r:?}"
                    );
                }
            });
        }
    });
    eprintln!("32 Runscripts on 8 threads: {:?}", t0.elapsed());
    assert!(
        leftover_scripts(ct).is_empty(),
        "{:?}",
        leftover_scripts(ct)
    );
}

/// Programs get SIGPIPE's default disposition, not the runner's "ignored" (an ignored
/// signal survives exec): the program's own `SigIgn` mask must not have SIGPIPE.
#[test]
fn exec_programs_get_the_default_sigpipe() {
    let ct = TestContainer::running("sigpipe");
    let sig_ign = |run: bool| {
        let ran = exec(
            ct.container(),
            &["sh", "-c", "grep SigIgn /proc/self/status"],
            run,
            None,
        )
        .unwrap();
        let mask = ran
            .stdout
            .trim()
            .trim_start_matches("SigIgn:")
            .trim()
            .to_owned();
        u64::from_str_radix(&mask, 16).unwrap_or_else(|_| panic!("{:?}", ran.stdout))
    };
    // Bit 12 is signal 13, SIGPIPE.
    assert_eq!(
        sig_ign(false) & (1 << 12),
        0,
        "SIGPIPE ignored in an attached program"
    );
    oracle::stop(ct.container()).unwrap();
    assert_eq!(
        sig_ign(true) & (1 << 12),
        0,
        "SIGPIPE ignored in a program of a started container"
    );
}
