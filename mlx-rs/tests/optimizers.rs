//! Optimizers, schedules and clip_grad_norm against Python `mlx.optimizers` 0.32.2 (golden
//! values from `golden/gen_optimizers.py`), state save/load, compiled training steps, and a
//! small MLP trained as the generator trains it.

mod common;

use std::sync::OnceLock;

use mlx_rs::nn::losses;
use mlx_rs::optimizers::{
    Adafactor, AdafactorOptions, Adam, AdamOptions, AdamW, AdamWOptions, LearningRate, Lion,
    LionOptions, Optimizer, RMSprop, RmspropOptions, SGD, Schedule, SgdOptions, clip_grad_norm,
    cosine_decay, exponential_decay, join_schedules, linear_schedule, step_decay,
};
use mlx_rs::utils::{Tree, tree_flatten};
use mlx_rs::{Array, Error, Result, transforms};
use serde_json::Value;

fn golden() -> &'static Value {
    static G: OnceLock<Value> = OnceLock::new();
    G.get_or_init(|| common::load(include_str!("golden/optimizers.json")))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// A tree with the generator's paths, leaves read from `prefix.<path>` of the inputs case.
fn input_tree(prefix: &str) -> Tree {
    let inputs = common::case(golden(), "inputs");
    let mut tree = Tree::new();
    for path in strings(&inputs["paths"]) {
        let leaf = common::array(&inputs[format!("{prefix}.{path}").as_str()]);
        // `layers.0.k` is a list element: build the list as Python has it.
        if let Some(rest) = path.strip_prefix("layers.0.") {
            let mut layer = Tree::new();
            layer.insert(rest, leaf).unwrap();
            let list = Tree::List(vec![layer]);
            if let Tree::Map(map) = &mut tree {
                map.insert("layers".to_owned(), list);
            }
        } else {
            tree.insert(&path, leaf).unwrap();
        }
    }
    assert_eq!(tree.paths(), strings(&inputs["paths"]));
    tree
}

fn optimizer(name: &str) -> Box<dyn Optimizer> {
    match name {
        "sgd" => Box::new(SGD::new(0.1).unwrap()),
        "sgd_momentum" => Box::new(
            SGD::with_options(
                0.1,
                SgdOptions { momentum: 0.9, weight_decay: 0.01, dampening: 0.1, nesterov: false },
            )
            .unwrap(),
        ),
        "sgd_nesterov" => Box::new(
            SGD::with_options(
                0.1,
                SgdOptions { momentum: 0.9, nesterov: true, ..Default::default() },
            )
            .unwrap(),
        ),
        "adam" => Box::new(Adam::new(0.01).unwrap()),
        "adam_bias" => Box::new(
            Adam::with_options(
                0.01,
                AdamOptions { betas: (0.8, 0.95), bias_correction: true, ..Default::default() },
            )
            .unwrap(),
        ),
        "adam_cosine" => Box::new(Adam::new(cosine_decay(0.01, 4, 0.001).unwrap()).unwrap()),
        "adamw" => Box::new(AdamW::new(0.01).unwrap()),
        "adamw_bias" => Box::new(
            AdamW::with_options(
                0.01,
                AdamWOptions { weight_decay: 0.1, bias_correction: true, ..Default::default() },
            )
            .unwrap(),
        ),
        "lion" => Box::new(Lion::new(0.01).unwrap()),
        "lion_wd" => Box::new(
            Lion::with_options(0.01, LionOptions { betas: (0.8, 0.9), weight_decay: 0.1 }).unwrap(),
        ),
        "adafactor" => Box::new(Adafactor::new().unwrap()),
        "adafactor_lr" => Box::new(
            Adafactor::with_options(AdafactorOptions {
                learning_rate: Some(LearningRate::Constant(0.01)),
                relative_step: false,
                beta_1: Some(0.9),
                weight_decay: 0.01,
                ..Default::default()
            })
            .unwrap(),
        ),
        "adafactor_warmup" => Box::new(
            Adafactor::with_options(AdafactorOptions {
                warmup_init: true,
                scale_parameter: false,
                ..Default::default()
            })
            .unwrap(),
        ),
        "rmsprop" => Box::new(RMSprop::new(0.01).unwrap()),
        "rmsprop_alpha" => {
            Box::new(RMSprop::with_options(0.01, RmspropOptions { alpha: 0.9, eps: 1e-6 }).unwrap())
        }
        other => panic!("unknown optimizer {other}"),
    }
}

const OPTIMIZERS: &[&str] = &[
    "sgd",
    "sgd_momentum",
    "sgd_nesterov",
    "adam",
    "adam_bias",
    "adam_cosine",
    "adamw",
    "adamw_bias",
    "lion",
    "lion_wd",
    "adafactor",
    "adafactor_lr",
    "adafactor_warmup",
    "rmsprop",
    "rmsprop_alpha",
];

#[test]
fn three_steps_of_every_optimizer_match_python() {
    for name in OPTIMIZERS {
        let case = common::case(golden(), &format!("opt_{name}"));
        let mut opt = optimizer(name);
        let mut params = input_tree("params");
        for step in 0..3 {
            let grads = input_tree(&format!("grads.{step}"));
            opt.update(&mut params, &grads).unwrap();
            for (path, value) in tree_flatten(&params) {
                let want = &case[format!("params.{step}.{path}").as_str()];
                // Lion's update is a sign: exact up to the rounding of the learning rate.
                common::assert_matches(&value, want, 1e-5, 1e-6);
            }
        }
        let state = opt.state();
        assert_eq!(state.paths(), strings(&case["state_paths"]), "{name}: state paths");
        for (path, value) in tree_flatten(state) {
            common::assert_matches(&value, &case[format!("state.{path}").as_str()], 1e-5, 1e-7);
        }
        assert_eq!(opt.step().unwrap().item::<u64>().unwrap(), 3, "{name}");
    }
}

#[test]
fn optimizer_state_round_trips_through_safetensors() {
    let dir = std::env::temp_dir().join(format!("mlx-rs-optim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("adam.safetensors");
    let mut opt = Adam::new(0.01).unwrap();
    let mut params = input_tree("params");
    opt.update(&mut params, &input_tree("grads.0")).unwrap();
    opt.save_state(&file).unwrap();

    // A fresh optimizer, loaded, continues exactly as the original.
    let mut loaded = Adam::new(0.01).unwrap();
    loaded.load_state(&file).unwrap();
    assert_eq!(loaded.step().unwrap().item::<u64>().unwrap(), 1);
    assert_eq!(loaded.step().unwrap().dtype(), mlx_rs::Dtype::Uint64);
    let mut p1 = params.clone();
    let mut p2 = params;
    opt.update(&mut p1, &input_tree("grads.1")).unwrap();
    loaded.update(&mut p2, &input_tree("grads.1")).unwrap();
    for ((path, a), (_, b)) in tree_flatten(&p1).into_iter().zip(tree_flatten(&p2)) {
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{path}");
    }
    // A fresh optimizer has no order to keep: the loaded paths are sorted, and are Python's.
    let case = common::case(golden(), "opt_adam");
    let mut want = strings(&case["state_paths"]);
    want.sort();
    assert_eq!(loaded.state().paths(), want);
    // Loading into an optimizer with the same paths keeps its order.
    opt.load_state(&file).unwrap();
    assert_eq!(opt.state().paths(), strings(&case["state_paths"]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn optimizer_errors_name_the_problem() {
    common::assert_err(
        SGD::with_options(0.1, SgdOptions { nesterov: true, ..Default::default() }),
        &["nesterov"],
    );
    common::assert_err(
        Adam::with_options(0.1, AdamOptions { betas: (1.0, 0.9), ..Default::default() }),
        &["beta1"],
    );
    common::assert_err(
        RMSprop::with_options(0.1, RmspropOptions { alpha: 0.9, eps: 0.0 }),
        &["epsilon"],
    );
    // A gradient without a parameter, and a parameter colliding with `step`.
    let mut opt = Adam::new(0.1).unwrap();
    let mut grads = Tree::new();
    grads.insert("missing", Array::scalar(1.0f32)).unwrap();
    let mut params = Tree::new();
    params.insert("w", Array::scalar(1.0f32)).unwrap();
    common::assert_err(opt.apply_gradients(&grads, &params), &["`missing`"]);
    let mut opt = Adam::new(0.1).unwrap();
    let mut bad = Tree::new();
    bad.insert("step", Array::scalar(1.0f32)).unwrap();
    common::assert_err(opt.apply_gradients(&bad, &bad), &["`step`"]);
    // Adafactor without relative steps needs a learning rate.
    let mut opt =
        Adafactor::with_options(AdafactorOptions { relative_step: false, ..Default::default() })
            .unwrap();
    common::assert_err(opt.apply_gradients(&params, &params), &["learning rate"]);
    common::assert_err(clip_grad_norm(&params, -1.0), &["max_norm"]);
    common::assert_err(join_schedules(vec![], &[]), &["at least 1"]);
    common::assert_err(cosine_decay(1.0, 0, 0.0), &["decay_steps"]);
}

fn schedule(name: &str) -> Schedule {
    match name {
        "linear" => linear_schedule(0.0, 1e-2, 10).unwrap(),
        "cosine" => cosine_decay(1e-2, 10, 0.0).unwrap(),
        "cosine_end" => cosine_decay(1e-2, 10, 1e-4).unwrap(),
        "step" => step_decay(1e-1, 0.9, 3).unwrap(),
        "exponential" => exponential_decay(1e-1, 0.9),
        "joined" => join_schedules(
            vec![linear_schedule(0.0, 1e-2, 5).unwrap(), cosine_decay(1e-2, 10, 1e-3).unwrap()],
            &[5],
        )
        .unwrap(),
        other => panic!("unknown schedule {other}"),
    }
}

#[test]
fn schedules_match_python() {
    for name in ["linear", "cosine", "cosine_end", "step", "exponential", "joined"] {
        let case = common::case(golden(), &format!("schedule_{name}"));
        let sched = schedule(name);
        let values: Vec<Array> = case["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| sched.at(s.as_u64().unwrap()).unwrap())
            .collect();
        let stacked = mlx_rs::ops::stack(&values, 0).unwrap();
        common::assert_matches(&stacked, &case["values"], 1e-6, 1e-9);
    }
}

#[test]
fn clip_grad_norm_matches_python() {
    for max_norm in [1.0, 100.0] {
        let case = common::case(golden(), &format!("clip_{}", max_norm as i32));
        let (clipped, norm) = clip_grad_norm(&input_tree("grads.0"), max_norm).unwrap();
        common::assert_matches(&norm, &case["norm"], 1e-6, 0.0);
        for (path, value) in tree_flatten(&clipped) {
            common::assert_matches(&value, &case[path.as_str()], 1e-6, 1e-7);
        }
    }
}

/// A training step over `state = {model, optimizer}` (the form a compiled step needs).
fn train_step(
    opt: &mut dyn Optimizer,
    x: &Array,
    y: &Array,
    state: &Tree,
) -> Result<(Vec<Array>, Tree)> {
    let part = |key: &str| {
        state.get(key).cloned().ok_or_else(|| Error::invalid("train_step", format!("no {key}")))
    };
    let mut params = part("model")?;
    opt.set_state(part("optimizer")?)?;
    let (values, grads) =
        transforms::value_and_grad_tree(&params, |p| Ok(vec![mlp_loss(p, x, y)?]))?;
    opt.update(&mut params, &grads)?;
    let new: Tree = [("model".to_owned(), params), ("optimizer".to_owned(), opt.state().clone())]
        .into_iter()
        .collect();
    Ok((values, new))
}

fn mlp_golden() -> &'static Value {
    static G: OnceLock<Value> = OnceLock::new();
    G.get_or_init(|| common::load(include_str!("golden/optimizers_mlp.json")))
}

fn mlp_loss(p: &Tree, x: &Array, y: &Array) -> Result<Array> {
    let h = (x.matmul(p.leaf("W1")?)? + p.leaf("b1")?)?.tanh()?;
    let out = (h.matmul(p.leaf("W2")?)? + p.leaf("b2")?)?;
    losses::mse_loss(&out, y, losses::Reduction::Mean)
}

const MLP_STEPS: u64 = 300;

fn mlp_setup() -> (Tree, AdamW, Array, Array) {
    let case = common::case(mlp_golden(), "mlp");
    let mut params = Tree::new();
    params.insert("W1", common::array(&case["init.W1"])).unwrap();
    params.insert("b1", Array::zeros::<f32>(&[32]).unwrap()).unwrap();
    params.insert("W2", common::array(&case["init.W2"])).unwrap();
    params.insert("b2", Array::zeros::<f32>(&[1]).unwrap()).unwrap();
    let lr = join_schedules(
        vec![
            linear_schedule(0.0, 3e-2, 30).unwrap(),
            cosine_decay(3e-2, MLP_STEPS - 30, 1e-3).unwrap(),
        ],
        &[30],
    )
    .unwrap();
    let opt =
        AdamW::with_options(lr, AdamWOptions { weight_decay: 0.01, ..Default::default() }).unwrap();
    (params, opt, common::array(&case["x"]), common::array(&case["y"]))
}

#[test]
fn mlp_with_adamw_and_warmup_reaches_pythons_loss() {
    let case = common::case(mlp_golden(), "mlp");
    let (mut params, mut opt, x, y) = mlp_setup();
    let mut losses_seen = Vec::new();
    for _ in 0..MLP_STEPS {
        let (values, grads) =
            transforms::value_and_grad_tree(&params, |p| Ok(vec![mlp_loss(p, &x, &y)?])).unwrap();
        opt.update(&mut params, &grads).unwrap();
        let mut all: Vec<Array> = params.leaves().into_iter().cloned().collect();
        all.extend(opt.state().leaves().into_iter().cloned());
        transforms::eval(&all).unwrap();
        losses_seen.push(values[0].item::<f32>().unwrap() as f64);
    }
    let final_loss = mlp_loss(&params, &x, &y).unwrap().item::<f32>().unwrap() as f64;
    let python_final = case["final_loss"].as_f64().unwrap();
    let threshold = case["threshold"].as_f64().unwrap();
    // On the GPU, TF32 matmuls move the trajectory a little; the end point must still agree.
    let (initial_tol, step_rtol) = if common::on_gpu() { (1e-3, 2e-2) } else { (1e-5, 1e-3) };
    assert!((losses_seen[0] - case["initial_loss"].as_f64().unwrap()).abs() < initial_tol);
    let at_100 = case["loss_at_100"].as_f64().unwrap();
    assert!(
        (losses_seen[100] - at_100).abs() <= step_rtol * at_100.abs() + 1e-6,
        "{}",
        losses_seen[100]
    );
    assert!(final_loss < threshold, "final loss {final_loss} not below {threshold}");
    assert!(
        (final_loss - python_final).abs() <= 0.05 * python_final + 1e-5,
        "final loss {final_loss}, Python's {python_final}"
    );
    for name in ["W1", "b1", "W2", "b2"] {
        common::assert_matches(
            params.leaf(name).unwrap(),
            &case[format!("final.{name}").as_str()],
            1e-2,
            1e-3,
        );
    }
}

#[test]
fn compiled_training_matches_uncompiled() {
    let (params, mut opt, x, y) = mlp_setup();
    opt.init(&params).unwrap();
    let state: Tree =
        [("model".to_owned(), params.clone()), ("optimizer".to_owned(), opt.state().clone())]
            .into_iter()
            .collect();

    let mut eager_opt = opt.clone();
    let mut eager_state = state.clone();
    let mut compiled_opt = opt;
    let mut step = transforms::compile_with_tree_state(
        move |inputs: &[Array], state: &Tree| {
            train_step(&mut compiled_opt, &inputs[0], &inputs[1], state)
        },
        state,
    )
    .unwrap();
    for i in 0..8 {
        let (eager_loss, next) = train_step(&mut eager_opt, &x, &y, &eager_state).unwrap();
        eager_state = next;
        let compiled_loss = step.apply(&[&x, &y]).unwrap();
        let (a, b) =
            (eager_loss[0].item::<f32>().unwrap(), compiled_loss[0].item::<f32>().unwrap());
        assert!((a - b).abs() <= 1e-5 * a.abs(), "step {i}: {a} vs {b}");
    }
    let compiled_state = step.state().unwrap();
    assert_eq!(compiled_state.paths(), eager_state.paths());
    assert_eq!(compiled_state.leaf("optimizer.step").unwrap().item::<u64>().unwrap(), 8);
    for (path, a) in tree_flatten(&eager_state) {
        let b = compiled_state.leaf(&path).unwrap();
        common::assert_close(&common::values_f64(b), &common::values_f64(&a), 1e-4, 1e-6);
    }
    // The learning rate followed the warm-up schedule inside the compiled graph: the value
    // at step 7 (the last update) is 7 / 30 of the peak.
    let lr = compiled_state.leaf("optimizer.learning_rate").unwrap().item::<f32>().unwrap();
    assert!((lr - 3e-2 * 7.0 / 30.0).abs() < 1e-7, "{lr}");
}
