//! Generates the Rust view of `include/cert_authz.h` with bindgen, so the
//! FFI layer uses the header's own types and cannot drift from it.

use std::env;
use std::path::PathBuf;

fn main() {
    let header = "include/cert_authz.h";
    println!("cargo:rerun-if-changed={header}");

    let bindings = bindgen::Builder::default()
        .header(header)
        .allowlist_type("cert_authz_.*")
        .allowlist_var("CERT_AUTHZ_.*")
        .allowlist_function("cert_authz_.*")
        // C may pass any number in an enum parameter: newtypes keep that
        // defined behaviour, where a Rust enum would not.
        .default_enum_style(bindgen::EnumVariation::NewType { is_bitfield: false, is_global: false })
        .prepend_enum_name(false)
        .layout_tests(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen could not read {header}: {e}\n\
                 (bindgen needs libclang with its headers: apt-get install libclang-dev)"
            )
        });

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings.write_to_file(out.join("cert_authz_sys.rs")).expect("writing the generated bindings");
}
