//! osctld's own frontends against our runner: `tests/osctld/frontend.rb` does what
//! osctld's `ContainerControl` frontends do (envelopes, `exec_runner`'s fork, placement and
//! pipes, the mapping of the reply), with the standalone `ctl-runner` in place of
//! `osctld-ct-runner`, on real unprivileged LXC containers. Every command osctld runs
//! through `exec_runner` is covered in every mode, and each test checks the runner's reply
//! as osctld's Ruby runner gives it (its `output`: `ok(exitstatus)` is the integer or
//! `null` when the program died of a signal, `ok` is `null`; its error texts) and the
//! container's real state (freezer, processes, mounts, files, addresses in its network
//! namespace, what the program printed).
//!
//! Every check of a test is run and all failures are reported together (one deviation
//! does not hide the next).
//!
//! Needs root, Debian's `ruby` (scripts/install-deps) and `cargo build --workspace --bins`
//! first (the runner binary). `OSCTLD_CT_RUNNER=<path>` tests another runner binary (an
//! installed `osctld-ct-runner`, say) instead of the workspace's `ctl-runner`.

use ctl_test_support::pty::ContainerPty;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ctl_core::Container;
use ctl_provision::{oracle, CreateOptions, SHARED_DIR_IN_CT};
use serde_json::{json, Value};
use tests::fixtures::{ctl_runner_path, TestContainer};

// ---------------------------------------------------------------------------------------
// Layout

/// How the test containers are laid out. `Today`: runners enter the container's cgroup
/// itself (`entry_cgroup_path` = `cgroup_path`). `Osctld`: the provisioner's osctld
/// layout (`ctl_provision::Layout::Osctld`): the container's cgroup
/// `ctl/<name>/user-owned`, runners in `<cgroup_path>/lxc.monitor.<id>`, a sibling of the
/// payload, as osctld lays containers out.
const LAYOUT: Layout = Layout::Osctld;

#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Today,
    Osctld,
}

/// A stopped test container with `opts`, laid out as [`LAYOUT`] says.
fn container(tag: &str, opts: &CreateOptions) -> TestContainer {
    let layout = match LAYOUT {
        Layout::Today => ctl_provision::Layout::Default,
        Layout::Osctld => ctl_provision::Layout::Osctld,
    };
    TestContainer::with_options(
        tag,
        &CreateOptions {
            layout,
            ..opts.clone()
        },
    )
}

fn running_container(tag: &str) -> TestContainer {
    let t = container(tag, &CreateOptions::default());
    oracle::start(t.container()).unwrap_or_else(|e| panic!("starting {}: {e}", t.container.id));
    t
}

// ---------------------------------------------------------------------------------------
// The client

/// The rlimits the client applies (osctld's prlimits); visible to the programs attached
/// to the container, which inherit them from the runner.
const NOFILE_SOFT: u64 = 1234;
const NOFILE_HARD: u64 = 4321;

/// osctld's `SwitchUser::SYSTEM_PATH`, the `PATH` of programs its runner starts inside.
const SYSTEM_PATH: &str = "/bin:/usr/bin:/sbin:/usr/sbin:/run/current-system/sw/bin:\
/nix/var/nix/profiles/system/sw/bin:/run/current-system/profile/bin:\
/run/current-system/profile/sbin:/var/guix/profiles/system/profile/bin:\
/var/guix/profiles/system/profile/sbin";

/// The longest a client may take: Stop's clean shutdown waits at least 60 s in osctld's
/// runner before it gives up.
const CLIENT_LIMIT: Duration = Duration::from_secs(180);

/// The runner under test.
fn runner() -> PathBuf {
    std::env::var_os("OSCTLD_CT_RUNNER")
        .map(PathBuf::from)
        .unwrap_or_else(ctl_runner_path)
}

fn client_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("osctld/frontend.rb")
}

fn rootfs(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("rootfs")
}

/// The container as osctld's frontends see it (osctld's `Container`), in its current state.
fn describe(t: &TestContainer) -> Value {
    describe_with(t, Value::Null)
}

fn describe_with(t: &TestContainer, net_config: Value) -> Value {
    let ct = t.container();
    let state = t.lxc_state();
    let mut d = json!({
        "pool": ct.pool,
        "id": ct.id,
        "user": ct.user,
        "ugid": ct.ugid,
        "home": ct.home,
        "lxc_home": ct.lxc_home,
        "log_file": ct.log_file,
        "cgroup_path": ct.cgroup_path,
        "entry_cgroup_path": ct.entry_cgroup(),
        "rootfs": rootfs(ct),
        "prlimits": {"nofile": {"soft": NOFILE_SOFT, "hard": NOFILE_HARD}},
        "state": state,
    });
    if !net_config.is_null() {
        d["net_config"] = net_config;
    }
    d
}

/// What the client reported, and how it ended.
struct Report {
    /// The client's JSON report (its last stdout line).
    json: Value,
    /// Everything else: stdout before the report (the runner's, if it wrote there) and
    /// the client's stderr.
    rest: String,
}

impl Report {
    fn ok(&self) -> bool {
        self.json["ok"] == json!(true)
    }

    fn data(&self) -> &Value {
        &self.json["data"]
    }

    fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or("")
    }

    fn calls(&self) -> &[Value] {
        self.json["exec_runner"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
    }

    /// The runner's reply (parsed) of the only `exec_runner` call; `Null` at EOF, or when
    /// there was no call.
    fn reply(&self) -> Value {
        self.calls()
            .first()
            .and_then(|c| c["reply"].as_str())
            .map_or(Value::Null, |line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| json!({"unparsable": line, "error": e.to_string()}))
            })
    }

    /// The envelope the client wrote (parsed).
    fn envelope(&self) -> Value {
        self.calls()
            .first()
            .and_then(|c| c["envelope"].as_str())
            .map_or(Value::Null, |e| serde_json::from_str(e).unwrap())
    }

    fn stdout(&self) -> &str {
        self.json["stdout"].as_str().unwrap_or("")
    }

    fn stderr(&self) -> &str {
        self.json["stderr"].as_str().unwrap_or("")
    }

    /// A short description for failure messages.
    fn brief(&self) -> String {
        format!(
            "reply {} | report ok={} data={} message={:?} stdout={:?} stderr={:?}",
            self.calls()
                .first()
                .map_or("(no exec_runner call)".to_owned(), |c| c["reply"]
                    .to_string()),
            self.json["ok"],
            self.json["data"],
            self.json["message"],
            self.json["stdout"],
            self.json["stderr"],
        )
    }
}

/// A client running in the background (for checks while the program runs).
struct RunningClient {
    child: Child,
    out: File,
    err: File,
    started: Instant,
    what: String,
}

fn spawn_client(container: &Value, command: Value, stdin: Option<&[u8]>) -> RunningClient {
    let runner = runner();
    assert!(
        runner.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        runner.display()
    );
    let mut input = command;
    input["container"] = container.clone();
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut cmd = Command::new("ruby");
    cmd.arg(client_path())
        .arg(&runner)
        .arg(input.to_string())
        .env_clear()
        .env("PATH", oracle::TOOL_PATH)
        // osctld's switch_to deletes it: the runner must not see it.
        .env("XDG_SESSION_ID", "ofe-test-session")
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        // A process group of its own: a client that hangs is killed with everything it
        // started that stayed in its group.
        .process_group(0);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("starting ruby (is Debian's ruby installed? scripts/install-deps): {e}")
    });
    if let Some(bytes) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(bytes).unwrap();
    }
    RunningClient {
        child,
        out,
        err,
        started: Instant::now(),
        what: input["command"].to_string(),
    }
}

impl RunningClient {
    fn finished(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    fn wait(mut self) -> Report {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > CLIENT_LIMIT {
                let pgid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
                let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = self.child.wait();
                panic!(
                    "the client ({}) took longer than {CLIENT_LIMIT:?}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = read_back(&mut self.out);
        let stderr = read_back(&mut self.err);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let json: Value = serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "the client ({}) exited with {status} without a report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}",
                self.what
            )
        });
        let before = stdout[..stdout.rfind(last).unwrap_or(0)].trim_end();
        Report {
            json,
            rest: format!("{before}{stderr}"),
        }
    }
}

fn read_back(f: &mut File) -> String {
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// Runs the client for `command` (`{"command": ..., "args": ..., "kwargs": ...}`) on
/// `container` (a [`describe`]d container) and returns its report.
fn client(container: &Value, command: Value) -> Report {
    let t = Instant::now();
    let what = command["command"].to_string();
    let r = spawn_client(container, command, None).wait();
    eprintln!("{what}: {:?}: {}", t.elapsed(), r.brief());
    if !r.rest.trim().is_empty() {
        eprintln!("  client/runner output: {}", r.rest.trim());
    }
    r
}

fn client_with_stdin(container: &Value, command: Value, stdin: &[u8]) -> Report {
    let what = command["command"].to_string();
    let r = spawn_client(container, command, Some(stdin)).wait();
    eprintln!("{what}: {}", r.brief());
    r
}

// ---------------------------------------------------------------------------------------
// Checks that all run

/// Collects failed checks; panics with all of them when dropped (unless empty).
struct Checks {
    test: &'static str,
    failures: Vec<String>,
}

impl Checks {
    fn new(test: &'static str) -> Checks {
        Checks {
            test,
            failures: Vec::new(),
        }
    }

    #[track_caller]
    fn eq<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            let at = std::panic::Location::caller();
            self.failures.push(format!(
                "{}:{}: {what}\n      got:  {got:?}\n      want: {want:?}",
                at.file(),
                at.line()
            ));
        }
    }

    #[track_caller]
    fn that(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        if !ok {
            let at = std::panic::Location::caller();
            self.failures.push(format!(
                "{}:{}: {what}\n      {detail}",
                at.file(),
                at.line()
            ));
        }
    }

    /// The runner's reply is exactly `want` (osctld's runner's reply).
    #[track_caller]
    fn reply(&mut self, what: &str, r: &Report, want: Value) {
        self.eq(&format!("{what}: runner reply"), r.reply(), want);
    }

    /// The runner replied `status:false` with `message` (trailing newlines aside).
    #[track_caller]
    fn error_reply(&mut self, what: &str, r: &Report, message: &str) {
        let reply = r.reply();
        self.eq(
            &format!("{what}: runner reply"),
            (
                reply["status"].clone(),
                reply["message"].as_str().map(|m| m.trim_end_matches('\n')),
            ),
            (json!(false), Some(message)),
        );
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        if !self.failures.is_empty() && !std::thread::panicking() {
            panic!(
                "{}: {} check(s) failed:\n  {}",
                self.test,
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Observing the container

fn hierarchy(controller: &str) -> &'static ctl_core::cgroup::Hierarchy {
    ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller(controller))
        .unwrap_or_else(|| panic!("no {controller} hierarchy"))
}

fn payload_cgroup(ct: &Container) -> String {
    format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id)
}

/// The kernel's freezer state of the container's payload cgroup.
fn freezer_state(ct: &Container) -> String {
    let path = hierarchy("freezer")
        .path_of(&payload_cgroup(ct))
        .join("freezer.state");
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

fn init_pid(ct: &Container) -> Option<i32> {
    oracle::lxc_init_pid(ct).ok().flatten()
}

/// The cgroup of `pid` in every hierarchy (`/proc/<pid>/cgroup`, the path part).
fn cgroups_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2).map(str::to_owned))
        .collect()
}

/// `nsenter -t <pid> <ns flags> -- argv...`: (exit status, stdout).
fn nsenter(pid: i32, ns: &[&str], argv: &[&str]) -> (i32, String) {
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args(ns)
        .arg("--")
        .args(argv)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runner processes left in the container's entry cgroup (there should be none once a
/// command returned).
fn runners_left(ct: &Container) -> Vec<i32> {
    let runner = runner();
    ctl_core::cgroup::pids_in(ct.entry_cgroup(), "pids")
        .unwrap_or_default()
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == runner))
        .collect()
}

/// `.runscript*.sh` files in the rootfs' top directory (Runscript's and the network
/// mode's temporary scripts).
fn leftover_scripts(ct: &Container) -> Vec<String> {
    std::fs::read_dir(rootfs(ct))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".runscript"))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            eprintln!("timed out waiting for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Whether the container is stopped: waited for up to `limit` when the runner said it
/// succeeded (a stop completes inside after the reply), checked at once otherwise.
fn stops(t: &TestContainer, r: &Report, limit: Duration) -> bool {
    if r.reply()["status"] == json!(true) {
        wait_for("the container to stop", limit, || {
            t.lxc_state() == "stopped"
        })
    } else {
        t.lxc_state() == "stopped"
    }
}

/// The host uid of the container's root (the owner of its rootfs).
fn root_host_id(ct: &Container) -> u32 {
    std::fs::metadata(rootfs(ct)).unwrap().uid()
}

/// Writes `path` in the rootfs as a file of the container's root.
fn put_file(ct: &Container, path: &str, content: &str, mode: u32) {
    let full = rootfs(ct).join(path.trim_start_matches('/'));
    let _ = std::fs::remove_file(&full);
    std::fs::write(&full, content).unwrap();
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(&full, Some(id), Some(id)).unwrap();
}

/// osctld's `Syscmd` error text names the command as Ruby prints an array of strings.
fn ruby_inspect(cmd: &[&str]) -> String {
    let items: Vec<String> = cmd.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

// ---------------------------------------------------------------------------------------
// A terminal inside (Wall and the stop commands' messages)

/// The message osctld's `make_message` composed, as the envelope carried it.
fn composed_message(envelope_message: &Value) -> String {
    envelope_message.as_str().unwrap_or("(none)").to_owned()
}

/// `make_message(message)` with the banner: checked by shape (the time is the client's).
fn is_bannered(text: &str, message: &str) -> bool {
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    text.starts_with(&format!("\n\nMessage from host machine {host} ("))
        && text.ends_with(&format!("):\n\n{message}\n\n"))
}

// ---------------------------------------------------------------------------------------
// osctld's user-control socket (the `ct_wrapper_start` callback of the run modes)

/// One `ct_wrapper_start` request, and what the server saw and did.
#[derive(Clone, Debug)]
struct WrapperRequest {
    line: String,
    peer_uid: u32,
    peer_pid: i32,
    cmd: String,
    id: String,
    pool: String,
    pid: i64,
    /// `/proc/<pid>/cgroup` (paths) right after the move.
    cgroups_after: Vec<String>,
    error: Option<String>,
}

/// What osctld does for a runner that is about to start a container (`lxc-execute`):
/// a server on `/run/osctl/user-control/<uid>.sock` (the socket osctld keeps for each
/// user, root's and the user's group's, 0660) that answers `ct_wrapper_start` by moving
/// the calling process into the container's `cgroup_path` in every hierarchy (so that LXC
/// creates the payload as `<cgroup_path>/lxc.payload.<id>`, beside the runners' entry
/// cgroup) and resetting its `oom_score_adj`, as osctld's `UserControl::Commands::
/// CtWrapperStart` does. Requests are recorded. Removed on drop.
struct UserControl {
    path: PathBuf,
    requests: Arc<Mutex<Vec<WrapperRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const OSCTL_RUN: &str = "/run/osctl";
const USER_CONTROL_DIR: &str = "/run/osctl/user-control";

/// Servers of this process alive, and whether this process created the directories
/// (so that the last one gone removes them, and a parallel test never finds them gone
/// half-way).
static USER_CONTROL_DIRS: Mutex<(usize, bool, bool)> = Mutex::new((0, false, false));

impl UserControl {
    fn start(ct: &Container) -> UserControl {
        let path = Path::new(USER_CONTROL_DIR).join(format!("{}.sock", ct.ugid));
        let listener = {
            let mut dirs = USER_CONTROL_DIRS.lock().unwrap_or_else(|e| e.into_inner());
            let (created_run, created_uc) = (mkdir_711(OSCTL_RUN), mkdir_711(USER_CONTROL_DIR));
            dirs.1 |= created_run;
            dirs.2 |= created_uc;
            dirs.0 += 1;
            let _ = std::fs::remove_file(&path);
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()))
        };
        std::os::unix::fs::chown(&path, Some(0), Some(ct.ugid)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop, ct) = (requests.clone(), stop.clone(), ct.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let request = serve_one(&ct, stream);
                        requests.lock().unwrap().push(request);
                    }
                }
            })
        };
        UserControl {
            path,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<WrapperRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// `mkdir` with mode 0711 (osctld's run directories); whether it was made here.
fn mkdir_711(dir: &str) -> bool {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => panic!("mkdir {dir}: {e}"),
    }
}

fn serve_one(ct: &Container, stream: UnixStream) -> WrapperRequest {
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    let _ = BufReader::new(&stream).read_line(&mut line);
    let req: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    let opts = &req["opts"];
    let mut request = WrapperRequest {
        line: line.clone(),
        peer_uid: cred.uid(),
        peer_pid: cred.pid(),
        cmd: req["cmd"].as_str().unwrap_or("").to_owned(),
        id: opts["id"].as_str().unwrap_or("").to_owned(),
        pool: opts["pool"].as_str().unwrap_or("").to_owned(),
        pid: opts["pid"].as_i64().unwrap_or(-1),
        cgroups_after: Vec::new(),
        error: None,
    };
    let result = if request.cmd != "ct_wrapper_start" {
        Err(format!("Unsupported command '{}'", request.cmd))
    } else if request.id != ct.id || request.pool != ct.pool {
        Err("container not found".to_owned())
    } else if request.peer_uid != ct.ugid {
        Err("access denied".to_owned())
    } else {
        // CGroup.mkpath_all(ct.cgroup_path, chown: ugid, attach: true, pid:), then
        // oom_score_adj = 0.
        let pid = request.pid;
        ctl_core::cgroup::create_entry(&ct.cgroup_path, ct.ugid)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                ctl_core::cgroup::procs_files(&ct.cgroup_path)
                    .iter()
                    .try_for_each(|f| std::fs::write(f, format!("{pid}\n")))
                    .map_err(|e| format!("attaching {pid}: {e}"))
            })
            .and_then(|()| {
                std::fs::write(format!("/proc/{pid}/oom_score_adj"), "0")
                    .map_err(|e| format!("oom_score_adj of {pid}: {e}"))
            })
    };
    if request.pid > 0 {
        request.cgroups_after = cgroups_of(request.pid as i32);
    }
    let reply = match &result {
        Ok(()) => json!({"status": true, "response": null}),
        Err(message) => json!({"status": false, "message": message}),
    };
    request.error = result.err();
    let _ = (&stream).write_all(format!("{reply}\n").as_bytes());
    request
}

impl Drop for UserControl {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut dirs = USER_CONTROL_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_file(&self.path);
        dirs.0 -= 1;
        if dirs.0 == 0 {
            if dirs.2 && std::fs::remove_dir(USER_CONTROL_DIR).is_ok() {
                dirs.2 = false;
            }
            if dirs.1 && std::fs::remove_dir(OSCTL_RUN).is_ok() {
                dirs.1 = false;
            }
        }
    }
}

/// Checks the callbacks of `calls` runs in a run mode: one `ct_wrapper_start` each from
/// the process that made it, naming this container, answered by a move into its cgroup.
fn check_callbacks(c: &mut Checks, what: &str, ct: &Container, server: &UserControl, calls: usize) {
    let requests = server.requests();
    c.eq(
        &format!("{what}: ct_wrapper_start callbacks to osctld"),
        requests.len(),
        calls,
    );
    let expected_cgroup = format!("/{}", ct.cgroup_path);
    for r in &requests {
        let sent: Value = serde_json::from_str(&r.line).unwrap_or(Value::Null);
        c.eq(
            &format!("{what}: the callback's request (osctld's payload; pid = the caller's)"),
            sent,
            json!({"cmd": "ct_wrapper_start", "opts": {"id": ct.id, "pool": ct.pool, "pid": r.peer_pid}}),
        );
        c.eq(
            &format!("{what}: the callback comes from the container's user"),
            r.peer_uid,
            ct.ugid,
        );
        c.that(
            &format!("{what}: the callback was answered with success"),
            r.error.is_none(),
            format!("{r:?}"),
        );
        c.that(
            &format!("{what}: the calling process is in the container's cgroup afterwards"),
            !r.cgroups_after.is_empty() && r.cgroups_after.iter().all(|g| *g == expected_cgroup),
            format!("{:?}", r.cgroups_after),
        );
    }
}

// ---------------------------------------------------------------------------------------
// A network interface for the run_network mode

/// A veth interface for the container: its host end on a bridge of this test's own that
/// stays down, so that whatever the container sends ends there (nothing reaches the host
/// or any other container); `lxc-user-nic` may put this user's veth on it
/// (`/etc/lxc/lxc-usernet`). Removed on drop.
struct TestBridge {
    name: String,
    user: String,
}

const USERNET: &str = "/etc/lxc/lxc-usernet";

impl TestBridge {
    fn for_container(ct: &Container) -> TestBridge {
        let name = format!("ofe{}", ct.ugid);
        assert!(name.len() < 16);
        let out = Command::new("ip")
            .args(["link", "add", &name, "type", "bridge"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip link add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bridge = TestBridge {
            name,
            user: ct.user.clone(),
        };
        bridge.edit_usernet(true);
        let config = ct.lxc_home.join(&ct.id).join("config");
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains("lxc.net.0.type = empty\n"), "{text}");
        let text = text.replace(
            "lxc.net.0.type = empty\n",
            &format!(
                "lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.flags = up\nlxc.net.0.name = eth0\n",
                bridge.name
            ),
        );
        std::fs::write(&config, text).unwrap();
        bridge
    }

    /// Adds (or removes) this user's line, under the provisioner's host lock.
    fn edit_usernet(&self, add: bool) {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(ctl_provision::LOCK_FILE)
            .unwrap();
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let line = format!("{} veth {} 1", self.user, self.name);
        let old = std::fs::read_to_string(USERNET).unwrap_or_default();
        let mut new: String = old
            .lines()
            .filter(|l| l.trim() != line)
            .flat_map(|l| [l, "\n"])
            .collect();
        if add {
            new.push_str(&line);
            new.push('\n');
        }
        let tmp = format!("{USERNET}.ofe.{}", std::process::id());
        std::fs::write(&tmp, new).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, USERNET).unwrap();
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        self.edit_usernet(false);
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

/// What `NetConfig.create(ct).export` gives for a container with one interface `eth0`:
/// an address of each family, a host route without gateway (osctld's routed interfaces)
/// and a default route through a gateway. Only ever applied inside the container.
fn net_config() -> Value {
    json!([{
        "name": "eth0",
        "ips": [
            {"version": 4, "address": "10.214.7.2", "prefix": 24},
            {"version": 6, "address": "fd00:214:7::2", "prefix": 64}
        ],
        "routes": [
            {"version": 4, "address": "192.0.2.1", "prefix": 32, "via": null},
            {"version": 4, "address": "0.0.0.0", "prefix": 0, "via": "10.214.7.1"}
        ]
    }])
}

/// Checks `eth0` in `pid`'s network namespace against [`net_config`].
fn check_network(c: &mut Checks, what: &str, pid: i32) {
    let (_, addr) = nsenter(pid, &["-n"], &["ip", "-j", "addr", "show", "dev", "eth0"]);
    let addr: Value = serde_json::from_str(&addr).unwrap_or(Value::Null);
    let addrs: Vec<(String, String, u64)> = addr[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["family"].as_str().unwrap_or("").to_owned(),
                        i["local"].as_str().unwrap_or("").to_owned(),
                        i["prefixlen"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for want in [
        ("inet".to_owned(), "10.214.7.2".to_owned(), 24),
        ("inet6".to_owned(), "fd00:214:7::2".to_owned(), 64),
    ] {
        c.that(
            &format!("{what}: eth0 in the container's netns has {want:?}"),
            addrs.contains(&want),
            format!("addresses: {addrs:?}"),
        );
    }
    let (_, routes) = nsenter(
        pid,
        &["-n"],
        &["ip", "-j", "-4", "route", "show", "dev", "eth0"],
    );
    let routes: Value = serde_json::from_str(&routes).unwrap_or(Value::Null);
    let routes: Vec<(String, String)> = routes
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    (
                        r["dst"].as_str().unwrap_or("").to_owned(),
                        r["gateway"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for want in [
        ("192.0.2.1".to_owned(), String::new()),
        ("default".to_owned(), "10.214.7.1".to_owned()),
    ] {
        c.that(
            &format!("{what}: route {want:?} in the container's netns"),
            routes.contains(&want),
            format!("routes: {routes:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Holding a program inside while the test looks

/// A shell program that prints its argument count, says it is ready (a file in the
/// rootfs), waits until the test lets it go (another file), then exits with 4.
const HOLD: &str = "echo \"started $#\"; : > /ofe-ready; \
                    while [ ! -e /ofe-go ]; do sleep 0.1; done; echo finished; exit 4";

/// Waits until the program of `client` is ready inside (or the client ended: the runner
/// refused), runs `look` with the container's init pid (`None` when it never got ready)
/// and lets the program go.
fn while_held(
    t: &TestContainer,
    mut client: RunningClient,
    look: impl FnOnce(Option<i32>),
) -> Report {
    let ct = t.container();
    let ready = rootfs(ct).join("ofe-ready");
    let go = rootfs(ct).join("ofe-go");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() && !client.finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if ready.exists() {
        look(init_pid(ct));
    } else {
        look(None);
    }
    std::fs::write(&go, "").unwrap();
    let report = client.wait();
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&go);
    eprintln!("held program: {}", report.brief());
    report
}

// =======================================================================================
// The tests

/// The harness itself: the client places the runner as osctld's `SwitchUser` does (the
/// runner's `Identity`, which is no osctld command, through the same `exec_runner`).
#[test]
fn the_client_places_the_runner_as_osctld_does() {
    let mut c = Checks::new("the_client_places_the_runner_as_osctld_does");
    let t = container("ofi", &CreateOptions::default());
    let ct = t.container();
    let r = client(&describe(&t), json!({"command": "Identity"}));
    let envelope = r.envelope();
    let raw = r
        .calls()
        .first()
        .and_then(|c| c["envelope"].as_str())
        .unwrap_or("");
    let keys = [
        "name",
        "pool",
        "id",
        "lxc_home",
        "user_home",
        "log_file",
        "args",
        "kwargs",
        "return",
        "stdin",
        "stdout",
        "stderr",
    ];
    let at: Vec<Option<usize>> = keys
        .iter()
        .map(|k| raw.find(&format!("\"{k}\":")))
        .collect();
    c.that(
        "envelope: exactly osctld's fields, in its order",
        envelope.as_object().map(|o| o.len()) == Some(keys.len())
            && at.iter().all(Option::is_some)
            && at.windows(2).all(|w| w[0] < w[1]),
        raw,
    );
    c.eq(
        "envelope",
        (
            envelope["name"].clone(),
            envelope["pool"].clone(),
            envelope["id"].clone(),
            envelope["args"].clone(),
            envelope["kwargs"].clone(),
            envelope["stdin"].clone(),
            envelope["stdout"].clone(),
            envelope["stderr"].clone(),
        ),
        (
            json!("OsCtld::ContainerControl::Commands::Identity"),
            json!(ct.pool),
            json!(ct.id),
            json!([]),
            json!({}),
            Value::Null,
            json!(1),
            json!(2),
        ),
    );
    c.eq("reply status", r.reply()["status"].clone(), json!(true));
    let id = r.data();
    c.eq("uid", id["uid"].clone(), json!([ct.ugid, ct.ugid, ct.ugid]));
    c.eq("gid", id["gid"].clone(), json!([ct.ugid, ct.ugid, ct.ugid]));
    c.eq("groups", id["groups"].clone(), json!([ct.ugid]));
    let expected = format!("/{}", ct.entry_cgroup());
    let cgroups: Vec<String> = id["cgroups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str()?.splitn(3, ':').nth(2).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    c.eq(
        "in the entry cgroup in every hierarchy",
        (cgroups.len(), cgroups.iter().all(|g| *g == expected)),
        (ctl_core::cgroup::hierarchies().len(), true),
    );
    c.eq(
        "prlimits",
        id["rlimits"]["nofile"].clone(),
        json!({"soft": NOFILE_SOFT, "hard": NOFILE_HARD}),
    );
    let env: Vec<&str> = id["env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in ["HOME", "USER", "XDG_RUNTIME_DIR", "PATH"] {
        c.that(
            &format!("{name} set"),
            env.contains(&name),
            format!("{env:?}"),
        );
    }
    c.that(
        "XDG_SESSION_ID deleted",
        !env.contains(&"XDG_SESSION_ID"),
        format!("{env:?}"),
    );
    c.eq(
        "the runner binary, exec'd by its path",
        id["exe"].clone(),
        json!(runner()),
    );
    c.eq(
        "runner exit status",
        r.calls()[0]["exitstatus"].clone(),
        json!(0),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn freeze_and_unfreeze() {
    let mut c = Checks::new("freeze_and_unfreeze");
    let t = running_container("off");
    let ct = t.container();

    let r = client(&describe(&t), json!({"command": "Freeze"}));
    c.eq(
        "Freeze envelope (name, args)",
        (r.envelope()["name"].clone(), r.envelope()["args"].clone()),
        (
            json!("OsCtld::ContainerControl::Commands::Freeze"),
            json!([]),
        ),
    );
    c.reply("Freeze", &r, json!({"status": true, "output": null}));
    c.eq(
        "Freeze: what osctld's frontend returns",
        r.data().clone(),
        json!(true),
    );
    c.eq(
        "payload freezer.state after Freeze",
        freezer_state(ct),
        "FROZEN".to_owned(),
    );
    c.eq("lxc-info after Freeze", t.lxc_state(), "frozen".to_owned());

    let r = client(&describe(&t), json!({"command": "Unfreeze"}));
    c.reply("Unfreeze", &r, json!({"status": true, "output": null}));
    c.eq(
        "Unfreeze: what osctld's frontend returns",
        r.data().clone(),
        json!(true),
    );
    c.eq(
        "payload freezer.state after Unfreeze",
        freezer_state(ct),
        "THAWED".to_owned(),
    );
    c.eq(
        "lxc-info after Unfreeze",
        t.lxc_state(),
        "running".to_owned(),
    );
    let attached = oracle::attach(ct, &["true"]).unwrap();
    c.that(
        "the container runs programs again",
        attached.status.success(),
        format!("{attached:?}"),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn exec_running() {
    let mut c = Checks::new("exec_running");
    let t = running_container("oxr");
    let ct = t.container();
    let exec = |cmd: &[&str], stdin: Value| {
        client(
            &describe(&t),
            json!({"command": "Exec", "args": [{"cmd": cmd, "stdin": stdin}]}),
        )
    };

    let log_size = || {
        std::fs::metadata(&ct.log_file)
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let before = log_size();
    let r = exec(&["sh", "-c", "echo out; echo err >&2; exit 3"], Value::Null);
    // liblxc's attach leaves a warning in the container's log on this host (see
    // attach_direct.rs, which checks that it does); ctl's own writes nothing there.
    c.eq(
        "osctld's envelope goes through ctl's own attach: the container's log did not grow",
        log_size(),
        before,
    );
    c.eq(
        "envelope args",
        r.envelope()["args"].clone(),
        json!(["running", {"cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]}]),
    );
    c.eq(
        "envelope stdio: no stdin, stdout and stderr given",
        (
            r.envelope()["stdin"].is_null(),
            r.envelope()["stdout"].is_i64(),
            r.envelope()["stderr"].is_i64(),
        ),
        (true, true, true),
    );
    c.reply("exit 3", &r, json!({"status": true, "output": 3}));
    c.eq("exit 3: frontend's value", r.data().clone(), json!(3));
    c.eq(
        "exit 3: stdout, stderr",
        (r.stdout(), r.stderr()),
        ("out\n", "err\n"),
    );

    let r = exec(&["sh", "-c", "kill -9 $$"], Value::Null);
    c.reply(
        "killed by SIGKILL: exitstatus is nil",
        &r,
        json!({"status": true, "output": null}),
    );

    let r = exec(
        &[
            "sh",
            "-c",
            "echo \"$HOME $USER $PATH\"; ulimit -n; id -u; hostname",
        ],
        Value::Null,
    );
    c.reply("environment", &r, json!({"status": true, "output": 0}));
    c.eq(
        "HOME USER PATH (setup_exec_env), the runner's rlimits, root inside, the container's hostname",
        r.stdout().to_owned(),
        format!("/root root {SYSTEM_PATH}\n{NOFILE_SOFT}\n0\n{}\n", ct.id),
    );

    let r = exec(&["cat"], json!("through the runner's stdin\n"));
    c.reply("cat", &r, json!({"status": true, "output": 0}));
    c.eq("cat: stdout", r.stdout(), "through the runner's stdin\n");
    c.that(
        "cat: stdin fd in the envelope",
        r.envelope()["stdin"].is_i64(),
        r.envelope(),
    );

    let r = exec(&["cat"], Value::Null);
    c.eq(
        "cat without stdin: output 0 and nothing read",
        (r.reply(), r.stdout()),
        (json!({"status": true, "output": 0}), ""),
    );

    // `network` on a running container still sends the network options (osctld adds them
    // whenever asked), but the mode stays `running`.
    let r = client(
        &describe_with(&t, net_config()),
        json!({"command": "Exec", "args": [{"cmd": ["true"], "network": true, "run": true}]}),
    );
    let opts = r.envelope()["args"][1].clone();
    c.eq(
        "network on a running container: mode, init_script is a /.runscript*.sh, net_config",
        (
            r.envelope()["args"][0].clone(),
            opts["init_script"].as_str().is_some_and(|s| {
                s.starts_with("/.runscript") && s.ends_with(".sh") && !s[1..].contains('/')
            }),
            opts["net_config"].clone(),
        ),
        (json!("running"), true, net_config()),
    );
    c.reply(
        "network on a running container",
        &r,
        json!({"status": true, "output": 0}),
    );
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("still running", t.lxc_state(), "running".to_owned());
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn exec_run_on_a_stopped_container() {
    let mut c = Checks::new("exec_run_on_a_stopped_container");
    let t = container("oxs", &CreateOptions::default());
    let ct = t.container();
    let server = UserControl::start(ct);

    // Without `run`: the frontend refuses, no runner is started.
    let r = client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["true"]}]}),
    );
    c.eq(
        "without run: (ok, message, user_runner, exec_runner calls)",
        (
            r.ok(),
            r.message(),
            r.json["user_runner"].clone(),
            r.calls().len(),
        ),
        (false, "container not running", json!(false), 0),
    );

    // With `run`: lxc-execute starts it for the program; look at it while it runs. (In
    // this mode osctld's runner reopens its stdin onto the one given, which osctld's
    // callers always pass: an empty one here.)
    let held = spawn_client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", HOLD, "sh", "a", "b"], "run": true, "stdin": ""}]}),
        None,
    );
    let mut seen_init = None;
    let mut payload = Vec::new();
    let r = while_held(&t, held, |init| {
        seen_init = init;
        if let Some(pid) = init {
            payload = cgroups_of(pid);
        }
    });
    c.eq(
        "run: envelope args",
        r.envelope()["args"].clone(),
        json!(["run", {"cmd": ["sh", "-c", HOLD, "sh", "a", "b"]}]),
    );
    c.that(
        "run: the program ran inside (ready file)",
        seen_init.is_some(),
        r.brief(),
    );
    let expected = format!("/{}", payload_cgroup(ct));
    c.that(
        "run: the container's init is in <cgroup_path>/lxc.payload.<id> in every hierarchy",
        payload.len() == ctl_core::cgroup::hierarchies().len()
            && payload.iter().all(|g| *g == expected),
        format!("{payload:?}, want {expected}"),
    );
    c.reply("run: exit 4", &r, json!({"status": true, "output": 4}));
    c.eq("run: stdout", r.stdout(), "started 2\nfinished\n");

    let r = client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", "echo \"$$ $HOME $USER $PATH\"; exit 3"], "run": true, "stdin": ""}]}),
    );
    c.reply("run: exit 3", &r, json!({"status": true, "output": 3}));
    c.eq(
        "run: the program is pid 2 under lxc-execute's init, with lxc.environment's HOME USER PATH",
        r.stdout().to_owned(),
        format!("2 /root root {SYSTEM_PATH}\n"),
    );

    // lxc-execute's own status is what osctld's runner reports in this mode: a program
    // killed by a signal is 128 + the signal there.
    let r = client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", "kill -9 $$"], "run": true, "stdin": ""}]}),
    );
    c.reply(
        "run: killed by SIGKILL",
        &r,
        json!({"status": true, "output": 137}),
    );
    check_callbacks(&mut c, "run", ct, &server, 3);
    c.eq("stopped again", t.lxc_state(), "stopped".to_owned());
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn exec_run_network() {
    let mut c = Checks::new("exec_run_network");
    let t = container("oxn", &CreateOptions::default());
    let ct = t.container();
    let _bridge = TestBridge::for_container(ct);
    let server = UserControl::start(ct);

    let held = spawn_client(
        &describe_with(&t, net_config()),
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", HOLD, "sh", "x"], "run": true, "network": true}]}),
        None,
    );
    let mut looked = false;
    let r = while_held(&t, held, |init| {
        if let Some(pid) = init {
            looked = true;
            check_network(&mut c, "run_network", pid);
        }
    });
    let args = r.envelope()["args"].clone();
    let init_script = args[1]["init_script"].as_str().unwrap_or("").to_owned();
    c.eq(
        "run_network: envelope args (mode, cmd, net_config)",
        (
            args[0].clone(),
            args[1]["cmd"].clone(),
            args[1]["net_config"].clone(),
        ),
        (
            json!("run_network"),
            json!(["sh", "-c", HOLD, "sh", "x"]),
            net_config(),
        ),
    );
    c.that(
        "run_network: init_script is a /.runscript*.sh in the rootfs' top directory",
        init_script.starts_with("/.runscript") && init_script.ends_with(".sh"),
        &init_script,
    );
    c.that("run_network: the program ran inside", looked, r.brief());
    c.reply(
        "run_network: exit 4",
        &r,
        json!({"status": true, "output": 4}),
    );
    c.eq("run_network: stdout", r.stdout(), "started 1\nfinished\n");
    check_callbacks(&mut c, "run_network", ct, &server, 1);
    c.that(
        "run_network: stopped again once the program ended",
        stops(&t, &r, Duration::from_secs(20)),
        t.lxc_state(),
    );
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

/// A runner placed by osctld's `SwitchUser` (setresuid, then exec: dumpable again after the
/// exec) makes itself non-dumpable before it reads the envelope: the container's user
/// cannot ptrace it or copy its fds (its reply pipe, osctld's stdio). The kernel shows the
/// files of a non-dumpable process (`/proc/<pid>/fd`, ...) as root's.
#[test]
fn a_runner_placed_by_osctld_is_not_dumpable() {
    let mut c = Checks::new("runner_not_dumpable");
    let t = running_container("oxd");
    let ct = t.container();
    let held = spawn_client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", HOLD, "sh"]}]}),
        None,
    );
    let mut seen = Vec::new();
    let r = while_held(&t, held, |_| {
        for pid in runners_left(ct) {
            use std::os::unix::fs::MetadataExt;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse::<u32>().ok());
            let owner = std::fs::metadata(format!("/proc/{pid}/fd"))
                .map(|m| m.uid())
                .ok();
            seen.push((pid, uid, owner));
        }
    });
    c.reply("held Exec", &r, json!({"status": true, "output": 4}));
    c.that(
        "the runner was seen while it ran",
        !seen.is_empty(),
        format!("{seen:?}"),
    );
    for (pid, uid, owner) in &seen {
        c.eq(
            &format!("runner {pid}: the container's user, /proc shown as root's"),
            (*uid, *owner),
            (Some(ct.ugid), Some(0)),
        );
    }
}

/// osctld present (its socket directory exists) but not serving this user (restarting,
/// say): the run modes fail with osctld's callback error instead of starting the container
/// where osctld would not find its payload.
#[test]
fn run_mode_fails_where_osctlds_socket_for_the_user_is_missing() {
    let mut c = Checks::new("run_missing_socket");
    // Another user's server keeps /run/osctl/user-control in place.
    let other = container("oxo", &CreateOptions::default());
    let _server = UserControl::start(other.container());
    let t = container("oxm", &CreateOptions::default());
    let r = client(
        &describe(&t),
        json!({"command": "Exec", "args": [{"cmd": ["true"], "run": true, "stdin": ""}]}),
    );
    c.that("refused", !r.ok(), r.brief());
    c.that(
        "the message is osctld's callback error",
        r.message()
            .contains("Error during ct_wrapper_start callback"),
        r.brief(),
    );
    c.eq("still stopped", t.lxc_state(), "stopped".to_owned());
    c.eq("runners left", runners_left(t.container()), vec![]);
}

/// run_network on a container whose root keeps the init script from ending when it is
/// released (here: the script ignores its stdin): the runner stops the container after a
/// bound instead of waiting for ever, and still answers with the program's status.
#[test]
fn run_network_does_not_wait_for_ever_for_a_script_that_ignores_its_release() {
    let mut c = Checks::new("run_network_stuck_script");
    let t = container("oxk", &CreateOptions::default());
    let ct = t.container();
    let _bridge = TestBridge::for_container(ct);
    let _server = UserControl::start(ct);
    let mut described = describe_with(&t, net_config());
    described["init_script_wait"] = json!("while :; do sleep 1; done");
    let started = Instant::now();
    let r = client(
        &described,
        json!({"command": "Exec", "args": [{"cmd": ["sh", "-c", "exit 6"], "run": true, "network": true}]}),
    );
    c.reply(
        "stuck script: the program's status",
        &r,
        json!({"status": true, "output": 6}),
    );
    let took = started.elapsed();
    c.that(
        "stuck script: answered after the release bound, not never",
        took >= Duration::from_secs(25) && took < Duration::from_secs(120),
        format!("{took:?}"),
    );
    c.eq(
        "stuck script: container stopped",
        t.lxc_state(),
        "stopped".to_owned(),
    );
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

/// A script on the host that shows how it was called, reads its stdin and exits with 5.
const SHOW_SCRIPT: &str = "#!/bin/sh\necho \"$0|$#|$1|$2\"\nid -u\ncat\nexit 5\n";

#[test]
fn runscript_running() {
    let mut c = Checks::new("runscript_running");
    let t = running_container("osr");
    let ct = t.container();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("show.sh");
    std::fs::write(&script, SHOW_SCRIPT).unwrap();

    // From a host file, with arguments and the caller's stdin.
    let r = client(
        &describe(&t),
        json!({"command": "Runscript", "args": [{
            "script": script, "args": ["one", "two words"], "stdin": "to the script\n"
        }]}),
    );
    let inside = r.envelope()["args"][1]["script"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    c.eq(
        "envelope args",
        r.envelope()["args"].clone(),
        json!(["running", {"args": ["one", "two words"], "script": inside}]),
    );
    c.that(
        "the script is /.runscript*.sh",
        inside.starts_with("/.runscript") && inside.ends_with(".sh"),
        &inside,
    );
    c.that(
        "stdin fd in the envelope",
        r.envelope()["stdin"].is_i64(),
        r.envelope(),
    );
    c.reply("exit 5", &r, json!({"status": true, "output": 5}));
    c.eq(
        "stdout: $0, the arguments, root, its stdin",
        r.stdout().to_owned(),
        format!("{inside}|2|one|two words\n0\nto the script\n"),
    );

    // From stdin: the frontend copies it and the runner gets no stdin.
    let r = client_with_stdin(
        &describe(&t),
        json!({"command": "Runscript", "args": [{"script": null, "args": ["x"], "stdin": {"inherit": true}}]}),
        b"#!/bin/sh\necho \"$#:$*\"\ncat\nexit 6\n",
    );
    c.that(
        "from stdin: no stdin in the envelope",
        r.envelope()["stdin"].is_null(),
        r.envelope(),
    );
    c.reply(
        "from stdin: exit 6",
        &r,
        json!({"status": true, "output": 6}),
    );
    c.eq("from stdin: stdout", r.stdout(), "1:x\n");

    let r = client(
        &describe(&t),
        json!({"command": "Runscript", "args": [{"script": script, "args": [], "stdin": null}]}),
    );
    c.reply(
        "no arguments, no stdin: exit 5",
        &r,
        json!({"status": true, "output": 5}),
    );
    c.that(
        "no arguments: $# is 0",
        r.stdout().contains("|0||\n"),
        r.stdout(),
    );
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("still running", t.lxc_state(), "running".to_owned());
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn runscript_run_on_a_stopped_container() {
    let mut c = Checks::new("runscript_run_on_a_stopped_container");
    let t = container("oss", &CreateOptions::default());
    let ct = t.container();
    let server = UserControl::start(ct);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("show.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$0|$#|$$\"\nexit 5\n").unwrap();

    let r = client(
        &describe(&t),
        json!({"command": "Runscript", "args": [{"script": script, "args": ["one", "two"]}]}),
    );
    c.eq(
        "without run: (ok, message, exec_runner calls)",
        (r.ok(), r.message(), r.calls().len()),
        (false, "container not running", 0),
    );
    c.eq(
        "without run: temporary scripts left",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );

    let r = client(
        &describe(&t),
        json!({"command": "Runscript", "args": [{"script": script, "args": ["one", "two"], "run": true}]}),
    );
    let inside = r.envelope()["args"][1]["script"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    c.eq(
        "run: envelope args",
        r.envelope()["args"].clone(),
        json!(["run", {"args": ["one", "two"], "script": inside}]),
    );
    c.reply("run: exit 5", &r, json!({"status": true, "output": 5}));
    // osctld's runner starts `lxc-execute ... -- <script>` through a shell and drops the
    // arguments in this mode (a bug: its frontend documents them as the script's); ours
    // passes them in every mode (docs/osctld.md).
    c.eq(
        "run: the script is lxc-execute's program (pid 2), with its arguments",
        r.stdout().to_owned(),
        format!("{inside}|2|2\n"),
    );
    check_callbacks(&mut c, "run", ct, &server, 1);
    c.eq("stopped again", t.lxc_state(), "stopped".to_owned());
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn runscript_run_network() {
    let mut c = Checks::new("runscript_run_network");
    let t = container("osn", &CreateOptions::default());
    let ct = t.container();
    let _bridge = TestBridge::for_container(ct);
    let server = UserControl::start(ct);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hold.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{HOLD}\n")).unwrap();

    let held = spawn_client(
        &describe_with(&t, net_config()),
        json!({"command": "Runscript", "args": [{"script": script, "args": ["p", "q"], "run": true, "network": true}]}),
        None,
    );
    let mut looked = false;
    let r = while_held(&t, held, |init| {
        if let Some(pid) = init {
            looked = true;
            check_network(&mut c, "run_network", pid);
        }
    });
    let args = r.envelope()["args"].clone();
    c.eq(
        "run_network: envelope args (mode, script args, net_config)",
        (
            args[0].clone(),
            args[1]["args"].clone(),
            args[1]["net_config"].clone(),
        ),
        (json!("run_network"), json!(["p", "q"]), net_config()),
    );
    c.that("run_network: the script ran inside", looked, r.brief());
    c.reply(
        "run_network: exit 4",
        &r,
        json!({"status": true, "output": 4}),
    );
    // Attached to the container the init script keeps up: the arguments are passed.
    c.eq("run_network: stdout", r.stdout(), "started 2\nfinished\n");
    check_callbacks(&mut c, "run_network", ct, &server, 1);
    c.that(
        "run_network: stopped again",
        stops(&t, &r, Duration::from_secs(20)),
        t.lxc_state(),
    );
    c.eq(
        "temporary scripts left in the rootfs",
        leftover_scripts(ct),
        Vec::<String>::new(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn syscmd() {
    let mut c = Checks::new("syscmd");
    let t = running_container("osy");
    let ct = t.container();
    let syscmd = |cmd: &[&str], opts: Value| {
        client(
            &describe(&t),
            json!({"command": "Syscmd", "args": [cmd, opts]}),
        )
    };

    // stdin as a String; exit status accepted by valid_rcs.
    let cmd = ["sh", "-c", "cat; echo err >&2; exit 3"];
    let r = syscmd(&cmd, json!({"stdin": "in\n", "valid_rcs": [3]}));
    c.eq(
        "envelope args (through Exec)",
        (r.envelope()["name"].clone(), r.envelope()["args"].clone()),
        (
            json!("OsCtld::ContainerControl::Commands::Exec"),
            json!(["running", {"cmd": cmd}]),
        ),
    );
    c.eq(
        "envelope: stdout and stderr are the same pipe, stdin given",
        (
            r.envelope()["stdout"] == r.envelope()["stderr"],
            r.envelope()["stdin"].is_i64(),
        ),
        (true, true),
    );
    c.reply("valid_rcs [3]", &r, json!({"status": true, "output": 3}));
    c.eq(
        "valid_rcs [3]: result",
        r.data().clone(),
        json!({"exitstatus": 3, "output": "in\nerr\n"}),
    );

    // stdin as an fd (osctld passes an IO it received).
    let r = client_with_stdin(
        &describe(&t),
        json!({"command": "Syscmd", "args": [["cat"], {"stdin": {"inherit": true}}]}),
        b"via an fd\n",
    );
    c.eq(
        "stdin as an fd: result",
        r.data().clone(),
        json!({"exitstatus": 0, "output": "via an fd\n"}),
    );

    let r = syscmd(&["sh", "-c", "exit 9"], json!({"valid_rcs": "all"}));
    c.eq(
        "valid_rcs all: result",
        r.data().clone(),
        json!({"exitstatus": 9, "output": ""}),
    );

    // A status not accepted: the frontend's error, with the runner's status and output.
    let cmd = ["sh", "-c", "echo out; exit 3"];
    let r = syscmd(&cmd, json!({}));
    c.reply("rejected status", &r, json!({"status": true, "output": 3}));
    let inspect = ruby_inspect(&cmd);
    c.eq(
        "rejected status: (ok, message)",
        (r.ok(), r.message().to_owned()),
        (
            false,
            format!(
                "command '{inspect}' exited with code '1', output: 'Command '{inspect}' within CT {} failed with exit code 3: out\n'",
                ct.id
            ),
        ),
    );

    // Killed by a signal: osctld's runner says nil, which no valid_rcs lists.
    let cmd = ["sh", "-c", "kill -9 $$"];
    let r = syscmd(&cmd, json!({}));
    c.reply("killed", &r, json!({"status": true, "output": null}));
    let inspect = ruby_inspect(&cmd);
    c.eq(
        "killed: message",
        r.message().to_owned(),
        format!(
            "command '{inspect}' exited with code '1', output: 'Command '{inspect}' within CT {} failed with exit code : '",
            ct.id
        ),
    );

    oracle::stop(ct).unwrap();
    let r = syscmd(&["true"], json!({}));
    c.eq(
        "stopped, no run: (ok, message, exec_runner calls)",
        (r.ok(), r.message().to_owned(), r.calls().len()),
        (
            false,
            format!(
                "command '{}' exited with code '1', output: 'Container is not running'",
                ruby_inspect(&["true"])
            ),
            0,
        ),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn wall_with_and_without_banner() {
    let mut c = Checks::new("wall_with_and_without_banner");
    let t = running_container("owa");
    let ct = t.container();
    let pty = ContainerPty::open(ct);
    pty.register_root_login(ct);

    let r = client(
        &describe(&t),
        json!({"command": "Wall", "kwargs": {"message": "the host goes down at noon"}}),
    );
    let message = composed_message(&r.envelope()["args"][0]);
    c.that(
        "banner: the envelope carries make_message's text",
        is_bannered(&message, "the host goes down at noon"),
        format!("{message:?}"),
    );
    c.eq(
        "banner: envelope args has just the message",
        r.envelope()["args"].as_array().map(Vec::len),
        Some(1),
    );
    c.reply("banner", &r, json!({"status": true, "output": null}));
    c.eq("banner: frontend's value", r.data().clone(), json!(true));
    c.eq(
        "banner: what the terminal got",
        pty.read(Duration::from_secs(5)).replace('\r', ""),
        message,
    );

    let r = client(
        &describe(&t),
        json!({"command": "Wall", "kwargs": {"message": "plain words", "banner": false}}),
    );
    c.eq(
        "no banner: envelope args",
        r.envelope()["args"].clone(),
        json!(["\n\nplain words\n\n"]),
    );
    c.reply("no banner", &r, json!({"status": true, "output": null}));
    c.eq(
        "no banner: what the terminal got",
        pty.read(Duration::from_secs(5)).replace('\r', ""),
        "\n\nplain words\n\n".to_owned(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mount points in `pid`'s mount namespace (its own view).
fn mounts_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

#[test]
fn mount_moves_a_shared_mount_inside() {
    let mut c = Checks::new("mount_moves_a_shared_mount_inside");
    let t = running_container("omo");
    let ct = t.container();
    let init = init_pid(ct).unwrap();
    let shared = t.provisioner.shared_dir(&ct.id);

    // osctld's part before the command: a mount below the host side of the shared dir.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let src = shared.join("vol");
    std::fs::create_dir(&src).unwrap();
    run_ok(
        Command::new("mount")
            .arg("--bind")
            .arg(data.path())
            .arg(&src),
    );

    let opts = json!({"shared_dir": SHARED_DIR_IN_CT, "src": "vol", "dst": "/mnt/ofe/vol"});
    let r = client(
        &describe(&t),
        json!({"command": "Mount", "args": [opts.clone()]}),
    );
    c.eq("envelope args", r.envelope()["args"].clone(), json!([opts]));
    c.reply("Mount", &r, json!({"status": true, "output": null}));
    c.eq("Mount: frontend's value", r.data().clone(), json!(true));
    // osctld then drops its host-side copy.
    let _ = Command::new("umount").arg(&src).output();
    c.eq(
        "Mount: the file through the moved mount (nsenter into init's mount namespace)",
        nsenter(init, &["-m"], &["cat", "/mnt/ofe/vol/hello"]),
        (0, "from the host\n".to_owned()),
    );
    c.that(
        "Mount: /mnt/ofe/vol is a mount point inside",
        mounts_of(init).iter().any(|m| m == "/mnt/ofe/vol"),
        format!("{:?}", mounts_of(init)),
    );

    let r = client(
        &describe(&t),
        json!({"command": "Mount", "args": [{"shared_dir": "/no/shared", "src": "vol", "dst": "/mnt/x"}]}),
    );
    c.error_reply(
        "missing shared dir",
        &r,
        "Shared dir not found at: /no/shared",
    );
    c.eq(
        "missing shared dir: report",
        (r.ok(), r.json["user_runner"].clone()),
        (false, json!(false)),
    );
    let r = client(
        &describe(&t),
        json!({"command": "Mount", "args": [{"shared_dir": SHARED_DIR_IN_CT, "src": "missing", "dst": "/mnt/x"}]}),
    );
    c.error_reply(
        "missing source",
        &r,
        &format!("Source directory not found at: {SHARED_DIR_IN_CT}/missing"),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn unmount() {
    let mut c = Checks::new("unmount");
    let t = running_container("oum");
    let ct = t.container();
    let init = init_pid(ct).unwrap();
    // A tmpfs mounted inside, by root from outside (nsenter into init's mount namespace).
    let (rc, _) = nsenter(
        init,
        &["-m"],
        &[
            "sh",
            "-c",
            "mkdir -p /mnt/ofe-tmp && mount -t tmpfs ofe /mnt/ofe-tmp && echo x > /mnt/ofe-tmp/f",
        ],
    );
    assert_eq!(rc, 0, "mounting the tmpfs inside");
    assert!(mounts_of(init).iter().any(|m| m == "/mnt/ofe-tmp"));

    // Busy: a file open on it (from the host, through init's root) keeps it mounted.
    let busy = File::open(format!("/proc/{init}/root/mnt/ofe-tmp/f")).unwrap();
    let r = client(
        &describe(&t),
        json!({"command": "Unmount", "args": ["/mnt/ofe-tmp"]}),
    );
    c.eq(
        "envelope args",
        r.envelope()["args"].clone(),
        json!(["/mnt/ofe-tmp"]),
    );
    c.error_reply("busy", &r, "unmount failed");
    c.that(
        "busy: still mounted",
        mounts_of(init).iter().any(|m| m == "/mnt/ofe-tmp"),
        "",
    );
    drop(busy);

    let r = client(
        &describe(&t),
        json!({"command": "Unmount", "args": ["/mnt/ofe-tmp"]}),
    );
    c.reply("Unmount", &r, json!({"status": true, "output": null}));
    c.eq("Unmount: frontend's value", r.data().clone(), json!(true));
    c.that(
        "Unmount: gone from init's mount namespace",
        !mounts_of(init).iter().any(|m| m == "/mnt/ofe-tmp"),
        format!("{:?}", mounts_of(init)),
    );
    c.eq(
        "Unmount: the directory below is empty (nsenter)",
        nsenter(init, &["-m"], &["ls", "-A", "/mnt/ofe-tmp"]),
        (0, String::new()),
    );

    let r = client(
        &describe(&t),
        json!({"command": "Unmount", "args": ["/mnt/ofe-tmp"]}),
    );
    c.reply("not mounted", &r, json!({"status": true, "output": null}));
    let r = client(
        &describe(&t),
        json!({"command": "Unmount", "args": ["/no/such/dir"]}),
    );
    c.reply(
        "no such directory",
        &r,
        json!({"status": true, "output": null}),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn stop_and_shutdown_with_a_message() {
    let mut c = Checks::new("stop_and_shutdown_with_a_message");
    let t = running_container("ost");
    let ct = t.container();

    for mode in ["stop", "shutdown"] {
        let pty = ContainerPty::open(ct);
        pty.register_root_login(ct);
        let text = format!("{mode} now");
        let r = client(
            &describe(&t),
            json!({"command": "Stop", "args": [mode], "kwargs": {"timeout": 60, "message": text}}),
        );
        let args = r.envelope()["args"].clone();
        let message = composed_message(&args[1]["message"]);
        c.eq(
            &format!("{mode}: envelope args"),
            args.clone(),
            json!([mode, {"timeout": 60, "message": message, "halt_from_inside": true}]),
        );
        c.that(
            &format!("{mode}: make_message's text"),
            is_bannered(&message, &text),
            format!("{message:?}"),
        );
        c.reply(mode, &r, json!({"status": true, "output": null}));
        c.eq(
            &format!("{mode}: frontend's value"),
            r.data().clone(),
            json!(true),
        );
        c.eq(
            &format!("{mode}: no fork_runner fallback"),
            r.json["fork_runner"].clone(),
            Value::Null,
        );
        c.eq(
            &format!("{mode}: what the terminal got"),
            pty.read(Duration::from_secs(5)).replace('\r', ""),
            message,
        );
        c.that(
            &format!("{mode}: the container stopped"),
            stops(&t, &r, Duration::from_secs(30)),
            t.lxc_state(),
        );
        c.eq(
            &format!("{mode}: runners left in the entry cgroup"),
            runners_left(ct),
            vec![],
        );
        if mode == "stop" {
            drop(pty);
            oracle::start(ct).unwrap();
        }
    }
}

/// Replaces `halt`, `poweroff` and `shutdown` in the container's system path with
/// `body`.
fn replace_halt_programs(ct: &Container, body: &str) {
    for dir in ["bin", "usr/bin", "sbin", "usr/sbin"] {
        for name in ["halt", "poweroff", "shutdown"] {
            let path = rootfs(ct).join(dir).join(name);
            if std::fs::symlink_metadata(&path).is_ok() || dir == "bin" {
                put_file(
                    ct,
                    &format!("{dir}/{name}"),
                    &format!("#!/bin/sh\n{body}\n"),
                    0o755,
                );
            }
        }
    }
}

/// osctld's runner halts from inside, then has LXC shut the container down, at least 60 s
/// long: a container that ignores both is not stopped, and the runner says so.
#[test]
fn stop_says_kill_required_when_the_container_does_not_shut_down() {
    let mut c = Checks::new("stop_says_kill_required_when_the_container_does_not_shut_down");
    let t = container("osk", &CreateOptions::default());
    let ct = t.container();
    // Busybox's init has no handler for SIGWINCH: LXC's halt signal is ignored.
    let config = ct.lxc_home.join(&ct.id).join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("lxc.signal.halt = SIGUSR1\n"));
    std::fs::write(
        &config,
        text.replace(
            "lxc.signal.halt = SIGUSR1\n",
            "lxc.signal.halt = SIGWINCH\n",
        ),
    )
    .unwrap();
    oracle::start(ct).unwrap();
    replace_halt_programs(ct, "exit 0");

    let started = Instant::now();
    let r = client(
        &describe(&t),
        json!({"command": "Stop", "args": ["stop"], "kwargs": {"timeout": 1}}),
    );
    eprintln!("Stop took {:?}", started.elapsed());
    c.eq(
        "envelope args (no message)",
        r.envelope()["args"].clone(),
        json!(["stop", {"timeout": 1, "halt_from_inside": true}]),
    );
    c.error_reply("stop", &r, "kill required");
    c.eq(
        "osctld's frontend kills through fork_runner next",
        r.json["fork_runner"].clone(),
        json!(["kill", {"timeout": 1}]),
    );
    c.eq(
        "the runner did not kill it",
        t.lxc_state(),
        "running".to_owned(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn stop_by_halt() {
    let mut c = Checks::new("stop_by_halt");
    let t = running_container("osh");
    let ct = t.container();
    let halt = rootfs(ct).join("bin/halt");
    let original = std::fs::read_link(&halt).unwrap();

    // A halt that fails: its status in osctld's words; the message went out first.
    put_file(ct, "bin/halt", "#!/bin/sh\nexit 3\n", 0o755);
    let pty = ContainerPty::open(ct);
    pty.register_root_login(ct);
    let r = client(
        &describe(&t),
        json!({"command": "StopByHalt", "kwargs": {"message": "halting"}}),
    );
    let message = composed_message(&r.envelope()["args"][0]["message"]);
    c.that(
        "failing halt: envelope message is make_message's",
        is_bannered(&message, "halting"),
        format!("{message:?}"),
    );
    c.error_reply("failing halt", &r, "halt failed with exit status 3");
    c.eq(
        "failing halt: what the terminal got",
        pty.read(Duration::from_secs(5)).replace('\r', ""),
        message,
    );
    c.eq(
        "failing halt: still running",
        t.lxc_state(),
        "running".to_owned(),
    );

    std::fs::remove_file(&halt).unwrap();
    std::os::unix::fs::symlink(&original, &halt).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(&halt, Some(id), Some(id)).unwrap();

    let r = client(
        &describe(&t),
        json!({"command": "StopByHalt", "kwargs": {}}),
    );
    c.eq(
        "no message: envelope args",
        r.envelope()["args"].clone(),
        json!([{"message": null}]),
    );
    c.reply("halt", &r, json!({"status": true, "output": null}));
    c.eq("halt: frontend's value", r.data().clone(), json!(true));
    c.that(
        "halt: the container stopped",
        stops(&t, &r, Duration::from_secs(30)),
        t.lxc_state(),
    );
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}

#[test]
fn stop_runit() {
    let mut c = Checks::new("stop_runit");
    let t = running_container("oru");
    let ct = t.container();
    let runit = rootfs(ct).join("etc/runit");
    let mode_size = |name: &str| {
        std::fs::symlink_metadata(runit.join(name))
            .ok()
            .map(|m| (m.mode() & 0o7777, m.len()))
    };

    // No /etc/runit: nothing to do.
    let r = client(&describe(&t), json!({"command": "StopRunit", "kwargs": {}}));
    c.eq(
        "no runit: envelope args",
        r.envelope()["args"].clone(),
        json!([{"message": null}]),
    );
    c.reply("no runit", &r, json!({"status": true, "output": null}));
    c.that("no runit: /etc/runit not created", !runit.exists(), "");

    // runit with a reboot file: stopit made executable, reboot emptied and mode 0.
    std::fs::create_dir(&runit).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(&runit, Some(id), Some(id)).unwrap();
    put_file(ct, "etc/runit/reboot", "x\n", 0o644);
    let pty = ContainerPty::open(ct);
    pty.register_root_login(ct);
    let r = client(
        &describe(&t),
        json!({"command": "StopRunit", "kwargs": {"message": "runit stops"}}),
    );
    let message = composed_message(&r.envelope()["args"][0]["message"]);
    c.that(
        "message: make_message's",
        is_bannered(&message, "runit stops"),
        format!("{message:?}"),
    );
    c.reply("runit", &r, json!({"status": true, "output": null}));
    c.eq("runit: frontend's value", r.data().clone(), json!(true));
    c.eq(
        "runit: stopit (mode, size)",
        mode_size("stopit"),
        Some((0o100, 0)),
    );
    c.eq(
        "runit: reboot (mode, size)",
        mode_size("reboot"),
        Some((0, 0)),
    );
    c.eq(
        "runit: what the terminal got",
        pty.read(Duration::from_secs(5)).replace('\r', ""),
        message,
    );

    // Without a reboot file: none is made (only its existence would trigger a reboot).
    std::fs::remove_file(runit.join("reboot")).unwrap();
    put_file(ct, "etc/runit/stopit", "old\n", 0o644);
    let r = client(&describe(&t), json!({"command": "StopRunit", "kwargs": {}}));
    c.reply(
        "runit without reboot",
        &r,
        json!({"status": true, "output": null}),
    );
    c.eq(
        "runit without reboot: stopit truncated, mode 0100",
        mode_size("stopit"),
        Some((0o100, 0)),
    );
    c.eq(
        "runit without reboot: no reboot file made",
        mode_size("reboot"),
        None,
    );
    c.eq("still running", t.lxc_state(), "running".to_owned());
    c.eq("runners left in the entry cgroup", runners_left(ct), vec![]);
}
