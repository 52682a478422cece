//! cert-authz: authorizes HTTP requests by the client certificate that the
//! server's TLS layer has already verified.
//!
//! The core is plain safe Rust and knows no web server: [`policy`] parses
//! the policy language, [`identity`] reads certificates, [`decide`] makes
//! decisions.  [`ffi`] is the C ABI of `include/cert_authz.h`, the only
//! door the Apache and nginx shims use, and the only unsafe code.
#![deny(unsafe_code)]

pub mod attr;
pub mod decide;
pub mod dn;
pub mod ffi;
pub mod identity;
pub mod lexer;
mod lint;
pub mod logging;
pub mod policy;
pub mod report;
pub mod request_target;

pub use attr::Attr;
pub use decide::{Decision, Peer, Policy, Reason};
pub use identity::{CertError, Identity, KeyKind, Presented};
pub use policy::{PolicyBuilder, PolicyError};

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Compiles one policy file (a convenience for the CLI and tests).
pub fn compile_file(path: &std::path::Path) -> Result<Policy, Vec<PolicyError>> {
    let mut builder = PolicyBuilder::new();
    builder.add_file(path);
    builder.build()
}

/// Compiles one policy file as `compile_file` does, and returns the
/// warnings of `cert-authz lint` too.
pub fn lint_file(path: &std::path::Path) -> (Result<Policy, Vec<PolicyError>>, Vec<PolicyError>) {
    let mut builder = PolicyBuilder::new();
    builder.collect_warnings();
    builder.add_file(path);
    builder.build_with_warnings()
}

/// Compiles policy text as if it were the file `name`.
pub fn compile_str(text: &str, name: &str) -> Result<Policy, Vec<PolicyError>> {
    let mut builder = PolicyBuilder::new();
    builder.add_statement(text, name, 1);
    builder.build()
}
