use ctl_core::container_command;

#[container_command(placement = exec)]
pub struct Freeze {
    pub timeout: u64,
}

fn main() {}
