//! [`Axes`]: the axes argument of reductions and axis permutations.

use crate::{Error, Result};

/// Which axes an op works on: all of them (`..`), one (`-1`) or a list (`[0, 2]`, `&[0, 2]`,
/// a `Vec`), as Python's `axis=None | int | list` reads.
///
/// ```
/// use mlx_rs::{Array, ops};
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3])?;
/// assert_eq!(ops::sum(&a, .., false)?.item::<f32>()?, 21.0);
/// assert_eq!(ops::sum(&a, -1, false)?.to_vec::<f32>()?, [6.0, 15.0]);
/// assert_eq!(ops::sum(&a, [0, 2], false)?.to_vec::<f32>()?, [6.0, 15.0]);
/// # Ok::<(), mlx_rs::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axes {
    /// Every axis (`..`; Python's `axis=None`).
    All,
    /// One axis; negative axes count from the end.
    One(i32),
    /// A list of axes (an empty list names none).
    Many(Vec<i32>),
}

impl Axes {
    /// The listed axes, or `None` for all of them.
    pub fn as_slice(&self) -> Option<&[i32]> {
        match self {
            Axes::All => None,
            Axes::One(axis) => Some(std::slice::from_ref(axis)),
            Axes::Many(axes) => Some(axes),
        }
    }

    /// The one axis named, or `None` for all; a list of other than one axis is an error of
    /// `op`.
    pub(crate) fn single(&self, op: &'static str) -> Result<Option<i32>> {
        match self.as_slice() {
            None => Ok(None),
            Some(&[axis]) => Ok(Some(axis)),
            Some(axes) => Err(Error::invalid(op, format!("takes one axis or all, got {axes:?}"))),
        }
    }

    /// The listed axes; all axes (`..`) is an error of `op`, which needs them named.
    pub(crate) fn listed(&self, op: &'static str) -> Result<&[i32]> {
        self.as_slice().ok_or_else(|| Error::invalid(op, "needs its axes named, not `..`"))
    }
}

impl From<std::ops::RangeFull> for Axes {
    fn from(_: std::ops::RangeFull) -> Axes {
        Axes::All
    }
}

impl From<i32> for Axes {
    fn from(axis: i32) -> Axes {
        Axes::One(axis)
    }
}

impl<const N: usize> From<[i32; N]> for Axes {
    fn from(axes: [i32; N]) -> Axes {
        Axes::Many(axes.to_vec())
    }
}

impl<const N: usize> From<&[i32; N]> for Axes {
    fn from(axes: &[i32; N]) -> Axes {
        Axes::Many(axes.to_vec())
    }
}

impl From<&[i32]> for Axes {
    fn from(axes: &[i32]) -> Axes {
        Axes::Many(axes.to_vec())
    }
}

impl From<Vec<i32>> for Axes {
    fn from(axes: Vec<i32>) -> Axes {
        Axes::Many(axes)
    }
}

impl From<&Vec<i32>> for Axes {
    fn from(axes: &Vec<i32>) -> Axes {
        Axes::Many(axes.clone())
    }
}

/// Axes decided at run time: `None` is every axis, as in Python.
impl From<Option<&[i32]>> for Axes {
    fn from(axes: Option<&[i32]>) -> Axes {
        axes.map_or(Axes::All, Axes::from)
    }
}

/// Axes decided at run time: `None` is every axis, as in Python.
impl From<Option<Vec<i32>>> for Axes {
    fn from(axes: Option<Vec<i32>>) -> Axes {
        axes.map_or(Axes::All, Axes::Many)
    }
}

/// An axis decided at run time: `None` is every axis, as in Python.
impl From<Option<i32>> for Axes {
    fn from(axis: Option<i32>) -> Axes {
        axis.map_or(Axes::All, Axes::One)
    }
}
