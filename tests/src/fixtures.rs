//! The fixtures of the integration tests, kept under this path for them: they live in
//! `ctl-test-support` (shared with `ctl`'s and `ctl-provision`'s tests) and are re-exported
//! here.

pub use ctl_test_support::container::TestContainer;
pub use ctl_test_support::leaks::{
    host_mounts_under, lingering_zombies, open_fd_count, process_alive, serial, zombie_children,
};
pub use ctl_test_support::runner::{
    assert_in_entry_everywhere, command_call, command_error, ctl_runner_path, output_with_stdin,
    test_runner_path, write_script,
};
pub use ctl_test_support::user::{test_rlimits, TestUser};
