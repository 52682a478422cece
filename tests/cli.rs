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

    // A refused certificate is a deny, not an error: a DER SEQUENCE whose
    // TBSCertificate is a SET.
    let pem = std::fs::read(&alice).unwrap();
    let mut junk = cert_authz::identity::pem_chain_to_der(&pem).unwrap().remove(0);
    assert_eq!(junk[4], 0x30);
    junk[4] = 0x31;
    std::fs::write(dir.join("junk.der"), junk).unwrap();
    let out =
        cli(&["check", "--policy", s(&policy), "--cert", s(&dir.join("junk.der")), "--path", "/status"]);
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

/// The lines `check --explain` printed after the decision's line, each with `dir/` cut.
fn explained(out: &Output, dir: &Path) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", s(dir)), "");
    stdout.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn check_explain_names_the_nearest_statements_and_the_parts_that_did_not_hold() {
    let dir = common::scratch("cli-explain");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let check = |client: &str, method: &str, path: &str| {
        let cert = pki.cert(client);
        let args = ["check", "--policy", s(&policy), "--cert", s(&cert), "--method", method, "--path", path];
        let plain = cli(&args);
        let out = cli(&[&args[..], &["--explain"]].concat());
        // The decision, its exit status and its line are those without --explain.
        assert_eq!(out.status.code(), plain.status.code(), "{}", text(&out));
        assert!(text(&out).starts_with(&text(&plain)), "{}\n{}", text(&plain), text(&out));
        (out.status.code(), explained(&out, &dir))
    };

    assert_eq!(
        check("alice", "GET", "/admin/x"),
        (
            Some(1),
            vec![
                "explain: no allow statement holds; the nearest of the 1 whose path fits:".to_string(),
                "  p.policy:4: allow * /admin/** group=ops".into(),
                "    group=ops does not hold: no line of group ops matches:".into(),
                "      p.policy:2: group ops subject.O=\"Example Corp\" subject.OU=ops".into(),
                "        subject.OU=ops does not hold: the certificate has subject.OU=users".into(),
            ]
        )
    );
    assert_eq!(
        check("alice", "GET", "/users/bob/profile").1[1..],
        [
            "  p.policy:6: allow * /users/{subject.CN}/** issuer.CN=\"Example Test CA\"",
            "    path segment {subject.CN} is bob, the certificate has subject.CN=alice",
        ]
    );
    assert_eq!(
        check("alice", "POST", "/status").1[1..],
        ["  p.policy:3: allow GET /status any", "    method POST is not GET"]
    );
    assert_eq!(
        check("reporter", "GET", "/corp/handbook").1[1..],
        [
            "  p.policy:7: allow GET /corp/** subject.O=\"Example Corp\"",
            "    subject.O=\"Example Corp\" does not hold: the certificate has no subject.O",
        ]
    );
    assert_eq!(
        check("opsbot", "GET", "/admin/secrets/key").1,
        [
            "explain: refused by p.policy:8: deny * /admin/secrets/** any (a matching deny beats every allow)",
            "  it also matched: p.policy:4: allow * /admin/** group=ops",
        ]
    );
    // The allow of /admin/** fits the path but not alice: it did not also match.
    assert_eq!(
        check("alice", "GET", "/admin/secrets/key").1,
        ["explain: refused by p.policy:8: deny * /admin/secrets/** any (a matching deny beats every allow)"]
    );
    assert_eq!(check("alice", "GET", "/nowhere").1, ["explain: no allow statement's path fits /nowhere"]);
    assert_eq!(
        check("alice", "GET", "/users/alice/x"),
        (
            Some(0),
            vec!["explain: allowed by p.policy:6: allow * /users/{subject.CN}/** issuer.CN=\"Example Test CA\""
                .to_string()]
        )
    );
    assert_eq!(
        check("alice", "GET", "/users//alice").1,
        ["explain: the request was refused before any statement was looked at"]
    );
}

#[test]
fn check_explain_ranks_the_nearest_first_and_shows_only_five() {
    let dir = common::scratch("cli-explain-rank");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    // For alice (O=Example Corp, OU=users, CN=alice), GET /r/x: the rules on other
    // paths are not shown, a wrong method counts as one part, the first written first.
    std::fs::write(
        &policy,
        "allow GET /r/** subject.CN=bob subject.OU=ops subject.C=DE\n\
         allow GET /other/** subject.CN=bob\n\
         allow GET /r/* subject.CN=bob subject.OU=ops\n\
         allow POST /r/** subject.CN=alice\n\
         allow * /r/x subject.OU=ops\n\
         allow GET /r/** subject.CN=bob subject.OU=ops\n\
         allow DELETE /r/{subject.CN} subject.CN=bob subject.OU=ops subject.C=DE\n\
         allow * /** serial=01 spki=00000000000000000000000000000000000000000000000000000000000000AA\n",
    )
    .unwrap();
    let out = cli(&[
        "check",
        "--policy",
        s(&policy),
        "--cert",
        s(&pki.cert("alice")),
        "--path",
        "/r/x",
        "--explain",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let places: Vec<String> = explained(&out, &dir)
        .iter()
        .filter(|l| l.starts_with("  p.policy:") || l.starts_with("  and "))
        .map(|l| l.split(": ").next().unwrap().trim().to_string())
        .collect();
    assert_eq!(
        places,
        ["p.policy:4", "p.policy:5", "p.policy:3", "p.policy:6", "p.policy:8", "and 2 more"],
        "{}",
        text(&out)
    );
    let lines = explained(&out, &dir);
    assert_eq!(lines[0], "explain: no allow statement holds; the nearest of the 7 whose path fits:");
    assert_eq!(
        lines[1..3],
        ["  p.policy:4: allow POST /r/** subject.CN=alice", "    method GET is not POST"]
    );
}

#[test]
fn check_explain_restates_quoted_and_escaped_values_as_written() {
    let dir = common::scratch("cli-explain-escapes");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    // mallory's only name is CN=`alice,O=Example Corp`.  The first five matchers and
    // `any` hold for it, the other two do not; restated otherwise (without a quote, the
    // kept `\` of a name, `\*` as a prefix, the kept `\` of `x\` as a continuation
    // once it ends a probe's line) one of them would change sides.
    let statement = [
        r#"allow GET /m subject.CN="alice,O=Example Corp" subject="CN=alice\,O=Example Corp" \"#,
        r#"    subject.CN=ali* subject.CN=alice,O=Example" "Corp "subject.CN"=alice* \"#,
        r#"    subject.CN=alice,O=Example\* subject.CN=x\ any"#,
    ];
    std::fs::write(&policy, format!("{}\nallow GET /other any\n", statement.join("\n"))).unwrap();
    let mallory = pki.cert("mallory");
    let out = cli(&["check", "--policy", s(&policy), "--cert", s(&mallory), "--path", "/m", "--explain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let joined: Vec<&str> = statement.iter().map(|l| l.trim().trim_end_matches(" \\")).collect();
    assert_eq!(
        explained(&out, &dir),
        [
            "explain: no allow statement holds; the nearest of the 1 whose path fits:".to_string(),
            format!("  p.policy:1: {}", joined.join(" ")),
            r#"    subject.CN=alice,O=Example\* does not hold: the certificate has subject.CN="alice,O=Example Corp""#
                .into(),
            r#"    subject.CN=x\ does not hold: the certificate has subject.CN="alice,O=Example Corp""#.into(),
        ],
        "{}",
        text(&out)
    );
}

#[test]
fn test_coverage_lists_the_statements_no_case_exercised() {
    let dir = common::scratch("cli-coverage");
    let _pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("shared.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let cases_path = dir.join("shared.cases");
    let write_cases = |cases: &[(&str, &str, &str, &str)]| {
        let lines: Vec<String> = cases
            .iter()
            .map(|(want, client, method, path)| format!("{want} pki/{client}.pem {method} {path}\n"))
            .collect();
        std::fs::write(&cases_path, lines.concat()).unwrap();
    };
    let coverage = |policy: &Path| {
        let out = cli(&["test", "--coverage", "--policy", s(policy), s(&cases_path)]);
        let report = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", s(&dir)), "");
        (
            out.status.code(),
            report.lines().skip_while(|l| !l.starts_with("coverage:")).map(String::from).collect::<Vec<_>>(),
        )
    };

    // The shared table exercises every statement, the group line through opsbot.
    write_cases(common::SHARED_CASES);
    assert_eq!(coverage(&policy), (Some(0), vec!["coverage: all 7 statements exercised".to_string()]));

    // Without opsbot, /admin/** and its group line decide nothing (alice's refusal on
    // /admin/ is no rule's); the deny of /admin/secrets/** does not either.  Passing
    // cases with statements left over still pass.
    let without_opsbot: Vec<_> = common::SHARED_CASES.iter().copied().filter(|c| c.1 != "opsbot").collect();
    write_cases(&without_opsbot);
    assert_eq!(
        coverage(&policy),
        (
            Some(0),
            vec![
                "coverage: 4 of 7 statements exercised; not exercised:".to_string(),
                "  shared.policy:2: group ops subject.O=\"Example Corp\" subject.OU=ops".into(),
                "  shared.policy:4: allow * /admin/** group=ops".into(),
                "  shared.policy:8: deny * /admin/secrets/** any".into(),
            ]
        )
    );

    // A group line counts only when it matched a case its group decided; a require,
    // when it refused one; of two statements that both match, the first written
    // decides; an included file's statements are named by their own file.
    std::fs::write(dir.join("more.policy"), "allow GET /status any\nrequire key ec>=256\n").unwrap();
    let main = dir.join("main.policy");
    std::fs::write(
        &main,
        "group ops subject.OU=ops\ngroup ops san.uri=spiffe://example.org/ns/ops/*\n\
         allow * /admin/** group=ops\nallow GET /status any\ninclude more.policy\nrequire lifetime<=7d\n",
    )
    .unwrap();
    write_cases(&[("ALLOW", "opsbot", "GET", "/admin")]);
    assert_eq!(
        coverage(&main),
        (
            Some(1),
            vec![
                "coverage: 1 of 7 statements exercised; not exercised:".to_string(),
                "  main.policy:1: group ops subject.OU=ops".into(),
                "  main.policy:2: group ops san.uri=spiffe://example.org/ns/ops/*".into(),
                "  main.policy:3: allow * /admin/** group=ops".into(),
                "  main.policy:4: allow GET /status any".into(),
                "  more.policy:1: allow GET /status any".into(),
                "  more.policy:2: require key ec>=256".into(),
            ]
        ),
        "the lifetime of 31 days refuses opsbot"
    );
    std::fs::write(
        &main,
        "group ops subject.OU=ops\ngroup ops san.uri=spiffe://example.org/ns/ops/*\n\
         allow * /admin/** group=ops\nallow GET /status any\ninclude more.policy\n",
    )
    .unwrap();
    write_cases(&[("ALLOW", "opsbot", "GET", "/admin"), ("ALLOW", "alice", "GET", "/status")]);
    assert_eq!(
        coverage(&main),
        (
            Some(0),
            vec![
                "coverage: 3 of 6 statements exercised; not exercised:".to_string(),
                "  main.policy:2: group ops san.uri=spiffe://example.org/ns/ops/*".into(),
                "  more.policy:1: allow GET /status any".into(),
                "  more.policy:2: require key ec>=256".into(),
            ]
        )
    );

    // Without --coverage, no coverage.
    let out = cli(&["test", "--policy", s(&main), s(&cases_path)]);
    assert_eq!(text(&out), "2 passed, 0 failed\n");
}

#[test]
fn every_subcommand_has_help_and_refuses_unknown_options() {
    for (command, usage) in [
        ("check", "usage: cert-authz check --policy POLICY --cert CERT [--chain CHAIN] [--method METHOD] (--path PATH | --target TARGET"),
        ("show", "usage: cert-authz show [--chain CHAIN] CERT\n"),
        ("lint", "usage: cert-authz lint POLICY...\n"),
        ("test", "usage: cert-authz test --policy POLICY [--coverage] CASES\n"),
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
    // Each flag belongs to its subcommand.
    assert_eq!(cli(&["test", "--explain"]).status.code(), Some(2));
    assert_eq!(cli(&["check", "--coverage"]).status.code(), Some(2));
    assert_eq!(cli(&["help", "frobnicate"]).status.code(), Some(2));
    let out = cli(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("cert-authz COMMAND --help"), "{}", text(&out));
}

#[test]
fn check_explain_shows_a_failed_requirement_with_the_certificate_s_key_or_lifetime() {
    let dir = common::scratch("cli-explain-require");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    let explain = |client: &str, rules: &str, extra: &[&str]| {
        std::fs::write(&policy, rules).unwrap();
        let cert = pki.cert(client);
        let args = ["check", "--policy", s(&policy), "--cert", s(&cert), "--path", "/admin/x", "--explain"];
        let out = cli(&[&args[..], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        explained(&out, &dir)
    };
    // The test PKI's clients have P-256 keys and are valid for 31 days.
    let rules = "allow * /admin/** any\nrequire lifetime<=90d\nrequire key rsa>=2048 \\\n  ed25519\n";
    assert_eq!(
        explain("alice", rules, &[]),
        ["explain: p.policy:3: require key rsa>=2048 ed25519: the certificate's key is ec 256"]
    );
    assert_eq!(
        explain("alice", "allow * /admin/** any\nrequire key ec>=256\nrequire lifetime<=720h\n", &[]),
        ["explain: p.policy:3: require lifetime<=720h: the certificate's lifetime is 31d"]
    );
    // An allow that does not single out the user's value.
    assert_eq!(
        explain("twocn", "allow * /admin/** subject.OU=ops\n", &["--user", "subject.CN"]),
        [
            "explain: p.policy:1: allow * /admin/** subject.OU=ops allows the request,",
            "  but it does not single out one of the certificate's values of subject.CN (subject.CN=admin, subject.CN=opsbot)",
        ]
    );
}

#[test]
fn show_prints_every_name_form_and_each_line_matches() {
    let dir = common::scratch("cli-show-forms");
    let cert = dir.join("forms.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .arg("-keyout")
        .arg(dir.join("forms.key"))
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=carol/title=Dr/GN=Carol/SN=Liddell/organizationIdentifier=VATDE-123/street=Main St 1",
            "-addext",
            "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:carol@corp.example,\
             otherName:1.2.3.5;INTEGER:5,IP:10.1.2.3",
            "-addext",
            "extendedKeyUsage=clientAuth",
            "-addext",
            "certificatePolicies=1.2.3.4",
        ])
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = text(&cli(&["show", s(&cert)]));
    for line in [
        "subject.title=Dr",
        "subject.GN=Carol",
        "subject.SN=Liddell",
        "subject.organizationIdentifier=VATDE-123",
        "subject.street=\"Main St 1\"",
        "san.ip=10.1.2.3",
        "san.upn=carol@corp.example",
        "san.other.1.2.3.5=\"#020105\"",
        "eku=1.3.6.1.5.5.7.3.2",
        "policy=1.2.3.4",
    ] {
        assert!(shown.lines().any(|l| l == line), "missing {line:?} in\n{shown}");
    }
    let mut policy = String::new();
    for line in shown.lines().filter(|l| !l.starts_with('#')) {
        policy.push_str(&format!("allow GET /{} {line}\n", policy.lines().count()));
    }
    policy.push_str("allow GET /net san.ip=10.0.0.0/8 eku=clientAuth\n");
    std::fs::write(dir.join("self.policy"), &policy).unwrap();
    for n in (0..policy.lines().count() - 1).map(|n| n.to_string()).chain(["net".to_string()]) {
        let out = cli(&[
            "check",
            "--policy",
            s(&dir.join("self.policy")),
            "--cert",
            s(&cert),
            "--path",
            &format!("/{n}"),
        ]);
        assert_eq!(out.status.code(), Some(0), "line {n} of\n{policy}\n{}", text(&out));
    }
}

#[test]
fn check_and_show_take_the_verified_chain() {
    let dir = common::scratch("cli-chain");
    let pki = common::make_pki(&dir.join("pki"));
    let ca = pki.path("ca.pem");
    let rogue = pki.path("rogue-ca.pem");
    let ca_shown = text(&cli(&["show", s(&ca)]));
    let ca_spki = ca_shown.lines().find_map(|l| l.strip_prefix("spki=")).expect("the CA's spki").to_string();
    // The leaf and its CA in one bundle, as a server's verified chain is.
    let bundle = dir.join("bundle.pem");
    let leaf_pem = std::fs::read_to_string(pki.cert("alice")).unwrap();
    std::fs::write(&bundle, leaf_pem + &std::fs::read_to_string(&ca).unwrap()).unwrap();

    let shown = text(&cli(&["show", "--chain", s(&bundle), s(&pki.cert("alice"))]));
    for line in [format!("ca.spki={ca_spki}"), format!("issuer.spki={ca_spki}")] {
        assert!(shown.lines().any(|l| l == line), "missing {line:?} in\n{shown}");
    }
    assert!(shown.lines().any(|l| l.starts_with("ca.fingerprint=") && l.len() == 15 + 64), "{shown}");
    assert_eq!(shown.lines().filter(|l| l.starts_with("ca.spki=")).count(), 1, "the leaf is skipped");
    let bare = text(&cli(&["show", s(&pki.cert("alice"))]));
    assert!(!bare.contains("ca.spki="), "{bare}");

    let policy = dir.join("pin.policy");
    std::fs::write(&policy, format!("allow GET /** ca.spki={ca_spki}\n")).unwrap();
    let alice = pki.cert("alice");
    let run = |chain: Option<&Path>| {
        let mut args = vec!["check", "--policy", s(&policy), "--cert", s(&alice), "--path", "/x"];
        if let Some(chain) = chain {
            args.extend(["--chain", s(chain)]);
        }
        cli(&args).status.code()
    };
    assert_eq!(run(Some(&bundle)), Some(0));
    assert_eq!(run(Some(&ca)), Some(0));
    assert_eq!(run(Some(&rogue)), Some(1), "another CA's key does not match");
    assert_eq!(run(None), Some(1), "no chain, no CA");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(run(Some(&empty)), Some(2), "a chain file with no certificate is an error");
}

#[test]
fn check_wants_a_path_from_the_root_or_a_target_as_a_client_sends_it() {
    let dir = common::scratch("cli-target");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let alice = pki.cert("alice");
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--policy", s(&policy), "--cert", s(&alice)];
        args.extend_from_slice(extra);
        cli(&args)
    };

    let out = check(&["--path", "users/alice/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(text(&out), "--path users/alice/x: a path must start with /\n");

    // The query goes, `%2e%2e` is `..`, and the path decided is the one the servers hand on.
    let out = check(&["--target", "/users/bob/%2e%2e//alice/./x?y=/admin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("CA00012: allowed by cert-authz: GET /users/alice/x, "), "{}", text(&out));

    // Where the server answers by itself, the module is never asked: refused.
    for (target, status) in [
        ("/status\x01", "400"),
        ("/status x", "400"),
        ("/users/../../status", "400"),
        ("/status%zz", "400"),
        ("/status%00", "400 (nginx) or 404 (Apache)"),
    ] {
        let out = check(&["--target", target]);
        assert_eq!(out.status.code(), Some(1), "{target}: {}", text(&out));
        assert!(
            text(&out).starts_with(&format!("refused by the server with {status} before any module runs: ")),
            "{target}: {}",
            text(&out)
        );
    }

    // Only an encoded slash parts the servers: Apache refuses it, nginx decodes it.
    let out = check(&["--target", "/users/alice%2Fx"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("give --server apache or --server nginx"), "{}", text(&out));
    let out = check(&["--target", "/users/alice%2Fx", "--server", "apache"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).starts_with("refused by the server with 404"), "{}", text(&out));
    let out = check(&["--target", "/users/alice%2Fx", "--server", "nginx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("GET /users/alice/x, "), "{}", text(&out));

    // Decoded characters that a backend may split at, or that are no UTF-8, are the module's refusals.
    for target in
        ["/users/alice/x%3Bjsessionid=1", "/users/alice/%5Cx", "/users/alice/%252Fx", "/users/alice/%FF"]
    {
        let out = check(&["--target", target]);
        assert_eq!(out.status.code(), Some(1), "{target}: {}", text(&out));
        assert!(text(&out).contains("reason: path is not unambiguous"), "{target}: {}", text(&out));
    }

    // An argument that is no UTF-8 is an error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_cert-authz"))
        .args(["check", "--policy", s(&policy), "--cert", s(&alice), "--target"])
        .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/users/alice/\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(text(&out), "an argument is not UTF-8 text\n");

    for (args, message) in [
        (&["--target", "users/alice"][..], "--target users/alice: a request target must start with /"),
        (&["--target", "/status", "--path", "/status"], "--path and --target are two ways to say one thing"),
        (&["--path", "/status", "--server", "nginx"], "--server goes with --target"),
        (&["--target", "/status", "--server", "lighttpd"], "--server lighttpd: apache or nginx"),
        (&[], "--path or --target is required"),
    ] {
        let out = check(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).starts_with(message), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_file_that_holds_no_certificate_is_an_error_not_a_deny() {
    let dir = common::scratch("cli-nocert");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let mut bad_base64 = std::fs::read(pki.cert("alice")).unwrap();
    bad_base64.splice(40..44, b"!!!!".iter().copied());
    let files: [(&str, Vec<u8>, &str); 5] = [
        ("empty.pem", Vec::new(), "the file is empty"),
        ("key.pem", std::fs::read(pki.key("alice")).unwrap(), "no -----BEGIN CERTIFICATE----- block"),
        ("bad-base64.pem", bad_base64, "the PEM body is not base64"),
        ("text.der", b"hello\n".to_vec(), "neither PEM nor one DER SEQUENCE"),
        ("short.der", vec![0x30, 0x82, 0x01], "neither PEM nor one DER SEQUENCE"),
    ];
    for (name, bytes, why) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let want = format!("{}: holds no certificate: {why}\n", path.display());
        let out = cli(&["check", "--policy", s(&policy), "--cert", s(&path), "--path", "/status"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert_eq!(text(&out), want, "{name}");
        let out = cli(&["show", s(&path)]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert_eq!(text(&out), want, "{name}");
    }
}

#[test]
fn test_names_every_malformed_line_after_running_every_case() {
    let dir = common::scratch("cli-cases");
    common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    let cases = dir.join("t.cases");
    std::fs::write(
        &cases,
        "ALLOW pki/alice.pem GET /status\n\
         ALLOW pki/alice.pem GET\n\
         MAYBE pki/alice.pem GET /status\n\
         # a comment\n\
         DENY pki/alice.pem GET status\n\
         DENY pki/nobody.pem GET /status\n\
         DENY empty.pem GET /status\n\
         ALLOW pki/alice.pem GET /admin\n",
    )
    .unwrap();
    let out = cli(&["test", "--policy", s(&policy), s(&cases)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let c = s(&cases);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{stderr}");
    assert_eq!(
        lines[0],
        format!("{c}:2: expected `ALLOW|DENY CERT METHOD PATH`, not `ALLOW pki/alice.pem GET`")
    );
    assert_eq!(lines[1], format!("{c}:3: `MAYBE` is neither ALLOW nor DENY"));
    assert_eq!(lines[2], format!("{c}:5: the path `status` must start with /"));
    assert!(lines[3].starts_with(&format!("{c}:6: cannot read ")), "{stderr}");
    assert_eq!(
        lines[4],
        format!("{c}:7: {}: holds no certificate: the file is empty", dir.join("empty.pem").display())
    );
    assert_eq!(lines[5], format!("{c}: 5 line(s) are not cases that can run; see above"));
    // The well-formed cases ran, the failing one among them.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("FAIL {c}:8: expected ALLOW pki/alice.pem GET /admin, got DENY")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");

    for (name, body) in [("empty.cases", ""), ("comments.cases", "# nothing yet\n\n")] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let out = cli(&["test", "--policy", s(&policy), s(&path)]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(
            text(&out).starts_with(&format!("{}: no cases (one `ALLOW|DENY", path.display())),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn lint_warns_of_what_compiles_but_is_probably_a_mistake() {
    let dir = common::scratch("cli-lint-warn");
    let policy = dir.join("w.policy");
    std::fs::write(
        &policy,
        "group ops subject.OU=ops\n\
         group unused subject.OU=nobody\n\
         allow GET /a group=ops\n\
         allow GET /a group=ops\n\
         allow GET /b subject=\"O = Example Corp, CN = alice\"\n\
         allow GET /c serial=01\n\
         allow GET /d serial=02 issuer.CN=\"Example Test CA\"\n\
         group pinned issuer.CN=x serial=03\n\
         allow GET /e group=pinned\n\
         group serials serial=04\n\
         allow GET /f group=serials ca.spki=0000000000000000000000000000000000000000000000000000000000000000\n\
         allow GET /g group=serials\n\
         allow GET /h subject=CN=alice,O=x\n",
    )
    .unwrap();
    let p = s(&policy);
    let out = cli(&["lint", p]);
    assert_eq!(out.status.code(), Some(0), "warnings do not fail: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{p}: ok, 9 rules\n"));
    let serial =
        "warning: `serial=` without a matcher of the issuer: serial numbers are unique only per CA, \
                  so another trusted CA's certificate may carry the same one; add issuer=, issuer.spki= or \
                  ca.spki= to";
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().collect::<Vec<_>>(),
        vec![
            format!("{p}:2:1: warning: group `unused` is never used: no allow or deny statement names group=unused"),
            format!("{p}:4:1: warning: the same statement as at line 3"),
            format!(
                "{p}:5:23: warning: `O = Example Corp, CN = alice` is in openssl's display order (most \
                 significant part first); subject= takes RFC 4514's, most specific first: `CN=alice,O=Example Corp`"
            ),
            format!("{p}:6:14: {serial} the statement"),
            format!("{p}:10:15: {serial} this line or the statements that use the group"),
        ]
    );

    // A statement of another file: named with its file.  A file included twice is not
    // its statements written twice.
    let other = dir.join("other.policy");
    std::fs::write(&other, "allow GET /a group=ops\n").unwrap();
    let main = dir.join("main.policy");
    std::fs::write(&main, "group ops subject.OU=ops\ninclude other.policy\nallow GET /a group=ops\n")
        .unwrap();
    let out = cli(&["lint", s(&main)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{}:3:1: warning: the same statement as at {}:1\n", main.display(), other.display())
    );
    std::fs::write(&main, "group ops subject.OU=ops\ninclude other.policy\ninclude other.policy\n").unwrap();
    let out = cli(&["lint", s(&main)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{}:3:1: warning: the same statement as at line 2\n", main.display())
    );
    // What a file included twice says twice is said once.
    std::fs::write(&other, "allow GET /a group=ops\nallow GET /a group=ops\n").unwrap();
    std::fs::write(&main, "group ops subject.OU=ops\ninclude other.policy\n  include other.policy\n")
        .unwrap();
    let out = cli(&["lint", s(&main)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:3:3: warning: the same statement as at line 2\n{}:2:1: warning: the same statement as at line 1\n",
            main.display(),
            other.display()
        )
    );

    // openssl's old one-line form does not compile; the error says how to write it.
    let slash = dir.join("slash.policy");
    std::fs::write(&slash, "allow GET / subject=\"/O=Example Corp/CN=alice\"\n").unwrap();
    let out = cli(&["lint", s(&slash)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        text(&out),
        format!(
            "{}:1:22: bad subject name: `/O=Example Corp/CN=alice` is openssl's old /TYPE=value form; write \
             it as RFC 4514 does, most specific part first: `CN=alice,O=Example Corp`\n",
            slash.display()
        )
    );

    // A UTF-8 byte order mark is skipped: columns count from after it.
    let bom = dir.join("bom.policy");
    std::fs::write(&bom, "\u{feff}allow GET / any\n").unwrap();
    let out = cli(&["lint", s(&bom)]);
    assert_eq!(text(&out), format!("{}: ok, 1 rules\n", bom.display()));
    let alice = common::make_pki(&dir.join("pki")).cert("alice");
    std::fs::write(&bom, "\u{feff}allow GET /a subject.CN=bob\n").unwrap();
    let out = cli(&["check", "--policy", s(&bom), "--cert", s(&alice), "--path", "/a", "--explain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("bom.policy:1: allow GET /a subject.CN=bob\n"), "{}", text(&out));
    std::fs::write(&bom, "\u{feff}allow GET / bogus\n").unwrap();
    let out = cli(&["lint", s(&bom)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).starts_with(&format!("{}:1:13: expected `any`", bom.display())), "{}", text(&out));
}

/// Runs the CLI with its stdout a pipe whose reader is already gone.
fn cli_into_closed_pipe(args: &[&str]) -> Output {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe() fills both descriptors; the read end is closed at once and
    // the write end owned by the File, which the child's stdout takes over.
    let writer = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
        std::fs::File::from_raw_fd(fds[1])
    };
    Command::new(env!("CARGO_BIN_EXE_cert-authz"))
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("running cert-authz")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_the_decision_as_status() {
    let dir = common::scratch("cli-pipe");
    let pki = common::make_pki(&dir.join("pki"));
    let policy = dir.join("p.policy");
    std::fs::write(&policy, common::SHARED_POLICY).unwrap();
    let alice = pki.cert("alice");
    for (args, status) in [
        (vec!["show", s(&alice)], 0),
        (vec!["check", "--policy", s(&policy), "--cert", s(&alice), "--path", "/status"], 0),
        (vec!["check", "--policy", s(&policy), "--cert", s(&alice), "--path", "/admin", "--explain"], 1),
        (vec!["lint", s(&policy)], 0),
        (vec!["--help"], 0),
    ] {
        let out = cli_into_closed_pipe(&args);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// For each target, the status the server itself answers with the shared
/// policy, and the status `check --target --server NAME` stands for: 200 for
/// an allow, 403 for a deny, the server's own status where it refuses first.
fn target_statuses<S: common::server::Server>(
    name: &str,
    http2: bool,
    targets: &[&str],
) -> Vec<(String, u16, u16)> {
    let mut server = S::new(if http2 { "target-h2" } else { "target" });
    let policy = server.policy_file("target.policy", common::SHARED_POLICY);
    let site = common::server::Site { http2, policy: policy.to_str(), ..Default::default() };
    server.configure(&site);
    server.start();
    let alice = server.pki().cert("alice");
    let mut out = Vec::new();
    for target in targets {
        let served = server.request_with(Some("alice"), "GET", target, &["--path-as-is"]).status;
        let said = cli(&[
            "check",
            "--policy",
            s(&policy),
            "--cert",
            s(&alice),
            "--target",
            target,
            "--server",
            name,
        ]);
        let stdout = String::from_utf8_lossy(&said.stdout).into_owned();
        let claimed = match said.status.code() {
            Some(0) => 200,
            Some(1) => match stdout.strip_prefix("refused by the server with ") {
                Some(rest) => rest[..3].parse().unwrap(),
                None => 403,
            },
            _ => panic!("{name} {target}: {}", text(&said)),
        };
        out.push((target.to_string(), served, claimed));
    }
    server.stop();
    out
}

#[test]
fn check_target_refuses_and_decides_where_apache_and_nginx_do() {
    // Every kind of target --target models (curl sends a `#` as it is not: left out).
    let targets = [
        "/status",
        "/status?x=/admin",
        "/st%61tus",
        "/status/",
        "/status/.",
        "/x/../status",
        "/x/%2e%2e/status",
        "/x/.%2E/status",
        "//status",
        "/./status",
        "/../status",
        "/%2e%2e/status",
        "/users/alice/a",
        "/users/bob/../alice/a",
        "/users/alice/..",
        "/users/alice%2Fa",
        "/users/x%2F..%2Falice/a",
        "/users/alice/a%2F..%2F..%2Fbob/a",
        "/status%00",
        "/status%zz",
        "/status%2",
        "/users/alice/%3Bx",
        "/users/alice/x;y",
        "/users/alice/%5Cx",
        "/users/alice/%252Fx",
        "/users/alice/%FF",
        "/users/alice/%3Fx",
        "/admin/secrets/../x",
    ];
    // HTTP/1.1 and HTTP/2 (`:path`) alike.
    let (mut statuses, mut encoded_slash) = (Vec::new(), Vec::new());
    for http2 in [false, true] {
        let runs = [
            ("apache", target_statuses::<common::apache::Apache>("apache", http2, &targets)),
            ("nginx", target_statuses::<common::nginx::Nginx>("nginx", http2, &targets)),
        ];
        for (name, results) in runs {
            for (target, served, claimed) in results {
                assert_ne!(served, 0, "{name} {target}: no answer");
                assert_eq!(
                    claimed, served,
                    "{name}, HTTP/2 {http2}, {target}: the CLI says {claimed}, the server answered {served}"
                );
                statuses.push(served);
                if target == "/users/alice%2Fa" {
                    encoded_slash.push((name, served));
                }
            }
        }
    }
    // The run covers allows, denies and the servers' own refusals, and the one difference.
    for status in [200, 400, 403, 404] {
        assert!(statuses.contains(&status), "no {status} among {statuses:?}");
    }
    assert_eq!(encoded_slash, [("apache", 404), ("nginx", 200), ("apache", 404), ("nginx", 200)]);
}
