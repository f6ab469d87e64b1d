//! Losses against Python `mlx.nn.losses` 0.32.2 (golden values from
//! `golden/gen_optimizers.py`), with each reduction.

mod common;

use mlx_rs::Array;
use mlx_rs::nn::losses::{
    BinaryCrossEntropyOptions, CrossEntropyOptions, Reduction, binary_cross_entropy, cross_entropy,
    huber_loss, kl_div_loss, l1_loss, masked_reduce, mse_loss, nll_loss, smooth_l1_loss,
};
use serde_json::Value;

fn golden() -> Value {
    common::load(include_str!("golden/losses.json"))
}

#[test]
fn every_loss_with_every_reduction_matches_python() {
    let g = golden();
    let inputs = common::case(&g, "inputs");
    let a = |name: &str| common::array(&inputs[name]);
    let (logits, indices, probs, weights) = (a("logits"), a("indices"), a("probs"), a("weights"));
    let (logits0, indices0) = (a("logits_ax0"), a("indices_ax0"));
    let (preds, targs) = (a("preds"), a("targs"));
    let (bl, bt, bp, bw) = (a("bin_logits"), a("bin_targets"), a("bin_probs"), a("bin_weights"));
    let (lp, lt, nt) = (a("log_probs"), a("log_targets"), a("nll_targets"));
    // The GPU's fused cross entropy rounds differently from the CPU's composed one.
    let tol = if common::on_gpu() { 1e-4 } else { 1e-5 };
    for (name, reduction) in
        [("none", Reduction::None), ("mean", Reduction::Mean), ("sum", Reduction::Sum)]
    {
        let case = common::case(&g, &format!("reduction_{name}"));
        let ce = |targets: &Array, options: CrossEntropyOptions| {
            cross_entropy(&logits, targets, &CrossEntropyOptions { reduction, ..options }).unwrap()
        };
        let check = |key: &str, got: Array| {
            common::assert_matches(&got, &case[key], tol, 1e-6);
        };
        check("ce_indices", ce(&indices, Default::default()));
        check("ce_probs", ce(&probs, Default::default()));
        let smooth = |s| CrossEntropyOptions { label_smoothing: s, ..Default::default() };
        check("ce_smooth", ce(&indices, smooth(0.2)));
        check("ce_probs_smooth", ce(&probs, smooth(0.1)));
        check(
            "ce_weights",
            ce(&indices, CrossEntropyOptions { weights: Some(&weights), ..Default::default() }),
        );
        let axis0 = CrossEntropyOptions { axis: 0, reduction, ..Default::default() };
        check("ce_axis0", cross_entropy(&logits0, &indices0, &axis0).unwrap());
        check(
            "ce_ignore2",
            ce(&indices, CrossEntropyOptions { ignore_index: Some(2), ..Default::default() }),
        );
        let bce = |inputs: &Array, options: BinaryCrossEntropyOptions| {
            binary_cross_entropy(inputs, &bt, &BinaryCrossEntropyOptions { reduction, ..options })
                .unwrap()
        };
        check("bce_logits", bce(&bl, Default::default()));
        check(
            "bce_probs",
            bce(&bp, BinaryCrossEntropyOptions { with_logits: false, ..Default::default() }),
        );
        check(
            "bce_weights",
            bce(&bl, BinaryCrossEntropyOptions { weights: Some(&bw), ..Default::default() }),
        );
        check("mse", mse_loss(&preds, &targs, reduction).unwrap());
        check("l1", l1_loss(&preds, &targs, reduction).unwrap());
        check("nll", nll_loss(&lp, &nt, -1, reduction).unwrap());
        check("kl", kl_div_loss(&lp, &lt, -1, reduction).unwrap());
        check("smooth_l1", smooth_l1_loss(&preds, &targs, 1.0, reduction).unwrap());
        check("smooth_l1_beta", smooth_l1_loss(&preds, &targs, 0.5, reduction).unwrap());
        check("huber", huber_loss(&preds, &targs, 1.0, reduction).unwrap());
        check("huber_delta", huber_loss(&preds, &targs, 0.7, reduction).unwrap());
    }
}

#[test]
fn ignore_index_and_masks() {
    // An ignore index outside the class range (-100, as PyTorch's default) never reads outside
    // the logits and drops those rows from the mean.
    let logits = Array::from_slice(&[2.0f32, 0.0, 0.0, 3.0, 1.0, 1.0], &[2, 3]).unwrap();
    let targets = Array::from_slice(&[0i32, -100], &[2]).unwrap();
    let mean = CrossEntropyOptions {
        ignore_index: Some(-100),
        reduction: Reduction::Mean,
        ..Default::default()
    };
    let got = cross_entropy(&logits, &targets, &mean).unwrap().item::<f32>().unwrap();
    let want = (2.0f32.exp() + 2.0).ln() - 2.0;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let none = CrossEntropyOptions { ignore_index: Some(-100), ..Default::default() };
    let per_row = cross_entropy(&logits, &targets, &none).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(per_row[1], 0.0);
    // masked_reduce: the mean over the true elements of a broadcast mask.
    let loss = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let mask = Array::from_slice(&[true, false], &[1, 2]).unwrap();
    let m = masked_reduce(&loss, &mask, Reduction::Mean).unwrap().item::<f32>().unwrap();
    assert_eq!(m, 2.0);
    let s = masked_reduce(&loss, &mask, Reduction::Sum).unwrap().item::<f32>().unwrap();
    assert_eq!(s, 4.0);
}

#[test]
fn loss_errors_name_the_shapes() {
    let a = Array::zeros::<f32>(&[2, 3]).unwrap();
    let b = Array::zeros::<f32>(&[3, 2]).unwrap();
    common::assert_err(mse_loss(&a, &b, Reduction::Mean), &["[2, 3]", "[3, 2]"]);
    let targets = Array::zeros::<i32>(&[3]).unwrap();
    common::assert_err(cross_entropy(&a, &targets, &Default::default()), &["targets shape"]);
    let smooth = CrossEntropyOptions { label_smoothing: 1.0, ..Default::default() };
    let good = Array::zeros::<i32>(&[2]).unwrap();
    common::assert_err(cross_entropy(&a, &good, &smooth), &["label smoothing"]);
    let w = Array::zeros::<f32>(&[3]).unwrap();
    let weighted = CrossEntropyOptions { weights: Some(&w), ..Default::default() };
    common::assert_err(cross_entropy(&a, &good, &weighted), &["weights"]);
    common::assert_err(binary_cross_entropy(&a, &b, &Default::default()), &["inputs shape"]);
}
