//! Analysis: the function's signature, checked against the options, into [`Command`].
//!
//! Nothing here generates code; every misuse becomes a `syn::Error` at the offending
//! token, and independent mistakes are reported together.

use proc_macro2::Span;
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, ExprLit, FnArg, GenericArgument, Ident, Item, ItemFn, Lit, LitStr,
    Meta, Pat, PatIdent, PatType, PathArguments, ReturnType, Signature, Token, Type,
};

use crate::case;
use crate::options::{Mode, Options};

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
pub(crate) fn error_between(start: Span, end: Span, message: impl std::fmt::Display) -> Error {
    let mut a = proc_macro2::Punct::new('<', proc_macro2::Spacing::Alone);
    a.set_span(start);
    let mut b = proc_macro2::Punct::new('>', proc_macro2::Spacing::Alone);
    b.set_span(end);
    Error::new_spanned(quote!(#a #b), message)
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
///
/// The steps, each adding its errors: the options, the `#[kwarg]` attributes
/// ([`strip_kwarg_attrs`]), the function's qualifiers ([`check_qualifiers`]), its
/// parameters ([`parameters`]), its output ([`output_types`]), the command's name
/// ([`struct_ident`]); then, with no error, the attributes copied to the struct
/// ([`Attrs`]).
pub(crate) fn analyze(
    options: syn::Result<Options>,
    mut item: ItemFn,
) -> (ItemFn, syn::Result<Command>) {
    let mut errors = Errors::default();
    let options = errors.push_result(options);
    let kinds = strip_kwarg_attrs(&mut item, &mut errors);
    let role = Role::of(options.as_ref());
    let sig = &item.sig;
    check_qualifiers(sig, &mut errors);
    let (context_ty, params) = parameters(sig, &kinds, role, &mut errors);
    let result = output_types(sig, role, &mut errors);
    let name = options.as_ref().and_then(|o| o.name.as_ref());
    let struct_ident = struct_ident(name, &sig.ident, &mut errors);

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

    let Attrs {
        docs,
        doc_parts,
        cfgs,
    } = Attrs::of(&item);
    let command = Command {
        options,
        snake_name: item.sig.ident.unraw().to_string(),
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

/// Which half of a command the function is: what its first parameter and its error type
/// must be.
#[derive(Clone, Copy)]
enum Role {
    /// The runner half: `(ctx: &mut RunnerContext, ...) -> Result<T, E>`.
    Runner,
    /// A frontend-only command's frontend: `(call: &Call<'_>, ...) -> Result<T, Error>`.
    Frontend,
}

impl Role {
    /// The function's role; a runner when the options are wrong.
    fn of(options: Option<&Options>) -> Role {
        match options {
            Some(Options {
                mode: Mode::FrontendOnly,
                ..
            }) => Role::Frontend,
            _ => Role::Runner,
        }
    }

    /// What the first parameter must be, for messages.
    fn first_param(self) -> &'static str {
        match self {
            Role::Runner => "the context: `ctx: &mut RunnerContext` (or `&RunnerContext`)",
            Role::Frontend => "the call: `call: &Call<'_>`",
        }
    }

    /// `E` of the `Result<T, E>` to return, for messages.
    fn error_type(self) -> &'static str {
        match self {
            Role::Runner => "E",
            Role::Frontend => "ctl_core::Error",
        }
    }
}

/// Refuses what a command function cannot be: `const`, `async`, `unsafe`, `extern`,
/// generic, variadic.
fn check_qualifiers(sig: &Signature, errors: &mut Errors) {
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
}

/// The type of the first parameter (the context or the call) and the parameters after it.
/// `kinds` has one entry per parameter, from [`strip_kwarg_attrs`].
fn parameters(
    sig: &Signature,
    kinds: &[Option<(ParamKind, Span)>],
    role: Role,
    errors: &mut Errors,
) -> (Option<Type>, Vec<Param>) {
    let mut context_ty = None;
    let mut params = Vec::new();
    for (index, (input, kind)) in sig.inputs.iter().zip(kinds).enumerate() {
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
            context_ty = first_param(typed, *kind, role, errors);
        } else if let Some(param) = param(typed, *kind, errors) {
            params.push(param);
        }
    }
    if sig.inputs.is_empty() {
        errors.push(Error::new(
            sig.paren_token.span.join(),
            format!("missing the first parameter: {}", role.first_param()),
        ));
    }
    (context_ty, params)
}

/// The context (runner) or call (frontend) parameter: a reference, not a `#[kwarg]`. Its
/// type is checked by rustc where the expansion passes it.
fn first_param(
    typed: &PatType,
    kind: Option<(ParamKind, Span)>,
    role: Role,
    errors: &mut Errors,
) -> Option<Type> {
    let expected = role.first_param();
    if let Some((_, span)) = kind {
        errors.push(Error::new(
            span,
            format!("the first parameter is {expected}; it cannot be a `#[kwarg]`"),
        ));
    }
    if matches!(&*typed.ty, Type::Reference(_)) {
        Some((*typed.ty).clone())
    } else {
        errors.push(Error::new_spanned(
            &typed.ty,
            format!("expected a reference: the first parameter must be {expected}"),
        ));
        None
    }
}

/// A parameter after the first: `name: Type`, with a concrete type.
fn param(typed: &PatType, kind: Option<(ParamKind, Span)>, errors: &mut Errors) -> Option<Param> {
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
        return None;
    }
    Some(Param {
        ident: ident?,
        ty: (*typed.ty).clone(),
        kind: kind.map_or(ParamKind::Positional, |(k, _)| k),
    })
}

/// `T` and `E` of the `Result<T, E>` the function returns.
fn output_types(sig: &Signature, role: Role, errors: &mut Errors) -> Option<(Type, Type)> {
    match &sig.output {
        ReturnType::Default => {
            errors.push(error_between(
                sig.fn_token.span,
                sig.paren_token.span.close(),
                format!(
                    "a command function must return `Result<T, {}>`",
                    role.error_type()
                ),
            ));
            None
        }
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some((t, _)) if is_impl_trait(t) => {
                errors.push(Error::new_spanned(
                    t,
                    "`impl Trait` outputs are not supported: the output is decoded into a \
                     concrete type",
                ));
                None
            }
            Some((t, e)) => Some((t.clone(), e.clone())),
            None => {
                errors.push(Error::new_spanned(
                    ty,
                    "expected `Result<T, E>`, written out with both type arguments: `T` is the \
                     command's output",
                ));
                None
            }
        },
    }
}

/// The generated struct's name (also the registered name): `name = "..."`, else the
/// function's name in PascalCase. It must differ from the function's name, which shares
/// the value namespace with a unit struct.
fn struct_ident(name: Option<&LitStr>, fn_ident: &Ident, errors: &mut Errors) -> Option<Ident> {
    match name {
        Some(lit) => {
            let ident = Ident::new(&lit.value(), lit.span());
            if ident == fn_ident.unraw() {
                errors.push(Error::new_spanned(
                    lit,
                    format!(
                        "the command name must differ from the function's name: the generated \
                         unit struct `{ident}` and the function share a namespace"
                    ),
                ));
                return None;
            }
            Some(ident)
        }
        None => {
            let fn_name = fn_ident.unraw().to_string();
            let pascal = case::snake_to_pascal(&fn_name);
            if !case::is_ident(&pascal) {
                errors.push(Error::new_spanned(
                    fn_ident,
                    format!(
                        "cannot derive a command name from `{fn_name}`; give one with \
                         `name = \"PascalName\"`"
                    ),
                ));
                return None;
            }
            if pascal == fn_name {
                errors.push(Error::new_spanned(
                    fn_ident,
                    format!(
                        "the generated struct `{pascal}` would have the function's name; name \
                         the function in snake_case or give `name = \"...\"`"
                    ),
                ));
                return None;
            }
            Some(Ident::new(&pascal, fn_ident.span()))
        }
    }
}

/// The function's attributes that the generated items take over.
struct Attrs {
    /// Every `#[doc]`, for the struct.
    docs: Vec<Attribute>,
    /// The text of `docs`, for `CommandSpec::doc`.
    doc_parts: Vec<DocPart>,
    /// Every `#[cfg]`, for each generated item.
    cfgs: Vec<Attribute>,
}

impl Attrs {
    fn of(item: &ItemFn) -> Attrs {
        let named = |name: &str| -> Vec<Attribute> {
            item.attrs
                .iter()
                .filter(|a| a.path().is_ident(name))
                .cloned()
                .collect()
        };
        let docs = named("doc");
        let doc_parts = docs.iter().filter_map(DocPart::of).collect();
        Attrs {
            docs,
            doc_parts,
            cfgs: named("cfg"),
        }
    }
}

impl DocPart {
    /// The piece of `#[doc = ...]`; `None` for another form of `doc`.
    fn of(attr: &Attribute) -> Option<DocPart> {
        let Meta::NameValue(nv) = &attr.meta else {
            return None;
        };
        Some(match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                let text = s.value();
                DocPart::Lit(text.strip_prefix(' ').map_or(text.clone(), str::to_owned))
            }
            other => DocPart::Expr(other.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{message, options};
    use proc_macro2::TokenStream;
    use syn::parse_quote;

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
