//! Rust operators on [`Array`]: `+ - * / % & | ^ << >>`, unary `-` and `!`.
//!
//! The operator table, the scalar rules and examples are documented on
//! [`ScalarOperand`](crate::ops::ScalarOperand), the public face of this module.

use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Shl, Shr, Sub};

use std::rc::Rc;

use super::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops::{self, Number, ScalarOperand, cached_scalar, number_of};

/// The scalar as an array next to `like`, with Python MLX's dtype rule for scalars.
fn operand(op: &'static str, value: Number, like: &Array) -> Result<Rc<Array>> {
    let dtype = like.dtype();
    let target = match value {
        Number::Bool(_) => dtype,
        Number::Int(_) if dtype == Dtype::Bool => Dtype::Int32,
        Number::Int(_) => dtype,
        Number::Float(_) if dtype.is_floating() || dtype.is_complex() => dtype,
        Number::Float(_) => Dtype::Float32,
    };
    cached_scalar(op, value, target)
}

macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $op:ident, [$($scalar:ty),*]) => {
        impl $Trait<&Array> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                ops::$op(self, rhs)
            }
        }

        impl $Trait<Array> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                ops::$op(self, &rhs)
            }
        }

        impl $Trait<&Array> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: &Array) -> Result<Array> {
                ops::$op(&self, rhs)
            }
        }

        impl $Trait<Array> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: Array) -> Result<Array> {
                ops::$op(&self, &rhs)
            }
        }

        impl<T: ScalarOperand> $Trait<T> for &Array {
            type Output = Result<Array>;
            fn $method(self, rhs: T) -> Result<Array> {
                ops::$op(self, &*operand(stringify!($op), number_of(rhs), self)?)
            }
        }

        impl<T: ScalarOperand> $Trait<T> for Array {
            type Output = Result<Array>;
            fn $method(self, rhs: T) -> Result<Array> {
                ops::$op(&self, &*operand(stringify!($op), number_of(rhs), &self)?)
            }
        }

        $(
            impl $Trait<&Array> for $scalar {
                type Output = Result<Array>;
                fn $method(self, rhs: &Array) -> Result<Array> {
                    ops::$op(&*operand(stringify!($op), number_of(self), rhs)?, rhs)
                }
            }

            impl $Trait<Array> for $scalar {
                type Output = Result<Array>;
                fn $method(self, rhs: Array) -> Result<Array> {
                    ops::$op(&*operand(stringify!($op), number_of(self), &rhs)?, &rhs)
                }
            }
        )*
    };
}

macro_rules! binary_operators {
    ($($Trait:ident, $method:ident, $op:ident;)*) => {$(
        binary_operator!(
            $Trait, $method, $op, [bool, i32, f32]
        );
    )*};
}

binary_operators! {
    Add, add, add;
    Sub, sub, subtract;
    Mul, mul, multiply;
    Div, div, divide;
    Rem, rem, remainder;
    BitAnd, bitand, bitwise_and;
    BitOr, bitor, bitwise_or;
    BitXor, bitxor, bitwise_xor;
    Shl, shl, left_shift;
    Shr, shr, right_shift;
}

macro_rules! unary_operator {
    ($Trait:ident, $method:ident, $op:ident) => {
        impl $Trait for &Array {
            type Output = Result<Array>;
            fn $method(self) -> Result<Array> {
                ops::$op(self)
            }
        }

        impl $Trait for Array {
            type Output = Result<Array>;
            fn $method(self) -> Result<Array> {
                ops::$op(&self)
            }
        }
    };
}

unary_operator!(Neg, neg, negative);
unary_operator!(Not, not, bitwise_invert);
