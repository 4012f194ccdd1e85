use ctl_core::{container_command, RunnerContext};

#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Option<bool> {
    Some(true)
}

fn main() {}
