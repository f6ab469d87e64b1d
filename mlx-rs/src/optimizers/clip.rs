//! Gradient clipping (`mlx.optimizers.clip_grad_norm`).

use crate::utils::Tree;
use crate::{Array, Error, Result};

/// Scales `grads` so that their global L2 norm is at most `max_norm`, and returns the clipped
/// gradients with the norm before clipping (`mlx.optimizers.clip_grad_norm`):
/// `g * min(max_norm / (norm + 1e-6), 1)`. Errors for a negative `max_norm` or a tree without
/// arrays.
///
/// ```
/// use mlx_rs::{Array, utils::Tree};
/// use mlx_rs::optimizers::clip_grad_norm;
/// let mut grads = Tree::new();
/// grads.insert("a", Array::from_slice(&[3.0f32], &[1])?)?;
/// grads.insert("b", Array::from_slice(&[4.0f32], &[1])?)?;
/// let (clipped, norm) = clip_grad_norm(&grads, 1.0)?;
/// assert_eq!(norm.item::<f32>()?, 5.0);
/// assert!((clipped.leaf("a")?.to_vec::<f32>()?[0] - 0.6).abs() < 1e-6);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
pub fn clip_grad_norm(grads: &Tree, max_norm: f64) -> Result<(Tree, Array)> {
    const OP: &str = "clip_grad_norm";
    if max_norm < 0.0 || max_norm.is_nan() {
        return Err(Error::invalid(
            OP,
            format!("max_norm should be >=0, {max_norm} was provided instead"),
        ));
    }
    let mut leaves = grads.leaves().into_iter();
    let first = leaves.next().ok_or_else(|| Error::invalid(OP, "the tree has no arrays"))?;
    let mut norm_squared = first.square()?.sum(.., false)?;
    for g in leaves {
        norm_squared = (&norm_squared + g.square()?.sum(.., false)?)?;
    }
    let total_norm = norm_squared.sqrt()?;
    let ratio =
        (Array::scalar(max_norm as f32).astype(total_norm.dtype())? / (&total_norm + 1e-6)?)?;
    let normalizer = ratio.minimum(Array::scalar(1.0f32).astype(total_norm.dtype())?)?;
    let clipped = grads.map(|g| g * &normalizer)?;
    Ok((clipped, total_norm))
}
