//! The [`Optimizer`] trait and the state every optimizer keeps ([`OptimizerCore`]).

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;

use super::schedules::{LearningRate, Schedule};
use crate::utils::{Tree, tree_flatten, tree_unflatten};
use crate::{Array, Error, Result, io};

/// The state of one parameter (`{"m": .., "v": ..}` for Adam), keyed as in Python.
pub type ParamState = IndexMap<String, Array>;

/// What an update step shares between all parameters: the step counter after this step's
/// increment (`uint64`, 1 on the first update, as Python's `optimizer.step` reads inside
/// `apply_single`) and the learning rate for this step.
#[derive(Clone, Copy, Debug)]
pub struct StepValues<'a> {
    /// The step counter, already incremented for this update.
    pub step: &'a Array,
    /// The learning rate (`float32`), if the optimizer has one.
    pub learning_rate: Option<&'a Array>,
}

impl StepValues<'_> {
    /// The learning rate, or an error naming `op` when the optimizer has none.
    pub fn learning_rate(&self, op: &'static str) -> Result<&Array> {
        self.learning_rate.ok_or_else(|| Error::invalid(op, "the optimizer has no learning rate"))
    }
}

const STEP: &str = "step";
const LEARNING_RATE: &str = "learning_rate";

/// The state that every optimizer keeps, as Python's `Optimizer` base class does: one tree that
/// holds the step counter (`"step"`, `uint64`), the scheduled or constant hyperparameters
/// (`"learning_rate"`, `float32`) and, under each parameter's path, that parameter's state
/// (`"layers.0.weight.m"`), so its flattened paths are those of `tree_flatten(optimizer.state)`.
#[derive(Clone, Debug)]
pub struct OptimizerCore {
    state: Tree,
    schedules: Vec<(String, Schedule)>,
    initialized: bool,
}

impl OptimizerCore {
    /// A fresh state: step 0 and no per-parameter state yet.
    pub fn new() -> Self {
        let mut state = IndexMap::new();
        state.insert(STEP.to_owned(), Tree::Leaf(Array::scalar(0u64)));
        OptimizerCore { state: Tree::Map(state), schedules: Vec::new(), initialized: false }
    }

    /// A fresh state with `learning_rate` as a constant or a schedule (evaluated at step 0 now,
    /// as Python does).
    pub fn with_learning_rate(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        let mut core = OptimizerCore::new();
        core.set_hyperparameter(LEARNING_RATE, learning_rate.into())?;
        Ok(core)
    }

    /// Sets a hyperparameter kept in the state (`"learning_rate"`) to a constant or a schedule.
    pub fn set_hyperparameter(&mut self, name: &str, value: LearningRate) -> Result<()> {
        self.schedules.retain(|(n, _)| n != name);
        let array = match value {
            LearningRate::Constant(v) => Array::scalar(v as f32),
            LearningRate::Schedule(schedule) => {
                let array = schedule.apply(self.step()?)?;
                self.schedules.push((name.to_owned(), schedule));
                array
            }
        };
        self.set_leaf(name, array)
    }

    fn set_leaf(&mut self, name: &str, array: Array) -> Result<()> {
        match &mut self.state {
            Tree::Map(map) => {
                map.insert(name.to_owned(), Tree::Leaf(array));
                Ok(())
            }
            _ => Err(Error::invalid("optimizer", "the optimizer state is not a map")),
        }
    }

    /// The whole state tree.
    pub fn state(&self) -> &Tree {
        &self.state
    }

    /// Replaces the state (a tree as [`state`](Self::state) returns it, e.g. loaded from a
    /// file); per-parameter state missing from it is created on the next update. Errors when the
    /// tree is not a map with a `step` leaf.
    pub fn set_state(&mut self, state: Tree) -> Result<()> {
        if state.get_leaf(STEP).is_none() || !matches!(state, Tree::Map(_)) {
            return Err(Error::invalid(
                "optimizer",
                "an optimizer state is a map with a `step` leaf",
            ));
        }
        self.state = state;
        self.initialized = false;
        Ok(())
    }

    /// The step counter (the number of updates so far).
    pub fn step(&self) -> Result<&Array> {
        self.state.leaf(STEP)
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> Result<&Array> {
        self.state.leaf(LEARNING_RATE)
    }
}

impl Default for OptimizerCore {
    fn default() -> Self {
        OptimizerCore::new()
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn at(path: &str) -> String {
    if path.is_empty() { "the root".to_owned() } else { format!("`{path}`") }
}

/// The tree of `tree`'s structure with an empty map at every leaf.
fn skeleton(tree: &Tree) -> Tree {
    match tree {
        Tree::Leaf(_) => Tree::new(),
        Tree::Map(map) => Tree::Map(map.iter().map(|(k, v)| (k.clone(), skeleton(v))).collect()),
        Tree::List(list) => Tree::List(list.iter().map(skeleton).collect()),
    }
}

fn param_state(tree: &Tree, path: &str) -> Result<ParamState> {
    match tree {
        Tree::Map(map) => map
            .iter()
            .map(|(k, v)| match v {
                Tree::Leaf(a) => Ok((k.clone(), a.clone())),
                _ => Err(Error::invalid(
                    "optimizer",
                    format!("the state of `{path}` has a subtree at `{k}`"),
                )),
            })
            .collect(),
        _ => Err(Error::invalid(
            "optimizer",
            format!(
                "the state at {} is not a map of arrays (a parameter named like a state entry?)",
                at(path)
            ),
        )),
    }
}

fn state_tree(state: ParamState) -> Tree {
    Tree::Map(state.into_iter().map(|(k, v)| (k, Tree::Leaf(v))).collect())
}

/// An optimizer over parameter trees, as Python's `mlx.optimizers.Optimizer`.
///
/// An implementation supplies the per-parameter rule ([`init_single`](Self::init_single),
/// [`apply_single`](Self::apply_single)) and access to its [`OptimizerCore`]; the trait
/// provides the rest: lazy state creation on the first update, schedules, the step counter,
/// and the state as a tree that saves to and loads from safetensors with Python's paths.
///
/// ```
/// use mlx_rs::{Array, ops, transforms, utils::Tree};
/// use mlx_rs::optimizers::{Optimizer, AdamW};
/// let mut params = Tree::new();
/// params.insert("w", Array::from_slice(&[1.0f32, -2.0], &[2])?)?;
/// let mut opt = AdamW::new(0.1)?;
/// for _ in 0..3 {
///     let (_, grads) = transforms::value_and_grad_tree(&params, |p| {
///         Ok(vec![p.leaf("w")?.square()?.sum(.., false)?])
///     })?;
///     opt.update(&mut params, &grads)?;
/// }
/// assert_eq!(opt.step()?.item::<u64>()?, 3);
/// assert_eq!(opt.state().paths(), ["step", "learning_rate", "w.m", "w.v"]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub trait Optimizer {
    /// The shared state.
    fn core(&self) -> &OptimizerCore;

    /// The shared state, mutably.
    fn core_mut(&mut self) -> &mut OptimizerCore;

    /// The initial state of one parameter (Python's `init_single`).
    fn init_single(&self, parameter: &Array) -> Result<ParamState>;

    /// The updated parameter for one gradient, updating that parameter's `state` (Python's
    /// `apply_single`).
    fn apply_single(
        &self,
        gradient: &Array,
        parameter: &Array,
        state: &mut ParamState,
        values: &StepValues<'_>,
    ) -> Result<Array>;

    /// Creates the state of every parameter of `parameters` that has none yet (Python's
    /// `init`); done by the first update when not called. Call it before compiling a training
    /// step, so that the state tree has all its paths.
    fn init(&mut self, parameters: &Tree) -> Result<()> {
        let mut state = self.core().state.clone();
        init_tree(&*self, parameters, &mut state, "")?;
        let core = self.core_mut();
        core.state = state;
        core.initialized = true;
        Ok(())
    }

    /// The updated parameters for `gradients` (a tree with the paths of `parameters` or a
    /// subset of them; the result has the paths of `gradients`), advancing the step and the
    /// state (Python's `apply_gradients`). On error the state is left as it was.
    fn apply_gradients(&mut self, gradients: &Tree, parameters: &Tree) -> Result<Tree> {
        if !self.core().initialized {
            self.init(gradients)?;
        }
        let core = self.core();
        let mut state = core.state.clone();
        let step = core.step()?.clone();
        let mut scheduled = Vec::with_capacity(core.schedules.len());
        for (name, schedule) in &core.schedules {
            scheduled.push((name.clone(), schedule.apply(&step)?));
        }
        let step = (&step + 1)?;
        if let Tree::Map(map) = &mut state {
            for (name, value) in scheduled {
                map.insert(name, Tree::Leaf(value));
            }
            map.insert(STEP.to_owned(), Tree::Leaf(step.clone()));
        }
        let lr = state.get_leaf(LEARNING_RATE).cloned();
        let values = StepValues { step: &step, learning_rate: lr.as_ref() };
        let updated = apply_tree(&*self, gradients, parameters, &mut state, "", &values)?;
        self.core_mut().state = state;
        Ok(updated)
    }

    /// Applies `gradients` to `parameters` in place: the leaves at the gradients' paths are
    /// replaced by their updated values (Python's `update(model, gradients)`).
    fn update(&mut self, parameters: &mut Tree, gradients: &Tree) -> Result<()> {
        let updated = self.apply_gradients(gradients, parameters)?;
        for (path, value) in tree_flatten(&updated) {
            parameters.insert(&path, value)?;
        }
        Ok(())
    }

    /// The state as a tree (Python's `optimizer.state`): `step`, `learning_rate`, and each
    /// parameter's state under its path.
    fn state(&self) -> &Tree {
        self.core().state()
    }

    /// Replaces the state (Python's `optimizer.state = ..`).
    fn set_state(&mut self, state: Tree) -> Result<()> {
        self.core_mut().set_state(state)
    }

    /// The step counter (a `uint64` scalar: the number of updates so far).
    fn step(&self) -> Result<&Array> {
        self.core().step()
    }

    /// The current learning rate (a `float32` scalar).
    fn learning_rate(&self) -> Result<&Array> {
        self.core().learning_rate()
    }

    /// Sets the learning rate to a constant or a schedule.
    fn set_learning_rate(&mut self, learning_rate: LearningRate) -> Result<()> {
        self.core_mut().set_hyperparameter(LEARNING_RATE, learning_rate)
    }

    /// Saves the state to a safetensors file under its dotted paths (as
    /// `mx.save_safetensors(path, dict(tree_flatten(optimizer.state)))` does).
    fn save_state(&self, path: &Path) -> Result<()> {
        let arrays: HashMap<String, Array> = tree_flatten(self.state()).into_iter().collect();
        io::save_safetensors(path, &arrays, &HashMap::<String, String>::new())
    }

    /// Loads the state from a safetensors file written by [`save_state`](Self::save_state) or
    /// by Python. When the file has exactly the paths of the current state, the current order
    /// is kept (so a compiled step's state lines up); otherwise the paths are sorted.
    fn load_state(&mut self, path: &Path) -> Result<()> {
        let (arrays, _) = io::load_safetensors(path)?;
        let current = self.state();
        let same = current.num_leaves() == arrays.len()
            && current.paths().iter().all(|p| arrays.contains_key(p));
        let tree = if same {
            current.map_with_path(|p, _| {
                arrays.get(p).cloned().ok_or_else(|| Error::invalid("load_state", p.to_owned()))
            })?
        } else {
            let mut items: Vec<(String, Array)> = arrays.into_iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            tree_unflatten(items)?
        };
        self.set_state(tree)
    }
}

fn init_tree<O: Optimizer + ?Sized>(
    opt: &O,
    params: &Tree,
    state: &mut Tree,
    path: &str,
) -> Result<()> {
    let mismatch = || {
        Error::invalid(
            "optimizer",
            format!("the state at {} does not have the parameters' structure", at(path)),
        )
    };
    match params {
        Tree::Leaf(param) => match state {
            Tree::Map(map) if map.is_empty() => {
                *state = state_tree(opt.init_single(param)?);
                Ok(())
            }
            Tree::Map(_) => param_state(state, path).map(|_| ()),
            _ => Err(Error::invalid(
                "optimizer",
                format!("the parameter at `{path}` collides with the optimizer's own `{path}`"),
            )),
        },
        Tree::Map(pm) => {
            let Tree::Map(sm) = state else { return Err(mismatch()) };
            for (key, child) in pm {
                let slot = sm.entry(key.clone()).or_insert_with(|| skeleton(child));
                init_tree(opt, child, slot, &child_path(path, key))?;
            }
            Ok(())
        }
        Tree::List(pl) => {
            let Tree::List(sl) = state else { return Err(mismatch()) };
            for (i, child) in pl.iter().enumerate() {
                if sl.len() <= i {
                    sl.push(skeleton(child));
                }
                init_tree(opt, child, &mut sl[i], &child_path(path, &i.to_string()))?;
            }
            Ok(())
        }
    }
}

fn apply_tree<O: Optimizer + ?Sized>(
    opt: &O,
    grads: &Tree,
    params: &Tree,
    state: &mut Tree,
    path: &str,
    values: &StepValues<'_>,
) -> Result<Tree> {
    let missing = |what: &str| {
        Error::invalid("optimizer", format!("the gradient at {} has no matching {what}", at(path)))
    };
    match grads {
        Tree::Leaf(grad) => {
            let Tree::Leaf(param) = params else { return Err(missing("parameter")) };
            let mut ps = param_state(state, path)?;
            let updated = opt.apply_single(grad, param, &mut ps, values)?;
            *state = state_tree(ps);
            Ok(Tree::Leaf(updated))
        }
        Tree::Map(gm) => {
            let (Tree::Map(pm), Tree::Map(sm)) = (params, state) else {
                return Err(missing("map of parameters and state"));
            };
            let mut out = IndexMap::with_capacity(gm.len());
            for (key, g) in gm {
                let child = child_path(path, key);
                let p = pm.get(key).ok_or_else(|| {
                    Error::invalid("optimizer", format!("no parameter at `{child}`"))
                })?;
                let s = sm.get_mut(key).ok_or_else(|| {
                    Error::invalid("optimizer", format!("no optimizer state at `{child}`"))
                })?;
                out.insert(key.clone(), apply_tree(opt, g, p, s, &child, values)?);
            }
            Ok(Tree::Map(out))
        }
        Tree::List(gl) => {
            let (Tree::List(pl), Tree::List(sl)) = (params, state) else {
                return Err(missing("list of parameters and state"));
            };
            if pl.len() < gl.len() || sl.len() < gl.len() {
                return Err(missing("list of parameters and state of its length"));
            }
            let mut out = Vec::with_capacity(gl.len());
            for (i, g) in gl.iter().enumerate() {
                let child = child_path(path, &i.to_string());
                out.push(apply_tree(opt, g, &pl[i], &mut sl[i], &child, values)?);
            }
            Ok(Tree::List(out))
        }
    }
}

/// Reads a state entry of one parameter, or an error naming it.
pub(crate) fn entry<'a>(state: &'a ParamState, op: &'static str, key: &str) -> Result<&'a Array> {
    state.get(key).ok_or_else(|| Error::invalid(op, format!("the parameter state has no `{key}`")))
}
