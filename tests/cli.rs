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
    // The line a server logs for the same decision.
    assert!(
        text(&out).starts_with("CA00012: allowed by cert-authz: GET /users/alice/x, subject \"CN=alice,OU=users,O=Example Corp\", reason: allow rule matched, rule "),
        "{}",
        text(&out)
    );
    assert!(text(&out).trim_end().ends_with("p.policy:6"), "{}", text(&out));

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
    assert!(
        text(&out).starts_with("CA00010: client denied by cert-authz: GET /admin/secrets/x, "),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("reason: deny rule matched, rule ") && text(&out).contains("p.policy:8"),
        "{}",
        text(&out)
    );

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
    assert!(
        text(&out).contains("subject \"(refused)\", reason: client certificate refused as malformed: "),
        "why it was refused is in the line: {}",
        text(&out)
    );

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

/// Runs the CLI, killing it (a failure) if it has not ended after 30 s: a regression
/// that hangs on a hostile policy source fails instead of hanging the suite.
fn cli_within(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cert-authz"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running cert-authz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("waiting for cert-authz").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cert-authz {args:?} did not end within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("reading cert-authz's output")
}

#[test]
fn lint_refuses_a_fifo_at_once_and_names_the_include() {
    let dir = common::scratch("cli-fifo");
    let pipe = dir.join("pipe");
    let made = Command::new("mkfifo").arg(&pipe).status().expect("running mkfifo");
    assert!(made.success());
    let main = dir.join("main.policy");
    std::fs::write(&main, "allow GET /status any\ninclude pipe\n").unwrap();

    let out = cli_within(&["lint", s(&main)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let want = format!("{}:2:9: policy file {} is not a regular file (a FIFO)", s(&main), s(&pipe));
    assert!(text(&out).contains(&want), "{}", text(&out));

    // The FIFO given directly, and to check: an error of its own, no decision.
    let out = cli_within(&["lint", s(&pipe)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not a regular file (a FIFO)"), "{}", text(&out));
    let out = cli_within(&["check", "--policy", s(&main), "--cert", s(&main), "--path", "/status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&want), "{}", text(&out));
}

#[test]
fn lint_reports_a_non_utf8_byte_and_runaway_includes_with_their_location() {
    let dir = common::scratch("cli-hostile");
    let latin1 = dir.join("latin1.policy");
    std::fs::write(&latin1, b"allow GET /status any\n# caf\xe9\n").unwrap();
    let out = cli_within(&["lint", s(&latin1)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("{}:2:6: byte 0xE9 is not UTF-8", s(&latin1))), "{}", text(&out));

    let zero = dir.join("zero.policy");
    std::fs::write(&zero, "allow GET /status any\ninclude /dev/zero\n").unwrap();
    let out = cli_within(&["lint", s(&zero)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("{}:2:9: policy file /dev/zero is not a regular file", s(&zero))));

    // Ten files, each including the next eight times.
    for i in 0..9 {
        std::fs::write(dir.join(format!("f{i}.policy")), format!("include f{}.policy\n", i + 1).repeat(8))
            .unwrap();
    }
    std::fs::write(dir.join("f9.policy"), "allow GET /status any\n").unwrap();
    let out = cli_within(&["lint", s(&dir.join("f0.policy"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(":9: more than 4096 policy files read in total"), "{}", text(&out));
}

#[test]
fn check_with_user_names_the_authorized_value_or_refuses_an_ambiguous_one() {
    let dir = common::scratch("cli-user");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    // twocn: O=Example Corp, OU=ops, CN=admin, CN=opsbot: in group ops.
    std::fs::write(&policy, format!("{}allow GET /ops/** subject.CN=opsbot\n", common::SHARED_POLICY))
        .unwrap();
    let twocn = pki.cert("twocn");
    let check = |path: &str, user: &[&str]| {
        let mut args = vec!["check", "--policy", s(&policy), "--cert", s(&twocn), "--path", path];
        args.extend_from_slice(user);
        cli(&args)
    };

    let out = check("/ops/x", &["--user", "subject.CN"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).ends_with(", user opsbot\n"), "{}", text(&out));
    let out = check("/users/admin/x", &["--user", "subject.CN"]);
    assert!(text(&out).contains("CA00012: allowed") && text(&out).contains(", user admin"), "{}", text(&out));

    // /admin/** is allowed by group=ops: no CN was singled out.
    let out = check("/admin/x", &["--user", "subject.CN"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("several values"), "{}", text(&out));
    let out = check("/admin/x", &[]);
    assert_eq!(out.status.code(), Some(0), "without a user attribute: {}", text(&out));

    let out = check("/admin/x", &["--user", "subject.XX"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn every_subcommand_has_help_and_refuses_unknown_options() {
    for (command, usage) in [
        ("check", "usage: cert-authz check --policy POLICY --cert CERT [--method METHOD] --path PATH"),
        ("show", "usage: cert-authz show CERT\n"),
        ("lint", "usage: cert-authz lint POLICY...\n"),
        ("test", "usage: cert-authz test --policy POLICY CASES\n"),
    ] {
        for help in
            [&[command, "--help"][..], &[command, "-h"], &[command, "x", "--help"], &["help", command]]
        {
            let out = cli(help);
            assert_eq!(out.status.code(), Some(0), "{help:?}: {}", text(&out));
            assert!(String::from_utf8_lossy(&out.stdout).starts_with(usage), "{help:?}: {}", text(&out));
            assert!(text(&out).contains("exit status:"), "{help:?}: {}", text(&out));
        }
        let out = cli(&[command, "--frobnicate", "x"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", text(&out));
        assert!(text(&out).starts_with("unknown option --frobnicate\n"), "{}", text(&out));
        assert!(text(&out).contains(usage.trim_end()), "{}", text(&out));
    }
    assert_eq!(cli(&["help", "frobnicate"]).status.code(), Some(2));
    let out = cli(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("cert-authz COMMAND --help"), "{}", text(&out));
}
