//! The policy and case table that the CLI, Apache and nginx must decide alike.

/// The policy behind the shared case table, written into `dir/shared.policy`.
pub const SHARED_POLICY: &str = r#"# The policy that the CLI, Apache and nginx must decide alike.
group ops      subject.O="Example Corp" subject.OU=ops
allow GET      /status                  any
allow *        /admin/**                group=ops
allow GET,POST /invoices/**             san.uri=spiffe://example.org/ns/prod/sa/billing
allow *        /users/{subject.CN}/**   issuer.CN="Example Test CA"
allow GET      /corp/**                 subject.O="Example Corp"
deny  *        /admin/secrets/**        any
"#;

/// (expected, client, method, path): the one truth of issue 4.
pub const SHARED_CASES: &[(&str, &str, &str, &str)] = &[
    ("ALLOW", "alice", "GET", "/status"),
    ("ALLOW", "alice", "HEAD", "/status"),
    ("DENY", "alice", "POST", "/status"),
    ("DENY", "alice", "GET", "/admin/"),
    ("ALLOW", "opsbot", "GET", "/admin"),
    ("ALLOW", "opsbot", "DELETE", "/admin/users/7"),
    ("DENY", "opsbot", "GET", "/admin/secrets/key"),
    ("ALLOW", "billing", "POST", "/invoices/2026/11"),
    ("DENY", "billing", "PUT", "/invoices/2026/11"),
    ("DENY", "alice", "GET", "/invoices/1"),
    ("ALLOW", "alice", "GET", "/users/alice/profile"),
    ("DENY", "alice", "GET", "/users/bob/profile"),
    ("ALLOW", "alice", "GET", "/corp/handbook"),
    ("DENY", "reporter", "GET", "/corp/handbook"),
    ("DENY", "mallory", "GET", "/corp/handbook"),
    ("DENY", "reporter", "GET", "/nowhere"),
];
