//! Security: the provisioner never follows the container user's symlinks as root.
//!
//! The container's system user owns its home, its LXC home and the container directory.
//! When `ctl ct new` completes an incomplete container (its record is missing), root
//! re-creates, chmods and chowns paths below those directories; a user who had put
//! symlinks there got host files chowned to itself, host directories chmodded, and
//! busybox's `etc/passwd`, `etc/group` and an empty `etc/shadow` written into a directory
//! of its choice through a `rootfs` symlink. Each round plants one such symlink (as the
//! user, with `setpriv`), runs `create` again and checks that it refuses, naming the path,
//! and that the host directory it pointed at is unchanged.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use ctl_core::Container;
use ctl_provision::CreateOptions;
use ctl_test_support::container::{Env, Guard};
use ctl_test_support::names::unique_name;

/// Runs `script` with `sh -c` as the container's user.
#[track_caller]
fn as_user(ct: &Container, script: &str) {
    let id = ct.ugid.to_string();
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as {}: {script}: {}",
        ct.user,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Owner, mode and entries of every file below `dir` (and `dir` itself).
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.uid(), m.gid(), m.mode()));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// Root's host directory the user points its symlinks at, removed on drop.
struct Canary(PathBuf);

impl Canary {
    fn new() -> Canary {
        let dir = PathBuf::from(format!("/var/tmp/ctl-prov-canary-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("file"), b"root's file\n").unwrap();
        std::fs::set_permissions(dir.join("file"), std::fs::Permissions::from_mode(0o644)).unwrap();
        for (sub, mode) in [("private", 0o700), ("dir", 0o755), ("ctdir", 0o755)] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Canary(dir)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn completing_a_container_never_follows_the_users_symlinks() {
    let env = Env::new();
    let name = unique_name("psym");
    let guard = Guard::create(&env.prov, name.clone(), &CreateOptions::default());
    let ct = guard.ct().clone();
    let canary = Canary::new();
    let before = snapshot(&canary.0);
    let ct_dir = ct.lxc_home.join(&name);
    let record = env
        .state_dir()
        .join("containers")
        .join(format!("{name}.json"));
    let q = |p: &Path| format!("'{}'", p.display());

    // (what, the attack as the user, its undo as the user, a path the refusal names)
    let log = ct.log_file.clone();
    let run = ct.home.join(".cache/lxc/run");
    let rootfs = ct_dir.join("rootfs");
    let rounds: Vec<(&str, String, String, PathBuf)> = vec![
        (
            "log file a symlink to a host file",
            format!(
                "rm {l} && ln -s {f} {l}",
                l = q(&log),
                f = q(&canary.0.join("file"))
            ),
            format!("rm {l} && : > {l}", l = q(&log)),
            log.clone(),
        ),
        (
            ".cache/lxc/run a symlink to a host directory",
            format!(
                "mv {r} {r}.real && ln -s {d} {r}",
                r = q(&run),
                d = q(&canary.0.join("private"))
            ),
            format!("rm {r} && mv {r}.real {r}", r = q(&run)),
            run.clone(),
        ),
        (
            "rootfs a symlink to a host directory (and the done-marker removed)",
            format!(
                "rm {m} && mv {r} {r}.real && ln -s {d} {r}",
                m = q(&ct_dir.join(".rootfs-done")),
                r = q(&rootfs),
                d = q(&canary.0.join("dir"))
            ),
            format!(
                "rm {r} && mv {r}.real {r} && rm -f {m} && : > {m}",
                m = q(&ct_dir.join(".rootfs-done")),
                r = q(&rootfs)
            ),
            rootfs.clone(),
        ),
        (
            "the container directory a symlink to a host directory",
            format!(
                "mv {c} {c}.real && ln -s {d} {c}",
                c = q(&ct_dir),
                d = q(&canary.0.join("ctdir"))
            ),
            format!("rm {c} && mv {c}.real {c}", c = q(&ct_dir)),
            ct_dir.clone(),
        ),
    ];

    let mut failures = Vec::new();
    for (what, attack, undo, named) in &rounds {
        // The registry entry is missing: `ctl ct new` completes the container.
        let _ = std::fs::remove_file(&record);
        as_user(&ct, attack);
        let result = env.prov.create(&name, &CreateOptions::default());
        match &result {
            Ok(_) => failures.push(format!("{what}: create followed it and succeeded")),
            Err(e) => {
                let message = e.to_string();
                eprintln!("{what}: {message}");
                if !message.contains(&named.display().to_string()) || !message.contains("symlink") {
                    failures.push(format!(
                        "{what}: the refusal does not name {} as a symlink: {message}",
                        named.display()
                    ));
                }
            }
        }
        let after = snapshot(&canary.0);
        if after != before {
            let changed: Vec<String> = after
                .iter()
                .filter(|e| !before.contains(e))
                .map(|(p, uid, _, mode)| format!("{} (uid {uid}, mode {mode:o})", p.display()))
                .collect();
            failures.push(format!(
                "{what}: the host directory changed: {} entries new or changed, e.g. {}",
                changed.len(),
                changed[..changed.len().min(4)].join(", ")
            ));
            // Back to the reference state for the next round.
            let _ = Command::new("chown")
                .args(["-R", "0:0"])
                .arg(&canary.0)
                .status();
            for (p, _, _, mode) in &before {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode));
            }
            for (p, ..) in &after {
                if !before.iter().any(|(b, ..)| b == p) {
                    let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
                }
            }
        }
        as_user(&ct, undo);
    }
    // Undone, the container completes again.
    let _ = std::fs::remove_file(&record);
    env.prov
        .create(&name, &CreateOptions::default())
        .expect("create after the symlinks were removed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
