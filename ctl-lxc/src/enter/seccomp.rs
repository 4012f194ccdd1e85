//! The container's seccomp profile (`lxc.seccomp.profile`), applied by ctl's own attach as
//! liblxc 5.0's attach applies it: the same file, read the same way, compiled with the same
//! libseccomp calls, loaded at the same step (after `no_new_privs`, before the final id
//! change). `docs/research-liblxc-attach-confinement.md` has liblxc's steps with their
//! line numbers.
//!
//! # How
//!
//! Before the fork (in the attaching worker, as the container's user): the profile's path
//! is the *running* value, from the monitor (as liblxc's `fetch_seccomp` asks it); the file
//! is parsed here ([`Profile::parse`], LXC's version 2 format), and the filter is built
//! through libseccomp (`libseccomp.so.2`, loaded with `dlopen`: liblxc links it, so it is
//! there wherever LXC is) with LXC's sequence — a main context, compat contexts for x86 and
//! x32 merged into it, `SCMP_FLTATR_CTL_NNP` off — and exported as BPF. The attached child
//! only makes one `seccomp(SECCOMP_SET_MODE_FILTER)` call with that program: no library
//! code runs after the fork. It still has `CAP_SYS_ADMIN` in the container's user
//! namespace at that step, so the filter needs no `no_new_privs` (as with liblxc).
//!
//! # Not covered (liblxc's attach runs instead)
//!
//! Version 1 profiles, `notify` actions (they need the monitor's proxy), hosts other than
//! x86_64, a profile that does not parse or compile (liblxc then warns and loads whatever it
//! built), and a caller that is itself under a seccomp filter (liblxc then loads none).

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Seek};
use std::path::Path;

use libloading::Library;

use super::policy::NotCovered;
use super::EnterError;

/// libseccomp's action values (`<seccomp.h>`).
const ACT_KILL: u32 = 0x0000_0000;
const ACT_TRAP: u32 = 0x0003_0000;
const ACT_NOTIFY: u32 = 0x7fc0_0000;
const ACT_ALLOW: u32 = 0x7fff_0000;
const fn act_errno(errno: i32) -> u32 {
    0x0005_0000 | (errno as u32 & 0x0000_ffff)
}

/// `SCMP_ARCH_*`: the native one, and the compat ABIs of an x86_64 host.
const ARCH_NATIVE: u32 = 0;
const ARCH_X86: u32 = 0x4000_0003;
const ARCH_X32: u32 = 0x4000_003e;
const ARCH_X86_64: u32 = 0xc000_003e;

/// `SCMP_FLTATR_CTL_NNP`.
const ATTR_CTL_NNP: c_int = 3;
/// `__NR_SCMP_ERROR`: a name libseccomp does not know.
const NR_SCMP_ERROR: c_int = -1;
/// `SCMP_CMP_MASKED_EQ`.
const CMP_MASKED_EQ: c_int = 7;
/// `MNT_FORCE`.
const MNT_FORCE: u64 = 1;

fn not_covered(why: impl Into<String>) -> EnterError {
    EnterError::NotCovered(NotCovered {
        key: "lxc.seccomp.profile".to_owned(),
        why: why.into(),
    })
}

// ---------------------------------------------------------------------------------------
// The profile

/// One comparison of a rule's arguments (`struct scmp_arg_cmp`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArgCmp {
    arg: c_uint,
    op: c_int,
    datum_a: u64,
    datum_b: u64,
}

/// One line of the profile that adds rules.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// `reject_force_umount`: `umount2` with `MNT_FORCE` fails with `EACCES`.
    RejectForceUmount,
    /// A system call by name, its action, its argument comparisons.
    Syscall {
        name: String,
        action: u32,
        args: Vec<ArgCmp>,
    },
}

/// A version 2 profile, as LXC's `parse_config_v2` reads it on an x86_64 host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    /// The action for the system calls no rule names.
    default_action: u32,
    rules: Vec<Rule>,
}

impl Profile {
    /// Parses `text`; `Err` names what LXC would refuse, or what is not covered here.
    pub(crate) fn parse(text: &str) -> Result<Profile, String> {
        // `fscanf("%d\n")`: the number, then any whitespace.
        let rest = text.trim_start();
        let digits = rest
            .char_indices()
            .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')))
            .count();
        let version: i64 = rest[..digits]
            .parse()
            .map_err(|_| "no version number on the first line".to_owned())?;
        let rest = rest[digits..].trim_start();
        match version {
            2 => {}
            1 => return Err("a version 1 profile".to_owned()),
            v => return Err(format!("version {v}")),
        }
        let mut lines = rest.split_inclusive('\n');
        let policy = lines.next().ok_or("no policy line")?;
        if policy.contains("debug") {
            return Err("the policy asks for debug".to_owned());
        }
        let denylist = policy.starts_with("denylist") || policy.starts_with("blacklist");
        let allowlist = policy.starts_with("allowlist") || policy.starts_with("whitelist");
        if !(denylist || allowlist) {
            return Err(format!("policy style {:?}", policy.trim_end()));
        }
        let given = match policy.split_once(' ') {
            Some((_, after)) => action_word(after)?,
            None => None,
        };
        let (default_action, rule_default) = if denylist {
            (given.unwrap_or(ACT_ALLOW), ACT_KILL)
        } else {
            (given.unwrap_or(ACT_KILL), ACT_ALLOW)
        };
        if default_action == ACT_NOTIFY {
            return Err("a notify action (the monitor's proxy)".to_owned());
        }
        let mut rules = Vec::new();
        let mut skipping = false;
        for raw in lines {
            if raw.starts_with('#') || raw.starts_with('\0') {
                continue;
            }
            let line = raw.trim_end_matches('\n');
            if line.starts_with('[') {
                if X86_SECTIONS.contains(&line) {
                    skipping = false;
                } else if OTHER_SECTIONS.contains(&line) {
                    skipping = true;
                } else {
                    return Err(format!("architecture section {line:?}"));
                }
                continue;
            }
            if skipping {
                continue;
            }
            let action = rule_action(line, rule_default)?;
            if action == ACT_NOTIFY {
                return Err("a notify action (the monitor's proxy)".to_owned());
            }
            let args = rule_args(line)?;
            let name = line.split(' ').next().unwrap_or("");
            rules.push(if name.starts_with("reject_force_umount") {
                Rule::RejectForceUmount
            } else {
                Rule::Syscall {
                    name: name.to_owned(),
                    action,
                    args,
                }
            });
        }
        Ok(Profile {
            default_action,
            rules,
        })
    }
}

/// Sections whose rules apply on an x86_64 host: LXC only tells "unknown" apart, so on
/// x86_64 each of these puts its rules into all three ABIs.
const X86_SECTIONS: &[&str] = &[
    "[all]", "[ALL]", "[x86]", "[X86]", "[x32]", "[X32]", "[x86_64]", "[X86_64]",
];

/// Sections of other architectures: their rules are skipped.
const OTHER_SECTIONS: &[&str] = &[
    "[arm]",
    "[ARM]",
    "[arm64]",
    "[ARM64]",
    "[ppc64le]",
    "[PPC64LE]",
    "[ppc64]",
    "[PPC64]",
    "[ppc]",
    "[PPC]",
    "[mips64]",
    "[MIPS64]",
    "[mips64n32]",
    "[MIPS64N32]",
    "[mips]",
    "[MIPS]",
    "[mipsel64]",
    "[MIPSEL64]",
    "[mipsel64n32]",
    "[MIPSEL64N32]",
    "[mipsel]",
    "[MIPSEL]",
    "[s390x]",
    "[S390X]",
    "[s390]",
    "[S390]",
];

/// LXC's `get_v2_default_action`: `None` for nothing, an error for an unknown word.
fn action_word(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim_start_matches(' ');
    Ok(Some(if text.starts_with("kill") {
        ACT_KILL
    } else if let Some(number) = text.strip_prefix("errno") {
        errno_action(number).ok_or_else(|| format!("errno value in {text:?}"))?
    } else if text.starts_with("allow") {
        ACT_ALLOW
    } else if text.starts_with("trap") {
        ACT_TRAP
    } else if text.starts_with("notify") {
        ACT_NOTIFY
    } else if text.is_empty() {
        return Ok(None);
    } else {
        return Err(format!("unknown action {:?}", text.trim_end()));
    }))
}

/// `sscanf("%d")` of what follows `errno`, as an errno action.
fn errno_action(text: &str) -> Option<u32> {
    scan_int(text.trim_start()).map(|(n, _)| act_errno(n as i32))
}

/// LXC's `get_v2_action`: the action after the name, else the rule default.
fn rule_action(line: &str, default: u32) -> Result<u32, String> {
    let Some((_, after)) = line.split_once(' ') else {
        return Ok(default);
    };
    let after = after.trim_start_matches(' ');
    if after.is_empty() || after.starts_with('#') {
        return Ok(default);
    }
    Ok(action_word(after)?.unwrap_or(default))
}

/// LXC's argument filters: up to six `[index,value,op]` or `[index,value,op,mask]`, the
/// line split at each `]`.
fn rule_args(line: &str) -> Result<Vec<ArgCmp>, String> {
    if !line.contains('[') {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    for token in line.split(']').filter(|t| !t.is_empty()).take(6) {
        let open = token
            .find('[')
            .ok_or_else(|| format!("arguments in {line:?}"))?;
        args.push(arg_cmp(&token[open + 1..]).ok_or_else(|| format!("arguments in {line:?}"))?);
    }
    Ok(args)
}

/// `sscanf("%i,%23[^,],%30[^0-9^,],%23[^,]")` after the `[`, then LXC's checks.
fn arg_cmp(text: &str) -> Option<ArgCmp> {
    let (index, rest) = scan_int(text.trim_start())?;
    let rest = rest.strip_prefix(',')?;
    let value_len = rest.find(',').unwrap_or(rest.len()).min(23);
    if value_len == 0 {
        return None;
    }
    let (value, rest) = rest.split_at(value_len);
    let rest = rest.strip_prefix(',')?;
    let op_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '^' || c == ',')
        .unwrap_or(rest.len())
        .min(30);
    if op_len == 0 {
        return None;
    }
    let (op, rest) = rest.split_at(op_len);
    let mask = match rest.strip_prefix(',') {
        Some(m) if !m.is_empty() => &m[..m.find(',').unwrap_or(m.len()).min(23)],
        _ => "0",
    };
    let index = u32::try_from(index).ok().filter(|&i| i < 6)?;
    let value = safe_u64(value)?;
    let mask = safe_u64(mask)?;
    let op = match op {
        "SCMP_CMP_NE" | "!=" => 1,
        "SCMP_CMP_LT" | "<" => 2,
        "SCMP_CMP_LE" | "<=" => 3,
        "SCMP_CMP_EQ" | "==" => 4,
        "SCMP_CMP_GE" | ">=" => 5,
        "SCMP_CMP_GT" | ">" => 6,
        "SCMP_CMP_MASKED_EQ" | "&=" => CMP_MASKED_EQ,
        _ => return None,
    };
    Some(if op == CMP_MASKED_EQ {
        ArgCmp {
            arg: index,
            op,
            datum_a: mask,
            datum_b: value,
        }
    } else {
        ArgCmp {
            arg: index,
            op,
            datum_a: value,
            datum_b: 0,
        }
    })
}

/// `%i`: an optionally signed integer in C's notation (`0x…`, `0…` octal, decimal); the
/// value and what follows it.
fn scan_int(text: &str) -> Option<(i64, &str)> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits_from) = if body.starts_with("0x") || body.starts_with("0X") {
        (16, 2)
    } else if body.starts_with('0') && body.len() > 1 {
        (8, 1)
    } else {
        (10, 0)
    };
    let digits = &body[digits_from..];
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let value = if len == 0 {
        if radix == 8 {
            0
        } else {
            return None;
        }
    } else {
        i64::from_str_radix(&digits[..len], radix).ok()?
    };
    Some((if negative { -value } else { value }, &digits[len..]))
}

/// LXC's `lxc_safe_uint64(…, 0)`: leading spaces, no sign, C notation, nothing after.
fn safe_u64(text: &str) -> Option<u64> {
    let text = text.trim_start();
    if text.starts_with('-') {
        return None;
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u64::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

// ---------------------------------------------------------------------------------------
// libseccomp

type Ctx = *mut c_void;

/// The libseccomp entry points LXC's profile compiler uses, and `seccomp_export_bpf`.
struct Seccomp {
    init: unsafe extern "C" fn(u32) -> Ctx,
    reset: unsafe extern "C" fn(Ctx, u32) -> c_int,
    release: unsafe extern "C" fn(Ctx),
    merge: unsafe extern "C" fn(Ctx, Ctx) -> c_int,
    arch_native: unsafe extern "C" fn() -> u32,
    arch_exist: unsafe extern "C" fn(Ctx, u32) -> c_int,
    arch_add: unsafe extern "C" fn(Ctx, u32) -> c_int,
    arch_remove: unsafe extern "C" fn(Ctx, u32) -> c_int,
    attr_set: unsafe extern "C" fn(Ctx, c_int, u32) -> c_int,
    resolve_name: unsafe extern "C" fn(*const c_char) -> c_int,
    resolve_name_arch: unsafe extern "C" fn(u32, *const c_char) -> c_int,
    rule_add_exact_array: unsafe extern "C" fn(Ctx, u32, c_int, c_uint, *const ArgCmp) -> c_int,
    export_bpf: unsafe extern "C" fn(Ctx, c_int) -> c_int,
    _library: Library,
}

const LIBSECCOMP: &str = "libseccomp.so.2";

impl Seccomp {
    fn load() -> Result<Seccomp, String> {
        if cfg!(target_feature = "crt-static") {
            return Err("a statically linked runner cannot load libseccomp".to_owned());
        }
        // SAFETY: libseccomp's constructors only set up its own state.
        let library =
            unsafe { Library::new(LIBSECCOMP) }.map_err(|e| format!("dlopen {LIBSECCOMP}: {e}"))?;
        /// # Safety
        /// `T` must be the symbol's exact type; the result must not outlive `library`.
        unsafe fn get<T: Copy>(library: &Library, name: &str) -> Result<T, String> {
            // SAFETY: forwarded to the caller.
            unsafe { library.get::<T>(name) }
                .map(|s| *s)
                .map_err(|e| format!("{LIBSECCOMP} lacks {name}: {e}"))
        }
        // SAFETY: each type is the prototype in libseccomp 2.5's <seccomp.h>
        // (`scmp_filter_ctx` is `void *`, enums are `int`); the pointers live as long as
        // `library`, which is stored beside them.
        unsafe {
            Ok(Seccomp {
                init: get(&library, "seccomp_init")?,
                reset: get(&library, "seccomp_reset")?,
                release: get(&library, "seccomp_release")?,
                merge: get(&library, "seccomp_merge")?,
                arch_native: get(&library, "seccomp_arch_native")?,
                arch_exist: get(&library, "seccomp_arch_exist")?,
                arch_add: get(&library, "seccomp_arch_add")?,
                arch_remove: get(&library, "seccomp_arch_remove")?,
                attr_set: get(&library, "seccomp_attr_set")?,
                resolve_name: get(&library, "seccomp_syscall_resolve_name")?,
                resolve_name_arch: get(&library, "seccomp_syscall_resolve_name_arch")?,
                rule_add_exact_array: get(&library, "seccomp_rule_add_exact_array")?,
                export_bpf: get(&library, "seccomp_export_bpf")?,
                _library: library,
            })
        }
    }
}

/// A libseccomp context, released on drop unless merged away.
struct Context<'a> {
    lib: &'a Seccomp,
    ctx: Ctx,
}

impl<'a> Context<'a> {
    fn new(lib: &'a Seccomp, action: u32) -> Result<Context<'a>, String> {
        // SAFETY: seccomp_init returns a new context or NULL.
        let ctx = unsafe { (lib.init)(action) };
        if ctx.is_null() {
            return Err("seccomp_init failed".to_owned());
        }
        let context = Context { lib, ctx };
        context.no_nnp()?;
        Ok(context)
    }

    /// `SCMP_FLTATR_CTL_NNP` off: loading sets no `no_new_privs` (LXC's choice).
    fn no_nnp(&self) -> Result<(), String> {
        // SAFETY: a live context, an attribute and a value.
        check("seccomp_attr_set", unsafe {
            (self.lib.attr_set)(self.ctx, ATTR_CTL_NNP, 0)
        })
    }

    fn add(&self, action: u32, nr: c_int, args: &[ArgCmp]) -> Result<(), String> {
        // SAFETY: a live context; `args` is an array of `args.len()` `scmp_arg_cmp`s.
        check("seccomp_rule_add_exact_array", unsafe {
            (self.lib.rule_add_exact_array)(
                self.ctx,
                action,
                nr,
                args.len() as c_uint,
                args.as_ptr(),
            )
        })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: a live context, released once.
            unsafe { (self.lib.release)(self.ctx) };
        }
    }
}

fn check(what: &str, ret: c_int) -> Result<(), String> {
    if ret < 0 {
        Err(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(-ret)
        ))
    } else {
        Ok(())
    }
}

/// A compiled filter, ready for the attached process.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    program: Vec<libc::sock_filter>,
}

impl Profile {
    /// Builds the filter with LXC's sequence of libseccomp calls (`lxc_read_seccomp_config`,
    /// `parse_config_v2`, `get_new_ctx`, `do_resolve_add_rule` on an x86_64 host).
    fn compile(&self, lib: &Seccomp) -> Result<Filter, String> {
        let main = Context::new(lib, ACT_KILL)?;
        let mut compat = Vec::new();
        for arch in [ARCH_X86, ARCH_X32, ARCH_X86_64] {
            let ctx = Context::new(lib, self.default_action)?;
            // SAFETY: a live context and an architecture token.
            let exists = unsafe { (lib.arch_exist)(ctx.ctx, arch) };
            let needs_merge = if exists == -libc::EEXIST {
                // SAFETY: as above.
                check("seccomp_arch_add", unsafe { (lib.arch_add)(ctx.ctx, arch) })?;
                // SAFETY: as above.
                check("seccomp_arch_remove", unsafe {
                    (lib.arch_remove)(ctx.ctx, ARCH_NATIVE)
                })?;
                true
            } else {
                check("seccomp_arch_exist", exists)?;
                false
            };
            compat.push((arch, ctx, needs_merge));
        }
        if self.default_action != ACT_KILL {
            // SAFETY: a live context.
            check("seccomp_reset", unsafe {
                (lib.reset)(main.ctx, self.default_action)
            })?;
            main.no_nnp()?;
        }
        // SAFETY: no arguments.
        let native = unsafe { (lib.arch_native)() };
        for rule in &self.rules {
            match rule {
                Rule::RejectForceUmount => {
                    let force = [ArgCmp {
                        arg: 1,
                        op: CMP_MASKED_EQ,
                        datum_a: MNT_FORCE,
                        datum_b: MNT_FORCE,
                    }];
                    let umount2 = libc::SYS_umount2 as c_int;
                    main.add(act_errno(libc::EACCES), umount2, &force)?;
                    for (arch, ctx, _) in &compat {
                        if *arch != native {
                            ctx.add(act_errno(libc::EACCES), umount2, &force)?;
                        }
                    }
                }
                Rule::Syscall { name, action, args } => {
                    let Ok(cname) = CString::new(name.as_str()) else {
                        continue;
                    };
                    // SAFETY: a NUL-terminated name.
                    let nr = unsafe { (lib.resolve_name)(cname.as_ptr()) };
                    if nr == NR_SCMP_ERROR {
                        // Unknown on the host: skipped for every ABI.
                        continue;
                    }
                    if nr >= 0 {
                        main.add(*action, nr, args)?;
                    }
                    for (arch, ctx, _) in &compat {
                        if *arch == native {
                            continue;
                        }
                        // SAFETY: an architecture token and a NUL-terminated name.
                        if unsafe { (lib.resolve_name_arch)(*arch, cname.as_ptr()) } < 0 {
                            continue;
                        }
                        ctx.add(*action, nr, args)?;
                    }
                }
            }
        }
        for (_, mut ctx, needs_merge) in compat {
            if needs_merge {
                // SAFETY: two live contexts; on success the second is consumed.
                check("seccomp_merge", unsafe { (lib.merge)(main.ctx, ctx.ctx) })?;
                ctx.ctx = std::ptr::null_mut();
            }
        }
        export(&main)
    }
}

/// The context's BPF program (`seccomp_export_bpf` into a memfd).
fn export(main: &Context<'_>) -> Result<Filter, String> {
    use std::os::fd::AsRawFd;
    let fd = nix::sys::memfd::memfd_create(c"ctl-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd: {e}"))?;
    // SAFETY: a live context and an open fd.
    check("seccomp_export_bpf", unsafe {
        (main.lib.export_bpf)(main.ctx, fd.as_raw_fd())
    })?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| format!("reading the exported filter: {e}"))?;
    let size = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % size != 0 || bytes.len() / size > u16::MAX as usize {
        return Err(format!("an exported filter of {} bytes", bytes.len()));
    }
    let program = bytes
        .chunks_exact(size)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    Ok(Filter { program })
}

/// The filter of the profile at `path` (the running `lxc.seccomp.profile`), built before
/// the fork; `NotCovered` where liblxc's attach must decide.
pub(crate) fn prepare(path: &Path) -> Result<Filter, EnterError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(not_covered(
            "profiles are compiled here on x86_64 hosts only",
        ));
    }
    // LXC's `use_seccomp`: a caller already under a filter loads none (unless
    // `lxc.seccomp.allow_nesting`, which the policy leaves to liblxc).
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| EnterError::os("/proc/self/status", e))?;
    let confined = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map_or(true, |v| v.trim() != "0");
    if confined {
        return Err(not_covered(
            "the attaching process is itself under a seccomp filter (or the kernel has none)",
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| not_covered(format!("{}: {e}", path.display())))?;
    let profile =
        Profile::parse(&text).map_err(|why| not_covered(format!("{}: {why}", path.display())))?;
    let lib = Seccomp::load().map_err(not_covered)?;
    profile
        .compile(&lib)
        .map_err(|why| not_covered(format!("{}: {why}", path.display())))
}

impl Filter {
    /// Loads the filter into this process (in the attached child, after `no_new_privs`
    /// and before the final id change). Async-signal-safe: one system call.
    pub(crate) fn install(&self) -> std::io::Result<()> {
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) reads the program, which
        // lives in `self` for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if ret == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// The number of BPF instructions.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.program.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LXC 5.0.2's `config/templates/common.seccomp`.
    const COMMON: &str = "2\ndenylist\nreject_force_umount  # comment this to allow umount -f;  not recommended\n[all]\nkexec_load errno 1\nopen_by_handle_at errno 1\ninit_module errno 1\nfinit_module errno 1\ndelete_module errno 1\n";

    #[test]
    fn lxcs_common_profile_parses_as_lxc_reads_it() {
        let p = Profile::parse(COMMON).unwrap();
        assert_eq!(p.default_action, ACT_ALLOW);
        assert_eq!(p.rules[0], Rule::RejectForceUmount);
        assert_eq!(
            p.rules[1],
            Rule::Syscall {
                name: "kexec_load".into(),
                action: act_errno(1),
                args: vec![]
            }
        );
        assert_eq!(p.rules.len(), 6);
    }

    #[test]
    fn allowlists_defaults_sections_and_arguments() {
        let p = Profile::parse(
            "2\nallowlist errno 38\n# c\nread\n[arm]\nwrite\n[x86_64]\nmkdir errno 5 [1,0x1ff,SCMP_CMP_MASKED_EQ,0x1c0] [0,7,!=]\nopen kill\n",
        )
        .unwrap();
        assert_eq!(p.default_action, act_errno(38));
        let names: Vec<_> = p
            .rules
            .iter()
            .map(|r| match r {
                Rule::Syscall { name, .. } => name.as_str(),
                Rule::RejectForceUmount => "reject",
            })
            .collect();
        assert_eq!(names, ["read", "mkdir", "open"]);
        assert_eq!(
            p.rules[1],
            Rule::Syscall {
                name: "mkdir".into(),
                action: act_errno(5),
                args: vec![
                    ArgCmp {
                        arg: 1,
                        op: CMP_MASKED_EQ,
                        datum_a: 0x1c0,
                        datum_b: 0x1ff
                    },
                    ArgCmp {
                        arg: 0,
                        op: 1,
                        datum_a: 7,
                        datum_b: 0
                    },
                ]
            }
        );
        assert!(matches!(&p.rules[0], Rule::Syscall { action, .. } if *action == ACT_ALLOW));
        assert!(matches!(&p.rules[2], Rule::Syscall { action, .. } if *action == ACT_KILL));
    }

    #[test]
    fn what_lxc_refuses_or_is_not_covered_is_an_error() {
        for bad in [
            "1\nallowlist\nread\n",
            "3\ndenylist\n",
            "2\ngreylist\n",
            "2\ndenylist debug\n",
            "2\ndenylist\n[vax]\nread\n",
            "2\ndenylist\nread frobnicate\n",
            "2\ndenylist\nread notify\n",
            "2\ndenylist\n  read errno 1\n",
            "2\ndenylist\nread errno 1 [9,1,==]\n",
            "2\ndenylist\nread errno 1 [0,1,==] trailing\n",
        ] {
            assert!(Profile::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_common_profile_compiles_with_lxcs_calls() {
        let lib = Seccomp::load().expect("libseccomp.so.2 (liblxc's dependency)");
        let filter = Profile::parse(COMMON).unwrap().compile(&lib).unwrap();
        // libseccomp 2.5.4 makes 33 instructions of it (x86_64, x86 and x32), as it
        // does for liblxc.
        assert!(filter.len() > 20, "{}", filter.len());
    }
}
