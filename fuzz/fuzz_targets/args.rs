//! The argument decoding of every built-in command with a runner half, on arbitrary JSON.
//!
//! The runner decodes an envelope's `args` / `kwargs` with `Args::positional`,
//! `Args::named` and `Args::named_or_default`, one call per parameter with the parameter's
//! type, then `Args::finish` (see `docs/expansion.md`). Calling the registered runner
//! functions would *run* the commands, so this target repeats the decoding the macro
//! generates, with each command's own parameter types:
//!
//! - the types are tied to the commands at compile time (each entry coerces the command's
//!   generated `run_with` to a function pointer of exactly these parameter types), and the
//!   command names to the registry at run time (every command with a runner half must have
//!   an entry), so the table cannot drift silently;
//! - decoding must never panic, whatever the input;
//! - whatever decodes re-encodes (`ArgsEncoder`, as the frontend does) to arguments that
//!   decode to the same values.
//!
//! Input: the bytes as JSON; an object `{"args": [...], "kwargs": {...}}` gives both, an
//! array only `args`, any other value one positional argument.
#![no_main]

use commands::{ScriptSource, StopMode};
use ctl_core::{Args, ArgsEncoder, Call, CommandError, Error};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// One parameter decoded, kept as JSON (to compare with the second decoding) and
/// re-encoded the way the frontend encodes it.
trait Param: Send + Sync {
    fn decode(&self, args: &mut Args) -> Result<Value, CommandError>;
    fn encode(&self, enc: ArgsEncoder, value: &Value) -> ArgsEncoder;
}

enum Kind {
    Positional,
    Named,
    NamedOrDefault,
}

struct Typed<T> {
    kind: Kind,
    name: &'static str,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> Param for Typed<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    fn decode(&self, args: &mut Args) -> Result<Value, CommandError> {
        let value: T = match self.kind {
            Kind::Positional => args.positional::<T>(self.name)?,
            Kind::Named => args.named::<T>(self.name)?,
            Kind::NamedOrDefault => args.named_or_default::<T>(self.name)?,
        };
        Ok(serde_json::to_value(&value).expect("a decoded argument encodes"))
    }

    fn encode(&self, enc: ArgsEncoder, value: &Value) -> ArgsEncoder {
        let value: T = serde_json::from_value(value.clone()).expect("an encoded argument decodes");
        match self.kind {
            Kind::Positional => enc.positional(self.name, &value),
            Kind::Named | Kind::NamedOrDefault => enc.named(self.name, &value),
        }
        .expect("the frontend encodes a decoded argument")
    }
}

/// `T: Default` is only needed by `named_or_default`; types without a default get one
/// that is never used through this wrapper.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct NoDefault<T>(T);

impl<T> Default for NoDefault<T> {
    fn default() -> Self {
        unreachable!("only #[kwarg(default)] parameters use the default")
    }
}

fn param<T>(kind: Kind, name: &'static str) -> Box<dyn Param>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default + 'static,
{
    Box::new(Typed::<T> {
        kind,
        name,
        _t: std::marker::PhantomData,
    })
}

/// The table: for each command its registered name and its parameters in order, with
/// the `#[kwarg]` kind and the type of each. `check` coerces the command's `run_with` to
/// a function pointer with exactly these types, so a changed signature breaks this build.
macro_rules! commands {
    ($( $cmd:ty => ($($kind:ident $pname:literal: $pty:ty),* $(,)?) -> $out:ty; )*) => {
        fn table() -> Vec<(&'static str, Vec<Box<dyn Param>>)> {
            $(
                let _check: for<'a, 'b> fn(&'a Call<'b>, $($pty),*) -> Result<$out, Error> =
                    <$cmd>::run_with;
            )*
            vec![$(
                (
                    <$cmd as ctl_core::Command>::SPEC.name,
                    vec![$(commands!(@param $kind $pname $pty)),*],
                ),
            )*]
        }
    };
    (@param pos $pname:literal $pty:ty) => { param::<NoDefault<$pty>>(Kind::Positional, $pname) };
    (@param kw $pname:literal $pty:ty) => { param::<NoDefault<$pty>>(Kind::Named, $pname) };
    (@param kwd $pname:literal $pty:ty) => { param::<$pty>(Kind::NamedOrDefault, $pname) };
}

commands! {
    ctl_core::diag::Identity => () -> ctl_core::diag::IdentityInfo;
    ctl_core::diag::Ping => (pos "value": Value) -> Value;
    commands::Exec => (
        pos "cmd": Vec<String>,
        kwd "run": bool,
        kwd "network": bool,
        kwd "options": commands::ExecOptions,
    ) -> i32;
    commands::ExecTerminal => (
        pos "cmd": Vec<String>,
        kwd "run": bool,
        kwd "network": bool,
        kwd "term": Option<String>,
        kwd "size": Option<ctl_core::terminal::WindowSize>,
        kwd "options": commands::ExecOptions,
    ) -> i32;
    commands::Runscript => (
        pos "script": ScriptSource,
        kwd "args": Vec<String>,
        kwd "run": bool,
        kwd "network": bool,
    ) -> i32;
    commands::GetHostname => () -> String;
    commands::VethName => (pos "index": u32) -> String;
    commands::Start => () -> bool;
    commands::Freeze => () -> bool;
    commands::Unfreeze => () -> bool;
    commands::State => () -> commands::StateInfo;
    commands::Reboot => () -> bool;
    commands::Mount => (kw "shared_dir": String, kw "src": String, kw "dst": String) -> bool;
    commands::Unmount => (pos "mountpoint": String) -> bool;
    commands::Stop => (pos "mode": StopMode, kw "timeout": u64, kwd "message": Option<String>) -> bool;
    commands::StopByHalt => (kwd "message": Option<String>) -> bool;
    commands::StopRunit => (kwd "message": Option<String>) -> bool;
    commands::WithRootfs => (pos "task": String, pos "args": Value) -> Value;
    commands::WithMountns => (
        pos "task": String,
        pos "args": Value,
        kwd "pid": Option<i32>,
        kwd "chroot": Option<String>,
    ) -> Value;
    commands::Wall => (pos "message": String, kwd "banner": commands::Banner) -> bool;
}

struct Setup {
    table: Vec<(&'static str, Vec<Box<dyn Param>>)>,
}

fn setup() -> &'static Setup {
    static SETUP: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| {
        let table = table();
        let registry = ctl_core::Registry::global().expect("no duplicate command names");
        let mut missing = Vec::new();
        for reg in registry.iter() {
            if reg.runner.is_some() && !table.iter().any(|(name, _)| *name == reg.spec.name) {
                missing.push(reg.spec.name);
            }
        }
        assert!(
            missing.is_empty(),
            "commands with a runner half missing from the fuzz table (fuzz/fuzz_targets/args.rs): {missing:?}"
        );
        Setup { table }
    })
}

/// Decodes `args` as the generated runner function does; the decoded values as JSON.
fn decode(params: &[Box<dyn Param>], mut args: Args) -> Result<Vec<Value>, CommandError> {
    let mut values = Vec::with_capacity(params.len());
    for p in params {
        values.push(p.decode(&mut args)?);
    }
    args.finish()?;
    Ok(values)
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (positional, named) = match input {
        Value::Object(mut o) if o.contains_key("args") || o.contains_key("kwargs") => {
            let positional = match o.remove("args") {
                Some(Value::Array(a)) => a,
                Some(other) => vec![other],
                None => Vec::new(),
            };
            let named = match o.remove("kwargs") {
                Some(Value::Object(k)) => k,
                _ => Map::new(),
            };
            (positional, named)
        }
        Value::Array(a) => (a, Map::new()),
        other => (vec![other], Map::new()),
    };
    for (name, params) in &setup.table {
        let args = Args::new(positional.clone(), named.clone());
        let Ok(values) = decode(params, args) else {
            continue;
        };
        let mut enc = ArgsEncoder::new();
        for (p, v) in params.iter().zip(&values) {
            enc = p.encode(enc, v);
        }
        let encoded = enc.finish();
        let again = decode(params, Args::new(encoded.positional, encoded.named))
            .unwrap_or_else(|e| panic!("{name}: re-encoded arguments do not decode: {e}"));
        let same = again.len() == values.len()
            && again
                .iter()
                .zip(&values)
                .all(|(a, b)| ctl_fuzz::json_eq(a, b));
        assert!(
            same,
            "{name}: arguments changed in a round trip: {values:?} -> {again:?}"
        );
    }
});
