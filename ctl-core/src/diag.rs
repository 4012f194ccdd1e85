//! Diagnostic commands every runner has: [`Identity`] shows what a runner process sees
//! (operators debug placements with it; the tests prove placements with it) and [`Ping`]
//! echoes its argument (the no-op that benchmarks measure).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::container::{Rlimit, RlimitValue, RLIMIT_NAMES};
use crate::{container_command, CommandError, RunnerContext};

/// What the runner process sees of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    pub pid: i32,
    pub ppid: i32,
    /// Real, effective and saved uid.
    pub uid: [u32; 3],
    /// Real, effective and saved gid.
    pub gid: [u32; 3],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The lines of `/proc/self/cgroup`.
    pub cgroups: Vec<String>,
    /// Every rlimit by short name.
    pub rlimits: BTreeMap<String, Rlimit>,
    /// Open fd numbers (without the one used to list them).
    pub fds: Vec<i32>,
    /// Names of the environment variables.
    pub env: Vec<String>,
    /// The value of `PATH` (`Container::runner_path`), if set.
    #[serde(default)]
    pub path: Option<String>,
    /// Capability sets as in `/proc/self/status` (hex bit masks).
    pub capabilities: Capabilities,
    pub no_new_privs: bool,
    /// The process title (`argv[0]`) and `comm`.
    pub title: String,
    pub comm: String,
    /// The process group id and session id.
    pub pgid: i32,
    pub sid: i32,
    /// Parent-death signal (0 = none).
    pub pdeathsig: i32,
    /// Peak resident set size of the runner so far (`VmHWM`), in KiB. (The rusage of a
    /// `posix_spawn`ed child cannot tell: the kernel folds the caller's high-water mark
    /// into a vfork child's `ru_maxrss` at exec.)
    #[serde(default)]
    pub peak_rss_kib: u64,
    /// The executable (`/proc/self/exe`): which runner binary ran the command.
    #[serde(default)]
    pub exe: String,
}

/// Capability sets, each a bit mask.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// Report the identity of the runner process: credentials, cgroups, rlimits, fds,
/// environment, capabilities.
///
/// Runs in the exec placement by default; call it with another placement to inspect that
/// one (`Call::placement`).
#[container_command(placement = exec, static_runner, lock = none)]
pub fn identity(_ctx: &mut RunnerContext) -> Result<IdentityInfo, CommandError> {
    identity_of_self()
}

/// Echo the argument back: the cheapest command there is.
#[container_command(placement = exec, static_runner, lock = none)]
pub fn ping(_ctx: &mut RunnerContext, value: Value) -> Result<Value, CommandError> {
    Ok(value)
}

/// Reads [`IdentityInfo`] of the calling process.
pub(crate) fn identity_of_self() -> Result<IdentityInfo, CommandError> {
    let (ruid, euid, suid) = {
        let r = nix::unistd::getresuid()?;
        (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw())
    };
    let (rgid, egid, sgid) = {
        let r = nix::unistd::getresgid()?;
        (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw())
    };
    let groups = nix::unistd::getgroups()?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")?
        .lines()
        .map(str::to_owned)
        .collect();

    let mut rlimits = BTreeMap::new();
    for name in RLIMIT_NAMES {
        let resource = ctl_process::rlimit_resource(name).expect("known name");
        if let Ok((soft, hard)) = nix::sys::resource::getrlimit(resource) {
            rlimits.insert(
                (*name).to_owned(),
                Rlimit {
                    soft: RlimitValue::from_raw(soft),
                    hard: RlimitValue::from_raw(hard),
                },
            );
        }
    }

    let fds = open_fds()?;
    let mut env: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    env.sort();

    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let hex = |name: &str| u64::from_str_radix(&field(name), 16).unwrap_or(0);
    let capabilities = Capabilities {
        inheritable: hex("CapInh"),
        permitted: hex("CapPrm"),
        effective: hex("CapEff"),
        bounding: hex("CapBnd"),
        ambient: hex("CapAmb"),
    };
    let no_new_privs = field("NoNewPrivs") == "1";
    let peak_rss_kib = field("VmHWM")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(0);
    let title = std::env::args_os()
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let comm = std::fs::read_to_string("/proc/self/comm")?
        .trim_end()
        .to_owned();
    let mut pdeathsig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeathsig as *mut libc::c_int) };

    Ok(IdentityInfo {
        pid: std::process::id() as i32,
        ppid: nix::unistd::getppid().as_raw(),
        uid: [ruid, euid, suid],
        gid: [rgid, egid, sgid],
        groups,
        cgroups,
        rlimits,
        fds,
        env,
        path: std::env::var("PATH").ok(),
        capabilities,
        no_new_privs,
        title,
        comm,
        pgid: nix::unistd::getpgrp().as_raw(),
        sid: nix::unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(-1),
        pdeathsig,
        peak_rss_kib,
        exe: std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// Open fds of this process, without the directory fd used to list them.
pub fn open_fds() -> std::io::Result<Vec<i32>> {
    let dir = std::fs::read_dir("/proc/self/fd")?;
    let mut fds = Vec::new();
    for entry in dir {
        let entry = entry?;
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            fds.push(fd);
        }
    }
    // The listing's own fd no longer exists once the iterator is dropped.
    fds.retain(|fd| {
        // SAFETY: F_GETFD only inspects the fd number.
        let flags = unsafe { libc::fcntl(*fd, libc::F_GETFD) };
        flags != -1
    });
    fds.sort_unstable();
    Ok(fds)
}
