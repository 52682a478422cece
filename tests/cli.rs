//! The `cert-authz` command line: check, show, lint and test, on
//! certificates made by the test PKI.  The shared case table runs here
//! through `cert-authz test`, as it runs through Apache and nginx.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cert-authz")).args(args).output().expect("running cert-authz")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn shared_case_table_through_cert_authz_test() {
    let dir = common::scratch("cli-shared");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("shared.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let mut cases = String::from("# expected  cert  method  path\n");
    for (want, client, method, path) in common::SHARED_CASES {
        cases.push_str(&format!("{want} pki/{client}.pem {method} {path}\n"));
    }
    let cases_path = dir.join("shared.cases");
    std::fs::write(&cases_path, &cases).unwrap();
    let out = cli(&["test", "--policy", s(&policy), s(&cases_path)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{} passed, 0 failed", common::SHARED_CASES.len())),
        "{}",
        text(&out)
    );

    // A wrong expectation fails the run and names the case.
    std::fs::write(&cases_path, "ALLOW pki/reporter.pem GET /admin\n").unwrap();
    let out = cli(&["test", "--policy", s(&policy), s(&cases_path)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("0 passed, 1 failed"), "{}", text(&out));
    assert!(text(&out).contains("shared.cases:1"), "{}", text(&out));
    let _ = pki;
}

#[test]
fn check_prints_decision_reason_and_rule() {
    let dir = common::scratch("cli-check");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let alice = pki.cert("alice");

    let out = cli(&["check", "--policy", s(&policy), "--cert", s(&alice), "--path", "/users/alice/x"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("ALLOW GET /users/alice/x: allow rule matched"), "{}", text(&out));
    assert!(text(&out).contains("p.policy:6)"), "{}", text(&out));

    let out = cli(&[
        "check",
        "--policy",
        s(&policy),
        "--cert",
        s(&pki.cert("opsbot")),
        "--method",
        "GET",
        "--path",
        "/admin/secrets/x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("deny rule matched") && text(&out).contains("p.policy:8)"), "{}", text(&out));

    for raw in ["/users//alice", "/users/./alice", "/users/alice/../bob"] {
        let out = cli(&["check", "--policy", s(&policy), "--cert", s(&alice), "--path", raw]);
        assert_eq!(out.status.code(), Some(1), "{raw}");
        assert!(text(&out).contains("path is not unambiguous"), "{}", text(&out));
    }

    // A refused certificate is a deny, not an error.
    let mut junk = std::fs::read(&alice).unwrap();
    junk.splice(40..44, b"!!!!".iter().copied());
    std::fs::write(dir.join("junk.pem"), junk).unwrap();
    let out =
        cli(&["check", "--policy", s(&policy), "--cert", s(&dir.join("junk.pem")), "--path", "/status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Usage, policy and I/O errors exit 2.
    assert_eq!(cli(&["check", "--policy", s(&policy)]).status.code(), Some(2));
    assert_eq!(
        cli(&["check", "--policy", "/nonexistent", "--cert", s(&alice), "--path", "/"]).status.code(),
        Some(2)
    );
    assert_eq!(
        cli(&["check", "--policy", s(&policy), "--cert", "/nonexistent", "--path", "/"]).status.code(),
        Some(2)
    );
    assert_eq!(cli(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn show_prints_matchable_attributes_quoted_for_a_policy() {
    let dir = common::scratch("cli-show");
    let pki = common::make_pki(&dir.join("pki"));
    let out = cli(&["show", s(&pki.cert("billing"))]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    for line in [
        "subject=\"CN=billing,O=Example Corp\"",
        "subject.CN=billing",
        "subject.O=\"Example Corp\"",
        "issuer.CN=\"Example Test CA\"",
        "san.uri=spiffe://example.org/ns/prod/sa/billing",
    ] {
        assert!(shown.lines().any(|l| l == line), "missing {line:?} in\n{shown}");
    }
    assert!(shown.lines().any(|l| l.starts_with("fingerprint=") && l.len() == 12 + 64), "{shown}");

    // Every printed line is a matcher that matches the certificate itself.
    let mut policy = String::new();
    for line in shown.lines().filter(|l| !l.starts_with('#')) {
        policy.push_str(&format!("allow GET /{} {line}\n", policy.lines().count()));
    }
    std::fs::write(dir.join("self.policy"), &policy).unwrap();
    for n in 0..policy.lines().count() {
        let out = cli(&[
            "check",
            "--policy",
            s(&dir.join("self.policy")),
            "--cert",
            s(&pki.cert("billing")),
            "--path",
            &format!("/{n}"),
        ]);
        assert_eq!(out.status.code(), Some(0), "line {n} of\n{policy}\n{}", text(&out));
    }

    let mallory = text(&cli(&["show", s(&pki.cert("mallory"))]));
    assert!(mallory.contains("subject.CN=\"alice,O=Example Corp\""), "{mallory}");
    assert!(!mallory.lines().any(|l| l.starts_with("subject.O=")), "{mallory}");
}

#[test]
fn lint_reports_every_error_with_its_location() {
    let dir = common::scratch("cli-lint");
    let good = dir.join("good.policy");
    std::fs::write(&good, common::SHARED_POLICY).unwrap();
    let out = cli(&["lint", s(&good)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok, 6 rules"), "{}", text(&out));

    let bad = dir.join("bad.policy");
    std::fs::write(&bad, "allow GET /ok any\nallow get /x any\n\ngroup g subject.Q=1\n").unwrap();
    let out = cli(&["lint", s(&good), s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    let report = text(&out);
    assert!(report.contains(&format!("{}:2:7: methods are case-sensitive", s(&bad))), "{report}");
    assert!(report.contains(&format!("{}:4:9: unknown attribute `subject.Q`", s(&bad))), "{report}");
}
