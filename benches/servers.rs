//! The server figures of SPEC §8, through real Apache and nginx serving a
//! 1 KiB static file over HTTPS keep-alive with a client certificate:
//!
//! 1. Instructions per request, counted by callgrind (deterministic where
//!    timings on two shared cores are not): Apache `-X` (event MPM) and
//!    nginx as one process serve 200 and then, in a second run, 1,200
//!    keep-alive requests from `ab -k -c 1`, with the module off and on (a
//!    1,000-rule policy of mixed forms); per request = (total of the
//!    1,200-request run - total of the 200-request run) / 1,000, so that
//!    start-up, the policy's compile and shutdown cancel.  Printed with the
//!    module's functions per request, which say where its share goes.
//! 2. Throughput from oha (multi-threaded, HTTP/1.1 keep-alive, client
//!    certificate), with the servers pinned to one core and oha to another:
//!    module off, on with 1,000 and 100,000 rules, each server's native
//!    check, and, under Apache's prefork MPM, the module against a PHP
//!    script doing the same check.  Medians of interleaved rounds, and
//!    ratios as the median of per-round ratios with a bootstrap interval.
//!
//! `make bench` runs both after the core benchmarks; `cargo bench --bench
//! servers -- instructions` (or `-- throughput`) runs one part.
//!
//! A Rust bench rather than a script so that it shares the tests' harness
//! (tests/common: the PKI, and `Server`, whose Apache and nginx start in
//! scratch directories and stop by their pid when dropped, also when a step
//! panics); only the configurations are the bench's own.  Everything runs
//! on 127.0.0.1.
//!
//! A run counts only when every request got a 2xx with the full body: a
//! 403 flood would look fast.  Before measuring, each configuration is
//! checked to allow alice and (where a check is on) to refuse opsbot, so
//! that a check that is silently off cannot pass as a fast one.
//!
//! The bench prints figures; it asserts correctness, never timings.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "servers/callgrind.rs"]
mod callgrind;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::apache::{Apache, APACHE, MODULES as APACHE_MODULES};
use common::nginx::{Nginx, NGINX};
use common::server::Server;
use common::{curl, pki, scratch, share_with_workers, Pki};

/// Debian's mod_php (libapache2-mod-php8.2).
const MOD_PHP: &str = "/usr/lib/apache2/modules/libphp8.2.so";
const AB: &str = "/usr/bin/ab";
const VALGRIND: &str = "/usr/bin/valgrind";
const RUNUSER: &str = "/usr/sbin/runuser";
const TASKSET: &str = "/usr/bin/taskset";

/// Requests per measured throughput run, per family: each run lasts a
/// second or two, so that scheduling noise averages out (nginx serves
/// several times what Apache does).
const APACHE_REQUESTS: u32 = 20_000;
const NGINX_REQUESTS: u32 = 50_000;
/// oha's connections.
const CONCURRENCY: u32 = 8;
/// Measured rounds per configuration, after one unmeasured warm-up run.
const ROUNDS: usize = 11;
const WARMUP_REQUESTS: u32 = 2_000;
/// Resamples of the rounds for a ratio's interval.
const BOOTSTRAP_RESAMPLES: usize = 4_000;

/// The two runs of an instruction count: their difference is 1,000
/// requests.
const SHORT_RUN: u32 = 200;
const LONG_RUN: u32 = 1_200;
/// Apache's event MPM in one-process mode now and then crashes at exit
/// (in its own queue cleanup, with or without this module loaded); such a
/// run skips part of its shutdown, so its total is not comparable and it
/// is run again.
const CALLGRIND_ATTEMPTS: usize = 3;
/// The bar of the instruction count: the module's share of the server's
/// own instructions per request.
const INSTRUCTION_BAR: f64 = 0.03;

/// The file every configuration serves, and the PHP script that serves it.
const STATIC_PATH: &str = "/1k.html";
const PHP_PATH: &str = "/check.php";
const BODY_LEN: usize = 1024;

/// The application-side check that the module replaces: the same decision
/// (CN alice may GET it), then the same 1 KiB.
const CHECK_PHP: &str = r#"<?php
if (($_SERVER['SSL_CLIENT_S_DN_CN'] ?? '') !== 'alice') {
    http_response_code(403);
    exit;
}
readfile(__DIR__ . '/1k.html');
"#;

/// The rule forms of the mixed policy, those of benches/core.rs: exact
/// values, SAN prefixes, DNS labels, path-only rules with `any`, groups,
/// `*` segments, templates and deny rules; rule `k` of each form.
const FORMS: [fn(usize) -> String; 8] = [
    |k| format!("allow GET,POST /svc/{k}/** subject.CN=user{k} subject.O=\"Example Corp\"\n"),
    |k| format!("allow GET /spiffe/** san.uri=spiffe://example.org/ns/team{k}/*\n"),
    |k| format!("allow GET /api/** san.dns=*.t{k}.example.org\n"),
    |k| format!("allow GET /tenant/{k}/** any\n"),
    |k| format!("allow GET /reports/{k}/** group=ops\n"),
    |k| format!("allow GET /st/{k}/*/items any\n"),
    |k| format!("allow GET /t{k}/{{subject.CN}}/** subject.O=\"Example Corp\"\n"),
    |k| format!("deny * /x/{k}/** any\n"),
];

/// `n` statements: n - 1 of the mixed forms in turn, and, in the middle,
/// the one that lets alice read the static file.  None of the others
/// decides a GET of it, so opsbot (who is in group ops) is refused.
fn policy(n: usize) -> String {
    let mut text = String::with_capacity(n * 56);
    text.push_str("# generated by benches/servers.rs\n");
    text.push_str("group ops subject.OU=ops\ngroup ops san.uri=spiffe://example.org/ns/ops/*\n");
    for i in 0..n - 1 {
        if i == n / 2 {
            let _ = writeln!(text, "allow GET {STATIC_PATH} subject.CN=alice");
        }
        text.push_str(&FORMS[i % FORMS.len()](i / FORMS.len()));
    }
    if n == 1 {
        let _ = writeln!(text, "allow GET {STATIC_PATH} subject.CN=alice");
    }
    text
}

/// The files every server shares besides the PKI: policies, document root.
struct Assets {
    dir: PathBuf,
}

impl Assets {
    fn new() -> Assets {
        let dir = scratch("assets");
        fs::write(dir.join("policy-1k.policy"), policy(1_000)).unwrap();
        fs::write(dir.join("policy-100k.policy"), policy(100_000)).unwrap();
        let htdocs = dir.join("htdocs");
        fs::create_dir_all(&htdocs).unwrap();
        // 1 KiB of printable text: 16 lines of 64 bytes.
        let line = format!("{}\n", "cert-authz bench payload ".repeat(3).get(..63).unwrap());
        let body = line.repeat(BODY_LEN / 64);
        assert_eq!(body.len(), BODY_LEN);
        fs::write(htdocs.join("1k.html"), body).unwrap();
        fs::write(htdocs.join("check.php"), CHECK_PHP).unwrap();
        share_with_workers(&dir);
        Assets { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

fn require_file(path: &str, package: &str) {
    assert!(Path::new(path).is_file(), "{path} is missing: install {package} (`make deps`)");
}

/// One configuration to measure: a running server of the harness.
struct Measured {
    label: &'static str,
    /// Whether the configuration checks the certificate (refuses opsbot)
    /// or serves every verified client.
    checked: bool,
    /// The URL path that is measured.
    path: &'static str,
    server: Box<dyn Server>,
}

impl Measured {
    /// By address, not name: ab resolves no names the way curl's --resolve
    /// does, and the servers listen on 127.0.0.1 only.
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}{}", self.server.port(), self.path)
    }

    /// alice gets the full 1 KiB; opsbot is refused where a check is on.
    fn check_decisions(&self, pki: &Pki) {
        let alice = curl(pki, Some("alice"), "GET", &self.url(), &[]);
        assert!(
            alice.status == 200 && alice.body.len() == BODY_LEN,
            "{}: alice got {} with {} bytes, expected 200 with {BODY_LEN}\n{}",
            self.label,
            alice.status,
            alice.body.len(),
            self.server.error_log()
        );
        let opsbot = curl(pki, Some("opsbot"), "GET", &self.url(), &[]).status;
        let expected = if self.checked { 403 } else { 200 };
        assert_eq!(opsbot, expected, "{}: opsbot got {opsbot}, expected {expected}", self.label);
    }
}

#[derive(Clone, Copy)]
enum Mpm {
    Event,
    Prefork,
}

/// How a server runs.
#[derive(Clone, Copy, PartialEq)]
enum Process {
    /// Started (and daemonized) by the harness, workers as www-data: the
    /// throughput runs.
    Daemon,
    /// One process in the foreground under callgrind: Apache `-X`, run as
    /// www-data from the start (started as root, its setuid would leave
    /// callgrind unable to write its file), nginx without a master process.
    Callgrind,
}

/// The configuration of an Apache with mod_ssl, `SSLVerifyClient require`
/// and unlimited keep-alive; `modules` are extra LoadModule lines, `body`
/// the rest.
fn apache_conf(
    server: &Apache,
    assets: &Assets,
    mpm: Mpm,
    process: Process,
    modules: &str,
    body: &str,
) -> String {
    let d = server.dir().display().to_string();
    let pki = server.pki().dir.display();
    let htdocs = assets.path("htdocs");
    let htdocs = htdocs.display();
    let m = APACHE_MODULES;
    let port = server.port();
    let mpm = match mpm {
        // prefork: one process per keep-alive connection, all forked up front
        Mpm::Prefork => format!(
            "LoadModule mpm_prefork_module {m}/mod_mpm_prefork.so\n\
             StartServers {n}\nMinSpareServers {n}\nMaxSpareServers {max}\n\
             ServerLimit {max}\nMaxRequestWorkers {max}\n",
            n = CONCURRENCY + 2,
            max = CONCURRENCY * 4,
        ),
        Mpm::Event => format!(
            "LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
             StartServers 2\nThreadsPerChild 25\nMinSpareThreads 25\n\
             MaxSpareThreads 75\nMaxRequestWorkers 150\n"
        ),
    };
    let user = match process {
        Process::Daemon => "User www-data\nGroup www-data\n",
        Process::Callgrind => "",
    };
    format!(
        r#"ServerRoot "{d}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{d}/logs/httpd.pid"
DefaultRuntimeDir "{d}/run"
Mutex file:{d}/run default
ErrorLog "{d}/logs/error.log"
LogLevel warn
{user}{mpm}LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so
LoadModule ssl_module {m}/mod_ssl.so
{modules}
Protocols http/1.1
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
DocumentRoot "{htdocs}"
SSLSessionCache "shmcb:{d}/run/ssl_scache(512000)"
SSLEngine on
SSLCertificateFile "{pki}/server.pem"
SSLCertificateKeyFile "{pki}/server.key"
SSLCACertificateFile "{pki}/ca.pem"
SSLVerifyClient require
SSLVerifyDepth 2
{body}
"#
    )
}

/// Starts an Apache of `apache_conf` for throughput.
// Each argument is one column of the benchmark's table of configurations.
#[allow(clippy::too_many_arguments)]
fn apache(
    assets: &Assets,
    name: &str,
    label: &'static str,
    mpm: Mpm,
    modules: &str,
    body: &str,
    path: &'static str,
    checked: bool,
) -> Measured {
    let mut server = Apache::new(name);
    server.write_raw_conf(&apache_conf(&server, assets, mpm, Process::Daemon, modules, body));
    server.start();
    Measured { label, checked, path, server: Box::new(server) }
}

/// The configuration of an nginx with `ssl_verify_client on` and
/// effectively unlimited keep-alive; `main` goes before events{}, `http`
/// inside http{}, `server_body` inside the TLS server{}.  One worker: the
/// throughput runs give the server one core.
fn nginx_conf(
    server: &Nginx,
    assets: &Assets,
    process: Process,
    main: &str,
    http: &str,
    server_body: &str,
) -> String {
    let d = server.dir().display().to_string();
    let temp = server.temp_paths();
    let pki = server.pki().dir.display();
    let htdocs = assets.path("htdocs");
    let htdocs = htdocs.display();
    let port = server.port();
    let process = match process {
        Process::Daemon => "user www-data;\nworker_processes 1;",
        Process::Callgrind => "master_process off;\ndaemon off;\nworker_processes 1;",
    };
    // The access log is off as in the Apache configurations.
    format!(
        r#"{main}
{process}
pid {d}/logs/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {temp}
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    {http}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {pki}/server.pem;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {pki}/ca.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        root {htdocs};
        {server_body}
    }}
}}
"#
    )
}

/// Starts an nginx of `nginx_conf` for throughput.
fn nginx(
    assets: &Assets,
    name: &str,
    label: &'static str,
    main: &str,
    http: &str,
    server_body: &str,
    checked: bool,
) -> Measured {
    let mut server = Nginx::new(name);
    server.write_raw_conf(&nginx_conf(&server, assets, Process::Daemon, main, http, server_body));
    server.start();
    Measured { label, checked, path: STATIC_PATH, server: Box::new(server) }
}

/// The configurations of both parts, in each server's dialect.
struct Dialects {
    apache_module: String,
    nginx_module: String,
}

impl Dialects {
    fn new() -> Dialects {
        Dialects {
            apache_module: format!("LoadModule cert_authz_module {}", common::apache::module().display()),
            nginx_module: format!("load_module {};", common::nginx::module().display()),
        }
    }

    /// The module on for every path as the README configures it, in a
    /// `<Location "/">`, with `policy` server-wide.
    fn apache_on(policy: &Path) -> String {
        format!("CertAuthzPolicy \"{}\"\n<Location \"/\">\n    CertAuthz On\n</Location>", policy.display())
    }

    /// The module on for every path in the server configuration itself:
    /// no section that httpd merges per request.
    fn apache_on_server_wide(policy: &Path) -> String {
        format!("CertAuthzPolicy \"{}\"\nCertAuthz On", policy.display())
    }

    fn nginx_policy(policy: &Path) -> String {
        format!("cert_authz_policy {};", policy.display())
    }
}

// ---- instructions (callgrind) ----------------------------------------------

/// One ab run (`ab -k -c C -n N -E alice`), as ab reported it.
struct AbRun {
    complete: u64,
    failed: u64,
    non_2xx: u64,
    keepalive: u64,
    error: Option<String>,
}

fn ab(pki: &Pki, url: &str, requests: u32, concurrency: u32) -> AbRun {
    let out = Command::new(AB)
        .args(["-q", "-k", "-n", &requests.to_string(), "-c", &concurrency.to_string(), "-E"])
        .arg(pki.path("alice.both.pem"))
        .arg(url)
        .output()
        .expect("running ab");
    let text = String::from_utf8_lossy(&out.stdout);
    let number = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let error = (!out.status.success()).then(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        format!("ab failed: {}", stderr.lines().last().unwrap_or("").trim())
    });
    AbRun {
        complete: number("Complete requests"),
        failed: number("Failed requests"),
        // ab prints this line only when there are some
        non_2xx: number("Non-2xx responses"),
        keepalive: number("Keep-Alive requests"),
        error,
    }
}

/// The server of one instruction count: its harness `Server` (for its
/// directory, port and log; the harness never starts it) and how to run
/// it in the foreground under callgrind.
struct Counted {
    measured: Measured,
    /// The command line after valgrind's own arguments.
    program: Vec<String>,
    /// Run valgrind as www-data (Apache).
    as_worker: bool,
}

impl Counted {
    fn apache(
        assets: &Assets,
        name: &str,
        label: &'static str,
        modules: &str,
        body: &str,
        checked: bool,
    ) -> Counted {
        let server = Apache::new(name);
        server.write_raw_conf(&apache_conf(&server, assets, Mpm::Event, Process::Callgrind, modules, body));
        let dir = server.dir().display().to_string();
        let program = [APACHE, "-X", "-d", &dir, "-f", "conf/httpd.conf", "-k", "start"];
        Counted {
            measured: Measured { label, checked, path: STATIC_PATH, server: Box::new(server) },
            program: program.iter().map(|a| a.to_string()).collect(),
            as_worker: true,
        }
    }

    fn nginx(
        assets: &Assets,
        name: &str,
        label: &'static str,
        main: &str,
        http: &str,
        body: &str,
        checked: bool,
    ) -> Counted {
        let server = Nginx::new(name);
        server.write_raw_conf(&nginx_conf(&server, assets, Process::Callgrind, main, http, body));
        let dir = server.dir().display().to_string();
        let log = format!("{dir}/logs/error.log");
        let program = [NGINX, "-p", &dir, "-c", "conf/nginx.conf", "-e", &log];
        Counted {
            measured: Measured { label, checked, path: STATIC_PATH, server: Box::new(server) },
            program: program.iter().map(|a| a.to_string()).collect(),
            as_worker: false,
        }
    }

    fn dir(&self) -> &Path {
        self.measured.server.dir()
    }

    /// The server's pid: Apache's from its pid file (valgrind runs under
    /// runuser), nginx's is valgrind's own.
    fn pid(&self, child: &Child) -> Option<i32> {
        if self.as_worker {
            fs::read_to_string(self.dir().join("logs/httpd.pid")).ok()?.trim().parse().ok()
        } else {
            Some(child.id() as i32)
        }
    }

    /// One run: start under callgrind, check the decisions, `requests`
    /// keep-alive requests from `ab -k -c 1`, stop.  The profile callgrind
    /// wrote at exit, or why there is none.
    fn run(&self, pki: &Pki, requests: u32) -> Result<callgrind::Profile, String> {
        let dir = self.dir().to_path_buf();
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("callgrind.out") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let log_path = dir.join("logs/valgrind.log");
        let log = fs::File::create(&log_path).unwrap();
        let out_file = format!("--callgrind-out-file={}/callgrind.out.%p", dir.display());
        let mut cmd = if self.as_worker {
            let status = Command::new("chown").args(["-R", "www-data:www-data"]).arg(&dir).status().unwrap();
            assert!(status.success(), "chown of {}", dir.display());
            let mut cmd = Command::new(RUNUSER);
            cmd.args(["-u", "www-data", "--", VALGRIND]);
            cmd
        } else {
            Command::new(VALGRIND)
        };
        cmd.args(["--tool=callgrind", &out_file]).args(&self.program);
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let mut child = cmd.spawn().expect("starting valgrind");
        let port = self.measured.server.port();
        let deadline = Instant::now() + Duration::from_secs(180);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not come up:\n{}{}",
                    self.measured.label,
                    fs::read_to_string(&log_path).unwrap_or_default(),
                    self.measured.server.error_log()
                ));
            }
            sleep(Duration::from_millis(100));
        }
        // The port opens before a server under callgrind has compiled a
        // large policy (a minute and more on a busy machine): until the
        // deadline, a request that times out is asked again.
        while curl(pki, Some("alice"), "GET", &self.measured.url(), &[]).status == 0
            && Instant::now() < deadline
        {
            sleep(Duration::from_secs(1));
        }
        self.measured.check_decisions(pki);
        let ab = ab(pki, &self.measured.url(), requests, 1);
        let stopped = self.stop(&mut child);
        let valgrind_log = fs::read_to_string(&log_path).unwrap_or_default();
        if ab.error.is_some() || ab.complete != u64::from(requests) || ab.failed + ab.non_2xx > 0 {
            return Err(format!(
                "{}: ab: {} complete, {} failed, {} non-2xx {}",
                self.measured.label,
                ab.complete,
                ab.failed,
                ab.non_2xx,
                ab.error.unwrap_or_default()
            ));
        }
        if ab.keepalive != u64::from(requests) {
            return Err(format!(
                "{}: only {} of {requests} requests kept alive",
                self.measured.label, ab.keepalive
            ));
        }
        if let Some(at) = valgrind_log.find("Process terminating with default action of signal") {
            let what: Vec<&str> = valgrind_log[at..].lines().take(6).collect();
            return Err(format!(
                "{} crashed at exit, so its total is not comparable:\n{}",
                self.measured.label,
                what.join("\n")
            ));
        }
        if !stopped {
            return Err(format!("{} had to be killed", self.measured.label));
        }
        let file = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("callgrind.out")))
            .ok_or_else(|| format!("{}: callgrind wrote no file:\n{valgrind_log}", self.measured.label))?;
        // Kept under a name the next run leaves alone, for callgrind_annotate
        // (runs of SHORT_RUN and LONG_RUN side by side).
        let _ = fs::copy(&file, dir.join(format!("profile.{requests}.callgrind")));
        Ok(callgrind::read(&file))
    }

    /// TERM by pid, again every 5 s (a signal that arrives while valgrind
    /// is busy can go unseen), KILL after a minute.  True when the server
    /// exited on TERM.
    fn stop(&self, child: &mut Child) -> bool {
        let Some(pid) = self.pid(child) else {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        };
        let started = Instant::now();
        let mut last_term = None::<Instant>;
        loop {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                let _ = child.wait();
                return false;
            }
            let due = match last_term {
                Some(t) => t.elapsed() > Duration::from_secs(5),
                None => true,
            };
            if due {
                let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
                last_term = Some(Instant::now());
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// A run that did not crash at exit, out of CALLGRIND_ATTEMPTS.
    fn profile(&self, pki: &Pki, requests: u32) -> callgrind::Profile {
        let mut problems = Vec::new();
        for _ in 0..CALLGRIND_ATTEMPTS {
            match self.run(pki, requests) {
                Ok(profile) => return profile,
                Err(problem) => {
                    eprintln!("  {problem}\n  (running it again)");
                    problems.push(problem);
                }
            }
        }
        panic!("{}: no clean run in {CALLGRIND_ATTEMPTS}:\n{}", self.measured.label, problems.join("\n"));
    }
}

/// Instructions per request of one configuration, and its profile.
struct PerRequest {
    total: f64,
    /// Per object, the instructions per request of calls into it.
    calls_into: std::collections::HashMap<String, f64>,
    functions: std::collections::HashMap<String, (f64, f64, String)>,
}

fn per_request(pki: &Pki, counted: &Counted) -> PerRequest {
    let short = counted.profile(pki, SHORT_RUN);
    let long = counted.profile(pki, LONG_RUN);
    let requests = f64::from(LONG_RUN - SHORT_RUN);
    PerRequest {
        total: (long.total as f64 - short.total as f64) / requests,
        functions: callgrind::per_request(&short, &long, requests),
        calls_into: long
            .calls_into
            .iter()
            .map(|(object, n)| {
                let before = short.calls_into.get(object).copied().unwrap_or(0);
                (object.clone(), (*n as f64 - before as f64) / requests)
            })
            .collect(),
    }
}

/// The module's cost in one server: the four runs, the figures, and where
/// the module's instructions go.
struct Share {
    server: &'static str,
    off: f64,
    on: f64,
    /// Other configurations of the module on, and their figures.
    variants: Vec<(&'static str, f64)>,
    /// Instructions per request in calls into the module's shared object,
    /// with everything they call: its own work, without what its presence
    /// changes elsewhere (the heap's layout, and so what malloc costs the
    /// server).
    module_work: f64,
    /// The module's functions (its shared object's), inclusive
    /// instructions per request, most first.
    module_functions: Vec<(String, f64)>,
    /// The largest differences in the functions' own instructions per
    /// request, module on minus off, of every object.
    differences: Vec<(String, f64)>,
}

fn share(
    pki: &Pki,
    server: &'static str,
    off: &Counted,
    on: &Counted,
    variants: &[(&'static str, &Counted)],
    module_file: &str,
) -> Share {
    eprintln!("  {server}: {} runs under callgrind", 4 + 2 * variants.len());
    let off_runs = per_request(pki, off);
    let on_runs = per_request(pki, on);
    let variants =
        variants.iter().map(|(label, counted)| (*label, per_request(pki, counted).total)).collect();
    let mut module_functions: Vec<(String, f64)> = on_runs
        .functions
        .iter()
        .filter(|(_, (_, inclusive, object))| object.ends_with(module_file) && *inclusive >= 10.0)
        .map(|(name, (_, inclusive, _))| (name.clone(), *inclusive))
        .collect();
    module_functions.sort_by(|a, b| b.1.total_cmp(&a.1));
    module_functions.truncate(14);
    let mut differences: Vec<(String, f64)> = on_runs
        .functions
        .keys()
        .chain(off_runs.functions.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|name| {
            let own = |runs: &PerRequest| runs.functions.get(name).map_or(0.0, |f| f.0);
            (name.clone(), own(&on_runs) - own(&off_runs))
        })
        .filter(|(_, d)| d.abs() >= 10.0)
        .collect();
    differences.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    differences.truncate(14);
    let module_work =
        on_runs.calls_into.iter().filter(|(object, _)| object.ends_with(module_file)).map(|(_, n)| *n).sum();
    Share {
        server,
        off: off_runs.total,
        on: on_runs.total,
        variants,
        module_work,
        module_functions,
        differences,
    }
}

/// `variants`: also the rows beside the bar's (100,000 rules, Apache's
/// `<Location>`); without, a quicker look at the two bars.
fn instructions(assets: &Assets, dialects: &Dialects, pki: &Pki, variants: bool) -> Vec<Share> {
    eprintln!(
        "Instructions: callgrind, ab -k -c 1, runs of {SHORT_RUN} and {LONG_RUN} requests, module off and on \
         (1,000 rules; and 100,000, and Apache's <Location>, as variants)"
    );
    let p1k = assets.path("policy-1k.policy");
    let p100k = assets.path("policy-100k.policy");
    let apache_on = |name: &str, label: &'static str, conf: String| {
        Counted::apache(assets, name, label, &dialects.apache_module, &conf, true)
    };
    let apache = share(
        pki,
        "Apache 2.4, event MPM, -X",
        &Counted::apache(assets, "cg-off", "Apache -X, module off", "", "", false),
        &apache_on("cg-on", "Apache -X, module on", Dialects::apache_on_server_wide(&p1k)),
        &[
            (
                "Apache, the same in `<Location \"/\">`",
                &apache_on("cg-loc", "Apache -X, module in <Location>", Dialects::apache_on(&p1k)),
            ),
            (
                "Apache, 100,000 rules",
                &apache_on("cg-100k", "Apache -X, 100k rules", Dialects::apache_on_server_wide(&p100k)),
            ),
        ][..if variants { 2 } else { 0 }],
        "mod_cert_authz.so",
    );
    let nginx_on = |name: &str, label: &'static str, policy: &Path| {
        let http = Dialects::nginx_policy(policy);
        Counted::nginx(assets, name, label, &dialects.nginx_module, &http, "cert_authz on;", true)
    };
    let nginx = share(
        pki,
        "nginx 1.22, one process",
        &Counted::nginx(assets, "cg-off", "nginx one process, module off", "", "", "", false),
        &nginx_on("cg-on", "nginx one process, module on", &p1k),
        &[("nginx, 100,000 rules", &nginx_on("cg-100k", "nginx one process, 100k rules", &p100k))]
            [..usize::from(variants)],
        "ngx_http_cert_authz_module.so",
    );
    vec![apache, nginx]
}

fn print_instructions(shares: &[Share]) {
    println!(
        "\nInstructions per request (callgrind; ab -k -c 1, HTTPS keep-alive, 1 KiB static file, 1,000-rule \
         policy of mixed forms; (run of {LONG_RUN} - run of {SHORT_RUN}) / {}):\n",
        LONG_RUN - SHORT_RUN
    );
    println!("| server | module off | module on | module's cost | share of the server's | bar |");
    println!("|---|---|---|---|---|---|");
    let row = |server: &str, off: f64, on: f64, bar: &str| {
        let share = (on - off) / off;
        println!(
            "| {server} | {} | {} | {} | {:.2} % | {bar}{} |",
            thousands(off),
            thousands(on),
            thousands(on - off),
            share * 100.0,
            if share <= INSTRUCTION_BAR || bar.is_empty() { "" } else { ", NOT MET" }
        );
    };
    let bar = format!("≤ {:.0} %", INSTRUCTION_BAR * 100.0);
    for s in shares {
        row(s.server, s.off, s.on, &bar);
        for (label, on) in &s.variants {
            row(label, s.off, *on, "");
        }
    }
    println!(
        "\nThe bar's rows turn the module on in the server configuration (`CertAuthz On`, `cert_authz on;` \
         in server{{}}); a `<Location>` costs Apache its per-request merge of every module's configuration \
         for that section, whichever directives it holds.  At 100,000 rules the module does about the same \
         work; what throughput loses there beyond it is time waiting for memory, which instructions do not \
         show."
    );
    println!(
        "\nThe module's own work, the calls the server makes into the module with all they call (the bar's \
         difference also holds what the module's presence changes elsewhere, chiefly what malloc costs the \
         server for the heap's layout, which moves by hundreds of instructions between builds and paths):\n"
    );
    println!("| server | module's own work | share of the server's |");
    println!("|---|---|---|");
    for s in shares {
        println!("| {} | {} | {:.2} % |", s.server, thousands(s.module_work), s.module_work / s.off * 100.0);
    }
    for s in shares {
        println!("\n{}: the module's functions, instructions per request with what they call:", s.server);
        for (name, n) in &s.module_functions {
            println!("  {:>7.0}  {name}", n);
        }
        println!("{}: largest differences in functions' own instructions per request, on - off:", s.server);
        for (name, n) in &s.differences {
            println!("  {:>+7.0}  {name}", n);
        }
    }
}

// ---- throughput (oha) ------------------------------------------------------

/// oha: OHA from the environment (the Makefile's bench target installs it
/// with cargo and passes its path), else from PATH.
fn oha_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OHA") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("oha"))
        .find(|p| p.is_file())
        .expect("oha is missing: `make bench` installs it (cargo install oha --locked)")
}

/// Whether the servers get CPU 0 and oha CPU 1: with two CPUs or more.
/// This process moves to CPU 0, so that the servers it starts (and their
/// workers) inherit it.
fn pin_servers() -> bool {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cpus < 2 || !Path::new(TASKSET).is_file() {
        return false;
    }
    let me = std::process::id().to_string();
    Command::new(TASKSET)
        .args(["-a", "-p", "-c", "0", &me])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One oha run.
struct Run {
    rps: f64,
    /// CPU time the server's processes used per request, in µs.
    cpu_us: f64,
    /// The server's CPU time over the run's wall time: near 1 (one core),
    /// the server was the bottleneck; well below, the load generator was.
    busy: f64,
    /// Why the run does not count, if it does not.
    problem: Option<String>,
}

/// The number after `"KEY":` in oha's JSON.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The `"NAME": COUNT` pairs of the object `"KEY": {...}` in oha's JSON.
fn json_counts(json: &str, key: &str) -> Vec<(String, u64)> {
    let Some(at) = json.find(&format!("\"{key}\":")) else { return Vec::new() };
    let rest = &json[at..];
    let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else { return Vec::new() };
    rest[open + 1..close]
        .split(',')
        .filter_map(|pair| {
            let (name, count) = pair.rsplit_once(':')?;
            Some((name.trim().trim_matches('"').to_string(), count.trim().parse().ok()?))
        })
        .collect()
}

fn oha(pki: &Pki, measured: &Measured, requests: u32, pinned: bool) -> Run {
    let pid = measured.server.pid().expect("a started server has a pid");
    let mut cmd = if pinned {
        let mut cmd = Command::new(TASKSET);
        cmd.args(["-c", "1"]).arg(oha_binary());
        cmd
    } else {
        Command::new(oha_binary())
    };
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "-n",
        &requests.to_string(),
        "-c",
        &CONCURRENCY.to_string(),
    ])
    .arg("--cacert")
    .arg(pki.path("ca.pem"))
    .arg("--cert")
    .arg(pki.cert("alice"))
    .arg("--key")
    .arg(pki.key("alice"))
    .arg(measured.url());
    let ticks_before = server_ticks(pid);
    let started = Instant::now();
    let out = cmd.output().expect("running oha");
    let wall = started.elapsed().as_secs_f64();
    let cpu = server_ticks(pid).saturating_sub(ticks_before) as f64 / clock_ticks_per_second();
    let json = String::from_utf8_lossy(&out.stdout);
    let statuses = json_counts(&json, "statusCodeDistribution");
    let errors = json_counts(&json, "errorDistribution");
    let ok: u64 = statuses.iter().filter(|(code, _)| code.starts_with('2')).map(|(_, n)| n).sum();
    let data = json_number(&json, "totalData").unwrap_or(0.0);
    let problem = if !out.status.success() {
        Some(format!("oha failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    } else if ok != u64::from(requests) || !errors.is_empty() {
        Some(format!("statuses {statuses:?}, errors {errors:?}"))
    } else if data != f64::from(requests) * BODY_LEN as f64 {
        Some(format!("{data} body bytes for {requests} requests"))
    } else {
        None
    };
    Run {
        rps: json_number(&json, "requestsPerSec").unwrap_or(0.0),
        cpu_us: cpu * 1e6 / f64::from(requests),
        busy: cpu / wall,
        problem,
    }
}

/// CPU time, in clock ticks, used so far by the server whose master is
/// `pid`: the master, its live children (with all their threads), and the
/// children it has reaped.
fn server_ticks(pid: i32) -> u64 {
    let mut ticks = 0;
    let Ok(entries) = fs::read_dir("/proc") else { return 0 };
    for entry in entries.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let this: i32 = head.split(" (").next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
        // fields from STATE on: 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime
        if this == pid {
            ticks += field(11) + field(12) + field(13) + field(14);
        } else if field(1) == pid as u64 {
            ticks += field(11) + field(12);
        }
    }
    ticks
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// What one configuration measured: the median of its clean runs, or why
/// there is none.
struct Figure {
    label: &'static str,
    median: Option<f64>,
    /// req/s of each round, in round order.
    rounds: Vec<f64>,
    /// Median CPU time of the server per request, µs.
    cpu_us: f64,
    /// CPU time per request of each round, in round order.
    cpu_rounds: Vec<f64>,
    /// Median share of one core the server used.
    busy: f64,
    note: String,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// Checks each server's decisions, warms it up, then measures all of them
/// in `ROUNDS` interleaved rounds of `requests` requests.
fn measure(pki: &Pki, servers: &[Measured], requests: u32, pinned: bool) -> Vec<Figure> {
    let mut runs: Vec<Vec<Run>> = servers.iter().map(|_| Vec::new()).collect();
    for server in servers {
        server.check_decisions(pki);
        let warm = oha(pki, server, WARMUP_REQUESTS, pinned);
        if let Some(problem) = warm.problem {
            eprintln!("  {}: warm-up had errors: {problem}", server.label);
        }
    }
    for round in 1..=ROUNDS {
        for (server, runs) in servers.iter().zip(runs.iter_mut()) {
            let run = oha(pki, server, requests, pinned);
            eprintln!(
                "  round {round}/{ROUNDS} {:<40} {:>9.0} req/s {:>6.1} µs CPU/request, server busy {:>3.0} %{}",
                server.label,
                run.rps,
                run.cpu_us,
                run.busy * 100.0,
                run.problem.as_ref().map(|p| format!("  ERRORS: {p}")).unwrap_or_default()
            );
            runs.push(run);
        }
    }
    servers
        .iter()
        .zip(runs)
        .map(|(server, runs)| {
            let bad: Vec<&Run> = runs.iter().filter(|r| r.problem.is_some()).collect();
            let rounds: Vec<f64> = runs.iter().map(|r| r.rps).collect();
            let cpu_rounds: Vec<f64> = runs.iter().map(|r| r.cpu_us).collect();
            let note = match bad.first() {
                Some(first) => {
                    format!("{} of {ROUNDS} runs had errors ({})", bad.len(), first.problem.as_ref().unwrap())
                }
                None => String::new(),
            };
            // A figure only when every run was clean.
            let median_rps = (bad.is_empty() && !rounds.is_empty()).then(|| median(rounds.clone()));
            Figure {
                label: server.label,
                median: median_rps,
                cpu_us: median(cpu_rounds.clone()),
                busy: median(runs.iter().map(|r| r.busy).collect()),
                rounds,
                cpu_rounds,
                note,
            }
        })
        .collect()
}

fn rps_cell(f: &Figure) -> String {
    match f.median {
        Some(m) => format!(
            "{} req/s; server CPU {:.1} µs/request, {:.0} % of its core",
            thousands(m),
            f.cpu_us,
            f.busy * 100.0
        ),
        None => format!("ERROR: {}", f.note.trim()),
    }
}

fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A 95 % interval for the median of `xs`: the 2.5th and 97.5th
/// percentiles of the medians of BOOTSTRAP_RESAMPLES resamples (with
/// replacement).  A fixed seed: the same rounds give the same interval.
fn bootstrap_interval(xs: &[f64]) -> (f64, f64) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut medians: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| median((0..xs.len()).map(|_| xs[(next() % xs.len() as u64) as usize]).collect()))
        .collect();
    medians.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| medians[((medians.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// A ratio: the median of the per-round ratios (the runs of one round ran
/// back to back, so what else the machine did cancels out better than in a
/// ratio of two medians), a bootstrap interval of that median, and the
/// ratio the servers' CPU time per request predicts for a server that is
/// the bottleneck.
struct Ratio {
    median: f64,
    low: f64,
    high: f64,
    by_cpu: f64,
}

fn ratio(num: &Figure, den: &Figure) -> Option<Ratio> {
    num.median?;
    den.median?;
    let ratios: Vec<f64> = num.rounds.iter().zip(&den.rounds).map(|(a, b)| a / b).collect();
    let (low, high) = bootstrap_interval(&ratios);
    let by_cpu = median(num.cpu_rounds.iter().zip(&den.cpu_rounds).map(|(a, b)| b / a).collect());
    Some(Ratio { median: median(ratios), low, high, by_cpu })
}

fn ratio_cell(r: &Option<Ratio>, bar: f64) -> String {
    match r {
        None => "n/a (a run had errors)".to_string(),
        Some(r) => format!(
            "{:.2} (95 % CI {:.2}–{:.2}){}; by server CPU/request {:.2}",
            r.median,
            r.low,
            r.high,
            if r.median >= bar { "" } else { ", NOT MET" },
            r.by_cpu
        ),
    }
}

/// The 1-minute load average, as a hint of what else ran meanwhile.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn throughput(assets: &Assets, dialects: &Dialects, pki: &Pki) {
    let p1k = assets.path("policy-1k.policy");
    let p100k = assets.path("policy-100k.policy");
    let oha_path = oha_binary();
    let oha_version = Command::new(&oha_path)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let pinned = pin_servers();
    let load_before = loadavg();
    eprintln!(
        "Throughput: {oha_version}, -c {CONCURRENCY}, {APACHE_REQUESTS} (Apache) / {NGINX_REQUESTS} (nginx) \
         requests per run, {ROUNDS} interleaved rounds; {}; load average {load_before}",
        if pinned { "servers on CPU 0, oha on CPU 1" } else { "not pinned (one CPU)" }
    );

    // Apache, event MPM.  Against the module off, the module is on in the
    // server configuration; against `Require expr`, which httpd takes only
    // in a section, both are in a `<Location "/">` (httpd merges a
    // section's configuration per request, whatever it holds).
    eprintln!("Apache (event MPM): starting 6 servers");
    let native = "<Location \"/\">\n    Require expr \"%{SSL_CLIENT_S_DN_CN} == 'alice'\"\n</Location>";
    let apache_event = {
        let module = |name: &str, label: &'static str, conf: String| {
            apache(assets, name, label, Mpm::Event, &dialects.apache_module, &conf, STATIC_PATH, true)
        };
        let servers = [
            apache(assets, "off", "Apache event, module off", Mpm::Event, "", "", STATIC_PATH, false),
            module("1k", "Apache event, module on, 1k rules", Dialects::apache_on_server_wide(&p1k)),
            module("100k", "Apache event, module on, 100k rules", Dialects::apache_on_server_wide(&p100k)),
            module("loc-1k", "Apache event, module in <Location>, 1k", Dialects::apache_on(&p1k)),
            module("loc-100k", "Apache event, module in <Location>, 100k", Dialects::apache_on(&p100k)),
            apache(
                assets,
                "native",
                "Apache event, native Require expr",
                Mpm::Event,
                "",
                native,
                STATIC_PATH,
                true,
            ),
        ];
        measure(pki, &servers, APACHE_REQUESTS, pinned)
    };

    // nginx.
    eprintln!("nginx: starting 4 servers");
    let nginx_native_map = r#"map $ssl_client_s_dn $cert_ok {
        default 0;
        "~(^|,)CN=alice(,|$)" 1;
    }"#;
    let nginx_native_if = "location / {\n            if ($cert_ok = 0) { return 403; }\n        }";
    let on = "cert_authz on;";
    let nginx_figures = {
        let servers = [
            nginx(assets, "off", "nginx, module off", "", "", "", false),
            nginx(
                assets,
                "1k",
                "nginx, module on, 1k rules",
                &dialects.nginx_module,
                &Dialects::nginx_policy(&p1k),
                on,
                true,
            ),
            nginx(
                assets,
                "100k",
                "nginx, module on, 100k rules",
                &dialects.nginx_module,
                &Dialects::nginx_policy(&p100k),
                on,
                true,
            ),
            nginx(assets, "native", "nginx, native map + if", "", nginx_native_map, nginx_native_if, true),
        ];
        measure(pki, &servers, NGINX_REQUESTS, pinned)
    };

    // Apache, prefork MPM: the module on the static file against mod_php
    // doing the same check (SSLOptions +StdEnvVars only where PHP runs, as
    // Debian's default-ssl site has it).
    eprintln!("Apache (prefork MPM): starting 3 servers");
    let load_php = format!("LoadModule php_module {MOD_PHP}");
    let php = "<FilesMatch \"\\.php$\">\n    SetHandler application/x-httpd-php\n    SSLOptions +StdEnvVars\n</FilesMatch>";
    let prefork = {
        let servers = [
            apache(
                assets,
                "prefork-off",
                "Apache prefork, module off, static",
                Mpm::Prefork,
                "",
                "",
                STATIC_PATH,
                false,
            ),
            apache(
                assets,
                "prefork-module",
                "Apache prefork, module on (1k), static",
                Mpm::Prefork,
                &dialects.apache_module,
                &Dialects::apache_on_server_wide(&p1k),
                STATIC_PATH,
                true,
            ),
            apache(
                assets,
                "prefork-php",
                "Apache prefork, PHP check (mod_php)",
                Mpm::Prefork,
                &load_php,
                php,
                PHP_PATH,
                true,
            ),
        ];
        measure(pki, &servers, APACHE_REQUESTS, pinned)
    };

    let [a_off, a_1k, a_100k, a_loc_1k, a_loc_100k, a_native] = &apache_event[..] else { unreachable!() };
    let [n_off, n_1k, n_100k, n_native] = &nginx_figures[..] else { unreachable!() };
    let [p_off, p_module, p_php] = &prefork[..] else { unreachable!() };

    println!(
        "\nThroughput (HTTPS keep-alive, 1 KiB static file; {oha_version}, -c {CONCURRENCY}, HTTP/1.1, \
         {APACHE_REQUESTS} requests per Apache run and {NGINX_REQUESTS} per nginx run, median of {ROUNDS} \
         interleaved rounds; {}; load average {load_before} before, {} after)",
        if pinned { "servers on CPU 0, oha on CPU 1" } else { "server and oha unpinned on one CPU" },
        loadavg()
    );
    println!(
        "A ratio is the median of the per-round ratios with a bootstrap 95 % interval of that median; \
         \"by server CPU/request\" is the ratio the servers' own CPU time per request predicts for a server \
         that is the bottleneck.  A server far below 100 % of its core was held back by the load generator, \
         which pulls its ratios toward 1.\n"
    );
    println!("| figure | measured | bar |");
    println!("|---|---|---|");
    let row = |f: &Figure| println!("| {} | {} | |", f.label, rps_cell(f));
    let ratio_row = |name: &str, num: &Figure, den: &Figure, bar: f64| {
        println!("| {name} | {} | ≥ {bar} |", ratio_cell(&ratio(num, den), bar));
    };
    for f in apache_event.iter() {
        row(f);
    }
    ratio_row("Apache event: module on / off, 1k rules", a_1k, a_off, 0.97);
    ratio_row("Apache event: module on / off, 100k rules", a_100k, a_off, 0.97);
    ratio_row("Apache event: module in <Location> (1k) / native Require expr", a_loc_1k, a_native, 1.0);
    ratio_row("Apache event: module in <Location> (100k) / native Require expr", a_loc_100k, a_native, 1.0);
    for f in nginx_figures.iter() {
        row(f);
    }
    ratio_row("nginx: module on / off, 1k rules", n_1k, n_off, 0.97);
    ratio_row("nginx: module on / off, 100k rules", n_100k, n_off, 0.97);
    ratio_row("nginx: module (1k) / native map + if", n_1k, n_native, 1.0);
    ratio_row("nginx: module (100k) / native map + if", n_100k, n_native, 1.0);
    for f in prefork.iter() {
        row(f);
    }
    ratio_row("Apache prefork: module on / off, 1k rules", p_module, p_off, 0.97);
    ratio_row("Apache prefork: module static / PHP check", p_module, p_php, 2.5);

    println!("\nEvery run, req/s, in round order:");
    for f in apache_event.iter().chain(&nginx_figures).chain(&prefork) {
        let runs: Vec<String> = f.rounds.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "  {:<42} {}{}",
            f.label,
            runs.join(" "),
            if f.note.is_empty() { String::new() } else { format!("  [{}]", f.note.trim()) }
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `instructions` or `throughput` runs
    // one part only, `bars` only the instruction counts that have a bar.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let part = |name: &str| args.iter().all(|a| a == "bars") || args.iter().any(|a| a == name);
    require_file(AB, "apache2-utils");
    require_file(MOD_PHP, "libapache2-mod-php");
    require_file(VALGRIND, "valgrind");
    let dialects = Dialects::new();
    let started = Instant::now();
    let assets = Assets::new();
    let pki = pki();

    if part("instructions") {
        let variants = !args.iter().any(|a| a == "bars");
        print_instructions(&instructions(&assets, &dialects, pki, variants));
    }
    if part("throughput") {
        throughput(&assets, &dialects, pki);
    }
    println!("\n(server benchmarks took {:.0} s)", started.elapsed().as_secs_f64());
}
