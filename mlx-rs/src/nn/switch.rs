//! Mixture-of-experts layers as mlx-lm's `switch_layers`: [`SwitchLinear`],
//! [`QuantizedSwitchLinear`] and [`SwitchGlu`], on `gather_mm` / `gather_qmm`.

use crate::error::{Context, Error, Result};
use crate::kernels::expert_matmul::{self, ExpertMatmul, dequantized_gather_mm};
use crate::kernels::gather_qmv::use_gather_qmv;
use crate::kernels::{self, gather_qmv, gather_qmv_swiglu, grouped_qmm, swiglu};
use crate::nn::linear::uniform_init;
use crate::nn::quantized::{check_biases, resolve};
use crate::nn::{AdaptableSwitchLinear, MaybeQuantized, Module, Param, ToQuantized};
use crate::ops::{self, BoundedIndices, IndexArray};
use crate::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams, Quantized};
use crate::{Array, Dtype};

/// One linear map per expert (mlx-lm's `SwitchLinear`): `weight` `[experts, output, input]`,
/// `bias` `[experts, output]` when present.
#[derive(Clone, Debug, Module)]
pub struct SwitchLinear {
    /// `[num_experts, output_dims, input_dims]`.
    pub weight: Param,
    /// `[num_experts, output_dims]`, if the layer has a bias.
    pub bias: Option<Param>,
    #[module(training)]
    training: bool,
}

fn add_expert_bias(y: Array, bias: &Option<Param>, indices: &dyn IndexArray) -> Result<Array> {
    match bias {
        Some(b) => &y + ops::take(b, indices, 0)?.expand_dims(-2)?,
        None => Ok(y),
    }
}

impl SwitchLinear {
    /// Initialised as mlx-lm's: weight uniform in `±1/sqrt(input_dims)`, bias zeros.
    pub fn new(
        input_dims: i32,
        output_dims: i32,
        num_experts: i32,
        bias: bool,
    ) -> Result<SwitchLinear> {
        if input_dims <= 0 || output_dims <= 0 || num_experts <= 0 {
            return Err(Error::invalid("SwitchLinear", "dimensions must be positive"));
        }
        let scale = (1.0 / f64::from(input_dims)).sqrt() as f32;
        let weight = uniform_init(&[num_experts, output_dims, input_dims], scale)?;
        let bias = if bias {
            Some(ops::zeros(&[num_experts, output_dims], Dtype::Float32)?)
        } else {
            None
        };
        SwitchLinear::from_weights(weight, bias)
    }

    /// A layer with the given `[experts, output, input]` weight and optional `[experts, output]`
    /// bias.
    pub fn from_weights(weight: Array, bias: Option<Array>) -> Result<SwitchLinear> {
        if weight.ndim() != 3 {
            return Err(Error::invalid(
                "SwitchLinear",
                format!("weight must be 3-D, got shape {:?}", weight.shape()),
            ));
        }
        if let Some(b) = &bias
            && b.shape() != &weight.shape()[..2]
        {
            return Err(Error::invalid(
                "SwitchLinear",
                format!("bias shape {:?} does not match weight {:?}", b.shape(), weight.shape()),
            ));
        }
        Ok(SwitchLinear { weight: Param::new(weight), bias: bias.map(Param::new), training: true })
    }

    /// The number of experts.
    pub fn num_experts(&self) -> i32 {
        self.weight.shape()[0]
    }

    /// `x @ weight[indices]ᵀ (+ bias[indices])`: `x` `[..., 1, input]` broadcast against
    /// `indices` `[..., k]` gives `[..., k, 1, output]`. `sorted` says the indices are sorted
    /// (the fast path of [`SwitchGlu`]). Plain index arrays are clamped into range by
    /// `gather_mm`; [`BoundedIndices`] skip that.
    pub fn forward(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        let w = self.weight.swapaxes(-1, -2)?;
        let y = quantization::gather_mm(
            x,
            &w,
            GatherIndices { lhs: None, rhs: Some(indices), sorted },
        )?;
        add_expert_bias(y, &self.bias, indices)
    }
}

/// [`SwitchLinear`] with quantized expert weights (mlx-lm's `QuantizedSwitchLinear`):
/// parameters `weight`, `scales`, `biases` (affine mode), frozen, and `bias` (if any).
#[derive(Clone, Debug, Module)]
pub struct QuantizedSwitchLinear {
    /// Packed weights, `[num_experts, output_dims, input_dims * bits / 32]`.
    pub weight: Param,
    /// One scale per group.
    pub scales: Param,
    /// One bias per group (affine mode).
    pub biases: Option<Param>,
    /// `[num_experts, output_dims]`, if the layer has a bias.
    pub bias: Option<Param>,
    /// Elements per group.
    pub group_size: i32,
    /// Bits per element.
    pub bits: i32,
    /// The format.
    #[module(skip)]
    pub mode: QuantizationMode,
    #[module(training)]
    training: bool,
}

impl QuantizedSwitchLinear {
    /// Quantizes a [`SwitchLinear`] (`SwitchLinear.to_quantized`); `None` group size or bits
    /// take the mode's default.
    pub fn from_switch_linear(
        layer: &SwitchLinear,
        params: QuantizationParams,
    ) -> Result<QuantizedSwitchLinear> {
        let params = resolve(params);
        let q = quantization::quantize(&layer.weight, params).context("QuantizedSwitchLinear")?;
        Ok(QuantizedSwitchLinear {
            weight: Param::frozen(q.weights),
            scales: Param::frozen(q.scales),
            biases: q.biases.map(Param::frozen),
            bias: layer.bias.as_ref().map(|b| Param::new(b.value().clone())),
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: layer.training(),
        })
    }

    /// A layer from already packed parts.
    pub fn from_parts(
        weight: Array,
        scales: Array,
        biases: Option<Array>,
        bias: Option<Array>,
        params: QuantizationParams,
    ) -> Result<QuantizedSwitchLinear> {
        let params = resolve(params);
        check_biases("QuantizedSwitchLinear", params.mode, &biases)?;
        Ok(QuantizedSwitchLinear {
            weight: Param::frozen(weight),
            scales: Param::frozen(scales),
            biases: biases.map(Param::frozen),
            bias: bias.map(Param::new),
            group_size: params.group_size.unwrap_or(64),
            bits: params.bits.unwrap_or(4),
            mode: params.mode,
            training: true,
        })
    }

    /// The quantization settings.
    pub fn params(&self) -> QuantizationParams {
        QuantizationParams {
            group_size: Some(self.group_size),
            bits: Some(self.bits),
            mode: self.mode,
        }
    }

    /// The packed weights, scales and biases.
    pub fn packed(&self) -> Quantized {
        Quantized {
            weights: self.weight.value().clone(),
            scales: self.scales.value().clone(),
            biases: self.biases.as_ref().map(|b| b.value().clone()),
        }
    }

    /// As [`SwitchLinear::forward`], with `gather_qmm`.
    pub fn forward(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        let gather = GatherIndices { lhs: None, rhs: Some(indices), sorted };
        let y = quantization::gather_qmm(x, &self.packed(), gather, true, self.params())?;
        add_expert_bias(y, &self.bias, indices)
    }

    /// The sorted product on `path`: `x` `[pairs, 1, input]` of pairs sorted by expert
    /// `indices` `[pairs]` gives `[pairs, 1, output]`. The grouped kernel's inputs are passed
    /// apart: `rows` (the row of `source` `[rows, input]` of each pair, or `None` when `source`
    /// holds the pairs).
    fn forward_sorted(
        &self,
        path: ExpertMatmul,
        x: &Array,
        grouped: (&Array, Option<&Array>),
        indices: &BoundedIndices,
    ) -> Result<Array> {
        match path {
            ExpertMatmul::GatherQmm => self.forward(x, indices, true),
            ExpertMatmul::Dequantized => {
                dequantized_gather_mm(x, indices, &self.packed(), self.params())
            }
            ExpertMatmul::Grouped => {
                let (source, rows) = grouped;
                let experts = indices.array().astype(Dtype::Uint32)?;
                grouped_qmm(source, rows, &experts, &self.packed(), self.params())?.expand_dims(-2)
            }
        }
    }
}

/// A gathered layer: one input, expert indices, and whether they are sorted.
pub trait GatherForward {
    /// Applies the layer to the experts `indices`.
    fn forward_gather(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array>;
}

impl GatherForward for SwitchLinear {
    fn forward_gather(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        self.forward(x, indices, sorted)
    }
}

impl GatherForward for QuantizedSwitchLinear {
    fn forward_gather(&self, x: &Array, indices: &dyn IndexArray, sorted: bool) -> Result<Array> {
        self.forward(x, indices, sorted)
    }
}

impl ToQuantized for SwitchLinear {
    type Quantized = QuantizedSwitchLinear;
    const KIND: &'static str = "SwitchLinear";
    fn to_quantized(&self, params: QuantizationParams) -> Result<QuantizedSwitchLinear> {
        QuantizedSwitchLinear::from_switch_linear(self, params)
    }
    fn weight_shape(&self) -> &[i32] {
        self.weight.shape()
    }
}

impl MaybeQuantized<SwitchLinear> {
    /// The gathered forward pass, dense or quantized.
    pub fn forward_gather(
        &self,
        x: &Array,
        indices: &dyn IndexArray,
        sorted: bool,
    ) -> Result<Array> {
        match self {
            MaybeQuantized::Dense(l) => l.forward(x, indices, sorted),
            MaybeQuantized::Quantized(q) => q.forward(x, indices, sorted),
        }
    }
}

/// The SwiGLU expert block of mixture-of-experts models (mlx-lm's `SwitchGLU` with its default
/// `SwiGLU` activation): `down(silu(gate(x)) * up(x))` per selected expert.
///
/// With 64 or more (token, expert) pairs the pairs are sorted by expert first, as mlx-lm does,
/// so that each expert's weights are read once (`gather_mm`'s sorted path), and unsorted after.
/// Quantized experts in evaluation mode may then take the crate's grouped kernel or the
/// dequantized path instead of `gather_qmm` (see [`kernels`](crate::kernels)).
#[derive(Clone, Debug, Module)]
pub struct SwitchGlu {
    /// `[experts, hidden, input]`.
    pub gate_proj: AdaptableSwitchLinear,
    /// `[experts, hidden, input]`.
    pub up_proj: AdaptableSwitchLinear,
    /// `[experts, input, hidden]`.
    pub down_proj: AdaptableSwitchLinear,
}

/// The number of (token, expert) pairs from which [`SwitchGlu`] sorts (mlx-lm's threshold).
pub const SORT_THRESHOLD: usize = 64;

impl SwitchGlu {
    /// Initialised as mlx-lm's `SwitchGLU(input_dims, hidden_dims, num_experts, bias=bias)`.
    pub fn new(
        input_dims: i32,
        hidden_dims: i32,
        num_experts: i32,
        bias: bool,
    ) -> Result<SwitchGlu> {
        Ok(SwitchGlu {
            gate_proj: SwitchLinear::new(input_dims, hidden_dims, num_experts, bias)?.into(),
            up_proj: SwitchLinear::new(input_dims, hidden_dims, num_experts, bias)?.into(),
            down_proj: SwitchLinear::new(hidden_dims, input_dims, num_experts, bias)?.into(),
        })
    }

    /// `x` `[..., input]` through the experts `indices` `[..., k]` (from the router's
    /// `argpartition`, or clamped once with [`BoundedIndices::clamped`]): `[..., k, input]`.
    pub fn forward(&self, x: &Array, indices: &BoundedIndices) -> Result<Array> {
        let indices = indices.stop_gradient()?;
        let pairs = indices.array().size();
        let (xs, is) = (x.shape(), indices.array().shape());
        // The kernels take one row of `x` per token of `indices` (no broadcasting).
        let one_row_per_token =
            !xs.is_empty() && !is.is_empty() && xs[..xs.len() - 1] == is[..is.len() - 1];
        if (1..SORT_THRESHOLD).contains(&pairs)
            && x.size() > 0
            && one_row_per_token
            && let Some(layers) = self.decode_layers(x.dtype())
        {
            return decode_forward(x, &indices, layers);
        }
        let x = x.expand_dims([-2, -3])?;
        let apply = |x: &Array, idx: &dyn IndexArray, sorted: bool| -> Result<Array> {
            let up = self.up_proj.forward_gather(x, idx, sorted)?;
            let gate = self.gate_proj.forward_gather(x, idx, sorted)?;
            self.down_proj.forward_gather(&swiglu(&gate, &up)?, idx, sorted)
        };
        if indices.array().size() < SORT_THRESHOLD {
            return apply(&x, &indices, false)?.squeeze(-2);
        }
        let shape = indices.array().shape().to_vec();
        let k = shape.last().copied().unwrap_or(1);
        let flat = indices.flatten(0, -1)?;
        let order = BoundedIndices::argsort(flat.array(), 0)?;
        let inv_order = BoundedIndices::argsort(order.array(), 0)?;
        let tokens = order.floor_divide(k)?;
        let source = x.flatten(0, -3)?;
        let rows = ops::take(&source, &tokens, 0)?;
        let sorted_idx = flat.take(&order, 0)?;
        let y = match self.sorted_paths(flat.array().size(), x.dtype()) {
            Some((path, [gate, up, down])) => {
                let source = source.squeeze(-2)?;
                let tokens = tokens.array().astype(Dtype::Uint32)?;
                let grouped = (&source, Some(&tokens));
                let g = gate.forward_sorted(path, &rows, grouped, &sorted_idx)?;
                let u = up.forward_sorted(path, &rows, grouped, &sorted_idx)?;
                let h = swiglu(&g, &u)?;
                down.forward_sorted(path, &h, (&h.squeeze(-2)?, None), &sorted_idx)?
            }
            None => apply(&rows, &sorted_idx, true)?,
        };
        ops::take(&y, &inv_order, 0)?.unflatten(0, &shape)?.squeeze(-2)
    }

    /// The gate, up and down projections when the layer is in evaluation mode (the kernels have
    /// no VJP) and each is quantized without an adapter or an expert bias.
    fn kernel_layers(&self) -> Option<[&QuantizedSwitchLinear; 3]> {
        if self.training() {
            return None;
        }
        Some([
            plain_quantized(&self.gate_proj)?,
            plain_quantized(&self.up_proj)?,
            plain_quantized(&self.down_proj)?,
        ])
    }

    /// The gate, up and down projections when a decode step (fewer pairs than
    /// [`SORT_THRESHOLD`]) takes the crate's [`gather_qmv`] kernels: quantized alike without
    /// adapters or expert biases, in evaluation mode, and chosen by
    /// [`kernels::gather_qmv::use_gather_qmv`] under the process's policy.
    fn decode_layers(&self, dtype: Dtype) -> Option<[&QuantizedSwitchLinear; 3]> {
        let layers = self.kernel_layers()?;
        let policy = kernels::fused();
        let params = layers[0].params();
        let usable = |l: &QuantizedSwitchLinear| {
            l.params() == params && use_gather_qmv(policy, dtype, &l.packed(), params)
        };
        layers.iter().all(|l| usable(l)).then_some(layers)
    }

    /// The path of the sorted branch when it is not MLX's ops alone: the three projections must
    /// be quantized without adapters or expert biases, the layer in evaluation mode (the
    /// kernels have no VJP), and every projection must take the path
    /// ([`expert_matmul::choose`] under the process's [`kernels::fused`] policy).
    fn sorted_paths(
        &self,
        pairs: usize,
        dtype: Dtype,
    ) -> Option<(ExpertMatmul, [&QuantizedSwitchLinear; 3])> {
        let layers = self.kernel_layers()?;
        let policy = kernels::fused();
        let path = |l: &QuantizedSwitchLinear| {
            expert_matmul::choose(policy, pairs, dtype, &l.packed(), l.params())
        };
        let first = path(layers[0]);
        (first != ExpertMatmul::GatherQmm && layers[1..].iter().all(|l| path(l) == first))
            .then_some((first, layers))
    }
}

/// The quantized layer inside `l` when it has no adapter and no expert bias.
fn plain_quantized(l: &AdaptableSwitchLinear) -> Option<&QuantizedSwitchLinear> {
    match l {
        AdaptableSwitchLinear::Base(MaybeQuantized::Quantized(q)) if q.bias.is_none() => Some(q),
        _ => None,
    }
}

/// [`SwitchGlu::forward`] of a decode step on the [`gather_qmv`] kernels: `x` `[..., input]`,
/// `indices` `[..., k]`, gives `[..., k, input]`.
fn decode_forward(
    x: &Array,
    indices: &BoundedIndices,
    [gate, up, down]: [&QuantizedSwitchLinear; 3],
) -> Result<Array> {
    let shape = indices.array().shape().to_vec();
    let k = shape.last().copied().unwrap_or(1);
    let input = x.shape().last().copied().unwrap_or(0);
    let rows = x.reshape([-1, input])?;
    let experts = indices.array().flatten(0, -1)?.astype(Dtype::Uint32)?;
    let params = gate.params();
    let h = gather_qmv_swiglu(&rows, &experts, k, &gate.packed(), &up.packed(), params)?;
    let y = gather_qmv(&h, &experts, 1, &down.packed(), params)?;
    let out_dims = y.shape()[1];
    y.reshape([shape, vec![out_dims]].concat())
}
