//! The end-to-end scenarios that apply to both servers, written once and
//! run against the real Apache httpd and nginx, as nginx-tests runs one .t
//! file per behaviour.  Each scenario is a function generic over
//! `common::server::Server`; `both!` makes it two tests, `SCENARIO::apache`
//! and `SCENARIO::nginx`.  Each configures its server with a `Site`, which
//! each server writes in its own dialect, and reads what the backend saw
//! from the server's echo backend (`NAME=value` lines).
//!
//! Each test starts its own server on a free loopback port in a scratch
//! directory and stops it by its pid when it ends, also when it panics.  A
//! missing server or module is a failure, never a skip: run `make build`
//! first (`make test` does).  What only one server has (Apache's CGI
//! environment and `Require cert-authz`, nginx's variables, `try_files`,
//! server{} verification) is tested in tests/apache.rs and tests/nginx.rs.

mod common;

use std::fs;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::both;
use common::pki::{hostile_client, twin_ca_client};
use common::server::{Kind, LogLevel, Scope, Server, Site, Verify};
use common::{env_of, Reply, SHARED_CASES, SHARED_POLICY};

/// The user the backend was handed: CERT_AUTHZ_USER, which must be what
/// the server itself calls the user (REMOTE_USER; nginx's `$remote_user`).
fn backend_user(reply: &Reply) -> String {
    let user = env_of(reply, "CERT_AUTHZ_USER");
    assert_eq!(env_of(reply, "REMOTE_USER"), user, "{reply:?}");
    user
}

/// The subject field of a deny line.
fn subject_of(line: &str) -> &str {
    let start = line.find("subject \"").map(|i| i + "subject \"".len()).unwrap_or_else(|| panic!("{line}"));
    let len = line[start..].find("\", reason: ").unwrap_or_else(|| panic!("{line}"));
    &line[start..start + len]
}

// ---- the shared case table -------------------------------------------------

both!(shared_cases_decide_as_the_table_says, "shared");

fn shared_cases_decide_as_the_table_says<S: Server>(name: &str) {
    let mut server = S::new(name);
    let policy = server.policy_file("shared.policy", SHARED_POLICY);
    server.configure(&Site {
        verify: Verify::OptionalNoCa,
        policy: Some("shared.policy"),
        root: Scope { enforce: Some("on"), user: Some("subject.CN"), ..Scope::default() },
        ..Site::default()
    });
    server.start();

    let mut failures = Vec::new();
    let mut denied = 0;
    for protocol in ["--http1.1", "--http2"] {
        for (expected, client, method, path) in SHARED_CASES {
            // HEAD stays on HTTP/1.1 (see common::curl).
            let extra: &[&str] = if *method == "HEAD" { &[] } else { &[protocol] };
            let reply = server.request_with(Some(client), method, path, extra);
            let want = if *expected == "ALLOW" { 200 } else { 403 };
            if reply.status != want {
                failures
                    .push(format!("{protocol} {expected} {client} {method} {path}: got {}", reply.status));
            } else if want == 200 && *method != "HEAD" {
                assert_eq!(backend_user(&reply), *client, "{client} {method} {path}");
            }
            if want == 403 {
                denied += 1;
            }
        }
    }
    assert!(failures.is_empty(), "cases failed:\n{}\n{}", failures.join("\n"), server.error_log());

    // No certificate, and a certificate from an untrusted CA with alice's
    // very name (optional_no_ca lets it through the handshake): both denied
    // on a path that `any` verified client may see.
    assert_eq!(server.status(Some("alice"), "GET", "/status"), 200);
    assert_eq!(server.status(None, "GET", "/status"), 403);
    assert_eq!(server.status(Some("rogue"), "GET", "/status"), 403);
    assert_eq!(server.status(Some("rogue"), "GET", "/users/alice/profile"), 403);
    denied += 3;

    // The query string is never matched, and the server's normalized path
    // is the one decided on.
    assert_eq!(server.status(Some("alice"), "GET", "/status?/admin/x"), 200);
    let r = server.request_with(Some("alice"), "GET", "/status/../admin/x", &["--path-as-is"]);
    assert_eq!(r.status, 403, "{r:?}");
    denied += 1;
    let r = server.request_with(Some("opsbot"), "GET", "/corp/../admin/x", &["--path-as-is"]);
    assert_eq!(r.status, 200, "{r:?}");

    // Every deny is one error-level line naming the client, method, path,
    // subject, reason and, when a statement decided, its FILE:LINE.
    let log = server.error_log();
    let lines = server.deny_lines(&log);
    assert_eq!(lines.len(), denied, "one line per deny:\n{log}");
    let (level, client) = server.deny_line_context();
    for line in &lines {
        assert!(line.contains(level), "not at {level}: {line}");
        assert!(client.iter().any(|c| line.contains(c)), "no client {client:?}: {line}");
    }
    let secrets = server.denies_of(&log, "/admin/secrets/key");
    assert_eq!(secrets.len(), 2, "{log}");
    // the deny statement is the 8th line of SHARED_POLICY
    let want = format!(
        "{}GET /admin/secrets/key, subject \"CN=opsbot,OU=ops,O=Example Corp\", reason: deny rule matched, \
         rule {}:8",
        server.deny_words(),
        policy.display()
    );
    assert!(secrets.iter().all(|l| l.contains(&want)), "no {want}:\n{log}");
    let nowhere = server.denies_of(&log, "/nowhere");
    assert!(
        !nowhere.is_empty() && nowhere.iter().all(|l| l.contains("subject \"CN=reporter\", reason: ")),
        "{log}"
    );
    assert!(nowhere.iter().all(|l| l.contains(", rule -")), "{log}");

    // The request without a certificate and the untrusted certificate.
    let mut subjects: Vec<&str> = server
        .denies_of(&log, "/status")
        .into_iter()
        .filter(|l| l.contains("GET /status,"))
        .map(subject_of)
        .collect();
    subjects.sort();
    let mut want = vec!["-".to_string(), server.unverified_subject("CN=alice,OU=users,O=Example Corp")];
    want.sort();
    assert_eq!(subjects, want, "{log}");
}

// ---- the user ------------------------------------------------------------------

both!(the_user_handed_on_is_the_value_that_was_authorized, "user");

fn the_user_handed_on_is_the_value_that_was_authorized<S: Server>(name: &str) {
    let mut server = S::new(name);
    server.configure(&Site {
        root: Scope {
            enforce: Some("on"),
            user: Some("subject.CN"),
            rules: &[
                "allow GET /ops/** subject.CN=opsbot",
                "allow GET /home/{subject.CN}/** any",
                "allow GET /any/** any",
            ],
            ..Scope::default()
        },
        ..Site::default()
    });
    server.start();

    let user = |client: &str, path: &str| {
        let reply = server.request(Some(client), "GET", path);
        assert_eq!(reply.status, 200, "{client} {path}: {reply:?}");
        backend_user(&reply)
    };
    // twocn has CN=admin and CN=opsbot, in that order.
    assert_eq!(user("twocn", "/ops/x"), "opsbot");
    assert_eq!(user("twocn", "/home/admin/x"), "admin");
    assert_eq!(user("twocn", "/home/opsbot/x"), "opsbot");
    assert_eq!(user("alice", "/any/x"), "alice");
    // `any` authorizes neither CN more than the other: refused.
    assert_eq!(server.status(Some("twocn"), "GET", "/any/x"), 403);

    let log = server.error_log();
    assert_eq!(server.deny_lines(&log).len(), 1, "{log}");
    let lines = server.denies_of(&log, "/any/x");
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("several values"), "{log}");
}

// ---- certificates ----------------------------------------------------------------

both!(a_verified_certificate_that_the_core_refuses_is_denied, "refused-cert");

fn a_verified_certificate_that_the_core_refuses_is_denied<S: Server>(name: &str) {
    let mut server = S::new(name);
    let (ca_pem, cert, key) = hostile_client(server.dir());
    // trust the test CA and the hostile one
    let clients = server.dir().join("clients.pem");
    fs::write(&clients, fs::read_to_string(server.pki().path("ca.pem")).unwrap() + &ca_pem).unwrap();
    server.configure(&Site {
        client_ca: Some(&clients),
        root: Scope {
            enforce: Some("on"),
            rules: &["allow GET /** subject.O=\"Example Corp\""],
            ..Scope::default()
        },
        ..Site::default()
    });
    server.start();

    assert_eq!(server.status(Some("alice"), "GET", "/x"), 200);
    let reply = server.request_with(
        None,
        "GET",
        "/x",
        &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()],
    );
    assert_eq!(reply.status, 403, "a CN with a control character: {reply:?}");
    let log = server.error_log();
    let lines = server.deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(subject_of(lines[0]), server.refused_subject(), "{log}");
}

// ---- a CA pinned by its key ------------------------------------------------------

both!(a_ca_is_pinned_by_its_key_not_by_its_name, "capin");

/// The server trusts the test CA and a second CA of the very same name (as
/// when one vhost trusts a partner's CA): `issuer.CN` cannot tell their
/// certificates apart, `ca.spki` of the verified chain can.
fn a_ca_is_pinned_by_its_key_not_by_its_name<S: Server>(name: &str) {
    let mut server = S::new(name);
    let (twin_pem, cert, key) = twin_ca_client(server.dir());
    let clients = server.dir().join("clients.pem");
    fs::write(&clients, fs::read_to_string(server.pki().path("ca.pem")).unwrap() + &twin_pem).unwrap();
    let ca = cert_authz::Identity::from_pem(&fs::read(server.pki().path("ca.pem")).unwrap()).unwrap();
    let spki = ca.values(cert_authz::Attr::parse("spki").unwrap())[0].to_string();
    let by_key = format!("allow GET /key/** ca.spki={spki}");
    server.configure(&Site {
        client_ca: Some(&clients),
        root: Scope {
            enforce: Some("on"),
            rules: &[&by_key, "allow GET /name/** issuer.CN=\"Example Test CA\""],
            ..Scope::default()
        },
        ..Site::default()
    });
    server.start();

    let twin = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    assert_eq!(server.status(Some("alice"), "GET", "/key/x"), 200);
    assert_eq!(server.request_with(None, "GET", "/key/x", &twin).status, 403, "the twin CA's alice");
    // by name, both pass: the reason to pin the key
    assert_eq!(server.status(Some("alice"), "GET", "/name/x"), 200);
    assert_eq!(server.request_with(None, "GET", "/name/x", &twin).status, 200);
    let log = server.error_log();
    let lines = server.deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /key/x,") && lines[0].contains("no allow rule matched"), "{log}");
}

// ---- scopes ----------------------------------------------------------------------

both!(scopes_inherit_or_replace_the_policy, "scopes");

fn scopes_inherit_or_replace_the_policy<S: Server>(name: &str) {
    let mut server = S::new(name);
    server.policy_file(
        "site.policy",
        "allow GET /** subject.CN=alice\n\
         allow GET /ops/** group=ops\n\
         group ops subject.OU=ops\n",
    );
    server.configure(&Site {
        verify: Verify::Optional,
        policy: Some("site.policy"),
        root: Scope { enforce: Some("on"), user: Some("subject.CN"), ..Scope::default() },
        scopes: &[
            Scope {
                // a rule that names a group defined by a later rule of the same scope
                rules: &[
                    "allow GET /nested/** group=readers",
                    "group readers subject.CN=alice",
                    "group readers subject.CN=reporter",
                ],
                ..Scope::at("/nested/")
            },
            // sets nothing: inherits /nested/'s rules
            Scope::at("/nested/inner/"),
            Scope {
                rules: &["allow GET /nested/narrow/** subject.CN=reporter"],
                ..Scope::at("/nested/narrow/")
            },
            Scope { enforce: Some("off"), ..Scope::at("/nested/narrow/off/") },
            Scope { user: Some("subject.OU"), ..Scope::at("/ops/") },
        ],
        ..Site::default()
    });
    server.start();

    // the whole server has the server's policy
    assert_eq!(server.status(Some("alice"), "GET", "/anything"), 200);
    assert_eq!(server.status(Some("reporter"), "GET", "/anything"), 403);
    // /nested/ replaces it whole, /nested/inner/ inherits /nested/'s
    assert_eq!(server.status(Some("alice"), "GET", "/nested/a"), 200);
    assert_eq!(server.status(Some("alice"), "GET", "/nested/status"), 200);
    assert_eq!(server.status(Some("reporter"), "GET", "/nested/inner/a"), 200);
    assert_eq!(server.status(Some("opsbot"), "GET", "/nested/inner/a"), 403);
    assert_eq!(server.status(Some("alice"), "POST", "/nested/a"), 403);
    // /nested/narrow/ replaces it again: alice's allow is gone there
    assert_eq!(server.status(Some("alice"), "GET", "/nested/narrow/x"), 403);
    assert_eq!(server.status(Some("reporter"), "GET", "/nested/narrow/x"), 200);
    // off where it says off, even without a certificate
    assert_eq!(server.status(None, "GET", "/nested/narrow/off/x"), 200);
    // the user attribute is inherited and overridden like the others
    let reply = server.request(Some("alice"), "GET", "/x");
    assert_eq!((reply.status, backend_user(&reply)), (200, "alice".to_string()), "{reply:?}");
    let reply = server.request(Some("opsbot"), "GET", "/ops/x");
    assert_eq!((reply.status, backend_user(&reply)), (200, "ops".to_string()), "{reply:?}");
}

// ---- report mode -------------------------------------------------------------------

both!(report_mode_decides_logs_and_exports_but_never_refuses, "report");

fn report_mode_decides_logs_and_exports_but_never_refuses<S: Server>(name: &str) {
    let mut server = S::new(name);
    let rule = "allow GET /report/open/** any";
    server.configure(&Site {
        verify: Verify::Optional,
        root: Scope { enforce: Some("on"), user: Some("subject.CN"), rules: &[rule], ..Scope::default() },
        scopes: &[Scope { mode: Some("report"), ..Scope::at("/report/") }],
        ..Site::default()
    });
    server.start();

    // enforced outside the report scope
    assert_eq!(server.status(Some("alice"), "GET", "/closed"), 403);

    // would be refused: served, and the backend learns the decision
    let reply = server.request(Some("alice"), "GET", "/report/closed");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(env_of(&reply, "CERT_AUTHZ_DECISION"), "deny", "{reply:?}");
    assert_eq!(backend_user(&reply), "", "no user on a deny: {reply:?}");
    let reply = server.request(None, "GET", "/report/closed");
    assert_eq!(reply.status, 200, "{reply:?}");

    // allowed: the user and the deciding statement's FILE:LINE
    let reply = server.request(Some("alice"), "GET", "/report/open/door");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(env_of(&reply, "CERT_AUTHZ_DECISION"), "allow", "{reply:?}");
    assert_eq!(backend_user(&reply), "alice", "{reply:?}");
    assert_eq!(env_of(&reply, "CERT_AUTHZ_RULE"), server.conf_position(rule), "{reply:?}");

    // a warning per would-be refusal, a deny line only for the real one
    let log = server.error_log();
    let reports = server.report_lines(&log);
    assert_eq!(reports.len(), 2, "{log}");
    assert!(reports.iter().all(|l| l.contains("GET /report/closed,")), "{log}");
    assert!(reports.iter().any(|l| l.contains("CN=alice")), "{log}");
    let denies = server.deny_lines(&log);
    assert_eq!(denies.len(), 1, "{log}");
    assert!(denies[0].contains("GET /closed,"), "{log}");
}

// ---- reloads ---------------------------------------------------------------------

/// A running server that enforces live.policy, which allows alice GET
/// /a/** (checked): for the reload scenarios to change.
fn live_policy_server<S: Server>(name: &str, log: LogLevel) -> S {
    let mut server = S::new(name);
    server.policy_file("live.policy", "allow GET /a/** subject.CN=alice\n");
    server.configure(&Site {
        log,
        root: Scope { policy: Some("live.policy"), ..Site::default().root },
        ..Site::default()
    });
    server.start();
    assert_eq!(server.status(Some("alice"), "GET", "/a/1"), 200);
    assert_eq!(server.status(Some("alice"), "GET", "/b/1"), 403);
    assert_eq!(server.status(Some("reporter"), "GET", "/a/1"), 403);
    server
}

both!(reload_changes_the_policy_and_a_broken_reload_keeps_the_old_one, "reload");

fn reload_changes_the_policy_and_a_broken_reload_keeps_the_old_one<S: Server>(name: &str) {
    // crit: no deny lines
    let server: S = live_policy_server(name, LogLevel::Crit);
    let pid = server.pid();

    server.policy_file("live.policy", "# now /b/ for alice, /a/ for reporter\nallow GET /b/** subject.CN=alice\nallow GET /a/** subject.CN=reporter\n");
    server.reload().unwrap_or_else(|e| panic!("the reload was refused:\n{e}"));
    // old workers may still answer: wait for the new policy on every count
    server.wait_for("the new policy", || {
        server.status(Some("alice"), "GET", "/b/1") == 200
            && server.status(Some("alice"), "GET", "/a/1") == 403
            && server.status(Some("reporter"), "GET", "/a/1") == 200
    });

    // A broken policy: the reload is refused with FILE:LINE, the server
    // keeps running on the policy it has.
    let bad = server.policy_file("live.policy", "allow GET /c/** subject.CN=alice\nallow GET /d bogus\n");
    let complaint = server.reload().expect_err("a broken policy was accepted");
    assert!(complaint.contains(&format!("{}:2:", bad.display())), "no FILE:LINE in:\n{complaint}");
    sleep(Duration::from_millis(500));
    assert_eq!(server.pid(), pid);
    assert_eq!(server.status(Some("alice"), "GET", "/b/1"), 200);
    assert_eq!(server.status(Some("alice"), "GET", "/c/1"), 403);

    // Below crit there is no deny line.
    assert!(server.deny_lines(&server.error_log()).is_empty(), "{}", server.error_log());
}

both!(a_reload_with_a_policy_source_that_is_a_fifo_fails_at_once_and_keeps_the_old_policy, "reload-fifo");

fn a_reload_with_a_policy_source_that_is_a_fifo_fails_at_once_and_keeps_the_old_policy<S: Server>(
    name: &str,
) {
    let mut server: S = live_policy_server(name, LogLevel::Warn);

    // Reading a FIFO blocked nginx's master until a writer came: it then
    // ignored HUP and QUIT.
    let live = server.policy_file("live.policy", "allow GET /b/** subject.CN=alice\ninclude pipe\n");
    let pipe = live.with_file_name("pipe");
    let made = Command::new("mkfifo").arg(&pipe).status().expect("running mkfifo");
    assert!(made.success());
    let complaint = server.reload().expect_err("a FIFO was accepted as a policy source");
    let needle =
        format!("{}:2:9: policy file {} is not a regular file (a FIFO)", live.display(), pipe.display());
    assert!(complaint.contains(&needle), "no {needle} in:\n{complaint}");
    assert_eq!(server.status(Some("alice"), "GET", "/a/1"), 200);
    assert_eq!(server.status(Some("alice"), "GET", "/b/1"), 403);

    // The server still reloads, with a good policy now...
    server.policy_file("live.policy", "allow GET /b/** subject.CN=alice\n");
    server.reload().unwrap_or_else(|e| panic!("the good reload was refused:\n{e}"));
    server.wait_for("the good reload", || {
        server.status(Some("alice"), "GET", "/b/1") == 200
            && server.status(Some("alice"), "GET", "/a/1") == 403
    });
    // ...and stops on its signal.
    assert!(server.stop(), "the server did not stop on its signal");
}

// ---- configuration errors ------------------------------------------------------------

both!(configuration_errors_fail_the_configuration_test_with_their_position, "configtest");

fn configuration_errors_fail_the_configuration_test_with_their_position<S: Server>(name: &str) {
    let server = S::new(name);
    let on = Site::default().root;
    let refused = |site: &Site| {
        server.configure(site);
        let (ok, out) = server.config_test();
        assert!(
            !ok,
            "{} accepted:\n{}\n{out}",
            server.name(),
            fs::read_to_string(server.conf_path()).unwrap()
        );
        out
    };

    // A policy file with an error on its 3rd line: its FILE:LINE.
    let bad = server.policy_file("broken.policy", "# fine\nallow GET /a any\nallow GET /b subject.NOPE=1\n");
    let out = refused(&Site { policy: Some("broken.policy"), ..Site::default() });
    assert!(out.contains(&format!("{}:3:", bad.display())), "{out}");

    // A broken inline rule, and one naming a group that nobody defines:
    // the configuration file's FILE:LINE.
    for rule in ["allow GET /x frobnicate", "allow GET /x group=nobody"] {
        let out = refused(&Site { root: Scope { rules: &[rule], ..on }, ..Site::default() });
        assert!(out.contains(&format!("{}:", server.conf_position(rule))), "{rule}: {out}");
    }

    // A missing policy file.
    let out = refused(&Site { policy: Some("no-such.policy"), ..Site::default() });
    assert!(out.contains("no-such.policy"), "{out}");

    // On with no policy at all.
    let out = refused(&Site::default());
    let needle = match server.kind() {
        Kind::Apache => "no CertAuthzPolicy or CertAuthzRule",
        Kind::Nginx => "cert_authz on",
    };
    assert!(out.contains(needle), "{out}");

    // Values that are not values refuse, never default to off.
    let rules = &["allow GET /** any"];
    let flag_error = match server.kind() {
        // httpd's own message for a FLAG directive, without the value
        Kind::Apache => "CertAuthz must be On or Off",
        Kind::Nginx => "invalid value \"maybe\"",
    };
    for (scope, needle) in [
        (Scope { enforce: Some("maybe"), rules, ..on }, flag_error),
        (Scope { mode: Some("audit"), rules, ..on }, "audit"),
        (Scope { user: Some("subject.NOPE"), rules, ..on }, "subject.NOPE"),
    ] {
        let out = refused(&Site { root: scope, ..Site::default() });
        assert!(out.contains(needle), "{needle}: {out}");
    }

    // And good ones pass: a group defined by a later rule, either mode, a
    // user attribute of a SAN.
    for mode in ["report", "enforce"] {
        server.configure(&Site {
            root: Scope {
                mode: Some(mode),
                user: Some("san.uri"),
                rules: &["allow GET /x/** group=late", "group late subject.CN=alice"],
                ..on
            },
            ..Site::default()
        });
        let (ok, out) = server.config_test();
        assert!(ok, "a good configuration failed:\n{out}");
    }
}

// ---- connections -------------------------------------------------------------------

both!(http2_streams_and_keepalive_requests_share_the_connection_identity, "h2");

fn http2_streams_and_keepalive_requests_share_the_connection_identity<S: Server>(name: &str) {
    let mut server = S::new(name);
    server.policy_file("shared.policy", SHARED_POLICY);
    server.configure(&Site {
        log: LogLevel::Debug,
        policy: Some("shared.policy"),
        root: Scope { enforce: Some("on"), user: Some("subject.CN"), ..Scope::default() },
        ..Site::default()
    });
    server.start();
    let mut connections = 0;

    // Many streams of one connection in parallel (in Apache on the event
    // MPM's worker threads), all using the one cached identity.
    let paths: Vec<(String, u16)> = (0..24)
        .map(|i| match i % 4 {
            0 => (format!("/status?{i}"), 200),
            1 => (format!("/users/alice/{i}"), 200),
            2 => (format!("/users/bob/{i}"), 403),
            _ => (format!("/admin/{i}"), 403),
        })
        .collect();
    let urls: Vec<&str> = paths.iter().map(|(p, _)| p.as_str()).collect();
    let got = server.requests(Some("alice"), &["--http2", "--parallel", "--parallel-max", "8"], &urls);
    assert_eq!(got.len(), paths.len(), "{got:?}");
    for (path, want) in &paths {
        let url = server.url(path);
        let t = got.iter().find(|t| t.url == url).unwrap_or_else(|| panic!("no result for {url}: {got:?}"));
        assert_eq!(t.status, *want, "{t:?}\n{}", server.error_log());
        assert_eq!(t.version, "2", "not HTTP/2: {t:?}");
    }
    let parallel: u32 = got.iter().map(|t| t.connects).sum();
    assert!(parallel <= 8, "streams were not multiplexed: {parallel} connections\n{got:?}");
    connections += parallel;

    // Streams one after another on one connection.
    let got = server.requests(
        Some("alice"),
        &["--http2"],
        &["/users/alice/1", "/users/bob/1", "/users/alice/2", "/users/opsbot/1"],
    );
    assert_eq!(got.iter().map(|t| t.status).collect::<Vec<_>>(), [200, 403, 200, 403], "{got:?}");
    assert!(got.iter().all(|t| t.version == "2"), "not HTTP/2: {got:?}");
    connections += got.iter().map(|t| t.connects).sum::<u32>();

    // HTTP/1.1 keep-alive: one connection, several requests.
    let got = server.requests(Some("opsbot"), &["--http1.1"], &["/users/opsbot/1", "/users/alice/1"]);
    assert_eq!(got.iter().map(|t| t.status).collect::<Vec<_>>(), [200, 403], "{got:?}");
    assert!(got.iter().all(|t| t.version == "1.1"), "{got:?}");
    connections += got.iter().map(|t| t.connects).sum::<u32>();

    // Over HTTP/2 the backend sees the identity too.
    let reply = server.request_with(Some("alice"), "GET", "/users/alice/x", &["--http2"]);
    assert_eq!((reply.status, backend_user(&reply)), (200, "alice".to_string()), "{reply:?}");
    connections += 1;

    // One parse per connection, not per request.
    let parses = server.certificate_parses();
    assert_eq!(parses.len() as u32, connections, "{connections} connections:\n{parses:#?}");
    if server.kind() == Kind::Apache {
        // from the TLS session, by mod_ssl's ssl_pre_handshake hook
        assert!(parses.iter().all(|l| l.contains("from the TLS session")), "{parses:#?}");
    }
}
