//! Two `#[container_command]`s under one name: the registry refuses them and names both
//! definitions. In a file of its own, since `Registry::global()` fails for this binary.

use ctl_core::{Command, Registration, Registry};

const FIRST_LINE: u32 = line!() + 6;
mod first {
    use ctl_core::{container_command, CommandError, RunnerContext};

    /// The first definition.
    #[container_command(placement = exec, name = "Dup")]
    pub fn dup_one(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
        Ok(true)
    }
}

const SECOND_LINE: u32 = line!() + 6;
mod second {
    use ctl_core::{container_command, Call, Error};

    /// The second definition, elsewhere.
    #[container_command(frontend_only, name = "Dup")]
    pub fn dup_two(_call: &Call<'_>) -> Result<bool, Error> {
        Ok(false)
    }
}

fn dups() -> Vec<&'static Registration> {
    ctl_core::__private::inventory::iter::<Registration>
        .into_iter()
        .filter(|r| r.spec.name == "Dup")
        .collect()
}

#[test]
fn both_definitions_are_named() {
    let regs = dups();
    assert_eq!(regs.len(), 2);
    let first = format!("tests/tests/duplicate_names.rs:{FIRST_LINE}");
    let second = format!("tests/tests/duplicate_names.rs:{SECOND_LINE}");

    let Err(e) = Registry::build(regs) else {
        panic!("two commands named `Dup` were accepted");
    };
    assert_eq!(e.name, "Dup");
    let text = e.to_string();
    assert!(
        text.starts_with("command name `Dup` is registered twice: by duplicate_names::"),
        "{text}"
    );
    for part in [
        "duplicate_names::first",
        "duplicate_names::second",
        &first,
        &second,
    ] {
        assert!(text.contains(part), "{part:?} missing in {text}");
    }

    // The global registry of this binary refuses to build the same way.
    let Err(global) = Registry::global() else {
        panic!("the global registry accepted two commands named `Dup`");
    };
    assert_eq!(global, e);

    // A runner looks up only the name it was asked for: that name is refused the same
    // way, other commands of this binary still run.
    let Err(found) = Registry::find("Dup") else {
        panic!("the runner's lookup accepted two commands named `Dup`");
    };
    assert_eq!(found, e);
    assert_eq!(Registry::find("dup_two").unwrap().unwrap().spec.name, "Dup");
    assert_eq!(Registry::find("Ping").unwrap().unwrap().spec.name, "Ping");
}

#[test]
fn the_definitions_stay_distinct_types() {
    assert_eq!(<first::Dup as Command>::SPEC.snake_name, "dup_one");
    assert_eq!(<second::Dup as Command>::SPEC.snake_name, "dup_two");
    assert!(first::dup_one(&mut ctx()).unwrap());
}

fn ctx() -> ctl_core::RunnerContext {
    ctl_core::RunnerContext {
        command: "Dup",
        pool: "tank".into(),
        id: "ct".into(),
        lxc_home: "/var/lib/lxc".into(),
        user_home: "/home/ct".into(),
        log_file: None,
        stdin: None,
        stdout: None,
        stderr: None,
        user: None,
        container_path: None,
        container_cgroup: None,
        entry_cgroup: None,
    }
}
