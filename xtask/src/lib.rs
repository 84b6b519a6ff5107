//! Project automation run as `cargo xtask <command>`; the library part is what the tests drive.

pub mod bench;
pub mod pgo;

/// The cargo arguments that build the gateway binary the bench and `pgo` run.
pub const BUILD_GATEWAY: [&str; 6] = [
    "build",
    "--release",
    "-p",
    "switchyard-gateway",
    "--bin",
    "switchyard",
];
