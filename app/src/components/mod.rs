//! Widgets shared by several screens.
pub mod live;
pub mod outcome;
pub mod status;
pub mod table;
