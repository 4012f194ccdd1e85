//! Arguments of a command: osctld's positional `args` and named `kwargs`.
//!
//! The code that `#[container_command]` generates encodes each parameter with
//! [`ArgsEncoder`] on the frontend side and decodes it with [`Args`] in the runner, so an
//! envelope written by osctld (Ruby symbols as strings, `nil` as `null`) decodes into the
//! same typed parameters.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CommandError;

/// Arguments as they travel in the envelope.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    pub positional: Vec<Value>,
    pub named: Map<String, Value>,
    taken_positional: usize,
}

impl Args {
    /// Arguments from the envelope's `args` and `kwargs`.
    pub fn new(positional: Vec<Value>, named: Map<String, Value>) -> Args {
        Args {
            positional,
            named,
            taken_positional: 0,
        }
    }

    /// Decodes the next positional parameter `param`. A missing argument decodes from
    /// `null`, so `Option<T>` parameters may be left out.
    pub fn positional<T: DeserializeOwned>(&mut self, param: &str) -> Result<T, CommandError> {
        let index = self.taken_positional;
        self.taken_positional += 1;
        let value = self.positional.get_mut(index).map(Value::take);
        let present = value.is_some();
        serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| {
            if present {
                CommandError::msg(format!("argument {} (`{param}`): {e}", index + 1))
            } else {
                CommandError::msg(format!("missing argument {} (`{param}`)", index + 1))
            }
        })
    }

    /// Decodes the named parameter `name`. Missing decodes from `null`.
    pub fn named<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, CommandError> {
        let value = self.named.remove(name);
        let present = value.is_some();
        serde_json::from_value(value.unwrap_or(Value::Null)).map_err(|e| {
            if present {
                CommandError::msg(format!("keyword argument `{name}`: {e}"))
            } else {
                CommandError::msg(format!("missing keyword argument `{name}`"))
            }
        })
    }

    /// Decodes the named parameter `name`, or `T::default()` when absent or `null`.
    pub fn named_or_default<T: DeserializeOwned + Default>(
        &mut self,
        name: &str,
    ) -> Result<T, CommandError> {
        match self.named.get(name) {
            None | Some(Value::Null) => {
                self.named.remove(name);
                Ok(T::default())
            }
            Some(_) => self.named(name),
        }
    }

    /// Fails on arguments no parameter took: a typo must not be silently ignored.
    pub fn finish(self) -> Result<(), CommandError> {
        if self.positional.len() > self.taken_positional {
            return Err(CommandError::msg(format!(
                "expected at most {} positional argument(s), got {}",
                self.taken_positional,
                self.positional.len()
            )));
        }
        if let Some(name) = self.named.keys().next() {
            return Err(CommandError::msg(format!(
                "unknown keyword argument `{name}`"
            )));
        }
        Ok(())
    }
}

/// Builds [`Args`] on the frontend side.
#[derive(Debug, Default)]
pub struct ArgsEncoder {
    args: Args,
}

impl ArgsEncoder {
    pub fn new() -> ArgsEncoder {
        ArgsEncoder::default()
    }

    /// Appends a positional argument.
    pub fn positional<T: Serialize + ?Sized>(
        mut self,
        param: &str,
        value: &T,
    ) -> Result<Self, EncodeError> {
        let v = serde_json::to_value(value).map_err(|source| EncodeError::new(param, source))?;
        self.args.positional.push(v);
        Ok(self)
    }

    /// Sets a named argument.
    pub fn named<T: Serialize + ?Sized>(
        mut self,
        name: &str,
        value: &T,
    ) -> Result<Self, EncodeError> {
        let v = serde_json::to_value(value).map_err(|source| EncodeError::new(name, source))?;
        self.args.named.insert(name.to_owned(), v);
        Ok(self)
    }

    pub fn finish(self) -> Args {
        self.args
    }
}

/// An argument [`ArgsEncoder`] could not encode as JSON (its `Serialize` failed, e.g. a
/// map with keys that are not strings): `argument `name`: <serde_json's message>`.
#[derive(Debug, thiserror::Error)]
#[error("argument `{param}`: {source}")]
pub struct EncodeError {
    param: String,
    #[source]
    source: serde_json::Error,
}

impl EncodeError {
    fn new(param: &str, source: serde_json::Error) -> EncodeError {
        EncodeError {
            param: param.to_owned(),
            source,
        }
    }

    /// The parameter whose value did not encode.
    pub fn param(&self) -> &str {
        &self.param
    }
}

/// The message, for callers that keep errors as strings (what `ArgsEncoder` returned
/// before it had an error type).
impl From<EncodeError> for String {
    fn from(e: EncodeError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_osctld_shapes() {
        // Stop as osctld calls it: mode symbol as a string, nil message.
        let mut a = Args::new(
            vec![json!("stop")],
            json!({"timeout": 60, "message": null})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mode: String = a.positional("mode").unwrap();
        let timeout: u64 = a.named("timeout").unwrap();
        let message: Option<String> = a.named("message").unwrap();
        let extra: Option<u32> = a.positional("extra").unwrap();
        let list: Vec<i32> = a.named_or_default("valid_rcs").unwrap();
        a.finish().unwrap();
        assert_eq!(
            (mode.as_str(), timeout, message, extra, list),
            ("stop", 60, None, None, vec![])
        );
    }

    #[test]
    fn clear_errors() {
        let mut a = Args::new(vec![json!("x")], Map::new());
        let e = a.positional::<u32>("index").unwrap_err();
        assert!(
            e.message()
                .starts_with("argument 1 (`index`): invalid type"),
            "{e}"
        );
        let e = a.positional::<u32>("count").unwrap_err();
        assert_eq!(e.message(), "missing argument 2 (`count`)");
        let e = a.named::<u32>("timeout").unwrap_err();
        assert_eq!(e.message(), "missing keyword argument `timeout`");

        let a = Args::new(vec![json!(1), json!(2)], Map::new());
        assert!(a.finish().unwrap_err().message().contains("at most 0"));
        let a = Args::new(vec![], json!({"tmeout": 1}).as_object().unwrap().clone());
        assert_eq!(
            a.finish().unwrap_err().message(),
            "unknown keyword argument `tmeout`"
        );
    }

    #[test]
    fn encoder_round_trip() {
        let args = ArgsEncoder::new()
            .positional("mode", "kill")
            .unwrap()
            .named("timeout", &Some(5u64))
            .unwrap()
            .finish();
        let mut a = Args::new(args.positional, args.named);
        assert_eq!(a.positional::<String>("mode").unwrap(), "kill");
        assert_eq!(a.named::<Option<u64>>("timeout").unwrap(), Some(5));
        a.finish().unwrap();
    }

    #[test]
    fn encoder_error_names_the_argument() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1u8);
        let e = ArgsEncoder::new().named("map", &map).unwrap_err();
        assert_eq!(e.param(), "map");
        assert_eq!(
            e.to_string(),
            format!(
                "argument `map`: {}",
                serde_json::to_value(&map).unwrap_err()
            )
        );
        let e = ArgsEncoder::new().positional("map", &map).unwrap_err();
        assert_eq!(String::from(e), "argument `map`: key must be a string");
    }
}
