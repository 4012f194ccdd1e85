//! Code generation from a checked [`Command`]. See `docs/expansion.md` for the shape of
//! the output.
//!
//! [`expand`] puts together the pieces [`Gen`] makes, one method each: the struct and its
//! docs, the `Command` impl with the spec, the methods `run`, `run_with` and `runner`, the
//! codec (the runner function, the arguments' encoder and the by-name frontend; a
//! frontend-only command gets the by-name frontend alone), and the registration.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, Item, LitStr};

use crate::options::{Mode, Options, Placement};
use crate::parse::{self, Command, DocPart, Param, ParamKind};

/// The whole attribute: parse, check, generate. Errors become `compile_error!`s next to
/// the (cleaned) function, so that code using the function does not add errors of its own.
pub(crate) fn container_command(args: TokenStream, input: TokenStream) -> TokenStream {
    let options = Options::parse(args, Span::call_site());
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Fn(item)) => item,
        Ok(other) => {
            let mut error = parse::not_a_function(&other);
            if let Err(e) = options {
                error.combine(e);
            }
            let error = error.to_compile_error();
            return quote!(#error #other);
        }
        Err(e) => {
            let error = e.to_compile_error();
            return quote!(#error #input);
        }
    };
    match parse::analyze(options, item) {
        (_, Ok(command)) => expand(&command),
        (item, Err(e)) => {
            let error = e.to_compile_error();
            quote!(#error #item)
        }
    }
}

/// The generated code: the struct, its `Command` impl, its methods and codec, the user's
/// function, the registration.
pub(crate) fn expand(cmd: &Command) -> TokenStream {
    let gen = Gen::new(cmd);
    let struct_item = gen.struct_item();
    let command_impl = gen.command_impl();
    let inherent_impl = gen.inherent_impl();
    let registration = gen.registration();
    let item = &cmd.item;
    quote! {
        #struct_item
        #command_impl
        #inherent_impl
        #item
        #registration
    }
}

/// What the pieces of the expansion share.
struct Gen<'a> {
    cmd: &'a Command,
    /// The struct's name, also the registered name.
    name: String,
    /// `None` for a frontend-only command.
    placement: Option<Placement>,
    /// `frontend = path`.
    frontend: Option<&'a syn::Path>,
    /// `async_frontend = path`.
    async_frontend: Option<&'a syn::Path>,
    /// `osctld = path`.
    osctld: Option<&'a syn::Path>,
    /// The first parameter of `run`; it does not clash with the user's parameters.
    ct: Ident,
    /// The first parameter of `run_with` and `runner`; it does not clash either.
    call: Ident,
    /// The first and last spans of each parameter's type (see [`span_range`]).
    ranges: Vec<(Span, Span)>,
    /// Where generated code finds ctl_core.
    krate: Krate<'a>,
}

/// The path of ctl_core in generated code: `::ctl_core`, or the path of `crate = ...`
/// (a facade crate re-exporting ctl_core).
struct Krate<'a>(Option<&'a syn::Path>);

impl Krate<'_> {
    /// The path for code spanned at `span`. `::ctl_core` takes the span, as if written
    /// there; a given path keeps its own, so that a path that does not resolve is
    /// reported at the attribute.
    fn at(&self, span: Span) -> TokenStream {
        match self.0 {
            Some(path) => path.to_token_stream(),
            None => quote_spanned!(span=> ::ctl_core),
        }
    }
}

impl ToTokens for Krate<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.at(Span::call_site()));
    }
}

impl<'a> Gen<'a> {
    fn new(cmd: &'a Command) -> Gen<'a> {
        let (placement, frontend, async_frontend, osctld) = match &cmd.options.mode {
            Mode::Runner {
                placement,
                frontend,
                async_frontend,
                osctld,
            } => (
                Some(*placement),
                frontend.as_ref(),
                async_frontend.as_ref(),
                osctld.as_ref(),
            ),
            Mode::FrontendOnly => (None, None, None, None),
        };
        Gen {
            cmd,
            name: cmd.struct_ident.to_string(),
            placement,
            frontend,
            async_frontend,
            osctld,
            ct: Ident::new("ct", Span::mixed_site()),
            call: Ident::new("call", Span::mixed_site()),
            ranges: cmd.params.iter().map(|p| span_range(&p.ty)).collect(),
            krate: Krate(cmd.options.krate.as_ref()),
        }
    }

    /// The user's function.
    fn fn_ident(&self) -> &'a Ident {
        &self.cmd.item.sig.ident
    }

    /// The parameters after the context, as `name: Type`.
    fn params(&self) -> Vec<TokenStream> {
        self.cmd
            .params
            .iter()
            .map(|p| {
                let (ident, ty) = (&p.ident, &p.ty);
                quote!(#ident: #ty)
            })
            .collect()
    }

    /// The names of the parameters after the context.
    fn idents(&self) -> Vec<&'a Ident> {
        self.cmd.params.iter().map(|p| &p.ident).collect()
    }

    /// Each parameter with the spans of its type.
    fn params_with_ranges(&self) -> impl Iterator<Item = (&'a Param, (Span, Span))> + '_ {
        self.cmd.params.iter().zip(self.ranges.iter().copied())
    }

    // ---- The struct -------------------------------------------------------------------

    /// The unit struct, with the function's docs and a line saying where it came from.
    fn struct_item(&self) -> TokenStream {
        let Command {
            docs, cfgs, item, ..
        } = self.cmd;
        let (vis, ty) = (&item.vis, &self.cmd.struct_ident);
        let origin = doc_attr(&self.origin_doc());
        let origin_attrs = if docs.is_empty() {
            origin
        } else {
            let blank = doc_attr("");
            quote!(#blank #origin)
        };
        quote! {
            #(#docs)*
            #origin_attrs
            #(#cfgs)*
            #[derive(Clone, Copy, Debug, Default)]
            #vis struct #ty;
        }
    }

    /// The struct's last doc line.
    fn origin_doc(&self) -> String {
        let name = &self.name;
        let placement_text = self.placement.map_or("frontend only".to_owned(), |p| {
            format!("runner placement `{}`", p.name())
        });
        format!(
            "*Command `{name}` ({placement_text}), generated by `#[container_command]` from the \
             function `{}`. Call it with `{name}::run`.*",
            self.fn_ident()
        )
    }

    // ---- The spec ---------------------------------------------------------------------

    /// `impl Command`: the spec and the output type.
    fn command_impl(&self) -> TokenStream {
        let krate = &self.krate;
        let Command {
            cfgs,
            struct_ident: ty,
            output,
            ..
        } = self.cmd;
        let spec = self.spec();
        quote! {
            #(#cfgs)*
            impl #krate::Command for #ty {
                const SPEC: &'static #krate::CommandSpec = #spec;
                type Output = #output;
            }
        }
    }

    /// The `&CommandSpec` literal.
    fn spec(&self) -> TokenStream {
        let krate = &self.krate;
        let name = &self.name;
        let snake = &self.cmd.snake_name;
        let placement = match self.placement {
            Some(p) => {
                let variant = format_ident!("{}", p.variant());
                quote!(::core::option::Option::Some(#krate::Placement::#variant))
            }
            None => quote!(::core::option::Option::None),
        };
        let setuid_helpers = self.cmd.options.setuid_helpers;
        let static_runner = self.cmd.options.static_runner;
        let lock = format_ident!("{}", self.cmd.options.lock.variant());
        let custom_frontend = self.placement.is_none() || self.frontend.is_some();
        let doc = doc_expr(&self.cmd.doc_parts);
        quote! {
            &#krate::CommandSpec {
                name: #name,
                snake_name: #snake,
                placement: #placement,
                setuid_helpers: #setuid_helpers,
                static_runner: #static_runner,
                lock: #krate::LockMode::#lock,
                custom_frontend: #custom_frontend,
                doc: #doc,
            }
        }
    }

    // ---- The methods ------------------------------------------------------------------

    /// The inherent impl: `run`, `run_with`, and with a runner half `runner` and the codec
    /// (without one, the by-name frontend `__CTL_BY_NAME`).
    fn inherent_impl(&self) -> TokenStream {
        let Command {
            cfgs,
            struct_ident: ty,
            ..
        } = self.cmd;
        let run = self.run_method();
        let run_with = self.run_with_method();
        let runner = self.placement.map(|_| self.runner_method());
        let asynchronous = self.async_methods();
        let codec = match self.placement {
            Some(_) => self.codec(),
            None => {
                // The by-name frontend and the arguments' encoder (for the async twin,
                // which runs the frontend by name), in one constant as in `codec`.
                let krate = &self.krate;
                let types = self.cmd.params.iter().map(|p| &p.ty);
                let by_name = self.by_name_fn(false);
                let encoder = self.encoder();
                quote! {
                    #[doc(hidden)]
                    const __CTL_BY_NAME: (
                        #krate::FrontendFn,
                        fn(#(#types),*) -> ::core::result::Result<#krate::Args, #krate::Error>,
                    ) = (#by_name, #encoder);
                }
            }
        };
        quote! {
            #(#cfgs)*
            #[allow(dead_code)]
            impl #ty {
                #run

                #run_with

                #runner

                #asynchronous

                #codec
            }
        }
    }

    /// The async twins (with `ctl-core`'s feature `tokio`): `run_async`, `run_with_async`,
    /// and with a runner half `runner_async`. Without a frontend of its own,
    /// `run_with_async` is `runner_async` (on the reactor); a custom frontend is blocking
    /// code, run by name on tokio's blocking pool (`ctl_core::async_frontend::run_frontend`).
    fn async_methods(&self) -> TokenStream {
        let krate = &self.krate;
        let (vis, output, call, ct) = (&self.cmd.item.vis, &self.cmd.output, &self.call, &self.ct);
        let name = &self.name;
        let runner_async = self.placement.map(|_| {
            let runner_doc = doc_attr(&format!(
                "[`runner`](Self::runner), async (`ctl-core`'s feature `tokio`): the runner half \
                 of `{name}` driven on the tokio reactor, no thread per call. Dropping the \
                 future kills the runner's process group and reaps it."
            ));
            let (params, idents) = (self.params(), self.idents());
            quote! {
                #runner_doc
                #[allow(clippy::too_many_arguments)]
                #vis async fn runner_async(
                    #call: &#krate::Call<'_>,
                    #(#params),*
                ) -> ::core::result::Result<#output, #krate::Error> {
                    let __ctl_args = (Self::__CTL_CODEC.1)(#(#idents),*)?;
                    #krate::__private::call_runner_async::<Self>(#call, __ctl_args).await
                }
            }
        });
        let idents = self.idents();
        let run_with_body = match (self.placement, self.frontend) {
            (Some(_), None) => quote!(Self::runner_async(#call, #(#idents),*).await),
            _ if self.async_frontend.is_some() => {
                // The async frontend, under the container's lock (taken on the timer). A
                // frontend of the wrong signature is reported at its path.
                let path = self.async_frontend.expect("checked");
                let (_, end) = span_range(path);
                let body = quote_spanned!(end=> #path(#call, #(#idents),*).await);
                quote! {
                    let __ctl_locked = #krate::__private::lock_async::<Self>(#call).await?;
                    let #call = match &__ctl_locked {
                        ::core::option::Option::Some(__ctl_locked) => __ctl_locked,
                        ::core::option::Option::None => #call,
                    };
                    #body
                }
            }
            (placement, _) => {
                let (encoder, by_name) = match placement {
                    Some(_) => (quote!(Self::__CTL_CODEC.1), quote!(Self::__CTL_CODEC.2)),
                    None => (quote!(Self::__CTL_BY_NAME.1), quote!(Self::__CTL_BY_NAME.0)),
                };
                quote! {
                    let __ctl_args = (#encoder)(#(#idents),*)?;
                    let __ctl_value =
                        #krate::__private::frontend_async::<Self>(#call, #by_name, __ctl_args)
                            .await?;
                    #krate::__private::frontend_output::<Self>(__ctl_value)
                }
            }
        };
        let how = match (self.placement, self.frontend) {
            (Some(_), None) => "its runner half on the reactor, no thread per call",
            _ if self.async_frontend.is_some() => "its async frontend",
            _ => {
                "its frontend (blocking code) on tokio's blocking pool, with its runners \
                  cancelled"
            }
        };
        let run_with_doc = doc_attr(&format!(
            "[`run_with`](Self::run_with), async (`ctl-core`'s feature `tokio`): runs `{name}` \
             with these call options: {how}. Dropping the future kills and reaps its runner."
        ));
        let run_doc = doc_attr(&format!(
            "[`run`](Self::run), async (`ctl-core`'s feature `tokio`): runs `{name}` on the \
             container `ct` with the default call options."
        ));
        let (params, params_again, idents_again) = (self.params(), self.params(), self.idents());
        let by_name_async = self.async_frontend.map(|_| self.by_name_async_fn());
        quote! {
            #krate::__private::tokio_only! {
                #runner_async

                #run_doc
                #[allow(clippy::too_many_arguments)]
                #vis async fn run_async(
                    #ct: &#krate::Container,
                    #(#params_again),*
                ) -> ::core::result::Result<#output, #krate::Error> {
                    Self::run_with_async(&#krate::Call::new(#ct), #(#idents_again),*).await
                }

                #run_with_doc
                #[allow(clippy::too_many_arguments)]
                #vis async fn run_with_async(
                    #call: &#krate::Call<'_>,
                    #(#params),*
                ) -> ::core::result::Result<#output, #krate::Error> {
                    #run_with_body
                }

                #by_name_async
            }
        }
    }

    /// With `async_frontend`: `Registration::frontend_async`, the async frontend by name
    /// (decodes the arguments as the by-name frontend does, runs `run_with_async`).
    fn by_name_async_fn(&self) -> TokenStream {
        let krate = &self.krate;
        let decode = self
            .params_with_ranges()
            .map(|(p, range)| decode_param(&self.krate, p, range));
        let args_mut = (!self.cmd.params.is_empty()).then(|| quote!(mut));
        let idents = self.idents();
        let idents_again = self.idents();
        quote! {
            #[doc(hidden)]
            fn __ctl_by_name_async<'__ctl>(
                __ctl_call: &'__ctl #krate::Call<'__ctl>,
                __ctl_args: #krate::Args,
            ) -> ::std::pin::Pin<::std::boxed::Box<
                dyn ::core::future::Future<
                    Output = ::core::result::Result<#krate::__private::Value, #krate::Error>,
                > + ::core::marker::Send + '__ctl,
            >> {
                ::std::boxed::Box::pin(async move {
                    let __ctl_decoded = (move || {
                        let #args_mut __ctl_args: #krate::Args = __ctl_args;
                        #(#decode)*
                        __ctl_args.finish()?;
                        ::core::result::Result::Ok::<_, #krate::CommandError>((#(#idents,)*))
                    })();
                    let (#(#idents_again,)*) =
                        #krate::__private::arguments_error::<Self, _>(__ctl_decoded)?;
                    #krate::__private::frontend_value::<Self>(
                        Self::run_with_async(__ctl_call, #(#idents_again),*).await?,
                    )
                })
            }
        }
    }

    /// `run(ct, ...)`: `run_with` with the default call options.
    fn run_method(&self) -> TokenStream {
        let krate = &self.krate;
        let (vis, output, ct) = (&self.cmd.item.vis, &self.cmd.output, &self.ct);
        let (params, idents) = (self.params(), self.idents());
        let doc = doc_attr(&format!(
            "Runs the `{}` command on the container `ct` with the default call options \
             (`Call::new(ct)`).",
            self.name
        ));
        quote! {
            #doc
            #[allow(clippy::too_many_arguments)]
            #vis fn run(
                #ct: &#krate::Container,
                #(#params),*
            ) -> ::core::result::Result<#output, #krate::Error> {
                Self::run_with(&#krate::Call::new(#ct), #(#idents),*)
            }
        }
    }

    /// `run_with(call, ...)`: the frontend.
    fn run_with_method(&self) -> TokenStream {
        let krate = &self.krate;
        let (vis, output, call) = (&self.cmd.item.vis, &self.cmd.output, &self.call);
        let params = self.params();
        let doc = doc_attr(&self.run_with_doc());
        let body = self.run_with_body();
        // The container's lock (`ctl_core::lock`), as the command declares it, around the
        // whole frontend; nested calls with the call it gets run under it.
        quote! {
            #doc
            #[allow(clippy::too_many_arguments)]
            #vis fn run_with(
                #call: &#krate::Call<'_>,
                #(#params),*
            ) -> ::core::result::Result<#output, #krate::Error> {
                #krate::__private::with_lock::<Self, _>(
                    #call,
                    move |#call| -> ::core::result::Result<#output, #krate::Error> { #body },
                )
            }
        }
    }

    fn run_with_doc(&self) -> String {
        let name = &self.name;
        match (self.placement, self.frontend) {
            (None, _) => format!(
                "Runs the `{name}` command with this call: its frontend is `{}`.",
                self.fn_ident()
            ),
            (Some(_), Some(path)) => format!(
                "Runs the `{name}` command with these call options (stdio, deadline, placement, \
                 runner binary) through its frontend `{}`.",
                path.to_token_stream().to_string().replace(' ', "")
            ),
            (Some(_), None) => format!(
                "Runs the `{name}` command with these call options (stdio, deadline, placement, \
                 runner binary): starts its runner half and decodes the reply."
            ),
        }
    }

    /// Calls the frontend: the user's function (frontend-only), `frontend = path`, or
    /// `runner`.
    fn run_with_body(&self) -> TokenStream {
        let (call, idents) = (&self.call, self.idents());
        match (self.placement, self.frontend) {
            (None, _) => {
                // The user's function is the frontend. Its result must be
                // `Result<T, ctl_core::Error>`: a mismatch is reported at `E`.
                let (start, end) = span_range(&self.cmd.error);
                let mut callee = self.fn_ident().clone();
                callee.set_span(start);
                let (_, ctx_end) = span_range(&self.cmd.context_ty);
                let call_arg = Ident::new("call", Span::mixed_site().located_at(ctx_end));
                quote!(#callee)
                    .into_iter()
                    .chain(quote_spanned!(end=> (#call_arg, #(#idents),*)))
                    .collect()
            }
            (Some(_), Some(path)) => {
                // A frontend of the wrong signature is reported at its path.
                let (_, end) = span_range(path);
                quote_spanned!(end=> #path(#call, #(#idents),*))
            }
            (Some(_), None) => quote!(Self::runner(#call, #(#idents),*)),
        }
    }

    /// `runner(call, ...)`: encodes the arguments, starts the runner half, decodes its reply.
    fn runner_method(&self) -> TokenStream {
        let krate = &self.krate;
        let (vis, output, call) = (&self.cmd.item.vis, &self.cmd.output, &self.call);
        let (params, idents) = (self.params(), self.idents());
        let doc = doc_attr(&format!(
            "Starts the runner half of `{}` for this call (the call's placement, else \
             the command's) and decodes its reply. Custom frontends end with this.",
            self.name
        ));
        quote! {
            #doc
            #[allow(clippy::too_many_arguments)]
            #vis fn runner(
                #call: &#krate::Call<'_>,
                #(#params),*
            ) -> ::core::result::Result<#output, #krate::Error> {
                let __ctl_args = (Self::__CTL_CODEC.1)(#(#idents),*)?;
                #krate::__private::call_runner::<Self>(#call, __ctl_args)
            }
        }
    }

    // ---- The codec --------------------------------------------------------------------
    //
    // What fails for a parameter's type is reported at the whole type: the generated
    // expressions run from its first to its last token. The assertion, the decoder and the
    // encoder then fail at the very same span, and rustc reports each missing trait once.

    /// `__CTL_CODEC`: the registered runner function (decodes the envelope's arguments,
    /// calls the user's function, encodes its output), the encoder of `runner()` and the
    /// by-name frontend ([`Gen::by_name_fn`]). All three are closures of one constant, so
    /// that rustc checks them in one body and does not repeat an error the assertion
    /// already reported.
    fn codec(&self) -> TokenStream {
        let krate = &self.krate;
        let types = self.cmd.params.iter().map(|p| &p.ty);
        let runner_fn = self.runner_fn();
        let encoder = self.encoder();
        let by_name = self.by_name_fn(false);
        quote! {
            #[doc(hidden)]
            const __CTL_CODEC: (
                #krate::RunnerFn,
                fn(#(#types),*) -> ::core::result::Result<#krate::Args, #krate::Error>,
                #krate::FrontendFn,
            ) = (
                #runner_fn,
                #encoder,
                #by_name,
            );
        }
    }

    /// The frontend by name (`Registration::frontend`): decodes the arguments as the
    /// runner does, runs `run_with` (the command's frontend), encodes the output. For a
    /// frontend-only command it also holds the serde assertions of the arguments (it has
    /// no codec that would).
    fn by_name_fn(&self, with_asserts: bool) -> TokenStream {
        let krate = &self.krate;
        let decode = self
            .params_with_ranges()
            .map(|(p, range)| decode_param(&self.krate, p, range));
        let args_mut = (!self.cmd.params.is_empty()).then(|| quote!(mut));
        let idents = self.idents();
        let asserts = with_asserts.then(|| self.assert_args());
        let asserts = asserts.iter().flatten();
        quote! {
            |__ctl_call, __ctl_args| {
                #(#asserts)*
                let __ctl_decoded = (move || {
                    let #args_mut __ctl_args: #krate::Args = __ctl_args;
                    #(#decode)*
                    __ctl_args.finish()?;
                    ::core::result::Result::Ok::<_, #krate::CommandError>((#(#idents,)*))
                })();
                let (#(#idents,)*) = #krate::__private::arguments_error::<Self, _>(__ctl_decoded)?;
                #krate::__private::frontend_value::<Self>(Self::run_with(__ctl_call, #(#idents),*)?)
            }
        }
    }

    /// The runner function: decode, call, convert the error, encode the output.
    fn runner_fn(&self) -> TokenStream {
        let krate = &self.krate;
        let Command { params, output, .. } = self.cmd;
        let decode = self
            .params_with_ranges()
            .map(|(p, range)| decode_param(&self.krate, p, range));
        let args_mut = (!params.is_empty()).then(|| quote!(mut));
        // A context of the wrong type is reported at the first parameter's type.
        let ctx_arg = Ident::new("__ctl_ctx", span_range(&self.cmd.context_ty).1);
        let (fn_ident, idents) = (self.fn_ident(), self.idents());
        let convert = self.convert_error();
        let encode_output = self.encode_output();
        quote! {
            |__ctl_ctx, #args_mut __ctl_args| {
                #(#decode)*
                __ctl_args.finish()?;
                let __ctl_result = #fn_ident(#ctx_arg, #(#idents),*);
                let __ctl_result: ::core::result::Result<#output, #krate::CommandError> =
                    #convert;
                #encode_output
            }
        }
    }

    /// `__ctl_result` with its error converted into `CommandError`. An error type that
    /// does not convert is reported at `E`.
    fn convert_error(&self) -> TokenStream {
        let (start, end) = span_range(&self.cmd.error);
        let into = {
            let head = quote_spanned!(start=> ::core::convert::);
            let krate = self.krate.at(end);
            let tail = quote_spanned!(end=> Into::<#krate::CommandError>::into);
            quote!(#head #tail)
        };
        let map_err = quote_spanned!(start=> ::core::result::Result::map_err);
        let args = quote_spanned!(end=> (__ctl_result, #into));
        quote!(#map_err #args)
    }

    /// The output as a JSON value. An output that does not serialize is reported at `T`.
    fn encode_output(&self) -> TokenStream {
        let output = &self.cmd.output;
        let (start, end) = span_range(output);
        let krate = self.krate.at(start);
        let head = quote_spanned!(start=> #krate::__private::to_value::<);
        let value = {
            let result = Ident::new("__ctl_result", start);
            let question = quote_spanned!(end=> ?);
            quote!(#result #question)
        };
        let tail = quote_spanned!(end=> >(#value));
        quote!(#head #output #tail)
    }

    /// The encoder of `runner()`: the parameters into `Args`.
    fn encoder(&self) -> TokenStream {
        let krate = &self.krate;
        let idents = self.idents();
        let body = if self.cmd.params.is_empty() {
            quote!(::core::result::Result::Ok(#krate::Args::default()))
        } else {
            let assert_args = self.assert_args();
            let encode = self
                .params_with_ranges()
                .map(|(p, range)| encode_param(&self.krate, p, range));
            quote! {
                #(#assert_args)*
                #krate::__private::encode_args::<Self>(|__ctl_enc| {
                    #(#encode)*
                    ::core::result::Result::Ok(__ctl_enc)
                })
            }
        };
        quote!(|#(#idents),*| { #body })
    }

    /// Readable errors at the offending type when an argument is not serde. (The output
    /// type needs no assertion: `type Output = T` is checked at `T`.)
    fn assert_args(&self) -> Vec<TokenStream> {
        self.params_with_ranges()
            .map(|(p, (start, end))| {
                let ty = &p.ty;
                let krate = self.krate.at(start);
                let head = quote_spanned!(start=> #krate::__private::assert_arg::<);
                let tail = quote_spanned!(end=> >(););
                quote!(#head #ty #tail)
            })
            .collect()
    }

    // ---- The registration -------------------------------------------------------------

    /// The `inventory` registration. (A frontend-only command's assertions that its
    /// arguments are serde are in its by-name frontend, `__CTL_BY_NAME`.)
    fn registration(&self) -> TokenStream {
        let krate = &self.krate;
        let Command {
            cfgs,
            struct_ident: ty,
            ..
        } = self.cmd;
        let (runner_ref, frontend_ref) = match self.placement {
            Some(_) => (
                quote!(::core::option::Option::Some(#ty::__CTL_CODEC.0)),
                quote!(#ty::__CTL_CODEC.2),
            ),
            None => (
                quote!(::core::option::Option::None),
                quote!(#ty::__CTL_BY_NAME.0),
            ),
        };
        let osctld_ref = self.osctld_ref();
        let frontend_async_ref = match self.async_frontend {
            Some(_) => quote!(#krate::__private::tokio_or_none!(#ty::__ctl_by_name_async)),
            None => quote!(::core::option::Option::None),
        };
        let location = quote_spanned!(self.fn_ident().span()=> ::core::line!());
        quote! {
            #(#cfgs)*
            const _: () = {
                #krate::__private::inventory::submit! {
                    #krate::Registration {
                        spec: <#ty as #krate::Command>::SPEC,
                        runner: #runner_ref,
                        frontend: #frontend_ref,
                        osctld: #osctld_ref,
                        frontend_async: #frontend_async_ref,
                        module: ::core::module_path!(),
                        location: ::core::concat!(::core::file!(), ":", #location),
                    }
                }
            };
        }
    }

    /// `Registration::osctld`. A function of the wrong signature is reported at its path.
    fn osctld_ref(&self) -> TokenStream {
        match self.osctld {
            Some(path) => {
                let krate = self.krate.at(path.span());
                quote_spanned!(path.span()=>
                    ::core::option::Option::Some(#krate::__private::osctld_fn(#path))
                )
            }
            None => quote!(::core::option::Option::None),
        }
    }
}

/// `let name: T = Args::<method>::<T>(&mut __ctl_args, "key")?;` in the runner function.
fn decode_param(krate: &Krate, p: &Param, (start, end): (Span, Span)) -> TokenStream {
    let (ty, key) = (&p.ty, p.key());
    let method = match p.kind {
        ParamKind::Positional => "positional",
        ParamKind::Named => "named",
        ParamKind::NamedOrDefault => "named_or_default",
    };
    let method = Ident::new(method, start);
    let ident = respan(&p.ident, start);
    let krate = krate.at(start);
    let head = quote_spanned!(start=> let #ident: #ty = #krate::Args::#method::<);
    let tail = quote_spanned!(end=> >(&mut __ctl_args, #key)?;);
    quote!(#head #ty #tail)
}

/// `let __ctl_enc = ArgsEncoder::<method>::<T>(__ctl_enc, "key", &name)?;` in the encoder.
fn encode_param(krate: &Krate, p: &Param, (start, end): (Span, Span)) -> TokenStream {
    let (ty, key) = (&p.ty, p.key());
    let method = match p.kind {
        ParamKind::Positional => "positional",
        ParamKind::Named | ParamKind::NamedOrDefault => "named",
    };
    let method = Ident::new(method, start);
    let value = {
        let amp = quote_spanned!(start=> &);
        let ident = respan(&p.ident, end);
        quote!(#amp #ident)
    };
    let krate = krate.at(start);
    let head = quote_spanned!(start=> let __ctl_enc = #krate::ArgsEncoder::#method::<);
    let tail = quote_spanned!(end=> >(__ctl_enc, #key, #value)?;);
    quote!(#head #ty #tail)
}

fn respan(ident: &Ident, span: Span) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(span);
    ident
}

/// The doc comment as a `&'static str` expression: one literal, or `concat!` when some
/// `#[doc = ...]` is a macro call.
fn doc_expr(parts: &[DocPart]) -> TokenStream {
    let literals: Option<Vec<&str>> = parts
        .iter()
        .map(|p| match p {
            DocPart::Lit(s) => Some(s.as_str()),
            DocPart::Expr(_) => None,
        })
        .collect();
    if let Some(text) = literals {
        LitStr::new(&text.join("\n"), Span::call_site()).into_token_stream()
    } else {
        let pieces = parts.iter().enumerate().map(|(i, p)| {
            let sep = (i > 0).then(|| quote!("\n",));
            match p {
                DocPart::Lit(s) => quote!(#sep #s,),
                DocPart::Expr(e) => quote!(#sep #e,),
            }
        });
        quote!(::core::concat!(#(#pieces)*))
    }
}

/// The spans of the first and the last token of `tokens`. Generated code that starts at
/// the first and ends at the last is reported by rustc as covering all of `tokens`, also on
/// stable Rust where spans cannot be joined.
fn span_range(tokens: &impl ToTokens) -> (Span, Span) {
    let stream = tokens.to_token_stream();
    let first = stream
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| match t {
            TokenTree::Group(g) => g.span_open(),
            t => t.span(),
        });
    let last = stream.into_iter().last().map_or(first, |t| match t {
        TokenTree::Group(g) => g.span_close(),
        t => t.span(),
    });
    (first, last)
}

fn doc_attr(text: &str) -> TokenStream {
    quote!(#[doc = #text])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        container_command(args, item).to_string()
    }

    #[test]
    fn doc_literal_and_concat() {
        let lit = doc_expr(&[
            DocPart::Lit("a".into()),
            DocPart::Lit("".into()),
            DocPart::Lit("b".into()),
        ]);
        assert_eq!(lit.to_string(), r#""a\n\nb""#);
        let mixed = doc_expr(&[
            DocPart::Lit("a".into()),
            DocPart::Expr(syn::parse_quote!(include_str!("x"))),
        ]);
        assert_eq!(
            mixed.to_string(),
            r#":: core :: concat ! ("a" , "\n" , include_str ! ("x") ,)"#
        );
        assert_eq!(doc_expr(&[]).to_string(), r#""""#);
    }

    #[test]
    fn runner_expansion() {
        let out = expand_str(
            quote!(placement = exec, setuid_helpers),
            quote! {
                /// Stop it.
                #[cfg(unix)]
                pub fn stop(ctx: &mut RunnerContext, mode: StopMode, #[kwarg] timeout: u64, #[kwarg(default)] message: Option<String>) -> Result<bool, CommandError> { todo!() }
            },
        );
        for needle in [
            "pub struct Stop ;",
            "name : \"Stop\"",
            "snake_name : \"stop\"",
            "placement : :: core :: option :: Option :: Some (:: ctl_core :: Placement :: Exec)",
            "setuid_helpers : true",
            "doc : \"Stop it.\"",
            "type Output = bool ;",
            "let mode : StopMode = :: ctl_core :: Args :: positional :: < StopMode > (& mut __ctl_args , \"mode\") ? ;",
            "let timeout : u64 = :: ctl_core :: Args :: named :: < u64 > (& mut __ctl_args , \"timeout\") ? ;",
            ":: ctl_core :: Args :: named_or_default :: < Option < String > > (& mut __ctl_args , \"message\") ? ;",
            "let __ctl_enc = :: ctl_core :: ArgsEncoder :: positional :: < StopMode > (__ctl_enc , \"mode\" , & mode) ? ;",
            "let __ctl_enc = :: ctl_core :: ArgsEncoder :: named :: < u64 > (__ctl_enc , \"timeout\" , & timeout) ? ;",
            ":: ctl_core :: ArgsEncoder :: named :: < Option < String > > (__ctl_enc , \"message\" , & message) ? ;",
            ":: ctl_core :: __private :: assert_arg :: < StopMode > () ;",
            "fn (StopMode , u64 , Option < String >) -> :: core :: result :: Result < :: ctl_core :: Args , :: ctl_core :: Error >",
            "| mode , timeout , message |",
            "let __ctl_args = (Self :: __CTL_CODEC . 1) (mode , timeout , message) ? ;",
            "Self :: runner (call , mode , timeout , message)",
            "runner : :: core :: option :: Option :: Some (Stop :: __CTL_CODEC . 0)",
            "pub fn stop (ctx : & mut RunnerContext , mode : StopMode , timeout : u64 , message : Option < String >)",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        assert!(!out.contains("kwarg"), "{out}");
        // `#[cfg]` on the struct, both impls, the function and the registration.
        assert_eq!(out.matches("# [cfg (unix)]").count(), 5, "{out}");
    }

    #[test]
    fn frontend_only_expansion() {
        let out = expand_str(
            quote!(frontend_only),
            quote! {
                pub fn syscmd(call: &Call<'_>, cmd: Vec<String>) -> Result<Out, ctl_core::Error> { todo!() }
            },
        );
        assert!(
            out.contains("placement : :: core :: option :: Option :: None"),
            "{out}"
        );
        assert!(
            out.contains("runner : :: core :: option :: Option :: None"),
            "{out}"
        );
        assert!(out.contains("syscmd (call , cmd)"), "{out}");
        assert!(!out.contains("fn runner"), "{out}");
        assert!(!out.contains("__CTL_CODEC"), "{out}");
        // The by-name frontend and the encoder of the async twin, in one constant; the
        // serde assertions of the arguments are the encoder's.
        assert!(
            out.contains("const __CTL_BY_NAME : (:: ctl_core :: FrontendFn , fn (Vec < String >)"),
            "{out}"
        );
        assert!(
            out.contains(
                "| cmd | { :: ctl_core :: __private :: assert_arg :: < Vec < String > > () ;"
            ),
            "{out}"
        );
        assert!(
            out.contains("frontend : Syscmd :: __CTL_BY_NAME . 0"),
            "{out}"
        );
        // Under the lock it declares (the default: shared), and an async twin run by name.
        assert!(
            out.contains("lock : :: ctl_core :: LockMode :: Shared"),
            "{out}"
        );
        assert!(
            out.contains(":: ctl_core :: __private :: with_lock :: < Self , _ > (call , move | call | -> :: core :: result :: Result < Out , :: ctl_core :: Error > { syscmd (call , cmd) } ,)"),
            "{out}"
        );
        assert!(
            out.contains(
                "frontend_async :: < Self > (call , Self :: __CTL_BY_NAME . 0 , __ctl_args)"
            ),
            "{out}"
        );
    }

    #[test]
    fn custom_frontend_and_no_params() {
        let out = expand_str(
            quote!(placement = fork, name = "State", frontend = state_frontend),
            quote!(
                pub(crate) fn state(ctx: &RunnerContext) -> Result<Info, CommandError> {
                    todo!()
                }
            ),
        );
        assert!(out.contains("pub (crate) struct State ;"), "{out}");
        assert!(out.contains("state_frontend (call ,)"), "{out}");
        assert!(
            out.contains(
                "| | { :: core :: result :: Result :: Ok (:: ctl_core :: Args :: default ()) }"
            ),
            "{out}"
        );
        assert!(out.contains("| __ctl_ctx , __ctl_args |"), "{out}");
        assert!(!out.contains("mut __ctl_args"), "{out}");
    }

    #[test]
    fn crate_path() {
        // With `crate = ...`, the generated code names ctl_core only through that path.
        for (args, item) in [
            (
                quote!(placement = exec, osctld = my_osctld, crate = facade::core2),
                quote! {
                    /// Stop it.
                    pub fn stop(ctx: &mut RunnerContext, mode: Mode, #[kwarg] t: u64) -> Result<bool, E> { todo!() }
                },
            ),
            (
                quote!(frontend_only, crate = "::facade::core2"),
                quote! {
                    pub fn syscmd(call: &Call<'_>, cmd: Vec<String>) -> Result<Out, Error> { todo!() }
                },
            ),
            (
                quote!(placement = fork, frontend = f, crate = facade::core2),
                quote! {
                    fn state(ctx: &RunnerContext) -> Result<bool, E> { todo!() }
                },
            ),
        ] {
            let out = expand_str(args, item);
            assert!(!out.contains("compile_error"), "{out}");
            assert!(!out.contains("ctl_core"), "{out}");
            assert!(
                out.contains("facade :: core2 :: __private :: inventory :: submit !"),
                "{out}"
            );
            assert!(out.contains("facade :: core2 :: Command for"), "{out}");
        }
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand_str(
            quote!(placement = nope),
            quote!(
                fn f(ctx: &RunnerContext, #[kwarg] a: u8) -> Result<u8, E> {}
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("fn f (ctx : & RunnerContext , a : u8)"),
            "{out}"
        );
        let out = expand_str(
            quote!(placement = exec),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("must be placed on a function"), "{out}");
        assert!(out.contains("struct S ;"), "{out}");
    }
}

/// The two expansions `docs/expansion.md` shows; with `CTL_PRINT_EXPANSION=1`,
/// `cargo test -p ctl-derive print_expansion -- --nocapture` prints them (pipe them through
/// `rustfmt`).
#[cfg(test)]
mod print_expansion {
    #[test]
    fn print() {
        let show = std::env::var_os("CTL_PRINT_EXPANSION").is_some();
        let out = super::container_command(
            quote::quote!(placement = exec),
            quote::quote! {
                /// Stop the container.
                ///
                /// Sends the stop signal and waits up to `timeout` seconds.
                pub fn stop(
                    ctx: &mut RunnerContext,
                    mode: StopMode,
                    #[kwarg] timeout: u64,
                    #[kwarg(default)] message: Option<String>,
                ) -> Result<bool, CommandError> {
                    do_stop(ctx, mode, timeout, message)
                }
            },
        );
        let text = out.to_string();
        assert!(text.contains("struct Stop"), "{text}");
        assert!(text.contains("Placement :: Exec"), "{text}");
        assert!(text.contains("inventory :: submit"), "{text}");
        if show {
            println!("{out}\n");
        }
        let out = super::container_command(
            quote::quote!(frontend_only),
            quote::quote! {
                /// Run a command through `Exec` and collect its output.
                pub fn syscmd(
                    call: &Call<'_>,
                    cmd: Vec<String>,
                    #[kwarg(default)] valid_rcs: Vec<i32>,
                ) -> Result<SyscmdOutput, ctl_core::Error> {
                    syscmd_impl(call, cmd, valid_rcs)
                }
            },
        );
        let text = out.to_string();
        assert!(text.contains("struct Syscmd"), "{text}");
        assert!(
            text.contains("runner : :: core :: option :: Option :: None")
                || text.contains("Option :: None"),
            "{text}"
        );
        if show {
            println!("{out}");
        }
    }
}
