//! SimRack behaviour through its Rust API.
