//! End-to-end tests of ngx_http_cert_authz_module against the real nginx
//! (/usr/sbin/nginx): each test starts its own nginx with its own prefix
//! under target/test-scratch/, on loopback high ports, with the test PKI of
//! tests/common, and stops it by its pid (a Drop guard, so a failing test
//! stops its server too).  A missing nginx or module is a failure.
//!
//! The module is target/release/ngx_http_cert_authz_module.so, built by
//! `make build`; CERT_AUTHZ_NGINX_MODULE names another one.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, make_pki, root, scratch, serve, Backend, Pki, SHARED_CASES, SHARED_POLICY};

const NGINX: &str = "/usr/sbin/nginx";

/// The test PKI, made once per test binary.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make_pki(&scratch("nginx-pki")))
}

/// The module under test; panics (fails the test) when it is missing or
/// older than its source, which would test something else than the code.
fn module() -> PathBuf {
    if let Some(path) = std::env::var_os("CERT_AUTHZ_NGINX_MODULE") {
        return PathBuf::from(path);
    }
    let so = root().join("target/release/ngx_http_cert_authz_module.so");
    let so_time = fs::metadata(&so)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}: run `make build` first", so.display()));
    for src in ["module/nginx/ngx_http_cert_authz_module.c", "target/release/libcert_authz.a"] {
        if let Ok(t) = fs::metadata(root().join(src)).and_then(|m| m.modified()) {
            assert!(t <= so_time, "{} is older than {src}: run `make build`", so.display());
        }
    }
    so
}

/// One nginx instance: its prefix, the port of its TLS server and, once
/// started, its master's pid.  Dropping it stops nginx.
struct Nginx {
    dir: PathBuf,
    port: u16,
    pid: Option<i32>,
}

impl Nginx {
    /// A prefix with conf/nginx.conf holding `http_body` inside http{}.
    /// In `http_body`, PORT is the TLS server's port, PREFIX the prefix, PKI
    /// the PKI directory.
    fn new(name: &str, http_body: &str) -> Nginx {
        let dir = scratch(&format!("nginx-{name}"));
        for sub in ["conf", "logs", "temp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let nginx = Nginx { dir, port: free_port(), pid: None };
        nginx.write_conf(http_body);
        nginx
    }

    fn write_conf(&self, http_body: &str) {
        let prefix = self.dir.display().to_string();
        let body = http_body
            .replace("PORT", &self.port.to_string())
            .replace("PREFIX", &prefix)
            .replace("PKI", &pki().dir.display().to_string());
        let conf = format!(
            "load_module {module};\n\
             user www-data;\n\
             worker_processes 1;\n\
             pid {prefix}/logs/nginx.pid;\n\
             error_log {prefix}/logs/error.log error;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             access_log {prefix}/logs/access.log;\n\
             client_body_temp_path {prefix}/temp/body;\n\
             proxy_temp_path {prefix}/temp/proxy;\n\
             fastcgi_temp_path {prefix}/temp/fastcgi;\n\
             uwsgi_temp_path {prefix}/temp/uwsgi;\n\
             scgi_temp_path {prefix}/temp/scgi;\n\
             {body}\n\
             }}\n",
            module = module().display(),
        );
        fs::write(self.dir.join("conf/nginx.conf"), conf).unwrap();
    }

    /// Writes a file into conf/ (policies).
    fn conf_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join("conf").join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(NGINX);
        cmd.arg("-p")
            .arg(&self.dir)
            .args(["-c", "conf/nginx.conf", "-e"])
            .arg(self.dir.join("logs/error.log"));
        cmd
    }

    /// `nginx -t`: its exit status and its output (stderr).
    fn config_test(&self) -> (bool, String) {
        let out: Output = self.command().arg("-t").output().expect("running nginx -t");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn start(&mut self) {
        let out = self.command().output().expect("running nginx");
        assert!(
            out.status.success(),
            "nginx did not start:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.error_log()
        );
        let pid_file = self.dir.join("logs/nginx.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = fs::read_to_string(&pid_file) {
                if let Ok(pid) = text.trim().parse() {
                    self.pid = Some(pid);
                    break;
                }
            }
            assert!(Instant::now() < deadline, "nginx wrote no pid file");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid.expect("nginx is running");
        let status = Command::new("kill").arg(sig).arg(pid.to_string()).status().unwrap();
        assert!(status.success(), "kill {sig} {pid} failed");
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    /// The status of one request as `client` (None: no certificate).
    fn status(&self, client: Option<&str>, method: &str, path: &str) -> u16 {
        common::curl(pki(), client, method, &self.url(path), &[]).status
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let alive = || Path::new(&format!("/proc/{pid}")).exists();
        let _ = Command::new("kill").arg("-QUIT").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        // the daemonized master is not our child: init reaps it
        while alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if alive() {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    }
}

/// A TLS server block on PORT with the test PKI; `verify` is the
/// ssl_verify_client value, `listen_extra` e.g. " http2".
fn tls_server(verify: &str, listen_extra: &str, body: &str) -> String {
    format!(
        "server {{\n\
         listen 127.0.0.1:PORT ssl{listen_extra};\n\
         server_name localhost;\n\
         ssl_certificate PKI/server.pem;\n\
         ssl_certificate_key PKI/server.key;\n\
         ssl_client_certificate PKI/ca.pem;\n\
         ssl_verify_client {verify};\n\
         {body}\n\
         }}\n"
    )
}

/// A plain HTTP server block inside the same nginx on `port` that answers
/// every method with 200 and shows what it received: the "application".
fn app_server(port: u16) -> String {
    format!(
        "server {{\n\
         listen 127.0.0.1:{port};\n\
         location / {{ return 200 \"user=$http_x_client_identity\"; }}\n\
         }}\n"
    )
}

/// A TLS server block (see tls_server) followed by the app_server it proxies
/// to: `body` gets the app's port and returns the TLS server's body.
fn tls_server_with_app(verify: &str, listen_extra: &str, body: impl FnOnce(u16) -> String) -> String {
    let app = free_port();
    format!("{}{}", tls_server(verify, listen_extra, &body(app)), app_server(app))
}

/// Statuses of several requests over one connection (keep-alive or HTTP/2
/// streams), as curl reports them: (status, HTTP version).
fn curl_many(nginx: &Nginx, client: Option<&str>, extra: &[&str], paths: &[&str]) -> Vec<(u16, String)> {
    let pki = pki();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"])
        .args(["-w", "%{http_code} %{http_version}\\n"])
        .arg("--cacert")
        .arg(pki.path("ca.pem"));
    if let Some(name) = client {
        cmd.arg("--cert").arg(pki.cert(name)).arg("--key").arg(pki.key(name));
    }
    cmd.args(extra);
    for path in paths {
        // -o is per URL
        cmd.args(["-o", "/dev/null"]).arg(nginx.url(path));
    }
    let out = cmd.output().expect("running curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (code, version) = l.split_once(' ').unwrap_or((l, ""));
            (code.parse().unwrap_or(0), version.to_string())
        })
        .collect()
}

/// Waits until `f` is true, up to 15 s.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of the error log that the module wrote for refusals.
fn deny_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("cert_authz: access")).collect()
}

#[test]
fn shared_cases_decide_as_the_table_says() {
    let mut nginx = Nginx::new(
        "shared",
        &format!(
            "cert_authz_policy shared.policy;\n{}",
            tls_server_with_app("on", "", |app| {
                format!(
                    "location / {{\n\
                     cert_authz on;\n\
                     cert_authz_user subject.CN;\n\
                     proxy_set_header X-Client-Identity $cert_authz_user;\n\
                     proxy_pass http://127.0.0.1:{app};\n\
                     }}"
                )
            })
        ),
    );
    // relative: taken from the conf directory, as nginx's include takes it
    let policy = nginx.conf_file("shared.policy", SHARED_POLICY);
    nginx.start();

    let mut failures = Vec::new();
    let mut denied = 0;
    for (expected, client, method, path) in SHARED_CASES {
        let reply = common::curl(pki(), Some(client), method, &nginx.url(path), &[]);
        let want = if *expected == "ALLOW" { 200 } else { 403 };
        if reply.status != want {
            failures.push(format!("{expected} {client} {method} {path}: got {}", reply.status));
        }
        if want == 403 {
            denied += 1;
        } else if *method != "HEAD" {
            assert_eq!(reply.body, format!("user={client}"), "{client} {method} {path}");
        }
    }
    assert!(failures.is_empty(), "nginx disagrees with the case table:\n{}", failures.join("\n"));

    // Every deny is one error-level line naming method, path, subject,
    // reason and (when a statement decided) its FILE:LINE, and the client.
    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), denied, "one line per deny:\n{log}");
    for line in &lines {
        assert!(line.contains("[error]"), "{line}");
        assert!(line.contains("cert_authz: access forbidden: "), "{line}");
        assert!(line.contains("client: 127.0.0.1"), "{line}");
    }
    let secrets = lines
        .iter()
        .find(|l| l.contains("GET /admin/secrets/key"))
        .expect("a deny line for /admin/secrets/key");
    assert!(secrets.contains("subject \"CN=opsbot,OU=ops,O=Example Corp\""), "{secrets}");
    // the deny statement is the 8th line of SHARED_POLICY
    assert!(
        secrets.contains(&format!(", reason: deny rule matched, rule {}:8,", policy.display())),
        "{secrets}"
    );
    let nowhere = lines.iter().find(|l| l.contains("GET /nowhere")).expect("a deny line for /nowhere");
    assert!(nowhere.contains("subject \"CN=reporter\", reason: "), "{nowhere}");
    assert!(nowhere.contains(", rule -,"), "{nowhere}");
}

#[test]
fn unverified_and_missing_certificates_are_refused() {
    let mut nginx = Nginx::new(
        "unverified",
        &tls_server_with_app("optional_no_ca", "", |app| {
            format!(
                "location / {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow * /x any\";\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // A trusted certificate passes "any"; the same name from an untrusted
    // CA, which optional_no_ca lets through the handshake, does not.
    assert_eq!(nginx.status(Some("alice"), "GET", "/x"), 200);
    assert_eq!(nginx.status(Some("rogue"), "GET", "/x"), 403);
    assert_eq!(nginx.status(None, "GET", "/x"), 403);
    // the query string is never part of the path
    assert_eq!(nginx.status(Some("alice"), "GET", "/x?next=/admin"), 200);

    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines.iter().all(|l| l.contains("GET /x,") && l.contains("subject \"-\"")), "{log}");
}

#[test]
fn report_mode_decides_logs_and_exports_but_never_refuses() {
    // report lines are warnings: log them
    let mut nginx = Nginx::new(
        "report",
        &format!(
            "error_log PREFIX/logs/error.log warn;\n{}",
            tls_server_with_app("optional", "", |app| {
                format!(
                    "cert_authz_rule \"allow GET /open/** any\";\n\
                 cert_authz on;\n\
                 cert_authz_mode report;\n\
                 cert_authz_user subject.CN;\n\
                 location / {{\n\
                 add_header X-Decision \"$cert_authz_decision\" always;\n\
                 add_header X-User \"$cert_authz_user\" always;\n\
                 add_header X-Rule \"$cert_authz_rule\" always;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
                )
            })
        ),
    );
    nginx.start();

    let headers = |client: Option<&str>, path: &str| {
        let reply = common::curl(pki(), client, "GET", &nginx.url(path), &["-D", "-"]);
        (reply.status, reply.body)
    };

    let (status, head) = headers(Some("alice"), "/closed");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("X-Decision: deny"), "{head}");
    assert!(!head.contains("X-User:"), "no user on a deny: {head}");

    let (status, head) = headers(None, "/closed");
    assert_eq!(status, 200, "{head}");

    let (status, head) = headers(Some("alice"), "/open/door");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("X-Decision: allow"), "{head}");
    assert!(head.contains("X-User: alice"), "{head}");
    let conf = nginx.dir.join("conf/nginx.conf");
    assert!(head.contains(&format!("X-Rule: {}:", conf.display())), "{head}");

    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines.iter().all(|l| l.contains("would be forbidden (report mode)")), "{log}");
}

#[test]
fn satisfy_any_combines_with_the_access_module() {
    let mut nginx = Nginx::new(
        "satisfy",
        &tls_server_with_app("optional", "", |app| {
            format!(
                "cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz on;\n\
                 location /local/ {{\n\
                 satisfy any;\n\
                 allow 127.0.0.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /remote/ {{\n\
                 satisfy any;\n\
                 allow 192.0.2.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /both/ {{\n\
                 allow 127.0.0.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /remote-report/ {{\n\
                 cert_authz_mode report;\n\
                 satisfy any;\n\
                 allow 192.0.2.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // the address alone suffices under satisfy any
    assert_eq!(nginx.status(None, "GET", "/local/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/local/a"), 200);
    // the address fails: the policy alone decides, and its allow is NGX_OK
    assert_eq!(nginx.status(Some("alice"), "GET", "/remote/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/remote/a"), 403);
    assert_eq!(nginx.status(None, "GET", "/remote/a"), 403);
    // satisfy all: both must allow
    assert_eq!(nginx.status(Some("alice"), "GET", "/both/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/both/a"), 403);
    // a refusal that is not final under satisfy any is not an error line
    let log = nginx.error_log();
    assert_eq!(deny_lines(&log).len(), 1, "{log}");

    // report mode under satisfy any, as Apache's Require cert-authz in a
    // <RequireAny>: the policy's allow grants, its would-be refusal leaves
    // the outcome to the access module
    assert_eq!(nginx.status(Some("alice"), "GET", "/remote-report/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/remote-report/a"), 403);
    assert_eq!(nginx.status(None, "GET", "/remote-report/a"), 403);
}

#[test]
fn locations_inherit_or_replace_the_policy() {
    let mut nginx = Nginx::new(
        "inherit",
        &format!(
            "cert_authz_policy PREFIX/conf/site.policy;\n\
             cert_authz_user subject.CN;\n\
             {}",
            tls_server_with_app("optional", "", |app| {
                format!(
                    "cert_authz on;\n\
                     proxy_set_header X-Client-Identity $cert_authz_user;\n\
                     location / {{ proxy_pass http://127.0.0.1:{app}; }}\n\
                     location /api/ {{\n\
                     cert_authz_rule \"allow GET /api/reports/** subject.CN=reporter\";\n\
                     proxy_pass http://127.0.0.1:{app};\n\
                     location /api/reports/inner/ {{ proxy_pass http://127.0.0.1:{app}; }}\n\
                     }}\n\
                     location /public/ {{\n\
                     cert_authz off;\n\
                     proxy_pass http://127.0.0.1:{app};\n\
                     }}\n\
                     location /ops/ {{\n\
                     cert_authz_user subject.OU;\n\
                     proxy_pass http://127.0.0.1:{app};\n\
                     }}"
                )
            })
        ),
    );
    nginx.conf_file(
        "site.policy",
        "allow GET /** subject.CN=alice\n\
         allow GET /ops/** group=ops\n\
         group ops subject.OU=ops\n",
    );
    nginx.start();

    // the server inherits the http{} policy
    assert_eq!(nginx.status(Some("alice"), "GET", "/anything"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/anything"), 403);
    // /api/ replaces it whole: alice's blanket allow is gone there
    assert_eq!(nginx.status(Some("reporter"), "GET", "/api/reports/q3"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/api/reports/q3"), 403);
    // a nested location inherits its parent location's rule set
    assert_eq!(nginx.status(Some("reporter"), "GET", "/api/reports/inner/x"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/api/reports/inner/x"), 403);
    // off where it says off, even without a certificate
    assert_eq!(nginx.status(None, "GET", "/public/x"), 200);
    // cert_authz_user is inherited and overridden like the others
    let reply = common::curl(pki(), Some("alice"), "GET", &nginx.url("/x"), &[]);
    assert_eq!(reply.body, "user=alice");
    let reply = common::curl(pki(), Some("opsbot"), "GET", &nginx.url("/ops/x"), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "user=ops"));
}

#[test]
fn configuration_errors_fail_nginx_t_with_their_location() {
    let server = |body: &str| tls_server("on", "", body);

    // a policy file with an error on its 3rd line
    let nginx =
        Nginx::new("bad-policy", &server("location / { cert_authz on; cert_authz_policy bad.policy; }"));
    let bad = nginx.conf_file("bad.policy", "# fine\nallow GET /a any\nallow GET /b no.such.attr=1\n");
    let (ok, out) = nginx.config_test();
    assert!(!ok, "nginx -t accepted a broken policy:\n{out}");
    assert!(out.contains(&format!("{}:3:", bad.display())), "{out}");

    // an inline rule: the error points at the nginx.conf line
    let nginx = Nginx::new(
        "bad-rule",
        &server("location / {\ncert_authz on;\ncert_authz_rule \"allow GET /a group=nobody\";\n}"),
    );
    let (ok, out) = nginx.config_test();
    assert!(!ok, "nginx -t accepted a broken rule:\n{out}");
    let conf = nginx.dir.join("conf/nginx.conf");
    let text = fs::read_to_string(&conf).unwrap();
    let line = text.lines().position(|l| l.contains("group=nobody")).unwrap() + 1;
    assert!(out.contains(&format!("{}:{line}:", conf.display())), "{out}");

    // a missing policy file
    let nginx = Nginx::new("missing-policy", &server("cert_authz_policy nowhere.policy;"));
    let (ok, out) = nginx.config_test();
    assert!(!ok && out.contains("nowhere.policy"), "{out}");

    // values that are not values refuse, never default to off
    for (name, body, needle) in [
        ("bad-flag", "cert_authz maybe;", "maybe"),
        ("bad-mode", "cert_authz_mode warn;", "warn"),
        ("bad-user", "cert_authz_user subject.XYZ;", "subject.XYZ"),
        ("no-policy", "cert_authz on;", "cert_authz on"),
    ] {
        let nginx = Nginx::new(name, &server(body));
        let (ok, out) = nginx.config_test();
        assert!(!ok, "{name}: nginx -t accepted it:\n{out}");
        assert!(out.contains(needle), "{name}: {out}");
    }

    // and a good one passes
    let nginx = Nginx::new(
        "good",
        &server(
            "cert_authz on; cert_authz_rule \"allow GET /** any\";\n\
             cert_authz_mode enforce; cert_authz_user san.uri;\n\
             location / { fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
             fastcgi_param CERT_AUTHZ_RULE $cert_authz_rule; }",
        ),
    );
    let (ok, out) = nginx.config_test();
    assert!(ok, "{out}");
}

/// A running nginx whose one location enforces conf/live.policy, which
/// allows alice GET /a/** (checked): for the reload tests to change.
fn live_policy_nginx(name: &str) -> Nginx {
    let mut nginx = Nginx::new(
        name,
        &tls_server_with_app("on", "", |app| {
            format!(
                "location / {{ cert_authz on; cert_authz_policy live.policy;\n\
                 proxy_pass http://127.0.0.1:{app}; }}"
            )
        }),
    );
    nginx.conf_file("live.policy", "allow GET /a/** subject.CN=alice\n");
    nginx.start();
    assert_eq!(nginx.status(Some("alice"), "GET", "/a/1"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/b/1"), 403);
    nginx
}

#[test]
fn reload_changes_the_policy_and_a_broken_reload_keeps_the_old_one() {
    let nginx = live_policy_nginx("reload");

    nginx.conf_file("live.policy", "allow GET /b/** subject.CN=alice\n");
    nginx.signal("-HUP");
    // old workers accept connections until the new ones are up: wait for
    // the new policy on both counts
    wait_for("the new policy", || {
        nginx.status(Some("alice"), "GET", "/b/1") == 200 && nginx.status(Some("alice"), "GET", "/a/1") == 403
    });

    let bad = nginx.conf_file("live.policy", "allow GET /c/** subject.CN=alice\nallow GET /d bogus\n");
    nginx.signal("-HUP");
    let needle = format!("{}:2:", bad.display());
    wait_for("the reload to fail", || nginx.error_log().contains(&needle));
    assert!(nginx.error_log().contains("[emerg]"), "{}", nginx.error_log());
    // the workers still run the last good policy
    assert_eq!(nginx.status(Some("alice"), "GET", "/b/1"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/c/1"), 403);
}

#[test]
fn http2_streams_and_keepalive_requests_share_the_connection_identity() {
    let mut nginx = Nginx::new(
        "h2",
        &tls_server_with_app("on", " http2", |app| {
            format!(
                "error_log PREFIX/logs/debug.log debug;\n\
                 location / {{ cert_authz on;\n\
                 cert_authz_rule \"allow GET /users/{{subject.CN}}/** any\";\n\
                 cert_authz_user subject.CN;\n\
                 proxy_set_header X-Client-Identity $cert_authz_user;\n\
                 proxy_pass http://127.0.0.1:{app}; }}"
            )
        }),
    );
    nginx.start();

    let paths = ["/users/alice/1", "/users/bob/1", "/users/alice/2", "/users/opsbot/1"];
    let want: Vec<u16> = vec![200, 403, 200, 403];

    // several streams of one HTTP/2 connection, sequential and concurrent
    for extra in [&["--http2"][..], &["--http2", "--parallel", "--parallel-max", "4"][..]] {
        let got = curl_many(&nginx, Some("alice"), extra, &paths);
        assert_eq!(got.len(), paths.len(), "{got:?}");
        assert!(got.iter().all(|(_, v)| v == "2"), "not HTTP/2: {got:?}");
        let mut statuses: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
        if extra.len() > 1 {
            // --parallel reports in completion order
            statuses.sort();
            let mut sorted = want.clone();
            sorted.sort();
            assert_eq!(statuses, sorted);
        } else {
            assert_eq!(statuses, want);
        }
    }

    // HTTP/1.1 keep-alive: one connection, several requests
    let got = curl_many(&nginx, Some("opsbot"), &["--http1.1"], &["/users/opsbot/1", "/users/alice/1"]);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![200, 403]);
    assert!(got.iter().all(|(_, v)| v == "1.1"), "{got:?}");

    // and the identity reaches the backend over HTTP/2
    let reply = common::curl(pki(), Some("alice"), "GET", &nginx.url("/users/alice/x"), &["--http2"]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "user=alice"));

    // one parse per connection (4 connections, 11 requests), not per request
    let debug = fs::read_to_string(nginx.dir.join("logs/debug.log")).unwrap();
    let parses = debug.matches("cert_authz: parsed the client certificate").count();
    assert_eq!(parses, 4, "certificate parses");
}

#[test]
fn the_user_handed_on_is_the_value_that_was_authorized() {
    let mut nginx = Nginx::new(
        "user-choice",
        &tls_server_with_app("on", "", |app| {
            format!(
                "cert_authz_user subject.CN;\n\
                 proxy_set_header X-Client-Identity $cert_authz_user;\n\
                 location / {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /ops/** subject.CN=opsbot\";\n\
                 cert_authz_rule \"allow GET /home/{{subject.CN}}/** any\";\n\
                 cert_authz_rule \"allow GET /any/** any\";\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // twocn has CN=admin and CN=opsbot, in that order
    let user = |client: &str, path: &str| {
        let reply = common::curl(pki(), Some(client), "GET", &nginx.url(path), &[]);
        (reply.status, reply.body)
    };
    assert_eq!(user("twocn", "/ops/x"), (200, "user=opsbot".to_string()));
    assert_eq!(user("twocn", "/home/admin/x"), (200, "user=admin".to_string()));
    assert_eq!(user("twocn", "/home/opsbot/x"), (200, "user=opsbot".to_string()));
    assert_eq!(user("alice", "/any/x"), (200, "user=alice".to_string()));

    // `any` authorizes neither CN more than the other: refused
    assert_eq!(nginx.status(Some("twocn"), "GET", "/any/x"), 403);
    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /any/x") && lines[0].contains("several values"), "{log}");
}

#[test]
fn the_backend_gets_the_real_identity_and_never_a_forged_one() {
    let backend = Backend::start();
    let mut nginx = Nginx::new(
        "proxy",
        &format!(
            "log_format authz '$cert_authz_decision|$cert_authz_rule|$cert_authz_user|\
             $cert_authz_subject|$uri';\n\
             {}",
            tls_server(
                "optional",
                "",
                &format!(
                    "access_log PREFIX/logs/authz.log authz;\n\
                     cert_authz_user subject.CN;\n\
                     proxy_set_header X-Client-Identity $cert_authz_user;\n\
                     proxy_set_header X-Cert-Authz-Subject $cert_authz_subject;\n\
                     proxy_set_header X-Cert-Authz-Decision $cert_authz_decision;\n\
                     location / {{\n\
                     cert_authz on;\n\
                     cert_authz_rule \"allow GET /app/** subject.O=\\\"Example Corp\\\"\";\n\
                     proxy_pass http://127.0.0.1:{};\n\
                     }}\n\
                     location /open/ {{ proxy_pass http://127.0.0.1:{}; }}",
                    backend.port, backend.port
                ),
            )
        ),
    );
    nginx.start();

    // spellings that WSGI or PHP read as the same variable: nginx ignores
    // header names with '_' (ignore_invalid_headers, on by default)
    let forged = [
        "-H", "X-Client-Identity: admin", "-H", "X-Cert-Authz-Decision: allow",
        "-H", "X_Client_Identity: admin", "-H", "x-client_identity: admin",
    ];
    let reply = common::curl(pki(), Some("alice"), "GET", &nginx.url("/app/x?q=1"), &forged);
    assert_eq!(reply.status, 200);
    assert_eq!(backend.header(0, "X-Client-Identity"), vec!["alice"]);
    let folded = backend.requests.lock().unwrap()[0]
        .iter()
        .filter(|l| l.to_ascii_lowercase().replace('_', "-").starts_with("x-client-identity:"))
        .count();
    assert_eq!(folded, 1, "{:?}", backend.requests.lock().unwrap()[0]);
    assert_eq!(backend.header(0, "X-Cert-Authz-Decision"), vec!["allow"]);
    assert_eq!(backend.header(0, "X-Cert-Authz-Subject"), vec!["CN=alice,OU=users,O=Example Corp"]);

    // where the module is off nothing is exported, and the forged header
    // still does not pass: proxy_set_header replaces the client's
    let reply = common::curl(pki(), None, "GET", &nginx.url("/open/x"), &forged);
    assert_eq!(reply.status, 200);
    assert!(backend.header(1, "X-Client-Identity").is_empty());
    assert!(backend.header(1, "X-Cert-Authz-Decision").is_empty());

    // denied requests never reach the backend
    let reply = common::curl(pki(), Some("reporter"), "GET", &nginx.url("/app/x"), &forged);
    assert_eq!(reply.status, 403);
    assert_eq!(backend.requests.lock().unwrap().len(), 2);

    // log_format sees the variables too; nginx writes the line after the
    // response, so it may come a moment after curl is done
    let read_log = || fs::read_to_string(nginx.dir.join("logs/authz.log")).unwrap_or_default();
    wait_for("three access log lines", || read_log().lines().count() >= 3);
    let log = read_log();
    let conf = nginx.dir.join("conf/nginx.conf").display().to_string();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].starts_with(&format!("allow|{conf}:")), "{log}");
    assert!(lines[0].ends_with("|alice|CN=alice,OU=users,O=Example Corp|/app/x"), "{log}");
    assert_eq!(lines[1], "-|-|-|-|/open/x");
    assert!(lines[2].starts_with("deny|-|-|CN=reporter|/app/x"), "{log}");
}

#[test]
fn an_internal_redirect_is_a_new_decision() {
    let mut nginx = Nginx::new(
        "redirect",
        &tls_server_with_app("on", "", |app| {
            format!(
                "location /pub/ {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /pub/** any\";\n\
                 try_files /nonexistent /priv/from-pub;\n\
                 }}\n\
                 location /priv/ {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /priv/** subject.CN=opsbot\";\n\
                 cert_authz_user subject.CN;\n\
                 proxy_set_header X-Client-Identity $cert_authz_user;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // allowed into /pub/, then try_files redirects to /priv/: decided again
    assert_eq!(nginx.status(Some("alice"), "GET", "/pub/a"), 403);
    let reply = common::curl(pki(), Some("opsbot"), "GET", &nginx.url("/pub/a"), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "user=opsbot"));
    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /priv/from-pub,"), "{log}");
}

/// A loopback server that records the raw bytes of the first read of each
/// connection and closes it: enough to see FastCGI parameters.
fn raw_backend() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let port = serve("the raw backend", move |mut stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
        let mut buf = [0u8; 65536];
        if let Ok(n) = stream.read(&mut buf) {
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (port, out)
}

#[test]
fn fastcgi_params_carry_the_identity() {
    let (port, seen) = raw_backend();
    let mut nginx = Nginx::new(
        "fastcgi",
        &tls_server(
            "on",
            "",
            &format!(
                "location / {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz_user subject.CN;\n\
                 fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
                 fastcgi_param CERT_AUTHZ_DECISION $cert_authz_decision;\n\
                 fastcgi_pass 127.0.0.1:{port};\n\
                 }}"
            ),
        ),
    );
    nginx.start();
    // the backend speaks no FastCGI: nginx answers 502, after sending
    let status = nginx.status(Some("alice"), "GET", "/index.php");
    assert_eq!(status, 502);
    let bytes = seen.lock().unwrap().clone();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // FastCGI name-value pairs: lengths, then name and value back to back
    assert!(has(b"CERT_AUTHZ_USERalice"), "{}", String::from_utf8_lossy(&bytes));
    assert!(has(b"CERT_AUTHZ_DECISIONallow"), "{}", String::from_utf8_lossy(&bytes));
}

/// A CA of its own and a client certificate from it whose CN holds a
/// control character: the TLS layer verifies it, the core must refuse it.
/// Returns (CA PEM, certificate file, key file).
fn hostile_client(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "Hostile Test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(30);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::CommonName, "alice\u{1}admin");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join("hostile.pem"), dir.join("hostile.key"));
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_pem, cert_path, key_path)
}

#[test]
fn a_verified_certificate_that_the_core_refuses_is_denied() {
    let mut nginx = Nginx::new(
        "hostile",
        &tls_server_with_app("on", "", |app| {
            format!(
                "location / {{ cert_authz on;\n\
                 cert_authz_rule \"allow GET /** subject.O=\\\"Example Corp\\\"\";\n\
                 proxy_pass http://127.0.0.1:{app}; }}"
            )
        })
        // trust the test CA and the hostile one
        .replace("PKI/ca.pem", "PREFIX/conf/clients.pem"),
    );

    let (ca_pem, cert, key) = hostile_client(&nginx.dir.join("conf"));
    let bundle = fs::read_to_string(pki().path("ca.pem")).unwrap() + &ca_pem;
    nginx.conf_file("clients.pem", &bundle);
    nginx.start();

    assert_eq!(nginx.status(Some("alice"), "GET", "/x"), 200);
    let reply = common::curl(
        pki(),
        None,
        "GET",
        &nginx.url("/x"),
        &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()],
    );
    assert_eq!(reply.status, 403, "a CN with a control character");
    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("subject \"-\""), "{log}");
}

#[test]
fn a_reload_with_a_policy_source_that_is_a_fifo_fails_at_once_and_keeps_the_old_policy() {
    let mut nginx = live_policy_nginx("reload-fifo");

    // Reading a FIFO blocked the master until a writer came: it then ignored HUP and QUIT.
    let pipe = nginx.dir.join("conf/pipe");
    let made = Command::new("mkfifo").arg(&pipe).status().expect("running mkfifo");
    assert!(made.success());
    let live = nginx.conf_file("live.policy", "allow GET /b/** subject.CN=alice\ninclude pipe\n");
    nginx.signal("-HUP");
    let needle =
        format!("{}:2:9: policy file {} is not a regular file (a FIFO)", live.display(), pipe.display());
    wait_for("the reload to fail", || nginx.error_log().contains(&needle));
    assert!(nginx.error_log().contains("[emerg]"), "{}", nginx.error_log());
    assert_eq!(nginx.status(Some("alice"), "GET", "/a/1"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/b/1"), 403);

    // The master still answers HUP, with a good policy now...
    nginx.conf_file("live.policy", "allow GET /b/** subject.CN=alice\n");
    nginx.signal("-HUP");
    wait_for("the good reload", || {
        nginx.status(Some("alice"), "GET", "/b/1") == 200 && nginx.status(Some("alice"), "GET", "/a/1") == 403
    });
    // ...and QUIT.
    let pid = nginx.pid.expect("nginx is running");
    nginx.signal("-QUIT");
    wait_for("the master to quit", || !Path::new(&format!("/proc/{pid}")).exists());
    nginx.pid = None;
}

/// Three TLS servers on one listener, as in issue 7: a.test (the default
/// server) verifies with the partner CA (the PKI's rogue CA, whose "rogue"
/// client is named alice too), b.test and c.test with the test CA and
/// enforce the policy; `c_verify` is c.test's ssl_verify_client.  Each
/// serves PREFIX/html/NAME/who, a file that names the server.  nginx 1.22's
/// default protocols stop at TLS 1.2: 1.3 is enabled here.
fn three_servers(name: &str, c_verify: &str, session: &str) -> Nginx {
    let server = |host: &str, ca: &str, verify: &str, authz: &str| {
        format!(
            "server {{\n\
             listen 127.0.0.1:PORT ssl;\n\
             server_name {host}.test;\n\
             ssl_client_certificate PKI/{ca};\n\
             ssl_verify_client {verify};\n\
             root PREFIX/html/{host};\n\
             add_header X-Reused $ssl_session_reused always;\n\
             {authz}\n\
             }}\n"
        )
    };
    let authz = "cert_authz on;\ncert_authz_rule \"allow GET /** subject.CN=alice\";";
    let nginx = Nginx::new(
        name,
        &format!(
            "ssl_protocols TLSv1.2 TLSv1.3;\n\
             ssl_certificate PKI/server.pem;\n\
             ssl_certificate_key PKI/server.key;\n\
             {session}\n{}{}{}",
            server("a", "rogue-ca.pem", "on", ""),
            server("b", "ca.pem", "on", authz),
            server("c", "ca.pem", c_verify, authz),
        ),
    );
    for host in ["a", "b", "c"] {
        let dir = nginx.dir.join("html").join(host);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("who"), format!("{host}.test\n")).unwrap();
    }
    let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(nginx.dir.join("html")).status();
    nginx
}

/// What one `openssl s_client` connection got.
#[derive(Debug)]
struct TlsReply {
    /// Whether nginx says it resumed the session ($ssl_session_reused).
    reused: bool,
    /// The HTTP status, 0 when there was none (a failed handshake).
    status: u16,
    body: String,
}

/// One `GET /who` with `Host: host` over `openssl s_client` with protocol
/// `proto` ("tls1_2", "tls1_3"), SNI `sni` (None: no SNI, as for an IP
/// address), client certificate `client` of the PKI, writing the session to
/// `sess_out` or resuming the one in `sess_in`.
fn s_client(
    nginx: &Nginx,
    proto: &str,
    sni: Option<&str>,
    client: Option<&str>,
    host: &str,
    sess_out: Option<&Path>,
    sess_in: Option<&Path>,
) -> TlsReply {
    let mut cmd = Command::new("timeout");
    // -quiet: only what the server sends (and -ign_eof)
    cmd.args(["20", "openssl", "s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", nginx.port))
        .arg(format!("-{proto}"));
    match sni {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    if let Some(name) = client {
        cmd.arg("-cert").arg(pki().cert(name)).arg("-key").arg(pki().key(name));
    }
    if let Some(path) = sess_out {
        cmd.arg("-sess_out").arg(path);
    }
    if let Some(path) = sess_in {
        cmd.arg("-sess_in").arg(path);
    }
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running openssl s_client");
    let request = format!("GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    child.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let reused = head.lines().any(|l| l == "X-Reused: r");
    let status = head.strip_prefix("HTTP/1.1 ").and_then(|l| l.get(..3)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = body.lines().next().unwrap_or("").to_string();
    TlsReply { reused, status, body }
}

#[test]
fn a_certificate_verified_by_another_server_does_not_count() {
    // Resumption with session tickets (nginx's default) and with the
    // shared session cache.
    for (variant, session) in [
        ("tickets", ""),
        ("cache", "ssl_session_tickets off;\nssl_session_cache shared:SSL:1m;"),
    ] {
        let mut nginx = three_servers(&format!("sni-{variant}"), "optional", session);
        nginx.start();
        let sess = nginx.dir.join("session.pem");
        let mut refused = 0;

        for proto in ["tls1_2", "tls1_3"] {
            let what = |case: &str| format!("{variant} {proto}: {case}");

            // The control: alice's session at b.test resumes into b.test,
            // and the certificate it was made with still counts there.
            let made = s_client(&nginx, proto, Some("b.test"), Some("alice"), "b.test", Some(&sess), None);
            assert_eq!((made.status, made.body.as_str()), (200, "b.test"), "{}", what("a full handshake"));
            let again = s_client(&nginx, proto, Some("b.test"), None, "b.test", None, Some(&sess));
            assert!(again.reused, "{}: {again:?}", what("not resumed within b.test"));
            assert_eq!((again.status, again.body.as_str()), (200, "b.test"), "{}", what("resumed in b.test"));

            // The partner's "alice", verified by a.test (the default
            // server, reached without SNI) and resumed into b.test and
            // c.test: nginx resumes it and reports it verified, the module
            // refuses it.
            let made = s_client(&nginx, proto, None, Some("rogue"), "a.test", Some(&sess), None);
            assert_eq!((made.status, made.body.as_str()), (200, "a.test"), "{}", what("the partner at a.test"));
            for target in ["b.test", "c.test"] {
                let resumed = s_client(&nginx, proto, Some(target), None, target, None, Some(&sess));
                assert!(resumed.reused, "{}: {resumed:?}", what("not resumed: the case is not tested"));
                assert_eq!(resumed.status, 403, "{}: {resumed:?}", what(&format!("resumed into {target}")));
                refused += 1;
                // and without SNI, where nginx stays in a.test's settings
                let resumed = s_client(&nginx, proto, None, None, target, None, Some(&sess));
                assert!(resumed.reused, "{}: {resumed:?}", what("not resumed without SNI"));
                assert_eq!(resumed.status, 403, "{}: {resumed:?}", what(&format!("no SNI, Host {target}")));
                refused += 1;
            }

            // A session made with SNI a.test, resumed into c.test: nginx
            // refuses it itself (TLS 1.2: 421 for the other Host; TLS 1.3:
            // its CVE-2025-23419 fix rejects the handshake).
            s_client(&nginx, proto, Some("a.test"), Some("rogue"), "a.test", Some(&sess), None);
            let resumed = s_client(&nginx, proto, Some("c.test"), None, "c.test", None, Some(&sess));
            assert!(resumed.status == 421 || resumed.status == 0, "{}: {resumed:?}", what("SNI a.test into c.test"));

            // SNI other than Host in a full handshake.
            let reply = s_client(&nginx, proto, None, Some("rogue"), "b.test", None, None);
            assert_eq!(reply.status, 403, "{}: {reply:?}", what("no SNI, Host b.test"));
            refused += 1;
            let reply = s_client(&nginx, proto, Some("a.test"), Some("rogue"), "c.test", None, None);
            assert_eq!(reply.status, 421, "{}: {reply:?}", what("SNI a.test, Host c.test"));
            let reply = s_client(&nginx, proto, Some("c.test"), Some("alice"), "c.test", None, None);
            assert_eq!((reply.status, reply.body.as_str()), (200, "c.test"), "{}", what("alice at c.test"));
        }

        let log = nginx.error_log();
        let lines = deny_lines(&log);
        assert_eq!(lines.len(), refused, "one line per refusal:\n{log}");
        for line in &lines {
            assert!(line.contains("[error]"), "{line}");
            assert!(line.contains("reason: client certificate not verified by the server,"), "{line}");
            assert!(line.contains("subject \"-\""), "{line}");
        }
    }
}

#[test]
fn cert_authz_on_in_a_server_that_does_not_verify_fails_nginx_t() {
    let conf_line = |nginx: &Nginx, needle: &str| {
        let conf = nginx.dir.join("conf/nginx.conf");
        let text = fs::read_to_string(&conf).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).expect(needle) + 1;
        format!("\"cert_authz on\" in {}:{line} ", conf.display())
    };

    // in a location, in either mode, and in the server itself
    for (name, c_body) in [
        ("unverified-location", "location / {\ncert_authz on; # HERE\n}"),
        ("unverified-report", "location / {\ncert_authz_mode report;\ncert_authz on; # HERE\n}"),
        ("unverified-server", "cert_authz on; # HERE\n"),
    ] {
        let nginx = Nginx::new(
            name,
            &format!(
                "cert_authz_rule \"allow GET /** any\";\n\
                 ssl_certificate PKI/server.pem;\n\
                 ssl_certificate_key PKI/server.key;\n\
                 server {{ listen 127.0.0.1:PORT ssl; server_name a.test;\n\
                 ssl_client_certificate PKI/ca.pem; ssl_verify_client on; cert_authz on; }}\n\
                 server {{ listen 127.0.0.1:PORT ssl; server_name c.test;\n\
                 ssl_verify_client off;\n{c_body}\n}}\n"
            ),
        );
        let (ok, out) = nginx.config_test();
        assert!(!ok, "{name}: nginx -t accepted it:\n{out}");
        assert!(out.contains(&conf_line(&nginx, "# HERE")), "{name}: {out}");
        assert!(out.contains("does not verify client certificates"), "{name}: {out}");
    }

    // inherited from http{}: the error names the http{} line, and the
    // server{} that does not verify (here one without TLS)
    let app = free_port();
    let nginx = Nginx::new(
        "unverified-http",
        &format!(
            "cert_authz on; # HERE\n\
             cert_authz_rule \"allow GET /** any\";\n{}\
             server {{ # PLAIN\nlisten 127.0.0.1:{app};\n}}\n",
            tls_server("on", "", "")
        ),
    );
    let (ok, out) = nginx.config_test();
    assert!(!ok, "nginx -t accepted it:\n{out}");
    assert!(out.contains(&conf_line(&nginx, "# HERE")), "{out}");
    let conf = nginx.dir.join("conf/nginx.conf");
    let plain = fs::read_to_string(&conf).unwrap().lines().position(|l| l.contains("# PLAIN")).unwrap() + 1;
    assert!(out.contains(&format!("in the server in {}:{plain},", conf.display())), "{out}");

    // every verifying mode passes, and so does "cert_authz off" where the
    // server does not verify
    for verify in ["on", "optional", "optional_no_ca"] {
        let nginx = Nginx::new(
            &format!("verified-{verify}"),
            &format!(
                "cert_authz on;\n\
                 cert_authz_rule \"allow GET /** any\";\n{}\
                 server {{ listen 127.0.0.1:{app}; cert_authz off; }}\n",
                tls_server(verify, "", "")
            ),
        );
        let (ok, out) = nginx.config_test();
        assert!(ok, "{verify}: {out}");
    }
}

#[test]
fn try_files_serves_only_what_the_policy_allows() {
    let mut nginx = Nginx::new(
        "try-files",
        &format!(
            "error_log PREFIX/logs/error.log warn;\n{}",
            tls_server(
                "on",
                "",
                "root PREFIX/html;\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /** any\";\n\
                 cert_authz_rule \"deny * /site/internal.html any\";\n\
                 cert_authz_rule \"deny * /denied/** any\";\n\
                 add_header X-Decision $cert_authz_decision always;\n\
                 location /site/ { try_files $uri $uri.html $uri/ =404; }\n\
                 location /fixed/ { try_files /denied/file =404; }\n\
                 location /report/ { cert_authz_mode report; try_files /denied/file =404; }",
            )
        ),
    );
    for (path, text) in [
        ("site/internal.html", "internal"),
        ("site/public.html", "public"),
        ("denied/file", "denied"),
    ] {
        let file = nginx.dir.join("html").join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    }
    let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(nginx.dir.join("html")).status();
    nginx.start();

    let get = |path: &str| {
        let reply = common::curl(pki(), Some("alice"), "GET", &nginx.url(path), &["-D", "-"]);
        let body = reply.body.rsplit("\r\n\r\n").next().unwrap_or("").to_string();
        (reply.status, body, reply.body)
    };

    // the refused file, asked for by its own name and by try_files' other
    let (status, _, head) = get("/site/internal");
    assert_eq!(status, 403, "{head}");
    let (status, _, head) = get("/site/internal.html");
    assert_eq!(status, 403, "{head}");
    // a fixed file that try_files serves in place of any URI
    let (status, _, head) = get("/fixed/anything");
    assert_eq!(status, 403, "{head}");

    // what the policy allows still passes, the same ways
    let (status, body, head) = get("/site/public");
    assert_eq!((status, body.as_str()), (200, "public"), "{head}");
    assert!(head.contains("X-Decision: allow"), "{head}");
    let (status, body, head) = get("/site/public.html");
    assert_eq!((status, body.as_str()), (200, "public"), "{head}");
    let (status, _, head) = get("/site/missing");
    assert_eq!(status, 404, "{head}");

    // report mode decides again too, and logs instead of refusing
    let (status, body, head) = get("/report/anything");
    assert_eq!((status, body.as_str()), (200, "denied"), "{head}");
    assert!(head.contains("X-Decision: deny"), "{head}");

    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 4, "one line per refusal:\n{log}");
    let forbidden: Vec<&&str> = lines.iter().filter(|l| l.contains("cert_authz: access forbidden: ")).collect();
    assert_eq!(forbidden.len(), 3, "{log}");
    assert_eq!(forbidden.iter().filter(|l| l.contains("GET /site/internal.html,")).count(), 2, "{log}");
    assert_eq!(forbidden.iter().filter(|l| l.contains("GET /denied/file,")).count(), 1, "{log}");
    assert!(forbidden.iter().all(|l| l.contains("[error]") && l.contains("reason: deny rule matched")), "{log}");
    let report: Vec<&&str> = lines.iter().filter(|l| l.contains("(report mode)")).collect();
    assert_eq!(report.len(), 1, "{log}");
    assert!(report[0].contains("GET /denied/file,") && report[0].contains("[warn]"), "{log}");
}

#[test]
fn php_fpm_with_debians_fastcgi_params_reads_only_the_authorized_identity() {
    let php = common::PhpFpm::start("nginx");
    let fastcgi = |extra: &str| {
        format!(
            "include /etc/nginx/fastcgi_params;\n\
             fastcgi_param SCRIPT_FILENAME {docroot}/who.php;\n\
             fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
             fastcgi_param CERT_AUTHZ_DECISION $cert_authz_decision;\n\
             {extra}\n\
             fastcgi_pass 127.0.0.1:{port};\n",
            docroot = php.docroot.display(),
            port = php.port,
        )
    };
    let mut nginx = Nginx::new(
        "php-fpm",
        &tls_server(
            "on",
            "",
            &format!(
                "cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz_rule \"allow GET /** subject.CN=reporter\";\n\
                 cert_authz_user subject.CN;\n\
                 location /php/ {{ cert_authz on;\n{plain} }}\n\
                 location /php-noauth/ {{ cert_authz on;\n{noauth} }}\n\
                 location /open/ {{ cert_authz off;\n{plain} }}\n",
                plain = fastcgi(""),
                noauth = fastcgi("fastcgi_param HTTP_AUTHORIZATION \"\";"),
            ),
        ),
    );
    nginx.start();
    let forged = [
        "-H", "Authorization: Basic YWRtaW46eA==", "-H", "X-Client-Identity: admin",
        "-H", "X_Client_Identity: admin", "-H", "Remote-User: admin",
    ];
    let get = |client: &str, path: &str, extra: &[&str]| {
        let r = common::curl(pki(), Some(client), "GET", &nginx.url(path), extra);
        assert_eq!(r.status, 200, "{path}: {r:?}\n{}\n{}", nginx.error_log(), php.logs());
        r
    };
    let value = common::PhpFpm::value;

    // The module owns $remote_user here: fastcgi_params' REMOTE_USER is the certificate's user.
    let r = get("reporter", "/php/who", &forged);
    assert_eq!(value(&r, "SCRIPT_FILENAME"), format!("{}/who.php", php.docroot.display()), "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_DECISION"), "allow", "{r:?}");
    assert_eq!(value(&r, "REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "reporter", "{r:?}");
    // PHP makes PHP_AUTH_USER from the HTTP_AUTHORIZATION that nginx
    // passes on: the client's name unless the location blanks it (below).
    eprintln!("who.php under Debian's fastcgi_params alone:\n{}", r.body);
    // nginx drops a header with '_' (ignore_invalid_headers): alone, it gives PHP nothing.
    let r = get("reporter", "/php/who-underscore", &["-H", "X_Client_Identity: admin"]);
    assert_eq!(value(&r, "HTTP_X_CLIENT_IDENTITY"), "", "{r:?}");
    assert_eq!(value(&r, "ADMIN_KEYS"), "", "{r:?}");

    // The line that keeps the client's Authorization from PHP.
    let r = get("reporter", "/php-noauth/who", &forged);
    assert_eq!(value(&r, "REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "HTTP_AUTHORIZATION"), "", "{r:?}");
    assert_eq!(value(&r, "PHP_AUTH_USER"), "", "{r:?}");

    // The takeover is scoped: with cert_authz off, $remote_user is nginx's own, the Basic name.
    let r = get("reporter", "/open/who", &forged);
    assert_eq!(value(&r, "REMOTE_USER"), "admin", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "", "{r:?}");

    // Refused: a 403 from nginx, and PHP never runs.
    let r = common::curl(pki(), Some("opsbot"), "GET", &nginx.url("/php/refused"), &forged);
    assert_eq!(r.status, 403, "{r:?}");
    let r = get("alice", "/php/after", &[]);
    assert_eq!(value(&r, "REMOTE_USER"), "alice", "{r:?}");
    let reached = php.wait_for_request("/php/after");
    assert_eq!(
        reached,
        [
            "/php/who user=reporter",
            "/php/who-underscore user=reporter",
            "/php-noauth/who user=reporter",
            "/open/who user=",
            "/php/after user=alice",
        ],
        "{}",
        php.logs()
    );
    let log = nginx.error_log();
    let lines = deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /php/refused,"), "{log}");
}
