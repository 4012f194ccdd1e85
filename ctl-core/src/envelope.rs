//! The envelope: the one JSON object the frontend writes to the runner's stdin.
//!
//! Its fields are exactly osctld's (`osctld-ct-runner` reads the same object), so either
//! side can talk to the other. Our frontend adds one extra field, `ctl`, which an older peer
//! ignores: the protocol version, and the *placement* the runner applies to itself while it
//! is still root (see `docs/design.md`: the runner, not a forked copy of the daemon, drops
//! privileges and enters cgroups). An envelope without `ctl` is osctld's: its runner was
//! already placed by its frontend and only runs the command.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::container::Rlimit;

/// Version of our envelope extension and reply conventions. Bumped on any incompatible
/// change; a runner refuses an envelope of another version with a reply naming both.
pub const PROTOCOL_VERSION: u32 = 8;

/// Largest envelope a runner accepts, in bytes. Arguments are small; anything bigger is a
/// bug or an attack.
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;

/// The runner's input, osctld's field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The command: registered name (`Freeze`), snake case (`freeze`) or osctld's full
    /// class name (`OsCtld::ContainerControl::Commands::Freeze`).
    pub name: String,
    pub pool: String,
    pub id: String,
    pub lxc_home: String,
    pub user_home: String,
    #[serde(default)]
    pub log_file: Option<String>,
    /// Positional arguments.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments (Ruby symbols arrive as strings).
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// The fd the runner writes its one reply line to.
    #[serde(rename = "return")]
    pub return_fd: RawFd,
    /// The command's input, if any.
    #[serde(default)]
    pub stdin: Option<RawFd>,
    /// The command's output.
    #[serde(default)]
    pub stdout: Option<RawFd>,
    /// The command's error output.
    #[serde(default)]
    pub stderr: Option<RawFd>,
    /// Our extension; absent in osctld's envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctl: Option<Extension>,
}

impl Envelope {
    /// Decodes an envelope, rejecting oversized input before parsing it.
    pub fn from_slice(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        envelope.validate()?;
        Ok(envelope)
    }

    /// Checks what serde cannot: fd numbers and names that make sense.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.name.is_empty() || self.name.len() > 256 || self.name.chars().any(char::is_control)
        {
            return Err(EnvelopeError::Invalid(format!(
                "bad command name {:?}",
                self.name
            )));
        }
        // Pool and id name directories and appear in process titles: one path component
        // of sane length. Paths must be passable to the kernel.
        for (what, value) in [("pool", &self.pool), ("id", &self.id)] {
            if value.len() > 256
                || value.chars().any(char::is_control)
                || value.contains('/')
                || value == "."
                || value == ".."
            {
                return Err(EnvelopeError::Invalid(format!("bad {what} {value:?}")));
            }
        }
        for (what, value) in [
            ("lxc_home", Some(&self.lxc_home)),
            ("user_home", Some(&self.user_home)),
            ("log_file", self.log_file.as_ref()),
        ] {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(EnvelopeError::Invalid(format!(
                    "{what} contains a NUL byte"
                )));
            }
        }
        if self.return_fd < 0 {
            return Err(EnvelopeError::Invalid(format!(
                "bad return fd {}",
                self.return_fd
            )));
        }
        if self.return_fd == 0 {
            return Err(EnvelopeError::Invalid(
                "return fd 0 is the envelope itself".to_owned(),
            ));
        }
        for (what, fd) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
        ] {
            if let Some(fd) = fd {
                if fd < 0 {
                    return Err(EnvelopeError::Invalid(format!("bad {what} fd {fd}")));
                }
                if fd == self.return_fd {
                    return Err(EnvelopeError::Invalid(format!(
                        "{what} fd {fd} is also the return fd"
                    )));
                }
            }
        }
        if self.stdout == Some(0) || self.stderr == Some(0) {
            return Err(EnvelopeError::Invalid(
                "fd 0 is the envelope, not an output".to_owned(),
            ));
        }
        Ok(())
    }

    /// The encoded envelope, without a trailing newline.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// The fds the runner keeps open besides 0, 1 and 2.
    pub fn named_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.return_fd)
            .chain(self.stdin)
            .chain(self.stdout)
            .chain(self.stderr)
            .chain(
                self.ctl
                    .iter()
                    .flat_map(|ext| ext.placement.iter())
                    .flat_map(|placement| placement.procs_fds.iter().flatten().copied()),
            )
            .chain(self.ctl.iter().flat_map(|ext| ext.lock_fd))
    }
}

/// Our extension of the envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    /// [`PROTOCOL_VERSION`] of the frontend.
    pub version: u32,
    /// What the runner applies to itself, as root, before any command code runs.
    #[serde(default)]
    pub placement: Option<PlacementSpec>,
    /// The pid of the frontend process, to detect that it died before the runner armed its
    /// parent-death signal.
    #[serde(default)]
    pub parent_pid: Option<i32>,
    /// Set when the frontend starts a *warm* runner: after applying the placement it
    /// serves commands from its stdin socket, forking one child per command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmSpec>,
    /// `PATH` of programs run inside the container (`Container::container_path`); absent:
    /// osctld's system path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// The container's lock, handed over by the frontend for a command that holds it only
    /// until its program runs (`LockMode::UntilRunning`, see `crate::lock`): the runner
    /// keeps it until the process that attaches has attached, then it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_fd: Option<RawFd>,
}

/// How a warm runner behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmSpec {
    /// Exit after this long without a command in flight.
    pub idle_timeout_ms: u64,
    /// Run the registered `WarmUp` hooks before serving (e.g. load liblxc once).
    #[serde(default)]
    pub warm_up: bool,
}

/// The whole execution context the runner applies to itself (systemd's executor model:
/// the manager serialises the context, a small binary applies it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementSpec {
    /// Resource limits, by short name (`nofile`), applied while still root.
    #[serde(default)]
    pub rlimits: BTreeMap<String, Rlimit>,
    /// `cgroup.procs` files of the entry cgroup, one per hierarchy: the runner must end up
    /// in each, and writes `0` to each one not listed in [`born_in`](Self::born_in).
    #[serde(default)]
    pub cgroup_procs: Vec<String>,
    /// Those of [`cgroup_procs`](Self::cgroup_procs) whose cgroup the runner was *born* in:
    /// the frontend started it there with `clone3(CLONE_INTO_CGROUP)` (cgroup v2 only), so
    /// the runner does not move itself in that hierarchy. Empty when the runner was started
    /// outside (`posix_spawn`) and moves itself everywhere; absent from older envelopes
    /// (protocol 4), which decode with it empty. See `docs/design.md`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub born_in: Vec<String>,
    /// Fds, open in the runner, of the files of [`cgroup_procs`](Self::cgroup_procs): empty,
    /// or one entry per path (`null` where the runner opens the path itself). The frontend
    /// keeps these files open across calls, so that the runner writes to them instead of
    /// opening each one (~23 µs per call here; `docs/performance.md`). The runner checks
    /// each is a cgroup file and closes it before dropping root; when the write fails (the
    /// cgroup was removed since the frontend opened the file) it falls back to the path.
    /// Absent in protocol 5 and earlier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procs_fds: Vec<Option<RawFd>>,
    /// The entry cgroup (relative path, owner) the runner creates in every hierarchy when a
    /// `cgroup.procs` file is missing. Creating it on demand in the runner (still root)
    /// spares every call the frontend's `mkdir`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_cgroup: Option<EntryCgroup>,
    /// The container's own cgroup (`Container::cgroup_path`, relative), where it is not the
    /// entry cgroup the runner enters (osctld's layout: the runner in
    /// `<cgroup_path>/lxc.monitor.<id>`, the payload its sibling). LXC creates a
    /// container's payload and monitor cgroups below the cgroup of the process that starts
    /// it, so a command that starts the container moves there first; the runner also
    /// creates it, owned by the user, when it creates a missing entry cgroup below it.
    /// Absent when the two are the same (the default layout) and before protocol 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cgroup: Option<String>,
    /// The user to become; `None` keeps root (fork placement of GetHostname, WithRootfs).
    #[serde(default)]
    pub user: Option<UserSpec>,
    /// Keep setuid helpers (newuidmap, lxc-user-nic) usable: no `no_new_privs`. Needed by
    /// commands that start a container or attach to one.
    #[serde(default)]
    pub setuid_helpers: bool,
    /// Informational since protocol 7: every runner starts a session (and so a process
    /// group) of its own before it reads the envelope, whatever this says, so that nothing
    /// it starts has a controlling terminal; the frontend kills that group on a deadline.
    #[serde(default)]
    pub own_process_group: bool,
}

/// An entry cgroup to create: relative path and owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryCgroup {
    pub relative: String,
    pub ugid: u32,
}

/// The identity a runner switches to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: String,
    pub ugid: u32,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed envelope: {0}")]
    Json(String),
    #[error("invalid envelope: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope as osctld writes it (Ruby's `to_json` of `runner_opts`).
    const OSCTLD: &str = r#"{"name":"OsCtld::ContainerControl::Commands::Stop","pool":"tank","id":"myct01","lxc_home":"/tank/user/1000/ct","user_home":"/tank/user/1000","log_file":"/tank/log/ct/myct01.log","args":["stop"],"kwargs":{"timeout":60,"message":null,"mode":"stop"},"return":12,"stdin":null,"stdout":1,"stderr":2}"#;

    #[test]
    fn decodes_osctld_envelope() {
        let e = Envelope::from_slice(OSCTLD.as_bytes()).unwrap();
        assert_eq!(e.name, "OsCtld::ContainerControl::Commands::Stop");
        assert_eq!((e.pool.as_str(), e.id.as_str()), ("tank", "myct01"));
        assert_eq!(e.args, vec![Value::from("stop")]);
        assert_eq!(e.kwargs["timeout"], Value::from(60));
        assert_eq!(e.kwargs["message"], Value::Null);
        assert_eq!(
            (e.return_fd, e.stdin, e.stdout, e.stderr),
            (12, None, Some(1), Some(2))
        );
        assert!(e.ctl.is_none());
        assert_eq!(e.named_fds().collect::<Vec<_>>(), vec![12, 1, 2]);
    }

    #[test]
    fn encoding_without_extension_has_exactly_osctld_fields() {
        let e = Envelope::from_slice(OSCTLD.as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&e.to_vec()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "args",
                "id",
                "kwargs",
                "log_file",
                "lxc_home",
                "name",
                "pool",
                "return",
                "stderr",
                "stdin",
                "stdout",
                "user_home"
            ]
        );
    }

    #[test]
    fn round_trips_extension() {
        let mut e = Envelope::from_slice(OSCTLD.as_bytes()).unwrap();
        e.ctl = Some(Extension {
            version: PROTOCOL_VERSION,
            parent_pid: Some(42),
            warm: Some(WarmSpec {
                idle_timeout_ms: 5000,
                warm_up: true,
            }),
            placement: Some(PlacementSpec {
                cgroup_procs: vec!["/sys/fs/cgroup/memory/a/cgroup.procs".into()],
                user: Some(UserSpec {
                    name: "u".into(),
                    ugid: 5000,
                }),
                ..Default::default()
            }),
            container_path: Some("/bin".into()),
            lock_fd: None,
        });
        assert_eq!(Envelope::from_slice(&e.to_vec()).unwrap(), e);
    }

    #[test]
    fn born_in_is_optional_and_round_trips() {
        // A protocol-4 frontend's placement has no `born_in`: it still decodes (so that the
        // runner can refuse the version with a reply naming both), meaning "move everywhere".
        let v4 = OSCTLD.replace(
            r#""stderr":2}"#,
            r#""stderr":2,"ctl":{"version":4,"placement":{"cgroup_procs":["/sys/fs/cgroup/unified/a/cgroup.procs"]},"parent_pid":1}}"#,
        );
        let e = Envelope::from_slice(v4.as_bytes()).unwrap();
        let ext = e.ctl.as_ref().unwrap();
        assert_eq!(ext.version, 4);
        let placement = ext.placement.as_ref().unwrap();
        assert!(placement.born_in.is_empty());
        // Empty, it is not written at all: such an envelope is byte-for-byte protocol 4's
        // placement.
        assert!(!String::from_utf8(e.to_vec()).unwrap().contains("born_in"));

        let mut e = e;
        let placement = e.ctl.as_mut().unwrap().placement.as_mut().unwrap();
        placement.born_in = placement.cgroup_procs.clone();
        let bytes = e.to_vec();
        assert!(String::from_utf8(bytes.clone())
            .unwrap()
            .contains(r#""born_in":["/sys/fs/cgroup/unified/a/cgroup.procs"]"#));
        assert_eq!(Envelope::from_slice(&bytes).unwrap(), e);
    }

    #[test]
    fn procs_fds_are_optional_named_and_round_trip() {
        let v5 = OSCTLD.replace(
            r#""stderr":2}"#,
            r#""stderr":2,"ctl":{"version":5,"placement":{"cgroup_procs":["/a/cgroup.procs","/b/cgroup.procs"]},"parent_pid":1}}"#,
        );
        let mut e = Envelope::from_slice(v5.as_bytes()).unwrap();
        let placement = e.ctl.as_mut().unwrap().placement.as_mut().unwrap();
        assert!(placement.procs_fds.is_empty());
        assert!(!String::from_utf8(e.to_vec()).unwrap().contains("procs_fds"));

        let placement = e.ctl.as_mut().unwrap().placement.as_mut().unwrap();
        placement.procs_fds = vec![Some(7), None];
        let bytes = e.to_vec();
        assert!(String::from_utf8(bytes.clone())
            .unwrap()
            .contains(r#""procs_fds":[7,null]"#));
        assert_eq!(Envelope::from_slice(&bytes).unwrap(), e);
        // The runner keeps them open until it has used them.
        assert!(e.named_fds().any(|fd| fd == 7));
    }

    #[test]
    fn container_cgroup_is_optional_and_round_trips() {
        // A protocol-7 placement has no `container_cgroup`: it decodes, as the default
        // layout (the container's cgroup is the entry cgroup).
        let v7 = OSCTLD.replace(
            r#""stderr":2}"#,
            r#""stderr":2,"ctl":{"version":7,"placement":{"cgroup_procs":["/a/cgroup.procs"],"create_cgroup":{"relative":"a","ugid":5}},"parent_pid":1}}"#,
        );
        let mut e = Envelope::from_slice(v7.as_bytes()).unwrap();
        let placement = e.ctl.as_mut().unwrap().placement.as_mut().unwrap();
        assert_eq!(placement.container_cgroup, None);
        assert!(!String::from_utf8(e.to_vec())
            .unwrap()
            .contains("container_cgroup"));

        let placement = e.ctl.as_mut().unwrap().placement.as_mut().unwrap();
        placement.container_cgroup = Some("p/ct.x/user-owned".into());
        let bytes = e.to_vec();
        assert!(String::from_utf8(bytes.clone())
            .unwrap()
            .contains(r#""container_cgroup":"p/ct.x/user-owned""#));
        assert_eq!(Envelope::from_slice(&bytes).unwrap(), e);
    }

    #[test]
    fn rejects_bad_envelopes() {
        let too_big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            Envelope::from_slice(&too_big),
            Err(EnvelopeError::TooLarge { .. })
        ));
        assert!(matches!(
            Envelope::from_slice(b"{"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::from_slice(b"[]"),
            Err(EnvelopeError::Json(_))
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            Envelope::from_slice(deep.as_bytes()),
            Err(EnvelopeError::Json(_))
        ));
        for (from, to) in [
            (r#""return":12"#, r#""return":0"#),
            (r#""return":12"#, r#""return":-3"#),
            (r#""stdout":1"#, r#""stdout":12"#),
            (r#""stdout":1"#, r#""stdout":0"#),
            (
                r#""name":"OsCtld::ContainerControl::Commands::Stop""#,
                r#""name":"a\nb""#,
            ),
        ] {
            let bad = OSCTLD.replace(from, to);
            assert!(
                matches!(
                    Envelope::from_slice(bad.as_bytes()),
                    Err(EnvelopeError::Invalid(_))
                ),
                "accepted {to}"
            );
        }
    }
}
