//! `cgroup.procs` files kept open across calls, for cold exec runners.
//!
//! A cold exec runner moves itself into the container's entry cgroup of each cgroup v1
//! hierarchy by writing `0` to that hierarchy's `cgroup.procs`. Opening the file (a path
//! walk through sysfs, tmpfs and the cgroup file system, then kernfs's per-open state) costs
//! about as much again as the move; A/B on this project's host: ~23 µs per call over its
//! eight v1 hierarchies (docs/performance.md). So the frontend opens each file once, keeps
//! it, and hands a copy to every runner it starts ([`PlacementSpec::procs_fds`]); the
//! runner writes to the copy and closes it before it drops root.
//!
//! Bounds: at most [`MAX_FILES`] files are kept (the least recently used go first), none
//! longer than [`MAX_AGE`] after it was opened. A kept file outlives its cgroup when the
//! cgroup is removed: writing to it then fails (`ENODEV`) and the runner falls back to the
//! path, re-creating the entry cgroup as on a first call, so a stale file costs only the
//! time saved. [`Launcher::remove_entry_cgroup`] forgets the files below the entry it
//! removes; a daemon that removes entry cgroups by other means can call
//! [`Launcher::forget_cgroup_files`]. The files belong to a [`Launcher`]: each keeps its
//! own. An open file follows its cgroup through a rename (cgroup v1
//! allows `mv` of a cgroup directory): neither LXC nor osctld renames cgroups, and
//! [`MAX_AGE`] bounds how long a renamed entry cgroup would still be entered.
//!
//! [`PlacementSpec::procs_fds`]: crate::envelope::PlacementSpec::procs_fds
//! [`Launcher`]: super::Launcher
//! [`Launcher::remove_entry_cgroup`]: super::Launcher::remove_entry_cgroup
//! [`Launcher::forget_cgroup_files`]: super::Launcher::forget_cgroup_files

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many files are kept at most: the fds a daemon spends on this (nine hierarchies
/// here, so the files of about fourteen containers).
pub const MAX_FILES: usize = 128;

/// How long a file is reused after it was opened.
pub const MAX_AGE: Duration = Duration::from_secs(10);

pub(crate) fn open(path: &str, first_fd: RawFd) -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let fd = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(first_fd))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[derive(Debug)]
struct Kept {
    file: Arc<OwnedFd>,
    opened: Instant,
    used: Instant,
}

/// The kept files, by path.
#[derive(Debug)]
pub(crate) struct ProcsFiles {
    kept: HashMap<String, Kept>,
    max_files: usize,
    max_age: Duration,
}

impl ProcsFiles {
    pub(crate) fn new(max_files: usize, max_age: Duration) -> ProcsFiles {
        ProcsFiles {
            kept: HashMap::new(),
            max_files,
            max_age,
        }
    }

    pub(crate) fn checkout<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str>,
        now: Instant,
        mut open: impl FnMut(&str) -> io::Result<OwnedFd>,
    ) -> Vec<(&'a str, Arc<OwnedFd>)> {
        let mut out = Vec::new();
        for path in paths {
            if let Some(kept) = self.kept.get_mut(path) {
                if now.saturating_duration_since(kept.opened) < self.max_age {
                    kept.used = now;
                    out.push((path, Arc::clone(&kept.file)));
                    continue;
                }
                self.kept.remove(path);
            }
            let Ok(file) = open(path) else { continue };
            let file = Arc::new(file);
            self.make_room(now);
            self.kept.insert(
                path.to_owned(),
                Kept {
                    file: Arc::clone(&file),
                    opened: now,
                    used: now,
                },
            );
            out.push((path, file));
        }
        out
    }

    /// Drops the files kept too long, then the least recently used, until one more fits.
    /// A file still lent to a spawn in progress closes when that spawn is done with it.
    fn make_room(&mut self, now: Instant) {
        if self.kept.len() < self.max_files {
            return;
        }
        let max_age = self.max_age;
        self.kept
            .retain(|_, k| now.saturating_duration_since(k.opened) < max_age);
        while self.kept.len() >= self.max_files.max(1) {
            let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            self.kept.remove(&oldest);
        }
    }

    pub(crate) fn forget(&mut self, matching: impl Fn(&str) -> bool) {
        self.kept.retain(|path, _| !matching(path));
    }

    #[cfg(test)]
    fn kept_paths(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.kept.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// Opens /dev/null in place of a cgroup file, counting the opens.
    fn opener(count: &std::cell::Cell<usize>) -> impl FnMut(&str) -> io::Result<OwnedFd> + '_ {
        move |path| {
            if path.starts_with("/missing") {
                return Err(io::ErrorKind::NotFound.into());
            }
            count.set(count.get() + 1);
            Ok(std::fs::File::open("/dev/null")?.into())
        }
    }

    #[test]
    fn reuses_a_file_until_it_is_too_old() {
        let opens = std::cell::Cell::new(0);
        let mut files = ProcsFiles::new(8, Duration::from_secs(10));
        let t0 = Instant::now();
        let first = files.checkout(["/a", "/b"], t0, opener(&opens));
        assert_eq!(opens.get(), 2);
        let again = files.checkout(["/a", "/b"], t0 + Duration::from_secs(9), opener(&opens));
        assert_eq!(opens.get(), 2, "kept files were opened again");
        for ((p1, f1), (p2, f2)) in first.iter().zip(&again) {
            assert_eq!((p1, f1.as_raw_fd()), (p2, f2.as_raw_fd()));
        }
        let later = files.checkout(["/a"], t0 + Duration::from_secs(10), opener(&opens));
        assert_eq!(opens.get(), 3, "a file past its age was reused");
        assert_ne!(later[0].1.as_raw_fd(), first[0].1.as_raw_fd());
    }

    #[test]
    fn leaves_out_what_cannot_be_opened() {
        let opens = std::cell::Cell::new(0);
        let mut files = ProcsFiles::new(8, Duration::from_secs(10));
        let got = files.checkout(["/a", "/missing/x", "/b"], Instant::now(), opener(&opens));
        let paths: Vec<&str> = got.iter().map(|(p, _)| *p).collect();
        assert_eq!(paths, ["/a", "/b"]);
        assert_eq!(files.kept_paths(), ["/a", "/b"]);
    }

    #[test]
    fn keeps_at_most_max_files_dropping_the_least_recently_used() {
        let opens = std::cell::Cell::new(0);
        let mut files = ProcsFiles::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let s = Duration::from_millis;
        files.checkout(["/a"], t0, opener(&opens));
        files.checkout(["/b"], t0 + s(1), opener(&opens));
        files.checkout(["/c"], t0 + s(2), opener(&opens));
        files.checkout(["/a"], t0 + s(3), opener(&opens)); // /b is now the least recent
        files.checkout(["/d"], t0 + s(4), opener(&opens));
        assert_eq!(files.kept_paths(), ["/a", "/c", "/d"]);
        assert_eq!(opens.get(), 4);
    }

    #[test]
    fn a_lent_file_stays_open_after_it_is_dropped_from_the_cache() {
        let opens = std::cell::Cell::new(0);
        let mut files = ProcsFiles::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        let lent = files.checkout(["/a"], t0, opener(&opens));
        files.checkout(["/b"], t0, opener(&opens));
        assert_eq!(files.kept_paths(), ["/b"]);
        // The spawn still holding /a can use it.
        let fd = lent[0].1.as_raw_fd();
        assert!(nix::fcntl::fcntl(
            // SAFETY: `lent` keeps the fd open for the duration of the check.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFD
        )
        .is_ok());
    }

    #[test]
    fn forgets_what_matches() {
        let opens = std::cell::Cell::new(0);
        let mut files = ProcsFiles::new(8, Duration::from_secs(10));
        files.checkout(
            [
                "/sys/fs/cgroup/cpu/ctl/a/cgroup.procs",
                "/sys/fs/cgroup/cpu/ctl/ab/cgroup.procs",
                "/sys/fs/cgroup/memory/ctl/a/cgroup.procs",
            ],
            Instant::now(),
            opener(&opens),
        );
        let inside = "/ctl/a/";
        files.forget(|p| p.contains(inside));
        assert_eq!(
            files.kept_paths(),
            ["/sys/fs/cgroup/cpu/ctl/ab/cgroup.procs"]
        );
    }
}
