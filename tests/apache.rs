//! End-to-end tests of mod_cert_authz in a real Apache httpd with mod_ssl.
//!
//! Each test starts its own server (own ServerRoot from
//! common::scratch(), own loopback port, event MPM, `User www-data`) and
//! stops it by the pid in its PidFile when the test ends, also when it
//! panics.  A missing Apache or module is a failure, never a skip: run
//! `make build` first (`make test` does).
//!
//! Every location is served by one CGI script that prints the environment
//! the backend sees, so the tests can check CERT_AUTHZ_* and REMOTE_USER.

mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{curl, free_port, make_pki, root, scratch, Backend, Pki, Reply, SHARED_CASES, SHARED_POLICY};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// The CGI backend: every request lands here and prints what it was given.
const ENV_CGI: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "URI=$REQUEST_URI"
echo "CERT_AUTHZ_DECISION=$CERT_AUTHZ_DECISION"
echo "CERT_AUTHZ_RULE=$CERT_AUTHZ_RULE"
echo "CERT_AUTHZ_SUBJECT=$CERT_AUTHZ_SUBJECT"
echo "CERT_AUTHZ_USER=$CERT_AUTHZ_USER"
echo "REMOTE_USER=$REMOTE_USER"
echo "HTTP_CERT_AUTHZ_USER=$HTTP_CERT_AUTHZ_USER"
"#;

fn module_path() -> PathBuf {
    let so = root().join("target/release/mod_cert_authz.so");
    assert!(so.is_file(), "{} is missing: run `make build` before the Apache tests", so.display());
    so
}

/// One Apache instance.  Dropping it stops the server.
struct Apache {
    dir: PathBuf,
    port: u16,
    pki: Pki,
    started: bool,
}

impl Apache {
    /// A new server root with a PKI, a CGI backend and no configuration yet.
    fn new(name: &str) -> Apache {
        assert!(Path::new(APACHE).is_file(), "{APACHE} is missing: install apache2");
        let dir = scratch(&format!("apache-{name}"));
        for sub in ["conf", "logs", "run", "cgi-bin", "htdocs"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let pki = make_pki(&dir.join("pki"));
        let cgi = dir.join("cgi-bin/env.cgi");
        fs::write(&cgi, ENV_CGI).unwrap();
        fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("shared.policy"), SHARED_POLICY).unwrap();
        Apache { dir, port: free_port(), pki, started: false }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes conf/httpd.conf: the common server setup, then `body`.
    /// Returns the line number where `body` starts.
    fn write_conf(&self, body: &str) -> usize {
        self.write_conf_with(body, "h2 http/1.1", "LogLevel warn cert_authz:info")
    }

    fn write_conf_with(&self, body: &str, protocols: &str, loglevel: &str) -> usize {
        let d = self.dir.display();
        let pki = self.pki.dir.display();
        let head = format!(
            r#"ServerRoot "{d}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{d}/logs/httpd.pid"
DefaultRuntimeDir "{d}/run"
Mutex file:{d}/run default
ErrorLog "{d}/logs/error.log"
{loglevel}
User www-data
Group www-data
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_host_module {m}/mod_authz_host.so
LoadModule alias_module {m}/mod_alias.so
LoadModule cgid_module {m}/mod_cgid.so
LoadModule env_module {m}/mod_env.so
LoadModule setenvif_module {m}/mod_setenvif.so
LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so
LoadModule ssl_module {m}/mod_ssl.so
LoadModule http2_module {m}/mod_http2.so
LoadModule cert_authz_module {so}
StartServers 1
ScriptSock "{d}/run/cgid.sock"
SSLSessionCache "shmcb:{d}/run/ssl_scache(512000)"
Protocols {protocols}
KeepAlive On
DocumentRoot "{d}/htdocs"
ScriptAliasMatch "^/.*" "{d}/cgi-bin/env.cgi"
SSLEngine on
SSLCertificateFile "{pki}/server.pem"
SSLCertificateKeyFile "{pki}/server.key"
SSLCACertificateFile "{pki}/ca.pem"
SSLVerifyDepth 2
"#,
            port = self.port,
            m = MODULES,
            so = module_path().display(),
        );
        let first_body_line = head.lines().count() + 1;
        fs::write(self.path("conf/httpd.conf"), head + body).unwrap();
        first_body_line
    }

    fn apache2(&self, args: &[&str]) -> Output {
        Command::new(APACHE)
            .arg("-d")
            .arg(&self.dir)
            .args(["-f", "conf/httpd.conf"])
            .args(args)
            .output()
            .expect("running apache2")
    }

    /// `apache2 -t`: (success, stdout + stderr).
    fn configtest(&self) -> (bool, String) {
        let out = self.apache2(&["-t"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn start(&mut self) {
        let out = self.apache2(&["-k", "start"]);
        self.started = true;
        assert!(
            out.status.success(),
            "apache2 -k start failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.error_log()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.pid().is_some() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        panic!("Apache did not come up on port {}:\n{}", self.port, self.error_log());
    }

    fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.path("logs/httpd.pid")).ok()?.trim().parse().ok()
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.path("logs/error.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port, path)
    }

    fn request(&self, client: Option<&str>, method: &str, path: &str) -> Reply {
        curl(&self.pki, client, method, &self.url(path), &["--resolve", &self.resolve()])
    }

    fn request_with(&self, client: Option<&str>, method: &str, path: &str, extra: &[&str]) -> Reply {
        let resolve = self.resolve();
        let mut args = vec!["--resolve", resolve.as_str()];
        args.extend_from_slice(extra);
        curl(&self.pki, client, method, &self.url(path), &args)
    }

    fn resolve(&self) -> String {
        format!("localhost:{}:127.0.0.1", self.port)
    }

    fn status(&self, client: Option<&str>, method: &str, path: &str) -> u16 {
        self.request(client, method, path).status
    }

    /// Waits until `check` holds (a reload reaching the workers), or panics.
    fn wait_for(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}:\n{}", self.error_log());
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while proc_dir.exists() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
    }
}

/// The value of `KEY=` in a CGI reply.
fn env_of(reply: &Reply, key: &str) -> String {
    let prefix = format!("{key}=");
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in the backend's reply: {:?}", reply))
        .to_string()
}

fn deny_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("CA00010")).collect()
}

// ---- the shared case table -------------------------------------------------

#[test]
fn shared_cases_decide_as_the_table_says() {
    let mut apache = Apache::new("shared");
    apache.write_conf(
        r#"SSLVerifyClient optional_no_ca
CertAuthzPolicy shared.policy
<Location "/">
    CertAuthz On
    CertAuthzUser subject.CN
</Location>
"#,
    );
    apache.start();

    let mut failures = Vec::new();
    for (expected, client, method, path) in SHARED_CASES {
        let want = if *expected == "ALLOW" { 200 } else { 403 };
        let got = apache.status(Some(client), method, path);
        if got != want {
            failures.push(format!("{expected} {client} {method} {path}: got {got}"));
        }
    }
    assert!(failures.is_empty(), "cases failed:\n{}\n{}", failures.join("\n"), apache.error_log());

    // No certificate, and a certificate from an untrusted CA with alice's
    // very name (optional_no_ca lets it through the handshake): both denied
    // on a path that `any` verified client may see.
    assert_eq!(apache.status(Some("alice"), "GET", "/status"), 200);
    assert_eq!(apache.status(None, "GET", "/status"), 403);
    assert_eq!(apache.status(Some("rogue"), "GET", "/status"), 403);
    assert_eq!(apache.status(Some("rogue"), "GET", "/users/alice/profile"), 403);

    // The query string is never matched, and the server's normalized path
    // is the one decided on.
    assert_eq!(apache.status(Some("alice"), "GET", "/status?/admin/x"), 200);
    let r = apache.request_with(Some("alice"), "GET", "/status/../admin/x", &["--path-as-is"]);
    assert_eq!(r.status, 403, "{r:?}");
    let r = apache.request_with(Some("opsbot"), "GET", "/corp/../admin/x", &["--path-as-is"]);
    assert_eq!(r.status, 200, "{r:?}");

    let log = apache.error_log();
    assert!(log.contains("reason: "), "{log}");
    assert!(
        deny_lines(&log).iter().any(|l| l.contains("subject \"-\"") && l.contains("GET /status")),
        "no deny line for the request without a certificate:\n{log}"
    );
    assert!(
        deny_lines(&log).iter().any(|l| l.contains("(unverified)") && l.contains("GET /status")),
        "no deny line for the untrusted certificate:\n{log}"
    );
}

// ---- scopes, the authz provider, report mode, the backend's view ----------

const SCOPES_CONF: &str = r#"SSLVerifyClient optional_no_ca
CertAuthzPolicy shared.policy
CertAuthzUser subject.CN
# A client header copied into the environment, and a configured value: the
# module's own variables must win over both.
SetEnvIf X-Forge "(.+)" CERT_AUTHZ_SUBJECT=$1 CERT_AUTHZ_USER=$1
SetEnv CERT_AUTHZ_RULE forged-by-config
<Location "/">
    CertAuthz On
</Location>
<Location "/nested">
    # A rule that names a group defined by a later rule of the same scope.
    CertAuthzRule "allow GET /nested/** group=readers"
    CertAuthzRule "group readers subject.CN=alice"
    CertAuthzRule "group readers subject.CN=reporter"
</Location>
<Location "/nested/narrow">
    CertAuthzRule "allow GET /nested/narrow/** subject.CN=reporter"
</Location>
<Location "/nested/narrow/off">
    CertAuthz Off
</Location>
<Location "/report">
    CertAuthzMode report
</Location>
<Location "/mixed">
    CertAuthz Off
    CertAuthzRule "allow GET /mixed/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/local">
    CertAuthz Off
    CertAuthzRule "allow GET /local/** subject.CN=alice"
    <RequireAny>
        Require ip 127.0.0.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/mixed-report">
    CertAuthz Off
    CertAuthzMode report
    CertAuthzRule "allow GET /mixed-report/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
"#;

#[test]
fn scopes_provider_report_mode_and_backend_environment() {
    let mut apache = Apache::new("scopes");
    apache.write_conf(SCOPES_CONF);
    apache.start();

    // Nested <Location>: /nested replaces the server policy, /nested/inner
    // inherits /nested's, /nested/narrow replaces it again.
    assert_eq!(apache.status(Some("alice"), "GET", "/nested/a"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/nested/inner/a"), 200);
    assert_eq!(apache.status(Some("opsbot"), "GET", "/nested/inner/a"), 403);
    assert_eq!(apache.status(Some("alice"), "POST", "/nested/a"), 403);
    assert_eq!(apache.status(Some("alice"), "GET", "/status"), 200, "the server policy applies at /");
    assert_eq!(apache.status(Some("alice"), "GET", "/nested/status"), 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/nested/narrow/x"), 403);
    assert_eq!(apache.status(Some("reporter"), "GET", "/nested/narrow/x"), 200);
    assert_eq!(apache.status(None, "GET", "/nested/narrow/off/x"), 200, "CertAuthz Off");

    // Require cert-authz inside <RequireAny>.
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(None, "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(Some("rogue"), "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(Some("reporter"), "GET", "/local/x"), 200, "Require ip grants");
    assert_eq!(apache.status(None, "GET", "/local/x"), 200, "Require ip grants");

    // Report mode in a <RequireAny>: cert-authz grants what it allows, and
    // what it would refuse is left to the other lines, never granted.
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed-report/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed-report/x"), 403);
    assert_eq!(apache.status(None, "GET", "/mixed-report/x"), 403);

    // Report mode: decides, logs, exports, never refuses.
    let r = apache.request(Some("reporter"), "GET", "/report/x");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(env_of(&r, "CERT_AUTHZ_DECISION"), "deny");
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "");
    assert_eq!(env_of(&r, "REMOTE_USER"), "");
    let r = apache.request(None, "GET", "/report/y");
    assert_eq!(r.status, 200, "{r:?}");
    let log = apache.error_log();
    assert!(
        log.lines()
            .any(|l| l.contains("CA00013") && l.contains("GET /report/x") && l.contains("CN=reporter")),
        "no report-mode line:\n{log}"
    );
    assert!(!deny_lines(&log).iter().any(|l| l.contains("/report/")), "report mode logged a deny:\n{log}");

    // What the backend sees on allow, with forging attempts by header.
    let r = apache.request_with(
        Some("alice"),
        "GET",
        "/users/alice/x?CERT_AUTHZ_USER=evil",
        &["-H", "X-Forge: mallory", "-H", "CERT_AUTHZ_USER: mallory", "-H", "Cert-Authz-User: mallory"],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(env_of(&r, "CERT_AUTHZ_DECISION"), "allow");
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(env_of(&r, "REMOTE_USER"), "alice");
    let subject = env_of(&r, "CERT_AUTHZ_SUBJECT");
    assert!(subject.starts_with("CN=alice,") && subject.contains("O=Example Corp"), "{subject}");
    let rule = env_of(&r, "CERT_AUTHZ_RULE");
    assert!(rule.ends_with("shared.policy:6"), "rule {rule}");
    assert!(!env_of(&r, "HTTP_CERT_AUTHZ_USER").contains("alice"));

    // mallory's CN pretends to carry an O: no user, no allow.
    let r = apache.request_with(Some("mallory"), "GET", "/corp/x", &["-H", "X-Forge: alice"]);
    assert_eq!(r.status, 403, "{r:?}");

    // The deny line: client, method, path, subject, reason, rule.
    let r = apache.request_with(Some("opsbot"), "DELETE", "/admin/secrets/key", &["--http1.1"]);
    assert_eq!(r.status, 403);
    let log = apache.error_log();
    let line = deny_lines(&log)
        .into_iter()
        .find(|l| l.contains("DELETE /admin/secrets/key"))
        .unwrap_or_else(|| panic!("no deny line:\n{log}"))
        .to_string();
    assert!(line.contains("[cert_authz:error]"), "{line}");
    assert!(line.contains("[client 127.0.0.1:"), "{line}");
    assert!(line.contains("client denied by cert-authz: DELETE /admin/secrets/key"), "{line}");
    assert!(line.contains("subject \"CN=opsbot,"), "{line}");
    assert!(line.contains("reason: "), "{line}");
    assert!(line.contains("shared.policy:8"), "{line}");
    // One line per deny.
    assert_eq!(deny_lines(&log).iter().filter(|l| l.contains("/admin/secrets/key")).count(), 1);
    // The version, once per configuration load.
    assert!(log.contains("CA00005: cert-authz "), "no version line:\n{log}");
}

// ---- HTTP/2 ------------------------------------------------------------------

#[test]
fn http2_streams_share_the_connection_identity() {
    let mut apache = Apache::new("h2");
    apache.write_conf_with(
        r#"SSLVerifyClient require
CertAuthzPolicy shared.policy
<Location "/">
    CertAuthz On
    CertAuthzUser subject.CN
</Location>
"#,
        "h2 http/1.1",
        "LogLevel warn cert_authz:trace1",
    );
    apache.start();

    // Many streams of one connection in parallel, on the event MPM's
    // worker threads, all using the one cached identity.
    let paths: Vec<(String, u16)> = (0..24)
        .map(|i| match i % 4 {
            0 => (format!("/status?{i}"), 200),
            1 => (format!("/users/alice/{i}"), 200),
            2 => (format!("/users/bob/{i}"), 403),
            _ => (format!("/admin/{i}"), 403),
        })
        .collect();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http2", "--parallel", "--parallel-max", "8"])
        .arg("--cacert")
        .arg(apache.pki.path("ca.pem"))
        .arg("--cert")
        .arg(apache.pki.cert("alice"))
        .arg("--key")
        .arg(apache.pki.key("alice"))
        .args(["--resolve", &apache.resolve()])
        .args(["-w", "%{url_effective} %{http_code} %{http_version} %{num_connects}\\n"]);
    for (path, _) in &paths {
        cmd.args(["-o", "/dev/null"]).arg(apache.url(path));
    }
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for (path, want) in &paths {
        let url = apache.url(path);
        let line = text
            .lines()
            .find(|l| l.split(' ').next() == Some(url.as_str()))
            .unwrap_or_else(|| panic!("no result for {url}:\n{text}"));
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], want.to_string(), "{line}\n{}", apache.error_log());
        assert_eq!(fields[2], "2", "not HTTP/2: {line}");
    }
    let connects: u32 = text.lines().map(|l| l.split(' ').nth(3).unwrap().parse::<u32>().unwrap()).sum();
    assert!(connects <= 8, "streams were not multiplexed: {connects} connections\n{text}");
    // Parsed once per connection, from the TLS session (mod_ssl's
    // ssl_pre_handshake hook), not once per request.
    let log = apache.error_log();
    let parses: Vec<&str> = log.lines().filter(|l| l.contains("CA00014")).collect();
    assert!(!parses.is_empty() && parses.len() as u32 <= connects, "{connects} connections:\n{log}");
    assert!(parses.iter().all(|l| l.contains("from the TLS session")), "{log}");

    // Over h2 the backend sees the identity too.
    let r = apache.request_with(Some("alice"), "GET", "/users/alice/env", &["--http2"]);
    assert_eq!(r.status, 200);
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
}

// ---- a per-location SSLVerifyClient: TLS 1.3 post-handshake auth ---------------

#[test]
fn per_location_verify_client_uses_the_post_handshake_certificate() {
    let mut apache = Apache::new("pha");
    apache.write_conf_with(
        r#"SSLVerifyClient none
SSLProtocol -all +TLSv1.3
<Location "/pha">
    SSLVerifyClient require
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /pha/** subject.CN=alice"
</Location>
<Location "/strict">
    CertAuthz On
    CertAuthzRule "allow GET /strict/** any"
</Location>
# On, but nothing gives this location a policy: refused per request.
<Location "/nopolicy">
    CertAuthz On
</Location>
"#,
        "http/1.1",
        "LogLevel warn cert_authz:debug",
    );
    apache.start();

    // The handshake carries no certificate; /pha asks for one afterwards.
    let r = apache.request(Some("alice"), "GET", "/pha/x");
    assert_eq!(r.status, 200, "{r:?}\n{}", apache.error_log());
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(apache.status(Some("reporter"), "GET", "/pha/x"), 403);
    // Without a certificate to give, mod_ssl itself ends the connection
    // (curl's status 0); it never reaches a backend.
    let none = apache.status(None, "GET", "/pha/x");
    assert!(none == 0 || none == 403, "no certificate got {none}");
    // Where no certificate was requested, none counts.
    assert_eq!(apache.status(Some("alice"), "GET", "/strict/x"), 403);

    // A location that is on without any policy fails closed, with a 500
    // (the server's own fault) and a line saying why.
    assert_eq!(apache.status(Some("alice"), "GET", "/nopolicy/x"), 500);
    assert!(apache.error_log().contains("CA00020"), "{}", apache.error_log());

    // One connection: first no certificate, then post-handshake auth; the
    // certificate change on the connection is noticed.
    let statuses = one_connection(&apache, &[], &["/strict/a", "/pha/b", "/pha/c"]);
    assert_eq!(statuses, ["403 1", "200 0", "200 0"], "{}", apache.error_log());

    let log = apache.error_log();
    assert!(log.contains("CA00012: allowed by cert-authz: GET /pha/b"), "LogLevel cert_authz:debug:\n{log}");
}

#[test]
fn per_location_verify_client_renegotiates_on_tls_1_2() {
    // TLS 1.2: mod_ssl renegotiates for the location's SSLVerifyClient, and
    // the certificate that appears on the connection is the one decided.
    let mut apache = Apache::new("reneg");
    apache.write_conf_with(
        r#"SSLVerifyClient none
SSLProtocol -all +TLSv1.2
<Location "/reneg">
    SSLVerifyClient require
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /reneg/** subject.CN=alice"
</Location>
<Location "/strict">
    CertAuthz On
    CertAuthzRule "allow GET /strict/** any"
</Location>
"#,
        "http/1.1",
        "LogLevel warn cert_authz:debug",
    );
    apache.start();

    let r = apache.request(Some("alice"), "GET", "/reneg/x");
    assert_eq!(r.status, 200, "{r:?}\n{}", apache.error_log());
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(apache.status(Some("reporter"), "GET", "/reneg/x"), 403);

    // One connection: no certificate first, then a renegotiation brings
    // alice's; the change on the connection is noticed.
    let statuses = one_connection(&apache, &["--tls-max", "1.2"], &["/strict/a", "/reneg/b"]);
    assert_eq!(statuses, ["403 1", "200 0"], "{}", apache.error_log());
}

/// Requests `paths` in order on one curl invocation as alice (curl reuses
/// the connection); one "STATUS NEW_CONNECTIONS" line per path.
fn one_connection(apache: &Apache, tls: &[&str], paths: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http1.1"])
        .args(tls)
        .arg("--cacert")
        .arg(apache.pki.path("ca.pem"))
        .arg("--cert")
        .arg(apache.pki.cert("alice"))
        .arg("--key")
        .arg(apache.pki.key("alice"))
        .args(["--resolve", &apache.resolve()])
        .args(["-w", "%{http_code} %{num_connects}\\n"]);
    for path in paths {
        cmd.args(["-o", "/dev/null"]).arg(apache.url(path));
    }
    let out = cmd.output().expect("running curl");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

// ---- graceful restarts -----------------------------------------------------------

#[test]
fn graceful_restart_changes_the_policy_and_a_broken_one_keeps_the_old() {
    let mut apache = Apache::new("graceful");
    let policy = apache.path("g.policy");
    fs::write(&policy, "allow GET /g/** subject.CN=alice\n").unwrap();
    apache.write_conf_with(
        r#"SSLVerifyClient require
CertAuthzPolicy g.policy
<Location "/">
    CertAuthz On
</Location>
"#,
        "h2 http/1.1",
        "LogLevel warn cert_authz:crit",
    );
    apache.start();
    let pid = apache.pid();
    assert_eq!(apache.status(Some("alice"), "GET", "/g/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/g/x"), 403);

    fs::write(&policy, "# now for reporter\nallow GET /g/** subject.CN=reporter\n").unwrap();
    let out = apache.apache2(&["-k", "graceful"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    apache.wait_for("the new policy", || apache.status(Some("reporter"), "GET", "/g/x") == 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/g/x"), 403);

    // A broken policy: the restart is refused with FILE:LINE, the server
    // keeps running on the policy it has.
    fs::write(&policy, "allow GET /g/** subject.CN=alice\nallow GET /g/** subject.NOPE=x\n").unwrap();
    let out = apache.apache2(&["-k", "graceful"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken policy was accepted:\n{text}");
    assert!(text.contains("g.policy:2:"), "no FILE:LINE in:\n{text}");
    sleep(Duration::from_millis(500));
    assert_eq!(apache.pid(), pid);
    assert_eq!(apache.status(Some("reporter"), "GET", "/g/x"), 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/g/x"), 403);

    // LogLevel cert_authz:crit silences the (error-level) deny lines.
    assert!(deny_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}

// ---- configuration errors ----------------------------------------------------------

#[test]
fn configuration_errors_stop_configtest() {
    let apache = Apache::new("configtest");

    // A working configuration first, with a rule naming a group that a
    // later rule defines.
    apache.write_conf(
        r#"CertAuthzPolicy shared.policy
<Location "/x">
    CertAuthz On
    CertAuthzRule "allow GET /x/** group=late"
    <IfModule ssl_module>
        CertAuthzRule "group late subject.CN=alice"
    </IfModule>
    CertAuthzMode report
    CertAuthzUser san.uri
</Location>
"#,
    );
    let (ok, text) = apache.configtest();
    assert!(ok, "a good configuration failed:\n{text}");

    // A broken policy file: its FILE:LINE in the output.
    fs::write(apache.path("broken.policy"), "# fine\nallow GET /a any\nallow GET /b subject.NOPE=1\n")
        .unwrap();
    apache.write_conf("CertAuthzPolicy broken.policy\n");
    let (ok, text) = apache.configtest();
    assert!(!ok, "{text}");
    assert!(text.contains("broken.policy:3:"), "{text}");

    // A broken inline rule: the configuration file's FILE:LINE.
    let start =
        apache.write_conf("<Location \"/\">\n    CertAuthzRule \"allow GET /x frobnicate\"\n</Location>\n");
    let (ok, text) = apache.configtest();
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("httpd.conf:{}:", start + 1)), "{text}");

    // A missing policy file.
    apache.write_conf("CertAuthzPolicy no-such.policy\n");
    let (ok, text) = apache.configtest();
    assert!(!ok, "{text}");
    assert!(text.contains("no-such.policy"), "{text}");

    // A group that nobody defines.
    apache.write_conf("<Location \"/\">\n    CertAuthzRule \"allow GET /x group=nobody\"\n</Location>\n");
    let (ok, text) = apache.configtest();
    assert!(!ok, "{text}");

    // CertAuthz On with no policy at all.
    apache.write_conf("<Location \"/\">\n    CertAuthz On\n</Location>\n");
    let (ok, text) = apache.configtest();
    assert!(!ok, "{text}");
    assert!(text.contains("no CertAuthzPolicy or CertAuthzRule"), "{text}");

    // Unknown values refuse to start.
    for bad in [
        "CertAuthzPolicy shared.policy\nCertAuthzMode audit\n",
        "CertAuthzPolicy shared.policy\nCertAuthz maybe\n",
        "CertAuthzPolicy shared.policy\nCertAuthzUser subject.NOPE\n",
        "CertAuthzPolicy shared.policy\n<Location \"/\">\n    Require cert-authz please\n</Location>\n",
    ] {
        apache.write_conf(bad);
        let (ok, text) = apache.configtest();
        assert!(!ok, "accepted:\n{bad}\n{text}");
    }
}

// ---- subrequests: a new URI is a new decision ---------------------------------------

#[test]
fn subrequests_with_the_same_configuration_are_decided_again() {
    let mut apache = Apache::new("subrequest");
    for (file, text) in [
        ("htdocs/pub/page.shtml", "page:<!--#include virtual=\"/secret/s.txt\" -->:end\n"),
        ("htdocs/pub/ok.shtml", "page:<!--#include virtual=\"/pub/p.txt\" -->:end\n"),
        ("htdocs/pub/p.txt", "public-text"),
        ("htdocs/secret/s.txt", "secret-text"),
    ] {
        let path = apache.path(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(apache.path("htdocs")).status();
    // No ScriptAliasMatch here: the files are served by mod_include.
    let body = r#"SSLVerifyClient require
LoadModule include_module /usr/lib/apache2/modules/mod_include.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
TypesConfig /etc/mime.types
<Directory "DIR/htdocs">
    Options +Includes
    AddOutputFilter INCLUDES .shtml
    AddType text/html .shtml
</Directory>
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /pub/** any"
</Location>
"#
    .replace("DIR", &apache.dir.display().to_string());
    apache.write_conf(&body);
    let conf = fs::read_to_string(apache.path("conf/httpd.conf")).unwrap();
    fs::write(apache.path("conf/httpd.conf"), conf.replace("ScriptAliasMatch", "#ScriptAliasMatch")).unwrap();
    apache.start();

    let r = apache.request(Some("alice"), "GET", "/pub/ok.shtml");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("public-text"), "{r:?}\n{}", apache.error_log());
    assert_eq!(apache.status(Some("alice"), "GET", "/secret/s.txt"), 403);
    let r = apache.request(Some("alice"), "GET", "/pub/page.shtml");
    assert!(!r.body.contains("secret-text"), "a subrequest bypassed the policy: {r:?}");
    assert!(
        deny_lines(&apache.error_log()).iter().any(|l| l.contains("GET /secret/s.txt")),
        "{}",
        apache.error_log()
    );
}

// ---- configurations that must not get around the policy --------------------

/// The lines of the error log that are cert-authz denies of `path`.
fn denies_of<'a>(log: &'a str, path: &str) -> Vec<&'a str> {
    let needle = format!(" {path},");
    deny_lines(log).into_iter().filter(|l| l.contains(&needle)).collect()
}

#[test]
fn satisfy_any_cannot_lift_a_refusal_and_require_lines_log_once() {
    let mut apache = Apache::new("satisfy-any");
    apache.write_conf(&format!(
        r#"SSLVerifyClient optional_no_ca
LoadModule access_compat_module {MODULES}/mod_access_compat.so
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /open/** subject.CN=alice"
    CertAuthzRule "allow GET /compat-allow/** subject.CN=alice"
    CertAuthzRule "allow GET /compat-deny/** subject.CN=alice"
    Satisfy Any
    Require all granted
</Location>
<Location "/compat-allow">
    Order allow,deny
    Allow from all
</Location>
<Location "/compat-deny">
    Order deny,allow
    Deny from all
</Location>
<Location "/mixed">
    CertAuthz Off
    # Inherited Satisfy Any would skip every Require line (httpd's rule).
    Satisfy All
    CertAuthzRule "allow GET /mixed/** subject.CN=alice"
    <RequireAny>
        Require ip 127.0.0.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/mixed-none">
    CertAuthz Off
    Satisfy All
    CertAuthzRule "allow GET /mixed-none/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
"#
    ));
    apache.start();

    // Satisfy Any with Require all granted, with mod_access_compat granting,
    // refusing or silent: the policy's refusal stands.
    // (What Deny from all does to alice there is mod_access_compat's call.)
    for path in ["/open/x", "/compat-allow/x"] {
        assert_eq!(apache.status(Some("alice"), "GET", path), 200, "alice {path}");
    }
    for path in ["/open/x", "/compat-allow/x", "/compat-deny/x"] {
        assert_eq!(apache.status(Some("reporter"), "GET", path), 403, "reporter {path}");
        assert_eq!(apache.status(Some("rogue"), "GET", path), 403, "rogue {path}");
        assert_eq!(apache.status(None, "GET", path), 403, "no certificate {path}");
    }
    assert_eq!(apache.status(Some("alice"), "POST", "/open/y"), 403);

    // Require cert-authz stays one vote among the Require lines.
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed/x"), 200, "Require ip grants");
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed-none/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed-none/x"), 403);

    // One deny line per refused request, none where another line granted.
    // The provider's line is written when the request ends.
    apache.wait_for("the provider's deny line", || !denies_of(&apache.error_log(), "/mixed-none/x").is_empty());
    let log = apache.error_log();
    for path in ["/open/x", "/compat-allow/x", "/compat-deny/x"] {
        assert_eq!(denies_of(&log, path).len(), 3, "{path}:\n{log}");
    }
    assert_eq!(denies_of(&log, "/mixed-none/x").len(), 1, "{log}");
    assert!(denies_of(&log, "/mixed-none/x")[0].contains("CN=reporter"), "{log}");
    assert!(denies_of(&log, "/mixed/x").is_empty(), "a request that Require ip granted was logged as denied:\n{log}");
    assert!(!deny_lines(&log).iter().any(|l| l.contains(": GET ") && l.contains("subject \"CN=alice")), "{log}");
}

#[test]
fn an_encoded_slash_never_reaches_a_decoding_backend() {
    let backend = Backend::start();
    let mut apache = Apache::new("encoded-slash");
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
AllowEncodedSlashes NoDecode
ProxyPass "/api/" "http://127.0.0.1:{port}/api/" nocanon
<Location "/">
    CertAuthz On
    CertAuthzRule "allow * /api/** any"
    CertAuthzRule "deny * /api/admin/** any"
</Location>
"#,
        port = backend.port
    ));
    apache.start();

    assert_eq!(apache.status(Some("alice"), "GET", "/api/reports/1"), 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/api/admin/users"), 403);
    for path in ["/api/admin%2Fusers", "/api/admin%2fusers", "/api/x%2F..%2Fadmin%2Fusers"] {
        let r = apache.request_with(Some("alice"), "GET", path, &["--path-as-is"]);
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    let requests = backend.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "only the allowed request reaches the backend: {requests:?}");
    assert!(requests[0][0].starts_with("GET /api/reports/1 "), "{requests:?}");
    let log = apache.error_log();
    assert!(
        deny_lines(&log).iter().any(|l| l.contains("/api/admin%2Fusers") && l.contains("path is not unambiguous")),
        "{log}"
    );
}

#[test]
fn the_user_handed_on_is_the_value_that_was_authorized() {
    let mut apache = Apache::new("user-choice");
    apache.write_conf(
        r#"SSLVerifyClient require
CertAuthzUser subject.CN
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /ops/** subject.CN=opsbot"
    CertAuthzRule "allow GET /home/{subject.CN}/** any"
    CertAuthzRule "allow GET /any/** any"
</Location>
"#,
    );
    apache.start();

    // twocn has CN=admin and CN=opsbot, in that order.
    let r = apache.request(Some("twocn"), "GET", "/ops/x");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "opsbot");
    assert_eq!(env_of(&r, "REMOTE_USER"), "opsbot");
    let r = apache.request(Some("twocn"), "GET", "/home/admin/x");
    assert_eq!((r.status, env_of(&r, "REMOTE_USER")), (200, "admin".to_string()), "{r:?}");
    let r = apache.request(Some("twocn"), "GET", "/home/opsbot/x");
    assert_eq!((r.status, env_of(&r, "REMOTE_USER")), (200, "opsbot".to_string()), "{r:?}");
    // `any` authorizes no CN more than the other: refused.
    assert_eq!(apache.status(Some("twocn"), "GET", "/any/x"), 403);
    let r = apache.request(Some("alice"), "GET", "/any/x");
    assert_eq!((r.status, env_of(&r, "REMOTE_USER")), (200, "alice".to_string()), "{r:?}");

    let log = apache.error_log();
    let lines = denies_of(&log, "/any/x");
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("several values"), "{log}");
}

#[test]
fn identity_headers_for_proxies_cannot_be_forged_in_any_spelling() {
    let backend = Backend::start();
    let mut apache = Apache::new("request-header");
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
LoadModule headers_module {MODULES}/mod_headers.so
ProxyPass "/app/" "http://127.0.0.1:{port}/app/"
ProxyPass "/open/" "http://127.0.0.1:{port}/open/"
CertAuthzUser subject.CN
<Location "/app">
    CertAuthz On
    CertAuthzRule "allow GET /app/** any"
    CertAuthzRequestHeader X-Client-Identity user
    CertAuthzRequestHeader X-Client-Subject subject
    # An old setup's header, set before the module's: the module wins.
    RequestHeader set X-Client-Identity "expr=%{{reqenv:HTTP_X_FORGE}}"
</Location>
<Location "/open">
    # No decision here, yet nobody may pose as an identity either.
    CertAuthzRequestHeader X-Client-Identity user
</Location>
"#,
        port = backend.port
    ));
    apache.start();

    let forged = [
        "-H", "X-Client-Identity: admin", "-H", "X_Client_Identity: admin", "-H", "x-client_identity: admin",
        "-H", "X-CLIENT-SUBJECT: CN=admin", "-H", "X-Forge: admin",
    ];
    let r = apache.request_with(Some("alice"), "GET", "/app/x", &forged);
    assert_eq!(r.status, 200, "{r:?}");
    let r = apache.request_with(Some("alice"), "GET", "/open/x", &forged);
    assert_eq!(r.status, 200, "{r:?}");

    let folded = |line: &str| line.split_once(':').map(|(n, v)| (n.to_ascii_lowercase().replace('_', "-"), v.trim().to_string()));
    let requests = backend.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let headers = |i: usize, name: &str| -> Vec<String> {
        requests[i].iter().skip(1).filter_map(|l| folded(l)).filter(|(n, _)| n == name).map(|(_, v)| v).collect()
    };
    assert_eq!(headers(0, "x-client-identity"), vec!["alice"], "{:?}", requests[0]);
    let subject = headers(0, "x-client-subject");
    assert_eq!(subject.len(), 1, "{:?}", requests[0]);
    assert!(subject[0].starts_with("CN=alice,"), "{subject:?}");
    assert!(headers(1, "x-client-identity").is_empty(), "{:?}", requests[1]);
}

#[test]
fn php_fpm_through_proxy_fcgi_reads_only_the_authorized_identity() {
    let php = common::PhpFpm::start("apache");
    let mut apache = Apache::new("php-fpm");
    // ProxyPassMatch sends SCRIPT_FILENAME as proxy:fcgi://HOST:PORT/PATH,
    // which php-fpm turns back into PATH (checked below).
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_fcgi_module {MODULES}/mod_proxy_fcgi.so
ProxyPassMatch "^/php/.*$" "fcgi://127.0.0.1:{port}{docroot}/who.php"
<Location "/php/">
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /php/** subject.CN=alice"
    CertAuthzRule "allow GET /php/** subject.CN=reporter"
    CertAuthzRequestHeader X-Client-Identity user
</Location>
"#,
        port = php.port,
        docroot = php.docroot.display(),
    ));
    apache.start();

    let forged = [
        "-H", "Authorization: Basic YWRtaW46eA==", "-H", "X-Client-Identity: admin",
        "-H", "X_Client_Identity: admin", "-H", "Remote-User: admin",
    ];
    let r = apache.request_with(Some("reporter"), "GET", "/php/who", &forged);
    assert_eq!(r.status, 200, "{r:?}\n{}", php.logs());
    let php_value = |key: &str| common::PhpFpm::value(&r, key);
    assert_eq!(php_value("SCRIPT_FILENAME"), format!("{}/who.php", php.docroot.display()), "{r:?}");
    assert_eq!(php_value("CERT_AUTHZ_DECISION"), "allow", "{r:?}");
    assert_eq!(php_value("REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(php_value("CERT_AUTHZ_USER"), "reporter", "{r:?}");
    assert_eq!(php_value("HTTP_X_CLIENT_IDENTITY"), "reporter", "{r:?}");
    // httpd keeps the Authorization header from FastCGI (no CGIPassAuth).
    assert_eq!(php_value("PHP_AUTH_USER"), "", "{r:?}");
    // Only the header that names itself Remote-User still says admin, as a header.
    assert_eq!(php_value("ADMIN_KEYS"), "HTTP_REMOTE_USER", "{r:?}");

    // Refused: a 403 from Apache, and PHP never runs.
    let r = apache.request_with(Some("opsbot"), "GET", "/php/refused", &forged);
    assert_eq!(r.status, 403, "{r:?}");
    let r = apache.request(Some("alice"), "GET", "/php/after");
    assert_eq!((r.status, common::PhpFpm::value(&r, "REMOTE_USER")), (200, "alice".to_string()), "{r:?}");
    let reached = php.wait_for_request("/php/after");
    assert_eq!(reached, ["/php/who user=reporter", "/php/after user=alice"], "{}", php.logs());
    assert_eq!(denies_of(&apache.error_log(), "/php/refused").len(), 1, "{}", apache.error_log());
}
