//! `Server` for the real nginx (/usr/sbin/nginx) with
//! ngx_http_cert_authz_module: its own prefix (a scratch directory), one
//! worker, `user www-data`, stopped by its master's pid.
//!
//! The module is target/release/ngx_http_cert_authz_module.so, built by
//! `make build`; CERT_AUTHZ_NGINX_MODULE names another one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::server::{
    built_module, children_of, quoted, sanitizer_env, Daemon, Kind, LogLevel, Scope, Server, Site, Verify,
};
use super::{free_port, pki, scratch, Pki};

pub const NGINX: &str = "/usr/sbin/nginx";

/// The module under test; panics (fails the test) when it is missing or
/// older than its source, which would test something else than the code.
pub fn module() -> PathBuf {
    if let Some(path) = std::env::var_os("CERT_AUTHZ_NGINX_MODULE") {
        return PathBuf::from(path);
    }
    built_module("ngx_http_cert_authz_module.so", &["module/nginx/ngx_http_cert_authz_module.c"])
}

/// One nginx instance: its prefix and the port of its TLS server.
/// Dropping it stops nginx.
pub struct Nginx {
    dir: PathBuf,
    port: u16,
    daemon: Daemon,
}

impl Nginx {
    /// A prefix with conf/nginx.conf holding `http_body` inside http{}
    /// (see `write_conf`).
    pub fn with_http(name: &str, http_body: &str) -> Nginx {
        let nginx = Nginx::new(name);
        nginx.write_conf(http_body);
        nginx
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes conf/nginx.conf with `http_body` inside http{}.  In
    /// `http_body`, PORT is the TLS server's port, PREFIX the prefix, PKI
    /// the PKI directory.
    pub fn write_conf(&self, http_body: &str) {
        let body = http_body
            .replace("PORT", &self.port.to_string())
            .replace("PREFIX", &self.dir.display().to_string())
            .replace("PKI", &self.pki().dir.display().to_string());
        self.write_http(&body);
    }

    /// Writes conf/nginx.conf with `body`, taken as it is, inside http{}.
    fn write_http(&self, body: &str) {
        let prefix = self.dir.display();
        self.write_raw_conf(&format!(
            "load_module {module};\n\
             user www-data;\n\
             worker_processes 1;\n\
             pid {prefix}/logs/nginx.pid;\n\
             error_log {prefix}/logs/error.log error;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             access_log {prefix}/logs/access.log;\n\
             {temp}\n\
             {body}\n\
             }}\n",
            module = module().display(),
            temp = self.temp_paths(),
        ));
    }

    /// The http{} directives that keep nginx's temporary files in this
    /// prefix (the packaged defaults are not ours to write), one per line.
    pub fn temp_paths(&self) -> String {
        let d = self.dir.display();
        [
            ("client_body", "body"),
            ("proxy", "proxy"),
            ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"),
            ("scgi", "scgi"),
        ]
        .iter()
        .map(|(kind, dir)| format!("{kind}_temp_path {d}/temp/{dir};"))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Writes `text` as the whole of conf/nginx.conf.
    pub fn write_raw_conf(&self, text: &str) {
        fs::write(self.path("conf/nginx.conf"), text).unwrap();
    }

    /// Writes a file into conf/ (policies, CA bundles).
    pub fn conf_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path("conf").join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// nginx on this prefix and configuration; add arguments and run it.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(NGINX);
        sanitizer_env(&mut cmd)
            .arg("-p")
            .arg(&self.dir)
            .args(["-c", "conf/nginx.conf", "-e"])
            .arg(self.path("logs/error.log"));
        cmd
    }

    /// Sends `sig` (e.g. "-HUP") to the master.
    pub fn signal(&self, sig: &str) {
        self.daemon.signal(sig);
    }
}

/// The directives of one scope, in a location or a server{}.
fn scope_directives(scope: &Scope) -> String {
    let mut out = String::new();
    if let Some(on) = scope.enforce {
        out += &format!("cert_authz {on};\n");
    }
    if let Some(mode) = scope.mode {
        out += &format!("cert_authz_mode {mode};\n");
    }
    if let Some(policy) = scope.policy {
        out += &format!("cert_authz_policy {policy};\n");
    }
    for rule in scope.rules {
        out += &format!("cert_authz_rule {};\n", quoted(rule));
    }
    if let Some(user) = scope.user {
        out += &format!("cert_authz_user {user};\n");
    }
    out
}

/// The location blocks for `path` and, nested in it, the scopes below it.
/// Each passes to the echo server on `app` (proxy_pass is not inherited).
fn location(path: &str, directives: &str, scopes: &[Scope], app: u16) -> String {
    let inside = |p: &str, outer: &str| p != outer && p.starts_with(outer);
    let mut out = format!("location {path} {{\n{directives}proxy_pass http://127.0.0.1:{app};\n");
    for scope in scopes {
        let nearest = !scopes.iter().any(|s| inside(s.path, path) && inside(scope.path, s.path));
        if inside(scope.path, path) && nearest {
            out += &location(scope.path, &scope_directives(scope), scopes, app);
        }
    }
    out + "}\n"
}

impl Server for Nginx {
    fn new(name: &str) -> Nginx {
        assert!(Path::new(NGINX).is_file(), "{NGINX} is missing: install nginx");
        let dir = scratch(&format!("nginx-{name}"));
        for sub in ["conf", "logs", "temp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let port = free_port();
        let daemon = Daemon::new("nginx", dir.join("logs/nginx.pid"), port, "-QUIT");
        Nginx { dir, port, daemon }
    }

    fn kind(&self) -> Kind {
        Kind::Nginx
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

    /// The TLS server and, in the same nginx, the echo server it proxies
    /// every location to: the module's variables travel in request headers
    /// and come back as `NAME=value` lines.
    fn configure(&self, site: &Site) {
        let app = free_port();
        let prefix = self.dir.display();
        let pki = self.pki().dir.display();
        let ca = site.client_ca.map(Path::to_path_buf).unwrap_or_else(|| self.pki().path("ca.pem"));
        let verify = match site.verify {
            Verify::Require => "on",
            Verify::Optional => "optional",
            Verify::OptionalNoCa => "optional_no_ca",
        };
        let mut logs = match site.log {
            LogLevel::Warn | LogLevel::Debug => format!("error_log {prefix}/logs/error.log warn;\n"),
            LogLevel::Crit => format!("error_log {prefix}/logs/error.log crit;\n"),
        };
        if let LogLevel::Debug = site.log {
            logs += &format!("error_log {prefix}/logs/debug.log debug;\n");
        }
        let policy = site.policy.map(|p| format!("cert_authz_policy {p};\n")).unwrap_or_default();
        let http2 = if site.http2 { " http2" } else { "" };
        let conf = format!(
            "{policy}\
             server {{\n\
             listen 127.0.0.1:{port} ssl{http2};\n\
             server_name localhost;\n\
             ssl_certificate {pki}/server.pem;\n\
             ssl_certificate_key {pki}/server.key;\n\
             ssl_client_certificate {ca};\n\
             ssl_verify_client {verify};\n\
             {logs}\
             {root}\
             proxy_set_header X-Cert-Authz-Decision $cert_authz_decision;\n\
             proxy_set_header X-Cert-Authz-Rule $cert_authz_rule;\n\
             proxy_set_header X-Cert-Authz-Subject $cert_authz_subject;\n\
             proxy_set_header X-Cert-Authz-User $cert_authz_user;\n\
             proxy_set_header X-Remote-User $remote_user;\n\
             {locations}\
             }}\n\
             server {{\n\
             listen 127.0.0.1:{app};\n\
             location / {{ return 200 \"URI=$request_uri\\n\
             CERT_AUTHZ_DECISION=$http_x_cert_authz_decision\\n\
             CERT_AUTHZ_RULE=$http_x_cert_authz_rule\\n\
             CERT_AUTHZ_SUBJECT=$http_x_cert_authz_subject\\n\
             CERT_AUTHZ_USER=$http_x_cert_authz_user\\n\
             REMOTE_USER=$http_x_remote_user\\n\"; }}\n\
             }}\n",
            port = self.port,
            ca = ca.display(),
            root = scope_directives(&site.root),
            locations = location("/", "", site.scopes, app),
        );
        self.write_http(&conf);
    }

    fn conf_path(&self) -> PathBuf {
        self.path("conf/nginx.conf")
    }

    fn policy_file(&self, name: &str, text: &str) -> PathBuf {
        self.conf_file(name, text)
    }

    fn config_test(&self) -> (bool, String) {
        let out: Output = self.command().arg("-t").output().expect("running nginx -t");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn start(&mut self) {
        let cmd = self.command();
        let log = self.path("logs/error.log");
        self.daemon.start(cmd, || fs::read_to_string(&log).unwrap_or_default());
    }

    /// HUP: the master reads the configuration, then either starts new
    /// workers or logs why not ([emerg]) and keeps the old ones.
    fn reload(&self) -> Result<(), String> {
        let pid = self.daemon.running_pid() as u32;
        let seen = self.error_log().len();
        let workers = children_of(pid);
        self.signal("-HUP");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.error_log();
            let new = log.get(seen..).unwrap_or_default();
            if new.contains("[emerg]") {
                return Err(new.to_string());
            }
            if children_of(pid).iter().any(|child| !workers.contains(child)) {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "nginx neither reloaded nor refused to:\n{log}");
            sleep(Duration::from_millis(50));
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

    fn deny_line_context(&self) -> (&'static str, &'static [&'static str]) {
        ("[error]", &["client: 127.0.0.1,"])
    }

    fn certificate_parses(&self) -> Vec<String> {
        let debug = fs::read_to_string(self.path("logs/debug.log")).unwrap_or_default();
        debug
            .lines()
            .filter(|l| l.contains("cert_authz: parsed the client certificate"))
            .map(str::to_string)
            .collect()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn curl_args(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A TLS server block on PORT with the test PKI, for `Nginx::write_conf`
/// (which fills in PORT and PKI); `verify` is the ssl_verify_client value.
pub fn tls_server(verify: &str, body: &str) -> String {
    format!(
        "server {{\n\
         listen 127.0.0.1:PORT ssl;\n\
         server_name localhost;\n\
         ssl_certificate PKI/server.pem;\n\
         ssl_certificate_key PKI/server.key;\n\
         ssl_client_certificate PKI/ca.pem;\n\
         ssl_verify_client {verify};\n\
         {body}\n\
         }}\n"
    )
}
