//! The [`Module`] trait, its parameter type [`Param`], weight loading and saving, and
//! [`value_and_grad`] over a model's trainable parameters.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::nn::{Adaptable, Quantizable};
use crate::utils::Tree;
use crate::{Array, transforms};

/// A parameter of a [`Module`]: an array and whether it is frozen (left out of
/// [`Module::trainable_parameters`] and so of gradients).
///
/// It dereferences to its [`Array`], so model code reads `x.matmul(self.weight.t()?)`.
#[derive(Clone, Debug)]
pub struct Param {
    value: Array,
    frozen: bool,
}

impl Param {
    /// A trainable parameter.
    pub fn new(value: Array) -> Param {
        Param { value, frozen: false }
    }

    /// A frozen parameter (as the packed weights of a quantized layer are).
    pub fn frozen(value: Array) -> Param {
        Param { value, frozen: true }
    }

    /// The array.
    pub fn value(&self) -> &Array {
        &self.value
    }

    /// Replaces the array (no shape check; [`Module::update`] checks).
    pub fn set(&mut self, value: Array) {
        self.value = value;
    }

    /// True when the parameter is left out of the trainable parameters.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Freezes (`true`) or unfreezes (`false`) the parameter.
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }
}

impl Deref for Param {
    type Target = Array;
    fn deref(&self) -> &Array {
        &self.value
    }
}

impl AsRef<Array> for Param {
    fn as_ref(&self) -> &Array {
        &self.value
    }
}

impl From<Array> for Param {
    fn from(value: Array) -> Param {
        Param::new(value)
    }
}

/// Appends `.key` (or `key` at the root) to a dotted parameter path. Used by
/// `#[derive(Module)]` and by hand-written [`Module`] implementations.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// A layer or model: a tree of named parameters, as Python's `mlx.nn.Module`.
///
/// Implement it with `#[derive(Module)]` (see [`macro@crate::nn::Module`]); the layers of
/// [`crate::nn`], [`Param`], `Vec<M>` (keys `0`, `1`, ...), `Option<M>` (absent when `None`) and
/// `Box<M>` implement it too, so they can be fields.
///
/// # Parameter paths
/// Paths are Python's `tree_flatten(model.parameters())` paths: field names joined by dots,
/// list elements by their index, e.g. `layers.3.self_attn.q_proj.weight`. An enum module adds
/// no key of its own.
///
/// # Parameters are `Param`, not `Array`
/// Python treats every array attribute as a parameter. Here a parameter field has the type
/// [`Param`] (an array plus its frozen flag, so that [`Module::freeze`] works on every
/// parameter); a plain `Array` field is a compile error that says so. Buffers that are not
/// parameters are `#[module(skip)]` fields. Scalar and `String` fields are configuration and are
/// skipped without an attribute.
///
/// # Training mode
/// [`Module::train`] sets the mode on the module and all its children. The layers of this
/// crate store the flag; a derived module reports the flag of its `#[module(training)] bool`
/// field if it has one, else that of its first child that has a mode.
///
/// # Misuse that does not compile
/// A plain `Array` field:
/// ```compile_fail
/// use mlx_rs::{Array, nn::Module};
/// #[derive(Module)]
/// struct Bad { weight: Array }
/// ```
/// A tuple struct (no names for the paths):
/// ```compile_fail
/// use mlx_rs::nn::{Linear, Module};
/// #[derive(Module)]
/// struct Bad(Linear);
/// ```
/// An enum with a variant that is not a newtype:
/// ```compile_fail
/// use mlx_rs::nn::{Linear, Module};
/// #[derive(Module)]
/// enum Bad { Dense(Linear), Empty }
/// ```
/// An unknown option, or a rename with a dot:
/// ```compile_fail
/// use mlx_rs::nn::{Linear, Module};
/// #[derive(Module)]
/// struct Bad { #[module(flatten)] proj: Linear }
/// ```
/// ```compile_fail
/// use mlx_rs::nn::{Linear, Module};
/// #[derive(Module)]
/// struct Bad { #[module(rename = "a.b")] proj: Linear }
/// ```
/// A field type that is not a module:
/// ```compile_fail
/// use mlx_rs::nn::Module;
/// #[derive(Module)]
/// struct Bad { names: Vec<String> }
/// ```
/// A `#[module(training)]` field that is not a `bool`:
/// ```compile_fail
/// use mlx_rs::nn::Module;
/// #[derive(Module)]
/// struct Bad { #[module(training)] mode: i32 }
/// ```
///
/// # Example
/// ```
/// use mlx_rs::nn::{self, Linear, Module, RmsNorm};
/// #[derive(Module)]
/// struct Block { norm: RmsNorm, proj: Linear, #[module(rename = "out")] out_proj: Option<Linear> }
/// #[derive(Module)]
/// struct Model { layers: Vec<Block>, eps: f32 }
/// let block = || -> mlx_rs::Result<Block> {
///     Ok(Block { norm: RmsNorm::new(4, 1e-5)?, proj: Linear::new(4, 4, false)?, out_proj: None })
/// };
/// let mut model = Model { layers: vec![block()?, block()?], eps: 1e-5 };
/// assert_eq!(model.parameters().paths(), [
///     "layers.0.norm.weight", "layers.0.proj.weight",
///     "layers.1.norm.weight", "layers.1.proj.weight",
/// ]);
/// model.freeze_where(|path| path.ends_with("norm.weight"));
/// assert_eq!(model.trainable_parameters().paths(), ["layers.0.proj.weight", "layers.1.proj.weight"]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub trait Module {
    /// Calls `f(path, param)` for every parameter, in path order; `path` is the prefix so far.
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param));

    /// Calls `f(path, param)` for every parameter, mutably, stopping at the first error.
    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()>;

    /// Calls `f(path, layer)` for every layer that [`crate::nn::quantize`] can replace by its
    /// quantized form. The default visits nothing.
    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        let _ = (path, f);
        Ok(())
    }

    /// Calls `f(path, layer)` for every layer slot that can take a low-rank adapter (see
    /// [`crate::nn::apply_adapters`]). The default visits nothing.
    fn visit_adaptable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Adaptable) -> Result<()>,
    ) -> Result<()> {
        let _ = (path, f);
        Ok(())
    }

    /// Sets training (`true`) or evaluation (`false`) mode here and in every child (Python's
    /// `module.train(mode)`; `train(false)` is `module.eval()`).
    fn train(&mut self, mode: bool);

    /// The training flag, or `None` for a module that holds no flag (a [`Param`], an empty list).
    fn training_state(&self) -> Option<bool>;

    /// True in training mode (the default for new layers).
    fn training(&self) -> bool {
        self.training_state().unwrap_or(true)
    }

    /// Every parameter, frozen or not, as a tree with Python's paths (`model.parameters()`).
    fn parameters(&self) -> Tree {
        collect(self, |_| true)
    }

    /// The parameters that are not frozen (`model.trainable_parameters()`).
    fn trainable_parameters(&self) -> Tree {
        collect(self, |p| !p.is_frozen())
    }

    /// The parameters as `(path, array)` pairs, in path order.
    fn named_parameters(&self) -> Vec<(String, Array)> {
        let mut out = Vec::new();
        self.visit_parameters(&mut String::new(), &mut |path, p| {
            out.push((path.to_owned(), p.value().clone()))
        });
        out
    }

    /// The number of scalars in all parameters.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_parameters(&mut String::new(), &mut |_, p| n += p.size());
        n
    }

    /// Replaces the parameters named in `params` (a partial tree is fine, as in Python's
    /// `model.update`). Strict: a path that is not a parameter, or a shape that differs from
    /// the current one, is an error naming the path, and nothing is changed.
    fn update(&mut self, params: &Tree) -> Result<()> {
        let mut new: HashMap<String, Array> =
            params.paths().into_iter().zip(params.leaves().into_iter().cloned()).collect();
        let mut known = HashSet::new();
        let mut mismatch = None;
        self.visit_parameters(&mut String::new(), &mut |path, p| {
            if let Some(a) = new.get(path) {
                known.insert(path.to_owned());
                if a.shape() != p.shape() && mismatch.is_none() {
                    mismatch = Some(format!(
                        "`{path}`: shape {:?} does not match the parameter's {:?}",
                        a.shape(),
                        p.shape()
                    ));
                }
            }
        });
        if let Some(message) = mismatch {
            return Err(Error::invalid("Module::update", message));
        }
        if let Some(unknown) = params.paths().into_iter().find(|p| !known.contains(p)) {
            return Err(Error::invalid(
                "Module::update",
                format!("`{unknown}` is not a parameter of the module"),
            ));
        }
        self.visit_parameters_mut(&mut String::new(), &mut |path, p| {
            if let Some(a) = new.remove(path) {
                p.set(a);
            }
            Ok(())
        })
    }

    /// Casts every floating-point parameter to `dtype` (Python's `model.set_dtype(dtype)`;
    /// integer parameters such as packed quantized weights are left alone). Strict loading
    /// checks dtypes, so a model is cast to its checkpoint's dtype before loading.
    fn set_dtype(&mut self, dtype: crate::Dtype) -> Result<()> {
        self.visit_parameters_mut(&mut String::new(), &mut |_, p| {
            if p.dtype().is_floating() && p.dtype() != dtype {
                let cast = p.astype(dtype)?;
                p.set(cast);
            }
            Ok(())
        })
    }

    /// Freezes every parameter.
    fn freeze(&mut self) {
        set_frozen(self, &mut |_| true, true);
    }

    /// Unfreezes every parameter.
    fn unfreeze(&mut self) {
        set_frozen(self, &mut |_| true, false);
    }

    /// Freezes the parameters whose path satisfies `predicate`.
    fn freeze_where(&mut self, mut predicate: impl FnMut(&str) -> bool)
    where
        Self: Sized,
    {
        set_frozen(self, &mut predicate, true);
    }

    /// Unfreezes the parameters whose path satisfies `predicate`.
    fn unfreeze_where(&mut self, mut predicate: impl FnMut(&str) -> bool)
    where
        Self: Sized,
    {
        set_frozen(self, &mut predicate, false);
    }

    /// Loads `(path, array)` pairs strictly (Python's `load_weights(weights, strict=True)`):
    /// a parameter without a weight, a weight without a parameter, or a weight whose shape or
    /// dtype differs from the parameter's is an error naming the path; nothing is changed then.
    fn load_weights(&mut self, weights: impl IntoIterator<Item = (String, Array)>) -> Result<()>
    where
        Self: Sized,
    {
        let weights: HashMap<String, Array> = weights.into_iter().collect();
        check_weights(self, &weights).into_strict_result()?;
        apply_weights(self, weights).map(|_| ())
    }

    /// Loads the `(path, array)` pairs that match a parameter in name, shape and dtype and
    /// returns a report of what it skipped (Python's `strict=False`, which skips silently).
    fn load_weights_lenient(
        &mut self,
        weights: impl IntoIterator<Item = (String, Array)>,
    ) -> Result<LoadReport>
    where
        Self: Sized,
    {
        apply_weights(self, weights.into_iter().collect())
    }

    /// Loads weights from one or more safetensors files, strictly (see [`Module::load_weights`]).
    /// An error names the offending path.
    fn load_safetensors<P: AsRef<Path>>(&mut self, files: &[P]) -> Result<()>
    where
        Self: Sized,
    {
        self.load_weights(read_safetensors(files)?)
    }

    /// Loads the matching weights of one or more safetensors files and reports what it skipped
    /// (see [`Module::load_weights_lenient`]).
    fn load_safetensors_lenient<P: AsRef<Path>>(&mut self, files: &[P]) -> Result<LoadReport>
    where
        Self: Sized,
    {
        self.load_weights_lenient(read_safetensors(files)?)
    }

    /// Saves every parameter to a safetensors file under its path (`model.save_weights`).
    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let arrays: HashMap<String, Array> = self.named_parameters().into_iter().collect();
        crate::io::save_safetensors(path, &arrays, &HashMap::<String, String>::new())
    }
}

fn collect<M: Module + ?Sized>(module: &M, keep: impl Fn(&Param) -> bool) -> Tree {
    let mut tree = Tree::new();
    module.visit_parameters(&mut String::new(), &mut |path, p| {
        if keep(p) {
            // Paths come from distinct fields, so inserting cannot conflict; a conflict (a
            // hand-written module reusing a key) keeps the first leaf.
            if tree.get(path).is_none() {
                let _ = tree.insert(path, p.value().clone());
            }
        }
    });
    tree
}

fn check_weights<M: Module + ?Sized>(module: &M, weights: &HashMap<String, Array>) -> LoadReport {
    let mut report = LoadReport::default();
    let mut used = HashSet::new();
    module.visit_parameters(&mut String::new(), &mut |path, p| match weights.get(path) {
        None => report.missing.push(path.to_owned()),
        Some(w) => {
            used.insert(path.to_owned());
            if w.shape() != p.shape() || w.dtype() != p.dtype() {
                report.mismatched.push(Mismatch {
                    path: path.to_owned(),
                    expected: (p.shape().to_vec(), p.dtype()),
                    found: (w.shape().to_vec(), w.dtype()),
                });
            }
        }
    });
    report.unexpected = weights.keys().filter(|k| !used.contains(*k)).cloned().collect();
    report.unexpected.sort();
    report
}

fn apply_weights<M: Module + ?Sized>(
    module: &mut M,
    mut weights: HashMap<String, Array>,
) -> Result<LoadReport> {
    let report = check_weights(module, &weights);
    for m in &report.mismatched {
        weights.remove(&m.path);
    }
    module.visit_parameters_mut(&mut String::new(), &mut |path, p| {
        if let Some(w) = weights.remove(path) {
            p.set(w);
        }
        Ok(())
    })?;
    Ok(report)
}

fn set_frozen<M: Module + ?Sized>(
    module: &mut M,
    pred: &mut dyn FnMut(&str) -> bool,
    frozen: bool,
) {
    let _ = module.visit_parameters_mut(&mut String::new(), &mut |path, p| {
        if pred(path) {
            p.set_frozen(frozen);
        }
        Ok(())
    });
}

fn read_safetensors<P: AsRef<Path>>(files: &[P]) -> Result<Vec<(String, Array)>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for file in files {
        let file = file.as_ref();
        let (arrays, _) = crate::io::load_safetensors(file)
            .with_context(|| format!("loading weights from {}", file.display()))?;
        for (name, array) in arrays {
            if !seen.insert(name.clone()) {
                return Err(Error::invalid(
                    "load_weights",
                    format!("`{name}` appears in more than one file (again in {})", file.display()),
                ));
            }
            out.push((name, array));
        }
    }
    Ok(out)
}

/// A weight whose shape or dtype differs from its parameter's.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The parameter's path.
    pub path: String,
    /// The parameter's shape and dtype.
    pub expected: (Vec<i32>, crate::Dtype),
    /// The weight's shape and dtype.
    pub found: (Vec<i32>, crate::Dtype),
}

/// What a lenient load skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Parameters that got no weight (they keep their values).
    pub missing: Vec<String>,
    /// Weights that match no parameter (not loaded), sorted.
    pub unexpected: Vec<String>,
    /// Weights whose shape or dtype differs from their parameter's (not loaded).
    pub mismatched: Vec<Mismatch>,
}

impl LoadReport {
    /// True when every parameter got a weight and every weight was used.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    fn into_strict_result(self) -> Result<()> {
        const OP: &str = "load_weights";
        if let Some(m) = self.mismatched.first() {
            return Err(Error::invalid(
                OP,
                format!(
                    "weight of shape {:?} and dtype {} does not fit the parameter of shape {:?} \
                     and dtype {}",
                    m.found.0, m.found.1, m.expected.0, m.expected.1
                ),
            ))
            .context(format!("at `{}`", m.path));
        }
        if let Some(path) = self.missing.first() {
            return Err(Error::invalid(
                OP,
                format!("no weight for the parameter ({} missing)", self.missing.len()),
            ))
            .context(format!("at `{path}`"));
        }
        if let Some(path) = self.unexpected.first() {
            return Err(Error::invalid(
                OP,
                format!("the weight matches no parameter ({} unexpected)", self.unexpected.len()),
            ))
            .context(format!("at `{path}`"));
        }
        Ok(())
    }
}

impl Module for Param {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        f(path, self);
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        f(path, self).with_context(|| format!("at `{path}`"))
    }

    fn train(&mut self, _mode: bool) {}

    fn training_state(&self) -> Option<bool> {
        None
    }
}

impl<M: Module> Module for Vec<M> {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        for (i, m) in self.iter().enumerate() {
            let len = path.len();
            push_key(path, &i.to_string());
            m.visit_parameters(path, f);
            path.truncate(len);
        }
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        for (i, m) in self.iter_mut().enumerate() {
            let len = path.len();
            push_key(path, &i.to_string());
            let r = m.visit_parameters_mut(path, f);
            path.truncate(len);
            r?;
        }
        Ok(())
    }

    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        for (i, m) in self.iter_mut().enumerate() {
            let len = path.len();
            push_key(path, &i.to_string());
            let r = m.visit_quantizable(path, f);
            path.truncate(len);
            r?;
        }
        Ok(())
    }

    fn visit_adaptable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Adaptable) -> Result<()>,
    ) -> Result<()> {
        for (i, m) in self.iter_mut().enumerate() {
            let len = path.len();
            push_key(path, &i.to_string());
            let r = m.visit_adaptable(path, f);
            path.truncate(len);
            r?;
        }
        Ok(())
    }

    fn train(&mut self, mode: bool) {
        self.iter_mut().for_each(|m| m.train(mode));
    }

    fn training_state(&self) -> Option<bool> {
        self.iter().find_map(Module::training_state)
    }
}

impl<M: Module> Module for Option<M> {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        if let Some(m) = self {
            m.visit_parameters(path, f);
        }
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        match self {
            Some(m) => m.visit_parameters_mut(path, f),
            None => Ok(()),
        }
    }

    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        match self {
            Some(m) => m.visit_quantizable(path, f),
            None => Ok(()),
        }
    }

    fn visit_adaptable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Adaptable) -> Result<()>,
    ) -> Result<()> {
        match self {
            Some(m) => m.visit_adaptable(path, f),
            None => Ok(()),
        }
    }

    fn train(&mut self, mode: bool) {
        if let Some(m) = self {
            m.train(mode);
        }
    }

    fn training_state(&self) -> Option<bool> {
        self.as_ref().and_then(Module::training_state)
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        (**self).visit_parameters(path, f);
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        (**self).visit_parameters_mut(path, f)
    }

    fn visit_quantizable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
    ) -> Result<()> {
        (**self).visit_quantizable(path, f)
    }

    fn visit_adaptable(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut dyn Adaptable) -> Result<()>,
    ) -> Result<()> {
        (**self).visit_adaptable(path, f)
    }

    fn train(&mut self, mode: bool) {
        (**self).train(mode);
    }

    fn training_state(&self) -> Option<bool> {
        (**self).training_state()
    }
}

/// The loss `f(model)` and its gradient with respect to the model's trainable parameters
/// (Python's `nn.value_and_grad(model, fn)(...)`), as a tree with the parameters' paths.
///
/// `f` receives the model with its trainable parameters replaced by the traced ones and may
/// borrow anything else (a batch). Afterwards the model holds its original parameters again,
/// also when `f` fails. Built on [`transforms::value_and_grad_tree`].
///
/// ```
/// use mlx_rs::{Array, nn::{self, Linear, Module}};
/// let mut model = Linear::new(2, 1, true)?;
/// model.update(&mlx_rs::utils::tree_unflatten(vec![
///     ("weight".to_owned(), Array::from_slice(&[1.0f32, 2.0], &[1, 2])?),
///     ("bias".to_owned(), Array::from_slice(&[0.5f32], &[1])?),
/// ])?)?;
/// let x = Array::from_slice(&[3.0f32, 4.0], &[1, 2])?;
/// let (loss, grads) = nn::value_and_grad(&mut model, |m| m.forward(&x)?.sum(.., false))?;
/// assert_eq!(loss.item::<f32>()?, 11.5);
/// assert_eq!(grads.leaf("weight")?.to_vec::<f32>()?, [3.0, 4.0]);
/// assert_eq!(model.weight.to_vec::<f32>()?, [1.0, 2.0]); // unchanged
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn value_and_grad<M: Module>(
    model: &mut M,
    mut f: impl FnMut(&M) -> Result<Array>,
) -> Result<(Array, Tree)> {
    let original = model.trainable_parameters();
    let result = transforms::value_and_grad_tree(&original, |params| {
        model.update(params)?;
        Ok(vec![f(model)?])
    });
    // Restore the untraced arrays, whatever happened inside.
    let restored = model.update(&original);
    let (values, grads) = result?;
    restored?;
    let loss = values
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("value_and_grad", "the loss function returned nothing"))?;
    Ok((loss, grads))
}
