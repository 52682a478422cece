//! `cert-authz`: check, show, lint and test policies from the command line.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use cert_authz::identity::pem_chain_to_der;
use cert_authz::report::{self, LineKind};
use cert_authz::{compile_file, lint_file, Attr, Decision, Peer, Policy, PolicyError, Presented, Reason};

mod explain;

use cert_authz::request_target::{self, Outcome, Server};

/// The reader of our output has gone (`cert-authz show x | head -1`).
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout.  A reader that has gone ends the output, not
/// the command: the exit status still tells what was decided.  Any other
/// write error (a full disk) is an I/O error.
fn emit(line: std::fmt::Arguments<'_>) -> Result<(), Fail> {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    match writeln!(std::io::stdout().lock(), "{line}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            STDOUT_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Fail(format!("cannot write the output: {e}"))),
    }
}

/// Writes one line to stderr; where that cannot be written, nothing can be told.
fn emit_err(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

macro_rules! out {
    ($($arg:tt)*) => {
        emit(format_args!($($arg)*))?
    };
}

/// A subcommand: its usage line, its `--help` text, and the options it takes.
struct Command {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
    /// `--name VALUE` options.
    values: &'static [&'static str],
    /// `--name` options without a value.
    flags: &'static [&'static str],
}

const CHECK: Command = Command {
    name: "check",
    usage:
        "cert-authz check --policy POLICY --cert CERT [--chain CHAIN] [--method METHOD] (--path PATH | --target TARGET [--server apache|nginx]) [--user ATTR] [--explain]",
    help: "\
Decides one request as a server would, for the certificate CERT (PEM or DER) taken as
verified, and prints the line a server logs for the decision: decision, reason and the
deciding statement's FILE:LINE.

  --policy POLICY   the policy file
  --cert CERT       the client certificate, PEM or DER
  --chain CHAIN     the chain the server verified CERT with, a PEM bundle from the leaf's
                    issuer up (a copy of CERT in it is skipped): gives ca.spki,
                    ca.fingerprint and issuer.spki
  --method METHOD   the request method (default GET)
  --path PATH       the server's normalized path, without the query string: raw `//`,
                    `.` or `..` segments are refused as a module refuses them; it must
                    start with /
  --target TARGET   instead of --path: the request target as a client sends it
                    (`/a/%2e%2e/b?x=1`), made the path a server decides on: the query
                    dropped, %XX decoded, `//` merged, `.` and `..` resolved; a target
                    the server itself refuses (400 or 404, e.g. `..` above the root,
                    a bad or NUL escape) prints `refused by the server with STATUS`
                    and exits 1
  --server SERVER   apache or nginx, for --target: they differ only on `%2F` (Apache
                    answers 404, nginx decodes it to a /), which without --server is
                    an error
  --user ATTR       decide as a server with CertAuthzUser ATTR does, and print the user
  --explain         say why: for a refusal by no allow statement, the nearest statements
                    whose path fits and which part of each did not hold (the method, a
                    path segment {ATTR}, a matcher, with the certificate's values); for a
                    deny or require statement, the statement and what it refused
  --help            print this and exit

exit status: 0 allowed, 1 refused (a refused certificate or path too), 2 usage, policy or
I/O error, or a CERT that holds no certificate",
    values: &["policy", "cert", "chain", "method", "path", "target", "server", "user"],
    flags: &["explain"],
};

const SHOW: Command = Command {
    name: "show",
    usage: "cert-authz show [--chain CHAIN] CERT",
    help: "\
Prints the attributes of the certificate CERT (PEM or DER) that a policy can match, one
ATTR=VALUE per line, each value quoted as a policy needs it, then its key and lifetime.

  --chain CHAIN     the chain the server verified CERT with, a PEM bundle (as for check)
  --help            print this and exit

exit status: 0, or 2 when CERT or CHAIN cannot be read, holds no certificate or is
refused",
    values: &["chain"],
    flags: &[],
};

const LINT: Command = Command {
    name: "lint",
    usage: "cert-authz lint POLICY...",
    help: "\
Compiles each policy file as a server would and prints `FILE: ok, N rules`, or every
error as FILE:LINE:COL: message.  Warnings, as FILE:LINE:COL: warning: message, name what
compiles but is probably a mistake: a group no statement uses, a statement written twice,
a subject= or issuer= name in openssl's display order (`O = x, CN = y`), and serial=
without a matcher of the issuer (serial numbers are unique only per CA).

  --help            print this and exit

exit status: 0 when every policy compiles (warnings or not), 2 on any error",
    values: &[],
    flags: &[],
};

const TEST: Command = Command {
    name: "test",
    usage: "cert-authz test --policy POLICY [--coverage] CASES",
    help: "\
Runs the file CASES of expected decisions, one `ALLOW|DENY CERT METHOD PATH` per line (CERT
relative to CASES; `#` comments), prints every case that failed and `N passed, M failed`.
A line that is not a case (or whose CERT cannot be read) is an error at its line; every
other case still runs first.  A file without any case is an error.

  --policy POLICY   the policy file
  --coverage        then list the statements that no case exercised: an allow, deny or
                    require statement is exercised when it decided a case (the statement a
                    decision names; of several matching, the one written first); a group
                    line, when a statement that names its group decided a case and the
                    line matched that case's certificate
  --help            print this and exit

exit status: 0 when every case passed, 1 when any failed (unexercised statements alone do
not fail), 2 usage, policy or I/O error, a malformed line or no case at all",
    values: &["policy"],
    flags: &["coverage"],
};

const COMMANDS: [&Command; 4] = [&CHECK, &SHOW, &LINT, &TEST];

fn usage() -> String {
    let mut text = String::from("usage:\n");
    for command in COMMANDS {
        text.push_str(&format!("  {}\n", command.usage));
    }
    text.push_str("  cert-authz COMMAND --help\n\n");
    text.push_str("exit status: 0 allow / success, 1 deny / failed cases, 2 usage, policy or I/O error");
    text
}

fn command_help(command: &Command) -> String {
    format!("usage: {}\n\n{}", command.usage, command.help)
}

/// Exit 2: usage, policy or I/O errors.
struct Fail(String);

fn main() -> ExitCode {
    // std::env::args() would panic on an argument that is not UTF-8.
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let Ok(args) = args else {
        emit_err(format_args!("an argument is not UTF-8 text"));
        return ExitCode::from(2);
    };
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("show") => show(&args[1..]),
        Some("lint") => lint(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("-h" | "--help" | "help") => match args.get(1) {
            None => emit(format_args!("{}", usage())).map(|()| ExitCode::SUCCESS),
            Some(name) => match COMMANDS.iter().find(|c| c.name == name) {
                Some(command) => emit(format_args!("{}", command_help(command))).map(|()| ExitCode::SUCCESS),
                None => Err(Fail(format!("no command {name}\n{}", usage()))),
            },
        },
        Some("--version" | "version") => {
            emit(format_args!("cert-authz {}", cert_authz::VERSION)).map(|()| ExitCode::SUCCESS)
        }
        _ => Err(Fail(usage())),
    };
    match result {
        Ok(code) => code,
        Err(Fail(message)) => {
            emit_err(format_args!("{message}"));
            ExitCode::from(2)
        }
    }
}

/// A subcommand's arguments: `--name value` pairs, the flags given, and the others.
struct Options {
    values: Vec<(String, String)>,
    flags: Vec<String>,
    rest: Vec<String>,
}

impl Options {
    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, command: &Command, name: &str) -> Result<&str, Fail> {
        self.value(name).ok_or_else(|| Fail(format!("--{name} is required\nusage: {}", command.usage)))
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

/// Parses a subcommand's options; every name must be one it takes.  `--` ends the
/// options.  Ok(None): `--help` or `-h` was given, and the help is printed.
fn options(command: &Command, args: &[String]) -> Result<Option<Options>, Fail> {
    let mut parsed = Options { values: Vec::new(), flags: Vec::new(), rest: Vec::new() };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            parsed.rest.extend(args.cloned());
            break;
        }
        if arg == "--help" || arg == "-h" {
            emit(format_args!("{}", command_help(command)))?;
            return Ok(None);
        }
        let Some(name) = arg.strip_prefix("--") else {
            parsed.rest.push(arg.clone());
            continue;
        };
        if command.flags.contains(&name) {
            parsed.flags.push(name.to_string());
        } else if command.values.contains(&name) {
            let value = args.next().ok_or_else(|| Fail(format!("--{name} needs a value")))?;
            parsed.values.push((name.to_string(), value.clone()));
        } else {
            return Err(Fail(format!("unknown option --{name}\nusage: {}", command.usage)));
        }
    }
    Ok(Some(parsed))
}

fn load_policy(path: &str) -> Result<Policy, Fail> {
    compile_file(Path::new(path)).map_err(|errors| Fail(format_errors(&errors)))
}

fn format_errors(errors: &[PolicyError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// Reads a certificate: accepted, or refused by the core's rules (which
/// decides as a deny).  Err(Fail) when the file cannot be read or holds no
/// certificate at all.
fn load_cert(path: &Path) -> Result<Presented, Fail> {
    load_cert_chain(path, None)
}

/// The DER of the certificate in `bytes` (the first block of a PEM file), or
/// why the file holds none.
fn leaf_der(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, Fail> {
    let none = |why: &dyn std::fmt::Display| Fail(format!("{}: holds no certificate: {why}", path.display()));
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return match pem_chain_to_der(bytes) {
            Ok(blocks) => {
                blocks.into_iter().next().ok_or_else(|| none(&"no -----BEGIN CERTIFICATE----- block"))
            }
            Err(e) => Err(none(&e)),
        };
    }
    if bytes.is_empty() {
        return Err(none(&"the file is empty"));
    }
    if !one_der_sequence(bytes) {
        return Err(none(&"neither PEM nor one DER SEQUENCE"));
    }
    Ok(bytes.to_vec())
}

/// Whether `bytes` are exactly one DER SEQUENCE, as a certificate is.  What
/// is inside is the core's to judge: a SEQUENCE it cannot read is a
/// certificate it refuses (a deny), as a server would refuse it; bytes that
/// are no SEQUENCE at all are the wrong file (an error).
fn one_der_sequence(bytes: &[u8]) -> bool {
    let (Some(0x30), Some(&first)) = (bytes.first(), bytes.get(1)) else {
        return false;
    };
    let (len, header) = match first {
        0..=0x7f => (first as usize, 2),
        0x81..=0x84 => {
            let n = (first & 0x7f) as usize;
            let Some(digits) = bytes.get(2..2 + n) else {
                return false;
            };
            (digits.iter().fold(0usize, |len, &d| len << 8 | d as usize), 2 + n)
        }
        _ => return false,
    };
    header.checked_add(len) == Some(bytes.len())
}

/// A certificate with the chain file `chain` (a PEM bundle), if given.
fn load_cert_chain(path: &Path, chain: Option<&str>) -> Result<Presented, Fail> {
    let bytes = std::fs::read(path).map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
    let leaf = leaf_der(path, &bytes)?;
    Ok(match chain {
        None => Presented::from_der(&leaf),
        Some(chain) => {
            let pem = std::fs::read(chain).map_err(|e| Fail(format!("cannot read {chain}: {e}")))?;
            let cas = pem_chain_to_der(&pem).map_err(|e| Fail(format!("{chain}: {e}")))?;
            if cas.is_empty() {
                return Err(Fail(format!("{chain}: no -----BEGIN CERTIFICATE----- block")));
            }
            let cas: Vec<&[u8]> = cas.iter().map(Vec::as_slice).collect();
            Presented::from_der_chain(&leaf, &cas)
        }
    })
}

/// Decides one request for a certificate file, as a verified certificate,
/// as a server with CertAuthzUser `user` would.  The text is the line the
/// servers log for the decision, and the user handed on.
fn decide_one<'p>(
    policy: &'p Policy,
    cert: &Presented,
    method: &str,
    path: &[u8],
    user: Option<Attr>,
) -> (Decision<'p>, String) {
    let peer = cert.identity().map_or(Peer::Unparsable, Peer::Verified);
    // A path that is not UTF-8 (a decoded `%FF`) is refused, as the C ABI refuses it.
    let decision = match std::str::from_utf8(path) {
        Ok(path) => policy.decide_as(peer, method, path, user),
        Err(_) => Decision::deny(Reason::BadPath),
    };
    let kind = if decision.allowed { LineKind::Allow } else { LineKind::Deny };
    let mut text = report::line(kind, &decision, Some(cert), true, method.as_bytes(), path);
    if let (Some(identity), Some(attr), Some(index)) = (cert.identity(), user, decision.user) {
        text = format!("{text}, user {}", identity.values(attr)[index]);
    }
    (decision, text)
}

/// The statements of the policy file `path`, read again after it compiled.
fn load_source(path: &str) -> Result<explain::Source, Fail> {
    explain::Source::read(Path::new(path)).map_err(Fail)
}

fn check(args: &[String]) -> Result<ExitCode, Fail> {
    let Some(opts) = options(&CHECK, args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(extra) = opts.rest.first() {
        return Err(Fail(format!("unexpected argument {extra}\nusage: {}", CHECK.usage)));
    }
    let policy_path = opts.required(&CHECK, "policy")?;
    let policy = load_policy(policy_path)?;
    let cert = load_cert_chain(Path::new(opts.required(&CHECK, "cert")?), opts.value("chain"))?;
    let method = opts.value("method").unwrap_or("GET");
    let path = match (opts.value("path"), opts.value("target")) {
        (Some(_), Some(_)) => {
            return Err(Fail(format!(
                "--path and --target are two ways to say one thing\nusage: {}",
                CHECK.usage
            )))
        }
        (None, None) => return Err(Fail(format!("--path or --target is required\nusage: {}", CHECK.usage))),
        (Some(path), None) => {
            if !path.starts_with('/') {
                return Err(Fail(format!("--path {path}: a path must start with /")));
            }
            if opts.value("server").is_some() {
                return Err(Fail("--server goes with --target".into()));
            }
            path.as_bytes().to_vec()
        }
        (None, Some(target)) => {
            let server = match opts.value("server") {
                Some(name) => Some(
                    Server::parse(name).ok_or_else(|| Fail(format!("--server {name}: apache or nginx")))?,
                ),
                None => None,
            };
            match request_target::resolve(target, server).map_err(Fail)? {
                Some(Outcome::Path(path)) => path,
                Some(Outcome::Refused { status, why }) => {
                    out!("refused by the server with {status} before any module runs: {why} in {method} {target}");
                    return Ok(ExitCode::from(1));
                }
                None => {
                    return Err(Fail(format!(
                        "--target {target}: Apache refuses an encoded slash (404) and nginx decodes it to \
                         a /: give --server apache or --server nginx"
                    )))
                }
            }
        }
    };
    let user = match opts.value("user") {
        Some(name) => {
            Some(Attr::parse(name).ok_or_else(|| Fail(format!("--user {name}: not an attribute")))?)
        }
        None => None,
    };
    let (decision, line) = decide_one(&policy, &cert, method, &path, user);
    out!("{line}");
    if opts.flag("explain") {
        let source = load_source(policy_path)?;
        let probes = explain::Probes::new(&source).map_err(Fail)?;
        let path = String::from_utf8_lossy(&path);
        for line in explain::explain(&probes, &decision, &cert, method, &path, user) {
            out!("{line}");
        }
    }
    Ok(if decision.allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Quotes a value as a policy needs it: double quotes when it has spaces,
/// `\` before `"`, `\` and `*`.
fn quote(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '*') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.is_empty() || out.contains([' ', '\t', '#']) {
        format!("\"{out}\"")
    } else {
        out
    }
}

fn show(args: &[String]) -> Result<ExitCode, Fail> {
    let Some(opts) = options(&SHOW, args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let [path] = opts.rest.as_slice() else {
        return Err(Fail(format!("usage: {}", SHOW.usage)));
    };
    let cert = load_cert_chain(Path::new(path), opts.value("chain"))?;
    let identity = match (cert.identity(), cert.refusal()) {
        (Some(identity), _) => identity,
        (None, why) => return Err(Fail(format!("{path}: refused: {}", why.map_or("", |w| &w.0)))),
    };
    for (attr, values) in identity.listing() {
        for value in values {
            out!("{attr}={}", quote(value));
        }
    }
    out!("# key: {}, lifetime: {}h", identity.key, identity.lifetime_secs / 3600);
    Ok(ExitCode::SUCCESS)
}

fn lint(args: &[String]) -> Result<ExitCode, Fail> {
    let Some(opts) = options(&LINT, args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if opts.rest.is_empty() {
        return Err(Fail(format!("usage: {}", LINT.usage)));
    }
    let mut failed = false;
    for path in &opts.rest {
        let (compiled, warnings) = lint_file(Path::new(path));
        for w in &warnings {
            emit_err(format_args!("{}:{}:{}: warning: {}", w.file, w.line, w.col, w.message));
        }
        match compiled {
            Ok(policy) => out!("{path}: ok, {} rules", policy.rule_count()),
            Err(errors) => {
                emit_err(format_args!("{}", format_errors(&errors)));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// One line of a cases file.
struct Case<'a> {
    line: usize,
    want_allow: bool,
    expected: &'a str,
    cert: &'a str,
    method: &'a str,
    path: &'a str,
}

/// Reads one line of a cases file: None for a blank or comment line.
fn parse_case(n: usize, line: &str) -> Option<Result<Case<'_>, String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [expected, cert, method, path] = fields.as_slice() else {
        return Some(Err(format!("expected `ALLOW|DENY CERT METHOD PATH`, not `{line}`")));
    };
    let want_allow = match *expected {
        "ALLOW" => true,
        "DENY" => false,
        other => return Some(Err(format!("`{other}` is neither ALLOW nor DENY"))),
    };
    if !path.starts_with('/') {
        return Some(Err(format!("the path `{path}` must start with /")));
    }
    Some(Ok(Case { line: n, want_allow, expected, cert, method, path }))
}

fn test(args: &[String]) -> Result<ExitCode, Fail> {
    let Some(opts) = options(&TEST, args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let [cases_path] = opts.rest.as_slice() else {
        return Err(Fail(format!("usage: {}", TEST.usage)));
    };
    let policy_path = opts.required(&TEST, "policy")?;
    let policy = load_policy(policy_path)?;
    let source = if opts.flag("coverage") { Some(load_source(policy_path)?) } else { None };
    let probes = source.as_ref().map(explain::Probes::new).transpose().map_err(Fail)?;
    let mut coverage = probes.as_ref().map(explain::Coverage::new);
    let cases =
        std::fs::read_to_string(cases_path).map_err(|e| Fail(format!("cannot read {cases_path}: {e}")))?;
    let base = Path::new(cases_path).parent().map(Path::to_path_buf).unwrap_or_default();
    let (mut passed, mut failed, mut malformed) = (0, 0, 0);
    for (n, line) in cases.lines().enumerate() {
        let case = match parse_case(n + 1, line) {
            None => continue,
            Some(Ok(case)) => case,
            Some(Err(message)) => {
                // Reported, and the other cases still run: one typo should not hide
                // what the rest of the file says.
                emit_err(format_args!("{cases_path}:{}: {message}", n + 1));
                malformed += 1;
                continue;
            }
        };
        let cert_path: PathBuf = base.join(case.cert);
        let presented = match load_cert(&cert_path) {
            Ok(presented) => presented,
            Err(Fail(message)) => {
                emit_err(format_args!("{cases_path}:{}: {message}", case.line));
                malformed += 1;
                continue;
            }
        };
        let (decision, reason) = decide_one(&policy, &presented, case.method, case.path.as_bytes(), None);
        if let Some(coverage) = coverage.as_mut() {
            coverage.record(&decision, presented.identity());
        }
        if decision.allowed == case.want_allow {
            passed += 1;
        } else {
            failed += 1;
            out!(
                "FAIL {cases_path}:{}: expected {} {} {} {}, got {}: {reason}",
                case.line,
                case.expected,
                case.cert,
                case.method,
                case.path,
                if decision.allowed { "ALLOW" } else { "DENY" }
            );
        }
    }
    if passed + failed + malformed == 0 {
        return Err(Fail(format!(
            "{cases_path}: no cases (one `ALLOW|DENY CERT METHOD PATH` per line, `#` comments)"
        )));
    }
    out!("{passed} passed, {failed} failed");
    if let Some(coverage) = coverage {
        for line in coverage.report() {
            out!("{line}");
        }
    }
    if malformed > 0 {
        return Err(Fail(format!("{cases_path}: {malformed} line(s) are not cases that can run; see above")));
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
