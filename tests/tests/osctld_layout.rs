//! osctld's cgroup layout beside the default one, on real unprivileged LXC containers and
//! real cgroups, through the standalone `ctl-runner`.
//!
//! Default layout: runners enter the container's cgroup `ctl/<name>` and LXC puts
//! `lxc.monitor.<name>` and `lxc.payload.<name>` below it. osctld's layout: the
//! container's cgroup is `ctl/<name>/user-owned`, runners enter
//! `<cgroup_path>/lxc.monitor.<name>`, and the payload must be that entry's sibling
//! `<cgroup_path>/lxc.payload.<name>`, never nested below it. Every check reads the
//! kernel's view (`/proc/<pid>/cgroup`, cgroup directories, `freezer.state`) or LXC's own
//! tools (the oracle).
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commands::{
    Exec, Freeze, GetHostname, Runscript, ScriptSource, Start, State, Stop, StopMode, Unfreeze,
    WithMountns,
};
use ctl_core::diag::Identity;
use ctl_core::frontend::WarmPool;
use ctl_core::{cgroup, Container, Envelope, Error, ErrorKind, Placement, Stdio};
use ctl_provision::{oracle, Layout};
use serde_json::json;
use tests::fixtures::{
    assert_in_entry_everywhere, command_call as call, command_error, lingering_zombies,
    write_script, TestContainer, TestUser,
};

// ---------------------------------------------------------------------------------------
// What the kernel says

/// `/<relative>`, as `/proc/<pid>/cgroup` writes paths.
fn abs(relative: &str) -> String {
    format!("/{}", relative.trim_matches('/'))
}

/// The payload cgroup where LXC puts a container started from its cgroup.
fn payload(ct: &Container) -> String {
    format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id)
}

/// The cgroup path of every line of `/proc/<pid>/cgroup` (empty when the process is gone).
fn cgroups_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2).map(str::to_owned))
        .collect()
}

/// `pid` is in `relative` in every hierarchy of the host.
#[track_caller]
fn assert_process_in(pid: i32, relative: &str, what: &str) {
    let lines = cgroups_of(pid);
    assert_eq!(
        lines.len(),
        cgroup::hierarchies().len(),
        "{what} ({pid}): {lines:?}"
    );
    for line in &lines {
        assert_eq!(line, &abs(relative), "{what} ({pid}): {lines:?}");
    }
}

/// `pid` is in `relative` or below it in every hierarchy (an attached process: LXC puts it
/// into the payload's `.lxc` leaf in the unified hierarchy).
#[track_caller]
fn assert_process_below(pid: i32, relative: &str, what: &str) {
    let lines = cgroups_of(pid);
    assert_eq!(
        lines.len(),
        cgroup::hierarchies().len(),
        "{what} ({pid}): {lines:?}"
    );
    let top = abs(relative);
    for line in &lines {
        assert!(
            line == &top || line.starts_with(&format!("{top}/")),
            "{what} ({pid}) not in {top}: {lines:?}"
        );
    }
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

fn cmdline(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_owned()
}

/// Every cgroup directory strictly below `relative`, in every hierarchy.
fn dirs_below(relative: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.push(entry.path());
                walk(&entry.path(), found);
            }
        }
    }
    let mut found = Vec::new();
    for h in cgroup::hierarchies() {
        walk(&h.path_of(relative), &mut found);
    }
    found
}

/// Processes in `relative` or below in the memory hierarchy.
fn pids_below(relative: &str) -> Vec<i32> {
    let mut pids = cgroup::pids_in(relative, "memory").unwrap();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The payload's `freezer.state`, as the kernel reports it.
fn freezer_state(ct: &Container) -> String {
    let h = cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("freezer"))
        .expect("a v1 freezer hierarchy on this host");
    std::fs::read_to_string(h.path_of(&payload(ct)).join("freezer.state"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Polls `f` until it gives something (20 s).
#[track_caller]
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live process whose command line is exactly `line`, below `relative`.
fn process_below(relative: &str, line: &str) -> Option<i32> {
    pids_below(relative)
        .into_iter()
        .find(|p| cmdline(*p) == line)
}

/// The container's runner for `command` (its process title), anywhere on the host.
fn runner_process(ct: &Container, command: &str) -> Option<i32> {
    let title = format!("ctl: {}:{} runner:{command}", ct.pool, ct.id);
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|p| cmdline(*p) == title && ppid(*p) == std::process::id() as i32)
}

// ---------------------------------------------------------------------------------------
// The layouts as recorded and as LXC makes them

/// The record says the layout: osctld's entry is `<cgroup_path>/lxc.monitor.<id>` below a
/// `user-owned` cgroup, the default's entry is the container's cgroup.
fn assert_recorded(ct: &Container, layout: Layout) {
    match layout {
        Layout::Default => {
            assert_eq!(ct.entry_cgroup_path, None);
            assert_eq!(ct.entry_cgroup(), ct.cgroup_path);
        }
        Layout::Osctld => {
            assert_eq!(ct.cgroup_path, format!("ctl/{}/user-owned", ct.id));
            assert_eq!(
                ct.entry_cgroup(),
                format!("{}/lxc.monitor.{}", ct.cgroup_path, ct.id)
            );
        }
    }
}

/// The running container as LXC laid it out: init in `<cgroup_path>/lxc.payload.<id>`
/// everywhere, the monitor in a `lxc.monitor.<id>*` cgroup directly below the container's
/// cgroup and not the runners' entry, and, in osctld's layout, nothing at all below the
/// entry.
fn assert_laid_out(ct: &Container, layout: Layout) -> i32 {
    let init = oracle::lxc_init_pid(ct).unwrap().expect("an init pid");
    assert_process_in(init, &payload(ct), "init");
    // LXC's monitor is init's parent (the daemonized `[lxc monitor]`, or with `run` the
    // runner's worker that called liblxc's execute).
    let monitor = ppid(init);
    let monitor_cgroups = cgroups_of(monitor);
    assert_eq!(
        monitor_cgroups.len(),
        cgroup::hierarchies().len(),
        "monitor {monitor} ({}): {monitor_cgroups:?}",
        cmdline(monitor)
    );
    let prefix = format!("{}/lxc.monitor.{}", abs(&ct.cgroup_path), ct.id);
    for line in &monitor_cgroups {
        let name = line
            .strip_prefix(&format!("{}/", abs(&ct.cgroup_path)))
            .unwrap_or_else(|| panic!("monitor outside the container's cgroup: {line}"));
        assert!(
            !name.contains('/') && line.starts_with(&prefix),
            "monitor in {line}"
        );
    }
    if layout == Layout::Osctld {
        // The entry holds the plain name; LXC took the next free one for its monitor.
        assert!(
            monitor_cgroups.iter().all(|l| l != &abs(ct.entry_cgroup())),
            "the monitor shares the runners' entry: {monitor_cgroups:?}"
        );
        assert_eq!(dirs_below(ct.entry_cgroup()), Vec::<PathBuf>::new());
    }
    init
}

// ---------------------------------------------------------------------------------------
// The command set in both layouts

fn state_of(ct: &Container) -> commands::StateInfo {
    State::run_with(&call(ct)).unwrap_or_else(|e| panic!("State: {e}"))
}

/// Exec's exit status with stdout and stderr collected.
fn exec(ct: &Container, argv: &[&str], run: bool) -> (i32, String) {
    let out = tempfile::tempfile().unwrap();
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    let status = Exec::run_with(
        &call(ct)
            .stdout(Stdio::Fd(out.as_fd()))
            .stderr(Stdio::Fd(out.as_fd())),
        argv.clone(),
        run,
        false,
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("Exec {argv:?} run={run}: {e}"));
    use std::io::{Read, Seek};
    let mut out = out;
    out.rewind().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    (status, text)
}

/// Runscript with `run` of a script read from stdin; exit status and output.
fn runscript_run(ct: &Container, script: &str) -> (i32, String) {
    use std::io::{Read, Seek, Write};
    let (r, w) = nix::unistd::pipe().unwrap();
    std::fs::File::from(w).write_all(script.as_bytes()).unwrap();
    let mut out = tempfile::tempfile().unwrap();
    let status = Runscript::run_with(
        &call(ct)
            .stdin(Some(r.as_fd()))
            .stdout(Stdio::Fd(out.as_fd()))
            .stderr(Stdio::Fd(out.as_fd())),
        ScriptSource::Stdin,
        Vec::new(),
        true,
        false,
    )
    .unwrap_or_else(|e| panic!("Runscript with run: {e}"));
    out.rewind().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    (status, text)
}

/// `Exec ["sleep", "3"]` in a thread; while it runs, where its program, its runner and
/// (with `run`) the container are. Returns the runner's cgroup paths.
fn exec_observed(ct: &Container, layout: Layout, run: bool) -> Vec<String> {
    std::thread::scope(|s| {
        let ran = s.spawn(|| exec(ct, &["sleep", "3"], run));
        let program = wait_for("the program in the payload cgroup", || {
            process_below(&ct.cgroup_path, "sleep 3")
        });
        assert_process_below(program, &payload(ct), "the executed program");
        let runner = runner_process(ct, "exec").expect("the Exec runner, still running");
        let runner_cgroups = cgroups_of(runner);
        if run {
            // Started just for the program, from the container's cgroup.
            assert_laid_out(ct, layout);
        }
        if layout == Layout::Osctld {
            assert_eq!(dirs_below(ct.entry_cgroup()), Vec::<PathBuf>::new());
        }
        assert_eq!(ran.join().unwrap(), (0, String::new()));
        runner_cgroups
    })
}

fn all_in(lines: &[String], relative: &str) -> bool {
    lines.len() == cgroup::hierarchies().len() && lines.iter().all(|l| l == &abs(relative))
}

fn commands_in(layout: Layout, tag: &str) {
    let tc = TestContainer::with_layout(tag, layout);
    let ct = tc.container();
    assert_recorded(ct, layout);

    // Exec runners enter the entry cgroup, in every hierarchy.
    let me = Identity::run_with(&call(ct)).unwrap_or_else(|e| panic!("Identity: {e}"));
    assert_in_entry_everywhere(&me.cgroups, ct.entry_cgroup());

    // Stopped: State's short-cut (no runner exists at that path) and the refusals.
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!((info.state.as_str(), info.init_pid), ("stopped", None));
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
    let message = command_error(GetHostname::run_with(&call(ct)));
    assert!(message.contains("not running"), "{message}");

    // Start, from the container's cgroup: the payload beside the entry.
    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
    let init = assert_laid_out(ct, layout);

    // State: the monitor's answer, the init checked as the container's.
    let info = state_of(ct);
    assert_eq!(
        (info.state.as_str(), info.init_pid),
        ("running", Some(init))
    );
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(info.init_pid, Some(init), "State without a runner");

    // Freeze and Unfreeze: the kernel's freezer of the payload agrees.
    assert!(Freeze::run_with(&call(ct)).unwrap_or_else(|e| panic!("Freeze: {e}")));
    assert_eq!(freezer_state(ct), "FROZEN");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
    assert_eq!(state_of(ct).state, "frozen");
    assert!(Unfreeze::run_with(&call(ct)).unwrap_or_else(|e| panic!("Unfreeze: {e}")));
    assert_eq!(freezer_state(ct), "THAWED");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
    // The runner halves too (as a daemon invoking them by name gets them).
    assert!(Freeze::runner(&call(ct)).unwrap_or_else(|e| panic!("Freeze's runner: {e}")));
    assert_eq!(freezer_state(ct), "FROZEN");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
    assert!(Unfreeze::runner(&call(ct)).unwrap_or_else(|e| panic!("Unfreeze's runner: {e}")));
    assert_eq!(freezer_state(ct), "THAWED");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");

    // GetHostname and WithMountns: namespaces opened from the checked init.
    let inside = oracle::attach(ct, &["hostname"]).unwrap();
    let hostname = String::from_utf8_lossy(&inside.stdout).trim().to_owned();
    assert!(!hostname.is_empty(), "{inside:?}");
    assert_eq!(GetHostname::run_with(&call(ct)).unwrap(), hostname);
    let mounted = oracle::attach(
        ct,
        &[
            "sh",
            "-c",
            "mount -t tmpfs none /mnt && echo only-in-the-namespace > /mnt/f",
        ],
    )
    .unwrap();
    assert!(mounted.status.success(), "{mounted:?}");
    let v = WithMountns::run_with(&call(ct), "read_file".into(), json!("/mnt/f"), None, None)
        .unwrap_or_else(|e| panic!("WithMountns: {e}"));
    assert_eq!(v, json!("only-in-the-namespace\n"));

    // Exec on the running container: the program in the payload, its runner in the entry.
    assert_eq!(
        exec(ct, &["sh", "-c", "echo hi; exit 7"], false),
        (7, "hi\n".into())
    );
    let runner = exec_observed(ct, layout, false);
    assert!(
        all_in(&runner, ct.entry_cgroup()),
        "Exec's runner in {runner:?}"
    );

    // Stop (clean): everything of the run is gone, the entry stays empty.
    assert!(
        Stop::run_with(&call(ct), StopMode::Stop, 60, None).unwrap_or_else(|e| panic!("Stop: {e}"))
    );
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
    assert_eq!(state_of(ct).state, "stopped");
    assert!(!commands::support::host::exists_in_memory_hierarchy(
        &payload(ct)
    ));
    assert_eq!(pids_below(&ct.cgroup_path), Vec::<i32>::new());

    // Exec with `run` on the stopped container: started for the program from the
    // container's cgroup (osctld's layout: the runner moved there from its entry).
    assert_eq!(exec(ct, &["echo", "ran"], true), (0, "ran\n".into()));
    let runner = exec_observed(ct, layout, true);
    assert!(
        all_in(&runner, &ct.cgroup_path),
        "Exec's runner in {runner:?}"
    );
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
    assert!(!commands::support::host::exists_in_memory_hierarchy(
        &payload(ct)
    ));
    assert_eq!(pids_below(&ct.cgroup_path), Vec::<i32>::new());
    // Runscript with `run` takes the same start.
    assert_eq!(
        runscript_run(ct, "#!/bin/sh\necho script-ran; exit 3\n"),
        (3, "script-ran\n".into())
    );
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
    assert_eq!(pids_below(&ct.cgroup_path), Vec::<i32>::new());
    if layout == Layout::Osctld {
        assert_eq!(dirs_below(ct.entry_cgroup()), Vec::<PathBuf>::new());
    }
    assert!(lingering_zombies().is_empty());
}

#[test]
fn commands_in_the_default_layout() {
    commands_in(Layout::Default, "lyd");
}

#[test]
fn commands_in_osctlds_layout() {
    commands_in(Layout::Osctld, "lyo");
}

// ---------------------------------------------------------------------------------------
// osctld's layout only

/// Warm runners were placed once; their children still know the container's cgroup:
/// Start through a warm pool puts the payload beside the entry, and Freeze's runner half
/// finds it there.
#[test]
fn warm_runners_start_and_freeze_in_osctlds_layout() {
    let tc = TestContainer::osctld_layout("lyw");
    let ct = tc.container();
    let pool = WarmPool::new(Duration::from_secs(30));
    assert!(Start::run_with(&call(ct).warm(&pool)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_laid_out(ct, Layout::Osctld);
    assert!(Freeze::runner(&call(ct).warm(&pool)).unwrap_or_else(|e| panic!("Freeze: {e}")));
    assert_eq!(freezer_state(ct), "FROZEN");
    assert!(Unfreeze::runner(&call(ct).warm(&pool)).unwrap_or_else(|e| panic!("Unfreeze: {e}")));
    assert_eq!(freezer_state(ct), "THAWED");
    // The warm runners sit in the entry, nothing else does.
    for pid in pool.pids() {
        assert_process_in(pid, ct.entry_cgroup(), "a warm runner");
    }
    pool.clear();
    assert!(Stop::run_with(&call(ct), StopMode::Kill, 30, None).unwrap());
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
}

/// Stop's last resort, root thawing the container's tree and killing the payload through
/// its cgroups, finds the payload beside the entry. The container's root keeps re-freezing
/// its init in a freezer cgroup of its own below the payload (a frozen init does not die
/// of SIGKILL until thawed), and the runner dies without a reply (`/bin/false` as the
/// runner: LXC's stop never happens), so only the frontend's kill can stop it. (Looking
/// below the entry, the kill would find no payload, take the container for gone and leave
/// it running; thawing only the entry, it would not get through the freeze.)
#[test]
fn stop_kills_a_refreezing_container_through_its_cgroups_in_osctlds_layout() {
    let tc = TestContainer::running_osctld("lyk");
    let ct = tc.container();
    assert_laid_out(ct, Layout::Osctld);
    let (status, _) = exec(
        ct,
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/fz && mount -t cgroup -o freezer none /tmp/fz && mkdir -p /tmp/fz/ice \
             && echo 1 > /tmp/fz/ice/cgroup.procs && echo FROZEN > /tmp/fz/ice/freezer.state \
             && (while :; do echo FROZEN > /tmp/fz/ice/freezer.state; sleep 0.05; done) \
             </dev/null >/dev/null 2>&1 &",
        ],
        false,
    );
    assert_eq!(status, 0);
    let init = oracle::lxc_init_pid(ct).unwrap().unwrap();
    assert_process_below(init, &payload(ct), "the frozen init");
    let t = Instant::now();
    let stopped = Stop::run_with(&call(ct).runner("/bin/false"), StopMode::Kill, 1, None);
    eprintln!("Stop of a refreezing container took {:?}", t.elapsed());
    assert!(stopped.unwrap_or_else(|e| panic!("Stop: {e}")));
    wait_for("the container to stop", || {
        (oracle::lxc_state(ct).unwrap() == "stopped").then_some(())
    });
    // LXC's monitor reports "stopped" a moment before it exits (from `lxc.pivot`): what
    // must go is gone within a bound; anything still there then is shown.
    let deadline = Instant::now() + Duration::from_secs(10);
    let left: Vec<(i32, String, Vec<String>)> = loop {
        let left: Vec<_> = pids_below(&ct.cgroup_path)
            .into_iter()
            .map(|p| (p, cmdline(p), cgroups_of(p)))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(left, Vec::new());
    assert!(!commands::support::host::exists_in_memory_hierarchy(
        &payload(ct)
    ));
}

/// A container cgroup the runner may not enter: Start and Exec with `run` fail before
/// anything starts, naming the file; nothing nests below the entry instead.
#[test]
fn a_container_cgroup_the_runner_cannot_enter_is_named() {
    let tc = TestContainer::osctld_layout("lyr");
    let ct = tc.container();
    let memory = commands::support::host::memory_hierarchy().unwrap();
    let procs = memory.path_of(&ct.cgroup_path).join("cgroup.procs");
    std::os::unix::fs::chown(&procs, Some(0), Some(0)).unwrap();
    let restore = || std::os::unix::fs::chown(&procs, Some(ct.ugid), Some(ct.ugid)).unwrap();

    let message = command_error(Start::run_with(&call(ct)));
    let exec_message = command_error(Exec::run_with(
        &call(ct).stdout(Stdio::Null).stderr(Stdio::Null),
        vec!["true".into()],
        true,
        false,
        Default::default(),
    ));
    let state = oracle::lxc_state(ct).unwrap();
    let below_entry = dirs_below(ct.entry_cgroup());
    restore();
    for m in [&message, &exec_message] {
        assert!(
            m.contains("cannot move into the container's cgroup")
                && m.contains(&procs.display().to_string())
                && m.contains("Permission denied"),
            "{m}"
        );
        assert!(!m.contains('\n'), "one line: {m}");
    }
    assert_eq!(state, "stopped");
    assert_eq!(below_entry, Vec::<PathBuf>::new());

    // With the file back, the same start works.
    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_laid_out(ct, Layout::Osctld);
    assert!(Stop::run_with(&call(ct), StopMode::Kill, 30, None).unwrap());
}

/// A missing entry is created again for the user, and so is a missing container cgroup
/// above it: LXC must be able to create the payload there as the container's user.
#[test]
fn missing_entry_and_container_cgroups_are_created_for_the_user() {
    let tc = TestContainer::osctld_layout("lym");
    let ct = tc.container();
    let owned_by_user = |relative: &str| {
        cgroup::hierarchies()
            .iter()
            .all(|h| std::fs::metadata(h.path_of(relative)).is_ok_and(|m| m.uid() == ct.ugid))
    };

    cgroup::remove_entry(ct.entry_cgroup()).unwrap();
    assert!(dirs_below(&ct.cgroup_path).is_empty());
    let me = Identity::run_with(&call(ct)).unwrap_or_else(|e| panic!("Identity: {e}"));
    assert_in_entry_everywhere(&me.cgroups, ct.entry_cgroup());
    assert!(owned_by_user(ct.entry_cgroup()));

    cgroup::remove_entry(&ct.cgroup_path).unwrap();
    let me = Identity::run_with(&call(ct)).unwrap_or_else(|e| panic!("Identity: {e}"));
    assert_in_entry_everywhere(&me.cgroups, ct.entry_cgroup());
    assert!(owned_by_user(&ct.cgroup_path), "the container's cgroup");
    assert!(owned_by_user(ct.entry_cgroup()), "the entry");
    // ... and the container starts there.
    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_laid_out(ct, Layout::Osctld);
    assert!(Stop::run_with(&call(ct), StopMode::Kill, 30, None).unwrap());
}

/// The envelope: the container's cgroup travels only where it is not the entry, and the
/// runner is told to enter the entry.
#[test]
fn envelope_names_the_container_cgroup_only_in_osctlds_layout() {
    let user = TestUser::new("lye");
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "fake-runner",
        &format!(
            r#"cat > {}/envelope.json
echo '{{"status":true,"output":null}}' >&3"#,
            dir.path().display()
        ),
    );
    let placement_of = |ct: &Container| {
        ctl_core::diag::Ping::run_with(
            &ctl_core::Call::new(ct)
                .runner(&script)
                .placement(Placement::Exec)
                .stdout(Stdio::Null)
                .stderr(Stdio::Null),
            json!(1),
        )
        .unwrap_or_else(|e| panic!("fake runner: {e}"));
        let text = std::fs::read(dir.path().join("envelope.json")).unwrap();
        let envelope = Envelope::from_slice(&text).unwrap();
        envelope.ctl.unwrap().placement.unwrap()
    };

    let mut ct = user.container().clone();
    let default = placement_of(&ct);
    assert_eq!(default.container_cgroup, None);
    assert_eq!(default.create_cgroup.unwrap().relative, ct.cgroup_path);

    ct.entry_cgroup_path = Some(ct.osctld_entry_cgroup_path());
    let osctld = placement_of(&ct);
    assert_eq!(
        osctld.container_cgroup.as_deref(),
        Some(ct.cgroup_path.as_str())
    );
    assert_eq!(
        osctld.create_cgroup.unwrap().relative,
        format!("{}/lxc.monitor.{}", ct.cgroup_path, ct.id)
    );
    let procs: Vec<String> = cgroup::procs_files(ct.entry_cgroup())
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(osctld.cgroup_procs, procs);
    // A bad container cgroup path is refused before any runner starts.
    ct.cgroup_path = "../escape".into();
    ct.entry_cgroup_path = Some("ctl-test/x/lxc.monitor.x".into());
    match ctl_core::diag::Ping::run_with(&ctl_core::Call::new(&ct).runner(&script), json!(1))
        .map_err(Error::into_kind)
    {
        Err(ErrorKind::Setup { what, source }) => {
            assert_eq!(what, "checking the container's cgroup path");
            assert!(source.to_string().contains("../escape"), "{source}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}
