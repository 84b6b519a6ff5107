//! Project automation run as `cargo xtask <command>`; the library part is what the tests drive.

pub mod bench;
pub mod pgo;
