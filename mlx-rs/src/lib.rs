//! mlx-rs
