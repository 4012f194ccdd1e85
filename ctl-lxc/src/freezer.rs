//! Freezing and thawing through the container's v1 freezer cgroup, without liblxc.
//!
//! liblxc's freeze on the v1 freezer is: tell the monitor `FREEZING`, write `FROZEN` to the
//! payload cgroup's `freezer.state`, read it back until the kernel says `FROZEN` (sleeping
//! a whole second between reads), tell the monitor `FROZEN`. Thawing is the same with
//! `THAWED`, then `RUNNING`. Before any of it a caller must load liblxc (about 0.4 ms here),
//! parse the container's config and ask the monitor where the cgroup is.
//!
//! This module does the same steps directly: the cgroup file is written through the
//! cgroup file system, and the monitor is told the new state over LXC's command socket
//! ([`crate::command_socket`]), so `lxc-info`, liblxc's `state()` and `lxc-wait`
//! listeners see exactly what they see after liblxc's freeze. The read-back polls after
//! 0.1 ms, 0.2 ms, ... up to 10 ms apart instead of sleeping a second.
//!
//! The caller says where the container's cgroup is ([`Freezer::new`]); `commands::support`
//! builds one for a frontend and for a runner. Two callers in the built-in commands:
//!
//! - `Freeze`'s and `Unfreeze`'s frontends, in the daemon, as root: no runner at all. Root
//!   writes only a file on a cgroup file system (checked on the open file) in the payload
//!   cgroup below the container's cgroup, which holds nothing but the container's
//!   own processes; osctld's frontend thaws that tree as root before a kill, too.
//! - their runner halves, as the container's user inside its entry cgroup (for callers that
//!   invoke the runner by name, and warm runners).
//!
//! Whatever this path cannot vouch for is left to liblxc in the runner
//! ([`Outcome::Unavailable`], nothing changed): no v1 freezer (a cgroup v2 host), no
//! monitor (a stopped or undefined container: liblxc gives the precise error), a monitor
//! in a transitional state (starting, stopping), a payload cgroup that is not where LXC
//! puts it by default.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::find_payload;
use crate::command_socket::{self, CommandSocketError};
use crate::State as LxcState;

/// One container's freezer, as seen by one caller.
#[derive(Clone, Debug)]
pub struct Freezer<'a> {
    /// The directory of the container's cgroup (where LXC puts the payload) in the v1
    /// freezer hierarchy.
    base: PathBuf,
    lxc_home: &'a Path,
    id: &'a str,
    /// The uids a genuine monitor may run as.
    trusted: [u32; 2],
    deadline: Option<Instant>,
}

impl<'a> Freezer<'a> {
    /// The freezer of container `id` under `lxc_home`, whose cgroup is the directory
    /// `base` of the v1 freezer hierarchy; its monitor must run as one of `trusted` (the
    /// container's user, root); every step ends by `deadline`.
    pub fn new(
        base: PathBuf,
        lxc_home: &'a Path,
        id: &'a str,
        trusted: [u32; 2],
        deadline: Option<Instant>,
    ) -> Freezer<'a> {
        Freezer {
            base,
            lxc_home,
            id,
            trusted,
            deadline,
        }
    }
}

/// What [`set_frozen`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The container is frozen (or thawed) and its monitor knows.
    Done,
    /// This path does not apply (the reason, for the debug log); nothing was changed.
    Unavailable(String),
    /// The kernel did not report the new state before the deadline (the write was made;
    /// the monitor was told `FREEZING`/`THAWED` only, as when liblxc is interrupted).
    TimedOut,
}

/// Freezes (`frozen = true`) or thaws the container; errors are one-line messages.
pub fn set_frozen(target: &Freezer<'_>, frozen: bool) -> Result<Outcome, String> {
    let Some(payload) = find_payload(&target.base, target.id).found() else {
        return Ok(Outcome::Unavailable(format!(
            "no payload cgroup below {}",
            target.base.display()
        )));
    };
    let (lxc_home, id, trusted, deadline) =
        (target.lxc_home, target.id, &target.trusted, target.deadline);
    let current = match command_socket::get_state(lxc_home, id, trusted, deadline) {
        Ok(Some(state)) => state,
        Ok(None) => return Ok(Outcome::Unavailable("no monitor listens".to_owned())),
        Err(e @ CommandSocketError::ForeignPeer { .. }) => return Err(e.to_string()),
        Err(CommandSocketError::Timeout { .. }) => return Ok(Outcome::TimedOut),
        Err(e) => return Ok(Outcome::Unavailable(e.to_string())),
    };
    match current {
        LxcState::Running | LxcState::Frozen | LxcState::Freezing | LxcState::Thawed => {}
        other => return Ok(Outcome::Unavailable(format!("the monitor says {other}"))),
    }
    // liblxc's freeze does nothing when the monitor already says FROZEN.
    if frozen && current == LxcState::Frozen {
        return Ok(Outcome::Done);
    }
    let state_file = payload.join("freezer.state");
    let mut file = open_cgroup_file(&state_file)
        .map_err(|e| format!("cannot open {}: {e}", state_file.display()))?;

    let notify = |state: LxcState| {
        // liblxc ignores a failed notification too; the cgroup write is what counts.
        if let Err(e) = command_socket::notify_state(lxc_home, id, state, trusted, deadline) {
            tracing::debug!("telling the monitor of {id} {state}: {e}");
        }
    };
    let (before, want, after, undo) = if frozen {
        (
            LxcState::Freezing,
            "FROZEN",
            LxcState::Frozen,
            LxcState::Running,
        )
    } else {
        (
            LxcState::Thawed,
            "THAWED",
            LxcState::Running,
            LxcState::Frozen,
        )
    };
    notify(before);
    match write_and_settle(&mut file, want, deadline) {
        Ok(true) => {
            notify(after);
            Ok(Outcome::Done)
        }
        Ok(false) => Ok(Outcome::TimedOut),
        Err(e) => {
            notify(undo);
            Err(format!(
                "cannot {} container {id}: {}: {e}",
                if frozen { "freeze" } else { "thaw" },
                state_file.display()
            ))
        }
    }
}

/// Opens a cgroup file for reading and writing, refusing anything that is not on a cgroup
/// file system (root may call this).
fn open_cgroup_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !ctl_process::on_cgroup_fs(std::os::fd::AsFd::as_fd(&file))? {
        return Err(std::io::Error::other("not a cgroup file"));
    }
    Ok(file)
}

/// Writes `want` and reads the file back until the kernel reports it; `false` when the
/// deadline passed first.
fn write_and_settle(
    file: &mut File,
    want: &str,
    deadline: Option<Instant>,
) -> std::io::Result<bool> {
    file.write_all(want.as_bytes())?;
    let mut pause = Duration::from_micros(100);
    let mut buf = [0u8; 32];
    loop {
        file.seek(SeekFrom::Start(0))?;
        let n = file.read(&mut buf)?;
        if buf[..n].trim_ascii() == want.as_bytes() {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() + pause >= d) {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
