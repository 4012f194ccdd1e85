//! A plugin command declaring how it reads osctld's envelopes.
use ctl_core::osctld::Value;
use ctl_core::{container_command, Args, CommandError, Registry, RunnerContext, RunnerFn};

/// Resize a volume.
#[container_command(placement = exec, osctld = resize_osctld)]
pub fn resize(
    _ctx: &mut RunnerContext,
    volume: String,
    #[kwarg] size: u64,
) -> Result<u64, CommandError> {
    let _ = volume;
    Ok(size)
}

/// osctld's frontend sends `[{"volume": ..., "size": ...}]` and expects `ok` (`null`).
fn resize_osctld(ctx: &mut RunnerContext, mut args: Args, native: RunnerFn) -> Result<Value, CommandError> {
    #[derive(serde::Deserialize)]
    struct Opts {
        volume: String,
        size: u64,
    }
    let opts: Opts = args.positional("options")?;
    args.finish()?;
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("size".into(), opts.size.into());
    native(ctx, Args::new(vec![opts.volume.into()], kwargs)).map(|_| Value::Null)
}

fn main() {
    let reg = Registry::find("Resize").unwrap().unwrap();
    assert!(reg.osctld.is_some());
}
