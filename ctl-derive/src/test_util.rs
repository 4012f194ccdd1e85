//! Helpers shared by the unit tests of the option and item parsers.

use proc_macro2::{Span, TokenStream};

use crate::options::Options;

/// The options of `#[container_command(<tokens>)]`.
pub(crate) fn options(tokens: TokenStream) -> syn::Result<Options> {
    Options::parse(tokens, Span::call_site())
}

/// The messages of an expected error, one per `syn::Error` combined into it.
pub(crate) fn message(result: syn::Result<impl std::fmt::Debug>) -> Vec<String> {
    result
        .unwrap_err()
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}
