include!("../build-support/static_unwinder.rs");

fn main() {
    link_unwinder_statically();
}
