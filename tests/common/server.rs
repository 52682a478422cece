//! The one server harness of the tests and the benchmarks.
//!
//! - `Server`: what a test does with a server, whichever it is: configure
//!   it, test the configuration, start, reload, read the error log and the
//!   module's deny lines in it, send requests, stop.  `Apache`
//!   (apache.rs) and `Nginx` (nginx.rs) implement it; a scenario that
//!   applies to both is a function generic over it (tests/both.rs).
//! - `Site`: a configuration said once, in the module's own terms (verify
//!   mode, policy, scopes), that each server writes in its own dialect.
//! - `Daemon`: the process behind both, a master that daemonizes and writes
//!   a pid file; it is stopped by that pid when dropped, also when a test
//!   panics.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{curl, curl_many, root, Pki, Reply, Transfer};

/// Which server a `Server` is, for the few places where a scenario's
/// expectation is in the server's own dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apache,
    Nginx,
}

/// How the server asks for client certificates: Apache's
/// `SSLVerifyClient require|optional|optional_no_ca`, nginx's
/// `ssl_verify_client on|optional|optional_no_ca`.
#[derive(Clone, Copy, Debug)]
pub enum Verify {
    Require,
    Optional,
    /// Lets a certificate of an untrusted CA through the handshake,
    /// unverified.
    OptionalNoCa,
}

/// How much of the module the error log shows.
#[derive(Clone, Copy, Debug)]
pub enum LogLevel {
    /// Denies (error) and report mode's would-be denies (warning).
    Warn,
    /// Nothing below crit: no deny lines.
    Crit,
    /// Warn, and a line per client certificate parse
    /// (`Server::certificate_parses`).
    Debug,
}

/// One scope of a `Site`: Apache's `<Location PATH>`, nginx's
/// `location PATH`.  A field left at None or empty sets nothing, so the
/// scope inherits it.  Values are the directives' words as they are written
/// in either server (`on`, `report`, `subject.CN`), so that a scenario can
/// also write a wrong one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// Ends with '/'.
    pub path: &'a str,
    /// `CertAuthz` / `cert_authz`.
    pub enforce: Option<&'a str>,
    /// `CertAuthzMode` / `cert_authz_mode`.
    pub mode: Option<&'a str>,
    /// `CertAuthzPolicy` / `cert_authz_policy`.
    pub policy: Option<&'a str>,
    /// `CertAuthzRule` / `cert_authz_rule`, one statement each.
    pub rules: &'a [&'a str],
    /// `CertAuthzUser` / `cert_authz_user`.
    pub user: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn at(path: &'a str) -> Scope<'a> {
        Scope { path, ..Scope::default() }
    }
}

/// A server configuration in the module's terms.  Every path is served by
/// the server's echo backend, which answers `NAME=value` lines for
/// `CERT_AUTHZ_DECISION`, `CERT_AUTHZ_RULE`, `CERT_AUTHZ_SUBJECT`,
/// `CERT_AUTHZ_USER` and `REMOTE_USER` as its backends see them (Apache: a
/// CGI script's environment; nginx: the variables handed to a backend
/// server{} in request headers); read them with `common::env_of`.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub verify: Verify,
    /// The CA file that verifies clients; the PKI's ca.pem when None.
    pub client_ca: Option<&'a Path>,
    /// Whether the server offers HTTP/2 (curl then speaks it by default).
    pub http2: bool,
    pub log: LogLevel,
    /// A policy file for the whole server (Apache's server config, nginx's
    /// http{}), relative as `Server::policy_file` writes it.
    pub policy: Option<&'a str>,
    /// What applies to every path (Apache's `<Location "/">`, nginx's
    /// server{}); its `path` is ignored.  On by default.
    pub root: Scope<'a>,
    /// Scopes below the root, each within its longest enclosing one.
    pub scopes: &'a [Scope<'a>],
}

impl Default for Site<'_> {
    fn default() -> Self {
        Site {
            verify: Verify::Require,
            client_ca: None,
            http2: true,
            log: LogLevel::Warn,
            policy: None,
            root: Scope { path: "/", enforce: Some("on"), ..Scope::default() },
            scopes: &[],
        }
    }
}

/// A policy statement as a quoted directive argument, the same in both
/// servers' syntax.
pub fn quoted(statement: &str) -> String {
    format!("\"{}\"", statement.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A real server under test, on a free loopback port, in a scratch
/// directory of its own, trusting the PKI of the test binary.
pub trait Server {
    /// A new server directory (`common::scratch`) named after `name`, with
    /// no configuration yet.
    fn new(name: &str) -> Self
    where
        Self: Sized;
    fn kind(&self) -> Kind;
    fn dir(&self) -> &Path;
    fn port(&self) -> u16;
    fn pki(&self) -> &'static Pki;

    /// Writes the configuration for `site`.
    fn configure(&self, site: &Site);
    /// The main configuration file.
    fn conf_path(&self) -> PathBuf;
    /// Writes `text` as `name` where the configuration takes a relative
    /// policy path from (Apache: ServerRoot; nginx: the conf directory, as
    /// its `include`); returns the file's path.
    fn policy_file(&self, name: &str, text: &str) -> PathBuf;
    /// Tests the configuration without starting (`apache2 -t`, `nginx -t`):
    /// success, and what the server printed.
    fn config_test(&self) -> (bool, String);

    /// Starts the server and waits until it listens; panics when it does
    /// not start.
    fn start(&mut self);
    /// Has the running server load its configuration again (Apache
    /// `-k graceful`, nginx HUP) and waits for the outcome: Ok when it took
    /// the new configuration (workers that still run the old one may
    /// answer for a moment: wait for what it changes), Err with the
    /// server's complaint when it refused it and kept the old.
    fn reload(&self) -> Result<(), String>;
    /// The master's pid, from its pid file.
    fn pid(&self) -> Option<i32>;
    /// Stops the server by its pid with its graceful signal; true when it
    /// exited on that signal (it is killed otherwise).  Dropping a server
    /// stops it too.
    fn stop(&mut self) -> bool;

    /// The whole error log.
    fn error_log(&self) -> String;
    /// The words that mark the module's deny line in the error log: the
    /// core writes the line, the same in both servers.
    fn deny_words(&self) -> &'static str {
        "CA00010: client denied by cert-authz: "
    }
    /// The words that mark report mode's would-be deny line.
    fn report_words(&self) -> &'static str {
        "CA00013: would deny (report mode): "
    }
    /// How a deny line shows the subject of a certificate the server did
    /// not verify, whose subject is `dn`.
    fn unverified_subject(&self, dn: &str) -> String {
        format!("(unverified) {dn}")
    }
    /// How a deny line shows the subject of a verified certificate that
    /// the core refused.
    fn refused_subject(&self) -> &'static str {
        "(refused)"
    }
    /// What the server's log format puts on every deny line of a request
    /// from 127.0.0.1: its level, and the client in one of these forms.
    fn deny_line_context(&self) -> (&'static str, &'static [&'static str]);
    /// The log lines that record a parse of a client certificate (Site's
    /// LogLevel::Debug).
    fn certificate_parses(&self) -> Vec<String>;

    /// The URL of `path` on this server.
    fn url(&self, path: &str) -> String;
    /// What curl needs to reach `url()` (Apache: --resolve localhost).
    fn curl_args(&self) -> Vec<String>;

    fn name(&self) -> &'static str {
        match self.kind() {
            Kind::Apache => "Apache",
            Kind::Nginx => "nginx",
        }
    }

    /// `FILE:LINE` of the first line of the configuration that contains
    /// `needle`, as the servers name positions in their errors.
    fn conf_position(&self, needle: &str) -> String {
        let conf = self.conf_path();
        let text = fs::read_to_string(&conf).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle}"));
        format!("{}:{}", conf.display(), line + 1)
    }

    /// The module's deny lines in `log`.
    fn deny_lines<'a>(&self, log: &'a str) -> Vec<&'a str> {
        log.lines().filter(|l| l.contains(self.deny_words())).collect()
    }

    /// Report mode's would-be deny lines in `log`.
    fn report_lines<'a>(&self, log: &'a str) -> Vec<&'a str> {
        log.lines().filter(|l| l.contains(self.report_words())).collect()
    }

    /// The deny lines of requests for exactly `path`.
    fn denies_of<'a>(&self, log: &'a str, path: &str) -> Vec<&'a str> {
        let needle = format!(" {path},");
        self.deny_lines(log).into_iter().filter(|l| l.contains(&needle)).collect()
    }

    /// One request as `client` (None: no certificate); see `common::curl`.
    fn request(&self, client: Option<&str>, method: &str, path: &str) -> Reply {
        self.request_with(client, method, path, &[])
    }

    /// One request with more curl arguments.
    fn request_with(&self, client: Option<&str>, method: &str, path: &str, extra: &[&str]) -> Reply {
        let mut args = self.curl_args();
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(self.pki(), client, method, &self.url(path), &args)
    }

    fn status(&self, client: Option<&str>, method: &str, path: &str) -> u16 {
        self.request(client, method, path).status
    }

    /// Several requests as `client` in one curl run (see `common::curl_many`).
    fn requests(&self, client: Option<&str>, args: &[&str], paths: &[&str]) -> Vec<Transfer> {
        let mut all = self.curl_args();
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let urls: Vec<String> = paths.iter().map(|p| self.url(p)).collect();
        curl_many(self.pki(), client, &all, &urls)
    }

    /// Waits until `check` holds (a reload reaching the workers, a line
    /// written when a request ends), or panics with the error log.
    fn wait_for(&self, what: &str, mut check: impl FnMut() -> bool)
    where
        Self: Sized,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}:\n{}",
                self.name(),
                self.error_log()
            );
            sleep(Duration::from_millis(100));
        }
    }
}

/// How long a server may take to listen: a 100,000-rule policy of the
/// benchmarks is compiled at startup.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit on its graceful signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A server master that daemonizes and writes its pid file: started by a
/// command, stopped by its pid.
pub struct Daemon {
    what: &'static str,
    pid_file: PathBuf,
    port: u16,
    /// The signal that stops it gracefully (Apache TERM, nginx QUIT).
    stop_signal: &'static str,
    /// The master's pid, once it is known.
    pid: Option<i32>,
    /// Whether a start was tried: a master may be running even when the
    /// start command failed.
    started: bool,
}

impl Daemon {
    pub fn new(what: &'static str, pid_file: PathBuf, port: u16, stop_signal: &'static str) -> Daemon {
        Daemon { what, pid_file, port, stop_signal, pid: None, started: false }
    }

    /// The pid in the pid file now.
    pub fn pid(&self) -> Option<i32> {
        fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// The running master's pid; panics when it was not started.
    pub fn running_pid(&self) -> i32 {
        self.pid.unwrap_or_else(|| panic!("{} is not running", self.what))
    }

    /// Runs `cmd`, which starts the server and returns, then waits for the
    /// pid file and the port.  `log` gives the error log for messages.
    pub fn start(&mut self, mut cmd: Command, log: impl Fn() -> String) {
        let out = cmd.output().unwrap_or_else(|e| panic!("{}: starting: {e}", self.what));
        self.started = true;
        assert!(
            out.status.success(),
            "{} did not start:\n{}{}\n{}",
            self.what,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log()
        );
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.pid.is_none() {
                self.pid = self.pid();
            }
            if self.pid.is_some() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not come up on port {}:\n{}",
                self.what,
                self.port,
                log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. "-HUP") to the master.
    pub fn signal(&self, signal: &str) {
        let pid = self.running_pid();
        let status = Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap();
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Stops the master with its graceful signal and waits for it to exit;
    /// kills it when it does not.  True when it exited on the signal.
    pub fn stop(&mut self) -> bool {
        if !self.started {
            return true;
        }
        self.started = false;
        let Some(pid) = self.pid.take().or_else(|| self.pid()) else { return true };
        // Its workers, known now: a master killed below leaves them to
        // init, and an idle one may never notice (one outlived a loaded CI
        // run so).  They are stopped by their pids too.
        let workers = children_of(pid as u32);
        let _ = Command::new("kill").arg(self.stop_signal).arg(pid.to_string()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while alive(pid) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        if !alive(pid) {
            return true;
        }
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        for worker in workers {
            // Only if it is still the master's (or, once orphaned, init's):
            // a pid reused by another process is left alone.
            if alive(worker as i32) && parent_of(worker).is_some_and(|p| p == pid as u32 || p == 1) {
                let _ = Command::new("kill").arg("-KILL").arg(worker.to_string()).status();
            }
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether process `pid` is running.  The daemonized master is not our
/// child: init reaps it, and until then it is a zombie, which counts as gone.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// The parent of `pid` (from /proc), if it runs.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // after "(comm)": the state, then the parent's pid
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The pids whose parent is `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| parent_of(*child) == Some(pid))
        .collect()
}

/// A module built by `make build`, checked to be newer than what it is
/// built from, so that a test never runs code older than the source.
pub fn built_module(file: &str, sources: &[&str]) -> PathBuf {
    let so = root().join("target/release").join(file);
    let so_time = fs::metadata(&so)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}: run `make build` first", so.display()));
    for src in sources.iter().chain(&["target/release/libcert_authz.a"]) {
        if let Ok(t) = fs::metadata(root().join(src)).and_then(|m| m.modified()) {
            assert!(t <= so_time, "{} is older than {src}: run `make build`", so.display());
        }
    }
    so
}

/// What a server command needs under `make test-sanitize`: the
/// AddressSanitizer runtime preloaded (CERT_AUTHZ_SERVER_PRELOAD), since
/// apache2 and nginx are not built with it and load a sanitized module.
/// Only the servers get it, not curl or openssl.  Unset, nothing changes.
pub fn sanitizer_env(cmd: &mut Command) -> &mut Command {
    if let Some(preload) = std::env::var_os("CERT_AUTHZ_SERVER_PRELOAD") {
        cmd.env("LD_PRELOAD", preload);
    }
    cmd
}
