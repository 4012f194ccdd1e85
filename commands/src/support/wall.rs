//! Writing a message to the user ttys inside a running container (Wall, and Stop's
//! message), from a helper attached into it.

use std::io::Read;
use std::mem::{offset_of, size_of};
use std::time::{Duration, Instant};

use ctl_core::CommandError;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::attach::attach_and_report;
use super::status::bounded_by;

/// How long the process that Wall attaches into the container may take before it is
/// killed and the command fails. It reads at most 1024 utmp records and writes to each
/// terminal without blocking: milliseconds. But it lives in the container's pid namespace,
/// where the container's root can SIGSTOP it, and without a bound of its own a Wall without
/// a caller deadline would wait forever (and Stop's message would delay its kill). 5 s is
/// a hundred times what it takes on a loaded machine, and short next to a stop's timeout.
pub const WALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `message` (with `banner`) to the user ttys of the running container `ct`,
/// from a process attached into it that is killed after [`WALL_TIMEOUT`], or at `limit`
/// if that comes first (Stop's deadline). Returns how many ttys got it.
pub fn wall_inside(
    ct: &ctl_lxc::Container,
    message: &str,
    banner: Option<&str>,
    limit: Option<Instant>,
) -> Result<usize, CommandError> {
    wall_text_inside(ct, &compose(message, banner), limit)
}

/// Writes `text` exactly as it is to the user ttys of the running container `ct` (see
/// [`wall_inside`]).
pub fn wall_text_inside(
    ct: &ctl_lxc::Container,
    text: &str,
    limit: Option<Instant>,
) -> Result<usize, CommandError> {
    let deadline = bounded_by(WALL_TIMEOUT, limit);
    let report = attach_and_report(ct, "wall", deadline, &|| {
        Ok(write_to_user_ttys(text.as_bytes()).to_string())
    })?;
    let written = report?;
    tracing::debug!(ttys = %written, "wall");
    Ok(written.parse().unwrap_or(0))
}

/// `Message from host machine <hostname> (<UTC time>):`.
pub fn default_banner() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "(unknown)".to_owned());
    format!("Message from host machine {host} ({}):", utc_now())
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// What goes to each tty: blank lines around the banner and the message, control
/// characters (but newlines and tabs) replaced, `\r\n` line ends (a terminal in raw mode
/// would not return the carriage).
pub fn compose(message: &str, banner: Option<&str>) -> String {
    let body = match banner.filter(|b| !b.is_empty()) {
        Some(banner) => format!("\n\n{banner}\n\n{message}\n\n"),
        None => format!("\n\n{message}\n\n"),
    };
    body.replace("\r\n", "\n")
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect::<String>()
        .replace('\n', "\r\n")
}

/// Where utmp may be, in this order.
const UTMP_FILES: &[&str] = &["/run/utmp", "/var/run/utmp"];
/// Most utmp records read from one file.
const MAX_UTMP_RECORDS: usize = 1024;

/// The `USER_PROCESS` ttys of the utmp files, validated, without duplicates.
fn user_ttys() -> Vec<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let record = size_of::<libc::utmpx>();
    let type_at = offset_of!(libc::utmpx, ut_type);
    let line_at = offset_of!(libc::utmpx, ut_line);
    let line_len = size_of::<[libc::c_char; 32]>();
    let mut ttys = Vec::new();
    for path in UTMP_FILES {
        let mut bytes = Vec::new();
        // The container's root controls these paths: a FIFO must not make us wait for a
        // writer (O_NONBLOCK), and only a regular file is read.
        let read = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .and_then(|f| {
                if !f.metadata()?.is_file() {
                    return Err(std::io::Error::other("not a regular file"));
                }
                f.take((record * MAX_UTMP_RECORDS) as u64)
                    .read_to_end(&mut bytes)
            });
        if read.is_err() {
            continue;
        }
        for rec in bytes.chunks_exact(record) {
            let kind = i16::from_ne_bytes([rec[type_at], rec[type_at + 1]]);
            if kind != libc::USER_PROCESS {
                continue;
            }
            let line = &rec[line_at..line_at + line_len];
            let line = &line[..line.iter().position(|b| *b == 0).unwrap_or(line.len())];
            if let Some(name) = valid_tty(line) {
                if !ttys.contains(&name) {
                    ttys.push(name);
                }
            }
        }
    }
    ttys
}

/// A utmp line naming a terminal we may write to: `pts/<digits>` or `tty<letters/digits>`;
/// anything else (`../../etc/passwd`, `console`, `pts/../x`) is refused.
pub fn valid_tty(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let ok = if let Some(n) = line.strip_prefix("pts/") {
        !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit())
    } else if let Some(n) = line.strip_prefix("tty") {
        !n.is_empty() && n.len() <= 16 && n.bytes().all(|b| b.is_ascii_alphanumeric())
    } else {
        false
    };
    ok.then(|| line.to_owned())
}

/// Writes `text` to every user tty; returns how many got it whole.
fn write_to_user_ttys(text: &[u8]) -> usize {
    user_ttys()
        .iter()
        .filter(|tty| write_tty(tty, text))
        .count()
}

fn write_tty(name: &str, text: &[u8]) -> bool {
    let path = format!("/dev/{name}");
    let flags = OFlag::O_WRONLY
        | OFlag::O_NOCTTY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC;
    let Ok(fd) = nix::fcntl::open(path.as_str(), flags, Mode::empty()) else {
        return false;
    };
    if !nix::unistd::isatty(&fd).unwrap_or(false) {
        return false;
    }
    let mut rest = text;
    while !rest.is_empty() {
        match nix::unistd::write(&fd, rest) {
            Ok(0) => return false,
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            // EAGAIN: the terminal is not reading; it loses the rest.
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_names() {
        assert_eq!(valid_tty(b"pts/3").as_deref(), Some("pts/3"));
        assert_eq!(valid_tty(b"tty1").as_deref(), Some("tty1"));
        assert_eq!(valid_tty(b"ttyS0").as_deref(), Some("ttyS0"));
        for bad in [
            &b"../../etc/passwd"[..],
            b"pts/../../etc/passwd",
            b"pts/",
            b"tty",
            b"console",
            b"tty1/x",
            b"pts/1a",
            b"",
            b"/dev/pts/1",
        ] {
            assert_eq!(valid_tty(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn message_layout() {
        assert_eq!(
            compose("hi\nthere", Some("B:")),
            "\r\n\r\nB:\r\n\r\nhi\r\nthere\r\n\r\n"
        );
        assert_eq!(compose("a\x1b[2Jb", Some("")), "\r\n\r\na?[2Jb\r\n\r\n");
    }

    #[test]
    fn banner_names_host_and_time() {
        let b = default_banner();
        assert!(
            b.starts_with("Message from host machine ") && b.ends_with(" UTC):"),
            "{b}"
        );
        let t = utc_now();
        assert_eq!(t.len(), "2024-01-01 00:00:00 UTC".len(), "{t}");
    }
}
