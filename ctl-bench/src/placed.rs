//! Running LXC's own tools the way the exec placement runs our runner: as the container's
//! user, inside its entry cgroups, with its environment — the fair baseline.
//!
//! This uses `Command::pre_exec`, whose closure makes only raw syscalls on data prepared
//! before the fork (pre-opened `cgroup.procs` fds, ids): nothing allocates or locks. The
//! benchmark runs these baselines from a single thread.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use ctl_core::{cgroup, Container, Placement};

/// A prepared way to start tools as the container's user in its cgroups.
pub(crate) struct Placed {
    procs: Vec<OwnedFd>,
    ugid: u32,
    env: Vec<(String, String)>,
}

impl Placed {
    pub fn new(ct: &Container) -> io::Result<Placed> {
        cgroup::create_entry(ct.entry_cgroup(), ct.ugid)?;
        let procs = cgroup::procs_files(ct.entry_cgroup())
            .iter()
            .map(|p| OpenOptions::new().write(true).open(p).map(OwnedFd::from))
            .collect::<io::Result<Vec<_>>>()?;
        let env = ctl_core::frontend::runner_environment(ct, Placement::Exec)
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect();
        Ok(Placed {
            procs,
            ugid: ct.ugid,
            env,
        })
    }

    /// Runs `argv` placed and waits; returns whether it exited 0.
    pub fn run(&self, argv: &[&str]) -> io::Result<bool> {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let fds: Vec<RawFd> = self.procs.iter().map(AsRawFd::as_raw_fd).collect();
        let id = self.ugid;
        // SAFETY: the closure runs between fork and exec and only makes raw syscalls on
        // values captured by move; it neither allocates nor takes locks.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                let gid = id as libc::gid_t;
                if libc::setgroups(1, &gid) != 0
                    || libc::setresgid(id, id, id) != 0
                    || libc::setresuid(id, id, id) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd.status()?.success())
    }
}
