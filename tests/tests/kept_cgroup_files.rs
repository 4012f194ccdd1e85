//! The `cgroup.procs` files the frontend keeps open for cold exec runners
//! (`ctl_core::frontend`'s `procs_files`): reused across calls, never seen by command code,
//! harmless once their cgroup is gone, forgotten with it, and checked by the runner when an
//! envelope names them.

use std::path::PathBuf;

use ctl_core::cgroup;
use ctl_core::diag::{Identity, IdentityInfo};
use ctl_core::{Call, Stdio};
use tests::fixtures::{
    assert_in_entry_everywhere, output_with_stdin, serial, test_runner_path, TestUser,
};

fn identity(user: &TestUser) -> IdentityInfo {
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    Identity::run_with(&call).unwrap_or_else(|e| panic!("Identity: {e}"))
}

/// This process's fds open on a `cgroup.procs` file of `relative`, as (fd, path).
fn kept_files_of(relative: &str) -> Vec<(i32, PathBuf)> {
    let suffix = format!("/{relative}/cgroup.procs");
    let mut kept: Vec<(i32, PathBuf)> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            target.to_str()?.ends_with(&suffix).then_some((fd, target))
        })
        .collect();
    kept.sort();
    kept
}

/// The hierarchies a cold exec runner moves itself in (all but the one it is born in).
fn hierarchies_moved_in() -> usize {
    let born_in_unified = ctl_core::frontend::spawn_into_cgroup_available();
    cgroup::hierarchies()
        .iter()
        .filter(|h| !(h.unified && born_in_unified))
        .count()
}

#[test]
fn kept_files_are_reused_and_never_reach_command_code() {
    let _serial = serial();
    ctl_core::frontend::forget_cgroup_files();
    let user = TestUser::new("kept");
    let relative = user.container().cgroup_path.clone();

    // First call: the entry cgroup does not exist yet; the runner creates it.
    let info = identity(&user);
    assert_in_entry_everywhere(&info.cgroups, &relative);
    assert!(
        kept_files_of(&relative).is_empty(),
        "nothing to keep before the cgroup exists"
    );

    // Second call: the files are opened and kept; the runner enters through them.
    let info = identity(&user);
    assert_in_entry_everywhere(&info.cgroups, &relative);
    assert_eq!(
        info.fds,
        vec![0, 1, 2, 3],
        "kept files reached command code"
    );
    let kept = kept_files_of(&relative);
    assert_eq!(kept.len(), hierarchies_moved_in(), "{kept:?}");

    // Third call: the same files, no new ones.
    let info = identity(&user);
    assert_in_entry_everywhere(&info.cgroups, &relative);
    assert_eq!(info.fds, vec![0, 1, 2, 3]);
    assert_eq!(kept_files_of(&relative), kept);
}

#[test]
fn a_removed_entry_cgroup_is_entered_again_and_remove_entry_forgets() {
    let _serial = serial();
    let user = TestUser::new("stale");
    let relative = user.container().cgroup_path.clone();
    identity(&user);
    identity(&user);
    assert!(!kept_files_of(&relative).is_empty());

    // Removed behind the framework's back (not through `Launcher::remove_entry_cgroup`): the kept
    // files are stale, the runner falls back to the paths and re-creates the cgroup.
    for h in cgroup::hierarchies() {
        let dir = h.path_of(&relative);
        std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
    }
    let info = identity(&user);
    assert_in_entry_everywhere(&info.cgroups, &relative);
    assert_eq!(info.fds, vec![0, 1, 2, 3]);

    // Removing it through the launcher forgets the files.
    ctl_core::Launcher::global()
        .remove_entry_cgroup(&relative)
        .unwrap();
    assert_eq!(kept_files_of(&relative), Vec::new());
    let info = identity(&user);
    assert_in_entry_everywhere(&info.cgroups, &relative);
}

/// Runs the real runner on `envelope` with `file` open for appending as fd 5.
fn run_runner_with_fd5(envelope: &str, file: &str) -> serde_json::Value {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" 5>>\"$1\"")
        .arg(test_runner_path())
        .arg(file);
    let out = output_with_stdin(&mut cmd, envelope.as_bytes());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no reply ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// An envelope for `Ping` whose placement names two `cgroup.procs` paths and `procs_fds`.
fn envelope(stdout: &str, procs_fds: &str) -> String {
    let paths = r#"["/sys/fs/cgroup/cpu/x/cgroup.procs","/sys/fs/cgroup/memory/x/cgroup.procs"]"#;
    format!(
        r#"{{"name":"Ping","pool":"p","id":"c","lxc_home":"/","user_home":"/","args":[1],"kwargs":{{}},"return":1,"stdin":null,"stdout":{stdout},"stderr":null,"ctl":{{"version":{v},"placement":{{"cgroup_procs":{paths},"procs_fds":{procs_fds}}}}}}}"#,
        v = ctl_core::PROTOCOL_VERSION
    )
}

#[test]
fn the_runner_refuses_procs_fds_that_are_not_what_they_claim() {
    let _serial = serial();
    let root_procs = cgroup::hierarchies()[0].mount_point.join("cgroup.procs");
    let root_procs = root_procs.to_str().unwrap();
    let cpu = "/sys/fs/cgroup/cpu/x/cgroup.procs";
    let memory = "/sys/fs/cgroup/memory/x/cgroup.procs";
    // (stdout, procs_fds, what fd 5 is, the refusal)
    let cases = [
        // One fd per path, or none at all.
        (
            "null",
            "[5]",
            root_procs,
            "1 cgroup.procs fds for 2 cgroup.procs paths".to_owned(),
        ),
        // The return fd, a standard fd.
        (
            "null",
            "[1,null]",
            root_procs,
            format!("cgroup.procs fd 1 for {cpu} is one of the runner's standard fds"),
        ),
        (
            "null",
            "[null,2]",
            root_procs,
            format!("cgroup.procs fd 2 for {memory} is one of the runner's standard fds"),
        ),
        // The command's stdout; one fd for two paths (a real cgroup file: the duplicate is
        // what is refused).
        (
            "5",
            "[5,null]",
            "/dev/null",
            format!("cgroup.procs fd 5 for {cpu} is also another fd of the envelope"),
        ),
        (
            "null",
            "[5,5]",
            root_procs,
            format!("cgroup.procs fd 5 for {memory} is also another fd of the envelope"),
        ),
        // Not open.
        (
            "null",
            "[57,null]",
            root_procs,
            format!("cgroup.procs fd 57 for {cpu} is not open"),
        ),
        // Open, but /dev/null: root must not write there.
        (
            "null",
            "[null,5]",
            "/dev/null",
            format!("cgroup.procs fd 5 for {memory} is not a cgroup file"),
        ),
    ];
    for (stdout, fds, fd5, message) in cases {
        let reply = run_runner_with_fd5(&envelope(stdout, fds), fd5);
        assert_eq!(reply["status"], false, "{fds}: {reply}");
        assert_eq!(reply["ctl_error"]["kind"], "envelope", "{fds}: {reply}");
        let text = reply["message"].as_str().unwrap();
        assert!(text.starts_with(&message), "{fds}: {text}");
    }
}
