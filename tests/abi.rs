//! The C ABI from C: compiles tests/c/abi_test.c with -Wall -Wextra -Werror
//! against include/cert_authz.h, links it with the release static library
//! that `make build` made, and runs it on a generated certificate.

mod common;

use std::process::Command;

#[test]
fn c_program_uses_every_export_and_all_checks_pass() {
    let root = common::root();
    let lib = root.join("target/release/libcert_authz.a");
    let lib_time = std::fs::metadata(&lib)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run `make build` first", lib.display()));
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let source = entry.unwrap().path();
        let changed = std::fs::metadata(&source).unwrap().modified().unwrap();
        assert!(
            changed <= lib_time,
            "{} is newer than {}: run `make build`",
            source.display(),
            lib.display()
        );
    }

    let dir = common::scratch("abi");
    let exe = dir.join("abi_test");
    let compiled = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/abi_test.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("running cc");
    assert!(compiled.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&compiled.stderr));

    let pki = common::make_pki(&dir.join("pki"));
    let pem = std::fs::read_to_string(pki.cert("alice")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = data_encoding::BASE64.decode(body.as_bytes()).unwrap();
    std::fs::write(dir.join("alice.der"), &der).unwrap();
    let ca_pem = std::fs::read_to_string(pki.path("ca.pem")).unwrap();
    let ca_body: String = ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let ca_der = data_encoding::BASE64.decode(ca_body.as_bytes()).unwrap();
    std::fs::write(dir.join("ca.der"), &ca_der).unwrap();
    // What the C program must read through the ABI, from the Rust API.
    let with_chain = cert_authz::Identity::from_der_chain(&der, &[&ca_der]).unwrap();
    let ca_spki = with_chain.values(cert_authz::Attr::CaSpki)[0].to_string();
    let policy = dir.join("abi.policy");
    std::fs::write(&policy, "allow GET /users/{subject.CN}/** any\ndeny * /users/alice/secret any\n")
        .unwrap();

    let run = Command::new(&exe)
        .arg(pki.cert("alice"))
        .arg(dir.join("alice.der"))
        .arg(&policy)
        .arg("alice")
        .arg(dir.join("ca.der"))
        .arg(&ca_spki)
        .output()
        .expect("running abi_test");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(run.status.success(), "abi_test failed:\n{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
}
