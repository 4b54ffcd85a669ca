//! Integration tests of racker-bootstrap (one binary, see STYLE.md).

mod content;
#[cfg(feature = "demo")]
mod demo;
mod simulated;
