//! The provisioner against the real host: users, /etc files, cgroups, LXC.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ctl_provision::{oracle, CreateOptions, Layout, Net};
use ctl_test_support::container::{Env, Guard};
use ctl_test_support::names::unique_name;

fn getent(db: &str, key: &str) -> bool {
    Command::new("getent")
        .args([db, key])
        .output()
        .unwrap()
        .status
        .success()
}

fn subid_lines(user: &str) -> Vec<String> {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.split(':').next() == Some(user))
        .collect()
}

fn cgroup_dirs(relative: &str) -> Vec<std::path::PathBuf> {
    ctl_core::cgroup::hierarchies()
        .iter()
        .map(|h| h.path_of(relative))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn create_start_attach_stop_destroy() {
    let env = Env::new();
    let name = unique_name("prov");
    let t = Instant::now();
    let guard = Guard::create(&env.prov, name.clone(), &CreateOptions::default());
    eprintln!("create took {:?}", t.elapsed());
    let ct = guard.ct().clone();

    assert_eq!(ct.id, name);
    assert_eq!(ct.pool, "default");
    assert_eq!(ct.cgroup_path, format!("ctl/{name}"));
    assert!(ct.rlimits.is_empty());
    assert_eq!(env.prov.load(&name).unwrap(), ct);
    assert!(getent("passwd", &ct.user));
    assert_eq!(subid_lines(&ct.user).len(), 2);
    assert_eq!(
        cgroup_dirs(&ct.cgroup_path).len(),
        ctl_core::cgroup::hierarchies().len()
    );

    assert_eq!(oracle::lxc_state(&ct).unwrap(), "stopped");
    let t = Instant::now();
    oracle::start(&ct).unwrap();
    eprintln!("start took {:?}", t.elapsed());
    assert_eq!(oracle::lxc_state(&ct).unwrap(), "running");
    assert!(oracle::lxc_init_pid(&ct).unwrap().is_some());

    let t = Instant::now();
    let out = oracle::attach(&ct, &["hostname"]).unwrap();
    eprintln!("attach took {:?}", t.elapsed());
    assert!(
        out.status.success(),
        "attach failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);

    oracle::stop(&ct).unwrap();
    assert_eq!(oracle::lxc_state(&ct).unwrap(), "stopped");

    let t = Instant::now();
    drop(guard);
    eprintln!("destroy took {:?}", t.elapsed());
    assert!(!getent("passwd", &ct.user), "user left behind");
    assert!(!getent("group", &ct.user), "group left behind");
    assert!(
        subid_lines(&ct.user).is_empty(),
        "subuid/subgid lines left behind"
    );
    assert!(
        cgroup_dirs(&ct.cgroup_path).is_empty(),
        "cgroups left behind"
    );
    for dir in [&ct.home, &ct.lxc_home] {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert!(matches!(
        env.prov.load(&name),
        Err(ctl_provision::ProvisionError::NotFound(_))
    ));
    assert!(env.prov.list().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(env.state_dir().join("containers"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn create_twice_is_idempotent_and_destroy_twice_too() {
    let env = Env::new();
    let name = unique_name("idem");
    let guard = Guard::create(&env.prov, name.clone(), &CreateOptions::default());
    let again = env.prov.create(&name, &CreateOptions::default()).unwrap();
    assert_eq!(&again, guard.ct());
    assert_eq!(subid_lines(&again.user).len(), 2, "subid lines duplicated");
    assert_eq!(env.prov.list().unwrap(), vec![again.clone()]);
    drop(guard);
    env.prov.destroy(&name).unwrap();
}

#[test]
fn half_done_create_is_completed() {
    let env = Env::new();
    let name = unique_name("half");
    let guard = Guard::create(&env.prov, name.clone(), &CreateOptions::default());
    let ct = guard.ct().clone();
    // Lose the record and the config as if create had been interrupted.
    std::fs::remove_file(
        env.state_dir()
            .join("containers")
            .join(format!("{name}.json")),
    )
    .unwrap();
    std::fs::remove_file(ct.lxc_home.join(&name).join("config")).unwrap();
    let again = env.prov.create(&name, &CreateOptions::default()).unwrap();
    assert_eq!(again, ct);
    oracle::start(&again).unwrap();
    assert_eq!(oracle::lxc_state(&again).unwrap(), "running");
    // destroy must stop a running container by itself.
}

/// osctld's layout: a root-owned tree `ctl/<name>`, the user's `user-owned` below it and
/// the runners' entry `user-owned/lxc.monitor.<name>` (the user's too). LXC started from
/// the container's cgroup puts the payload beside the entry; destroy removes the whole
/// tree, also when the record is gone.
#[test]
fn osctld_layout_is_created_started_beside_the_entry_and_destroyed_whole() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let name = unique_name("osl");
    let opts = CreateOptions {
        layout: Layout::Osctld,
        ..CreateOptions::default()
    };
    let guard = Guard::create(&env.prov, name.clone(), &opts);
    let ct = guard.ct().clone();
    let tree = format!("ctl/{name}");
    assert_eq!(ct.cgroup_path, format!("{tree}/user-owned"));
    assert_eq!(
        ct.entry_cgroup_path.as_deref(),
        Some(format!("{tree}/user-owned/lxc.monitor.{name}").as_str())
    );
    assert_eq!(env.prov.load(&name).unwrap(), ct);
    let owners = |relative: &str| -> Vec<u32> {
        ctl_core::cgroup::hierarchies()
            .iter()
            .map(|h| std::fs::metadata(h.path_of(relative)).unwrap().uid())
            .collect()
    };
    let everywhere = |uid: u32| vec![uid; ctl_core::cgroup::hierarchies().len()];
    assert_eq!(owners(&tree), everywhere(0), "the tree stays root's");
    assert_eq!(owners(&ct.cgroup_path), everywhere(ct.ugid));
    assert_eq!(owners(ct.entry_cgroup()), everywhere(ct.ugid));

    oracle::start(&ct).unwrap();
    let init = oracle::lxc_init_pid(&ct).unwrap().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    for line in cgroups.lines() {
        assert!(
            line.ends_with(&format!(":/{}/lxc.payload.{name}", ct.cgroup_path)),
            "{cgroups}"
        );
    }

    // Destroy without the record: the tree still goes, running container and all.
    std::fs::remove_file(
        env.state_dir()
            .join("containers")
            .join(format!("{name}.json")),
    )
    .unwrap();
    drop(guard);
    assert!(cgroup_dirs(&tree).is_empty(), "cgroups left behind");
    assert!(!getent("passwd", &ct.user), "user left behind");
}

#[test]
fn parallel_creates_get_distinct_ids() {
    let env = Env::new();
    let names: Vec<String> = (0..2).map(|_| unique_name("par")).collect();
    let cts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let prov = &env.prov;
                s.spawn(move || Guard::create(prov, n.clone(), &CreateOptions::default()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (a, b) = (cts[0].ct(), cts[1].ct());
    assert_ne!(a.ugid, b.ugid);
    let (la, lb) = (subid_lines(&a.user), subid_lines(&b.user));
    assert_ne!(
        la[0].split(':').nth(1),
        lb[0].split(':').nth(1),
        "same subuid base"
    );
}

#[test]
fn invalid_names_are_rejected() {
    let env = Env::new();
    for bad in ["", "Upper", "-x", "a_b", "../etc", &"a".repeat(32)] {
        let err = env.prov.create(bad, &CreateOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("invalid container name"),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn veth_container_gets_an_interface_on_the_bridge() {
    let env = Env::new();
    let name = unique_name("veth");
    let opts = CreateOptions {
        net: Net::Veth,
        ..CreateOptions::default()
    };
    let guard = Guard::create(&env.prov, name.clone(), &opts);
    let ct = guard.ct();
    assert!(Path::new("/sys/class/net/ctlbr0").exists());
    let usernet = std::fs::read_to_string("/etc/lxc/lxc-usernet").unwrap();
    assert!(usernet
        .lines()
        .any(|l| l == format!("{} veth ctlbr0 10", ct.user)));
    oracle::start(ct).unwrap();
    let out = oracle::attach(ct, &["cat", "/sys/class/net/eth0/operstate"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The host end of the pair (lxc-info's "Link:") is enslaved to the bridge.
    let info = oracle::lxc_tool(ct, "lxc-info", &[]).unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let link = info
        .lines()
        .find_map(|l| l.strip_prefix("Link:"))
        .map(str::trim)
        .expect("a Link: line");
    let master = std::fs::read_link(format!("/sys/class/net/{link}/master")).unwrap();
    assert_eq!(master.file_name().unwrap(), "ctlbr0");
    let user = ct.user.clone();
    drop(guard);
    let usernet = std::fs::read_to_string("/etc/lxc/lxc-usernet").unwrap();
    assert!(
        !usernet.lines().any(|l| l.starts_with(&format!("{user} "))),
        "usernet line left"
    );
}

#[test]
fn destroy_kills_a_frozen_running_container() {
    let env = Env::new();
    let name = unique_name("frz");
    let guard = Guard::create(&env.prov, name.clone(), &CreateOptions::default());
    let ct = guard.ct().clone();
    oracle::start(&ct).unwrap();
    let out = oracle::lxc_tool(&ct, "lxc-freeze", &[]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(oracle::lxc_state(&ct).unwrap(), "frozen");
    let init = oracle::lxc_init_pid(&ct).unwrap().unwrap();
    drop(guard);
    assert!(
        !Path::new(&format!("/proc/{init}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
            s.contains("State:\tZ")
        },
        "init {init} survived destroy"
    );
    assert!(!getent("passwd", &ct.user));
    assert!(cgroup_dirs(&ct.cgroup_path).is_empty());
}
