//! The LXC config of a provisioned container.

use std::path::Path;

/// How the container is networked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// `lxc.net.0.type = empty`: only a loopback device.
    #[default]
    Empty,
    /// A veth pair whose host end joins bridge [`crate::BRIDGE`] (made by `lxc-user-nic`).
    Veth,
}

/// Renders the config: the busybox template's settings for an unprivileged container,
/// without its host `/lib` bind mounts (busybox is static), without AppArmor (there is
/// none on these machines), with the id map of the container's subordinate range, and
/// the host-shared directory `shared` bind-mounted at [`crate::SHARED_DIR_IN_CT`] (a
/// slave of the host side: mounts made below `shared` on the host appear inside).
pub fn render(
    name: &str,
    rootfs: &Path,
    log_file: &Path,
    shared: &Path,
    base: u32,
    range: u32,
    net: Net,
) -> String {
    let mut c = String::new();
    let mut line = |s: String| {
        c.push_str(&s);
        c.push('\n');
    };
    line("# Written by ctl-provision; rewritten on every create.".into());
    line(format!("lxc.rootfs.path = dir:{}", rootfs.display()));
    line(format!("lxc.uts.name = {name}"));
    line("lxc.signal.halt = SIGUSR1".into());
    line("lxc.signal.reboot = SIGTERM".into());
    line("lxc.autodev = 1".into());
    line("lxc.tty.max = 5".into());
    line("lxc.pty.max = 1".into());
    line("lxc.cap.drop = sys_module mac_admin mac_override sys_time".into());
    line("lxc.mount.auto = cgroup:mixed proc:mixed sys:ro".into());
    line("lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0".into());
    line("lxc.mount.entry = mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0".into());
    line(format!(
        "lxc.mount.entry = {} {} none bind,create=dir 0 0",
        shared.display(),
        crate::SHARED_DIR_IN_CT.trim_start_matches('/')
    ));
    line("lxc.apparmor.profile = unconfined".into());
    line(format!("lxc.idmap = u 0 {base} {range}"));
    line(format!("lxc.idmap = g 0 {base} {range}"));
    match net {
        Net::Empty => line("lxc.net.0.type = empty".into()),
        Net::Veth => {
            line("lxc.net.0.type = veth".into());
            line(format!("lxc.net.0.link = {}", crate::BRIDGE));
            line("lxc.net.0.flags = up".into());
        }
    }
    line(format!("lxc.log.file = {}", log_file.display()));
    line("lxc.log.level = WARN".into());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_id_map_and_net() {
        let c = render(
            "web",
            Path::new("/r"),
            Path::new("/l.log"),
            Path::new("/s/web"),
            1000,
            65536,
            Net::Veth,
        );
        assert!(c.contains("lxc.idmap = u 0 1000 65536\n"));
        assert!(c.contains("lxc.idmap = g 0 1000 65536\n"));
        assert!(c.contains("lxc.net.0.link = ctlbr0\n"));
        assert!(c.contains("lxc.uts.name = web\n"));
        assert!(c.contains("lxc.log.file = /l.log\n"));
        assert!(c.contains("lxc.mount.entry = /s/web run/ctl-shared none bind,create=dir 0 0\n"));
        let e = render(
            "web",
            Path::new("/r"),
            Path::new("/l.log"),
            Path::new("/s/web"),
            1000,
            65536,
            Net::Empty,
        );
        assert!(e.contains("lxc.net.0.type = empty\n") && !e.contains("veth"));
    }
}
