//! Calls `cert_authz_decide` in a loop, as a server shim does, for a
//! profile of one decision on its own: `valgrind --tool=callgrind
//! target/release/examples/decide_loop POLICY CERT.pem N [METHOD PATH]`;
//! the difference of two runs' counts over the difference of their N is
//! the cost of one call.

use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;

use cert_authz::ffi::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (policy_path, cert_path) = (&args[1], &args[2]);
    let n: u32 = args.get(3).map_or(1000, |a| a.parse().unwrap());
    let method = args.get(4).map_or("GET", |s| s);
    let path = args.get(5).map_or("/1k.html", |s| s);
    let pem = std::fs::read(cert_path).unwrap();
    let mut builder = ptr::null_mut();
    let mut policy = ptr::null_mut();
    let mut identity = ptr::null_mut();
    let mut errors = [0 as c_char; 1024];
    assert_eq!(cert_authz_policy_builder_new(&mut builder), cert_authz_result::CERT_AUTHZ_OK);
    let r = cert_authz_policy_builder_add_file(
        builder,
        policy_path.as_ptr() as *const c_char,
        policy_path.len(),
        errors.as_mut_ptr(),
        errors.len(),
    );
    assert_eq!(r, cert_authz_result::CERT_AUTHZ_OK);
    let r = cert_authz_policy_builder_build(builder, errors.as_mut_ptr(), errors.len(), &mut policy);
    assert_eq!(r, cert_authz_result::CERT_AUTHZ_OK);
    let r = cert_authz_identity_from_pem(pem.as_ptr() as *const c_char, pem.len(), &mut identity);
    assert_eq!(r, cert_authz_result::CERT_AUTHZ_OK);
    let mut allowed = 0;
    for _ in 0..n {
        let mut decision = std::mem::MaybeUninit::<cert_authz_decision>::uninit();
        let r = cert_authz_decide(
            black_box(policy),
            black_box(identity),
            cert_authz_peer::CERT_AUTHZ_PEER_VERIFIED,
            black_box(method.as_ptr() as *const c_char),
            method.len(),
            black_box(path.as_ptr() as *const c_char),
            path.len(),
            ptr::null(),
            0,
            decision.as_mut_ptr(),
        );
        assert_eq!(r, cert_authz_result::CERT_AUTHZ_OK);
        // SAFETY: cert_authz_decide wrote it (it returned OK).
        allowed += unsafe { decision.assume_init() }.allowed;
    }
    println!("{allowed} of {n} allowed");
    cert_authz_identity_free(identity);
    cert_authz_policy_free(policy);
}
