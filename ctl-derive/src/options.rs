//! The options of `#[container_command(...)]`, into [`Options`].
//!
//! In three steps: [`Seen::collect`] reads each option once (unknown options, duplicates
//! and bad values are errors at their token), [`Seen::check`] refuses combinations that
//! make no sense, [`Seen::finish`] builds the checked [`Options`].

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Meta, Token};

use crate::case;
use crate::parse::{error_between, Errors};

const OPTIONS: &str = "`placement = exec | fork | fork_as_root`, `frontend_only`, \
                       `frontend = path::to::fn`, `async_frontend = path::to::fn`, \
                       `osctld = path::to::fn`, \
                       `name = \"PascalName\"`, `setuid_helpers`, `static_runner`, \
                       `lock = shared | until_running | exclusive | none`, \
                       `crate = path::to::ctl_core`";
const LOCKS: &str = "`shared`, `until_running`, `exclusive` or `none`";
const PLACEMENTS: &str = "`exec`, `fork` or `fork_as_root`";
/// Old spellings still accepted, with the option each means.
const OLD_NAMES: &[(&str, &str)] = &[("no_liblxc", "static_runner")];

/// `ctl_core::Placement`'s variants, as written in the attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    Exec,
    Fork,
    ForkAsRoot,
}

impl Placement {
    fn from_name(name: &str) -> Option<Placement> {
        match name {
            "exec" => Some(Placement::Exec),
            "fork" => Some(Placement::Fork),
            "fork_as_root" => Some(Placement::ForkAsRoot),
            _ => None,
        }
    }

    /// The variant of `ctl_core::Placement`.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Placement::Exec => "Exec",
            Placement::Fork => "Fork",
            Placement::ForkAsRoot => "ForkAsRoot",
        }
    }

    /// As written in the attribute.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Placement::Exec => "exec",
            Placement::Fork => "fork",
            Placement::ForkAsRoot => "fork_as_root",
        }
    }
}

/// `ctl_core::LockMode`'s variants, as written in the attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    #[default]
    Shared,
    UntilRunning,
    Exclusive,
}

impl Lock {
    fn from_name(name: &str) -> Option<Lock> {
        match name {
            "none" => Some(Lock::None),
            "shared" => Some(Lock::Shared),
            "until_running" => Some(Lock::UntilRunning),
            "exclusive" => Some(Lock::Exclusive),
            _ => None,
        }
    }

    /// The variant of `ctl_core::LockMode`.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Lock::None => "None",
            Lock::Shared => "Shared",
            Lock::UntilRunning => "UntilRunning",
            Lock::Exclusive => "Exclusive",
        }
    }
}

/// What the command consists of.
#[derive(Debug)]
pub(crate) enum Mode {
    /// A runner half (the function) and a frontend: generated, or `frontend`.
    Runner {
        placement: Placement,
        frontend: Option<syn::Path>,
        /// `async_frontend = path`: the async form of `frontend` (with `frontend` only).
        async_frontend: Option<syn::Path>,
        /// How the runner reads osctld's envelopes (`ctl_core::osctld::OsctldFn`).
        osctld: Option<syn::Path>,
    },
    /// Only a frontend: the function itself.
    FrontendOnly,
}

/// The options of `#[container_command(...)]`.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) mode: Mode,
    pub(crate) name: Option<LitStr>,
    pub(crate) setuid_helpers: bool,
    /// `static_runner` (old name `no_liblxc`): the runner half may run in the statically
    /// linked runner.
    pub(crate) static_runner: bool,
    /// `lock = ...`: how calls take the container's lock (default shared).
    pub(crate) lock: Lock,
    /// `crate = path`: where generated code finds ctl_core, instead of `::ctl_core`.
    pub(crate) krate: Option<syn::Path>,
}

impl Options {
    /// Parses the attribute's arguments. `attr_span` is where a missing option is reported.
    pub(crate) fn parse(args: TokenStream, attr_span: Span) -> syn::Result<Options> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        let mut errors = Errors::default();
        let seen = Seen::collect(&metas, &mut errors);
        seen.check(attr_span, &mut errors);
        errors.finish()?;
        Ok(seen.finish())
    }
}

/// A value given in the attribute, with the span of its key.
type Given<T> = Option<(T, Span)>;

/// The options as written, each at most once, before their combination is checked.
#[derive(Default)]
struct Seen {
    /// `placement` was written, also with a bad value (then `placement` is `None`).
    placement_written: bool,
    placement: Given<Placement>,
    frontend_only: Given<()>,
    frontend: Given<syn::Path>,
    async_frontend: Given<syn::Path>,
    osctld: Given<syn::Path>,
    name: Option<LitStr>,
    setuid_helpers: Given<()>,
    /// With the spelling used (`static_runner` or its old name `no_liblxc`).
    static_runner: Given<String>,
    lock: Option<Lock>,
    krate: Option<syn::Path>,
}

impl Seen {
    /// Reads every option: unknown keys, repeated keys and bad values are errors at their
    /// token; the other options are still read.
    fn collect(metas: &Punctuated<Meta, Token![,]>, errors: &mut Errors) -> Seen {
        let mut seen = Seen::default();
        let mut keys: Vec<Key> = Vec::new();
        for meta in metas {
            let Some(key) = errors.push_result(Key::of(meta, &keys)) else {
                continue;
            };
            if seen.read(&key, meta, errors) {
                keys.push(key);
            }
        }
        seen
    }

    /// Reads the option `key`; `false` if `key` is not an option.
    fn read(&mut self, key: &Key, meta: &Meta, errors: &mut Errors) -> bool {
        let span = meta.path().span();
        fn at<T>(value: Option<T>, span: Span) -> Given<T> {
            value.map(|v| (v, span))
        }
        match key.option.as_str() {
            "placement" => {
                self.placement_written = true;
                self.placement = at(errors.push_result(parse_placement(meta)), span);
            }
            "frontend_only" => self.frontend_only = at(errors.push_result(flag(meta)), span),
            "setuid_helpers" => self.setuid_helpers = at(errors.push_result(flag(meta)), span),
            "static_runner" => {
                let flag = errors.push_result(flag(meta));
                self.static_runner = at(flag.map(|()| key.written.clone()), span);
            }
            "frontend" => self.frontend = at(errors.push_result(parse_frontend(meta)), span),
            "async_frontend" => {
                self.async_frontend = at(errors.push_result(parse_frontend(meta)), span)
            }
            "osctld" => self.osctld = at(errors.push_result(parse_osctld(meta)), span),
            "name" => self.name = errors.push_result(parse_name(meta)),
            "lock" => self.lock = errors.push_result(parse_lock(meta)),
            "crate" => self.krate = errors.push_result(parse_crate(meta)),
            _ => {
                errors.push(Error::new_spanned(
                    meta.path(),
                    format!(
                        "unknown option `{}`; expected one of {OPTIONS}",
                        key.written
                    ),
                ));
                return false;
            }
        }
        true
    }

    /// Refuses options that do not go together, and a missing placement.
    fn check(&self, attr_span: Span, errors: &mut Errors) {
        if let (Some((_, span)), None) = (&self.async_frontend, &self.frontend) {
            errors.push(Error::new(
                *span,
                "`async_frontend = ...` needs `frontend = ...`: it is the async form of the \
                 command's own frontend",
            ));
        }
        let Some(((), frontend_only)) = self.frontend_only else {
            if !self.placement_written {
                errors.push(Error::new(
                    attr_span,
                    "missing `placement = exec | fork | fork_as_root` (or `frontend_only` for a \
                     command without a runner half)",
                ));
            }
            return;
        };
        if self.placement_written {
            errors.push(Error::new(
                frontend_only,
                "`frontend_only` cannot be combined with `placement`: a frontend-only \
                 command has no runner half to place",
            ));
        }
        let runner_only = [
            (
                self.frontend.as_ref().map(|(_, s)| *s),
                "`frontend = ...` cannot be combined with `frontend_only`: the function of a \
                 frontend-only command is its frontend",
            ),
            (
                self.osctld.as_ref().map(|(_, s)| *s),
                "`osctld = ...` cannot be combined with `frontend_only`: it says how the runner \
                 half reads osctld's envelopes, and a frontend-only command has no runner half",
            ),
            (
                self.setuid_helpers.map(|(_, s)| s),
                "`setuid_helpers` cannot be combined with `frontend_only`: it applies to the \
                 runner half, which a frontend-only command does not have",
            ),
        ];
        for (span, message) in runner_only {
            if let Some(span) = span {
                errors.push(Error::new(span, message));
            }
        }
        if let Some((spelling, span)) = &self.static_runner {
            errors.push(Error::new(
                *span,
                format!(
                    "`{spelling}` cannot be combined with `frontend_only`: it says which runner \
                     binary may run the runner half, which a frontend-only command does not have"
                ),
            ));
        }
    }

    /// The checked options (after [`Seen::check`] found nothing).
    fn finish(self) -> Options {
        let mode = match self.placement {
            Some((placement, _)) => Mode::Runner {
                placement,
                frontend: self.frontend.map(|(p, _)| p),
                async_frontend: self.async_frontend.map(|(p, _)| p),
                osctld: self.osctld.map(|(p, _)| p),
            },
            None => Mode::FrontendOnly,
        };
        Options {
            mode,
            name: self.name,
            setuid_helpers: self.setuid_helpers.is_some(),
            static_runner: self.static_runner.is_some(),
            lock: self.lock.unwrap_or_default(),
            krate: self.krate,
        }
    }
}

/// The key of an option.
struct Key {
    /// As written.
    written: String,
    /// The option it names: the current name of an old spelling, else `written`.
    option: String,
}

impl Key {
    /// The key of `meta`: one identifier, naming an option not given before.
    fn of(meta: &Meta, seen: &[Key]) -> syn::Result<Key> {
        let path = meta.path();
        let Some(written) = path.get_ident().map(Ident::to_string) else {
            return Err(Error::new_spanned(
                path,
                format!("unknown option; expected one of {OPTIONS}"),
            ));
        };
        let option = OLD_NAMES
            .iter()
            .find(|(old, _)| *old == written)
            .map_or(written.as_str(), |(_, new)| new)
            .to_owned();
        let Some(earlier) = seen.iter().find(|k| k.option == option) else {
            return Ok(Key { written, option });
        };
        let message = if earlier.written == written {
            format!("duplicate option `{written}`")
        } else {
            // One of the two is the old name of the other.
            let old = if written == option {
                &earlier.written
            } else {
                &written
            };
            format!("duplicate option `{written}`: `{old}` is the old name of `{option}`")
        };
        Err(Error::new_spanned(path, message))
    }
}

fn flag(meta: &Meta) -> syn::Result<()> {
    match meta {
        Meta::Path(_) => Ok(()),
        Meta::List(list) => Err(Error::new(
            list.delimiter.span().join(),
            format!(
                "`{}` is a flag and takes no arguments",
                list.path.to_token_stream()
            ),
        )),
        Meta::NameValue(nv) => Err(error_between(
            nv.eq_token.span,
            nv.value.span(),
            format!(
                "`{}` is a flag and takes no value",
                nv.path.to_token_stream()
            ),
        )),
    }
}

/// The value of a `key = value` option.
fn value<'a>(meta: &'a Meta, expected: &str) -> syn::Result<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Ok(&nv.value),
        _ => Err(Error::new_spanned(meta, format!("expected {expected}"))),
    }
}

/// A plain path (no attributes, no `<T as Trait>::`), as a value.
fn plain_path(expr: &Expr) -> Option<&syn::Path> {
    match expr {
        Expr::Path(ExprPath {
            attrs,
            qself: None,
            path,
        }) if attrs.is_empty() => Some(path),
        _ => None,
    }
}

fn parse_placement(meta: &Meta) -> syn::Result<Placement> {
    let expr = value(meta, "`placement = exec | fork | fork_as_root`")?;
    if let Some(ident) = plain_path(expr).and_then(syn::Path::get_ident) {
        return Placement::from_name(&ident.to_string()).ok_or_else(|| {
            Error::new_spanned(
                ident,
                format!("unknown placement `{ident}`; expected {PLACEMENTS}"),
            )
        });
    }
    Err(Error::new_spanned(
        expr,
        format!("expected a placement: {PLACEMENTS}"),
    ))
}

fn parse_lock(meta: &Meta) -> syn::Result<Lock> {
    let expr = value(meta, "`lock = shared | until_running | exclusive | none`")?;
    if let Some(ident) = plain_path(expr).and_then(syn::Path::get_ident) {
        return Lock::from_name(&ident.to_string()).ok_or_else(|| {
            Error::new_spanned(ident, format!("unknown lock `{ident}`; expected {LOCKS}"))
        });
    }
    Err(Error::new_spanned(
        expr,
        format!("expected a lock: {LOCKS}"),
    ))
}

fn parse_frontend(meta: &Meta) -> syn::Result<syn::Path> {
    let expr = value(meta, "`frontend = path::to::frontend_fn`")?;
    plain_path(expr).cloned().ok_or_else(|| {
        Error::new_spanned(
            expr,
            "expected the path of the frontend function, e.g. `frontend = state_frontend`",
        )
    })
}

fn parse_osctld(meta: &Meta) -> syn::Result<syn::Path> {
    let expr = value(meta, "`osctld = path::to::osctld_fn`")?;
    plain_path(expr).cloned().ok_or_else(|| {
        Error::new_spanned(
            expr,
            "expected the path of a `ctl_core::osctld::OsctldFn`, e.g. \
             `osctld = ctl_core::osctld::ok_without_output`",
        )
    })
}

/// `crate = path` or, as serde writes it, `crate = "path"`.
fn parse_crate(meta: &Meta) -> syn::Result<syn::Path> {
    const EXPECTED: &str =
        "e.g. `crate = my_facade::ctl_core` or `crate = \"my_facade::ctl_core\"`";
    let expr = value(meta, "`crate = path::to::ctl_core`")?;
    let path = match expr {
        Expr::Lit(ExprLit {
            attrs,
            lit: Lit::Str(lit),
        }) if attrs.is_empty() => lit.parse::<syn::Path>().map_err(|_| {
            Error::new_spanned(
                lit,
                format!(
                    "{:?} is not a path: `crate` names the path to ctl_core, {EXPECTED}",
                    lit.value()
                ),
            )
        })?,
        _ => plain_path(expr).cloned().ok_or_else(|| {
            Error::new_spanned(expr, format!("expected the path to ctl_core, {EXPECTED}"))
        })?,
    };
    if let Some(segment) = path.segments.iter().find(|s| !s.arguments.is_none()) {
        return Err(Error::new_spanned(
            &segment.arguments,
            "the path to ctl_core is a module path: it takes no generic arguments",
        ));
    }
    Ok(path)
}

fn parse_name(meta: &Meta) -> syn::Result<LitStr> {
    let expr = value(meta, "`name = \"PascalName\"`")?;
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    else {
        return Err(Error::new_spanned(
            expr,
            "expected a string literal, e.g. `name = \"GetHostname\"`",
        ));
    };
    if !case::is_ident(&lit.value()) {
        return Err(Error::new_spanned(
            lit,
            format!(
                "invalid command name {:?}: it names the generated struct, so it must be a Rust \
                 identifier, e.g. `name = \"GetHostname\"`",
                lit.value()
            ),
        ));
    }
    Ok(lit.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{message, options};
    use quote::quote;

    #[test]
    fn parses_options() {
        let o = options(quote!(placement = exec)).unwrap();
        assert!(matches!(
            o.mode,
            Mode::Runner {
                placement: Placement::Exec,
                frontend: None,
                async_frontend: None,
                osctld: None,
            }
        ));
        assert!(!o.setuid_helpers && o.name.is_none());

        let o = options(quote!(
            placement = fork_as_root,
            setuid_helpers,
            name = "State",
        ))
        .unwrap();
        assert!(matches!(
            o.mode,
            Mode::Runner {
                placement: Placement::ForkAsRoot,
                ..
            }
        ));
        assert!(o.setuid_helpers && !o.static_runner);
        assert_eq!(o.name.unwrap().value(), "State");

        let o = options(quote!(placement = exec, static_runner)).unwrap();
        assert!(o.static_runner && !o.setuid_helpers);
        // The old name means the same.
        let o = options(quote!(placement = exec, no_liblxc)).unwrap();
        assert!(o.static_runner && !o.setuid_helpers);

        let o = options(quote!(placement = fork, frontend = self::front::state)).unwrap();
        match o.mode {
            Mode::Runner {
                placement: Placement::Fork,
                frontend: Some(p),
                async_frontend: None,
                osctld: None,
            } => {
                assert_eq!(p.to_token_stream().to_string(), "self :: front :: state")
            }
            other => panic!("{other:?}"),
        }
        let o = options(quote!(placement = exec, frontend = f, async_frontend = g)).unwrap();
        assert!(matches!(
            o.mode,
            Mode::Runner {
                async_frontend: Some(_),
                ..
            }
        ));
        assert_eq!(
            message(options(quote!(placement = exec, async_frontend = g))),
            [
                "`async_frontend = ...` needs `frontend = ...`: it is the async form of the \
              command's own frontend"
            ]
        );

        let o = options(quote!(
            placement = exec,
            osctld = ctl_core::osctld::ok_without_output
        ))
        .unwrap();
        match o.mode {
            Mode::Runner {
                osctld: Some(p), ..
            } => assert_eq!(
                p.to_token_stream().to_string(),
                "ctl_core :: osctld :: ok_without_output"
            ),
            other => panic!("{other:?}"),
        }

        let o = options(quote!(frontend_only, name = "Syscmd2")).unwrap();
        assert!(matches!(o.mode, Mode::FrontendOnly));
        assert!(o.krate.is_none());
    }

    #[test]
    fn crate_path() {
        let path = |tokens| {
            let o = options(tokens).unwrap();
            o.krate.unwrap().to_token_stream().to_string()
        };
        assert_eq!(
            path(quote!(placement = exec, crate = my_facade::ctl_core)),
            "my_facade :: ctl_core"
        );
        assert_eq!(
            path(quote!(crate = "::my_facade::ctl_core", placement = exec)),
            ":: my_facade :: ctl_core"
        );
        assert_eq!(
            path(quote!(frontend_only, crate = crate::facade::core2)),
            "crate :: facade :: core2"
        );
        assert_eq!(
            path(quote!(placement = exec, crate = "self::x")),
            "self :: x"
        );

        for (tokens, start) in [
            (
                quote!(placement = exec, crate),
                "expected `crate = path::to::ctl_core`",
            ),
            (
                quote!(placement = exec, crate = 1),
                "expected the path to ctl_core, e.g.",
            ),
            (
                quote!(placement = exec, crate = <X as Y>::z),
                "expected the path to ctl_core, e.g.",
            ),
            (
                quote!(placement = exec, crate = "not a path"),
                "\"not a path\" is not a path: `crate` names the path to ctl_core",
            ),
            (quote!(placement = exec, crate = ""), "\"\" is not a path"),
            (
                quote!(placement = exec, crate = facade::core2::<u8>),
                "the path to ctl_core is a module path",
            ),
            (
                quote!(placement = exec, crate = "facade<u8>"),
                "the path to ctl_core is a module path",
            ),
            (
                quote!(placement = exec, crate = a, crate = b),
                "duplicate option `crate`",
            ),
        ] {
            let e = message(options(tokens.clone()));
            assert_eq!(e.len(), 1, "{tokens}: {e:?}");
            assert!(e[0].starts_with(start), "{tokens}: {e:?}");
        }
    }

    #[test]
    fn option_errors() {
        let unknown = message(options(quote!(placement = exec, bogus)));
        assert_eq!(unknown.len(), 1);
        assert!(
            unknown[0].starts_with("unknown option `bogus`; expected one of `placement"),
            "{unknown:?}"
        );

        assert_eq!(
            message(options(quote!(placement = exec, placement = fork))),
            ["duplicate option `placement`"]
        );
        assert_eq!(
            message(options(quote!(placement = exex))),
            ["unknown placement `exex`; expected `exec`, `fork` or `fork_as_root`"]
        );
        assert_eq!(
            message(options(quote!(placement = "exec"))),
            ["expected a placement: `exec`, `fork` or `fork_as_root`"]
        );
        let missing = message(options(quote!()));
        assert!(missing[0].starts_with("missing `placement = exec | fork | fork_as_root`"));
        assert!(message(options(quote!(name = "X"))).len() == 1);
        assert!(message(options(quote!(frontend_only, frontend = f)))[0]
            .starts_with("`frontend = ...` cannot be combined with `frontend_only`"));
        assert!(message(options(quote!(frontend_only, placement = exec)))[0]
            .starts_with("`frontend_only` cannot be combined with `placement`"));
        assert!(message(options(quote!(frontend_only, setuid_helpers)))[0]
            .starts_with("`setuid_helpers` cannot be combined"));
        assert_eq!(
            message(options(quote!(placement = exec, setuid_helpers = true))),
            ["`setuid_helpers` is a flag and takes no value"]
        );
        assert!(message(options(quote!(frontend_only, static_runner)))[0]
            .starts_with("`static_runner` cannot be combined with `frontend_only`"));
        assert!(message(options(quote!(frontend_only, no_liblxc)))[0]
            .starts_with("`no_liblxc` cannot be combined with `frontend_only`"));
        assert_eq!(
            message(options(quote!(placement = exec, no_liblxc(yes)))),
            ["`no_liblxc` is a flag and takes no arguments"]
        );
        assert_eq!(
            message(options(quote!(placement = exec, static_runner = true))),
            ["`static_runner` is a flag and takes no value"]
        );
        assert_eq!(
            message(options(quote!(
                placement = exec,
                static_runner,
                static_runner
            ))),
            ["duplicate option `static_runner`"]
        );
        assert_eq!(
            message(options(quote!(placement = exec, no_liblxc, static_runner))),
            ["duplicate option `static_runner`: `no_liblxc` is the old name of `static_runner`"]
        );
        assert_eq!(
            message(options(quote!(placement = exec, static_runner, no_liblxc))),
            ["duplicate option `no_liblxc`: `no_liblxc` is the old name of `static_runner`"]
        );
        assert_eq!(
            message(options(quote!(placement = exec, bogus, bogus))),
            ["unknown option `bogus`; expected one of `placement = exec | fork | \
                 fork_as_root`, `frontend_only`, `frontend = path::to::fn`, `async_frontend = \
                 path::to::fn`, `osctld = path::to::fn`, `name = \"PascalName\"`, `setuid_helpers`, `static_runner`, \
                 `lock = shared | until_running | exclusive | none`, \
                 `crate = path::to::ctl_core`"; 2]
        );
        assert_eq!(
            message(options(quote!(placement = exec, lock = sometimes))),
            ["unknown lock `sometimes`; expected `shared`, `until_running`, `exclusive` or `none`"]
        );
        assert_eq!(
            message(options(quote!(placement = exec, lock = "shared"))),
            ["expected a lock: `shared`, `until_running`, `exclusive` or `none`"]
        );
        assert_eq!(
            message(options(quote!(
                placement = exec,
                lock = shared,
                lock = none
            ))),
            ["duplicate option `lock`"]
        );
        for (written, lock) in [
            (quote!(placement = exec), Lock::Shared),
            (quote!(placement = exec, lock = exclusive), Lock::Exclusive),
            (
                quote!(frontend_only, lock = until_running),
                Lock::UntilRunning,
            ),
            (quote!(placement = fork, lock = none), Lock::None),
        ] {
            assert_eq!(options(written).unwrap().lock, lock);
        }
        assert!(
            message(options(quote!(placement = exec, name = "get-hostname")))[0]
                .starts_with("invalid command name \"get-hostname\"")
        );
        assert!(message(options(quote!(placement = exec, name = Foo)))[0]
            .starts_with("expected a string literal"));
        assert!(
            message(options(quote!(placement = exec, frontend = "f")))[0]
                .starts_with("expected the path of the frontend function")
        );

        // Independent mistakes are reported together.
        let all = message(options(quote!(placement = bad, bogus, name = "a b")));
        assert_eq!(all.len(), 3, "{all:?}");
    }
}
