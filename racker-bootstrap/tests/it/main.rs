//! Integration tests of racker-bootstrap (one binary, see STYLE.md).

mod content;
mod simulated;
