//! Parsing: the attribute's options and the function's signature, into [`Command`].
//!
//! Nothing here generates code; every misuse becomes a `syn::Error` at the offending
//! token, and independent mistakes are reported together.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, ExprLit, ExprPath, FnArg, GenericArgument, Ident, Item, ItemFn, Lit,
    LitStr, Meta, Pat, PatIdent, PathArguments, ReturnType, Token, Type,
};

use crate::case;

const OPTIONS: &str = "`placement = exec | fork | fork_as_root`, `frontend_only`, \
                       `frontend = path::to::fn`, `osctld = path::to::fn`, \
                       `name = \"PascalName\"`, `setuid_helpers`, `no_liblxc`";
const PLACEMENTS: &str = "`exec`, `fork` or `fork_as_root`";

/// Collects independent errors into one.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn push_result<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// An error covering the source text from `start` to `end`.
fn error_between(start: Span, end: Span, message: impl std::fmt::Display) -> Error {
    let mut a = proc_macro2::Punct::new('<', proc_macro2::Spacing::Alone);
    a.set_span(start);
    let mut b = proc_macro2::Punct::new('>', proc_macro2::Spacing::Alone);
    b.set_span(end);
    Error::new_spanned(quote!(#a #b), message)
}

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

    /// The variant of `::ctl_core::Placement`.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Placement::Exec => "Exec",
            Placement::Fork => "Fork",
            Placement::ForkAsRoot => "ForkAsRoot",
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
    pub(crate) no_liblxc: bool,
}

impl Options {
    /// Parses the attribute's arguments. `attr_span` is where a missing option is reported.
    pub(crate) fn parse(args: TokenStream, attr_span: Span) -> syn::Result<Options> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        let mut errors = Errors::default();

        let mut placement: Option<(Placement, Span)> = None;
        let mut placement_seen = false;
        let mut frontend_only: Option<Span> = None;
        let mut frontend: Option<(syn::Path, Span)> = None;
        let mut osctld: Option<(syn::Path, Span)> = None;
        let mut name: Option<LitStr> = None;
        let mut setuid_helpers: Option<Span> = None;
        let mut no_liblxc: Option<Span> = None;
        let mut seen: Vec<String> = Vec::new();

        for meta in &metas {
            let path = meta.path();
            let Some(key) = path.get_ident().map(Ident::to_string) else {
                errors.push(Error::new_spanned(
                    path,
                    format!("unknown option; expected one of {OPTIONS}"),
                ));
                continue;
            };
            if seen.contains(&key) {
                errors.push(Error::new_spanned(
                    path,
                    format!("duplicate option `{key}`"),
                ));
                continue;
            }
            let key_span = path.span();
            match key.as_str() {
                "placement" => {
                    placement_seen = true;
                    if let Some(p) = errors.push_result(parse_placement(meta)) {
                        placement = Some((p, key_span));
                    }
                }
                "frontend_only" => {
                    if errors.push_result(flag(meta)).is_some() {
                        frontend_only = Some(key_span);
                    }
                }
                "setuid_helpers" => {
                    if errors.push_result(flag(meta)).is_some() {
                        setuid_helpers = Some(key_span);
                    }
                }
                "no_liblxc" => {
                    if errors.push_result(flag(meta)).is_some() {
                        no_liblxc = Some(key_span);
                    }
                }
                "frontend" => {
                    if let Some(p) = errors.push_result(parse_frontend(meta)) {
                        frontend = Some((p, key_span));
                    }
                }
                "osctld" => {
                    if let Some(p) = errors.push_result(parse_osctld(meta)) {
                        osctld = Some((p, key_span));
                    }
                }
                "name" => name = errors.push_result(parse_name(meta)),
                _ => {
                    errors.push(Error::new_spanned(
                        path,
                        format!("unknown option `{key}`; expected one of {OPTIONS}"),
                    ));
                    continue;
                }
            }
            seen.push(key);
        }

        if let Some(span) = frontend_only {
            if placement_seen {
                errors.push(Error::new(
                    span,
                    "`frontend_only` cannot be combined with `placement`: a frontend-only \
                     command has no runner half to place",
                ));
            }
            if let Some((_, frontend_span)) = &frontend {
                errors.push(Error::new(
                    *frontend_span,
                    "`frontend = ...` cannot be combined with `frontend_only`: the function of a \
                     frontend-only command is its frontend",
                ));
            }
            if let Some((_, osctld_span)) = &osctld {
                errors.push(Error::new(
                    *osctld_span,
                    "`osctld = ...` cannot be combined with `frontend_only`: it says how the runner \
                     half reads osctld's envelopes, and a frontend-only command has no runner half",
                ));
            }
            if let Some(setuid_span) = setuid_helpers {
                errors.push(Error::new(
                    setuid_span,
                    "`setuid_helpers` cannot be combined with `frontend_only`: it applies to the \
                     runner half, which a frontend-only command does not have",
                ));
            }
            if let Some(span) = no_liblxc {
                errors.push(Error::new(
                    span,
                    "`no_liblxc` cannot be combined with `frontend_only`: it says which runner \
                     binary may run the runner half, which a frontend-only command does not have",
                ));
            }
        } else if !placement_seen {
            errors.push(Error::new(
                attr_span,
                "missing `placement = exec | fork | fork_as_root` (or `frontend_only` for a \
                 command without a runner half)",
            ));
        }
        errors.finish()?;

        let mode = match placement {
            Some((placement, _)) => Mode::Runner {
                placement,
                frontend: frontend.map(|(p, _)| p),
                osctld: osctld.map(|(p, _)| p),
            },
            None => Mode::FrontendOnly,
        };
        Ok(Options {
            mode,
            name,
            setuid_helpers: setuid_helpers.is_some(),
            no_liblxc: no_liblxc.is_some(),
        })
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

fn parse_placement(meta: &Meta) -> syn::Result<Placement> {
    let expr = value(meta, "`placement = exec | fork | fork_as_root`")?;
    if let Expr::Path(ExprPath {
        attrs,
        qself: None,
        path,
    }) = expr
    {
        if let (true, Some(ident)) = (attrs.is_empty(), path.get_ident()) {
            return Placement::from_name(&ident.to_string()).ok_or_else(|| {
                Error::new_spanned(
                    ident,
                    format!("unknown placement `{ident}`; expected {PLACEMENTS}"),
                )
            });
        }
    }
    Err(Error::new_spanned(
        expr,
        format!("expected a placement: {PLACEMENTS}"),
    ))
}

fn parse_frontend(meta: &Meta) -> syn::Result<syn::Path> {
    let expr = value(meta, "`frontend = path::to::frontend_fn`")?;
    match expr {
        Expr::Path(ExprPath {
            attrs,
            qself: None,
            path,
        }) if attrs.is_empty() => Ok(path.clone()),
        _ => Err(Error::new_spanned(
            expr,
            "expected the path of the frontend function, e.g. `frontend = state_frontend`",
        )),
    }
}

fn parse_osctld(meta: &Meta) -> syn::Result<syn::Path> {
    let expr = value(meta, "`osctld = path::to::osctld_fn`")?;
    match expr {
        Expr::Path(ExprPath {
            attrs,
            qself: None,
            path,
        }) if attrs.is_empty() => Ok(path.clone()),
        _ => Err(Error::new_spanned(
            expr,
            "expected the path of a `ctl_core::osctld::OsctldFn`, e.g. \
             `osctld = ctl_core::osctld::ok_without_output`",
        )),
    }
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

/// How a parameter travels in the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// In `args`, in order.
    Positional,
    /// In `kwargs` (`#[kwarg]`); missing decodes from `null`.
    Named,
    /// In `kwargs`, `Default::default()` when missing or `null` (`#[kwarg(default)]`).
    NamedOrDefault,
}

/// A parameter after the context.
#[derive(Debug)]
pub(crate) struct Param {
    /// The binding, without `mut`.
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) kind: ParamKind,
}

impl Param {
    /// The argument's name in the envelope: the identifier without `r#`.
    pub(crate) fn key(&self) -> String {
        self.ident.unraw().to_string()
    }
}

/// One piece of the doc comment.
#[derive(Debug)]
pub(crate) enum DocPart {
    /// `/// text` or `#[doc = "text"]`, with its one leading space stripped.
    Lit(String),
    /// `#[doc = some_macro!(...)]`, kept as an expression for `concat!`.
    Expr(Expr),
}

/// Everything the generator needs, checked.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) options: Options,
    /// The user's function, `#[kwarg]` attributes stripped.
    pub(crate) item: ItemFn,
    /// The generated struct, also the registered name.
    pub(crate) struct_ident: Ident,
    /// The function's name without `r#`.
    pub(crate) snake_name: String,
    /// Every `#[doc]` attribute of the function.
    pub(crate) docs: Vec<Attribute>,
    pub(crate) doc_parts: Vec<DocPart>,
    /// Every `#[cfg]` attribute of the function.
    pub(crate) cfgs: Vec<Attribute>,
    /// The type of the first parameter (`&mut RunnerContext` or `&Call<'_>`).
    pub(crate) context_ty: Type,
    pub(crate) params: Vec<Param>,
    /// `T` of `Result<T, E>`.
    pub(crate) output: Type,
    /// `E` of `Result<T, E>`.
    pub(crate) error: Type,
}

/// Where `#[container_command]` is not on a function: the error, at the item's keyword
/// and name.
pub(crate) fn not_a_function(item: &Item) -> Error {
    const MSG: &str = "#[container_command] must be placed on a function";
    let tokens = match item {
        Item::Struct(s) => {
            let (kw, id) = (&s.struct_token, &s.ident);
            quote!(#kw #id)
        }
        Item::Enum(e) => {
            let (kw, id) = (&e.enum_token, &e.ident);
            quote!(#kw #id)
        }
        Item::Union(u) => {
            let (kw, id) = (&u.union_token, &u.ident);
            quote!(#kw #id)
        }
        Item::Trait(t) => {
            let (kw, id) = (&t.trait_token, &t.ident);
            quote!(#kw #id)
        }
        Item::Impl(i) => {
            let (kw, ty) = (&i.impl_token, &i.self_ty);
            quote!(#kw #ty)
        }
        Item::Mod(m) => {
            let (kw, id) = (&m.mod_token, &m.ident);
            quote!(#kw #id)
        }
        Item::Const(c) => {
            let (kw, id) = (&c.const_token, &c.ident);
            quote!(#kw #id)
        }
        Item::Static(s) => {
            let (kw, id) = (&s.static_token, &s.ident);
            quote!(#kw #id)
        }
        Item::Type(t) => {
            let (kw, id) = (&t.type_token, &t.ident);
            quote!(#kw #id)
        }
        other => other.to_token_stream(),
    };
    Error::new_spanned(tokens, MSG)
}

/// Strips `#[kwarg]` from the parameters of `item` and returns it with the kinds they gave
/// (one entry per parameter, `None` without the attribute).
fn strip_kwarg_attrs(item: &mut ItemFn, errors: &mut Errors) -> Vec<Option<(ParamKind, Span)>> {
    let mut kinds = Vec::new();
    for input in &mut item.sig.inputs {
        let attrs = match input {
            FnArg::Receiver(r) => &mut r.attrs,
            FnArg::Typed(t) => &mut t.attrs,
        };
        let mut kind: Option<(ParamKind, Span)> = None;
        let mut kept = Vec::with_capacity(attrs.len());
        for attr in attrs.drain(..) {
            if !attr.path().is_ident("kwarg") {
                kept.push(attr);
                continue;
            }
            let span = attr.span();
            if kind.is_some() {
                errors.push(Error::new_spanned(&attr, "duplicate `#[kwarg]` attribute"));
                continue;
            }
            if let Some(k) = errors.push_result(parse_kwarg(&attr)) {
                kind = Some((k, span));
            }
        }
        *attrs = kept;
        kinds.push(kind);
    }
    kinds
}

fn parse_kwarg(attr: &Attribute) -> syn::Result<ParamKind> {
    const EXPECTED: &str = "expected `#[kwarg]` or `#[kwarg(default)]`";
    match &attr.meta {
        Meta::Path(_) => Ok(ParamKind::Named),
        Meta::NameValue(nv) => Err(error_between(nv.eq_token.span, nv.value.span(), EXPECTED)),
        Meta::List(list) => {
            let mut default = false;
            list.parse_nested_meta(|meta| {
                if !meta.path.is_ident("default") {
                    return Err(Error::new_spanned(
                        &meta.path,
                        format!(
                            "unknown `kwarg` option `{}`; {EXPECTED}",
                            meta.path.to_token_stream()
                        ),
                    ));
                }
                if default {
                    return Err(meta.error("duplicate `default`"));
                }
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    return Err(meta.input.error("`default` takes no value"));
                }
                default = true;
                Ok(())
            })?;
            Ok(if default {
                ParamKind::NamedOrDefault
            } else {
                ParamKind::Named
            })
        }
    }
}

/// `Result<T, E>` as written, looking through parentheses and invisible groups.
fn result_types(ty: &Type) -> Option<(&Type, &Type)> {
    match ty {
        Type::Paren(p) => return result_types(&p.elem),
        Type::Group(g) => return result_types(&g.elem),
        _ => {}
    }
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter();
    match (types.next(), types.next(), types.next()) {
        (Some(GenericArgument::Type(t)), Some(GenericArgument::Type(e)), None) => Some((t, e)),
        _ => None,
    }
}

fn is_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Paren(p) => is_impl_trait(&p.elem),
        Type::Group(g) => is_impl_trait(&g.elem),
        _ => false,
    }
}

/// Checks the function against the options. Returns the function with `#[kwarg]`
/// stripped (emitted as is when there are errors, so that uses of it do not add noise)
/// and the command, or every error found.
pub(crate) fn analyze(
    options: syn::Result<Options>,
    mut item: ItemFn,
) -> (ItemFn, syn::Result<Command>) {
    let mut errors = Errors::default();
    let options = errors.push_result(options);
    let kinds = strip_kwarg_attrs(&mut item, &mut errors);
    let frontend_only = matches!(
        options,
        Some(Options {
            mode: Mode::FrontendOnly,
            ..
        })
    );
    let sig = &item.sig;

    if let Some(t) = &sig.constness {
        errors.push(Error::new_spanned(
            t,
            "a command function cannot be `const`",
        ));
    }
    if let Some(t) = &sig.asyncness {
        errors.push(Error::new_spanned(
            t,
            "a command function cannot be `async`: the runner calls it synchronously",
        ));
    }
    if let Some(t) = &sig.unsafety {
        errors.push(Error::new_spanned(
            t,
            "a command function cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            "a command function cannot be `extern`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "a command function cannot be generic: its arguments and output are decoded into \
             concrete types",
        ));
    }
    if let Some(w) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            w,
            "a command function cannot have a `where` clause",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(Error::new_spanned(
            v,
            "a command function cannot be variadic",
        ));
    }

    // The context (runner) or call (frontend-only) parameter.
    let first_expected = if frontend_only {
        "the call: `call: &Call<'_>`"
    } else {
        "the context: `ctx: &mut RunnerContext` (or `&RunnerContext`)"
    };
    let mut context_ty = None;
    let mut params = Vec::new();
    for (index, (input, kind)) in sig.inputs.iter().zip(&kinds).enumerate() {
        let typed = match input {
            FnArg::Receiver(r) => {
                errors.push(Error::new_spanned(
                    r,
                    "a command function cannot take `self`: place #[container_command] on a \
                     free function",
                ));
                continue;
            }
            FnArg::Typed(t) => t,
        };
        if index == 0 {
            if let Some((_, span)) = kind {
                errors.push(Error::new(
                    *span,
                    format!("the first parameter is {first_expected}; it cannot be a `#[kwarg]`"),
                ));
            }
            if matches!(&*typed.ty, Type::Reference(_)) {
                context_ty = Some((*typed.ty).clone());
            } else {
                errors.push(Error::new_spanned(
                    &typed.ty,
                    format!("expected a reference: the first parameter must be {first_expected}"),
                ));
            }
            continue;
        }
        let ident = match &*typed.pat {
            Pat::Ident(PatIdent {
                by_ref: None,
                subpat: None,
                ident,
                ..
            }) => Some(ident.clone()),
            Pat::Ident(PatIdent {
                by_ref: Some(r), ..
            }) => {
                errors.push(Error::new_spanned(
                    r,
                    "`ref` bindings are not supported: write `name: Type`",
                ));
                None
            }
            pat => {
                errors.push(Error::new_spanned(
                    pat,
                    "expected a plain `name: Type` parameter: the name is the argument's name in \
                     the envelope",
                ));
                None
            }
        };
        if is_impl_trait(&typed.ty) {
            errors.push(Error::new_spanned(
                &typed.ty,
                "`impl Trait` parameters are not supported: each argument is decoded into a \
                 concrete type",
            ));
            continue;
        }
        if let Some(ident) = ident {
            let kind = kind.map_or(ParamKind::Positional, |(k, _)| k);
            params.push(Param {
                ident,
                ty: (*typed.ty).clone(),
                kind,
            });
        }
    }
    if sig.inputs.is_empty() {
        errors.push(Error::new(
            sig.paren_token.span.join(),
            format!("missing the first parameter: {first_expected}"),
        ));
    }

    let mut result = None;
    match &sig.output {
        ReturnType::Default => errors.push(error_between(
            sig.fn_token.span,
            sig.paren_token.span.close(),
            format!(
                "a command function must return `Result<T, {}>`",
                if frontend_only {
                    "ctl_core::Error"
                } else {
                    "E"
                }
            ),
        )),
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some((t, _)) if is_impl_trait(t) => errors.push(Error::new_spanned(
                t,
                "`impl Trait` outputs are not supported: the output is decoded into a concrete \
                 type",
            )),
            Some((t, e)) => result = Some((t.clone(), e.clone())),
            None => errors.push(Error::new_spanned(
                ty,
                "expected `Result<T, E>`, written out with both type arguments: `T` is the \
                 command's output",
            )),
        },
    }

    let fn_name = sig.ident.unraw().to_string();
    let mut struct_ident = None;
    match options.as_ref().and_then(|o| o.name.as_ref()) {
        Some(lit) => {
            let ident = Ident::new(&lit.value(), lit.span());
            if ident == sig.ident.unraw() {
                errors.push(Error::new_spanned(
                    lit,
                    format!(
                        "the command name must differ from the function's name: the generated \
                         unit struct `{ident}` and the function share a namespace"
                    ),
                ));
            } else {
                struct_ident = Some(ident);
            }
        }
        None => {
            let pascal = case::snake_to_pascal(&fn_name);
            if !case::is_ident(&pascal) {
                errors.push(Error::new_spanned(
                    &sig.ident,
                    format!(
                        "cannot derive a command name from `{fn_name}`; give one with \
                         `name = \"PascalName\"`"
                    ),
                ));
            } else if pascal == fn_name {
                errors.push(Error::new_spanned(
                    &sig.ident,
                    format!(
                        "the generated struct `{pascal}` would have the function's name; name \
                         the function in snake_case or give `name = \"...\"`"
                    ),
                ));
            } else {
                struct_ident = Some(Ident::new(&pascal, sig.ident.span()));
            }
        }
    }

    if let Err(e) = errors.finish() {
        return (item, Err(e));
    }
    let (Some(options), Some(struct_ident), Some(context_ty), Some((output, error))) =
        (options, struct_ident, context_ty, result)
    else {
        // Every missing piece pushed an error above; stay panic-free regardless.
        let e = Error::new(Span::call_site(), "#[container_command]: invalid function");
        return (item, Err(e));
    };

    let docs: Vec<Attribute> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    let doc_parts = docs
        .iter()
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => Some(match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => {
                    let text = s.value();
                    DocPart::Lit(text.strip_prefix(' ').map_or(text.clone(), str::to_owned))
                }
                other => DocPart::Expr(other.clone()),
            }),
            _ => None,
        })
        .collect();
    let cfgs = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect();

    let command = Command {
        options,
        snake_name: fn_name,
        struct_ident,
        docs,
        doc_parts,
        cfgs,
        context_ty,
        params,
        output,
        error,
        item: item.clone(),
    };
    (item, Ok(command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn options(tokens: TokenStream) -> syn::Result<Options> {
        Options::parse(tokens, Span::call_site())
    }

    fn message(result: syn::Result<impl std::fmt::Debug>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn parses_options() {
        let o = options(quote!(placement = exec)).unwrap();
        assert!(matches!(
            o.mode,
            Mode::Runner {
                placement: Placement::Exec,
                frontend: None,
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
        assert!(o.setuid_helpers && !o.no_liblxc);
        assert_eq!(o.name.unwrap().value(), "State");

        let o = options(quote!(placement = exec, no_liblxc)).unwrap();
        assert!(o.no_liblxc && !o.setuid_helpers);

        let o = options(quote!(placement = fork, frontend = self::front::state)).unwrap();
        match o.mode {
            Mode::Runner {
                placement: Placement::Fork,
                frontend: Some(p),
                osctld: None,
            } => {
                assert_eq!(p.to_token_stream().to_string(), "self :: front :: state")
            }
            other => panic!("{other:?}"),
        }

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
        assert!(message(options(quote!(frontend_only, no_liblxc)))[0]
            .starts_with("`no_liblxc` cannot be combined with `frontend_only`"));
        assert_eq!(
            message(options(quote!(placement = exec, no_liblxc(yes)))),
            ["`no_liblxc` is a flag and takes no arguments"]
        );
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

    fn analyze_ok(options: TokenStream, item: ItemFn) -> Command {
        analyze(Options::parse(options, Span::call_site()), item)
            .1
            .unwrap()
    }

    fn analyze_err(options: TokenStream, item: ItemFn) -> Vec<String> {
        message(analyze(Options::parse(options, Span::call_site()), item).1)
    }

    #[test]
    fn analyzes_a_runner() {
        let (stripped, cmd) = analyze(
            options(quote!(placement = exec)),
            parse_quote! {
                /// Stop it.
                ///
                ///  Indented.
                #[cfg(unix)]
                #[allow(unused)]
                pub(crate) fn stop(
                    ctx: &mut RunnerContext,
                    mut mode: StopMode,
                    #[kwarg] timeout: u64,
                    #[kwarg(default)] r#type: Option<String>,
                ) -> std::result::Result<bool, CommandError> { Ok(true) }
            },
        );
        let cmd = cmd.unwrap();
        assert_eq!(cmd.struct_ident, "Stop");
        assert_eq!(cmd.snake_name, "stop");
        assert_eq!(cmd.params.len(), 3);
        let kinds: Vec<_> = cmd.params.iter().map(|p| (p.key(), p.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("mode".to_owned(), ParamKind::Positional),
                ("timeout".to_owned(), ParamKind::Named),
                ("type".to_owned(), ParamKind::NamedOrDefault),
            ]
        );
        assert_eq!(cmd.params[0].ident, "mode");
        assert_eq!(cmd.output.to_token_stream().to_string(), "bool");
        assert_eq!(cmd.error.to_token_stream().to_string(), "CommandError");
        assert_eq!(
            cmd.context_ty.to_token_stream().to_string(),
            "& mut RunnerContext"
        );
        assert_eq!(cmd.cfgs.len(), 1);
        assert_eq!(cmd.docs.len(), 3);
        let lits: Vec<_> = cmd
            .doc_parts
            .iter()
            .map(|p| match p {
                DocPart::Lit(s) => s.as_str(),
                DocPart::Expr(_) => "<expr>",
            })
            .collect();
        assert_eq!(lits, ["Stop it.", "", " Indented."]);
        let text = stripped.to_token_stream().to_string();
        assert!(!text.contains("kwarg"), "{text}");
        assert!(text.contains("allow"), "{text}");
    }

    #[test]
    fn names() {
        let f: ItemFn = parse_quote!(
            fn get_hostname(ctx: &RunnerContext) -> Result<String, E> {}
        );
        assert_eq!(
            analyze_ok(quote!(placement = fork), f.clone()).struct_ident,
            "GetHostname"
        );
        let cmd = analyze_ok(quote!(placement = fork, name = "Hostname"), f);
        assert_eq!(
            (cmd.struct_ident.to_string(), cmd.snake_name),
            ("Hostname".into(), "get_hostname".into())
        );
        let raw: ItemFn = parse_quote!(
            fn r#loop(ctx: &RunnerContext) -> Result<(), E> {}
        );
        let cmd = analyze_ok(quote!(placement = fork), raw);
        assert_eq!(
            (cmd.struct_ident.to_string(), cmd.snake_name),
            ("Loop".into(), "loop".into())
        );

        let clash = analyze_err(
            quote!(placement = fork),
            parse_quote!(
                fn Freeze(ctx: &RunnerContext) -> Result<(), E> {}
            ),
        );
        assert!(
            clash[0].starts_with("the generated struct `Freeze` would have"),
            "{clash:?}"
        );
        let clash = analyze_err(
            quote!(placement = fork, name = "freeze"),
            parse_quote!(
                fn freeze(ctx: &RunnerContext) -> Result<(), E> {}
            ),
        );
        assert!(
            clash[0].starts_with("the command name must differ"),
            "{clash:?}"
        );
        let empty = analyze_err(
            quote!(placement = fork),
            parse_quote!(
                fn __(ctx: &RunnerContext) -> Result<(), E> {}
            ),
        );
        assert!(
            empty[0].starts_with("cannot derive a command name from `__`"),
            "{empty:?}"
        );
    }

    #[test]
    fn frontend_only() {
        let cmd = analyze_ok(
            quote!(frontend_only),
            parse_quote!(
                pub fn syscmd(call: &Call<'_>, cmd: Vec<String>) -> Result<Out, ctl_core::Error> {}
            ),
        );
        assert!(matches!(cmd.options.mode, Mode::FrontendOnly));
        assert_eq!(cmd.params.len(), 1);
        let e = analyze_err(
            quote!(frontend_only),
            parse_quote!(
                fn syscmd() -> Result<Out, Error> {}
            ),
        );
        assert_eq!(
            e,
            ["missing the first parameter: the call: `call: &Call<'_>`"]
        );
    }

    #[test]
    fn signature_errors() {
        let e = analyze_err(
            quote!(placement = exec),
            parse_quote! {
                async unsafe extern "C" fn f<T>(ctx: RunnerContext, (a, b): (u8, u8), #[kwarg(bogus)] c: u8, ref d: u8, e: impl Serialize) -> bool where T: Copy {}
            },
        );
        let expected = [
            "unknown `kwarg` option `bogus`",
            "cannot be `async`",
            "cannot be `unsafe`",
            "cannot be `extern`",
            "cannot be generic",
            "cannot have a `where` clause",
            "expected a reference",
            "expected a plain `name: Type` parameter",
            "`ref` bindings are not supported",
            "`impl Trait` parameters are not supported",
            "expected `Result<T, E>`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }

        let e = analyze_err(
            quote!(placement = exec),
            parse_quote!(
                fn f(ctx: &RunnerContext) -> Result<u8> {}
            ),
        );
        assert!(e[0].starts_with("expected `Result<T, E>`"), "{e:?}");
        let e = analyze_err(
            quote!(placement = exec),
            parse_quote!(
                fn f(ctx: &RunnerContext) -> Option<u8> {}
            ),
        );
        assert!(e[0].starts_with("expected `Result<T, E>`"), "{e:?}");
        let e = analyze_err(
            quote!(placement = exec),
            parse_quote!(
                fn f(
                    #[kwarg] ctx: &RunnerContext,
                    #[kwarg]
                    #[kwarg]
                    a: u8,
                    #[kwarg = 1] b: u8,
                ) -> Result<u8, E> {
                }
            ),
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("duplicate `#[kwarg]`"), "{e:?}");
        assert!(
            e[1].starts_with("expected `#[kwarg]` or `#[kwarg(default)]`"),
            "{e:?}"
        );
        assert!(e[2].contains("cannot be a `#[kwarg]`"), "{e:?}");

        // Option errors and signature errors together.
        let e = analyze_err(
            quote!(placement = nope),
            parse_quote!(
                fn f(self) -> Result<u8, E> {}
            ),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[1].starts_with("a command function cannot take `self`"),
            "{e:?}"
        );
    }

    #[test]
    fn result_through_groups() {
        let ty: Type = parse_quote!((core::result::Result<(u8, String), MyError>));
        let (t, e) = result_types(&ty).unwrap();
        assert_eq!(t.to_token_stream().to_string(), "(u8 , String)");
        assert_eq!(e.to_token_stream().to_string(), "MyError");
        assert!(result_types(&parse_quote!(Result<u8, E, F>)).is_none());
        assert!(result_types(&parse_quote!(<X as Tr>::Result<u8, E>)).is_none());
        assert!(result_types(&parse_quote!(Result<'a, E>)).is_none());
    }
}
