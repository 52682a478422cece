//! `Server` for Apache httpd with mod_ssl and mod_cert_authz: its own
//! ServerRoot (a scratch directory), event MPM, `User www-data`, stopped by
//! the pid in its PidFile.  Every path is served by one CGI script that
//! prints the environment a backend sees.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::server::{
    built_module, quoted, sanitizer_env, Daemon, Kind, LogLevel, Scope, Server, Site, Verify,
};
use super::{free_port, pki, scratch, Pki, SHARED_POLICY};

pub const APACHE: &str = "/usr/sbin/apache2";
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// The echo backend: every request lands here and prints what it was given.
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

/// The module under test (target/release/mod_cert_authz.so), or the one
/// CERT_AUTHZ_APACHE_MODULE names (`make test-sanitize`'s).
pub fn module() -> PathBuf {
    if let Some(path) = std::env::var_os("CERT_AUTHZ_APACHE_MODULE") {
        return PathBuf::from(path);
    }
    built_module("mod_cert_authz.so", &["module/apache/mod_cert_authz.c"])
}

/// One Apache instance.  Dropping it stops the server.
pub struct Apache {
    dir: PathBuf,
    port: u16,
    daemon: Daemon,
}

impl Apache {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes conf/httpd.conf: the common server setup, then `body`.
    /// Returns the line number where `body` starts.
    pub fn write_conf(&self, body: &str) -> usize {
        self.write_conf_with(body, "h2 http/1.1", "LogLevel warn cert_authz:info")
    }

    pub fn write_conf_with(&self, body: &str, protocols: &str, loglevel: &str) -> usize {
        let head = self.head(protocols, loglevel, &self.pki().path("ca.pem"));
        let first_body_line = head.lines().count() + 1;
        self.write_raw_conf(&(head + body));
        first_body_line
    }

    /// Writes `text` as the whole of conf/httpd.conf.
    pub fn write_raw_conf(&self, text: &str) {
        fs::write(self.path("conf/httpd.conf"), text).unwrap();
    }

    /// The common server setup: TLS on the port, the module, the CGI.
    fn head(&self, protocols: &str, loglevel: &str, client_ca: &Path) -> String {
        let d = self.dir.display();
        let pki = self.pki().dir.display();
        format!(
            r#"{common}StartServers 1
ScriptSock "{d}/run/cgid.sock"
SSLSessionCache "shmcb:{d}/run/ssl_scache(512000)"
Protocols {protocols}
KeepAlive On
DocumentRoot "{d}/htdocs"
ScriptAliasMatch "^/.*" "{d}/cgi-bin/env.cgi"
SSLEngine on
SSLCertificateFile "{pki}/server.pem"
SSLCertificateKeyFile "{pki}/server.key"
SSLCACertificateFile "{ca}"
SSLVerifyDepth 2
"#,
            common = server_head(
                self,
                loglevel,
                &[
                    "authz_core",
                    "authz_host",
                    "alias",
                    "cgid",
                    "env",
                    "setenvif",
                    "socache_shmcb",
                    "ssl",
                    "http2"
                ],
            ),
            ca = client_ca.display(),
        )
    }

    /// Runs apache2 on this server root with `args`.
    pub fn apache2(&self, args: &[&str]) -> Output {
        sanitizer_env(&mut Command::new(APACHE))
            .arg("-d")
            .arg(&self.dir)
            .args(["-f", "conf/httpd.conf"])
            .args(args)
            .output()
            .expect("running apache2")
    }

    /// curl's --resolve for `url()`.
    pub fn resolve(&self) -> String {
        format!("localhost:{}:127.0.0.1", self.port)
    }
}

/// The lines every Apache of the tests and benches starts with: its own
/// ServerRoot, loopback port, pid and runtime files and error log,
/// `loglevel` (a whole LogLevel line), `User www-data`, the event MPM, each
/// of `modules` (short names: "alias" loads mod_alias.so from Debian's
/// modules directory) and last the module under test.
pub fn server_head<S: Server>(server: &S, loglevel: &str, modules: &[&str]) -> String {
    let d = server.dir().display();
    let mut out = format!(
        "ServerRoot \"{d}\"\nServerName localhost\nListen 127.0.0.1:{port}\nPidFile \"{d}/logs/httpd.pid\"\n\
         DefaultRuntimeDir \"{d}/run\"\nMutex file:{d}/run default\nErrorLog \"{d}/logs/error.log\"\n\
         {loglevel}\nUser www-data\nGroup www-data\n",
        port = server.port(),
    );
    for name in ["mpm_event"].iter().chain(modules) {
        out += &format!("LoadModule {name}_module {MODULES}/mod_{name}.so\n");
    }
    out + &format!("LoadModule cert_authz_module {}\n", module().display())
}

/// The directives of one scope, in a `<Location>` or the server config.
fn scope_directives(scope: &Scope) -> String {
    let mut out = String::new();
    if let Some(on) = scope.enforce {
        let word = match on {
            "on" => "On",
            "off" => "Off",
            other => other,
        };
        out += &format!("    CertAuthz {word}\n");
    }
    if let Some(mode) = scope.mode {
        out += &format!("    CertAuthzMode {mode}\n");
    }
    if let Some(policy) = scope.policy {
        out += &format!("    CertAuthzPolicy {policy}\n");
    }
    for rule in scope.rules {
        out += &format!("    CertAuthzRule {}\n", quoted(rule));
    }
    if let Some(user) = scope.user {
        out += &format!("    CertAuthzUser {user}\n");
    }
    out
}

impl Server for Apache {
    /// A new server root with a CGI backend, shared.policy and no
    /// configuration yet.
    fn new(name: &str) -> Apache {
        assert!(Path::new(APACHE).is_file(), "{APACHE} is missing: install apache2");
        let dir = scratch(&format!("apache-{name}"));
        // httpd cuts a longer ScriptSock path (plus ".PID") to a socket
        // address's 108 bytes, and two servers could then share a socket.
        let sock = dir.join("run/cgid.sock.4194304");
        assert!(
            sock.as_os_str().len() < 108,
            "{}: too long for a socket, name the test shorter",
            sock.display()
        );
        for sub in ["conf", "logs", "run", "cgi-bin", "htdocs"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let cgi = dir.join("cgi-bin/env.cgi");
        fs::write(&cgi, ENV_CGI).unwrap();
        fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("shared.policy"), SHARED_POLICY).unwrap();
        let port = free_port();
        let daemon = Daemon::new("Apache", dir.join("logs/httpd.pid"), port, "-TERM");
        Apache { dir, port, daemon }
    }

    fn kind(&self) -> Kind {
        Kind::Apache
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn pki(&self) -> &'static Pki {
        pki()
    }

    fn configure(&self, site: &Site) {
        let protocols = if site.http2 { "h2 http/1.1" } else { "http/1.1" };
        let loglevel = match site.log {
            LogLevel::Warn => "LogLevel warn cert_authz:info",
            LogLevel::Crit => "LogLevel warn cert_authz:crit",
            LogLevel::Debug => "LogLevel warn cert_authz:trace1",
        };
        let ca = site.client_ca.map(Path::to_path_buf).unwrap_or_else(|| self.pki().path("ca.pem"));
        let verify = match site.verify {
            Verify::Require => "require",
            Verify::Optional => "optional",
            Verify::OptionalNoCa => "optional_no_ca",
        };
        let mut body = format!("SSLVerifyClient {verify}\n");
        if let Some(policy) = site.policy {
            body += &format!("CertAuthzPolicy {policy}\n");
        }
        // <Location> sections merge in the order they are written: the
        // enclosing ones first.
        let mut scopes = vec![Scope { path: "/", ..site.root }];
        scopes.extend_from_slice(site.scopes);
        scopes.sort_by_key(|s| s.path.len());
        for scope in scopes {
            body += &format!("<Location \"{}\">\n{}</Location>\n", scope.path, scope_directives(&scope));
        }
        let head = self.head(protocols, loglevel, &ca);
        self.write_raw_conf(&(head + &body));
    }

    fn conf_path(&self) -> PathBuf {
        self.path("conf/httpd.conf")
    }

    fn policy_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn config_test(&self) -> (bool, String) {
        let out = self.apache2(&["-t"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn start(&mut self) {
        let mut cmd = Command::new(APACHE);
        sanitizer_env(&mut cmd).arg("-d").arg(&self.dir).args(["-f", "conf/httpd.conf", "-k", "start"]);
        let log = self.path("logs/error.log");
        self.daemon.start(cmd, || fs::read_to_string(&log).unwrap_or_default());
    }

    /// `apache2 -k graceful` reads the configuration before it signals the
    /// server, and reports a broken one itself.
    fn reload(&self) -> Result<(), String> {
        let out = self.apache2(&["-k", "graceful"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(())
        } else {
            Err(text)
        }
    }

    fn pid(&self) -> Option<i32> {
        self.daemon.pid()
    }

    fn stop(&mut self) -> bool {
        self.daemon.stop()
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.path("logs/error.log")).unwrap_or_default()
    }

    /// httpd calls the address "remote" rather than "client" where the
    /// connection has no scoreboard slot: an HTTP/2 stream's.
    fn deny_line_context(&self) -> (&'static str, &'static [&'static str]) {
        ("[cert_authz:error]", &["[client 127.0.0.1:", "[remote 127.0.0.1:"])
    }

    fn certificate_parses(&self) -> Vec<String> {
        self.error_log().lines().filter(|l| l.contains("CA00014")).map(str::to_string).collect()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port, path)
    }

    fn curl_args(&self) -> Vec<String> {
        vec!["--resolve".to_string(), self.resolve()]
    }
}
