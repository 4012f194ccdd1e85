//! The real `ctld` binary on a temporary socket, with real unprivileged LXC containers
//! provisioned in its temporary state directory (no mocks): concurrent clients, a client
//! that disconnects mid-call, cancellation and deadlines, bad requests, metrics and
//! SIGTERM. Fails (never skips) where LXC is missing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctl_core::Container;
use ctl_provision::{CreateOptions, Provisioner};
use serde_json::{json, Value};

/// How long a client waits for any one reply before the test fails.
const REPLY_LIMIT: Duration = Duration::from_secs(90);

/// How long what a cancelled call started may take to disappear.
const GONE_LIMIT: Duration = Duration::from_secs(5);

/// A running `ctld` with its own state directory and containers; on drop (also when the
/// test fails) the daemon is killed and every container, user, cgroup and file removed.
struct Setup {
    daemon: Option<Child>,
    socket: PathBuf,
    provisioner: Provisioner,
    containers: Vec<Container>,
    /// Every container name tried, for the cleanup.
    names: Vec<String>,
    dir: PathBuf,
}

impl Setup {
    /// `running` started containers in a fresh state dir, and ctld on it.
    fn new(tag: &str, running: usize, extra_args: &[&str]) -> Setup {
        ctl_test_support::require::require_lxc();
        let name = ctl_test_support::names::unique_name(tag);
        // Short, and traversable by the containers' mapped roots (the provisioner checks).
        let dir = std::env::temp_dir().join(format!("ctld-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let provisioner = Provisioner::new(&dir.join("state")).expect("provisioner");
        let mut setup = Setup {
            daemon: None,
            socket: dir.join("ctld.sock"),
            provisioner,
            containers: Vec::new(),
            names: Vec::new(),
            dir,
        };
        for i in 0..running {
            let ct_name = format!("{name}{}", (b'a' + i as u8) as char);
            // Recorded before it exists: a failed create is still destroyed on drop.
            setup.names.push(ct_name.clone());
            let ct = setup
                .provisioner
                .create(&ct_name, &CreateOptions::default())
                .unwrap_or_else(|e| panic!("creating {ct_name}: {e}"));
            ctl_provision::oracle::start(&ct).unwrap_or_else(|e| panic!("starting {ct_name}: {e}"));
            setup.containers.push(ct);
        }
        setup.start_daemon(extra_args);
        setup
    }

    fn start_daemon(&mut self, extra_args: &[&str]) {
        let exe = env!("CARGO_BIN_EXE_ctld");
        let child = Command::new(exe)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(self.provisioner.state_dir())
            .args(extra_args)
            // The daemon is its own runner: frontend and runner from this very build.
            .env(ctl_core::frontend::RUNNER_ENV, exe)
            .env("RUST_LOG", "ctld=debug,info")
            .stdin(Stdio::null())
            // Files: nothing of a command may reach the daemon's own stdio.
            .stdout(self.log_file("stdout"))
            .stderr(self.log_file("stderr"))
            .spawn()
            .expect("starting ctld");
        self.daemon = Some(child);
        let started = Instant::now();
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("ctld exited at start: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "ctld did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_file(&self, which: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("ctld.{which}")))
            .unwrap()
    }

    /// What the daemon wrote to its stdout or stderr so far.
    fn output(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("ctld.{which}"))).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.daemon.as_ref().unwrap().id() as i32
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket)
    }

    fn ct(&self, i: usize) -> &Container {
        &self.containers[i]
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        if std::thread::panicking() {
            eprintln!("ctld's stderr:\n{}", self.output("stderr"));
        }
        for name in &self.names {
            if let Err(e) = self.provisioner.destroy(name) {
                eprintln!("cleanup: destroying {name}: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One connection, blocking, one JSON line at a time.
struct Client {
    write: UnixStream,
    read: BufReader<UnixStream>,
}

impl Client {
    fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket).expect("connecting to ctld");
        stream.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
        let mut client = Client {
            write: stream.try_clone().unwrap(),
            read: BufReader::new(stream),
        };
        let greeting = client.recv();
        assert!(
            greeting["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("ctld ")),
            "greeting: {greeting}"
        );
        client
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).unwrap();
        self.write.write_all(b"\n").unwrap();
    }

    fn send(&mut self, request: &Value) {
        self.send_raw(request.to_string().as_bytes());
    }

    /// The next reply line, parsed; the line must be one JSON object.
    fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self.read.read_line(&mut line).expect("reading a reply");
        assert!(n > 0, "ctld closed the connection");
        assert!(line.ends_with('\n'), "a partial reply: {line:?}");
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line:?}"));
        assert!(value.is_object(), "{value}");
        value
    }

    fn call(&mut self, request: Value) -> Value {
        self.send(&request);
        self.recv()
    }

    /// The response of a request that must succeed.
    #[track_caller]
    fn ok(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        assert_eq!(reply["status"], json!(true), "{request} -> {reply}");
        reply["response"].clone()
    }
}

/// Asserts a `status:false` reply of this kind, whose message contains `part`.
#[track_caller]
fn assert_failure(reply: &Value, kind: &str, part: &str) {
    assert_eq!(reply["status"], json!(false), "{reply}");
    assert_eq!(reply["kind"], json!(kind), "{reply}");
    let message = reply["message"].as_str().expect("a message");
    assert!(message.contains(part), "{message:?} lacks {part:?}");
    assert!(!message.contains('\n'), "{message:?}");
}

fn exec(ct: &str, script: &str) -> Value {
    json!({"cmd": "ct_exec", "opts": {"id": ct, "cmd": ["sh", "-c", script]}})
}

/// A process as /proc shows it.
#[derive(Debug)]
struct Proc {
    pid: i32,
    ppid: i32,
    zombie: bool,
    cmdline: String,
    cgroup: String,
}

fn processes() -> Vec<Proc> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r.to_owned()) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let zombie = fields.next() == Some("Z");
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            })
            .unwrap_or_default();
        let comm = stat
            .split_once(" (")
            .and_then(|(_, r)| r.rsplit_once(") "))
            .map(|(c, _)| c.to_owned())
            .unwrap_or_default();
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        all.push(Proc {
            pid,
            ppid,
            zombie,
            // A zombie has no cmdline: its comm then (e.g. the runner's title cut short).
            cmdline: if cmdline.is_empty() { comm } else { cmdline },
            cgroup,
        });
    }
    all
}

/// The processes of a call on `ct` running `program` (its runner or the program inside):
/// runners by their title (`ctl: <pool>:<id> runner:exec`), the program by its command
/// line among the processes in the container's cgroups. Zombies are left out unless they
/// are the daemon's children (the daemon must reap its runners; orphans are init's).
fn call_processes(ct: &Container, program: &str, daemon: i32) -> Vec<String> {
    let title = format!("ctl: {} runner:", ct.ident());
    let cgroup = format!(":/{}/", ct.cgroup_path);
    processes()
        .into_iter()
        .filter(|p| !p.zombie || p.ppid == daemon)
        .filter(|p| {
            p.cmdline.starts_with(&title)
                || (p.cgroup.contains(&cgroup) && p.cmdline == program)
                || (p.ppid == daemon && p.cmdline.contains("runner:"))
        })
        .map(|p| {
            format!(
                "{} (ppid {}{}) {}",
                p.pid,
                p.ppid,
                if p.zombie { ", zombie" } else { "" },
                p.cmdline
            )
        })
        .collect()
}

/// Waits until `program` runs inside `ct` (it started); fails after 20 s.
#[track_caller]
fn wait_running(ct: &Container, program: &str) {
    let cgroup = format!(":/{}/", ct.cgroup_path);
    let started = Instant::now();
    while !processes()
        .iter()
        .any(|p| !p.zombie && p.cgroup.contains(&cgroup) && p.cmdline == program)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{program:?} never ran in {}",
            ct.id
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until nothing of a call running `program` on `ct` is left; fails after
/// [`GONE_LIMIT`], naming what is left.
#[track_caller]
fn assert_nothing_left(ct: &Container, program: &str, daemon: i32) {
    let started = Instant::now();
    loop {
        let left = call_processes(ct, program, daemon);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < GONE_LIMIT,
            "left behind after {GONE_LIMIT:?}: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A barrier that fails the test instead of hanging when a thread never arrives (it
/// panicked).
struct Barrier {
    state: std::sync::Mutex<(usize, usize)>,
    cond: std::sync::Condvar,
    n: usize,
}

impl Barrier {
    fn new(n: usize) -> Barrier {
        Barrier {
            state: std::sync::Mutex::new((0, 0)),
            cond: std::sync::Condvar::new(),
            n,
        }
    }

    fn wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.n {
            *state = (0, generation + 1);
            self.cond.notify_all();
            return;
        }
        let (state, timeout) = self
            .cond
            .wait_timeout_while(state, REPLY_LIMIT, |s| s.1 == generation)
            .unwrap_or_else(|e| e.into_inner());
        drop(state);
        assert!(!timeout.timed_out(), "another client thread failed");
    }
}

/// 1. Eight clients, each on its own connection, on two running containers at once. In
///    each round one container takes execs and `ct_command`s from every client while
///    the other is frozen and thawed by one client (strict state checks) and asked for
///    its state by the rest; the next round swaps them (Exec refuses a frozen container,
///    so the two never overlap on one container). Pipelined untagged requests come back
///    in order, tagged ones by their id, and every reply is its own request's.
#[test]
fn concurrent_clients_get_their_own_replies() {
    let setup = Setup::new("dc", 2, &[]);
    let ids: Vec<String> = setup.containers.iter().map(|c| c.id.clone()).collect();
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 4;
    let barrier = Barrier::new(CLIENTS);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..CLIENTS {
            let ids = &ids;
            let barrier = &barrier;
            let socket = setup.socket.clone();
            scope.spawn(move || {
                let mut client = Client::connect(&socket);
                for round in 0..ROUNDS {
                    let busy = &ids[round % 2];
                    let other = &ids[(round + 1) % 2];
                    let n = t * 100 + round;
                    // Pipelined, untagged: answered in the order sent.
                    client.send(&exec(busy, &format!("echo {n}; echo err{n} >&2; exit $(({n} % 7))")));
                    client.send(&json!({"cmd": "ct_state", "opts": {"id": other}}));
                    client.send(&json!({"cmd": "ct_command", "opts": {"id": busy, "name": "Exec", "args": [["sh", "-c", format!("exit {}", n % 5)]]}}));
                    client.send(&json!({"cmd": "ping"}));
                    client.send(&json!({"cmd": "ct_command", "opts": {"id": busy, "name": "State"}}));
                    client.send(&json!({"cmd": "ct_command", "opts": {"id": other, "name": "GetHostname"}}));
                    let r = client.recv();
                    assert!(r.get("id").is_none(), "{r}");
                    assert_eq!(
                        r,
                        json!({"status": true, "response": {"exitstatus": n % 7, "stdout": format!("{n}\n"), "stderr": format!("err{n}\n"), "truncated": false}}),
                        "exec {n}"
                    );
                    let r = client.recv();
                    assert_eq!(r["response"]["id"], json!(other), "{r}");
                    let state = r["response"]["state"].as_str().unwrap_or_default();
                    assert!(["running", "frozen", "freezing", "thawed"].contains(&state), "{r}");
                    assert!(r["response"]["init_pid"].as_i64().is_some_and(|p| p > 1), "{r}");
                    let r = client.recv();
                    assert_eq!(r, json!({"status": true, "response": n % 5}), "ct_command Exec {n}");
                    assert_eq!(client.recv(), json!({"status": true, "response": "pong"}));
                    let r = client.recv();
                    assert_eq!(r["response"]["id"], json!(busy), "{r}");
                    assert_eq!(r["response"]["state"], json!("running"), "{r}");
                    // Through GetHostname's own frontend (it opens the UTS namespace).
                    assert_eq!(client.recv(), json!({"status": true, "response": other}));

                    // Tagged: answered when done (the slow one last), matched by id.
                    let slow = format!("{t}-{round}-slow");
                    let fast = format!("{t}-{round}-fast");
                    let mut request = exec(busy, &format!("sleep 0.4; echo {slow}"));
                    request["id"] = json!(slow);
                    client.send(&request);
                    let mut request = exec(busy, &format!("echo {fast}; exit 1"));
                    request["id"] = json!(fast);
                    client.send(&request);
                    client.send(&json!({"id": n, "cmd": "ct_state", "opts": {"id": other}}));
                    let mut seen = Vec::new();
                    for _ in 0..3 {
                        let r = client.recv();
                        assert_eq!(r["status"], json!(true), "{r}");
                        if r["id"] == json!(slow) {
                            assert_eq!(r["response"]["stdout"], json!(format!("{slow}\n")), "{r}");
                            assert_eq!(r["response"]["exitstatus"], json!(0), "{r}");
                        } else if r["id"] == json!(fast) {
                            assert_eq!(r["response"]["stdout"], json!(format!("{fast}\n")), "{r}");
                            assert_eq!(r["response"]["exitstatus"], json!(1), "{r}");
                        } else {
                            assert_eq!(r["id"], json!(n), "{r}");
                            assert_eq!(r["response"]["id"], json!(other), "{r}");
                        }
                        seen.push(r["id"].clone());
                    }
                    assert_eq!(seen.last(), Some(&json!(slow)), "the slow exec came last: {seen:?}");
                    seen.sort_by_key(|v| v.to_string());
                    let mut expected = vec![json!(slow), json!(fast), json!(n)];
                    expected.sort_by_key(|v| v.to_string());
                    assert_eq!(seen, expected);

                    // One client per round freezes and thaws the other container.
                    if t == round % CLIENTS {
                        for _ in 0..3 {
                            assert_eq!(client.ok(json!({"id": "f", "cmd": "ct_freeze", "opts": {"id": other}})), json!(true));
                            let state = client.ok(json!({"cmd": "ct_state", "opts": {"id": other}}));
                            assert_eq!(state["state"], json!("frozen"), "{state}");
                            assert_eq!(client.ok(json!({"id": "u", "cmd": "ct_unfreeze", "opts": {"id": other}})), json!(true));
                            let state = client.ok(json!({"cmd": "ct_state", "opts": {"id": other}}));
                            assert_eq!(state["state"], json!("running"), "{state}");
                        }
                    }
                    barrier.wait();
                }
            });
        }
    });
    eprintln!(
        "{CLIENTS} clients x {ROUNDS} rounds: {:?}",
        started.elapsed()
    );
    // The programs' output went to the clients only.
    assert_eq!(setup.output("stdout"), "");
    let stderr = setup.output("stderr");
    assert!(stderr.contains("ctld listening"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("err")), "{stderr}");
    let mut client = setup.client();
    for ct in &setup.containers {
        let state = client.ok(json!({"cmd": "ct_state", "opts": {"id": ct.id}}));
        assert_eq!(state["state"], json!("running"), "{state}");
        assert_eq!(ctl_provision::oracle::lxc_state(ct).unwrap(), "running");
        assert!(call_processes(ct, "sh", setup.pid()).is_empty());
    }
}

/// 2. A client that disconnects mid-call cancels it: its runner and the program inside
///    are gone within a few seconds, and the daemon still answers.
#[test]
fn disconnecting_client_cancels_its_calls() {
    let setup = Setup::new("dd", 1, &[]);
    let ct = setup.ct(0);
    let mut client = setup.client();
    // One tagged and one untagged call, both cut off.
    client
        .send(&json!({"id": "s", "cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sleep", "30"]}}));
    client.send(&json!({"cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sleep", "31"]}}));
    wait_running(ct, "sleep 30");
    wait_running(ct, "sleep 31");
    let title = format!("ctl: {} runner:exec", ct.ident());
    assert!(
        processes()
            .iter()
            .any(|p| p.cmdline == title && p.ppid == setup.pid()),
        "no runner {title:?} of the daemon while the call runs"
    );
    let cut = Instant::now();
    drop(client);
    assert_nothing_left(ct, "sleep 30", setup.pid());
    assert_nothing_left(ct, "sleep 31", setup.pid());
    eprintln!("disconnect: everything gone after {:?}", cut.elapsed());
    assert!(
        cut.elapsed() < Duration::from_secs(25),
        "the sleep ended by itself?"
    );
    let mut client = setup.client();
    assert_eq!(client.ok(json!({"cmd": "ping"})), json!("pong"));
    let state = client.ok(json!({"cmd": "ct_state", "opts": {"id": ct.id}}));
    assert_eq!(state["state"], json!("running"));

    // A client that only shuts down its sending side still gets its replies.
    let mut client = setup.client();
    client.send(&exec(&ct.id, "sleep 0.5; echo half"));
    client.write.shutdown(std::net::Shutdown::Write).unwrap();
    let r = client.recv();
    assert_eq!(r["response"]["stdout"], json!("half\n"), "{r}");
}

/// 3. Deadlines and cancellation by id end the call and leave nothing behind; the
///    connection stays usable.
#[test]
fn timeout_and_cancel_leave_nothing_behind() {
    let setup = Setup::new("dt", 1, &[]);
    let ct = setup.ct(0);
    let mut client = setup.client();

    let started = Instant::now();
    let r = client.call(
        json!({"cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sleep", "30"]}, "timeout": 1.5}),
    );
    let took = started.elapsed();
    assert_failure(&r, "timeout", "timed out after 1.5s");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_nothing_left(ct, "sleep 30", setup.pid());

    client.send(
        &json!({"id": "long", "cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sleep", "32"]}}),
    );
    wait_running(ct, "sleep 32");
    let started = Instant::now();
    client.send(&json!({"id": "c", "cmd": "cancel", "opts": {"id": "long"}}));
    let mut replies = [client.recv(), client.recv()];
    replies.sort_by_key(|r| r["id"].to_string());
    assert_eq!(
        replies[0],
        json!({"id": "c", "status": true, "response": true})
    );
    assert_eq!(replies[1]["id"], json!("long"));
    assert_failure(&replies[1], "cancelled", "cancelled");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_nothing_left(ct, "sleep 32", setup.pid());

    // Nothing to cancel any more.
    let r = client.call(json!({"cmd": "cancel", "opts": {"id": "long"}}));
    assert_failure(&r, "not_found", "no request with id \"long\"");
    // Same connection, still usable.
    let r = client.ok(exec(&ct.id, "echo after"));
    assert_eq!(r["stdout"], json!("after\n"));
}

/// 4. Bad requests get one `status:false` line each; the connection stays usable.
#[test]
fn bad_requests_get_one_line_errors() {
    let setup = Setup::new("db", 1, &[]);
    let ct = setup.ct(0);
    let mut client = setup.client();

    client.send_raw(b"{\"cmd\": \"ct_state\", ");
    assert_failure(
        &client.recv(),
        "bad_request",
        "syntax error, expected a valid JSON",
    );
    client.send_raw(b"[1, 2]");
    assert_failure(&client.recv(), "bad_request", "must be a JSON object");
    let r = client.call(json!({"id": 5, "cmd": "ct_state", "opts": {"id": "nosuch"}}));
    assert_eq!(r["id"], json!(5));
    assert_failure(&r, "not_found", "no container \"nosuch\"");
    let r = client.call(json!({"cmd": "ct_state", "opts": {"id": "../etc"}}));
    assert_failure(&r, "not_found", "");
    let r =
        client.call(json!({"cmd": "ct_command", "opts": {"id": ct.id, "name": "NoSuchCommand"}}));
    assert_failure(&r, "unknown_command", "NoSuchCommand");
    let r = client.call(json!({"cmd": "ct_frobnicate", "opts": {"id": ct.id}}));
    assert_failure(&r, "unknown_command", "ct_frobnicate");
    let r = client.call(json!({"cmd": "ct_exec", "opts": {"id": ct.id}}));
    assert_failure(&r, "bad_request", "missing opts.cmd");
    let r = client.call(json!({"cmd": "ct_exec", "opts": {"id": ct.id, "cmd": "ls"}}));
    assert_failure(&r, "bad_request", "opts.cmd");
    let r = client.call(json!({"cmd": "ct_state"}));
    assert_failure(&r, "bad_request", "missing opts.id");
    let r = client.call(json!({"opts": {}}));
    assert_failure(&r, "bad_request", "missing `cmd`");
    let r = client.call(json!({"cmd": "ping", "timeout": -1}));
    assert_failure(&r, "bad_request", "timeout");
    let r = client.call(json!({"cmd": "ct_stop", "opts": {"id": ct.id, "mode": "sideways"}}));
    assert_eq!(r["status"], json!(false), "{r}");
    // The command refused it: the container runs on.
    assert_eq!(ctl_provision::oracle::lxc_state(ct).unwrap(), "running");

    // Longer than 1 MiB: refused, and the rest of the line skipped.
    let mut huge = br#"{"cmd": "ping", "opts": {"pad": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', (1 << 20) + 10));
    huge.extend(br#""}}"#);
    client.send_raw(&huge);
    assert_failure(&client.recv(), "bad_request", "longer than 1048576 bytes");
    // The error replies came in order, and the connection still works.
    assert_eq!(client.ok(json!({"cmd": "ping"})), json!("pong"));
    assert_eq!(
        client.ok(json!({"cmd": "ct_list"})),
        json!([{"id": ct.id, "pool": ct.pool, "user": ct.user}])
    );
    let r = client.ok(exec(&ct.id, "echo fine"));
    assert_eq!(r["stdout"], json!("fine\n"));
}

/// 5. `metrics` is Prometheus text with the daemon's request counters.
#[test]
fn metrics_count_requests() {
    let setup = Setup::new("dm", 1, &[]);
    let ct = setup.ct(0);
    let mut client = setup.client();
    for _ in 0..3 {
        client.ok(json!({"cmd": "ping"}));
    }
    client.ok(json!({"cmd": "ct_state", "opts": {"id": ct.id}}));
    client.ok(exec(&ct.id, "true"));
    assert_failure(
        &client.call(json!({"cmd": "ct_state", "opts": {"id": "nosuch"}})),
        "not_found",
        "",
    );
    client.send_raw(b"not json");
    client.recv();
    let text = client.ok(json!({"cmd": "metrics"}));
    let text = text.as_str().expect("the metrics are text");
    eprintln!("{text}");
    for line in [
        "# TYPE ctld_requests_total counter",
        "ctld_requests_total{cmd=\"ping\"} 3",
        "ctld_requests_total{cmd=\"ct_state\"} 2",
        "ctld_requests_total{cmd=\"ct_exec\"} 1",
        "ctld_requests_total{cmd=\"invalid\"} 1",
        "ctld_requests_total{cmd=\"metrics\"} 1",
        "ctld_request_errors_total{cmd=\"ct_state\",kind=\"not_found\"} 1",
        "ctld_request_errors_total{cmd=\"invalid\",kind=\"bad_request\"} 1",
        "ctld_connections 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in the metrics"
        );
    }
    assert!(
        !text.contains("ctld_request_errors_total{cmd=\"ping\""),
        "pings did not fail"
    );
    assert!(text.contains("ctld_request_duration_seconds"), "{text}");
    // The framework's own metrics (`ctl_core::observe`) reach the daemon's recorder: the
    // exec started one runner; the container's lock was waited for.
    let framework = |name: &str, labels: &[&str], value: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!("{name}{{"))
                && labels.iter().all(|label| l.contains(label))
                && l.ends_with(&format!(" {value}"))
        })
    };
    assert!(
        framework(
            "ctl_calls_total",
            &["command=\"Exec\"", "mode=\"cold\"", "outcome=\"ok\""],
            "1"
        ),
        "{text}"
    );
    assert!(
        framework("ctl_calls_in_flight", &["command=\"Exec\""], "0"),
        "{text}"
    );
    assert!(text.contains("ctl_lock_wait_seconds"), "{text}");
}

/// 6. SIGTERM: requests in flight finish within the grace period, those still running
///    after it are dropped (their runners killed); the daemon exits 0 and removes its
///    socket.
#[test]
fn sigterm_drains_then_cancels_and_cleans_up() {
    let mut setup = Setup::new("ds", 1, &["--grace", "3"]);
    let ct = setup.ct(0).clone();
    let mut client = setup.client();
    client.send(&json!({"id": "short", "cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sh", "-c", "sleep 1; echo finished"]}}));
    client.send(
        &json!({"id": "long", "cmd": "ct_exec", "opts": {"id": ct.id, "cmd": ["sleep", "33"]}}),
    );
    wait_running(&ct, "sleep 33");
    let mut idle = setup.client();
    let daemon = setup.pid();
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    // The request that ends within the grace period is answered.
    let r = client.recv();
    assert_eq!(r["id"], json!("short"), "{r}");
    assert_eq!(r["response"]["stdout"], json!("finished\n"), "{r}");
    // The idle connection is closed at once.
    let mut line = String::new();
    assert_eq!(idle.read.read_line(&mut line).unwrap(), 0, "{line:?}");
    // The other is dropped at the end of the grace period: no reply, the connection ends.
    let mut line = String::new();
    assert_eq!(client.read.read_line(&mut line).unwrap(), 0, "{line:?}");
    let status = loop {
        if let Some(status) = setup.daemon.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "ctld did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    eprintln!("SIGTERM: exited {status} after {took:?}");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        took >= Duration::from_secs(3),
        "left before the grace period: {took:?}"
    );
    assert!(!setup.socket.exists(), "the socket file is left");
    assert_nothing_left(&ct, "sleep 33", daemon);
    let title = format!("ctl: {} runner:", ct.ident());
    assert!(
        !processes().iter().any(|p| p.cmdline.starts_with(&title)),
        "a runner is left"
    );
    // A new daemon takes the socket path over.
    setup.daemon = None;
    setup.start_daemon(&[]);
    assert_eq!(setup.client().ok(json!({"cmd": "ping"})), json!("pong"));
}

/// A second daemon refuses a socket another one answers on; a stale socket file is
/// replaced; the socket is the owner's only.
#[test]
fn socket_is_exclusive_and_private() {
    let setup = Setup::new("dk", 0, &[]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&setup.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let out = Command::new(env!("CARGO_BIN_EXE_ctld"))
        .arg("--socket")
        .arg(&setup.socket)
        .arg("--state-dir")
        .arg(setup.provisioner.state_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another daemon answers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(setup.client().ok(json!({"cmd": "ping"})), json!("pong"));

    // A stale socket (bound, nobody listening) is replaced.
    let stale = setup.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut other = Command::new(env!("CARGO_BIN_EXE_ctld"))
        .arg("--socket")
        .arg(&stale)
        .arg("--state-dir")
        .arg(setup.provisioner.state_dir())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let reachable = loop {
        if UnixStream::connect(&stale).is_ok() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) || other.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = other.kill();
    let _ = other.wait();
    assert!(reachable, "ctld did not take over the stale socket");
}

/// `ct_stop` (its modes, through Stop's frontend) and `ct_start`, checked against LXC's own
/// tools.
#[test]
fn stop_and_start() {
    let setup = Setup::new("dp", 1, &[]);
    let ct = setup.ct(0);
    let mut client = setup.client();
    let started = Instant::now();
    let r = client.ok(json!({"cmd": "ct_stop", "opts": {"id": ct.id, "mode": "kill"}}));
    assert_eq!(r, json!(true));
    assert_eq!(ctl_provision::oracle::lxc_state(ct).unwrap(), "stopped");
    let state = client.ok(json!({"cmd": "ct_state", "opts": {"id": ct.id}}));
    assert_eq!(
        state,
        json!({"id": ct.id, "state": "stopped", "init_pid": null})
    );
    let r = client.call(exec(&ct.id, "true"));
    assert_failure(&r, "command", "is not running");
    assert_eq!(
        client.ok(json!({"cmd": "ct_start", "opts": {"id": ct.id}})),
        json!(true)
    );
    assert_eq!(ctl_provision::oracle::lxc_state(ct).unwrap(), "running");
    let r = client.ok(exec(&ct.id, "echo back"));
    assert_eq!(r["stdout"], json!("back\n"));
    // A clean stop within its timeout (busybox's init halts on SIGPWR).
    let r =
        client.ok(json!({"cmd": "ct_stop", "opts": {"id": ct.id, "mode": "stop", "timeout": 20}}));
    assert_eq!(r, json!(true));
    assert_eq!(ctl_provision::oracle::lxc_state(ct).unwrap(), "stopped");
    // Stopping a stopped container succeeds (osctld's rule).
    let r = client.ok(json!({"cmd": "ct_stop", "opts": {"id": ct.id}}));
    assert_eq!(r, json!(true));
    eprintln!("stop/start/stop: {:?}", started.elapsed());
}
