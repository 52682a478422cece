//! Load from the tests' side, for the soak and reload-under-load tests: a
//! static site that each server writes in its own dialect, curl as the
//! load generator (one process per client certificate, `--parallel`, its
//! connections kept alive and reused), the count of wrong decisions, and
//! the workers' resident memory.
//!
//! curl rather than oha: it comes with the Debian packages that `make
//! test` installs anyway (oha takes minutes to build), it presents one
//! client certificate per process, and it reports every transfer with its
//! URL, status and protocol, so that each answer is checked against the
//! decision expected for that identity and path.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::apache::{self, Apache};
use super::nginx::{self, Nginx};
use super::server::Server;
use super::share_with_workers;

/// The files of the static site: each names its own path.
pub const FILES: &[&str] = &[
    "/pub/f.txt",
    "/users/alice/f.txt",
    "/users/opsbot/f.txt",
    "/users/reporter/f.txt",
    "/ops/f.txt",
    "/flip/f.txt",
    "/broken/f.txt",
];

/// How many worker processes the server keeps: fixed, so that their
/// memory is measured on the same processes before and after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// Apache: two event-MPM children of 25 threads, never more or fewer;
    /// nginx: one worker.
    Fixed,
    /// Room for a reload's new generation next to the old one.
    Reloadable,
}

/// A server that serves the static site with the module enforcing
/// `policy` (a file in the server's policy directory) everywhere, or,
/// with `enforce` false, loaded with the policy but off: the server's own
/// figures, for comparison.
pub trait StaticSite: Server + Sized {
    fn write_static(&self, policy: &str, workers: Workers, enforce: bool);
}

/// The document root under `dir`, readable by the workers.
fn write_files(docroot: &Path) {
    for file in FILES {
        let path = docroot.join(&file[1..]);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("FILE {file}\n")).unwrap();
    }
    share_with_workers(docroot);
}

impl StaticSite for Apache {
    fn write_static(&self, policy: &str, workers: Workers, enforce: bool) {
        let on = if enforce { "On" } else { "Off" };
        let d = self.dir().display();
        let pki = self.pki().dir.display();
        // MaxConnectionsPerChild 0 and spare threads that never make the
        // MPM stop or start a child: the same processes all along.  A
        // child with 32 threads takes all 32 connections if it must: the
        // event MPM closes kept-alive connections of a child above its
        // share, and a client that just sent on one sees a broken pipe.
        // MaxMemFree: each thread's free memory is kept small, so that
        // the figures show what stays in use.
        let mpm = match workers {
            Workers::Fixed => {
                "StartServers 2\nServerLimit 2\nThreadsPerChild 32\nMaxRequestWorkers 64\n\
                 MinSpareThreads 32\nMaxSpareThreads 64\nMaxConnectionsPerChild 0\nMaxMemFree 32\n"
            }
            Workers::Reloadable => {
                "StartServers 2\nServerLimit 8\nThreadsPerChild 25\nMaxRequestWorkers 100\n\
                 MinSpareThreads 25\nMaxSpareThreads 100\nMaxConnectionsPerChild 0\n"
            }
        };
        self.write_raw_conf(&format!(
            r#"{common}{mpm}SSLSessionCache none
Protocols h2 http/1.1
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
H2MaxSessionStreams 100
SSLEngine on
SSLCertificateFile "{pki}/server.pem"
SSLCertificateKeyFile "{pki}/server.key"
SSLCACertificateFile "{pki}/ca.pem"
SSLVerifyDepth 2
SSLVerifyClient require
TypesConfig /dev/null
AddType text/plain .txt
DocumentRoot "{d}/htdocs"
<Directory "{d}/htdocs">
    Require all granted
</Directory>
CertAuthzPolicy {policy}
<Location "/">
    CertAuthz {on}
</Location>
"#,
            common = apache::server_head(
                self,
                "LogLevel warn",
                &["authz_core", "mime", "socache_shmcb", "ssl", "http2"]
            ),
        ));
        write_files(&self.path("htdocs"));
    }
}

impl StaticSite for Nginx {
    fn write_static(&self, policy: &str, _workers: Workers, enforce: bool) {
        let on = if enforce { "on" } else { "off" };
        let d = self.dir().display();
        let temp = self.temp_paths();
        let pki = self.pki().dir.display();
        // keepalive_requests: curl keeps its connections for the whole
        // run, as a real client would, rather than nginx's default 1000.
        self.write_raw_conf(&format!(
            "load_module {so};
user www-data;
worker_processes 1;
pid {d}/logs/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
access_log off;
{temp}
types {{ text/plain txt; }}
keepalive_requests 1000000;
http2_max_requests 1000000;
cert_authz_policy {policy};
server {{
    listen 127.0.0.1:{port} ssl http2;
    server_name localhost;
    ssl_certificate {pki}/server.pem;
    ssl_certificate_key {pki}/server.key;
    ssl_client_certificate {pki}/ca.pem;
    ssl_verify_client on;
    root {d}/htdocs;
    error_log {d}/logs/error.log error;
    cert_authz {on};
    location / {{ }}
}}
}}
",
            so = nginx::module().display(),
            port = self.port(),
        ));
        write_files(&self.path("htdocs"));
    }
}

/// What `expect` answers for a request that may be allowed (200) or
/// refused (403): one that a reload in progress decides either way.
pub const EITHER: u16 = 0;

/// The outcome of one load run: every transfer counted.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub requests: u64,
    /// A status other than the one expected for the identity and path.
    pub wrong: u64,
    pub server_errors: u64,
    /// No HTTP answer at all (curl's status 0).
    pub failed: u64,
    /// Answers 403.
    pub refused: u64,
    /// Transfers per protocol version ("1.1", "2").
    pub versions: BTreeMap<String, u64>,
    /// How many answers of each status each client got for each path.
    pub answers: BTreeMap<(String, String, u16), u64>,
    /// The first few wrong answers, for the failure message.
    pub samples: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.wrong += other.wrong;
        self.server_errors += other.server_errors;
        self.failed += other.failed;
        self.refused += other.refused;
        for (v, n) in &other.versions {
            *self.versions.entry(v.clone()).or_default() += n;
        }
        for (answer, n) in &other.answers {
            *self.answers.entry(answer.clone()).or_default() += n;
        }
        self.samples.extend(other.samples.iter().take(10usize.saturating_sub(self.samples.len())).cloned());
    }
}

/// One curl process: `client`'s certificate, `count` requests cycling
/// through `paths`, at most `parallel` at once over `protocol`
/// (`--http1.1`, `--http2`), keep-alive connections reused.
pub struct CurlLoad {
    child: Child,
    client: String,
}

impl CurlLoad {
    pub fn start<S: Server>(
        server: &S,
        client: &str,
        paths: &[&str],
        count: usize,
        protocol: &str,
        parallel: usize,
        tag: &str,
    ) -> CurlLoad {
        let config = server.dir().join(format!("load-{client}-{tag}.curl"));
        let mut text = String::new();
        for i in 0..count {
            text += &format!("url = \"{}\"\noutput = \"/dev/null\"\n", server.url(paths[i % paths.len()]));
        }
        fs::write(&config, text).unwrap();
        let pki = server.pki();
        let child = Command::new("curl")
            .args(["-sS", "--no-progress-meter", "--max-time", "600", "--parallel", "--parallel-max"])
            .arg(parallel.to_string())
            .arg(protocol)
            .args(["-w", "%{http_code} %{http_version} %{url_effective}\\n"])
            .arg("--cacert")
            .arg(pki.path("ca.pem"))
            .arg("--cert")
            .arg(pki.cert(client))
            .arg("--key")
            .arg(pki.key(client))
            .args(server.curl_args())
            .arg("-K")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running curl");
        CurlLoad { child, client: client.to_string() }
    }

    /// Waits for curl and counts its transfers against `expect(client,
    /// path)`, the status each should have (or EITHER); `url_path` gives a
    /// URL's path.
    pub fn finish(self, url_path: impl Fn(&str) -> String, expect: impl Fn(&str, &str) -> u16) -> Tally {
        let out = self.child.wait_with_output().expect("waiting for curl");
        let mut tally = Tally::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut fields = line.splitn(3, ' ');
            let status: u16 = fields.next().unwrap_or("").parse().unwrap_or(0);
            let version = fields.next().unwrap_or("").to_string();
            let path = url_path(fields.next().unwrap_or(""));
            tally.requests += 1;
            *tally.versions.entry(version).or_default() += 1;
            if status == 0 {
                tally.failed += 1;
            } else if status >= 500 {
                tally.server_errors += 1;
            } else if status == 403 {
                tally.refused += 1;
            }
            *tally.answers.entry((self.client.clone(), path.clone(), status)).or_default() += 1;
            let want = expect(&self.client, &path);
            let right = if want == EITHER { status == 200 || status == 403 } else { status == want };
            if !right {
                tally.wrong += 1;
                if tally.samples.len() < 10 {
                    tally.samples.push(format!("{} {path}: {status}, expected {want}", self.client));
                }
            }
        }
        if !out.stderr.is_empty() && tally.samples.len() < 10 {
            tally.samples.push(format!(
                "curl as {}: {}",
                self.client,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        tally
    }
}

/// Runs `per_client` requests for each of `clients` at once, each curl at
/// most `parallel` at a time (concurrency: clients × parallel).
pub fn run_load<S: Server>(
    server: &S,
    clients: &[&str],
    paths: &[&str],
    per_client: usize,
    protocol: &str,
    parallel: usize,
    expect: impl Fn(&str, &str) -> u16 + Copy,
) -> Tally {
    let loads: Vec<CurlLoad> = clients
        .iter()
        .map(|c| {
            CurlLoad::start(
                server,
                c,
                paths,
                per_client,
                protocol,
                parallel,
                protocol.trim_start_matches('-'),
            )
        })
        .collect();
    let base = server.url("");
    let mut tally = Tally::default();
    for load in loads {
        tally.add(&load.finish(|url| url.strip_prefix(&base).unwrap_or(url).to_string(), expect));
    }
    tally
}

/// The resident memory of each worker process (the master's children), in
/// KiB, by pid.
pub fn worker_rss(master: i32) -> BTreeMap<u32, u64> {
    let mut rss = BTreeMap::new();
    for pid in super::server::children_of(master as u32) {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok());
        if let Some(kib) = kib {
            rss.insert(pid, kib);
        }
    }
    rss
}
