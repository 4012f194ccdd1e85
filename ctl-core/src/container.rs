//! The container context a daemon fills in and hands to every command.
//!
//! It is plain data on purpose: the framework keeps no global state about containers, so a
//! daemon can build a [`Container`] from whatever it stores (osctld keeps pools, users and
//! containers in its own objects) and two daemons never share hidden registries.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the frontend needs to know about one container to run a command on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Pool name (osctld's `pool`).
    pub pool: String,
    /// Container id within its pool.
    pub id: String,
    /// Name of the container's system user.
    pub user: String,
    /// The user's uid, which is also its primary gid (osctld's `ugid`).
    pub ugid: u32,
    /// The system user's home directory.
    pub home: PathBuf,
    /// LXC path of the container (`lxc.lxcpath`), the directory holding `<id>/config`.
    pub lxc_home: PathBuf,
    /// The container's LXC log file.
    pub log_file: PathBuf,
    /// The container's cgroup, relative to each hierarchy's root, as `a/b/c`: LXC puts the
    /// container's payload (`lxc.payload.<id>`) and its monitor (`lxc.monitor.<id>`) below
    /// it (osctld's `cgroup_path`).
    pub cgroup_path: String,
    /// The cgroup runners in the exec placement enter, relative like
    /// [`cgroup_path`](Self::cgroup_path). `None` (the default): `cgroup_path` itself. osctld
    /// lays its containers out with the runners in `<cgroup_path>/lxc.monitor.<id>`
    /// (its `entry_cgroup_path`), a sibling of the payload; see
    /// [`Container::osctld_entry_cgroup_path`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_cgroup_path: Option<String>,
    /// `PATH` of the programs commands run inside the container. `None`: osctld's
    /// `SYSTEM_PATH` ([`DEFAULT_CONTAINER_PATH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// `PATH` of the runner on the host, where liblxc finds its helpers (`newuidmap`,
    /// `lxc-user-nic`, hooks). `None`: [`DEFAULT_RUNNER_PATH`], osctld's: `/run/wrappers/bin`
    /// (NixOS's setuid wrappers) first, then the system path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_path: Option<String>,
    /// `XDG_RUNTIME_DIR` of runners that run as the container's user, where unprivileged
    /// LXC keeps its runtime files (the command socket's lock, `lxc-user-nic`'s state).
    /// `None`: osctld's, `<home>/.cache/lxc/run` ([`Container::runtime_dir`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_dir: Option<PathBuf>,
    /// Resource limits applied to runners in the exec placement, by name (`nofile`,
    /// `nproc`, ... as in osctld's prlimits, with or without the `RLIMIT_` prefix).
    pub rlimits: BTreeMap<String, Rlimit>,
}

/// osctld's `SwitchUser::SYSTEM_PATH`: the usual directories, then NixOS's and Guix's
/// system profiles, so that the same path finds programs in every distribution vpsAdminOS
/// runs.
pub const DEFAULT_CONTAINER_PATH: &str = "/bin:/usr/bin:/sbin:/usr/sbin:\
/run/current-system/sw/bin:/nix/var/nix/profiles/system/sw/bin:\
/run/current-system/profile/bin:/run/current-system/profile/sbin:\
/var/guix/profiles/system/profile/bin:/var/guix/profiles/system/profile/sbin";

/// The runner's host `PATH` by default: osctld's (`/run/wrappers/bin`, where NixOS keeps
/// setuid wrappers such as `newuidmap`, before the system path).
pub const DEFAULT_RUNNER_PATH: &str = "/run/wrappers/bin:/bin:/usr/bin:/sbin:/usr/sbin:\
/run/current-system/sw/bin:/nix/var/nix/profiles/system/sw/bin:\
/run/current-system/profile/bin:/run/current-system/profile/sbin:\
/var/guix/profiles/system/profile/bin:/var/guix/profiles/system/profile/sbin";

impl Container {
    /// `pool:id`, the identifier used in process titles and messages.
    pub fn ident(&self) -> String {
        format!("{}:{}", self.pool, self.id)
    }

    /// The cgroup runners in the exec placement enter: [`entry_cgroup_path`] when set,
    /// else [`cgroup_path`](Self::cgroup_path).
    ///
    /// [`entry_cgroup_path`]: Self::entry_cgroup_path
    pub fn entry_cgroup(&self) -> &str {
        self.entry_cgroup_path
            .as_deref()
            .unwrap_or(&self.cgroup_path)
    }

    /// osctld's entry cgroup for this container: `<cgroup_path>/lxc.monitor.<id>`. Set
    /// `entry_cgroup_path` to it to lay the container out as osctld does.
    pub fn osctld_entry_cgroup_path(&self) -> String {
        format!(
            "{}/lxc.monitor.{}",
            self.cgroup_path.trim_end_matches('/'),
            self.id
        )
    }

    /// `PATH` inside the container: [`container_path`](Self::container_path) or osctld's.
    pub fn container_path(&self) -> &str {
        self.container_path
            .as_deref()
            .unwrap_or(DEFAULT_CONTAINER_PATH)
    }

    /// `XDG_RUNTIME_DIR` of the container user's runners: [`runtime_dir`](Self::runtime_dir)
    /// or osctld's, `<home>/.cache/lxc/run`.
    pub fn runtime_dir(&self) -> PathBuf {
        match &self.runtime_dir {
            Some(dir) => dir.clone(),
            None => self.home.join(".cache/lxc/run"),
        }
    }

    /// The runner's host `PATH`: [`runner_path`](Self::runner_path) or osctld's.
    pub fn runner_path(&self) -> &str {
        self.runner_path.as_deref().unwrap_or(DEFAULT_RUNNER_PATH)
    }
}

/// One resource limit: soft and hard value, each a number or unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub soft: RlimitValue,
    pub hard: RlimitValue,
}

impl Rlimit {
    /// A limit with the same soft and hard value.
    pub fn both(value: RlimitValue) -> Self {
        Rlimit {
            soft: value,
            hard: value,
        }
    }
}

/// A limit value: a number or `"unlimited"` (as osctld writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RlimitValue {
    Limited(u64),
    Unlimited,
}

impl RlimitValue {
    /// The value as `setrlimit` takes it.
    pub fn as_raw(self) -> u64 {
        match self {
            RlimitValue::Limited(v) => v,
            RlimitValue::Unlimited => libc::RLIM_INFINITY,
        }
    }

    /// The inverse of [`RlimitValue::as_raw`].
    pub fn from_raw(raw: u64) -> Self {
        if raw == libc::RLIM_INFINITY {
            RlimitValue::Unlimited
        } else {
            RlimitValue::Limited(raw)
        }
    }
}

impl fmt::Display for RlimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RlimitValue::Limited(v) => write!(f, "{v}"),
            RlimitValue::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for RlimitValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RlimitValue::Limited(v) => s.serialize_u64(*v),
            RlimitValue::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for RlimitValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RlimitValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or \"unlimited\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RlimitValue, E> {
                Ok(RlimitValue::from_raw(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RlimitValue, E> {
                if v < 0 {
                    Ok(RlimitValue::Unlimited)
                } else {
                    Ok(RlimitValue::Limited(v as u64))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RlimitValue, E> {
                match v {
                    "unlimited" | "infinity" => Ok(RlimitValue::Unlimited),
                    other => other
                        .parse()
                        .map(RlimitValue::Limited)
                        .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The canonical short names of every rlimit, in resource order.
pub const RLIMIT_NAMES: &[&str] = &[
    "cpu",
    "fsize",
    "data",
    "stack",
    "core",
    "rss",
    "nproc",
    "nofile",
    "memlock",
    "as",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];
