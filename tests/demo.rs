//! `make demo` (demo/run.sh) as a newcomer runs it: the real Apache and
//! nginx with the modules of `make build`, on loopback ports.  Its output
//! shows the policy with line numbers and, for both servers, a table whose
//! last column says why (the allowing rule's line, or the refusal's reason
//! and rule); the demo CA's key and every other key are 0600; and nothing
//! the demo made is left when it ends.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::server::built_module;
use common::{root, scratch};

fn demo(script: &str, dir: &Path, shared: bool) -> String {
    built_module("mod_cert_authz.so", &["module/apache/mod_cert_authz.c"]);
    built_module("ngx_http_cert_authz_module.so", &["module/nginx/ngx_http_cert_authz_module.c"]);
    let mut cmd = Command::new(root().join("demo").join(script));
    cmd.env("CERT_AUTHZ_DEMO_DIR", dir).env_remove("CERT_AUTHZ_DEMO_SHARED");
    if shared {
        cmd.env("CERT_AUTHZ_DEMO_SHARED", "1");
    }
    let out: Output = cmd.output().expect("running the demo");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo/{script}: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The rows of the "who got what" tables: (client, method, path, code, why).
fn rows(text: &str) -> Vec<(String, String, String, String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("== who got what") {
            in_table = true;
            continue;
        }
        if !in_table || line.trim().starts_with("client ") {
            continue;
        }
        if line.trim().is_empty() {
            in_table = false;
            continue;
        }
        let mut cols = line.split_whitespace();
        let mut next = || cols.next().unwrap_or_default().to_string();
        let (client, method, path, code) = (next(), next(), next(), next());
        let why =
            line.split_once(&format!(" {code}  ")).map(|(_, w)| w.trim().to_string()).unwrap_or_default();
        rows.push((client, method, path, code, why));
    }
    rows
}

#[test]
fn the_demo_shows_the_numbered_policy_and_why_for_both_servers_and_leaves_nothing() {
    let dir = scratch("demo");
    let _ = fs::remove_dir(&dir);
    let text = demo("run.sh", &dir, false);

    // The policy, every line numbered as the rules name them.
    let policy = fs::read_to_string(root().join("demo/cert-authz.policy")).unwrap();
    for (n, line) in policy.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let numbered = format!("{:>3}  {line}", n + 1);
        assert_eq!(
            text.matches(&numbered).count(),
            2,
            "the policy line {numbered:?}, once per server:\n{text}"
        );
    }
    let deny_line = policy.lines().position(|l| l.starts_with("deny")).unwrap() + 1;
    let status_line = policy.lines().position(|l| l.contains("/status")).unwrap() + 1;

    // Both servers' tables, with the same rows and the same reasons.
    let rows = rows(&text);
    assert_eq!(rows.len(), 22, "two tables of 11 requests:\n{text}");
    let (apache, nginx) = rows.split_at(11);
    assert_eq!(apache, nginx, "Apache and nginx tell different stories:\n{text}");
    let row = |client: &str, method: &str, path: &str| {
        apache
            .iter()
            .find(|r| r.0 == client && r.1 == method && r.2 == path)
            .unwrap_or_else(|| panic!("no row {client} {method} {path}:\n{text}"))
    };
    let r = row("alice", "GET", "/status");
    assert_eq!(
        (r.3.as_str(), r.4.as_str()),
        ("200", &*format!("allowed by line {status_line}; the backend saw user=alice"))
    );
    let r = row("opsbot", "GET", "/admin/secrets/key");
    assert_eq!((r.3.as_str(), r.4.as_str()), ("403", &*format!("deny rule matched (line {deny_line})")));
    let r = row("alice", "GET", "/users/bob/profile");
    assert_eq!((r.3.as_str(), r.4.as_str()), ("403", "no allow rule matched"));
    let r = row("rogue", "GET", "/status");
    assert_eq!((r.3.as_str(), r.4.as_str()), ("403", "client certificate not verified by the server"));
    let r = row("(none)", "GET", "/status");
    assert_eq!((r.3.as_str(), r.4.as_str()), ("403", "no client certificate"));
    for r in apache {
        assert!(!r.4.is_empty(), "a row without a reason: {r:?}");
    }

    // Everything the demo made is gone, the directory too.
    assert!(
        !dir.exists(),
        "the demo left {:?}",
        fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
}

#[test]
fn the_demo_pki_keeps_its_keys_to_their_owner() {
    // Shared, as demo/run.sh shares it: the PKI outlives one server's demo.
    let dir = scratch("demo-pki");
    demo("apache.sh", &dir, true);
    let pki = dir.join("pki");
    let mut keys = 0;
    for entry in fs::read_dir(&pki).unwrap().flatten() {
        let path = entry.path();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".key") {
            keys += 1;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
        } else {
            assert!(name.ends_with(".pem"), "an unexpected file in the PKI: {name}");
            assert_eq!(mode, 0o644, "{name} is {mode:o}");
        }
    }
    assert!(keys >= 8 && pki.join("ca.key").exists(), "the demo CA key and the clients' keys: {keys}");
    // The server root went with the server; only the shared PKI is left.
    let left: Vec<String> =
        fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(left, ["pki"]);

    // A second run reuses it and, not having made it, leaves it.
    let text = demo("nginx.sh", &dir, false);
    assert!(text.contains("reusing the demo PKI"), "{text}");
    assert!(pki.join("ca.key").exists());
    assert_eq!(fs::metadata(pki.join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600);
}
