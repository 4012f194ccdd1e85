include!("../build-support/static_unwinder.rs");
include!("../build-support/static_runner.rs");

fn main() {
    link_unwinder_statically();
    satisfy_lxc_sys_when_static();
}
