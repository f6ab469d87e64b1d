//! Layers split across the processes of a [`Group`] for tensor parallelism, as Python's
//! `mlx.nn.layers.distributed`: [`ShardedLinear`] (Python's `AllToShardedLinear`,
//! `ShardedToAllLinear` and their quantized twins, made by [`shard_linear`]) and
//! [`shard_inplace`], which slices a layer's parameters without changing what it computes
//! (the caller sums the results, as mlx-lm's mixture-of-experts blocks do).
//!
//! A linear layer `y = x Wᵀ + b` splits two ways across `N` processes:
//! - [`Sharding::AllToSharded`]: each rank keeps a block of `W`'s rows (output features) and of
//!   `b`; the same input gives each rank its slice of the output.
//! - [`Sharding::ShardedToAll`]: each rank keeps a block of `W`'s columns (input features) and
//!   takes its slice of the input; the partial products are summed over the group
//!   ([`crate::distributed::all_sum`]) and `b` is added once, so every rank gets the whole
//!   output.
//!
//! An all-to-sharded layer followed by a sharded-to-all one (attention's q/k/v then o, an
//! MLP's gate/up then down) costs one all-sum. Quantized layers split the same way: their
//! packed weight, scales and biases are sliced along the same axis, which needs the group size
//! to divide the number of quantization groups of a row for a sharded-to-all split.
//!
//! These layers are for inference: unlike Python's, their backward pass does not sum the input
//! gradients over the group.
//!
//! ```
//! use mlx_rs::distributed::{self, Backend};
//! use mlx_rs::nn::{self, Linear, Sharding};
//! use mlx_rs::{Array, ops};
//! // A process started without a distributed launcher is a group of one: sharding keeps
//! // every row and column.
//! let group = distributed::init(false, Backend::Any)?;
//! let linear = Linear::new(8, 4, true)?;
//! let x = ops::ones(&[2, 8], mlx_rs::Dtype::Float32)?;
//! let sharded = nn::shard_linear(linear.clone().into(), Sharding::ShardedToAll, &group)?;
//! let same = ops::allclose(&sharded.forward(&x)?, &linear.forward(&x)?, 1e-5, 1e-6, false)?;
//! assert!(same.item::<bool>()?);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use crate::distributed::{self, Group};
use crate::error::{Error, Result};
use crate::nn::{
    Adaptable, AdaptableLinear, AdaptableSwitchLinear, Linear, MaybeQuantized, Module, Param,
    Quantizable, push_key,
};
use crate::{Array, ops};

/// How a layer is split across a group (Python's `"all-to-sharded"` / `"sharded-to-all"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharding {
    /// Output features split: a replicated input gives each rank its slice of the output.
    AllToSharded,
    /// Input features split: each rank's slice of the input gives, after an all-sum, the whole
    /// output on every rank.
    ShardedToAll,
}

impl Sharding {
    /// The axis along which the parameter `name` (the last key of its path) of `ndim`
    /// dimensions is split, `None` when it is replicated (Python's `_all_to_sharded` /
    /// `_sharded_to_all` predicates): weights (and quantization scales and biases) along their
    /// output axis (`ndim - 2`) or input axis (last); a layer bias along its last axis, or not
    /// at all for sharded-to-all.
    pub fn axis(self, name: &str, ndim: usize) -> Option<i32> {
        match (self, name == "bias") {
            (Sharding::AllToSharded, true) => Some(-1),
            (Sharding::AllToSharded, false) => Some(ndim.saturating_sub(2) as i32),
            (Sharding::ShardedToAll, true) => None,
            (Sharding::ShardedToAll, false) => Some(-1),
        }
    }
}

/// This rank's block of `a` along `axis`: the `rank`-th of `group.size()` equal parts, made
/// contiguous (so that evaluating it lets the whole of `a` go). An error when the group size
/// does not divide the axis.
pub fn shard_array(a: &Array, axis: i32, group: &Group) -> Result<Array> {
    let (n, r) = (group.size(), group.rank());
    let ndim = a.ndim() as i32;
    if ndim == 0 || axis < -ndim || axis >= ndim {
        return Err(Error::invalid(
            "shard",
            format!("axis {axis} is out of range for shape {:?}", a.shape()),
        ));
    }
    let ax = if axis < 0 { axis + ndim } else { axis } as usize;
    let len = a.shape()[ax];
    if n <= 0 || len % n != 0 {
        return Err(Error::invalid(
            "shard",
            format!(
                "cannot split axis {ax} of shape {:?} into {n} equal parts (one per rank)",
                a.shape()
            ),
        ));
    }
    if n == 1 {
        return Ok(a.clone());
    }
    let part = len / n;
    let mut start = vec![0; a.ndim()];
    let mut stop = a.shape().to_vec();
    start[ax] = r * part;
    stop[ax] = (r + 1) * part;
    ops::contiguous(&ops::slice(a, &start, &stop, None)?, false)
}

/// The last key of a dotted path.
fn leaf_name(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Replaces every parameter of `module` by this rank's block of it, along the axis
/// [`Sharding::axis`] gives (Python's `shard_inplace(module, sharding, group=group)`). The
/// module computes what it did on its slice of the features; communication is the caller's:
/// after an all-to-sharded split its output is this rank's slice, after a sharded-to-all split
/// it wants this rank's slice of the input and its outputs must be summed over the group.
///
/// Works for dense and quantized linear and expert layers ([`Linear`], `QuantizedLinear`,
/// `SwitchLinear`, `QuantizedSwitchLinear`; experts are split per expert). A layer bias under
/// sharded-to-all is an error (the caller's all-sum would add it once per rank), as is an axis
/// the group size does not divide; errors name the parameter.
pub fn shard_inplace<M: Module + ?Sized>(
    module: &mut M,
    sharding: Sharding,
    group: &Group,
) -> Result<()> {
    module.visit_parameters_mut(&mut String::new(), &mut |path, param| {
        let name = leaf_name(path);
        if sharding == Sharding::ShardedToAll && name == "bias" && group.size() > 1 {
            return Err(Error::invalid(
                "shard_inplace",
                format!(
                    "`{path}`: a sharded-to-all layer split in place cannot keep a bias (the \
                     all-sum after it would add the bias once per rank)"
                ),
            ));
        }
        if let Some(axis) = sharding.axis(name, param.ndim()) {
            let sharded = shard_array(param, axis, group).map_err(|e| match name {
                "scales" | "biases" => {
                    e.add_context("a quantized layer splits only between whole quantization groups")
                }
                _ => e,
            })?;
            param.set(sharded);
        }
        Ok(())
    })
}

/// A linear layer (dense or quantized) split across a [`Group`] that does its own
/// communication: Python's `AllToShardedLinear` / `ShardedToAllLinear` (with a dense layer)
/// and `QuantizedAllToShardedLinear` / `QuantizedShardedToAllLinear` (with a quantized one).
///
/// Parameters keep the names of the layer they came from (`weight`, `scales`, `biases`,
/// `bias`), at this rank's shapes.
#[derive(Clone, Debug)]
pub struct ShardedLinear {
    /// This rank's part of the layer (without its bias when sharded-to-all).
    pub layer: MaybeQuantized<Linear>,
    /// The whole bias of a sharded-to-all layer, added once after the all-sum (`None` for an
    /// all-to-sharded layer, whose bias slice stays in `layer`).
    pub bias: Option<Param>,
    /// The split.
    pub sharding: Sharding,
    group: Group,
}

/// Splits `layer` across `group` (Python's `shard_linear(layer, sharding, group=group)`): this
/// rank keeps its block of the weight (and quantization parts), and the returned layer does
/// the all-sum a sharded-to-all split needs. An error when the group size does not divide the
/// split dimension (for a quantized sharded-to-all layer: the number of quantization groups of
/// a row).
pub fn shard_linear(
    layer: MaybeQuantized<Linear>,
    sharding: Sharding,
    group: &Group,
) -> Result<ShardedLinear> {
    let mut layer = layer;
    let bias = match sharding {
        Sharding::AllToSharded => None,
        Sharding::ShardedToAll => match &mut layer {
            MaybeQuantized::Dense(l) => l.bias.take(),
            MaybeQuantized::Quantized(q) => q.bias.take(),
        },
    };
    shard_inplace(&mut layer, sharding, group)?;
    Ok(ShardedLinear { layer, bias, sharding, group: group.clone() })
}

impl ShardedLinear {
    /// The group the layer is split across.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// All-to-sharded: this rank's slice of `x Wᵀ + b`. Sharded-to-all: `x` is this rank's
    /// slice of the input features; the partial products are summed over the group, then `b`
    /// is added.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let y = self.layer.forward(x)?;
        let y = match self.sharding {
            Sharding::AllToSharded => y,
            Sharding::ShardedToAll => distributed::all_sum(&y, Some(&self.group))?,
        };
        match &self.bias {
            Some(b) => &y + &**b,
            None => Ok(y),
        }
    }
}

crate::nn::impl_forward!(ShardedLinear);

impl Module for ShardedLinear {
    fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
        self.layer.visit_parameters(path, f);
        if let Some(b) = &self.bias {
            let len = path.len();
            push_key(path, "bias");
            f(path, b);
            path.truncate(len);
        }
    }

    fn visit_parameters_mut(
        &mut self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        self.layer.visit_parameters_mut(path, f)?;
        if let Some(b) = &mut self.bias {
            let len = path.len();
            push_key(path, "bias");
            let r = f(path, b);
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
        self.layer.visit_quantizable(path, f)
    }

    fn train(&mut self, mode: bool) {
        self.layer.train(mode);
    }

    fn training_state(&self) -> Option<bool> {
        self.layer.training_state()
    }
}

impl AdaptableLinear {
    /// Replaces the layer in this slot by its [`ShardedLinear`] split across `group` (what
    /// mlx-lm's model `shard` methods do with `shard_linear`). An error for a slot that holds
    /// an adapter (fuse it first) or is already sharded.
    pub fn shard(&mut self, sharding: Sharding, group: &Group) -> Result<()> {
        let AdaptableLinear::Base(base) = self else {
            return Err(Error::invalid(
                "shard_linear",
                format!("cannot shard a {} slot that holds an adapter or is sharded", self.kind()),
            ));
        };
        *self = AdaptableLinear::Sharded(shard_linear(base.clone(), sharding, group)?);
        Ok(())
    }

    /// Slices the layer in this slot in place ([`shard_inplace`]): it keeps its type and does
    /// no communication. An error for a slot with an adapter.
    pub fn shard_inplace(&mut self, sharding: Sharding, group: &Group) -> Result<()> {
        match self {
            AdaptableLinear::Base(base) => shard_inplace(base, sharding, group),
            _ => Err(Error::invalid(
                "shard_inplace",
                "cannot shard a Linear slot that holds an adapter or is sharded",
            )),
        }
    }
}

impl AdaptableSwitchLinear {
    /// Slices every expert of the layer in this slot in place ([`shard_inplace`]: output
    /// features for all-to-sharded, input features for sharded-to-all). An error for a slot
    /// with an adapter.
    pub fn shard_inplace(&mut self, sharding: Sharding, group: &Group) -> Result<()> {
        match self {
            AdaptableSwitchLinear::Base(base) => shard_inplace(base, sharding, group),
            AdaptableSwitchLinear::LoRA(_) => Err(Error::invalid(
                "shard_inplace",
                "cannot shard a SwitchLinear slot that holds an adapter",
            )),
        }
    }
}

/// `x` summed over `group` when there is one, else `x` (the one all-sum of a block whose
/// layers were split with [`shard_inplace`]).
pub fn all_sum_if(x: Array, group: Option<&Group>) -> Result<Array> {
    match group {
        Some(g) => distributed::all_sum(&x, Some(g)),
        None => Ok(x),
    }
}
