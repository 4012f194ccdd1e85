//! Compile-time behaviour of `#[container_command]`: every misuse is an error at the
//! offending token (`ui/fail`), and the supported forms compile (`ui/pass`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p tests --test ui`
//! and review every `.stderr` by hand.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
