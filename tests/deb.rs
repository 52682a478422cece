//! The Debian packages on this machine, as an administrator uses them:
//! `make deb-check` builds them and lintian finds no error; apt installs
//! them; the packages enable the modules as Debian's own module packages do
//! (a2enmod through the maintainer scripts, nginx's modules-enabled link);
//! a site on a loopback port in each server's own configuration (/etc/apache2,
//! /etc/nginx) serves one allowed and one refused request through the
//! system's Apache and nginx, started by their own binaries and stopped by
//! their pids; then apt purges the packages, and both servers still pass
//! their configuration test, start and serve their default sites.
//!
//! This test changes the system, and puts it back: it takes a lock (one run
//! at a time on the machine, also from another checkout), refuses to run
//! when the packages are installed already (they would be someone's), notes
//! the enabled modules and sites and the state under /var/lib/apache2
//! first, and on every way out (also a panic) stops the servers it started,
//! removes its sites, purges the packages and restores what it noted; at the
//! end it checks that all of it is as it was.
//!
//! The system servers listen on ports 80 and 443 of every address of their
//! configuration, which is not this test's to take: each runs in a network
//! namespace of its own (`unshare -n`) that holds only a loopback, and curl
//! reaches it there (`nsenter --net`).  Nothing of theirs is reachable from
//! outside, and no port of another test can clash.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::server::{alive, built_module};
use common::{free_port, pki, root, scratch, share_with_workers, Pki};

const PACKAGES: [&str; 3] = ["libapache2-mod-cert-authz", "libnginx-mod-http-cert-authz", "cert-authz"];
/// The name of the test's site in both servers' configuration.
const SITE: &str = "cert-authz-deb-test";
const APACHE_PID: &str = "/var/run/apache2/apache2.pid";
const NGINX_PID: &str = "/run/nginx.pid";

/// What the test notes before and checks after: the enabled modules, sites
/// and configurations of both servers, and a2enmod's state.
const NOTED: &[&str] = &[
    "/etc/apache2/mods-enabled",
    "/etc/apache2/mods-available",
    "/etc/apache2/sites-enabled",
    "/etc/apache2/sites-available",
    "/etc/apache2/conf-enabled",
    "/var/lib/apache2",
    "/etc/nginx/modules-enabled",
    "/etc/nginx/sites-enabled",
    "/etc/nginx/sites-available",
    "/etc/nginx/conf.d",
    "/usr/share/nginx/modules-available",
];

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false)
}

fn apt_get(args: &[&str]) -> Output {
    Command::new("apt-get")
        // Another apt (a colleague's `make deps`) may hold the lock a while.
        .args(["-o", "DPkg::Lock::Timeout=600", "-y", "-q"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("running apt-get")
}

/// One run of this test at a time on the machine: an exclusive flock, held
/// until the value is dropped.
struct MachineLock(#[allow(dead_code)] fs::File);

impl MachineLock {
    fn take() -> MachineLock {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/lock/cert-authz-deb-test.lock")
            .expect("opening the lock file");
        // SAFETY: flock on a descriptor that `file` owns for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        MachineLock(file)
    }
}

/// Each entry under the NOTED directories: link target, file content, or
/// directory.
#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Dir,
    Link(PathBuf),
    File(Vec<u8>),
}

fn note() -> BTreeMap<PathBuf, Entry> {
    fn walk(dir: &Path, into: &mut BTreeMap<PathBuf, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if meta.file_type().is_symlink() {
                into.insert(path.clone(), Entry::Link(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                into.insert(path.clone(), Entry::Dir);
                walk(&path, into);
            } else {
                into.insert(path.clone(), Entry::File(fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut map = BTreeMap::new();
    for dir in NOTED {
        walk(Path::new(dir), &mut map);
    }
    map
}

/// Puts the NOTED directories back as `before` had them: what is new goes
/// (deepest first), what went or changed comes back.
fn restore(before: &BTreeMap<PathBuf, Entry>) {
    let now = note();
    for (path, entry) in now.iter().rev() {
        if before.get(path) != Some(entry) {
            let _ = if *entry == Entry::Dir { fs::remove_dir(path) } else { fs::remove_file(path) };
        }
    }
    for (path, entry) in before {
        if fs::symlink_metadata(path).is_ok() && note_one(path).as_ref() == Some(entry) {
            continue;
        }
        let _ = match entry {
            Entry::Dir => fs::create_dir_all(path),
            Entry::Link(target) => std::os::unix::fs::symlink(target, path),
            Entry::File(bytes) => fs::write(path, bytes),
        };
    }
}

fn note_one(path: &Path) -> Option<Entry> {
    let meta = fs::symlink_metadata(path).ok()?;
    Some(if meta.file_type().is_symlink() {
        Entry::Link(fs::read_link(path).ok()?)
    } else if meta.is_dir() {
        Entry::Dir
    } else {
        Entry::File(fs::read(path).ok()?)
    })
}

/// A system server started in a network namespace of its own.
struct NsServer {
    what: &'static str,
    stop_signal: &'static str,
    pid: Option<i32>,
}

impl NsServer {
    /// Runs `start` (a shell command that daemonizes the server) in a new
    /// network namespace with its loopback up, then waits until the master
    /// listens on `port` in there.
    fn start(
        what: &'static str,
        pid_file: &'static str,
        stop_signal: &'static str,
        start: &str,
        port: u16,
    ) -> NsServer {
        if let Some(pid) = read_pid(pid_file) {
            assert!(
                !alive(pid),
                "{what} runs already (pid {pid} in {pid_file}): this test starts the system's own"
            );
        }
        let mut server = NsServer { what, stop_signal, pid: None };
        run(Command::new("unshare")
            .args(["-n", "--", "sh", "-c"])
            .arg(format!("ip link set lo up && {start}")));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if server.pid.is_none() {
                server.pid = read_pid(pid_file).filter(|&p| alive(p));
            }
            if let Some(pid) = server.pid {
                let probe = Command::new("nsenter")
                    .arg(format!("--net=/proc/{pid}/ns/net"))
                    .args(["bash", "-c"])
                    .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}"))
                    .output()
                    .unwrap();
                if probe.status.success() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "{what} did not come up on port {port}");
            sleep(Duration::from_millis(100));
        }
    }

    /// curl inside the server's namespace: (status, body).
    fn curl(&self, pki: Option<(&Pki, &str)>, url: &str) -> (u16, String) {
        let pid = self.pid.expect("the server runs");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{pid}/ns/net")).args([
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ]);
        if let Some((pki, client)) = pki {
            cmd.arg("--cacert").arg(pki.path("ca.pem"));
            cmd.arg("--cert").arg(pki.cert(client)).arg("--key").arg(pki.key(client));
        }
        let out = cmd.arg(url).output().expect("running curl");
        let text = stdout(&out);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        if code.trim() == "000" {
            eprintln!("curl {url}: {}", String::from_utf8_lossy(&out.stderr));
        }
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Stops the master by its pid and waits until it has gone.
    fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let _ = Command::new("kill").arg(self.stop_signal).arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while alive(pid) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("{} (pid {pid}) did not stop on {}", self.what, self.stop_signal);
        }
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").arg(self.stop_signal).arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while alive(pid) && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        }
    }
}

fn read_pid(file: &str) -> Option<i32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn start_apache(port: u16) -> NsServer {
    // apache2ctl would hand a start to systemd where it runs: the binary
    // itself, with the environment apache2ctl gives it.
    NsServer::start(
        "the system's Apache",
        APACHE_PID,
        "-TERM",
        "mkdir -p /var/run/apache2 /var/lock/apache2 && . /etc/apache2/envvars && exec /usr/sbin/apache2 -k start",
        port,
    )
}

fn start_nginx(port: u16) -> NsServer {
    NsServer::start("the system's nginx", NGINX_PID, "-QUIT", "exec /usr/sbin/nginx", port)
}

/// What the test put into the system, taken out on every way out.
struct Cleanup {
    before: BTreeMap<PathBuf, Entry>,
    installed: bool,
}

impl Cleanup {
    fn run(&mut self) {
        for f in [
            format!("/etc/apache2/sites-enabled/{SITE}.conf"),
            format!("/etc/apache2/sites-available/{SITE}.conf"),
            format!("/etc/nginx/sites-enabled/{SITE}"),
            format!("/etc/nginx/sites-available/{SITE}"),
        ] {
            let _ = fs::remove_file(f);
        }
        if self.installed {
            let out = apt_get(&["purge"].into_iter().chain(PACKAGES).collect::<Vec<_>>());
            if !out.status.success() {
                eprintln!("apt-get purge: {}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            }
            self.installed = PACKAGES.iter().any(|p| installed(p));
        }
        restore(&self.before);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// The words of a control field of an installed package (Depends,
/// Provides), without version constraints.
fn field(package: &str, name: &str) -> Vec<String> {
    let out = run(Command::new("dpkg-query").args(["-W", &format!("-f=${{{name}}}"), package]));
    stdout(&out)
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or("").to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The nginx ABI that nginx-dev names for modules built against it.
fn nginx_abi() -> String {
    let vars = fs::read_to_string("/usr/share/nginx/src/debian/libnginx-mod.abisubstvars")
        .expect("nginx-dev's libnginx-mod.abisubstvars");
    vars.lines()
        .find_map(|l| l.strip_prefix("nginx:abi="))
        .expect("nginx:abi in abisubstvars")
        .trim()
        .to_string()
}

/// Apache's module API, from apache2-dev's ap_mmn.h: apache2-api-MAJOR.
fn apache_api() -> String {
    let mmn = fs::read_to_string("/usr/include/apache2/ap_mmn.h").expect("apache2-dev's ap_mmn.h");
    let major = mmn
        .lines()
        .find_map(|l| l.strip_prefix("#define MODULE_MAGIC_NUMBER_MAJOR "))
        .expect("MODULE_MAGIC_NUMBER_MAJOR in ap_mmn.h")
        .trim();
    format!("apache2-api-{major}")
}

fn write_sites(dir: &Path, pki: &Pki, apache_port: u16, nginx_port: u16) {
    let htdocs = dir.join("htdocs");
    fs::create_dir_all(htdocs.join("reports")).unwrap();
    fs::write(htdocs.join("reports/today.txt"), "the reports of today\n").unwrap();
    fs::write(dir.join("cert-authz.policy"), "allow GET /reports/** subject.CN=alice\n").unwrap();
    share_with_workers(dir);
    let (d, p) = (dir.display(), pki.dir.display());
    fs::write(
        format!("/etc/apache2/sites-available/{SITE}.conf"),
        format!(
            "# written by cert-authz's tests/deb.rs, removed when it ends\n\
             Listen 127.0.0.1:{apache_port}\n\
             <VirtualHost 127.0.0.1:{apache_port}>\n\
             \x20   ServerName localhost\n\
             \x20   SSLEngine on\n\
             \x20   SSLCertificateFile {p}/server.pem\n\
             \x20   SSLCertificateKeyFile {p}/server.key\n\
             \x20   SSLCACertificateFile {p}/ca.pem\n\
             \x20   SSLVerifyClient require\n\
             \x20   DocumentRoot {d}/htdocs\n\
             \x20   <Directory {d}/htdocs>\n\
             \x20       Require all granted\n\
             \x20   </Directory>\n\
             \x20   CertAuthzPolicy {d}/cert-authz.policy\n\
             \x20   <Location \"/\">\n\
             \x20       CertAuthz On\n\
             \x20   </Location>\n\
             </VirtualHost>\n"
        ),
    )
    .unwrap();
    fs::write(
        format!("/etc/nginx/sites-available/{SITE}"),
        format!(
            "# written by cert-authz's tests/deb.rs, removed when it ends\n\
             server {{\n\
             \x20   listen 127.0.0.1:{nginx_port} ssl;\n\
             \x20   server_name localhost;\n\
             \x20   ssl_certificate {p}/server.pem;\n\
             \x20   ssl_certificate_key {p}/server.key;\n\
             \x20   ssl_client_certificate {p}/ca.pem;\n\
             \x20   ssl_verify_client on;\n\
             \x20   root {d}/htdocs;\n\
             \x20   cert_authz_policy {d}/cert-authz.policy;\n\
             \x20   location / {{\n\
             \x20       cert_authz on;\n\
             \x20   }}\n\
             }}\n"
        ),
    )
    .unwrap();
}

/// Both servers pass their configuration test, start, serve their
/// default site on port 80 and stop.
fn servers_start_and_serve() {
    run(Command::new("apache2ctl").arg("-t"));
    run(Command::new("/usr/sbin/nginx").arg("-t"));
    for start in [start_apache as fn(u16) -> NsServer, start_nginx] {
        let mut server = start(80);
        let (status, _) = server.curl(None, "http://127.0.0.1/");
        assert_eq!(status, 200, "{}: the default site", server.what);
        server.stop();
    }
}

#[test]
fn the_packages_install_enable_serve_and_purge_as_debians_own() {
    let _lock = MachineLock::take();
    for f in ["mod_cert_authz.so", "ngx_http_cert_authz_module.so", "cert-authz"] {
        built_module(f, &["module/apache/mod_cert_authz.c", "module/nginx/ngx_http_cert_authz_module.c"]);
    }
    for p in PACKAGES {
        assert!(
            !installed(p),
            "{p} is installed: this test installs and purges it, so it does not run over an \
             installation of someone's (apt-get purge {p}, then run it again)"
        );
    }
    for f in [APACHE_PID, NGINX_PID] {
        if let Some(pid) = read_pid(f) {
            assert!(!alive(pid), "a system server runs (pid {pid} in {f}): this test starts and stops them");
        }
    }
    // The servers as they are start: what the end compares with.
    servers_start_and_serve();

    // The packages, and lintian (make deb-check fails on an error).
    let out = Command::new("make")
        .args(["--no-print-directory", "-C"])
        .arg(root())
        .arg("deb-check")
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .unwrap();
    let log = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "make deb-check:\n{log}");
    assert!(!log.lines().any(|l| l.starts_with("E: ")), "lintian errors:\n{log}");
    let debs: Vec<PathBuf> = PACKAGES
        .iter()
        .map(|p| root().join(format!("build/deb/{p}_{}_amd64.deb", env!("CARGO_PKG_VERSION"))))
        .collect();

    let mut cleanup = Cleanup { before: note(), installed: true };
    let args: Vec<String> = ["install", "--no-install-recommends"]
        .into_iter()
        .map(String::from)
        .chain(debs.iter().map(|d| d.display().to_string()))
        .collect();
    let out = apt_get(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "apt-get install: {}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    for p in PACKAGES {
        assert!(installed(p), "{p} is not installed after apt-get install");
    }

    // The dependencies Debian's module packages declare, read from the
    // development packages the modules were built with.
    let apache_deps = field("libapache2-mod-cert-authz", "Depends");
    assert!(apache_deps.contains(&apache_api()), "{apache_deps:?} lacks {}", apache_api());
    let nginx_deps = field("libnginx-mod-http-cert-authz", "Depends");
    assert!(nginx_deps.contains(&nginx_abi()), "{nginx_deps:?} lacks {}", nginx_abi());
    assert!(
        field("nginx", "Provides").contains(&nginx_abi()),
        "the installed nginx does not provide {}",
        nginx_abi()
    );

    // Stripped by dh_strip, the debug information in the -dbgsym packages;
    // the Apache configuration files are conffiles.
    for (p, so) in [
        ("libapache2-mod-cert-authz", "/usr/lib/apache2/modules/mod_cert_authz.so"),
        ("libnginx-mod-http-cert-authz", "/usr/lib/nginx/modules/ngx_http_cert_authz_module.so"),
        ("cert-authz", "/usr/bin/cert-authz"),
    ] {
        let sections = stdout(&run(Command::new("readelf").args(["-S", "-W", so])));
        assert!(!sections.contains(".debug_info") && !sections.contains(".symtab"), "{so} is not stripped");
        let dbgsym = root().join(format!("build/deb/{p}-dbgsym_{}_amd64.deb", env!("CARGO_PKG_VERSION")));
        assert!(dbgsym.exists(), "{} is missing", dbgsym.display());
    }
    let conffiles =
        stdout(&run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "libapache2-mod-cert-authz"])));
    for f in ["/etc/apache2/mods-available/cert_authz.load", "/etc/apache2/mods-available/cert_authz.conf"] {
        assert!(conffiles.contains(f), "{f} is not a conffile: {conffiles}");
    }

    // Enabled as Debian's module packages enable theirs: a2enmod (by the
    // postinst; again by hand is a no-op), with mod_ssl for # Depends; the
    // modules-enabled link of dh_nginx.
    run(Command::new("a2enmod").arg("cert_authz"));
    for m in ["cert_authz", "ssl"] {
        run(Command::new("a2query").args(["-m", m]));
    }
    assert_eq!(
        fs::read_link("/etc/nginx/modules-enabled/50-mod-http-cert-authz.conf")
            .expect("the modules-enabled link"),
        Path::new("/usr/share/nginx/modules-available/mod-http-cert-authz.conf")
    );
    // The CLI of the cert-authz package.
    let dir = scratch("sites");
    let pki = pki();
    let (apache_port, nginx_port) = (free_port(), free_port());
    write_sites(&dir, pki, apache_port, nginx_port);
    let lint = run(Command::new("/usr/bin/cert-authz").arg("lint").arg(dir.join("cert-authz.policy")));
    assert!(lint.status.success());

    // Apache: the site enabled the Debian way, the system's configuration.
    run(Command::new("a2ensite").arg(SITE));
    run(Command::new("apache2ctl").arg("-t"));
    let log_start = fs::metadata("/var/log/apache2/error.log").map(|m| m.len() as usize).unwrap_or(0);
    let mut apache = start_apache(apache_port);
    let url = format!("https://localhost:{apache_port}/reports/today.txt");
    assert_eq!(
        apache.curl(Some((pki, "alice")), &url),
        (200, "the reports of today\n".to_string()),
        "Apache, alice"
    );
    assert_eq!(apache.curl(Some((pki, "opsbot")), &url).0, 403, "Apache, opsbot");
    apache.stop();
    let error_log = fs::read("/var/log/apache2/error.log").unwrap_or_default();
    let new_lines = String::from_utf8_lossy(error_log.get(log_start..).unwrap_or_default());
    assert!(new_lines.contains("CA00010"), "Apache's error log has no deny line of the module:\n{new_lines}");

    // nginx: the site linked into sites-enabled, the system's nginx.conf.
    std::os::unix::fs::symlink(
        format!("/etc/nginx/sites-available/{SITE}"),
        format!("/etc/nginx/sites-enabled/{SITE}"),
    )
    .unwrap();
    run(Command::new("/usr/sbin/nginx").arg("-t"));
    let mut nginx = start_nginx(nginx_port);
    let url = format!("https://localhost:{nginx_port}/reports/today.txt");
    assert_eq!(
        nginx.curl(Some((pki, "alice")), &url),
        (200, "the reports of today\n".to_string()),
        "nginx, alice"
    );
    assert_eq!(nginx.curl(Some((pki, "opsbot")), &url).0, 403, "nginx, opsbot");
    nginx.stop();

    // Purge, and everything as it was: no file of the packages, the same
    // enabled modules, sites and a2enmod state, both servers working.
    let owned: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| {
            stdout(&run(Command::new("dpkg").args(["-L", p]))).lines().map(String::from).collect::<Vec<_>>()
        })
        .filter(|f| !Path::new(f).is_dir())
        .collect();
    cleanup.run();
    for p in PACKAGES {
        assert!(!installed(p), "{p} is still installed after apt-get purge");
    }
    for f in &owned {
        assert!(!Path::new(f).exists(), "{f} is left after the purge");
    }
    assert!(fs::symlink_metadata("/etc/nginx/modules-enabled/50-mod-http-cert-authz.conf").is_err());
    let after = note();
    let changed: Vec<&PathBuf> = cleanup
        .before
        .keys()
        .chain(after.keys())
        .filter(|k| cleanup.before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "not as it was: {changed:?}");
    servers_start_and_serve();
}
