//! The differential test of tests/differential.rs, driven by the fuzzer's
//! bytes: a policy, requests, identities and users chosen by the input,
//! the indexed decision against the reference that checks every statement
//! in order.  Certificates are made once (key generation per input would
//! leave no time to fuzz); the bytes choose among them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/differential/model.rs"]
mod model;

fn pool() -> &'static [model::PoolIdentity] {
    static POOL: OnceLock<Vec<model::PoolIdentity>> = OnceLock::new();
    POOL.get_or_init(|| model::identity_pool(&mut model::Rng(0x5eed), 24))
}

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cert-authz-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    // One input in eight writes its policy as files with includes: slower,
    // and the inline form already covers everything but file names.
    let (with_files, data) = match data.split_first() {
        Some((first, rest)) => (first % 8 == 7, rest),
        None => (false, data),
    };
    let mut source = model::Bytes::new(data);
    if let Err(difference) = model::run_case(&mut source, pool(), with_files.then(scratch), 16) {
        panic!("{difference}");
    }
});
