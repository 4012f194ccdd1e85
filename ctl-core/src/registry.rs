//! The registry of commands: every `#[container_command]` submits a [`Registration`]
//! through `inventory`, so a command defined in any linked crate is found by name.
//!
//! As in `typetag`, names are checked when the registry is built: two registrations under
//! one name are an error that names both definitions, never a silent pick.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use crate::command::{CommandSpec, FrontendFn, RunnerFn};
use crate::osctld::OsctldFn;

/// One command as linked into this binary.
pub struct Registration {
    pub spec: &'static CommandSpec,
    /// `None` for frontend-only commands.
    pub runner: Option<RunnerFn>,
    /// The command's frontend (`run_with`) with its arguments as they travel in an
    /// envelope: what [`crate::invoke_by_name`] runs.
    pub frontend: FrontendFn,
    /// How the runner half reads an envelope from osctld's own frontends
    /// (`#[container_command(osctld = ...)]`, see [`crate::osctld`]); `None`: as its own.
    pub osctld: Option<OsctldFn>,
    /// The command's async frontend by name (`#[container_command(async_frontend = ...)]`,
    /// with ctl-core's feature `tokio`): what [`crate::async_frontend::invoke_by_name`]
    /// runs, on the reactor, instead of the blocking frontend on the blocking pool.
    pub frontend_async: Option<crate::command::AsyncFrontendFn>,
    /// `module_path!()` of the definition.
    pub module: &'static str,
    /// `file:line` of the definition.
    pub location: &'static str,
}

inventory::collect!(Registration);

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.spec.name)
            .field("placement", &self.spec.placement)
            .field("module", &self.module)
            .field("location", &self.location)
            .finish()
    }
}

/// The commands linked into this binary, checked for duplicate names.
#[derive(Debug)]
pub struct Registry {
    sorted: Vec<&'static Registration>,
    // A BTreeMap: built once per runner start, where a HashMap's random seed (a `getrandom`
    // call) and SipHash cost more than the few dozen string comparisons.
    by_name: BTreeMap<&'static str, &'static Registration>,
}

/// Two commands registered under one name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "command name `{name}` is registered twice: by {first_module} ({first_location}) and by {second_module} ({second_location})"
)]
pub struct DuplicateCommand {
    pub name: String,
    pub first_module: &'static str,
    pub first_location: &'static str,
    pub second_module: &'static str,
    pub second_location: &'static str,
}

impl Registry {
    /// The registry of every command linked into this binary, built once.
    pub fn global() -> Result<&'static Registry, DuplicateCommand> {
        static GLOBAL: OnceLock<Result<Registry, DuplicateCommand>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Registry::build(inventory::iter::<Registration>))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Builds a registry from these registrations.
    pub fn build(
        registrations: impl IntoIterator<Item = &'static Registration>,
    ) -> Result<Registry, DuplicateCommand> {
        let mut by_name: BTreeMap<&'static str, &'static Registration> = BTreeMap::new();
        let mut sorted = Vec::new();
        for reg in registrations {
            let names = [reg.spec.name, reg.spec.snake_name];
            for (i, name) in names.iter().enumerate() {
                if i == 1 && names[0] == names[1] {
                    continue;
                }
                if let Some(first) = by_name.insert(name, reg) {
                    if std::ptr::eq(first, reg) {
                        continue;
                    }
                    return Err(DuplicateCommand {
                        name: name.to_string(),
                        first_module: first.module,
                        first_location: first.location,
                        second_module: reg.module,
                        second_location: reg.location,
                    });
                }
            }
            sorted.push(reg);
        }
        sorted.sort_by_key(|r| r.spec.name);
        Ok(Registry { sorted, by_name })
    }

    /// Finds one command among the registrations linked into this binary without building
    /// the registry: what a runner does once per start, where building the whole map cost
    /// ~6 µs here. As in `typetag`, a name claimed by two registrations is an error naming
    /// both; duplicates of other names are left to [`Registry::global`] (`--list`, the CLI).
    /// Accepts the same name forms as [`Registry::lookup`].
    pub fn find(name: &str) -> Result<Option<&'static Registration>, DuplicateCommand> {
        find_in(inventory::iter::<Registration>, name)
    }

    /// Resolves a name as the runner receives it: the registered name (`Freeze`), its
    /// snake case (`freeze`), or osctld's full class name
    /// (`OsCtld::ContainerControl::Commands::Freeze`, by its last `::` segment).
    pub fn lookup(&self, name: &str) -> Option<&'static Registration> {
        self.by_name.get(short_name(name)).copied()
    }

    /// Every registration, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &'static Registration> + '_ {
        self.sorted.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// The name a command is registered under, from any form a runner accepts: osctld's full
/// class name (`OsCtld::ContainerControl::Commands::Freeze`) by its last `::` segment.
fn short_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

fn find_in(
    registrations: impl IntoIterator<Item = &'static Registration>,
    name: &str,
) -> Result<Option<&'static Registration>, DuplicateCommand> {
    let short = short_name(name);
    let mut found: Option<&'static Registration> = None;
    for reg in registrations {
        if reg.spec.name != short && reg.spec.snake_name != short {
            continue;
        }
        match found {
            Some(first) if !std::ptr::eq(first, reg) => {
                return Err(DuplicateCommand {
                    name: short.to_owned(),
                    first_module: first.module,
                    first_location: first.location,
                    second_module: reg.module,
                    second_location: reg.location,
                })
            }
            _ => found = Some(reg),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Placement;

    static A: CommandSpec = CommandSpec {
        name: "Freeze",
        snake_name: "freeze",
        placement: Some(Placement::Exec),
        setuid_helpers: false,
        static_runner: false,
        lock: ctl_core::LockMode::Shared,
        custom_frontend: false,
        doc: " Freeze it.\n\n More text.",
    };
    static B: CommandSpec = CommandSpec {
        name: "GetHostname",
        snake_name: "get_hostname",
        placement: Some(Placement::ForkAsRoot),
        setuid_helpers: false,
        static_runner: false,
        lock: ctl_core::LockMode::Shared,
        custom_frontend: false,
        doc: "",
    };
    fn no_frontend(_: &crate::Call<'_>, _: crate::Args) -> Result<serde_json::Value, crate::Error> {
        unreachable!("not called by these tests")
    }

    static REG_A: Registration = Registration {
        spec: &A,
        runner: None,
        frontend: no_frontend,
        osctld: None,
        frontend_async: None,
        module: "a",
        location: "a.rs:1",
    };
    static REG_B: Registration = Registration {
        spec: &B,
        runner: None,
        frontend: no_frontend,
        osctld: None,
        frontend_async: None,
        module: "b",
        location: "b.rs:2",
    };
    static REG_A2: Registration = Registration {
        spec: &A,
        runner: None,
        frontend: no_frontend,
        osctld: None,
        frontend_async: None,
        module: "plugin",
        location: "p.rs:9",
    };

    #[test]
    fn resolves_all_name_forms() {
        let r = Registry::build([&REG_A, &REG_B]).unwrap();
        for n in [
            "Freeze",
            "freeze",
            "OsCtld::ContainerControl::Commands::Freeze",
        ] {
            assert_eq!(r.lookup(n).unwrap().spec.name, "Freeze", "{n}");
        }
        assert_eq!(r.lookup("get_hostname").unwrap().spec.name, "GetHostname");
        assert!(r.lookup("freez").is_none());
        assert!(r.lookup("").is_none());
        assert_eq!(
            r.iter().map(|r| r.spec.name).collect::<Vec<_>>(),
            ["Freeze", "GetHostname"]
        );
        assert_eq!(A.summary(), "Freeze it.");
    }

    #[test]
    fn find_agrees_with_the_built_registry() {
        let all = [&REG_A, &REG_B];
        let built = Registry::build(all).unwrap();
        for n in [
            "Freeze",
            "freeze",
            "OsCtld::ContainerControl::Commands::Freeze",
            "GetHostname",
            "get_hostname",
            "freez",
            "",
            "Freeze::",
        ] {
            let found = find_in(all, n).unwrap();
            assert_eq!(
                found.map(|r| r.location),
                built.lookup(n).map(|r| r.location),
                "{n:?}"
            );
        }
    }

    #[test]
    fn find_refuses_a_name_claimed_twice_and_names_both() {
        let e = find_in([&REG_A, &REG_B, &REG_A2], "freeze").unwrap_err();
        assert_eq!(e.name, "freeze");
        assert_eq!((e.first_location, e.second_location), ("a.rs:1", "p.rs:9"));
        // The same registration listed twice is one command, not a duplicate.
        assert!(find_in([&REG_A, &REG_A], "Freeze").unwrap().is_some());
        // Another name's duplicates are left to `Registry::global`.
        let other = find_in([&REG_A, &REG_B, &REG_A2], "GetHostname").unwrap();
        assert_eq!(other.unwrap().location, "b.rs:2");
    }

    #[test]
    fn duplicate_names_both_named() {
        let e = Registry::build([&REG_A, &REG_B, &REG_A2]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`Freeze`") && text.contains("a.rs:1") && text.contains("p.rs:9"),
            "{text}"
        );
    }
}
