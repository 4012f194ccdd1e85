//! A runner built with `-C target-feature=+crt-static` (`ctl-runner-static`, see
//! docs/design.md) links glibc statically and never loads liblxc. `lxc-sys`'s build script
//! still asks for `-llxc`; a dynamic link drops it (`--as-needed`, no symbol used), a
//! static one needs an archive to satisfy it: an empty one, since nothing from liblxc is
//! linked. Here, in the crate that depends on `lxc-sys`, every static binary that links
//! ctl-lxc gets it (a plugin author's static runner too).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // An ar archive with no members is its 8-byte magic alone.
    std::fs::write(out.join("liblxc.a"), b"!<arch>\n").expect("writing an empty liblxc.a");
    println!("cargo:rustc-link-search=native={}", out.display());
}
