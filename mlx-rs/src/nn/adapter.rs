//! Layer slots that can take a low-rank adapter, and the functions that add and fuse adapters
//! across a model (what mlx-lm's `linear_to_lora_layers` and `fuse` do with
//! `update_modules`).
//!
//! Model code holds its projections as [`AdaptableLinear`] (dense, quantized, or adapted) and
//! its expert weights as [`AdaptableSwitchLinear`]; [`apply_adapters`] turns the slots a
//! predicate picks into [`LoRALinear`] / [`DoRALinear`] / [`LoRASwitchLinear`] layers, whose
//! parameters get mlx-lm's names (`q_proj.linear.weight`, `q_proj.lora_a`, ...), and
//! [`fuse_adapters`] merges them back.
//!
//! ```
//! use mlx_rs::nn::{self, AdaptableLinear, AdapterConfig, Linear, Module};
//! #[derive(Module)]
//! struct Block { q_proj: AdaptableLinear, o_proj: AdaptableLinear }
//! let mut block = Block {
//!     q_proj: Linear::new(16, 16, false)?.into(),
//!     o_proj: Linear::new(16, 16, false)?.into(),
//! };
//! block.freeze();
//! let n = nn::apply_adapters(&mut block, |path| path == "q_proj", AdapterConfig::lora(4, 20.0))?;
//! assert_eq!(n, 1);
//! assert_eq!(block.trainable_parameters().paths(), ["q_proj.lora_a", "q_proj.lora_b"]);
//! nn::fuse_adapters(&mut block, false)?;
//! assert_eq!(block.parameters().paths(), ["q_proj.weight", "o_proj.weight"]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use crate::Array;
use crate::error::{Context, Error, Result};
use crate::nn::{
    DoRALinear, GatherForward, Linear, LoRALinear, LoRASwitchLinear, MaybeQuantized, Module, Param,
    Quantizable, ShardedLinear, SwitchLinear,
};
use crate::ops::IndexArray;

/// Which adapter [`apply_adapters`] adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    /// Low-rank adaptation (`LoRALinear`, `LoRASwitchLinear`).
    LoRA,
    /// Weight-decomposed low-rank adaptation (`DoRALinear`; no expert layers, as in mlx-lm).
    DoRA,
}

/// The settings of an adapter (mlx-lm's `lora_parameters`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdapterConfig {
    /// LoRA or DoRA.
    pub kind: AdapterKind,
    /// The rank `r` (mlx-lm's default 8).
    pub rank: i32,
    /// The scale of the update (mlx-lm's default 20).
    pub scale: f32,
    /// Dropout on the adapter's input (default 0).
    pub dropout: f32,
}

impl AdapterConfig {
    /// LoRA of rank `rank` and scale `scale`, no dropout.
    pub fn lora(rank: i32, scale: f32) -> AdapterConfig {
        AdapterConfig { kind: AdapterKind::LoRA, rank, scale, dropout: 0.0 }
    }

    /// DoRA of rank `rank` and scale `scale`, no dropout.
    pub fn dora(rank: i32, scale: f32) -> AdapterConfig {
        AdapterConfig { kind: AdapterKind::DoRA, rank, scale, dropout: 0.0 }
    }
}

impl Default for AdapterConfig {
    fn default() -> AdapterConfig {
        AdapterConfig::lora(8, 20.0)
    }
}

/// A layer slot seen by [`apply_adapters`] and [`fuse_adapters`].
pub trait Adaptable {
    /// The base layer's Python name (`"Linear"`, `"SwitchLinear"`).
    fn kind(&self) -> &'static str;
    /// True while the slot holds an adapter.
    fn is_adapted(&self) -> bool;
    /// Wraps the base layer in an adapter (an error if it already has one, or for DoRA on
    /// expert layers).
    fn add_adapter(&mut self, config: AdapterConfig) -> Result<()>;
    /// Merges the adapter into the base layer (re-quantized unless `dequantize`); nothing for a
    /// slot without an adapter.
    fn fuse(&mut self, dequantize: bool) -> Result<()>;
}

/// Adds `config`'s adapter to every adaptable layer whose path satisfies `pick` and returns
/// how many it changed. New adapter weights are trainable; the base layers keep their frozen
/// state (freeze the model first, as mlx-lm does). An error names the layer.
pub fn apply_adapters<M: Module + ?Sized>(
    model: &mut M,
    mut pick: impl FnMut(&str) -> bool,
    config: AdapterConfig,
) -> Result<usize> {
    let mut n = 0;
    model.visit_adaptable(&mut String::new(), &mut |path, layer| {
        if !pick(path) {
            return Ok(());
        }
        layer.add_adapter(config).with_context(|| format!("adding an adapter to `{path}`"))?;
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// Merges every adapter of `model` into its base layer (mlx-lm's `fuse`); quantized bases are
/// re-quantized with their settings unless `dequantize`.
pub fn fuse_adapters<M: Module + ?Sized>(model: &mut M, dequantize: bool) -> Result<()> {
    model.visit_adaptable(&mut String::new(), &mut |path, layer| {
        layer.fuse(dequantize).with_context(|| format!("fusing the adapter of `{path}`"))
    })
}

/// A linear layer as model code holds it: dense or quantized, with or without an adapter.
#[derive(Clone, Debug)]
pub enum AdaptableLinear {
    /// The layer itself.
    Base(MaybeQuantized<Linear>),
    /// With a LoRA adapter.
    LoRA(LoRALinear),
    /// With a DoRA adapter.
    DoRA(DoRALinear),
    /// Split across a distributed group ([`AdaptableLinear::shard`]); takes no adapter.
    Sharded(ShardedLinear),
}

impl From<Linear> for AdaptableLinear {
    fn from(l: Linear) -> AdaptableLinear {
        AdaptableLinear::Base(l.into())
    }
}

impl From<MaybeQuantized<Linear>> for AdaptableLinear {
    fn from(l: MaybeQuantized<Linear>) -> AdaptableLinear {
        AdaptableLinear::Base(l)
    }
}

impl AdaptableLinear {
    /// The forward pass of whatever the slot holds.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            AdaptableLinear::Base(l) => l.forward(x),
            AdaptableLinear::LoRA(l) => l.forward(x),
            AdaptableLinear::DoRA(l) => l.forward(x),
            AdaptableLinear::Sharded(l) => l.forward(x),
        }
    }

    /// The base layer (inside the adapter when there is one).
    pub fn base(&self) -> &MaybeQuantized<Linear> {
        match self {
            AdaptableLinear::Base(l) => l,
            AdaptableLinear::LoRA(l) => &l.linear,
            AdaptableLinear::DoRA(l) => &l.linear,
            AdaptableLinear::Sharded(l) => &l.layer,
        }
    }
}

crate::nn::impl_forward!(AdaptableLinear);

impl Adaptable for AdaptableLinear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn is_adapted(&self) -> bool {
        matches!(self, AdaptableLinear::LoRA(_) | AdaptableLinear::DoRA(_))
    }

    fn add_adapter(&mut self, c: AdapterConfig) -> Result<()> {
        let base = match self {
            AdaptableLinear::Base(base) => base,
            AdaptableLinear::Sharded(_) => {
                return Err(Error::invalid("add_adapter", "a sharded layer takes no adapter"));
            }
            _ => return Err(Error::invalid("add_adapter", "the layer already has an adapter")),
        };
        *self = match c.kind {
            AdapterKind::LoRA => AdaptableLinear::LoRA(LoRALinear::from_base(
                base.clone(),
                c.rank,
                c.dropout,
                c.scale,
            )?),
            AdapterKind::DoRA => AdaptableLinear::DoRA(DoRALinear::from_base(
                base.clone(),
                c.rank,
                c.dropout,
                c.scale,
            )?),
        };
        Ok(())
    }

    fn fuse(&mut self, dequantize: bool) -> Result<()> {
        let fused = match self {
            AdaptableLinear::Base(_) | AdaptableLinear::Sharded(_) => return Ok(()),
            AdaptableLinear::LoRA(l) => l.fuse(dequantize)?,
            AdaptableLinear::DoRA(l) => l.fuse(dequantize)?,
        };
        *self = AdaptableLinear::Base(fused);
        Ok(())
    }
}

/// An expert layer as model code holds it: dense or quantized, with or without a LoRA adapter.
#[derive(Clone, Debug)]
pub enum AdaptableSwitchLinear {
    /// The layer itself.
    Base(MaybeQuantized<SwitchLinear>),
    /// With a LoRA adapter.
    LoRA(LoRASwitchLinear),
}

impl From<SwitchLinear> for AdaptableSwitchLinear {
    fn from(l: SwitchLinear) -> AdaptableSwitchLinear {
        AdaptableSwitchLinear::Base(l.into())
    }
}

impl From<MaybeQuantized<SwitchLinear>> for AdaptableSwitchLinear {
    fn from(l: MaybeQuantized<SwitchLinear>) -> AdaptableSwitchLinear {
        AdaptableSwitchLinear::Base(l)
    }
}

impl AdaptableSwitchLinear {
    /// The base layer (inside the adapter when there is one).
    pub fn base(&self) -> &MaybeQuantized<SwitchLinear> {
        match self {
            AdaptableSwitchLinear::Base(l) => l,
            AdaptableSwitchLinear::LoRA(l) => &l.linear,
        }
    }
}

impl GatherForward for AdaptableSwitchLinear {
    fn forward_gather(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        match self {
            AdaptableSwitchLinear::Base(l) => l.forward_gather(x, indices, sorted),
            AdaptableSwitchLinear::LoRA(l) => l.forward(x, indices, sorted),
        }
    }
}

impl Adaptable for AdaptableSwitchLinear {
    fn kind(&self) -> &'static str {
        "SwitchLinear"
    }

    fn is_adapted(&self) -> bool {
        matches!(self, AdaptableSwitchLinear::LoRA(_))
    }

    fn add_adapter(&mut self, c: AdapterConfig) -> Result<()> {
        let AdaptableSwitchLinear::Base(base) = self else {
            return Err(Error::invalid("add_adapter", "the layer already has an adapter"));
        };
        if c.kind == AdapterKind::DoRA {
            return Err(Error::invalid("add_adapter", "SwitchLinear doesn't support DoRA"));
        }
        *self = AdaptableSwitchLinear::LoRA(LoRASwitchLinear::from_base(
            base.clone(),
            c.rank,
            c.dropout,
            c.scale,
        )?);
        Ok(())
    }

    fn fuse(&mut self, dequantize: bool) -> Result<()> {
        if let AdaptableSwitchLinear::LoRA(l) = self {
            *self = AdaptableSwitchLinear::Base(l.fuse(dequantize)?);
        }
        Ok(())
    }
}

/// `Module` for a slot enum: parameters, quantization and training mode go to the variant;
/// the slot itself is what `visit_adaptable` sees.
macro_rules! slot_module {
    ($ty:ident { $($variant:ident),* }) => {
        impl Module for $ty {
            fn visit_parameters<'a>(&'a self, path: &mut String, f: &mut dyn FnMut(&str, &'a Param)) {
                match self { $($ty::$variant(l) => l.visit_parameters(path, f),)* }
            }

            fn visit_parameters_mut(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
            ) -> Result<()> {
                match self { $($ty::$variant(l) => l.visit_parameters_mut(path, f),)* }
            }

            fn visit_quantizable(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, &mut dyn Quantizable) -> Result<()>,
            ) -> Result<()> {
                match self { $($ty::$variant(l) => l.visit_quantizable(path, f),)* }
            }

            fn visit_adaptable(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, &mut dyn Adaptable) -> Result<()>,
            ) -> Result<()> {
                f(path, self)
            }

            fn train(&mut self, mode: bool) {
                match self { $($ty::$variant(l) => l.train(mode),)* }
            }

            fn training_state(&self) -> Option<bool> {
                match self { $($ty::$variant(l) => l.training_state(),)* }
            }
        }
    };
}

slot_module!(AdaptableLinear { Base, LoRA, DoRA, Sharded });
slot_module!(AdaptableSwitchLinear { Base, LoRA });
