//! Procedural macros for `mlx-rs`.
//!
//! [`macro@default_device`] writes the default-stream form of an op from its explicit-stream form,
//! so that every op exists as `foo_device(.., stream)` and `foo(..)` without writing it twice.
//! [`macro@Module`] implements `mlx_rs::nn::Module` for a struct of layers or an enum of
//! alternative layers.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::{DeriveInput, FnArg, ImplItemFn, Pat, Signature, parse_macro_input, spanned::Spanned};

mod module;

/// Implements `mlx_rs::nn::Module` (see its documentation for the rules, attributes and the
/// misuse cases that fail to compile).
///
/// - A struct with named fields: every field whose type is a module (a layer, `Param`,
///   `Vec<_>`, `Option<_>`, `Box<_>` of those) contributes its parameters under the field's name;
///   scalar and `String` fields are configuration and are skipped. `#[module(skip)]` skips any
///   other field, `#[module(rename = "key")]` changes the path key, and `#[module(training)]`
///   marks a `bool` field that stores the training flag.
/// - An enum whose variants are all newtypes (`Dense(DenseMlp)`): the active variant's module,
///   with no extra path key.
///
/// Misuse (a plain `Array` field, tuple or unit structs, non-newtype variants, unions, unknown
/// options) is a compile error, never a panic.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as DeriveInput);
    match module::derive(input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Generates `foo(..)` from `foo_device(.., stream: &Stream)`.
///
/// Put it on a function (or method) whose name ends in `_device` and whose last parameter is the
/// stream. The generated function has the same name without `_device`, the same parameters
/// without the stream, and runs on the calling thread's default stream
/// (`mlx_rs::Stream::with_thread_default`, a per-thread cache of `Stream::thread_default()`),
/// returning its error if there is none. The return type must be a `Result` whose error converts
/// from `mlx_rs::Error`.
///
/// ```ignore
/// #[default_device]
/// pub fn abs_device(a: &Array, stream: &Stream) -> Result<Array> { ... }
/// // generates: pub fn abs(a: &Array) -> Result<Array>
/// ```
#[proc_macro_attribute]
pub fn default_device(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(Span::call_site(), "#[default_device] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ImplItemFn);
    match expand(&function) {
        Ok(generated) => quote!(#function #generated).into(),
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#function #err).into()
        }
    }
}

fn expand(function: &ImplItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig: &Signature = &function.sig;
    let name = sig.ident.to_string();
    let Some(base) = name.strip_suffix("_device") else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[default_device] needs a function named `<op>_device`",
        ));
    };
    let Some(FnArg::Typed(last)) = sig.inputs.last() else {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "#[default_device] needs a last parameter `stream: &Stream`",
        ));
    };
    if !matches!(&*last.pat, Pat::Ident(p) if p.ident == "stream") {
        return Err(syn::Error::new(last.pat.span(), "the last parameter must be named `stream`"));
    }
    let mut has_self = false;
    let mut params = Vec::new();
    let mut args = Vec::new();
    for input in sig.inputs.iter().take(sig.inputs.len() - 1) {
        match input {
            FnArg::Receiver(_) => {
                has_self = true;
                params.push(quote!(#input));
            }
            FnArg::Typed(typed) => {
                let Pat::Ident(ident) = &*typed.pat else {
                    return Err(syn::Error::new(
                        typed.pat.span(),
                        "#[default_device] needs plain parameter names, not patterns",
                    ));
                };
                let arg = &ident.ident;
                let ty = &typed.ty;
                params.push(quote!(#arg: #ty));
                args.push(quote!(#arg));
            }
        }
    }
    let device_fn = &sig.ident;
    let default_fn = format_ident!("{}", base);
    let vis = &function.vis;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let output = &sig.output;
    let unsafety = &sig.unsafety;
    let target = if has_self { format!("Self::{name}") } else { name.clone() };
    let doc = format!(
        "[`{target}`] on the calling thread's default stream (see `Stream::with_thread_default`)."
    );
    let receiver = if has_self { quote!(self.) } else { quote!() };
    let stream = format_ident!("__mlx_default_stream");
    let mut call = quote!(#receiver #device_fn(#(#args,)* #stream));
    if unsafety.is_some() {
        // The caller of the generated `unsafe fn` takes on the `_device` form's contract.
        call = quote!(unsafe { #call });
    }
    Ok(quote! {
        #[doc = #doc]
        #vis #unsafety fn #default_fn #generics (#(#params),*) #output #where_clause {
            ::mlx_rs::Stream::with_thread_default(|#stream| #call)
        }
    })
}
