//! What a container's configuration asks of an attach, read from `<lxcpath>/<name>/config`:
//! the settings this attach applies itself, and the first setting it does not cover.
//!
//! An allow-list: every key is either known to need nothing at attach time (it acts at
//! start: the rootfs, mounts, network, hooks, ...), applied here (`lxc.no_new_privs`,
//! `lxc.prlimit.*`, `lxc.environment`), or covered by what the kernel says about the
//! container's init (`lxc.cap.*` through its bounding set, `lxc.namespace.*` and
//! `lxc.time.*` through its namespaces, the LSM keys through its label; see `target`), or
//! compiled and loaded here (`lxc.seccomp.profile`, see `seccomp`). Any other key, and any key whose value asks for
//! something not implemented here, makes the attach fall back to liblxc's (or fail, when the
//! caller asked for this attach explicitly): confinement never silently weakens.

use nix::sys::resource::{Resource, RLIM_INFINITY};

/// Keys (or key prefixes, ending in `.`) that need nothing at attach time.
const AT_START_ONLY: &[&str] = &[
    "lxc.rootfs.",
    "lxc.uts.name",
    "lxc.signal.",
    "lxc.tty.",
    "lxc.pty.max",
    "lxc.mount.",
    "lxc.idmap",
    "lxc.net.",
    "lxc.log.",
    "lxc.hook.",
    "lxc.start.",
    "lxc.group",
    "lxc.console.",
    "lxc.init.",
    "lxc.ephemeral",
    "lxc.monitor.",
    "lxc.sysctl.",
    "lxc.keyring.",
    "lxc.cgroup2.",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.autodev.",
];

/// Keys whose effect the init process shows, checked there (`target`).
const COVERED_BY_INIT: &[&str] = &[
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.namespace.",
    "lxc.time.",
    "lxc.apparmor.profile",
    "lxc.selinux.context",
];

/// A setting this attach does not implement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotCovered {
    /// The configuration key.
    pub key: String,
    /// Why (its value, or what about it).
    pub why: String,
}

/// What the attach applies from the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigPolicy {
    /// `lxc.no_new_privs = 1`.
    pub no_new_privs: bool,
    /// `lxc.prlimit.<name> = soft[:hard]`, in file order.
    pub prlimits: Vec<(Resource, u64, u64)>,
    /// `lxc.environment = NAME=VALUE`, in file order.
    pub environment: Vec<(String, String)>,
    /// `lxc.seccomp.profile` is set: the running value is asked of the monitor and applied
    /// (`seccomp`).
    pub seccomp_profile: bool,
    /// `lxc.arch` is set: the running value's personality is asked of the monitor and set,
    /// as liblxc's attach does.
    pub arch: bool,
}

/// How deep `lxc.include`s may nest (LXC sets no limit; a loop must end somewhere).
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads the policy from the text of a container's config file, without following
/// `lxc.include` (an include is not covered).
pub fn read(text: &str) -> Result<ConfigPolicy, NotCovered> {
    let mut policy = ConfigPolicy::default();
    read_into(text, &mut policy, &mut |key, value, _| {
        Err(not_covered(
            key,
            format!("{value}: included settings are not read"),
        ))
    })?;
    Ok(policy)
}

/// Reads the policy from a container's config file at `path`, with the files it includes
/// (`lxc.include` of a file, or of a directory: its `*.conf` files, as LXC reads them; an
/// absolute path, as the container's start resolved it). They are the host's and the
/// container user's files, never the container's.
pub fn read_file(path: &std::path::Path) -> Result<ConfigPolicy, NotCovered> {
    let mut policy = ConfigPolicy::default();
    include(path, &mut policy, 0)?;
    Ok(policy)
}

fn include(
    path: &std::path::Path,
    policy: &mut ConfigPolicy,
    depth: usize,
) -> Result<(), NotCovered> {
    let shown = path.display().to_string();
    if depth > MAX_INCLUDE_DEPTH {
        return Err(not_covered(
            "lxc.include",
            format!("{shown}: nested too deep"),
        ));
    }
    let unreadable = |e: std::io::Error| not_covered("lxc.include", format!("{shown}: {e}"));
    // LXC's `set_config_includefiles`: a path ending in `/` or naming a directory is a
    // directory, and a missing directory includes nothing; a missing file is an error.
    let as_dir = shown.ends_with('/') || path.is_dir();
    if as_dir
        && matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        return Ok(());
    }
    if as_dir {
        // LXC includes the directory's `*.conf` files in the order readdir gives them;
        // sorted here (only last-wins keys could tell, and those are checked on init or
        // asked of the monitor: `no_new_privs`, `lxc.seccomp.profile`).
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(unreadable)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.len() > 5 && n.ends_with(".conf"))
            })
            .collect();
        files.sort();
        for file in files {
            include(&file, policy, depth + 1)?;
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    read_into(&text, policy, &mut |_, value, policy| {
        if value.is_empty() {
            return Ok(());
        }
        let target = std::path::Path::new(value);
        if !target.is_absolute() {
            return Err(not_covered(
                "lxc.include",
                format!("{value}: a relative path (resolved against the starting process)"),
            ));
        }
        include(target, policy, depth + 1)
    })
}

/// What to do with an `lxc.include` line: `(key, value, the policy so far)`.
type OnInclude<'a> = dyn FnMut(&str, &str, &mut ConfigPolicy) -> Result<(), NotCovered> + 'a;

/// Reads the settings of one file's `text` into `policy`.
fn read_into(
    text: &str,
    policy: &mut ConfigPolicy,
    on_include: &mut OnInclude<'_>,
) -> Result<(), NotCovered> {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(not_covered(line, "a line without `=`"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.starts_with("lxc.cgroup.") {
            // Limits are the cgroup's, entered below; where the cgroup is, not.
            if key.starts_with("lxc.cgroup.dir") || key == "lxc.cgroup.relative" {
                return Err(not_covered(
                    key,
                    "the payload cgroup is not where LXC's default puts it",
                ));
            }
            continue;
        }
        if matches_any(key, AT_START_ONLY) || matches_any(key, COVERED_BY_INIT) {
            continue;
        }
        match key {
            "lxc.no_new_privs" => policy.no_new_privs = parse_bool(key, value)?,
            "lxc.environment" => {
                let Some((name, val)) = value.split_once('=') else {
                    return Err(not_covered(
                        key,
                        format!("{value:?} takes its value from the starting process"),
                    ));
                };
                policy.environment.push((name.to_owned(), val.to_owned()));
            }
            "lxc.arch" => {
                if !value.is_empty() {
                    personality(value)
                        .ok_or_else(|| not_covered(key, format!("{value:?}: unknown to LXC")))?;
                }
                policy.arch = !value.is_empty();
            }
            "lxc.seccomp.profile" => policy.seccomp_profile = !value.is_empty(),
            "lxc.seccomp.allow_nesting"
            | "lxc.seccomp.notify.proxy"
            | "lxc.seccomp.notify.cookie"
                if value.is_empty() || value == "0" => {}
            "lxc.include" => on_include(key, value, policy)?,
            _ if key.starts_with("lxc.prlimit.") => {
                let name = &key["lxc.prlimit.".len()..];
                let resource = ctl_process::rlimit_resource(name)
                    .ok_or_else(|| not_covered(key, "an unknown limit"))?;
                let (soft, hard) =
                    parse_limit(value).ok_or_else(|| not_covered(key, format!("{value:?}")))?;
                policy.prlimits.push((resource, soft, hard));
            }
            _ => return Err(not_covered(key, format!("{value:?}"))),
        }
    }
    Ok(())
}

fn matches_any(key: &str, list: &[&str]) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('.') {
        Some(prefix) => key.starts_with(entry) || key == prefix,
        None => key == *entry,
    })
}

fn not_covered(key: &str, why: impl Into<String>) -> NotCovered {
    NotCovered {
        key: key.to_owned(),
        why: why.into(),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, NotCovered> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(not_covered(key, format!("{other:?}"))),
    }
}

/// The personality LXC sets for `lxc.arch = value` (`lxc_config_parse_arch`).
pub(crate) fn personality(value: &str) -> Option<libc::c_ulong> {
    const PER_LINUX: libc::c_ulong = 0x0000;
    const PER_LINUX32: libc::c_ulong = 0x0008;
    Some(match value {
        "arm" | "armel" | "armhf" | "armv7l" | "athlon" | "i386" | "i486" | "i586" | "i686"
        | "linux32" | "mips" | "mipsel" | "ppc" | "powerpc" | "x86" => PER_LINUX32,
        "aarch64" | "amd64" | "arm64" | "linux64" | "mips64" | "mips64el" | "ppc64" | "ppc64el"
        | "ppc64le" | "powerpc64" | "riscv64" | "s390x" | "x86_64" => PER_LINUX,
        _ => return None,
    })
}

/// `unlimited`, a number, or `soft:hard` of those (LXC's `lxc.prlimit` syntax).
fn parse_limit(value: &str) -> Option<(u64, u64)> {
    let one = |v: &str| match v.trim() {
        "unlimited" => Some(RLIM_INFINITY),
        n => n.parse::<u64>().ok(),
    };
    match value.split_once(':') {
        Some((soft, hard)) => Some((one(soft)?, one(hard)?)),
        None => one(value).map(|v| (v, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVISIONED: &str = "\
# Written by ctl-provision
lxc.rootfs.path = dir:/r
lxc.uts.name = web
lxc.signal.halt = SIGUSR1
lxc.autodev = 1
lxc.tty.max = 5
lxc.pty.max = 1
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
lxc.apparmor.profile = unconfined
lxc.idmap = u 0 300000 65536
lxc.net.0.type = empty
lxc.log.file = /l.log
";

    #[test]
    fn a_provisioned_container_asks_for_nothing_uncovered() {
        assert_eq!(read(PROVISIONED), Ok(ConfigPolicy::default()));
    }

    #[test]
    fn applied_settings_are_read() {
        let p = read("lxc.no_new_privs = 1\nlxc.prlimit.nofile = 100:200\nlxc.prlimit.core = unlimited\nlxc.environment = A=b=c\n").unwrap();
        assert!(p.no_new_privs);
        assert_eq!(
            p.prlimits,
            vec![
                (Resource::RLIMIT_NOFILE, 100, 200),
                (Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY)
            ]
        );
        assert_eq!(p.environment, vec![("A".to_owned(), "b=c".to_owned())]);
        assert!(!p.seccomp_profile);
        assert!(
            read("lxc.seccomp.profile = /x.seccomp\n")
                .unwrap()
                .seccomp_profile
        );
    }

    #[test]
    fn included_files_and_directories_are_read_in_order() {
        let dir = std::env::temp_dir().join(format!("ctl-policy-{}", std::process::id()));
        let confd = dir.join("conf.d");
        std::fs::create_dir_all(&confd).unwrap();
        std::fs::write(confd.join("10-a.conf"), "lxc.prlimit.nofile = 10:20\n").unwrap();
        std::fs::write(confd.join("20-b.conf"), "lxc.environment = B=2\n").unwrap();
        std::fs::write(confd.join("ignored.txt"), "lxc.proc.x = 1\n").unwrap();
        let main = dir.join("config");
        std::fs::write(
            &main,
            format!(
                "lxc.environment = A=1\nlxc.include = {}\nlxc.seccomp.profile = /p\n",
                confd.display()
            ),
        )
        .unwrap();
        let p = read_file(&main).unwrap();
        assert_eq!(p.prlimits, vec![(Resource::RLIMIT_NOFILE, 10, 20)]);
        assert_eq!(
            p.environment,
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
        assert!(p.seccomp_profile);
        // An uncovered key in an included file is named; so is a missing or relative one.
        std::fs::write(confd.join("30-c.conf"), "lxc.proc.oom_score_adj = 1\n").unwrap();
        assert_eq!(read_file(&main).unwrap_err().key, "lxc.proc.oom_score_adj");
        std::fs::write(&main, "lxc.include = /nonexistent-ctl.conf\n").unwrap();
        assert_eq!(read_file(&main).unwrap_err().key, "lxc.include");
        // A missing directory includes nothing (LXC's choice).
        std::fs::write(&main, "lxc.include = /nonexistent-ctl.d/\n").unwrap();
        assert_eq!(read_file(&main).unwrap(), ConfigPolicy::default());
        std::fs::write(&main, "lxc.include = relative.conf\n").unwrap();
        assert_eq!(read_file(&main).unwrap_err().key, "lxc.include");
        // A loop ends.
        std::fs::write(&main, format!("lxc.include = {}\n", main.display())).unwrap();
        assert_eq!(read_file(&main).unwrap_err().key, "lxc.include");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_not_covered_is_named() {
        for (text, key) in [
            (
                "lxc.include = /usr/share/lxc/config/common.conf\n",
                "lxc.include",
            ),
            ("lxc.proc.oom_score_adj = 10\n", "lxc.proc.oom_score_adj"),
            ("lxc.cgroup.dir = x\n", "lxc.cgroup.dir"),
            ("lxc.arch = vax\n", "lxc.arch"),
            ("lxc.environment = HOME\n", "lxc.environment"),
            ("lxc.sched.core = 1\n", "lxc.sched.core"),
            ("lxc.prlimit.bogus = 1\n", "lxc.prlimit.bogus"),
            ("lxc.something.new = 1\n", "lxc.something.new"),
        ] {
            assert_eq!(read(text).unwrap_err().key, key, "{text}");
        }
    }
}
