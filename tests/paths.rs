//! Path attacks against both servers: for every request target below, the
//! module's decision must be the decision for the resource the server
//! actually serves (SPEC §6.4, §6.9).
//!
//! Each server gets a document root whose files name themselves
//! (`FILE pub/a.txt`), a policy that allows the URL spaces that map to
//! htdocs/pub and nothing that maps to htdocs/secret, and the internal
//! redirects and subrequests of its own dialect (Apache: DirectoryIndex,
//! ErrorDocument, mod_rewrite `[PT]` in server and directory context, SSI
//! `include virtual`, `Alias`; nginx: `index`, `try_files`, `error_page`,
//! `rewrite ... last|break`, `alias`, named locations, `X-Accel-Redirect`
//! from a backend).  Every target is sent twice per protocol, over HTTP/1.1
//! and HTTP/2, with curl's `--path-as-is --request-target`, so that curl
//! sends the bytes as written:
//!
//! 1. to the server in report mode, which decides but never refuses: what
//!    the server serves for that target (the truth);
//! 2. to the same configuration enforcing the policy.
//!
//! Then, per target: a secret is never in an enforced answer; a target
//! whose truth was a secret is refused (403, or a deny of the subrequest
//! that fetched it); a target whose truth was an
//! allowed file gets that file, or a 403 whose deny line says the path is
//! not unambiguous (the module refuses `//`, `.`, `..`, `%2F` left in the
//! server's path on purpose, fail closed); any other target keeps its
//! status or is refused.  The slash-sensitive targets run again under
//! every `AllowEncodedSlashes` × `MergeSlashes` (Apache) and
//! `merge_slashes` (nginx) setting.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use common::apache::{self, Apache};
use common::both;
use common::nginx::{self, Nginx};
use common::server::{Kind, Server};
use common::{serve, share_with_workers, Reply};

/// What the policy allows: the URL spaces of htdocs/pub (itself and the
/// `/docs` alias of it); htdocs/secret is reachable under no allowed name.
const POLICY: &str = "allow GET /pub/** any\nallow GET /docs/** any\n";

/// The marker of a secret file's contents: never in an enforced answer.
const SECRET: &str = "FILE secret/";
const PUBLIC: &str = "FILE pub/";

/// A setting of the server's slash handling: Apache's
/// `AllowEncodedSlashes` and `MergeSlashes`, nginx's `merge_slashes`
/// (nginx always decodes `%2F`).
#[derive(Clone, Copy, Debug)]
struct Slashes {
    encoded: &'static str,
    merge: bool,
}

/// A server that serves the path-attack site: both servers' dialects of it.
trait PathSite: Server + Sized {
    /// Every slash setting the server has.
    fn slash_settings() -> Vec<Slashes>;
    /// Writes the configuration: `mode` is `enforce` or `report`;
    /// `backend` is the X-Accel-Redirect backend's port.
    fn write_site(&self, mode: &str, slashes: Slashes, backend: u16);
}

/// The document root: every file names itself.  pub/ssi*.shtml include
/// other files by URL; the empty directories give the per-directory
/// redirects a place to apply.
fn write_htdocs(docroot: &Path) {
    let files: &[(&str, &str)] = &[
        ("pub/a.txt", "FILE pub/a.txt\n"),
        ("pub/index.html", "FILE pub/index.html\n"),
        ("pub/leak/keep.txt", "FILE pub/leak/keep.txt\n"),
        ("pub/ep/keep.txt", "FILE pub/ep/keep.txt\n"),
        ("pub/dirrw/keep.txt", "FILE pub/dirrw/keep.txt\n"),
        ("pub/ssi.shtml", "FILE pub/ssi.shtml\n<!--#include virtual=\"/secret/s.txt\" -->\n"),
        ("pub/ssi-up.shtml", "FILE pub/ssi-up.shtml\n<!--#include virtual=\"/pub/../secret/s.txt\" -->\n"),
        ("pub/ssi-ok.shtml", "FILE pub/ssi-ok.shtml\n<!--#include virtual=\"/pub/a.txt\" -->\n"),
        ("secret/s.txt", "FILE secret/s.txt\n"),
        ("secret/index.html", "FILE secret/index.html\n"),
        ("secret/err.html", "FILE secret/err.html\n"),
    ];
    for (name, text) in files {
        let path = docroot.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    share_with_workers(docroot);
}

impl PathSite for Apache {
    fn slash_settings() -> Vec<Slashes> {
        let mut all = Vec::new();
        for encoded in ["Off", "On", "NoDecode"] {
            for merge in [true, false] {
                all.push(Slashes { encoded, merge });
            }
        }
        all
    }

    fn write_site(&self, mode: &str, slashes: Slashes, _backend: u16) {
        let d = self.dir().display();
        let pki = self.pki().dir.display();
        let merge = if slashes.merge { "On" } else { "Off" };
        self.write_raw_conf(&format!(
            r#"{common}StartServers 1
SSLSessionCache "shmcb:{d}/run/ssl_scache(512000)"
Protocols h2 http/1.1
KeepAlive On
SSLEngine on
SSLCertificateFile "{pki}/server.pem"
SSLCertificateKeyFile "{pki}/server.key"
SSLCACertificateFile "{pki}/ca.pem"
SSLVerifyDepth 2
SSLVerifyClient require
AllowEncodedSlashes {encoded}
MergeSlashes {merge}
DocumentRoot "{d}/htdocs"
DirectoryIndex index.html
TypesConfig /dev/null
AddType text/plain .txt
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
CertAuthzPolicy paths.policy
<Location "/">
    CertAuthz On
    CertAuthzMode {mode}
</Location>
<Directory "{d}/htdocs">
    Options +Includes +FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
# A directory index that is another URL: mod_dir's subrequest, then a
# fast internal redirect to it.
<Directory "{d}/htdocs/pub/leak">
    DirectoryIndex /secret/index.html
</Directory>
# A 404 under pub/ep is answered by a document under /secret.
<Directory "{d}/htdocs/pub/ep">
    ErrorDocument 404 /secret/err.html
</Directory>
# Directory-context rewriting is an internal redirect to the new URL.
<Directory "{d}/htdocs/pub/dirrw">
    RewriteEngine On
    RewriteRule "^(.+)$" "/secret/$1" [PT]
</Directory>
Alias /docs "{d}/htdocs/pub"
Alias /vault "{d}/htdocs/secret"
# Server-context rewriting in translate_name: [PT] hands the new URL on.
RewriteEngine On
RewriteRule "^/pub/rw/(.*)$" "/secret/$1" [PT]
RewriteRule "^/pub/rwok/(.*)$" "/pub/$1" [PT]
"#,
            common = apache::server_head(
                self,
                "LogLevel warn cert_authz:info",
                &[
                    "authz_core",
                    "alias",
                    "dir",
                    "mime",
                    "include",
                    "rewrite",
                    "socache_shmcb",
                    "ssl",
                    "http2"
                ],
            ),
            encoded = slashes.encoded,
        ));
        self.policy_file("paths.policy", POLICY);
        write_htdocs(&self.path("htdocs"));
    }
}

impl PathSite for Nginx {
    fn slash_settings() -> Vec<Slashes> {
        vec![Slashes { encoded: "decoded", merge: true }, Slashes { encoded: "decoded", merge: false }]
    }

    fn write_site(&self, mode: &str, slashes: Slashes, backend: u16) {
        let d = self.dir().display();
        let pki = self.pki().dir.display();
        let merge = if slashes.merge { "on" } else { "off" };
        let temp = self.temp_paths();
        self.write_raw_conf(&format!(
            "load_module {so};
user www-data;
worker_processes 1;
pid {d}/logs/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
access_log {d}/logs/access.log;
{temp}
types {{ text/plain txt; text/html html shtml; }}
default_type text/plain;
cert_authz_policy paths.policy;
server {{
    listen 127.0.0.1:{port} ssl http2;
    server_name localhost;
    ssl_certificate {pki}/server.pem;
    ssl_certificate_key {pki}/server.key;
    ssl_client_certificate {pki}/ca.pem;
    ssl_verify_client on;
    merge_slashes {merge};
    root {d}/htdocs;
    cert_authz on;
    cert_authz_mode {mode};

    location / {{ }}
    # an index that is another URI: an internal redirect
    location /pub/leak/ {{ index /secret/index.html; }}
    location /pub/ep/ {{ error_page 404 /secret/err.html; }}
    location /pub/rw/ {{ rewrite ^/pub/rw/(.*)$ /secret/$1 last; }}
    # break: the URI changes in this location, without a new lookup
    location /pub/rwb/ {{ rewrite ^/pub/rwb/(.*)$ /secret/$1 break; }}
    location /pub/rwok/ {{ rewrite ^/pub/rwok/(.*)$ /pub/$1 last; }}
    # a file, not the URI: served from this location, no new lookup
    location /pub/tf/ {{ try_files /secret/s.txt =404; }}
    # the last parameter: an internal redirect
    location /pub/tfr/ {{ try_files /nonexistent /secret/index.html; }}
    location /pub/named/ {{ try_files /nonexistent @secret; }}
    location /pub/named404/ {{ error_page 404 = @secret; }}
    location @secret {{ rewrite ^ /secret/s.txt last; }}
    # the classic misconfiguration: no '/' after the location's name
    location /docs {{ alias {d}/htdocs/pub/; }}
    location /vault/ {{ alias {d}/htdocs/secret/; }}
    location /pub/app/ {{ proxy_pass http://127.0.0.1:{backend}; }}
}}
}}
",
            so = nginx::module().display(),
            port = self.port(),
        ));
        self.policy_file("paths.policy", POLICY);
        write_htdocs(&self.path("htdocs"));
    }
}

/// The X-Accel-Redirect backend: the last segment of the path it is asked
/// for names where it sends nginx.
fn accel_backend() -> u16 {
    serve("the X-Accel-Redirect backend", |mut stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("");
        let target = match path.rsplit('/').next().unwrap_or("") {
            "secret" => "/secret/s.txt",
            "public" => "/pub/a.txt",
            "dots" => "/pub/../secret/s.txt",
            "encoded" => "/pub/%2e%2e/secret/s.txt",
            "slash" => "/pub%2f..%2fsecret/s.txt",
            "alias" => "/docs/a.txt",
            _ => "/nonexistent",
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nX-Accel-Redirect: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    })
}

/// Every request target: the generic attacks, then the redirect and
/// subrequest targets of both dialects (a target of the other server's
/// dialect is one more plain path).
fn targets(port: u16) -> Vec<String> {
    let mut t: Vec<String> = [
        "/pub/a.txt",
        "/secret/s.txt",
        "/pub/",
        "/secret/",
        // slashes and dot segments
        "//secret/s.txt",
        "/pub//a.txt",
        "///pub///a.txt",
        "/pub/./a.txt",
        "/./secret/s.txt",
        "/pub/../secret/s.txt",
        "/pub/./../secret/s.txt",
        "/pub/x/../../secret/s.txt",
        "/../secret/s.txt",
        "/pub/../../secret/s.txt",
        "/pub/.../secret/s.txt",
        "/pub/..",
        "/pub/../",
        // encoded dots
        "/pub/%2e%2e/secret/s.txt",
        "/pub/%2E%2E/secret/s.txt",
        "/pub/.%2e/secret/s.txt",
        "/pub/%2e/a.txt",
        "/pub/%2e%2e%2fsecret/s.txt",
        // encoded slashes
        "/pub%2fa.txt",
        "/pub%2Fa.txt",
        "/pub%2f..%2fsecret/s.txt",
        "/pub%2F..%2Fsecret%2Fs.txt",
        "/pub/x%2f..%2f..%2fsecret/s.txt",
        "/secret%2fs.txt",
        "/pub/%2f/a.txt",
        "/pub/%2F%2F../secret/s.txt",
        "/%2fsecret/s.txt",
        "/pub/%252e%252e/secret/s.txt",
        "/pub/%5c..%5csecret/s.txt",
        "/pub\\..\\secret\\s.txt",
        // NUL, parameters, trailing dots and slashes
        "/pub/a.txt%00",
        "/secret/s.txt%00.txt",
        "/pub/%00/../../secret/s.txt",
        "/pub/a.txt;x",
        "/pub;x/a.txt",
        "/pub/..;/secret/s.txt",
        "/secret/s.txt;/../../pub/a.txt",
        "/pub/a.txt.",
        "/secret/s.txt.",
        "/secret./s.txt",
        "/pub/a.txt/",
        "/secret/s.txt/",
        // case
        "/PUB/a.txt",
        "/Secret/s.txt",
        "/SECRET/S.TXT",
        "/pub/A.TXT",
        "/%70ub/a.txt",
        "/%73ecret/s.txt",
        "/%53ecret/s.txt",
        // overlong UTF-8 for '/' and '.'
        "/pub/%c0%af../secret/s.txt",
        "/pub/..%c0%afsecret/s.txt",
        "/pub/%c0%ae%c0%ae/secret/s.txt",
        "/pub/%e0%80%af../secret/s.txt",
        "/pub/%c0%2e%c0%2e/secret/s.txt",
        // query strings and fragments are never paths
        "/secret/s.txt?/pub/a.txt",
        "/pub/a.txt?/../../secret/s.txt",
        "/pub/a.txt#/../../secret/s.txt",
        "/secret/s.txt#/pub/a.txt",
        // no leading slash, an asterisk
        "pub/a.txt",
        "*",
        // Alias / alias
        "/docs/a.txt",
        "/docs/../secret/s.txt",
        "/docs/%2e%2e/secret/s.txt",
        "/docs../secret/s.txt",
        "/docs/../vault/s.txt",
        "/vault/s.txt",
        "/docsx/a.txt",
        // internal redirects and subrequests
        "/pub/leak/",
        "/pub/leak",
        "/pub/ep/nothing",
        "/pub/ep/keep.txt",
        "/pub/rw/s.txt",
        "/pub/rw/index.html",
        "/pub/rwb/s.txt",
        "/pub/rwok/a.txt",
        "/pub/rwok/../secret/s.txt",
        "/pub/rwok/%2e%2e/secret/s.txt",
        "/pub/dirrw/s.txt",
        "/pub/dirrw/keep.txt",
        "/pub/ssi.shtml",
        "/pub/ssi-up.shtml",
        "/pub/ssi-ok.shtml",
        "/pub/tf/x",
        "/pub/tfr/x",
        "/pub/named/x",
        "/pub/named404/x",
        "/pub/app/secret",
        "/pub/app/public",
        "/pub/app/dots",
        "/pub/app/encoded",
        "/pub/app/slash",
        "/pub/app/alias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // absolute-form targets: the path in them is what counts, and a host
    // that is not this server's changes nothing
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "evil.example".to_string()] {
        for path in [
            "/pub/a.txt",
            "/secret/s.txt",
            "/pub/../secret/s.txt",
            "/pub/%2e%2e/secret/s.txt",
            "//secret/s.txt",
        ] {
            t.push(format!("https://{host}{path}"));
        }
    }
    t.push(format!("http://localhost:{port}/secret/s.txt"));
    // very long paths: within the request-line limits (8 KiB in both) and
    // beyond them
    t.push(format!("/pub/{}a.txt", "x/../".repeat(1500)));
    t.push(format!("/pub/{}../secret/s.txt", "x/../".repeat(1500)));
    t.push(format!("/pub/{}../secret/s.txt", "./".repeat(3500)));
    t.push(format!("/{}secret/s.txt", "/".repeat(7000)));
    t.push(format!("/pub/{}a.txt", "%2e/".repeat(1900)));
    t.push(format!("/pub/{}../secret/s.txt", "y".repeat(7900)));
    t.push(format!("/pub/{}../secret/s.txt", "x/../".repeat(4000)));
    t
}

/// The targets whose meaning depends on the slash settings.
fn slash_sensitive(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    target.contains("//") || lower.contains("%2f") || lower.contains("%5c") || target.contains("/.")
}

/// One answer: over which protocol, its status and body, and the module's
/// deny lines that the request wrote.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    denies: Vec<String>,
    /// Report mode's would-be deny lines.
    reports: usize,
}

fn ask<S: Server>(server: &S, target: &str, protocol: &str) -> Answer {
    let seen = server.error_log().len();
    let Reply { status, body } = server.request_with(
        Some("alice"),
        "GET",
        "/",
        &[protocol, "--path-as-is", "--request-target", target],
    );
    let log = server.error_log();
    let new = log.get(seen..).unwrap_or_default();
    let denies = server.deny_lines(new).into_iter().map(str::to_string).collect();
    let reports = server.report_lines(new).len();
    Answer { status, body, denies, reports }
}

/// What is wrong with the enforced answer `on` to a target whose truth
/// (report mode) was `truth`, or None.
fn judge(truth: &Answer, on: &Answer) -> Option<String> {
    if on.body.contains(SECRET) {
        return Some("BYPASS: a secret was served".into());
    }
    let allowed_file = truth.status == 200 && truth.body.contains(PUBLIC) && !truth.body.contains(SECRET);
    if truth.body.contains(SECRET) {
        // Refused: the whole request, or the subrequest that would have
        // fetched the secret (SSI shows its error text in its place).
        if truth.status == 200 && on.status != 403 && on.denies.is_empty() {
            return Some(format!("the secret's target answered {} with no deny", on.status));
        }
        return None;
    }
    if allowed_file {
        if on.status == 200 && on.body == truth.body {
            return None;
        }
        // The module refuses a path it cannot read unambiguously, on
        // purpose, even where the server would have served a public file.
        if on.status == 403
            && on.denies.iter().all(|l| l.contains("path is not unambiguous"))
            && !on.denies.is_empty()
        {
            return None;
        }
        return Some(format!("an allowed file answered {}: {:?}", on.status, on.body));
    }
    if on.status != truth.status && on.status != 403 {
        return Some(format!("status {} where the server alone answers {}", on.status, truth.status));
    }
    None
}

/// Runs `targets` under `slashes` in report mode, then enforcing, over
/// both protocols; returns the failures and a table of every outcome.
fn run<S: PathSite>(name: &str, slashes: Slashes, targets: &[String], backend: u16) -> (Vec<String>, String) {
    let mut truths = Vec::new();
    {
        let mut server = S::new(&format!("{name}-r"));
        server.write_site("report", slashes, backend);
        server.start();
        for target in targets {
            for protocol in ["--http1.1", "--http2"] {
                truths.push(ask(&server, target, protocol));
            }
        }
    }
    let mut server = S::new(&format!("{name}-e"));
    server.write_site("enforce", slashes, backend);
    server.start();
    let mut failures = Vec::new();
    let mut table = String::new();
    let mut truths = truths.into_iter();
    for target in targets {
        for protocol in ["--http1.1", "--http2"] {
            let truth = truths.next().unwrap();
            let on = ask(&server, target, protocol);
            let shown: String = target.chars().take(70).collect();
            let served =
                |a: &Answer| a.body.lines().find(|l| l.starts_with("FILE ")).unwrap_or("-").to_string();
            table += &format!(
                "{:<8} {protocol:<10} {shown:<72} report {} {:<24} enforce {} {}\n",
                server.name(),
                truth.status,
                served(&truth),
                on.status,
                served(&on)
            );
            if let Some(why) = judge(&truth, &on) {
                failures.push(format!(
                    "{} {slashes:?} {protocol} {shown}: {why}\n  report: {truth:?}\n  enforce: {on:?}",
                    server.name()
                ));
            }
        }
    }
    (failures, table)
}

both!(every_path_attack_is_decided_on_the_resource_served, "paths");

fn every_path_attack_is_decided_on_the_resource_served<S: PathSite>(name: &str) {
    let backend = accel_backend();
    // the port of the absolute-form targets: any will do, the path counts
    let all = targets(S::new(&format!("{name}-p")).port());
    let mut failures = Vec::new();
    let mut table = String::new();
    for (i, slashes) in S::slash_settings().into_iter().enumerate() {
        let chosen: Vec<String> =
            if i == 0 { all.clone() } else { all.iter().filter(|t| slash_sensitive(t)).cloned().collect() };
        let (f, t) = run::<S>(&format!("{name}{i}"), slashes, &chosen, backend);
        failures.extend(f);
        table += &format!("# {slashes:?}\n{t}");
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

both!(the_secret_is_served_without_the_module, "paths-off");

/// The site is a real test: in report mode, which never refuses, the
/// server does serve the secret under many of the targets above, the
/// redirects and subrequests included, so the enforced run's refusals are
/// the module's doing.
fn the_secret_is_served_without_the_module<S: PathSite>(name: &str) {
    let backend = accel_backend();
    let mut server = S::new(name);
    let slashes = S::slash_settings()[0];
    server.write_site("report", slashes, backend);
    server.start();
    let mut leaks = Vec::new();
    let redirects: &[&str] = match server.kind() {
        Kind::Apache => {
            &["/pub/leak/", "/pub/ep/nothing", "/pub/rw/s.txt", "/pub/dirrw/s.txt", "/pub/ssi.shtml"]
        }
        Kind::Nginx => &[
            "/pub/leak/",
            "/pub/ep/nothing",
            "/pub/rw/s.txt",
            "/pub/rwb/s.txt",
            "/pub/tf/x",
            "/pub/tfr/x",
            "/pub/named/x",
            "/pub/named404/x",
            "/pub/app/secret",
            "/docs../secret/s.txt",
        ],
    };
    for target in ["/secret/s.txt", "/pub/../secret/s.txt", "/pub/%2e%2e/secret/s.txt", "/vault/s.txt"]
        .iter()
        .chain(redirects)
    {
        let answer = ask(&server, target, "--http1.1");
        if !answer.body.contains(SECRET) || answer.reports == 0 {
            leaks.push(format!("{target}: {answer:?}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "not served, or served without a would-deny line, in report mode:\n{}",
        leaks.join("\n")
    );
}

/// nginx runs no access phase for a subrequest (SSI `include virtual`,
/// `auth_request`, `mirror`): its own `deny` does not refuse one, and nor
/// does the module (SPEC §6.4: subrequests are checked as the server's own
/// access modules check them).  So an SSI page in an allowed location can
/// include a URI the policy refuses.  This pins that the module does what
/// nginx's `deny all` does there, and that both refuse the URI itself;
/// Apache checks subrequests (above: pub/ssi.shtml gets SSI's error text).
#[test]
fn nginx_subrequests_are_decided_as_nginx_decides_them_for_its_own_deny() {
    let mut server = Nginx::new("paths-ssi");
    let docroot = server.path("htdocs");
    for (name, text) in [
        ("pub/ssi.shtml", "FILE pub/ssi.shtml\n<!--# include virtual=\"/secret/s.txt\" -->\n"),
        ("native/ssi.shtml", "FILE native/ssi.shtml\n<!--# include virtual=\"/denied/s.txt\" -->\n"),
        ("secret/s.txt", "FILE secret/s.txt\n"),
        ("denied/s.txt", "FILE denied/s.txt\n"),
    ] {
        let path = docroot.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    share_with_workers(&docroot);
    server.policy_file(
        "ssi.policy",
        "allow GET /pub/** any\nallow GET /native/** any\nallow GET /denied/** any\n",
    );
    server.write_conf(
        "cert_authz_policy ssi.policy;
         server {
             listen 127.0.0.1:PORT ssl;
             ssl_certificate PKI/server.pem;
             ssl_certificate_key PKI/server.key;
             ssl_client_certificate PKI/ca.pem;
             ssl_verify_client on;
             root PREFIX/htdocs;
             cert_authz on;
             ssi on;
             ssi_types *;
             location / { }
             location /denied/ { deny all; }
         }",
    );
    server.start();
    let get = |path: &str| server.request(Some("alice"), "GET", path);
    assert_eq!(get("/secret/s.txt").status, 403);
    assert_eq!(get("/denied/s.txt").status, 403);
    let module = get("/pub/ssi.shtml");
    let native = get("/native/ssi.shtml");
    assert_eq!(module.status, 200, "{module:?}");
    assert_eq!(native.status, 200, "{native:?}");
    assert_eq!(
        module.body.contains("FILE secret/s.txt"),
        native.body.contains("FILE denied/s.txt"),
        "the module and nginx's deny differ on a subrequest:\n{module:?}\n{native:?}"
    );
}
