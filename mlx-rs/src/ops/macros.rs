//! The macros that write the many ops mapping one-to-one onto an mlx-c function.

/// Defines unary element-wise ops (`fn foo_device(a, stream)`), one mlx-c function each.
macro_rules! unary_ops {
    ($($(#[$doc:meta])* $device:ident, $ffi:ident, $name:literal;)*) => {$(
        $(#[$doc])*
        #[default_device]
        pub fn $device(a: &Array, stream: &Stream) -> Result<Array> {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out($name, |out| unsafe { sys::$ffi(out, a.raw(), stream.raw()) })
        }
    )*};
}

/// Defines binary element-wise ops (`fn foo_device(a, b, stream)`), one mlx-c function each.
macro_rules! binary_ops {
    ($($(#[$doc:meta])* $device:ident, $ffi:ident, $name:literal;)*) => {$(
        $(#[$doc])*
        #[default_device]
        pub fn $device(a: &Array, b: &Array, stream: &Stream) -> Result<Array> {
            // SAFETY: live handles; the output is owned by `array_out`.
            ffi::array_out($name, |out| unsafe {
                sys::$ffi(out, a.raw(), b.raw(), stream.raw())
            })
        }
    )*};
}
