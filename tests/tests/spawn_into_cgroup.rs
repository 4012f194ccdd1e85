//! Cold exec runners born in their cgroup v2 entry cgroup (`clone3` with
//! `CLONE_INTO_CGROUP`), on real processes, users and cgroups; and the fallback to
//! `posix_spawn` with the runner moving itself.
//!
//! Which way a runner was started is observed from outside, without test hooks in the
//! framework:
//! - a *fake runner* (a shell script, which applies no placement at all) records the
//!   envelope it was given and its own `/proc/<pid>/cgroup`, signal state and fds, i.e.
//!   exactly what it was born with;
//! - for the real runner, inotify on the entry cgroup's `cgroup.procs` files shows which
//!   ones it opened and wrote (a move) and which it never touched (born there).
//!
//! Every test here takes the `serial` lock: fd and zombie counts are process-wide. (The
//! spawn path is a launcher's switch: the control experiments use a `Launcher` of their
//! own, built `with_spawn_into_cgroup(false)`.)

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use ctl_core::cgroup;
use ctl_core::diag::{Identity, Ping};
use ctl_core::frontend::spawn_into_cgroup_available;
use ctl_core::{Call, Container, Envelope, ErrorKind, Launcher, Placement, Stdio};
use serde_json::json;
use tests::fixtures::{
    assert_in_entry_everywhere, lingering_zombies, open_fd_count, serial, test_runner_path,
    write_script, TestUser,
};

/// A launcher whose cold path is `posix_spawn` + self-move (the control experiments).
fn posix_spawn_only() -> &'static Launcher {
    static LAUNCHER: std::sync::OnceLock<Launcher> = std::sync::OnceLock::new();
    LAUNCHER.get_or_init(|| Launcher::new().with_spawn_into_cgroup(false))
}

fn unified() -> &'static cgroup::Hierarchy {
    cgroup::hierarchies()
        .iter()
        .find(|h| h.unified)
        .expect("these tests need a cgroup v2 hierarchy (hybrid or v2-only host)")
}

fn first_v1() -> Option<&'static cgroup::Hierarchy> {
    cgroup::hierarchies().iter().find(|h| !h.unified)
}

fn procs_file(h: &cgroup::Hierarchy, ct: &Container) -> PathBuf {
    h.path_of(&ct.cgroup_path).join("cgroup.procs")
}

/// `/proc/<pid>/cgroup` lines keyed by hierarchy (`0` is v2, v1 by controller list).
fn cgroup_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let key = if controllers.is_empty() {
                "unified".to_owned()
            } else {
                controllers.to_owned()
            };
            Some((key, path.to_owned()))
        })
        .collect()
}

fn own_cgroups() -> BTreeMap<String, String> {
    cgroup_map(&std::fs::read_to_string("/proc/self/cgroup").unwrap())
}

/// A shell script posing as the runner: records what it was started with in `dir`, then
/// replies `null`. It applies no placement, so what it records is its state at birth.
struct FakeRunner {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl FakeRunner {
    fn new() -> FakeRunner {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let body = format!(
            r#"cat > {d}/envelope.json
cat /proc/$$/cgroup > {d}/cgroup
while IFS= read -r line; do case "$line" in Sig*) echo "$line";; esac; done < /proc/$$/status > {d}/signals
fds=$(ls -l /proc/$$/fd)
printf '%s\n' "$fds" > {d}/fds
echo '{{"status":true,"output":null}}' >&3"#
        );
        let path = write_script(dir.path(), "fake-runner", &body);
        FakeRunner { dir, path }
    }

    fn call<'a>(&self, ct: &'a Container) -> Call<'a> {
        Call::new(ct)
            .runner(&self.path)
            .placement(Placement::Exec)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
    }

    fn run(&self, call: &Call<'_>) {
        Ping::run_with(call, json!(1)).unwrap_or_else(|e| panic!("fake runner: {e}"));
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// The placement's `born_in` as the frontend sent it.
    fn born_in(&self) -> Vec<String> {
        let envelope = Envelope::from_slice(self.read("envelope.json").as_bytes()).unwrap();
        let ext = envelope.ctl.expect("our frontend sends the extension");
        assert_eq!(ext.version, ctl_core::PROTOCOL_VERSION);
        ext.placement.expect("exec placement").born_in
    }

    fn cgroups(&self) -> BTreeMap<String, String> {
        cgroup_map(&self.read("cgroup"))
    }

    /// `SigBlk`, `SigIgn`, `SigCgt` of the script's shell, as bit masks.
    fn signals(&self) -> BTreeMap<String, u64> {
        self.read("signals")
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.to_owned(), u64::from_str_radix(v.trim(), 16).ok()?))
            })
            .collect()
    }

    /// fd number -> link target, from `ls -l /proc/<pid>/fd`.
    fn fds(&self) -> BTreeMap<i32, String> {
        self.read("fds")
            .lines()
            .filter_map(|l| {
                let (left, target) = l.split_once(" -> ")?;
                let fd = left.rsplit(' ').next()?.parse().ok()?;
                Some((fd, target.to_owned()))
            })
            .collect()
    }
}

/// Watches files for opens and writes (inotify).
struct Watch {
    fd: OwnedFd,
    names: BTreeMap<i32, PathBuf>,
}

const IN_OPEN: u32 = libc::IN_OPEN;
const IN_MODIFY: u32 = libc::IN_MODIFY;

impl Watch {
    fn new(paths: &[PathBuf]) -> Watch {
        // SAFETY: inotify_init1 returns a new fd or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            raw >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut names = BTreeMap::new();
        for path in paths {
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: a valid fd and a NUL-terminated path.
            let wd = unsafe { libc::inotify_add_watch(raw, c.as_ptr(), IN_OPEN | IN_MODIFY) };
            assert!(
                wd >= 0,
                "watching {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            names.insert(wd, path.clone());
        }
        Watch { fd, names }
    }

    /// The events so far, per path (or-ed masks).
    fn events(&self) -> BTreeMap<PathBuf, u32> {
        let mut seen: BTreeMap<PathBuf, u32> =
            self.names.values().map(|p| (p.clone(), 0)).collect();
        let mut buf = [0u8; 64 * 1024];
        loop {
            // SAFETY: reads into our buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut at = 0;
            while at + 16 <= n as usize {
                let wd = i32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
                let mask = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap());
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap());
                if let Some(p) = self.names.get(&wd) {
                    *seen.get_mut(p).unwrap() |= mask;
                }
                at += 16 + len as usize;
            }
        }
        seen
    }
}

fn identity_call(ct: &Container) -> Call<'_> {
    Call::new(ct)
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
}

#[test]
fn runner_born_in_the_unified_entry_cgroup_is_in_every_hierarchy_and_moved_only_in_v1() {
    let _serial = serial();
    assert!(
        spawn_into_cgroup_available(),
        "this kernel (6.x) has clone3 with CLONE_INTO_CGROUP"
    );
    let user = TestUser::new("born");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let unified_procs = procs_file(unified(), ct);
    let mut watched = vec![unified_procs.clone()];
    watched.extend(first_v1().map(|h| procs_file(h, ct)));

    // Born in the unified entry cgroup: the runner never even opens its cgroup.procs, but
    // still moves itself (opens and writes) in the v1 hierarchies.
    let watch = Watch::new(&watched);
    let info = Identity::run_with(&identity_call(ct)).unwrap();
    assert_in_entry_everywhere(&info.cgroups, &ct.cgroup_path);
    assert_eq!(info.uid, [ct.ugid; 3]);
    assert_eq!(info.fds, vec![0, 1, 2, 3]);
    let events = watch.events();
    assert_eq!(
        events[&unified_procs], 0,
        "the runner touched {unified_procs:?}"
    );
    for v1 in &watched[1..] {
        assert_eq!(
            events[v1] & (IN_OPEN | IN_MODIFY),
            IN_OPEN | IN_MODIFY,
            "no move in {v1:?}"
        );
    }

    // The control experiment: with posix_spawn the same runner writes the unified file
    // too, so the observation above means something.
    let watch = Watch::new(&watched);
    let info = Identity::run_with(&identity_call(ct).launcher(posix_spawn_only())).unwrap();
    assert_in_entry_everywhere(&info.cgroups, &ct.cgroup_path);
    for (path, mask) in watch.events() {
        assert_eq!(mask & IN_MODIFY, IN_MODIFY, "no move in {path:?}");
    }
}

#[test]
fn envelope_says_born_in_and_the_process_was_born_there() {
    let _serial = serial();
    let user = TestUser::new("envelope");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let fake = FakeRunner::new();
    let own = own_cgroups();

    fake.run(&fake.call(ct));
    let unified_procs = procs_file(unified(), ct).to_str().unwrap().to_owned();
    assert_eq!(fake.born_in(), vec![unified_procs]);
    let born = fake.cgroups();
    assert_eq!(born["unified"], format!("/{}", ct.cgroup_path));
    // In v1 it is born where the caller is (there the runner moves itself).
    for (key, path) in &born {
        if key != "unified" {
            assert_eq!(path, &own[key], "v1 hierarchy {key}");
        }
    }

    fake.run(&fake.call(ct).launcher(posix_spawn_only()));
    assert_eq!(fake.born_in(), Vec::<String>::new());
    assert_eq!(
        fake.cgroups(),
        own,
        "posix_spawn: born in the caller's cgroups"
    );
}

#[test]
fn missing_entry_cgroup_falls_back_then_is_created_and_entered() {
    let _serial = serial();
    let user = TestUser::new("missing");
    let ct = user.container();
    let fake = FakeRunner::new();
    let own = own_cgroups();
    for h in cgroup::hierarchies() {
        assert!(!h.path_of(&ct.cgroup_path).exists());
    }

    // No entry cgroup yet: started outside, told to move everywhere.
    fake.run(&fake.call(ct));
    assert_eq!(fake.born_in(), Vec::<String>::new());
    assert_eq!(fake.cgroups(), own);

    // The real runner creates it (owned by the user) and enters it everywhere.
    let info = Identity::run_with(&identity_call(ct)).unwrap();
    assert_in_entry_everywhere(&info.cgroups, &ct.cgroup_path);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(unified().path_of(&ct.cgroup_path)).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (ct.ugid, ct.ugid));

    // From then on runners are born in it.
    fake.run(&fake.call(ct));
    assert_eq!(fake.born_in().len(), 1);
    assert_eq!(fake.cgroups()["unified"], format!("/{}", ct.cgroup_path));
    let info = Identity::run_with(&identity_call(ct)).unwrap();
    assert_in_entry_everywhere(&info.cgroups, &ct.cgroup_path);
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Installs `handler` for `signal`; returns the previous action.
fn set_action(signal: libc::c_int, handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: plain data; all-zero is a valid sigaction.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    new.sa_flags = libc::SA_RESTART;
    // SAFETY: plain data.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to owned structs.
    assert_eq!(unsafe { libc::sigaction(signal, &new, &mut old) }, 0);
    old
}

fn bit(signal: libc::c_int) -> u64 {
    1 << (signal - 1)
}

#[test]
fn signal_state_at_birth_is_the_same_as_with_posix_spawn() {
    let _serial = serial();
    let user = TestUser::new("signals");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let fake = FakeRunner::new();

    // The caller catches some signals and ignores others (Rust already ignores SIGPIPE).
    let handler = noop_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let caught = [libc::SIGUSR1, libc::SIGTERM, libc::SIGALRM, libc::SIGWINCH];
    let ignored = [libc::SIGHUP, libc::SIGXFSZ];
    let mut saved = Vec::new();
    for s in caught {
        saved.push((s, set_action(s, handler)));
    }
    for s in ignored {
        saved.push((s, set_action(s, libc::SIG_IGN)));
    }
    // And blocks one in the calling thread.
    // SAFETY: plain data; all-zero is a valid (empty) set.
    let mut block: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, std::ptr::null_mut());
    }

    fake.run(&fake.call(ct));
    assert_eq!(fake.born_in().len(), 1, "not started by clone3");
    let born = fake.signals();
    fake.run(&fake.call(ct).launcher(posix_spawn_only()));
    assert!(fake.born_in().is_empty());
    let spawned = fake.signals();

    // SAFETY: restores what we changed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &block, std::ptr::null_mut());
        for (s, action) in &saved {
            libc::sigaction(*s, action, std::ptr::null_mut());
        }
    }

    assert_eq!(born["SigBlk"], 0, "mask not emptied: {born:?}");
    // Reset to the default (the documented list): SIGPIPE, SIGHUP, SIGTERM, SIGUSR1...
    for s in [libc::SIGPIPE, libc::SIGHUP, libc::SIGTERM, libc::SIGUSR1] {
        assert_eq!(born["SigIgn"] & bit(s), 0, "signal {s} ignored: {born:?}");
    }
    // Ignored and not in the list: stays ignored (POSIX; posix_spawn does the same).
    assert_ne!(born["SigIgn"] & bit(libc::SIGXFSZ), 0, "{born:?}");
    // No handler of ours survives (exec would reset them anyway; the shell catches a few
    // of its own, such as SIGINT and SIGCHLD).
    for s in [libc::SIGUSR1, libc::SIGTERM, libc::SIGALRM, libc::SIGWINCH] {
        assert_eq!(born["SigCgt"] & bit(s), 0, "signal {s} caught: {born:?}");
    }
    // Otherwise the same as posix_spawn's, except for glibc's internal signals 32 and 33
    // (SIGCANCEL, SIGSETXID): glibc's child sets them to SIG_IGN, which then sticks across
    // exec; ours leaves them as the caller has them if ignored, else at the default.
    let internal = bit(32) | bit(33);
    let without = |m: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        m.iter().map(|(k, v)| (k.clone(), v & !internal)).collect()
    };
    assert_eq!(
        without(&born),
        without(&spawned),
        "clone3 and posix_spawn differ"
    );
    assert_eq!(born["SigCgt"] & internal, 0, "{born:?}");
}

static HAMMER_PARENT: AtomicI32 = AtomicI32::new(0);
static HAMMER_FOREIGN: AtomicI32 = AtomicI32::new(0);
static HAMMER_HITS: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_winch(_: libc::c_int) {
    // SAFETY: getpid is async-signal-safe.
    let pid = unsafe { libc::getpid() };
    if pid == HAMMER_PARENT.load(Ordering::Relaxed) {
        HAMMER_HITS.fetch_add(1, Ordering::Relaxed);
    } else {
        // A child that shares our memory ran our handler.
        HAMMER_FOREIGN.store(pid, Ordering::Relaxed);
    }
}

const HAMMER_ENV: &str = "CTL_TEST_SIGNAL_HAMMER";

/// Runs [`signal_hammer_in_own_process_group`] in a child test process that leads its own
/// process group, so that the flood of signals reaches nothing else.
#[test]
fn no_handler_of_the_caller_runs_in_the_child() {
    let _serial = serial();
    use std::os::unix::process::CommandExt;
    let mut test = std::process::Command::new(std::env::current_exe().unwrap());
    test.process_group(0);
    run_body(
        test,
        "signal_hammer_in_own_process_group",
        HAMMER_ENV,
        "hammer:",
    );
}

/// Runs the test `body` of this binary alone through `command` (the test binary, or a
/// wrapper that execs it with the test's arguments appended), with `env` set so that the
/// body does its work, and checks that it passed and printed `marker`.
fn run_body(mut command: std::process::Command, body: &str, env: &str, marker: &str) {
    let out = command
        .args([body, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(text.contains(marker), "{body} did not run: {text}");
}

/// The body of [`no_handler_of_the_caller_runs_in_the_child`]; does nothing unless started
/// by it (it signals its whole process group). While threads start runners (born in the
/// cgroup), another thread keeps sending SIGWINCH to the process group, which includes
/// each child between its clone and its exec; the caller's handler records any pid other
/// than its own. SIGWINCH's default action is to ignore, so runners are unaffected.
#[test]
fn signal_hammer_in_own_process_group() {
    if std::env::var_os(HAMMER_ENV).is_none() {
        return;
    }
    let user = Arc::new(TestUser::new("hammer"));
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    HAMMER_PARENT.store(std::process::id() as i32, Ordering::Relaxed);
    let handler = record_winch as extern "C" fn(libc::c_int) as libc::sighandler_t;
    set_action(libc::SIGWINCH, handler);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: kill with pid 0: our own process group (which we lead).
                unsafe { libc::kill(0, libc::SIGWINCH) };
                sent += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            sent
        })
    };
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let user = Arc::clone(&user);
            std::thread::spawn(move || {
                let call = identity_call(user.container());
                for i in 0..150 {
                    let v = json!([t, i]);
                    assert_eq!(Ping::run_with(&call, v.clone()).unwrap(), v);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let sent = hammer.join().unwrap();
    let hits = HAMMER_HITS.load(Ordering::Relaxed);
    println!("hammer: {sent} signals sent, handler ran {hits} times in the caller");
    assert!(spawn_into_cgroup_available());
    assert!(hits > 0, "the hammer did not reach the caller");
    assert_eq!(
        HAMMER_FOREIGN.load(Ordering::Relaxed),
        0,
        "the caller's handler ran in another process"
    );
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn child_fds_are_the_plan() {
    let _serial = serial();
    let user = TestUser::new("fds");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let fake = FakeRunner::new();
    let input = tempfile::NamedTempFile::new().unwrap();
    let errors = tempfile::NamedTempFile::new().unwrap();
    let own_stdout = std::fs::read_link("/proc/self/fd/1").unwrap();

    let run = |fake: &FakeRunner, launcher: &Launcher| {
        let call = fake
            .call(ct)
            .launcher(launcher)
            .stdin(Some(input.as_file().as_fd()))
            .stdout(Stdio::Inherit)
            .stderr(Stdio::Fd(errors.as_file().as_fd()));
        fake.run(&call);
        fake.fds()
    };
    let born = run(&fake, Launcher::global());
    assert_eq!(fake.born_in().len(), 1, "not started by clone3");
    let spawned = run(&fake, posix_spawn_only());

    let path = |p: &Path| p.to_str().unwrap().to_owned();
    assert!(born[&0].starts_with("socket:["), "{born:?}");
    assert!(born[&1].starts_with("pipe:["), "{born:?}");
    assert_eq!(born[&1], born[&2], "1 and 2 are the stderr pipe");
    assert!(
        born[&3].starts_with("pipe:[") && born[&3] != born[&1],
        "{born:?}"
    );
    assert_eq!(born[&4], path(input.path()));
    // The caller's own fd 1, below the lifting threshold, arrives at 5.
    assert_eq!(born[&5], path(&own_stdout));
    assert_eq!(born[&6], path(errors.path()));
    // Same layout as posix_spawn's (pipe and socket numbers differ per call).
    let kinds = |m: &BTreeMap<i32, String>| -> Vec<(i32, String)> {
        m.iter()
            .filter(|(fd, _)| **fd <= 6)
            .map(|(fd, t)| (*fd, t.split(':').next().unwrap().to_owned()))
            .collect()
    };
    assert_eq!(kinds(&born), kinds(&spawned));
}

#[test]
fn sixteen_threads_times_fifty_spawns_into_the_cgroup() {
    let _serial = serial();
    let user = Arc::new(TestUser::new("many"));
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    // Lazily initialised state first (hierarchies, runner path), then count.
    Ping::run_with(&identity_call(ct), json!(0)).unwrap();
    let fds_before = open_fd_count();

    let threads: Vec<_> = (0..16)
        .map(|t| {
            let user = Arc::clone(&user);
            std::thread::spawn(move || {
                let call = identity_call(user.container());
                for i in 0..50 {
                    let v = json!({"thread": t, "call": i});
                    let reply = Ping::run_with(&call, v.clone())
                        .unwrap_or_else(|e| panic!("thread {t} call {i}: {e}"));
                    assert_eq!(reply, v);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a calling thread failed");
    }
    assert!(spawn_into_cgroup_available(), "clone3 was given up");
    assert_eq!(open_fd_count(), fds_before, "fds leaked");
    assert_eq!(lingering_zombies(), Vec::<i32>::new(), "zombies left");
    // Every runner has left the entry cgroup.
    assert_eq!(
        cgroup::pids_in(&ct.cgroup_path, "unified").unwrap(),
        Vec::<i32>::new()
    );
    let info = Identity::run_with(&identity_call(ct)).unwrap();
    assert_in_entry_everywhere(&info.cgroups, &ct.cgroup_path);
}

#[test]
fn exec_failure_is_the_same_error_as_with_posix_spawn() {
    let _serial = serial();
    let user = TestUser::new("execfail");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("runner");
    std::fs::write(&not_executable, "").unwrap();
    // The control launcher's kept cgroup.procs files are deliberate (open_fd_count forgets
    // only the global launcher's): forgotten at both counts.
    posix_spawn_only().forget_cgroup_files();
    let fds_before = open_fd_count();

    for (runner, kind) in [
        (
            PathBuf::from("/nonexistent/ctl-runner"),
            std::io::ErrorKind::NotFound,
        ),
        (not_executable.clone(), std::io::ErrorKind::PermissionDenied),
    ] {
        let attempt = |launcher| {
            let call = Call::new(ct).runner(&runner).launcher(launcher);
            Ping::run_with(&call, json!(1)).unwrap_err()
        };
        let born = attempt(Launcher::global());
        let spawned = attempt(posix_spawn_only());
        for err in [&born, &spawned] {
            match err.kind() {
                ErrorKind::Spawn { path, source } => {
                    assert_eq!(path, &runner);
                    assert_eq!(source.kind(), kind, "{err}");
                }
                _ => panic!("expected a spawn error, got {err:?}"),
            }
        }
        assert_eq!(born.to_string(), spawned.to_string());
        assert!(
            born.to_string().contains(runner.to_str().unwrap()),
            "{born}"
        );
    }
    assert!(
        spawn_into_cgroup_available(),
        "an exec failure is not a kernel's"
    );
    posix_spawn_only().forget_cgroup_files();
    assert_eq!(open_fd_count(), fds_before, "fds leaked");
    assert_eq!(lingering_zombies(), Vec::<i32>::new(), "zombies left");
    assert_eq!(
        cgroup::pids_in(&ct.cgroup_path, "unified").unwrap(),
        Vec::<i32>::new()
    );
}

/// Removes a cgroup tree from every hierarchy on drop.
struct CgroupTree(String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for _ in 0..50 {
            if cgroup::remove_entry(&self.0).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn cgroup_refusing_the_birth_falls_back_and_the_move_reports_it() {
    let _serial = serial();
    let mut user = TestUser::new("refused");
    // An entry cgroup that cgroup v2 refuses processes in: a sibling of a threaded cgroup
    // is "domain invalid" (EOPNOTSUPP for a birth and for a move alike). Its own parent,
    // so that no other test's cgroups are affected.
    let parent = format!("ctl-test-refused-{}", std::process::id());
    let _tree = CgroupTree(parent.clone());
    user.container.cgroup_path = format!("{parent}/entry");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let threaded = unified().path_of(&format!("{parent}/threaded"));
    std::fs::create_dir(&threaded).unwrap();
    std::fs::write(threaded.join("cgroup.type"), "threaded").unwrap();
    let entry_type = unified().path_of(&ct.cgroup_path).join("cgroup.type");
    assert_eq!(
        std::fs::read_to_string(&entry_type).unwrap().trim(),
        "domain invalid"
    );

    // clone3 is refused: this call falls back to posix_spawn (born outside, told to move).
    let fake = FakeRunner::new();
    fake.run(&fake.call(ct));
    assert_eq!(fake.born_in(), Vec::<String>::new());
    assert_eq!(fake.cgroups(), own_cgroups());
    assert!(
        spawn_into_cgroup_available(),
        "a cgroup's refusal is not the kernel's"
    );

    // The real runner's own move then says clearly why the placement failed.
    let err = Identity::run_with(&identity_call(ct)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot enter cgroup") && text.contains("not supported"),
        "{err:?}"
    );
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

const V2_ONLY_ENV: &str = "CTL_TEST_V2_ONLY_VIEW";

/// A cgroup-v2-only host as far as the framework can tell: the test binary runs
/// [`v2_only_view_body`] again in a mount namespace of its own whose `/sys/fs/cgroup` is a
/// single cgroup2 mount (this host's unified hierarchy, mounted once more). There the
/// frontend sees one hierarchy, starts the runner in its entry cgroup, and the runner moves
/// nowhere. (The v1 hierarchies still exist in the kernel; a process that cannot see them
/// leaves them alone, as on a v2-only host.)
#[test]
fn on_a_v2_only_view_the_runner_is_born_in_place_and_moves_nowhere() {
    let _serial = serial();
    let script =
        "umount -R -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"";
    let mut wrapper = std::process::Command::new("unshare");
    wrapper
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(std::env::current_exe().unwrap());
    run_body(wrapper, "v2_only_view_body", V2_ONLY_ENV, "v2-only view:");
}

/// The body of [`on_a_v2_only_view_the_runner_is_born_in_place_and_moves_nowhere`]; does
/// nothing unless started by it.
#[test]
fn v2_only_view_body() {
    if std::env::var_os(V2_ONLY_ENV).is_none() {
        return;
    }
    let hierarchies = cgroup::hierarchies();
    assert_eq!(hierarchies.len(), 1, "{hierarchies:?}");
    assert!(hierarchies[0].unified);
    assert!(spawn_into_cgroup_available());

    let user = TestUser::new("v2only");
    let ct = user.container();
    cgroup::create_entry(&ct.cgroup_path, ct.ugid).unwrap();
    let procs = procs_file(unified(), ct);
    let entry = format!("/{}", ct.cgroup_path);

    // What the runner is told and where it is born: the one hierarchy, already entered.
    let fake = FakeRunner::new();
    fake.run(&fake.call(ct));
    assert_eq!(fake.born_in(), vec![procs.to_str().unwrap().to_owned()]);
    assert_eq!(fake.cgroups()["unified"], entry);

    // The real runner: in the entry cgroup, as the user, without ever opening cgroup.procs.
    let watch = Watch::new(std::slice::from_ref(&procs));
    let info = Identity::run_with(&identity_call(ct)).unwrap();
    assert_eq!(watch.events()[&procs], 0, "the runner touched {procs:?}");
    let v2_line = info
        .cgroups
        .iter()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_else(|| panic!("{:?}", info.cgroups));
    assert_eq!(v2_line, &format!("0::{entry}"));
    assert_eq!(info.uid, [ct.ugid; 3]);
    assert_eq!(info.fds, vec![0, 1, 2, 3]);

    // And with clone3 switched off, the runner moves itself there instead (the control).
    let watch = Watch::new(std::slice::from_ref(&procs));
    let info = Identity::run_with(&identity_call(ct).launcher(posix_spawn_only())).unwrap();
    assert_eq!(
        watch.events()[&procs] & IN_MODIFY,
        IN_MODIFY,
        "no move with posix_spawn"
    );
    assert!(info.cgroups.contains(&format!("0::{entry}")));
    println!("v2-only view: born in {entry}, no move; {:?}", info.cgroups);
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}
