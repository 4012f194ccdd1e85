//! With the `runner-binary` feature: link the unwinder statically into every binary built
//! with ctl-core (the runner binaries, and daemons that are their own runner).
//!
//! A library's build script can do this for the binaries that link it: `rustc-link-lib`
//! and `rustc-link-search` from here reach their final link. So a plugin author's runner
//! gets what `ctl-runner` gets by enabling one feature, without copying a build script.
//!
//! Why: with `libgcc_eh.a` placed before std's `-lgcc_s` and `--as-needed`, the binary no
//! longer loads `libgcc_s.so` at all. Measured here: a dynamic Rust no-op starts in ~805 µs
//! with libgcc_s, ~700 µs without (`/bin/true`: ~635 µs). A runner is started for every
//! command, so this is the largest fixed cost the framework adds (docs/performance.md). A
//! fully static binary would be faster still but cannot safely dlopen liblxc (a second libc
//! in one process).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    if std::env::var_os("CARGO_FEATURE_RUNNER_BINARY").is_some() {
        link_unwinder_statically();
    }
}

fn link_unwinder_statically() {
    let out = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .arg("-print-file-name=libgcc_eh.a")
        .output();
    let Ok(out) = out else { return };
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_absolute() || !path.exists() {
        // Not found: keep the default (libgcc_s); only slower.
        return;
    }
    if let Some(dir) = path.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static=gcc_eh");
    }
}
