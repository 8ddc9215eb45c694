//! Widgets shared by several screens.
pub mod live;
pub mod status;
