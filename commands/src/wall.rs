//! Wall.

use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};

use crate::support::open_running;
pub use crate::support::wall::{default_banner, valid_tty, WALL_TIMEOUT};
use crate::support::wall::{wall_inside, wall_text_inside};

/// Whether Wall puts a banner above the message, as osctld's `banner:` option: on (the
/// default: `Message from host machine <host> (<time>):`, built by the frontend), off, or
/// a text of the caller's. In arguments: `true`, `false` or the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Banner {
    #[default]
    On,
    Off,
    Text(String),
}

impl serde::Serialize for Banner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Banner::On => s.serialize_bool(true),
            Banner::Off => s.serialize_bool(false),
            Banner::Text(text) => s.serialize_str(text),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Banner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Flag(true) => Banner::On,
            Raw::Flag(false) => Banner::Off,
            Raw::Text(text) => Banner::Text(text),
        })
    }
}

/// Write a message to every user tty inside the container, with a banner naming the host
/// and the time above it unless `banner` is off (see [`Banner`]).
///
/// The ttys are the `USER_PROCESS` entries of the container's utmp (`/run/utmp`,
/// `/var/run/utmp`); only `/dev/pts/<n>` and `/dev/tty<name>` are written, opened without
/// following symlinks and without blocking (a stuck terminal loses the message). The
/// process doing that inside is killed after [`WALL_TIMEOUT`] (the container's root can
/// stop it), and the command then fails saying so.
#[container_command(
    placement = exec,
    setuid_helpers,
    frontend = wall_frontend,
    osctld = wall_osctld
)]
pub fn wall(
    ctx: &mut RunnerContext,
    message: String,
    #[kwarg(default)] banner: Banner,
) -> Result<bool, CommandError> {
    let ct = open_running(ctx)?;
    let banner = match &banner {
        // The frontend turns `On` into the text; a runner called directly builds it.
        Banner::On => Some(default_banner()),
        Banner::Off => None,
        Banner::Text(text) => Some(text.clone()),
    };
    wall_inside(&ct, &message, banner.as_deref(), None)?;
    Ok(true)
}

/// osctld's Wall: `[message]`, which its frontend composed (banner, blank lines): written
/// as it is. Answers `null`; fails with osctld's `failed to send message: ...`.
fn wall_osctld(
    ctx: &mut RunnerContext,
    mut args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let message: String = args.positional("message")?;
    args.finish()?;
    let ct = open_running(ctx)?;
    wall_text_inside(&ct, &message, None)
        .map_err(|e| CommandError::msg(format!("failed to send message: {e}")))?;
    Ok(ctl_core::osctld::Value::Null)
}

fn wall_frontend(call: &Call<'_>, message: String, banner: Banner) -> Result<bool, Error> {
    // The banner names this host and the time of the call, as osctld's frontend does.
    let banner = match banner {
        Banner::On => Banner::Text(default_banner()),
        other => other,
    };
    Wall::runner(call, message, banner)
}
