//! `lxc-probe LXC_PATH NAME OP [ARG...]`: calls one ctl-lxc operation on a container and
//! prints one JSON line `{"ok":true,"value":...,"micros":N}` or `{"ok":false,"error":"..."}`.
//!
//! Tests spawn it as the container's user inside its entry cgroups (with
//! `ctl_provision::oracle::command_as_user`), which is how the ctl runner calls liblxc:
//! liblxc run as root on an unprivileged container does not behave like the user's tools.
//! Ops: version, defined, state, init_pid, freeze, unfreeze, stop, reboot, start,
//! reboot2 SECS, shutdown SECS, wait STATE SECS, running_config KEY, config KEY, config_file,
//! attach ARGV..., attach_fn, execute ARGV..., open_error.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ctl_lxc::{AttachOptions, AttachProgram, Container, ExecuteOptions, LxcError, State};
use serde_json::{json, Value};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: lxc-probe LXC_PATH NAME OP [ARG...]");
        return ExitCode::from(2);
    }
    let start = Instant::now();
    let result = run(Path::new(&args[0]), &args[1], &args[2], &args[3..]);
    let micros = start.elapsed().as_micros() as u64;
    let line = match result {
        Ok(value) => json!({"ok": true, "value": value, "micros": micros}),
        Err(e) => json!({"ok": false, "error": e.to_string(), "micros": micros}),
    };
    println!("{line}");
    ExitCode::SUCCESS
}

fn run(lxc_path: &Path, name: &str, op: &str, rest: &[String]) -> Result<Value, LxcError> {
    if op == "version" {
        return Ok(json!(ctl_lxc::version()?));
    }
    let ct = Container::open(name, lxc_path)?;
    let arg = |i: usize| rest.get(i).map(String::as_str).unwrap_or("");
    let argv: Vec<&str> = rest.iter().map(String::as_str).collect();
    Ok(match op {
        "defined" => json!(ct.is_defined()?),
        "state" => json!(ct.state()?.as_str()),
        "init_pid" => json!(ct.init_pid()?),
        "freeze" => json!(ct.freeze()?),
        "unfreeze" => json!(ct.unfreeze()?),
        "stop" => json!(ct.stop()?),
        "reboot" => json!(ct.reboot()?),
        "reboot2" => json!(ct.reboot2(Some(Duration::from_secs(arg(0).parse().unwrap_or(10))))?),
        "start" => json!(ct.start(false, &[])?),
        "shutdown" => json!(ct.shutdown(Duration::from_secs(arg(0).parse().unwrap_or(10)))?),
        "wait" => {
            let state: State = arg(0).parse().map_err(|e| LxcError::InvalidArgument {
                op: "wait",
                reason: format!("{e}"),
            })?;
            json!(ct.wait(
                state,
                Some(Duration::from_secs(arg(1).parse().unwrap_or(10)))
            )?)
        }
        "running_config" => json!(ct.get_running_config_item(arg(0))?),
        "config" => json!(ct.get_config_item(arg(0))?),
        "config_file" => json!(ct.config_file_name()?),
        "attach" => {
            let (mut reader, writer) = std::io::pipe().map_err(|e| LxcError::Os {
                op: "pipe",
                source: e,
            })?;
            let opts = AttachOptions {
                stdout: writer.as_raw_fd(),
                ..AttachOptions::default()
            };
            let pid = ct.attach(&opts, AttachProgram::Command(&argv))?;
            drop(writer);
            let mut out = String::new();
            let _ = reader.read_to_string(&mut out);
            let status = ctl_lxc::wait_pid(pid)?;
            json!({"code": status.code(), "signal": status.signal(), "stdout": out})
        }
        "attach_fn" => {
            // The function runs in the attached child; this probe is single-threaded, so
            // reading a file and writing to a pipe there is fine.
            let (mut reader, writer) = std::io::pipe().map_err(|e| LxcError::Os {
                op: "pipe",
                source: e,
            })?;
            let report = || {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                // The real uid as the container sees it (0 = root inside).
                let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                let uid = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("?")
                    .to_owned();
                let line = format!("{} uid={uid}", host.trim());
                let _ = (&writer).write_all(line.as_bytes());
                42
            };
            let pid = ct.attach(&AttachOptions::default(), AttachProgram::Function(&report))?;
            drop(writer);
            let mut out = String::new();
            let _ = reader.read_to_string(&mut out);
            let status = ctl_lxc::wait_pid(pid)?;
            json!({"code": status.code(), "signal": status.signal(), "stdout": out})
        }
        "execute" => {
            let (mut reader, writer) = std::io::pipe().map_err(|e| LxcError::Os {
                op: "pipe",
                source: e,
            })?;
            let opts = ExecuteOptions {
                stdout: Some(writer.as_raw_fd()),
                env: vec![
                    ("PATH".into(), ctl_lxc::SYSTEM_PATH.into()),
                    ("HOME".into(), "/root".into()),
                ],
                ..ExecuteOptions::default()
            };
            let status = ct.execute(&argv, &opts);
            drop(writer);
            let mut out = String::new();
            let _ = reader.read_to_string(&mut out);
            let status = status?;
            json!({"code": status.code(), "signal": status.signal(), "stdout": out})
        }
        other => {
            return Err(LxcError::InvalidArgument {
                op: "probe",
                reason: format!("unknown op {other}"),
            })
        }
    })
}
