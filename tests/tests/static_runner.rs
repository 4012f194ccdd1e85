//! `ctl-runner-static`: the statically linked runner the frontend starts for commands
//! declared `static_runner` (built by `scripts/build-static-runner`, which `scripts/test` runs).
//! It must be static, place its process exactly as the dynamic runner does, and refuse
//! LXC commands with a clear reply instead of loading liblxc.

use std::path::{Path, PathBuf};

use ctl_core::diag::{Identity, Ping};
use ctl_core::{Call, Command, Placement, Stdio};
use serde_json::json;
use tests::fixtures::{
    assert_in_entry_everywhere, ctl_runner_path, output_with_stdin, serial, TestContainer, TestUser,
};

fn static_runner() -> PathBuf {
    let path = ctl_runner_path().with_file_name(ctl_core::frontend::STATIC_RUNNER_NAME);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-static-runner (scripts/test does)",
        path.display()
    );
    path
}

/// Whether the ELF file has a `PT_INTERP` program header (asks for a dynamic loader).
fn has_interpreter(path: &Path) -> bool {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is no ELF file", path.display());
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn the_static_runner_is_static_and_the_runner_is_not() {
    assert!(
        !has_interpreter(&static_runner()),
        "ctl-runner-static asks for ld.so"
    );
    assert!(
        has_interpreter(&ctl_runner_path()),
        "ctl-runner should be dynamic"
    );
}

#[test]
fn static_runner_commands_run_in_it_placed_as_in_the_dynamic_runner() {
    let _serial = serial();
    let user = TestUser::new("static");
    let ct = user.container();
    // The call names no runner: the frontend picks the static one beside `ctl-runner`.
    ctl_core::set_runner_path(ctl_runner_path());
    assert_eq!(
        ctl_core::frontend::static_runner_path(&ctl_runner_path()),
        Some(static_runner())
    );
    assert!(<Identity as Command>::SPEC.static_runner && <Ping as Command>::SPEC.static_runner);

    let by_default = Call::new(ct).stdout(Stdio::Null).stderr(Stdio::Null);
    let dynamic = by_default.clone().runner(ctl_runner_path());
    // Twice each: the first call creates the entry cgroup, the second enters through the
    // kept cgroup.procs files.
    for _ in 0..2 {
        let s = Identity::run_with(&by_default).unwrap();
        let d = Identity::run_with(&dynamic).unwrap();
        assert_eq!(Path::new(&s.exe), static_runner());
        assert_eq!(Path::new(&d.exe), ctl_runner_path());
        assert_eq!(s.uid, [ct.ugid; 3]);
        assert_eq!(s.gid, [ct.ugid; 3]);
        assert_eq!(s.groups, vec![ct.ugid]);
        assert_in_entry_everywhere(&s.cgroups, &ct.cgroup_path);
        // Everything the placement decides is the same as in the dynamic runner.
        assert_eq!(
            (&s.uid, &s.gid, &s.groups, &s.cgroups, &s.rlimits, &s.fds, &s.env),
            (&d.uid, &d.gid, &d.groups, &d.cgroups, &d.rlimits, &d.fds, &d.env)
        );
        assert_eq!(
            (s.no_new_privs, s.pdeathsig, &s.title, &s.comm),
            (d.no_new_privs, d.pdeathsig, &d.title, &d.comm)
        );
        let c = &s.capabilities;
        assert_eq!(
            (c.inheritable, c.permitted, c.effective, c.ambient),
            (0, 0, 0, 0)
        );
    }
    // The fork placement too.
    let fork = by_default.clone().placement(Placement::Fork);
    let s = Identity::run_with(&fork).unwrap();
    assert_eq!(Path::new(&s.exe), static_runner());
    assert_eq!(s.uid, [ct.ugid; 3]);
    assert_eq!(
        Ping::run_with(&by_default, json!({"a": [1, 2]})).unwrap(),
        json!({"a": [1, 2]})
    );
}

#[test]
fn commands_that_use_lxc_keep_the_dynamic_runner() {
    let _serial = serial();
    let tc = TestContainer::new("dynamic");
    ctl_core::set_runner_path(ctl_runner_path());
    assert!(!<commands::State as Command>::SPEC.static_runner);
    // The runner half of State loads liblxc: started in the static runner it would fail
    // (next test); through the default choice it works.
    let call = Call::new(tc.container())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let state = commands::State::runner(&call).unwrap_or_else(|e| panic!("State runner: {e}"));
    assert_eq!(state.state, "stopped", "{state:?}");
}

#[test]
fn the_static_runner_refuses_lxc_commands_with_a_reply() {
    let _serial = serial();
    // An operator invoking it by name with a command that needs liblxc: Start of a defined
    // (config present), stopped container. (State no longer does: it asks the monitor and
    // looks for the config without liblxc.)
    let lxc_home = tempfile::tempdir().unwrap();
    std::fs::create_dir(lxc_home.path().join("c")).unwrap();
    std::fs::write(lxc_home.path().join("c/config"), "").unwrap();
    let envelope = format!(
        r#"{{"name":"Start","pool":"p","id":"c","lxc_home":"{}","user_home":"/tmp","args":[],"kwargs":{{}},"return":1,"stdin":null,"stdout":null,"stderr":null}}"#,
        lxc_home.path().display()
    );
    let out = output_with_stdin(
        &mut std::process::Command::new(static_runner()),
        envelope.as_bytes(),
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no reply ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(reply["status"], false, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("statically linked and cannot load liblxc")
            && message.contains("static_runner"),
        "{message}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
