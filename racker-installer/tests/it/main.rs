//! Integration tests of racker-installer (one binary, see STYLE.md).

mod archive;
mod build;
mod install;
mod support;
