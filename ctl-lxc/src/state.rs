//! Container states as liblxc reports them.

use std::fmt;
use std::str::FromStr;

/// A container state. liblxc names them in upper case (`RUNNING`); [`State::as_str`] gives
/// the lower-case word osctld shows and sends (`running`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Aborting,
    Freezing,
    Frozen,
    Thawed,
}

impl State {
    /// Every state, in liblxc's order (`lxc_get_wait_states`).
    pub const ALL: [State; 8] = [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Aborting,
        State::Freezing,
        State::Frozen,
        State::Thawed,
    ];

    /// The lower-case word, as osctld reports states: `stopped`, `running`, `frozen`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Aborting => "aborting",
            State::Freezing => "freezing",
            State::Frozen => "frozen",
            State::Thawed => "thawed",
        }
    }

    /// The upper-case name liblxc uses (and `wait` expects).
    pub fn as_lxc_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Stopping => "STOPPING",
            State::Aborting => "ABORTING",
            State::Freezing => "FREEZING",
            State::Frozen => "FROZEN",
            State::Thawed => "THAWED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a known state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown container state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    /// Parses liblxc's upper-case names and the lower-case words alike.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| s.eq_ignore_ascii_case(st.as_lxc_str()))
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for st in State::ALL {
            assert_eq!(st.as_lxc_str().parse::<State>().unwrap(), st);
            assert_eq!(st.as_str().parse::<State>().unwrap(), st);
            assert_eq!(st.as_str(), st.as_lxc_str().to_ascii_lowercase());
        }
        assert!("BOGUS".parse::<State>().is_err());
    }
}
