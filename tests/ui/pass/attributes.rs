#![deny(missing_docs, unused)]
//! Attributes on the function, visibility, cfg.

use ctl_core::{container_command, CommandError, RunnerContext};

/// Commands.
pub mod inner {
    use super::*;

    #[container_command(placement = fork_as_root, setuid_helpers)]
    #[allow(clippy::unnecessary_wraps)]
    #[inline]
    pub(crate) fn with_rootfs(ctx: &RunnerContext, path: String) -> Result<String, CommandError> {
        Ok(format!("{}{path}", ctx.lxc_home.display()))
    }

    /// Never compiled.
    #[container_command(placement = exec)]
    #[cfg(any())]
    pub fn missing(_ctx: &mut RunnerContext, x: DoesNotExist) -> Result<bool, CommandError> {
        Ok(true)
    }

    /// Documented on the struct and on the function.
    #[doc = concat!("Built by ", "a macro.")]
    #[container_command(placement = exec, static_runner)]
    pub fn documented(_ctx: &mut RunnerContext) -> Result<(), CommandError> {
        Ok(())
    }
}

fn main() {
    use ctl_core::Command;
    assert_eq!(
        <inner::Documented as Command>::SPEC.doc,
        "Documented on the struct and on the function.\nBuilt by a macro."
    );
    assert!(<inner::WithRootfs as Command>::SPEC.setuid_helpers);
    assert!(!<inner::WithRootfs as Command>::SPEC.static_runner);
    assert!(<inner::Documented as Command>::SPEC.static_runner);
    let _ = inner::WithRootfs::run_with;
    let _ = inner::with_rootfs;
    let _ = inner::Documented::run;
    let _ = inner::documented;
}
