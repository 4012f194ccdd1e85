// Shared by the build scripts of the runner binaries (`include!`d).
//
// Links the unwinder statically (libgcc_eh.a) instead of libgcc_s.so: with it placed
// before std's `-lgcc_s` and `--as-needed`, the binary no longer loads libgcc_s at all.
// Measured here: a dynamic Rust no-op starts in ~805 µs with libgcc_s, ~700 µs without
// (/bin/true: ~635 µs). A runner is started for every command, so this is the single
// largest fixed cost the framework adds (docs/performance.md). A fully static binary
// would be faster still but cannot safely dlopen liblxc (a second libc in one process).
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
