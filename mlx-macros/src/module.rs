//! `#[derive(Module)]`: parameter visiting, updates and training mode for `mlx_rs::nn`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, GenericParam, LitStr, Type, parse_quote, spanned::Spanned};

/// What one field of a struct contributes.
struct FieldPlan {
    /// How the field is reached (`self.name` or `self.0`).
    access: TokenStream,
    /// Its key in parameter paths.
    key: String,
}

/// The parsed `#[module(..)]` attribute of a field.
#[derive(Default)]
struct FieldAttrs {
    skip: bool,
    training: bool,
    rename: Option<String>,
}

fn field_attrs(attrs: &[syn::Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                out.skip = true;
                Ok(())
            } else if meta.path.is_ident("training") {
                out.training = true;
                Ok(())
            } else if meta.path.is_ident("rename") {
                let name: LitStr = meta.value()?.parse()?;
                let value = name.value();
                if value.is_empty() || value.contains('.') {
                    return Err(syn::Error::new(
                        name.span(),
                        "#[module(rename = \"..\")] needs a non-empty name without dots",
                    ));
                }
                out.rename = Some(value);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[module(..)] option; expected `skip`, `training` or `rename = \"..\"`",
                ))
            }
        })?;
    }
    if out.skip && (out.training || out.rename.is_some()) {
        return Err(syn::Error::new(
            attrs.first().map(Spanned::span).unwrap_or_else(proc_macro2::Span::call_site),
            "#[module(skip)] cannot be combined with other #[module(..)] options",
        ));
    }
    Ok(out)
}

/// The last path segment of a type, if it is a plain path.
fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// Scalar and string types that are configuration, never parameters: skipped without an
/// attribute, as Python's `Module` ignores attributes that are not arrays or modules.
fn is_plain_config(ty: &Type) -> bool {
    const PLAIN: &[&str] = &[
        "bool", "char", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
        "u128", "usize", "f32", "f64", "String",
    ];
    matches!(last_segment(ty), Some(name) if PLAIN.contains(&name.as_str()))
}

fn is_bool(ty: &Type) -> bool {
    matches!(last_segment(ty), Some(name) if name == "bool")
}

pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    for param in &mut generics.params {
        if let GenericParam::Type(t) = param {
            t.bounds.push(parse_quote!(::mlx_rs::nn::Module));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let m = quote!(::mlx_rs::nn);
    let body = match &input.data {
        Data::Struct(data) => struct_body(&data.fields, input.ident.span())?,
        Data::Enum(data) => {
            if data.variants.is_empty() {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "#[derive(Module)] needs at least one variant",
                ));
            }
            let mut variants = Vec::new();
            for v in &data.variants {
                let ok = matches!(&v.fields, Fields::Unnamed(f) if f.unnamed.len() == 1);
                if !ok {
                    return Err(syn::Error::new(
                        v.span(),
                        "#[derive(Module)] on an enum needs newtype variants, e.g. \
                         `Dense(DenseMlp)`: the active variant's module is used",
                    ));
                }
                if let Some(attr) = v.attrs.iter().find(|a| a.path().is_ident("module")) {
                    return Err(syn::Error::new(
                        attr.span(),
                        "#[module(..)] options are not supported on enum variants",
                    ));
                }
                variants.push(v.ident.clone());
            }
            enum_body(&variants)
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "#[derive(Module)] does not support unions",
            ));
        }
    };
    Ok(quote! {
        impl #impl_generics #m::Module for #name #ty_generics #where_clause {
            #body
        }
    })
}

fn struct_body(fields: &Fields, span: proc_macro2::Span) -> syn::Result<TokenStream> {
    let m = quote!(::mlx_rs::nn);
    let named = match fields {
        Fields::Named(named) => named,
        Fields::Unit => {
            return Err(syn::Error::new(
                span,
                "#[derive(Module)] needs a struct with named fields (a unit struct has no \
                 parameters)",
            ));
        }
        Fields::Unnamed(f) => {
            return Err(syn::Error::new(
                f.span(),
                "#[derive(Module)] needs named fields: they give the parameter paths",
            ));
        }
    };
    let mut plans = Vec::new();
    let mut flag: Option<TokenStream> = None;
    for field in &named.named {
        let attrs = field_attrs(&field.attrs)?;
        let Some(ident) = &field.ident else {
            return Err(syn::Error::new(field.span(), "a field without a name"));
        };
        if attrs.training {
            if !is_bool(&field.ty) {
                return Err(syn::Error::new(
                    field.ty.span(),
                    "#[module(training)] marks the `bool` field that holds the training flag",
                ));
            }
            if flag.is_some() {
                return Err(syn::Error::new(field.span(), "only one #[module(training)] field"));
            }
            flag = Some(quote!(self.#ident));
            continue;
        }
        if attrs.skip || (attrs.rename.is_none() && is_plain_config(&field.ty)) {
            continue;
        }
        if matches!(last_segment(&field.ty), Some(n) if n == "Array") {
            return Err(syn::Error::new(
                field.ty.span(),
                "a parameter of a Module is an `mlx_rs::nn::Param` (it can be frozen), not a \
                 plain `Array`; use `Param`, or #[module(skip)] for a buffer that is not a \
                 parameter",
            ));
        }
        if is_plain_config(&field.ty) {
            return Err(syn::Error::new(
                field.ty.span(),
                "#[module(rename)] on a configuration field that holds no parameters",
            ));
        }
        let key = attrs.rename.unwrap_or_else(|| {
            let s = ident.to_string();
            s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
        });
        plans.push(FieldPlan { access: quote!(self.#ident), key });
    }
    let mut seen = std::collections::HashSet::new();
    for p in &plans {
        if !seen.insert(p.key.clone()) {
            return Err(syn::Error::new(span, format!("two fields have the key `{}`", p.key)));
        }
    }
    let visit = plans.iter().map(|FieldPlan { access, key }| {
        quote! {
            let __len = path.len();
            #m::push_key(path, #key);
            #m::Module::visit_parameters(&#access, path, f);
            path.truncate(__len);
        }
    });
    let visit_mut = plans.iter().map(|FieldPlan { access, key }| {
        quote! {
            let __len = path.len();
            #m::push_key(path, #key);
            let __r = #m::Module::visit_parameters_mut(&mut #access, path, f);
            path.truncate(__len);
            __r?;
        }
    });
    let visit_q = plans.iter().map(|FieldPlan { access, key }| {
        quote! {
            let __len = path.len();
            #m::push_key(path, #key);
            let __r = #m::Module::visit_quantizable(&mut #access, path, f);
            path.truncate(__len);
            __r?;
        }
    });
    let visit_a = plans.iter().map(|FieldPlan { access, key }| {
        quote! {
            let __len = path.len();
            #m::push_key(path, #key);
            let __r = #m::Module::visit_adaptable(&mut #access, path, f);
            path.truncate(__len);
            __r?;
        }
    });
    let train =
        plans.iter().map(|FieldPlan { access, .. }| quote!(#m::Module::train(&mut #access, mode);));
    let set_flag = flag.as_ref().map(|flag| quote!(#flag = mode;));
    let state = match &flag {
        Some(flag) => quote!(::core::option::Option::Some(#flag)),
        None => {
            let children = plans.iter().map(|FieldPlan { access, .. }| {
                quote!(.or_else(|| #m::Module::training_state(&#access)))
            });
            quote!(::core::option::Option::None #(#children)*)
        }
    };
    Ok(quote! {
        fn visit_parameters<'__a>(
            &'__a self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &'__a #m::Param),
        ) {
            let _ = (&path, &f);
            #(#visit)*
        }

        fn visit_parameters_mut(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut #m::Param) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            let _ = (&path, &f);
            #(#visit_mut)*
            ::core::result::Result::Ok(())
        }

        fn visit_quantizable(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut dyn #m::Quantizable) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            let _ = (&path, &f);
            #(#visit_q)*
            ::core::result::Result::Ok(())
        }

        fn visit_adaptable(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut dyn #m::Adaptable) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            let _ = (&path, &f);
            #(#visit_a)*
            ::core::result::Result::Ok(())
        }

        fn train(&mut self, mode: bool) {
            let _ = mode;
            #set_flag
            #(#train)*
        }

        fn training_state(&self) -> ::core::option::Option<bool> {
            #state
        }
    })
}

fn enum_body(variants: &[syn::Ident]) -> TokenStream {
    let m = quote!(::mlx_rs::nn);
    let arms = |call: TokenStream| {
        let arms = variants.iter().map(|v| quote!(Self::#v(__inner) => #call,));
        quote!(match self { #(#arms)* })
    };
    let visit = arms(quote!(#m::Module::visit_parameters(__inner, path, f)));
    let visit_mut = arms(quote!(#m::Module::visit_parameters_mut(__inner, path, f)));
    let visit_q = arms(quote!(#m::Module::visit_quantizable(__inner, path, f)));
    let visit_a = arms(quote!(#m::Module::visit_adaptable(__inner, path, f)));
    let train = arms(quote!(#m::Module::train(__inner, mode)));
    let state = arms(quote!(#m::Module::training_state(__inner)));
    quote! {
        fn visit_parameters<'__a>(
            &'__a self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &'__a #m::Param),
        ) {
            #visit
        }

        fn visit_parameters_mut(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut #m::Param) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            #visit_mut
        }

        fn visit_quantizable(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut dyn #m::Quantizable) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            #visit_q
        }

        fn visit_adaptable(
            &mut self,
            path: &mut ::std::string::String,
            f: &mut dyn ::core::ops::FnMut(&str, &mut dyn #m::Adaptable) -> ::mlx_rs::Result<()>,
        ) -> ::mlx_rs::Result<()> {
            #visit_a
        }

        fn train(&mut self, mode: bool) {
            #train
        }

        fn training_state(&self) -> ::core::option::Option<bool> {
            #state
        }
    }
}
