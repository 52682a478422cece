//! Every fenced block of README.md, docs/*.md and the two module
//! references (module/*/README.md), run as it is written, so
//! that the documentation cannot drift from what the servers and the CLI
//! accept.
//!
//! A block is run by its info string (the word after the opening fence):
//!
//! - `policy`: a policy, checked by `cert-authz lint`.  `policy
//!   file=NAME` names the file it is written to, for a block of the same
//!   document that has `include NAME`; it is linted through that block.
//! - `apache`: server-config directives, written after a test server's
//!   own setup (its ServerRoot, TLS on a free loopback port, the module,
//!   mod_proxy, mod_proxy_http, mod_proxy_fcgi, mod_headers; every path
//!   not proxied answered by a CGI script) and checked by `apache2 -t`.
//! - `nginx`: checked by `nginx -t`.  A block that holds `http {` is the
//!   whole nginx.conf; one whose first directive is `location` goes into a
//!   TLS server{} of the test; any other goes into http{}, followed by such
//!   a server{} unless it has a `server {` of its own.  `nginx context=server` puts any block into that
//!   server{}.
//! - `php`: application code, checked by `php -l`.
//! - `text` (output, log lines, examples of errors), `sh` (commands to
//!   type) and `yaml` (Kubernetes manifests: no cluster here) are not run.
//!   Any other info string, an empty one included, fails the test: a new
//!   block must say what it is.
//!
//! `/var/www/html` is the document root of a php-fpm of the test's own
//! (`who.php` prints what PHP was given), and the php-fpm socket its
//! address: an nginx block reaches PHP for real; Apache's CGI script
//! answers first.  nginx finds Debian's `fastcgi_params`, `fastcgi.conf`,
//! `snippets/fastcgi-php.conf`, `proxy_params` and `mime.types` as in
//! /etc/nginx.
//!
//! A block uses the paths a reader's server would have; they are replaced
//! by the test's own (see `PLACEHOLDERS`).  A policy path stands for the
//! last `policy` block above it in the same document (or, if there is none,
//! the first below), which is also nginx's `conf/cert-authz.policy`; a
//! block that names no policy itself runs where that policy is the
//! server's (`CertAuthzPolicy`, `cert_authz_policy` in http{}).  A block
//! that still names a path under /etc/ after that fails, so a new path
//! must be added there.
//!
//! A line `# test: CLIENT METHOD PATH EXPECTED` in a block is a request:
//! in a policy, `cert-authz check` with the test PKI's certificate CLIENT
//! must answer EXPECTED (`allow` or `deny`); in a server block, the server
//! is started and the request (CLIENT `none` for no certificate) must get
//! the HTTP status EXPECTED.  In a server block, `# test: log TEXT` (or
//! `nolog TEXT`) says that the server's error log holds (or does not hold)
//! TEXT after the requests above it.  A server block that is a whole setup
//! (nginx with `http {`, Apache with `CertAuthz On` and `SSLVerifyClient`)
//! must have at least one allowed and one refused request (in report mode,
//! a `log` line for the would-be refusal).
//!
//! docs/audit-logs.md's two blocks are run here with `apache2 -t` and
//! `nginx -t` too, and end to end by tests/exports.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::apache::{self, Apache, MODULES};
use common::nginx::{self, Nginx};
use common::server::Server;
use common::{pki, root, scratch, share_with_workers, Backend, PhpFpm};

/// One fenced block: where it is, its info string and its text.
#[derive(Clone, Debug)]
struct Block {
    doc: String,
    line: usize,
    lang: String,
    attrs: BTreeMap<String, String>,
    body: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.doc, self.line)
    }

    /// The `# test:` lines, split into their words.
    fn tests(&self) -> Vec<Vec<String>> {
        self.body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# test:"))
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .collect()
    }
}

/// The info strings that are not run, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("text", "output, log lines and examples of errors"),
    ("sh", "commands to type, not configuration"),
    ("yaml", "Kubernetes manifests: there is no cluster here"),
];

/// The documents whose blocks are run.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    docs.extend(["module/apache/README.md", "module/nginx/README.md"].map(|d| root().join(d)));
    let mut more: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Every fenced block of `path`.  A fence may be indented (a block in a
/// list item); the block's lines lose that indentation.  An unclosed block
/// fails.
fn blocks_of(path: &Path) -> Vec<Block> {
    let doc = path.strip_prefix(root()).unwrap().display().to_string();
    let text = fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    // (first line, indentation, info string, body)
    let mut open: Option<(usize, usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => open = Some((i + 1, indent, info.trim().to_string(), String::new())),
            (Some((start, _, info, body)), Some("")) => {
                let mut words = info.split_whitespace();
                let lang = words.next().unwrap_or_default().to_string();
                let attrs = words
                    .map(|w| {
                        let (k, v) = w.split_once('=').unwrap_or((w, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                out.push(Block { doc: doc.clone(), line: *start, lang, attrs, body: std::mem::take(body) });
                open = None;
            }
            (Some((start, _, _, _)), Some(_)) => {
                panic!("{doc}:{}: a fence inside the block of line {start}", i + 1)
            }
            (Some((_, fence_indent, _, body)), None) => {
                let cut = indent.min(*fence_indent);
                body.push_str(&line[cut..]);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{doc}: a block is not closed");
    out
}

fn all_blocks() -> Vec<Block> {
    documents().iter().flat_map(|d| blocks_of(d)).collect()
}

/// Fails with every message at once, so that one run shows every block
/// that drifted.
fn report(what: &str, failures: Vec<String>) {
    assert!(failures.is_empty(), "{} {what}:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_block_says_what_it_is() {
    let known = ["policy", "apache", "nginx", "php"];
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for b in all_blocks() {
        *counts.entry(b.lang.clone()).or_insert(0) += 1;
        if !known.contains(&b.lang.as_str()) && !NOT_RUN.iter().any(|(l, _)| *l == b.lang) {
            failures.push(format!(
                "{}: info string {:?}: say what the block is (one of {known:?} to run it, or {:?})",
                b.at(),
                b.lang,
                NOT_RUN.iter().map(|(l, _)| *l).collect::<Vec<_>>()
            ));
        }
        for k in b.attrs.keys() {
            let ok = match b.lang.as_str() {
                "policy" => k == "file",
                "nginx" => k == "context",
                _ => false,
            };
            if !ok {
                failures.push(format!("{}: unknown attribute {k:?} for {}", b.at(), b.lang));
            }
        }
        if !b.tests().is_empty() && !["policy", "apache", "nginx"].contains(&b.lang.as_str()) {
            failures.push(format!("{}: `# test:` lines in a block that is not run", b.at()));
        }
    }
    eprintln!("blocks by info string: {counts:?}");
    // The documents this test exists for must all be there with blocks.
    for kind in ["policy", "apache", "nginx"] {
        assert!(counts.get(kind).copied().unwrap_or(0) >= 3, "fewer than 3 {kind} blocks: {counts:?}");
    }
    report("blocks without a kind", failures);
}

// ---- placeholders ------------------------------------------------------------

/// The paths and addresses the documents use, and what the test puts in
/// their place.
struct Env {
    policy: Option<PathBuf>,
    backend: u16,
    port: u16,
    php_fpm: u16,
    php_root: PathBuf,
    error_log: PathBuf,
}

/// Each placeholder as written in the documents, and which of the test's
/// values replaces it.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("/etc/apache2/cert-authz.policy", "policy"),
    ("/etc/nginx/cert-authz.policy", "policy"),
    ("/etc/ssl/clients-ca.pem", "ca"),
    ("/etc/nginx/tls/clients-ca.pem", "ca"),
    ("/etc/ssl/certs/server.pem", "server.pem"),
    ("/etc/ssl/private/server.key", "server.key"),
    ("/etc/nginx/tls/server.pem", "server.pem"),
    ("/etc/nginx/tls/server.key", "server.key"),
    ("/etc/ssl/api.example.org.pem", "server.pem"),
    ("/etc/ssl/private/api.example.org.key", "server.key"),
    ("/etc/nginx/tls/api.pem", "server.pem"),
    ("/etc/nginx/tls/api.key", "server.key"),
    ("/usr/lib/apache2/modules/mod_cert_authz.so", "apache module"),
    ("modules/ngx_http_cert_authz_module.so", "nginx module"),
    ("127.0.0.1:8080", "backend"),
    ("unix:/run/php/php8.2-fpm.sock|fcgi://localhost", "php-fpm url"),
    ("unix:/run/php/php8.2-fpm.sock", "php-fpm"),
    ("*:443", "*:port"),
    ("listen 443", "listen port"),
    ("/var/www/html", "docroot"),
    ("/var/log/nginx/error.log", "error log"),
    ("/var/log/apache2/error.log", "error log"),
];

fn substitute(block: &Block, env: &Env) -> Result<String, String> {
    let mut text = block.body.clone();
    let pki = pki();
    for (from, what) in PLACEHOLDERS {
        if !text.contains(from) {
            continue;
        }
        let to = match *what {
            "policy" => match &env.policy {
                Some(p) => p.display().to_string(),
                None => {
                    return Err(format!("{}: names a policy, but no policy block is above it", block.at()))
                }
            },
            "ca" => pki.path("ca.pem").display().to_string(),
            "server.pem" | "server.key" => pki.path(what).display().to_string(),
            "apache module" => apache::module().display().to_string(),
            "nginx module" => nginx::module().display().to_string(),
            "backend" => format!("127.0.0.1:{}", env.backend),
            "*:port" => format!("*:{}", env.port),
            "listen port" => format!("listen 127.0.0.1:{}", env.port),
            "php-fpm url" => format!("fcgi://127.0.0.1:{}", env.php_fpm),
            "php-fpm" => format!("127.0.0.1:{}", env.php_fpm),
            "docroot" => env.php_root.display().to_string(),
            "error log" => env.error_log.display().to_string(),
            other => unreachable!("{other}"),
        };
        text = text.replace(from, &to);
    }
    if let Some(line) = text.lines().find(|l| l.contains("/etc/")) {
        return Err(format!(
            "{}: a path without a placeholder in tests/docs.rs: {}",
            block.at(),
            line.trim()
        ));
    }
    Ok(text)
}

// ---- policies -----------------------------------------------------------------

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cert-authz")).args(args).output().expect("running cert-authz")
}

fn output_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Writes each document's policy blocks into a directory of its own (named
/// by `file=` or by their line) and returns, per block, its file.
fn write_policies(dir: &Path, blocks: &[Block]) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    for b in blocks.iter().filter(|b| b.lang == "policy") {
        let sub = dir.join(b.doc.replace('/', "_"));
        fs::create_dir_all(&sub).unwrap();
        let name = b.attrs.get("file").cloned().unwrap_or_else(|| format!("line{}.policy", b.line));
        let path = sub.join(name);
        fs::write(&path, &b.body).unwrap();
        files.insert(b.at(), path);
    }
    files
}

/// The policy file a server block's policy path stands for: that of the
/// last policy block above it in its document, or else of the first below
/// (a reference that shows the configuration first).
fn policy_above(block: &Block, blocks: &[Block], files: &BTreeMap<String, PathBuf>) -> Option<PathBuf> {
    let policies = || {
        blocks.iter().filter(|b| b.lang == "policy" && b.doc == block.doc && !b.attrs.contains_key("file"))
    };
    policies()
        .rfind(|b| b.line < block.line)
        .or_else(|| policies().find(|b| b.line > block.line))
        .map(|b| files[&b.at()].clone())
}

#[test]
fn policy_blocks_lint_clean_and_decide_as_their_tests_say() {
    let blocks = all_blocks();
    let dir = scratch("docs-policies");
    let files = write_policies(&dir, &blocks);
    let mut failures = Vec::new();
    let (mut linted, mut decided) = (0, 0);
    for b in blocks.iter().filter(|b| b.lang == "policy") {
        let file = &files[&b.at()];
        // A file written to be included (a file of groups) is not a policy
        // of its own: it is linted through the block that includes it.
        if let Some(name) = b.attrs.get("file") {
            let include = format!("include {name}");
            if !blocks.iter().any(|o| o.lang == "policy" && o.doc == b.doc && o.body.contains(&include)) {
                failures.push(format!(
                    "{}: file={name}, but no policy block of the document has `{include}`",
                    b.at()
                ));
            }
            continue;
        }
        let out = cli(&["lint", file.to_str().unwrap()]);
        linted += 1;
        if !out.status.success() {
            failures.push(format!("{}: cert-authz lint:\n{}", b.at(), output_text(&out)));
            continue;
        }
        for t in b.tests() {
            let [client, method, path, want] = &t[..] else {
                failures.push(format!("{}: a test line needs CLIENT METHOD PATH allow|deny: {t:?}", b.at()));
                continue;
            };
            let cert = pki().cert(client);
            let out = cli(&[
                "check",
                "--policy",
                file.to_str().unwrap(),
                "--cert",
                cert.to_str().unwrap(),
                "--method",
                method,
                "--path",
                path,
            ]);
            decided += 1;
            let got = match out.status.code() {
                Some(0) => "allow",
                Some(1) => "deny",
                _ => "error",
            };
            if got != want {
                failures.push(format!(
                    "{}: {client} {method} {path}: {got}, not {want}:\n{}",
                    b.at(),
                    output_text(&out)
                ));
            }
        }
    }
    eprintln!("policy blocks: {linted} linted, {decided} decisions checked");
    report("policy blocks failed", failures);
}

#[test]
fn php_blocks_parse() {
    let dir = scratch("docs-php");
    let mut failures = Vec::new();
    for (i, b) in all_blocks().iter().filter(|b| b.lang == "php").enumerate() {
        let file = dir.join(format!("{i}.php"));
        fs::write(&file, &b.body).unwrap();
        let out = Command::new("php").arg("-l").arg(&file).output().expect("running php -l");
        if !out.status.success() {
            failures.push(format!("{}: php -l:\n{}", b.at(), output_text(&out)));
        }
    }
    report("php blocks do not parse", failures);
}

// ---- servers -------------------------------------------------------------------

/// A request of a `# test:` line, sent to a started server.
fn run_requests<S: Server>(server: &S, block: &Block) -> Vec<String> {
    let mut failures = Vec::new();
    for t in block.tests() {
        if let Some((word, text)) = t.split_first().filter(|(w, _)| *w == "log" || *w == "nolog") {
            let text = text.join(" ");
            // The worker writes the line before it answers; the wait is
            // for the file system, not for a timing.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut found = server.error_log().contains(&text);
            while word == "log" && !found && Instant::now() < deadline {
                sleep(Duration::from_millis(100));
                found = server.error_log().contains(&text);
            }
            if found != (word == "log") {
                failures.push(format!(
                    "{}: `{word} {text}`: the error log is\n{}",
                    block.at(),
                    server.error_log()
                ));
            }
            continue;
        }
        let [client, method, path, want] = &t[..] else {
            failures.push(format!("{}: a test line needs CLIENT METHOD PATH STATUS: {t:?}", block.at()));
            continue;
        };
        let client = (client != "none").then_some(client.as_str());
        let got = server.status(client, method, path);
        if got.to_string() != *want {
            failures.push(format!(
                "{}: {} {method} {path}: status {got}, not {want}\n{}",
                block.at(),
                client.unwrap_or("none"),
                server.error_log()
            ));
        }
    }
    failures
}

/// A whole setup must show one allowed and one refused request.
fn check_tests_cover(block: &Block, whole: bool) -> Option<String> {
    let tests = block.tests();
    let statuses: Vec<&String> = tests.iter().filter(|t| t[0] != "log").filter_map(|t| t.get(3)).collect();
    let allowed = statuses.iter().any(|s| s.starts_with('2'));
    // In report mode a refusal is a would-deny line in the log.
    let refused = statuses.iter().any(|s| *s == "403") || tests.iter().any(|t| t[0] == "log");
    if whole && !(allowed && refused) {
        return Some(format!(
            "{}: a whole setup needs a `# test:` line allowed (2xx) and one refused (403, or `log` a would-deny line)",
            block.at()
        ));
    }
    None
}

/// The modules a Debian server has enabled for the recipes besides those of
/// the test server itself.
fn apache_extra_modules() -> String {
    ["proxy", "proxy_http", "proxy_fcgi", "headers"]
        .iter()
        .map(|m| format!("LoadModule {m}_module {MODULES}/mod_{m}.so\n"))
        .collect()
}

#[test]
fn apache_blocks_pass_apache2_t_and_their_requests() {
    let blocks = all_blocks();
    let files = write_policies(&scratch("docs-apache-policies"), &blocks);
    let backend = Backend::start();
    let php = PhpFpm::start("docs-apache");
    let mut failures = Vec::new();
    let (mut checked, mut requests) = (0, 0);
    for (i, b) in blocks.iter().filter(|b| b.lang == "apache").enumerate() {
        let mut apache = Apache::new(&format!("docs{i}"));
        let server_dir = apache.dir().to_path_buf();
        let env = Env {
            policy: policy_above(b, &blocks, &files),
            backend: backend.port,
            port: apache.port(),
            php_fpm: php.port,
            php_root: php.docroot.clone(),
            error_log: server_dir.join("logs/error.log"),
        };
        let body = match substitute(b, &env) {
            Ok(body) => body,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let inherited = match &env.policy {
            Some(p) if !body.contains("CertAuthzPolicy") => format!("CertAuthzPolicy {}\n", p.display()),
            _ => String::new(),
        };
        // A fragment stands in a configuration that asks for certificates.
        let verify = if body.contains("SSLVerifyClient") { "" } else { "SSLVerifyClient optional\n" };
        apache.write_conf(&(apache_extra_modules() + verify + &inherited + &body));
        let (ok, text) = apache.config_test();
        checked += 1;
        if !ok {
            failures.push(format!("{}: apache2 -t:\n{text}", b.at()));
            continue;
        }
        let whole = b.body.contains("CertAuthz On") && b.body.contains("SSLVerifyClient");
        failures.extend(check_tests_cover(b, whole));
        if !b.tests().is_empty() {
            share_with_workers(apache.dir());
            apache.start();
            let before = failures.len();
            failures.extend(run_requests(&apache, b));
            requests += b.tests().len() - (failures.len() - before);
            apache.stop();
        }
    }
    eprintln!("apache blocks: {checked} passed apache2 -t, {requests} requests as written");
    report("apache blocks failed", failures);
}

/// Debian's files that nginx configurations include by a relative name
/// (`include snippets/fastcgi-php.conf;`), copied into the prefix's conf/
/// so that they resolve as they do in /etc/nginx.
fn debian_includes(nginx: &Nginx) {
    for file in ["fastcgi_params", "fastcgi.conf", "snippets/fastcgi-php.conf", "proxy_params", "mime.types"]
    {
        let to = nginx.path("conf").join(file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(Path::new("/etc/nginx").join(file), &to)
            .unwrap_or_else(|e| panic!("/etc/nginx/{file}: {e}"));
    }
}

/// Where an nginx block goes.
#[derive(Debug, PartialEq)]
enum Context {
    Main,
    Http,
    Server,
}

fn nginx_context(block: &Block) -> Result<Context, String> {
    match block.attrs.get("context").map(String::as_str) {
        Some("server") => return Ok(Context::Server),
        Some(other) => return Err(format!("{}: context={other}: only context=server is known", block.at())),
        None => {}
    }
    if block.body.lines().any(|l| l.trim_start().starts_with("http {")) {
        return Ok(Context::Main);
    }
    let first =
        block.body.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    Ok(if first.starts_with("location ") { Context::Server } else { Context::Http })
}

/// nginx.conf for `body` (placeholders replaced) in `context`.
fn nginx_conf(nginx: &Nginx, body: &str, context: &Context, policy: Option<&Path>, backend: u16) -> String {
    let prefix = nginx.dir().display().to_string();
    let pki = pki();
    let mut head = format!(
        "pid {prefix}/logs/nginx.pid;\nerror_log {prefix}/logs/error.log error;\nuser www-data;\nworker_processes 1;\n"
    );
    if *context == Context::Main {
        // After the block: load_module must come before anything else.
        if !body.contains("events {") {
            head += "events { worker_connections 64; }\n";
        }
        return format!("{body}\n{head}");
    }
    head += &format!("load_module {};\nevents {{ worker_connections 64; }}\n", nginx::module().display());
    let server = |inside: &str| {
        format!(
            "server {{\n\
             listen 127.0.0.1:{port} ssl;\n\
             server_name localhost;\n\
             ssl_certificate {cert};\n\
             ssl_certificate_key {key};\n\
             ssl_client_certificate {ca};\n\
             ssl_verify_client optional;\n\
             {inside}\n\
             }}\n",
            port = nginx.port(),
            cert = pki.path("server.pem").display(),
            key = pki.path("server.key").display(),
            ca = pki.path("ca.pem").display(),
        )
    };
    let inherited = match policy {
        Some(p) if !body.contains("cert_authz_policy") => format!("cert_authz_policy {};\n", p.display()),
        _ => String::new(),
    };
    let http = inherited
        + &match context {
            Context::Server => server(body),
            // A block with a server{} of its own is the whole of http{}.
            _ if body.contains("server {") => body.to_string(),
            _ => format!(
                "{body}\n{}",
                server(&format!("location / {{ proxy_pass http://127.0.0.1:{backend}; }}"))
            ),
        };
    format!("{head}http {{\n{http}}}\n")
}

#[test]
fn nginx_blocks_pass_nginx_t_and_their_requests() {
    let blocks = all_blocks();
    let files = write_policies(&scratch("docs-nginx-policies"), &blocks);
    let backend = Backend::start();
    let php = PhpFpm::start("docs-nginx");
    let mut failures = Vec::new();
    let (mut checked, mut requests) = (0, 0);
    for (i, b) in blocks.iter().filter(|b| b.lang == "nginx").enumerate() {
        let mut nginx = Nginx::new(&format!("docs{i}"));
        debian_includes(&nginx);
        let server_dir = nginx.dir().to_path_buf();
        let env = Env {
            policy: policy_above(b, &blocks, &files),
            backend: backend.port,
            port: nginx.port(),
            php_fpm: php.port,
            php_root: php.docroot.clone(),
            error_log: server_dir.join("logs/error.log"),
        };
        let (body, context) = match substitute(b, &env).and_then(|body| Ok((body, nginx_context(b)?))) {
            Ok(x) => x,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        // A relative cert_authz_policy is taken from conf/, as include is.
        if let Some(policy) = &env.policy {
            fs::copy(policy, nginx.path("conf/cert-authz.policy")).unwrap();
        }
        nginx.write_raw_conf(&nginx_conf(&nginx, &body, &context, env.policy.as_deref(), backend.port));
        let (ok, text) = nginx.config_test();
        checked += 1;
        if !ok {
            failures.push(format!("{}: nginx -t ({context:?} context):\n{text}", b.at()));
            continue;
        }
        failures.extend(check_tests_cover(b, context == Context::Main));
        if !b.tests().is_empty() {
            share_with_workers(nginx.dir());
            nginx.start();
            let before = failures.len();
            failures.extend(run_requests(&nginx, b));
            requests += b.tests().len() - (failures.len() - before);
            nginx.stop();
        }
    }
    eprintln!("nginx blocks: {checked} passed nginx -t, {requests} requests as written");
    report("nginx blocks failed", failures);
}
