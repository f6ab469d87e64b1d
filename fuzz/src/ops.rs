//! Op-argument fuzzing: the bytes are decoded into a short program over a pool of arrays. Each
//! step picks an op, its operands from the pool (or new arrays) and its parameters (shapes,
//! axes, dtypes, sizes, quantization settings), mostly in range and sometimes wild (negative,
//! out of range, `i32::MAX`). Every result is `Err` or a well-formed array.
//!
//! Sizes stay bounded: new arrays have at most a few hundred elements, and a result is only
//! evaluated, and only joins the pool, when it has at most [`MAX_ELEMENTS`] elements. Larger
//! results are checked for a consistent shape and size without being evaluated, so wild sizes
//! still reach every op's argument checks without the fuzzer spending its time allocating.

use arbitrary::Unstructured;
use mlx_rs::ops::{self, ConvOptions, PadMode};
use mlx_rs::quantization::{self, GatherIndices, QuantizationMode, QuantizationParams};
use mlx_rs::{Array, Dtype, Index, Result, Slice, fast};

use super::check::check_array;

/// The most elements a result may have to be evaluated and kept.
pub const MAX_ELEMENTS: u64 = 1 << 16;

/// The most arrays the pool keeps (the oldest non-source array makes room).
const POOL: usize = 6;

/// The most steps of one program.
const STEPS: usize = 8;

/// Integers that are often wrong: sizes and axes just out of range, and the extremes.
const WILD: [i32; 12] = [-1, -2, -3, 0, 1, 2, 7, 64, 1 << 20, i32::MAX, i32::MIN, i32::MIN + 1];

/// Element values, picked by index: small integers, fractions, extremes and non-finite values.
const VALUES: [f32; 16] = [
    0.0,
    1.0,
    -1.0,
    2.0,
    3.0,
    -7.0,
    0.5,
    -0.25,
    100.0,
    255.0,
    65504.0,
    1e30,
    -1e30,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
];

/// The fuzzer's bytes, read as parameters; reads past the end give the smallest value.
struct Input<'a>(Unstructured<'a>);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        self.0.arbitrary().unwrap_or(0)
    }

    /// True for one byte value in `n` (`n > 0`).
    fn one_in(&mut self, n: u8) -> bool {
        self.byte().is_multiple_of(n)
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// An integer in `lo..=hi`.
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        self.0.int_in_range(lo..=hi).unwrap_or(lo)
    }

    /// An index below `n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }

    /// Mostly an integer in `lo..=hi`, one time in eight a wild one.
    fn int(&mut self, lo: i32, hi: i32) -> i32 {
        if self.one_in(8) { WILD[self.below(WILD.len())] } else { self.range(lo, hi) }
    }

    /// A dimension: mostly 0..=5.
    fn dim(&mut self) -> i32 {
        self.int(0, 5)
    }

    /// A shape of up to 4 (rarely up to 6) dimensions.
    fn shape(&mut self) -> Vec<i32> {
        let ndim = if self.one_in(16) { self.range(0, 6) } else { self.range(0, 4) };
        (0..ndim).map(|_| self.dim()).collect()
    }

    /// An axis of an array of `ndim` dimensions: mostly valid (either sign).
    fn axis(&mut self, ndim: usize) -> i32 {
        let n = ndim as i32;
        self.int(-n.max(1), (n - 1).max(0))
    }

    /// Zero or more axes (possibly repeated or out of range).
    fn axes(&mut self, ndim: usize) -> Vec<i32> {
        let count = self.range(0, ndim as i32 + 1);
        (0..count).map(|_| self.axis(ndim)).collect()
    }

    /// `None` (all axes, or the flattened array) or one axis.
    fn opt_axis(&mut self, ndim: usize) -> Option<i32> {
        if self.one_in(4) { None } else { Some(self.axis(ndim)) }
    }

    fn dtype(&mut self) -> Dtype {
        Dtype::ALL[self.below(Dtype::ALL.len())]
    }

    /// A new array of a small shape (each dimension 0..=5), a random dtype and values from
    /// [`VALUES`].
    fn array(&mut self) -> Option<Array> {
        let ndim = self.range(0, 4);
        let shape: Vec<i32> = (0..ndim).map(|_| self.range(0, 5)).collect();
        self.array_of(&shape)
    }

    /// A new array of `shape` (each dimension at least 0, at most a few hundred elements in
    /// all) with a random dtype.
    fn array_of(&mut self, shape: &[i32]) -> Option<Array> {
        let dtype = self.dtype();
        self.array_typed(shape, dtype)
    }

    fn array_typed(&mut self, shape: &[i32], dtype: Dtype) -> Option<Array> {
        let n = elements(shape);
        if n > 4096 {
            return None;
        }
        let values: Vec<f32> = (0..n).map(|_| VALUES[self.byte() as usize % 16]).collect();
        let a = Array::from_slice(&values, shape).ok()?;
        a.astype(dtype).ok()
    }

    /// An index array: int32 values mostly near the range of an axis of `len`, sometimes wild;
    /// rarely another dtype.
    fn indices(&mut self, len: i32) -> Option<Array> {
        let ndim = self.range(0, 3);
        let shape: Vec<i32> = (0..ndim).map(|_| self.range(0, 4)).collect();
        let n: i32 = shape.iter().product();
        let values: Vec<i32> = (0..n).map(|_| self.int(-len - 1, len)).collect();
        let a = Array::from_slice(&values, &shape).ok()?;
        if self.one_in(8) { a.astype(self.dtype()).ok() } else { Some(a) }
    }

    /// Quantization parameters: the defaults, a valid combination, or anything.
    fn quantization(&mut self) -> QuantizationParams {
        let modes = [
            QuantizationMode::Affine,
            QuantizationMode::Mxfp4,
            QuantizationMode::Nvfp4,
            QuantizationMode::Mxfp8,
        ];
        let mode = modes[self.below(modes.len())];
        let option = |input: &mut Self, choices: &[i32]| {
            let i = input.below(choices.len() + 2);
            match i.checked_sub(2) {
                Some(i) => Some(choices[i]),
                None if i == 0 => None,
                None => Some(input.int(-1, 128)),
            }
        };
        let group_size = option(self, &[16, 32, 64, 128]);
        let bits = option(self, &[2, 3, 4, 5, 6, 8]);
        QuantizationParams { group_size, bits, mode }
    }
}

/// Decodes `data` into a program of ops and runs it; see the module docs.
pub fn ops(data: &[u8]) {
    super::check::init();
    let mut input = Input(Unstructured::new(data));
    let mut pool: Vec<Array> = Vec::new();
    for _ in 0..2 {
        if let Some(a) = input.array().filter(check_array) {
            pool.push(a);
        }
    }
    for _ in 0..input.range(1, STEPS as i32) {
        if pool.is_empty() {
            return;
        }
        let a = pool[input.below(pool.len())].clone();
        let b = pool[input.below(pool.len())].clone();
        let op = input.byte();
        let outputs = step(&mut input, op, &a, &b);
        if trace() {
            let shapes = |r: &Result<Vec<Array>>| match r {
                Ok(v) => {
                    format!("{:?}", v.iter().map(|x| (x.shape(), x.dtype())).collect::<Vec<_>>())
                }
                Err(e) => format!("Err({e})"),
            };
            eprintln!(
                "op {} on {:?} {:?} and {:?} {:?}: {}",
                op % 40,
                a.shape(),
                a.dtype(),
                b.shape(),
                b.dtype(),
                shapes(&outputs)
            );
        }
        let Ok(outputs) = outputs else { continue };
        for out in outputs {
            if accept(&out) {
                if pool.len() >= POOL {
                    pool.remove(1);
                }
                pool.push(out);
            }
        }
    }
}

/// The element count of `shape` (negative sizes as 0), saturating.
fn elements(shape: &[i32]) -> i64 {
    shape.iter().try_fold(1i64, |n, &d| n.checked_mul(i64::from(d.max(0)))).unwrap_or(i64::MAX)
}

/// Whether to print each step to stderr (`MLX_RS_FUZZ_TRACE=1`), to see what an input does.
fn trace() -> bool {
    std::env::var_os("MLX_RS_FUZZ_TRACE").is_some()
}

/// Checks a result's shape and size; evaluates and checks a small one (see [`check_array`]).
/// Returns whether it may join the pool.
fn accept(out: &Array) -> bool {
    let shape = out.shape();
    assert!(shape.iter().all(|&d| d >= 0), "negative dimension in {shape:?}");
    let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    // The crate rejects shapes whose byte size does not fit 64 bits, so the count fits too.
    let elements = elements.unwrap_or_else(|| panic!("element count of {shape:?} overflows"));
    assert_eq!(out.size() as u64, elements, "size of {shape:?}");
    elements <= MAX_ELEMENTS && check_array(out)
}

/// Runs op number `op` on `a` and `b` (from the pool) and parameters read from `input`.
fn step(input: &mut Input<'_>, op: u8, a: &Array, b: &Array) -> Result<Vec<Array>> {
    let nd = a.ndim();
    let one = |r: Result<Array>| r.map(|x| vec![x]);
    match op % 40 {
        0 => one(a.reshape(input.shape())),
        1 => one(ops::broadcast_to(a, input.shape())),
        2 => {
            if input.bool() {
                one(ops::transpose(a, ..))
            } else {
                one(ops::transpose(a, input.axes(nd)))
            }
        }
        3 => {
            let axes = input.axes(nd);
            let axes = if input.one_in(4) { ops::Axes::from(..) } else { axes.into() };
            let keep = input.bool();
            one(match input.byte() % 12 {
                0 => ops::sum(a, axes, keep),
                1 => ops::mean(a, axes, keep),
                2 => ops::max(a, axes, keep),
                3 => ops::min(a, axes, keep),
                4 => ops::prod(a, axes, keep),
                5 => ops::logsumexp(a, axes, keep),
                6 => ops::all(a, axes, keep),
                7 => ops::any(a, axes, keep),
                8 => ops::median(a, axes, keep),
                9 => ops::var(a, axes, keep, input.int(0, 2)),
                10 => ops::argmax(a, input.opt_axis(nd), keep),
                _ => ops::argmin(a, input.opt_axis(nd), keep),
            })
        }
        4 => {
            let axis = input.opt_axis(nd);
            let mut parts = vec![a.clone(), b.clone()];
            if input.bool() {
                parts.push(a.clone());
            }
            one(ops::concatenate(&parts, axis))
        }
        5 => one(ops::stack(&[a, b], input.axis(nd + 1))),
        6 => ops::split(a, input.int(1, 4), input.axis(nd)),
        7 => {
            let count = input.range(0, 3);
            let mut at: Vec<i32> = (0..count).map(|_| input.int(-2, 6)).collect();
            if input.bool() {
                at.sort_unstable();
            }
            ops::split_sections(a, &at, input.axis(nd))
        }
        8 => {
            let len = a.shape().first().copied().unwrap_or(1);
            let Some(idx) = input.indices(len) else { return Ok(vec![]) };
            one(ops::take(a, &idx, input.opt_axis(nd)))
        }
        9 => {
            let axis = input.opt_axis(nd);
            let len = axis.and_then(|ax| a.dim(ax).ok()).unwrap_or(a.size() as i32);
            // Indices of the same rank as `a`, broadcastable against it.
            let shape: Vec<i32> = a.shape().iter().map(|&d| input.range(0, d.max(1))).collect();
            let shape = if axis.is_none() || input.one_in(8) { input.shape() } else { shape };
            let n = elements(&shape);
            if n > 4096 {
                return Ok(vec![]);
            }
            let values: Vec<i32> = (0..n).map(|_| input.int(-len - 1, len)).collect();
            let idx = Array::from_slice(&values, &shape)?;
            one(ops::take_along_axis(a, &idx, axis))
        }
        10 => {
            let bounds =
                |input: &mut Input<'_>| -> Vec<i32> { (0..nd).map(|_| input.int(-6, 6)).collect() };
            let (start, stop) = (bounds(input), bounds(input));
            let strides: Vec<i32> = (0..nd).map(|_| input.int(-2, 3)).collect();
            let strides = if input.bool() { Some(strides.as_slice()) } else { None };
            one(ops::slice(a, &start, &stop, strides))
        }
        11 => {
            let count = input.range(0, nd as i32 + 2);
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(match input.byte() % 6 {
                    0 => Index::from(input.int(-6, 6)),
                    1 => Index::Slice(Slice {
                        start: input.bool().then(|| input.int(-6, 6)),
                        stop: input.bool().then(|| input.int(-6, 6)),
                        step: input.int(-2, 3),
                    }),
                    2 => Index::NewAxis,
                    3 => Index::Ellipsis,
                    4 => match input.indices(6) {
                        Some(idx) => Index::Array(idx),
                        None => Index::NewAxis,
                    },
                    _ => Index::Slice(Slice::FULL),
                });
            }
            one(a.index(items))
        }
        12 => one(ops::matmul(a, b)),
        13 => {
            // Operands whose inner sizes agree, to get past the shape checks.
            let (m, k, n) = (input.dim(), input.dim(), input.dim());
            let batch = input.shape();
            let batch = &batch[..batch.len().min(2)];
            let x = input.array_of(&[batch, &[m, k]].concat());
            let w = input.array_of(&[k, n]);
            let (Some(x), Some(w)) = (x, w) else { return Ok(vec![]) };
            one(ops::matmul(&x, &w))
        }
        14 => {
            let options = conv_options(input);
            if input.bool() {
                one(ops::conv1d(a, b, options))
            } else {
                let (n, l, c, o, k) =
                    (input.range(1, 3), input.dim(), input.dim(), input.dim(), input.dim());
                let groups = options.groups.max(1);
                let dtype = if input.bool() { Dtype::Float32 } else { input.dtype() };
                let x = input.array_typed(&[n, l, c], dtype);
                let w = input.array_typed(&[o, k, c / groups], dtype);
                let (Some(x), Some(w)) = (x, w) else { return Ok(vec![]) };
                one(ops::conv1d(&x, &w, options))
            }
        }
        15 => {
            let params = input.quantization();
            let w = if input.bool() {
                a.clone()
            } else {
                let rows = input.range(1, 4);
                let cols = 32 * input.range(1, 8);
                let dtype = [Dtype::Float32, Dtype::Float16, Dtype::Bfloat16][input.below(3)];
                let Some(w) = input.array_typed(&[rows, cols], dtype) else { return Ok(vec![]) };
                w
            };
            let q = quantization::quantize(&w, params)?;
            let mut outs = vec![q.weights.clone(), q.scales.clone()];
            outs.extend(q.biases.clone());
            for part in &outs {
                check_array(part);
            }
            let params2 = if input.bool() { params } else { input.quantization() };
            match input.byte() % 3 {
                0 => {
                    let dtype = input.bool().then(|| input.dtype());
                    outs.push(quantization::dequantize(&q, params2, dtype)?);
                }
                1 => {
                    let cols = w.shape().last().copied().unwrap_or(1);
                    let x = if input.bool() {
                        b.clone()
                    } else {
                        let rows = input.dim();
                        let Some(x) = input.array_typed(&[rows, cols], w.dtype()) else {
                            return Ok(outs);
                        };
                        x
                    };
                    outs.push(quantization::quantized_matmul(&x, &q, input.bool(), params2)?);
                }
                _ => {
                    let cols = w.shape().last().copied().unwrap_or(1);
                    let Some(x) = input.array_typed(&[1, cols], w.dtype()) else {
                        return Ok(outs);
                    };
                    let rows = w.shape().first().copied().unwrap_or(1);
                    let rhs = input.indices(rows);
                    let indices = GatherIndices {
                        lhs: None,
                        rhs: rhs.as_ref().map(|r| r as &dyn ops::IndexArray),
                        sorted: input.bool(),
                    };
                    outs.push(quantization::gather_qmm(&x, &q, indices, input.bool(), params2)?);
                }
            }
            Ok(outs)
        }
        16 => {
            let widths: Vec<(i32, i32)> = (0..input.range(0, nd as i32 + 1))
                .map(|_| (input.int(0, 3), input.int(0, 3)))
                .collect();
            let mode = [PadMode::Constant, PadMode::Edge, PadMode::Reflect, PadMode::Symmetric]
                [input.below(4)];
            let value = input.bool().then(|| b.clone());
            one(ops::pad(a, &widths, mode, value.as_ref()))
        }
        17 => {
            let reps: Vec<i32> = (0..input.range(0, 4)).map(|_| input.int(0, 3)).collect();
            one(ops::tile(a, &reps))
        }
        18 => one(ops::repeat(a, input.int(0, 3), input.opt_axis(nd))),
        19 => {
            let axis = input.opt_axis(nd);
            let kth = input.int(-3, 4);
            one(match input.byte() % 3 {
                0 => ops::argpartition(a, kth, axis),
                1 => ops::partition(a, kth, axis),
                _ => ops::topk(a, kth, axis),
            })
        }
        20 => {
            let axis = input.opt_axis(nd);
            one(if input.bool() { ops::sort(a, axis) } else { ops::argsort(a, axis) })
        }
        21 => {
            let axis = input.opt_axis(nd);
            let (reverse, inclusive) = (input.bool(), input.bool());
            let dtype = input.one_in(4).then(|| input.dtype());
            one(match input.byte() % 5 {
                0 => ops::cumsum(a, axis, reverse, inclusive, dtype),
                1 => ops::cumprod(a, axis, reverse, inclusive, dtype),
                2 => ops::cummax(a, axis, reverse, inclusive),
                3 => ops::cummin(a, axis, reverse, inclusive),
                _ => ops::logcumsumexp(a, axis, reverse, inclusive),
            })
        }
        22 => one(a.astype(input.dtype())),
        23 => {
            let axes = input.axes(nd);
            one(ops::softmax(a, axes, input.bool()))
        }
        24 => {
            let last = a.shape().last().copied().unwrap_or(1);
            let weight = match input.byte() % 3 {
                0 => None,
                1 => input.array_of(&[last]),
                _ => Some(b.clone()),
            };
            let eps = [1e-5, 0.0, -1.0, f32::NAN][input.below(4)];
            if input.bool() {
                let bias = input.bool().then(|| input.array_of(&[last])).flatten();
                one(fast::layer_norm(a, weight.as_ref(), bias.as_ref(), eps))
            } else {
                one(fast::rms_norm(a, weight.as_ref(), eps))
            }
        }
        25 => {
            let shape = input.shape();
            let dtype = input.dtype();
            one(match input.byte() % 3 {
                0 => ops::zeros(&shape, dtype),
                1 => ops::ones(&shape, dtype),
                _ => ops::full(&shape, b, input.bool().then_some(dtype)),
            })
        }
        26 => one(match input.byte() % 6 {
            0 => ops::squeeze(a, input.axes(nd)),
            1 => ops::expand_dims(a, input.axes(nd + 1)),
            2 => ops::swapaxes(a, input.axis(nd), input.axis(nd)),
            3 => ops::moveaxis(a, input.axis(nd), input.axis(nd)),
            4 => ops::flatten(a, input.axis(nd), input.axis(nd)),
            _ => ops::unflatten(a, input.axis(nd), input.shape()),
        }),
        27 => one(match input.byte() % 9 {
            0 => ops::add(a, b),
            1 => ops::subtract(a, b),
            2 => ops::multiply(a, b),
            3 => ops::divide(a, b),
            4 => ops::floor_divide(a, b),
            5 => ops::remainder(a, b),
            6 => ops::power(a, b),
            7 => ops::maximum(a, b),
            _ => ops::logaddexp(a, b),
        }),
        28 => {
            let shifts: Vec<i32> = (0..input.range(0, 2)).map(|_| input.int(-3, 3)).collect();
            one(if input.bool() {
                ops::flip(a, input.axes(nd))
            } else {
                ops::roll(a, &shifts, input.axes(nd))
            })
        }
        29 => one(match input.byte() % 4 {
            0 => ops::diagonal(a, input.int(-2, 2), input.axis(nd), input.axis(nd)),
            1 => ops::diag(a, input.int(-2, 2)),
            2 => ops::tril(a, input.int(-2, 2)),
            _ => ops::triu(a, input.int(-2, 2)),
        }),
        30 => {
            let shape = input.shape();
            let strides: Vec<i64> = (0..shape.len()).map(|_| i64::from(input.int(-3, 6))).collect();
            let offset = input.int(0, 8).max(0) as usize;
            one(ops::as_strided(a, &shape, &strides, offset))
        }
        31 => {
            let (start, stop) = (f64::from(input.int(-5, 5)), f64::from(input.int(-5, 50)));
            let step = [1.0, 0.5, -1.0, 0.0, 3.0, f64::NAN, 1e-9][input.below(7)];
            one(match input.byte() % 4 {
                0 => ops::arange(start, stop, step, input.dtype()),
                1 => ops::linspace(start, stop, input.int(0, 10), input.bool(), input.dtype()),
                2 => ops::eye(
                    input.dim(),
                    input.bool().then(|| input.dim()),
                    input.int(-2, 2),
                    input.dtype(),
                ),
                _ => ops::tri(input.dim(), None, input.int(-2, 2), input.dtype()),
            })
        }
        32 => one(ops::r#where(a, b, &a.astype(b.dtype())?)),
        33 => one(ops::view(a, input.dtype())),
        34 => one(ops::clip(a, Some(b), None)),
        35 => ops::broadcast_arrays(&[a, b]),
        36 => one(ops::outer(a, b)),
        37 => one(ops::inner(a, b)),
        38 => {
            let reps = input.dim();
            one(ops::kron(a, &ops::ones(&[reps], b.dtype())?))
        }
        _ => one(ops::number_of_elements(a, &input.axes(nd), input.bool(), input.dtype())),
    }
}

/// Convolution options: mostly valid, sometimes zero, negative or huge.
fn conv_options(input: &mut Input<'_>) -> ConvOptions<1> {
    ConvOptions::new()
        .stride(input.int(1, 3))
        .padding(input.int(0, 2))
        .dilation(input.int(1, 2))
        .groups(input.int(1, 2))
}
