//! A terminal inside a running container, for tests of what commands write to the users'
//! terminals (Wall, the stop commands' messages), and utmp records that point at it.

use std::fs::File;
use std::io::Read;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use ctl_core::Container;
use ctl_provision::oracle;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

/// A pseudo-terminal in the container's own devpts instance, opened from the host through
/// `/proc/<init>/root/dev/ptmx`: the master (where whatever is written to the terminal
/// arrives) and the name inside (`pts/<n>`). The slave is held open too, so that reading
/// the master does not see a hang-up.
pub struct ContainerPty {
    master: OwnedFd,
    _slave: OwnedFd,
    /// The terminal's name below `/dev` inside (`pts/<n>`), as utmp records it.
    pub name: String,
}

/// The host uid of the container's root (the owner of its rootfs).
pub fn root_host_id(ct: &Container) -> u32 {
    std::fs::metadata(ct.lxc_home.join(&ct.id).join("rootfs"))
        .unwrap()
        .uid()
}

impl ContainerPty {
    /// A new terminal of the running container `ct`, owned by its root (as a login of root
    /// would leave it).
    pub fn open(ct: &Container) -> ContainerPty {
        let init = oracle::lxc_init_pid(ct).unwrap().expect("running");
        let ptmx = format!("/proc/{init}/root/dev/ptmx");
        let fd = nix::fcntl::open(
            ptmx.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("open {ptmx}: {e}"));
        // SAFETY: `fd` was just opened from a ptmx device, so it is a pty master; the
        // PtyMaster takes it over and owns it alone.
        let master = unsafe { nix::pty::PtyMaster::from_owned_fd(fd) };
        nix::pty::unlockpt(&master).unwrap();
        let path = nix::pty::ptsname_r(&master).unwrap();
        let name = path.strip_prefix("/dev/").unwrap().to_owned();
        let slave_path = format!("/proc/{init}/root/dev/{name}");
        let id = root_host_id(ct);
        std::os::unix::fs::chown(&slave_path, Some(id), None).unwrap();
        let slave = nix::fcntl::open(
            slave_path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        ContainerPty {
            master: master.into(),
            _slave: slave,
            name,
        }
    }

    /// Makes the container's utmp say that root is logged in on this terminal (and nobody
    /// else anywhere).
    pub fn register_root_login(&self, ct: &Container) {
        let utmp_path = ct.lxc_home.join(&ct.id).join("rootfs/var/run/utmp");
        std::fs::write(
            &utmp_path,
            utmp_record(libc::USER_PROCESS, 4242, &self.name, "root"),
        )
        .unwrap();
        let id = root_host_id(ct);
        std::os::unix::fs::lchown(&utmp_path, Some(id), Some(id)).unwrap();
    }

    /// Everything written to the terminal within `timeout` after the first byte arrived
    /// (or nothing, if nothing came); the writer's pauses shorter than 300 ms count as one
    /// message.
    pub fn read(&self, timeout: Duration) -> String {
        let mut all = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut file = File::from(self.master.try_clone().unwrap());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = if all.is_empty() {
                left.as_millis()
            } else {
                300
            }
            .min(u128::from(u16::MAX)) as u16;
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) == 0 {
                break;
            }
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// One utmp record (glibc's layout, which the container's busybox also uses).
pub fn utmp_record(kind: i16, pid: i32, line: &str, user: &str) -> Vec<u8> {
    let mut rec = vec![0u8; size_of::<libc::utmpx>()];
    let put = |rec: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        rec[at..at + bytes.len()].copy_from_slice(bytes)
    };
    put(
        &mut rec,
        offset_of!(libc::utmpx, ut_type),
        &kind.to_ne_bytes(),
    );
    put(
        &mut rec,
        offset_of!(libc::utmpx, ut_pid),
        &pid.to_ne_bytes(),
    );
    put(&mut rec, offset_of!(libc::utmpx, ut_line), line.as_bytes());
    let id = line.rsplit('/').next().unwrap_or("").as_bytes();
    put(
        &mut rec,
        offset_of!(libc::utmpx, ut_id),
        &id[..id.len().min(4)],
    );
    put(&mut rec, offset_of!(libc::utmpx, ut_user), user.as_bytes());
    rec
}
