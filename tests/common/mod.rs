//! Shared helpers for the integration and end-to-end tests: a test PKI made
//! with rcgen, free loopback ports, curl as the TLS client, a proxied
//! backend that records what it is sent, and the case table that the CLI,
//! Apache and nginx must all agree on.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory, named after the test.  It lives under the
/// system's temporary directory, not the checkout: the servers' workers run
/// as www-data and must reach their files whatever the checkout's parents
/// allow (a clone under /root would not do).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("cert-authz-tests").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// One client identity of the test PKI.
pub struct Client {
    pub name: &'static str,
    /// `CN=..`-style subject entries in order, most general first.
    pub subject: &'static [(DnType, &'static str)],
    pub uris: &'static [&'static str],
    /// Issued by the untrusted "Rogue CA" instead of the test CA.
    pub rogue: bool,
}

/// The clients every end-to-end test can use.  Files in the PKI directory:
/// NAME.pem (certificate), NAME.key (key), NAME.both.pem (both, for ab).
pub const CLIENTS: &[Client] = &[
    Client {
        name: "alice",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "users"),
            (DnType::CommonName, "alice"),
        ],
        uris: &[],
        rogue: false,
    },
    Client {
        name: "opsbot",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "ops"),
            (DnType::CommonName, "opsbot"),
        ],
        uris: &[],
        rogue: false,
    },
    Client {
        name: "billing",
        subject: &[(DnType::OrganizationName, "Example Corp"), (DnType::CommonName, "billing")],
        uris: &["spiffe://example.org/ns/prod/sa/billing"],
        rogue: false,
    },
    Client { name: "reporter", subject: &[(DnType::CommonName, "reporter")], uris: &[], rogue: false },
    // A CN that tries to look like an O: must never satisfy subject.O.
    Client {
        name: "mallory",
        subject: &[(DnType::CommonName, "alice,O=Example Corp")],
        uris: &[],
        rogue: false,
    },
    // Same name as alice, but issued by a CA the servers do not trust.
    Client {
        name: "rogue",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "users"),
            (DnType::CommonName, "alice"),
        ],
        uris: &[],
        rogue: true,
    },
];

/// The generated PKI: `ca.pem` (trusted), `rogue-ca.pem` (not trusted),
/// `server.pem`/`server.key` for localhost and 127.0.0.1, and the clients.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn cert(&self, client: &str) -> PathBuf {
        self.dir.join(format!("{client}.pem"))
    }

    pub fn key(&self, client: &str) -> PathBuf {
        self.dir.join(format!("{client}.key"))
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("generating a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, 3650);
    let pem = params.self_signed(&key).expect("self-signing a CA").pem();
    (params, key, pem)
}

/// Writes a new PKI into `dir` (created if missing).
pub fn make_pki(dir: &Path) -> Pki {
    fs::create_dir_all(dir).expect("creating the PKI directory");
    let (ca_params, ca_key, ca_pem) = ca("Example Test CA");
    let (rogue_params, rogue_key, rogue_pem) = ca("Rogue CA");
    fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    fs::write(dir.join("rogue-ca.pem"), &rogue_pem).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let rogue_issuer = Issuer::from_params(&rogue_params, &rogue_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, 30);
    let server = params.signed_by(&server_key, &issuer).unwrap();
    fs::write(dir.join("server.pem"), server.pem()).unwrap();
    fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();

    for client in CLIENTS {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        for (ty, value) in client.subject {
            dn.push(ty.clone(), *value);
        }
        params.distinguished_name = dn;
        for uri in client.uris {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 30);
        let cert = if client.rogue {
            params.signed_by(&key, &rogue_issuer).unwrap()
        } else {
            params.signed_by(&key, &issuer).unwrap()
        };
        let key_pem = key.serialize_pem();
        fs::write(dir.join(format!("{}.pem", client.name)), cert.pem()).unwrap();
        fs::write(dir.join(format!("{}.key", client.name)), &key_pem).unwrap();
        fs::write(dir.join(format!("{}.both.pem", client.name)), cert.pem() + &key_pem).unwrap();
    }
    fs::write(dir.join("ca.key"), ca_key.serialize_pem()).unwrap();
    two_cn_client(dir);
    // Servers run as www-data and must read these.
    let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(dir).status();
    Pki { dir: dir.to_path_buf() }
}

/// `twocn`: a certificate of the trusted CA with two CNs, `admin` then
/// `opsbot` (rcgen writes one value per attribute type, so openssl makes
/// it).  Which CN a server hands on as the user is the test.
fn two_cn_client(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    fs::write(dir.join("twocn.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    run(&[
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-subj", "/O=Example Corp/OU=ops/CN=admin/CN=opsbot", "-keyout", "twocn.key", "-out", "twocn.csr",
    ]);
    run(&[
        "x509", "-req", "-in", "twocn.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "30", "-extfile", "twocn.ext", "-out", "twocn.pem",
    ]);
    let both = fs::read_to_string(dir.join("twocn.pem")).unwrap() + &fs::read_to_string(dir.join("twocn.key")).unwrap();
    fs::write(dir.join("twocn.both.pem"), both).unwrap();
}

/// The answer to one request made with curl.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one HTTPS request with curl.  `client` names a certificate of the
/// PKI, or None for no certificate.  A failed TLS handshake is status 0,
/// and curl's reason goes to the test's output.
pub fn curl(pki: &Pki, client: Option<&str>, method: &str, url: &str, extra: &[&str]) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(pki.path("ca.pem"));
    if method == "HEAD" {
        // A real HEAD, on HTTP/1.1: mod_http2 sometimes ends a HEAD stream
        // to a CGI with a frame curl calls a PROTOCOL_ERROR, which has
        // nothing to do with the decision under test (HTTP/2 is tested on
        // its own).
        cmd.args(["-I", "--http1.1"]);
    } else {
        cmd.args(["-X", method]);
    }
    if let Some(name) = client {
        cmd.arg("--cert").arg(pki.cert(name)).arg("--key").arg(pki.key(name));
    }
    cmd.args(extra).arg(url);
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    let status = code.trim().parse().unwrap_or(0);
    if status == 0 {
        eprintln!("curl {method} {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Reply { status, body: body.to_string() }
}

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

/// A loopback server on a free port, in a thread of its own: `handle` gets
/// each connection in turn.  Returns the port.
pub fn serve(what: &str, mut handle: impl FnMut(TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding {what}: {e:?}"));
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            handle(stream);
        }
    });
    port
}

/// A loopback HTTP server in a thread that records each request's header
/// lines and answers 200 "ok".
pub struct Backend {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Backend {
    pub fn start() -> Backend {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let port = serve("the backend", move |mut stream| {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                lines.push(line);
            }
            seen.lock().unwrap().push(lines);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let mut rest = Vec::new();
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = reader.read_to_end(&mut rest);
        });
        Backend { port, requests }
    }

    /// The values of header `name` (case-insensitive) in request `i`.
    pub fn header(&self, i: usize, name: &str) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        requests[i]
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect()
    }
}

/// The PHP page of the php-fpm tests: one `NAME=value` line per variable a
/// PHP application might take the user from (empty when unset), then
/// ADMIN_KEYS, every $_SERVER key whose value is "admin", the forged name.
pub const WHO_PHP: &str = r#"<?php
header('Content-Type: text/plain');
foreach (['REMOTE_USER', 'CERT_AUTHZ_USER', 'PHP_AUTH_USER', 'HTTP_X_CLIENT_IDENTITY',
          'CERT_AUTHZ_DECISION', 'SCRIPT_FILENAME', 'HTTP_AUTHORIZATION'] as $name) {
    echo $name, '=', $_SERVER[$name] ?? '', "\n";
}
$admin = array_keys(array_filter($_SERVER, fn($v) => $v === 'admin'));
sort($admin);
echo 'ADMIN_KEYS=', implode(',', $admin), "\n";
"#;

/// The php-fpm binary of the installed PHP (Debian names it by version,
/// /usr/sbin/php-fpm8.2); the newest when there are several.
pub fn php_fpm_binary() -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/sbin")
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("php-fpm")) && p.is_file()
    });
    found.sort();
    found.pop().expect("no /usr/sbin/php-fpm*: install php-fpm (`make test` does)")
}

/// A php-fpm of its own: one static pool on a free loopback port, its
/// config, logs and pid in a scratch directory, and a document root with
/// who.php (WHO_PHP).  The access log names each request that reached PHP.
/// Dropping it stops the master by its pid (it stops its workers).
pub struct PhpFpm {
    pub port: u16,
    pub docroot: PathBuf,
    dir: PathBuf,
    child: std::process::Child,
}

impl PhpFpm {
    pub fn start(name: &str) -> PhpFpm {
        let binary = php_fpm_binary();
        let dir = scratch(&format!("php-fpm-{name}"));
        let docroot = dir.join("htdocs");
        fs::create_dir_all(&docroot).unwrap();
        fs::write(docroot.join("who.php"), WHO_PHP).unwrap();
        let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(&dir).status();
        let port = free_port();
        let d = dir.display();
        // The master stays root (it only writes the logs); the workers run
        // as www-data, as Debian's own pool does.
        let conf = format!(
            "[global]\n\
             pid = {d}/php-fpm.pid\n\
             error_log = {d}/error.log\n\
             daemonize = no\n\
             [test]\n\
             user = www-data\n\
             group = www-data\n\
             listen = 127.0.0.1:{port}\n\
             listen.allowed_clients = 127.0.0.1\n\
             pm = static\n\
             pm.max_children = 2\n\
             access.log = {d}/access.log\n\
             access.format = \"%{{REQUEST_URI}}e user=%{{CERT_AUTHZ_USER}}e\"\n\
             security.limit_extensions = .php\n"
        );
        let conf_path = dir.join("php-fpm.conf");
        fs::write(&conf_path, conf).unwrap();
        let output = fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(&binary)
            .arg("--fpm-config")
            .arg(&conf_path)
            .arg("-F")
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut fpm = PhpFpm { port, docroot, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = fpm.child.try_wait() {
                panic!("{} exited ({status}):\n{}", binary.display(), fpm.logs());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return fpm;
            }
            assert!(Instant::now() < deadline, "php-fpm did not listen on {port}:\n{}", fpm.logs());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its error log and output, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        read("error.log") + &read("stderr.log")
    }

    /// One line per request that reached PHP: `REQUEST_URI user=CERT_AUTHZ_USER`.
    pub fn requests(&self) -> Vec<String> {
        let text = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Waits until PHP has logged a request for `uri` (the access log is
    /// written when the request ends, which may be after the client has
    /// its answer), then returns the log.
    pub fn wait_for_request(&self, uri: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.requests();
            if lines.iter().any(|l| l.split(' ').next() == Some(uri)) {
                return lines;
            }
            let logs = self.logs();
            assert!(Instant::now() < deadline, "no request for {uri} reached PHP: {lines:?}\n{logs}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of `KEY=` in a who.php reply; panics when who.php did not answer.
    pub fn value(reply: &Reply, key: &str) -> String {
        let prefix = format!("{key}=");
        reply
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key} in who.php's reply: {reply:?}"))
            .to_string()
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        let pid = self.child.id();
        let workers = children_of(pid);
        // TERM: the master stops its workers and exits.
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for worker in workers {
            let _ = Command::new("kill").arg("-KILL").arg(worker.to_string()).status();
        }
    }
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // after "(comm)": state, then ppid
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}
