//! `cert-authz`: check, show, lint and test policies from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cert_authz::identity::pem_chain_to_der;
use cert_authz::report::{self, LineKind};
use cert_authz::{compile_file, Attr, Decision, Peer, Policy, PolicyError, Presented};

mod explain;

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
        "cert-authz check --policy POLICY --cert CERT [--chain CHAIN] [--method METHOD] --path PATH [--user ATTR] [--explain]",
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
                    `.` or `..` segments are refused as a module refuses them
  --user ATTR       decide as a server with CertAuthzUser ATTR does, and print the user
  --explain         say why: for a refusal by no allow statement, the nearest statements
                    whose path fits and which part of each did not hold (the method, a
                    path segment {ATTR}, a matcher, with the certificate's values); for a
                    deny or require statement, the statement and what it refused
  --help            print this and exit

exit status: 0 allowed, 1 refused (a refused certificate or path too), 2 usage, policy or
I/O error",
    values: &["policy", "cert", "chain", "method", "path", "user"],
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

exit status: 0, or 2 when CERT or CHAIN cannot be read or is refused",
    values: &["chain"],
    flags: &[],
};

const LINT: Command = Command {
    name: "lint",
    usage: "cert-authz lint POLICY...",
    help: "\
Compiles each policy file as a server would and prints `FILE: ok, N rules`, or every
error as FILE:LINE:COL: message.

  --help            print this and exit

exit status: 0 when every policy compiles, 2 on any error",
    values: &[],
    flags: &[],
};

const TEST: Command = Command {
    name: "test",
    usage: "cert-authz test --policy POLICY [--coverage] CASES",
    help: "\
Runs the file CASES of expected decisions, one `ALLOW|DENY CERT METHOD PATH` per line (CERT
relative to CASES; `#` comments), prints every case that failed and `N passed, M failed`.

  --policy POLICY   the policy file
  --coverage        then list the statements that no case exercised: an allow, deny or
                    require statement is exercised when it decided a case (the statement a
                    decision names; of several matching, the one written first); a group
                    line, when a statement that names its group decided a case and the
                    line matched that case's certificate
  --help            print this and exit

exit status: 0 when every case passed, 1 when any failed (unexercised statements alone do
not fail), 2 usage, policy or I/O error",
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("show") => show(&args[1..]),
        Some("lint") => lint(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("-h" | "--help" | "help") => match args.get(1) {
            None => {
                println!("{}", usage());
                Ok(ExitCode::SUCCESS)
            }
            Some(name) => match COMMANDS.iter().find(|c| c.name == name) {
                Some(command) => {
                    println!("{}", command_help(command));
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(Fail(format!("no command {name}\n{}", usage()))),
            },
        },
        Some("--version" | "version") => {
            println!("cert-authz {}", cert_authz::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(Fail(usage())),
    };
    match result {
        Ok(code) => code,
        Err(Fail(message)) => {
            eprintln!("{message}");
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
            println!("{}", command_help(command));
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

/// Reads a certificate: accepted or refused (which decides as a deny).
/// Err(Fail) when the file cannot be read at all.
fn load_cert(path: &Path) -> Result<Presented, Fail> {
    load_cert_chain(path, None)
}

/// A certificate with the chain file `chain` (a PEM bundle), if given.
fn load_cert_chain(path: &Path, chain: Option<&str>) -> Result<Presented, Fail> {
    let bytes = std::fs::read(path).map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
    let Some(chain) = chain else {
        return Ok(Presented::from_pem_or_der(&bytes));
    };
    let pem = std::fs::read(chain).map_err(|e| Fail(format!("cannot read {chain}: {e}")))?;
    let cas = pem_chain_to_der(&pem).map_err(|e| Fail(format!("{chain}: {e}")))?;
    if cas.is_empty() {
        return Err(Fail(format!("{chain}: no -----BEGIN CERTIFICATE----- block")));
    }
    let cas: Vec<&[u8]> = cas.iter().map(Vec::as_slice).collect();
    let leaf = if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        match pem_chain_to_der(&bytes).map(|blocks| blocks.into_iter().next()) {
            Ok(Some(der)) => der,
            _ => return Ok(Presented::from_pem(&bytes)),
        }
    } else {
        bytes
    };
    Ok(Presented::from_der_chain(&leaf, &cas))
}

/// Decides one request for a certificate file, as a verified certificate,
/// as a server with CertAuthzUser `user` would.  The text is the line the
/// servers log for the decision, and the user handed on.
fn decide_one<'p>(
    policy: &'p Policy,
    cert: &Presented,
    method: &str,
    path: &str,
    user: Option<Attr>,
) -> (Decision<'p>, String) {
    let peer = cert.identity().map_or(Peer::Unparsable, Peer::Verified);
    let decision = policy.decide_as(peer, method, path, user);
    let kind = if decision.allowed { LineKind::Allow } else { LineKind::Deny };
    let mut text = report::line(kind, &decision, Some(cert), true, method.as_bytes(), path.as_bytes());
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
    let path = opts.required(&CHECK, "path")?;
    let user = match opts.value("user") {
        Some(name) => {
            Some(Attr::parse(name).ok_or_else(|| Fail(format!("--user {name}: not an attribute")))?)
        }
        None => None,
    };
    let (decision, line) = decide_one(&policy, &cert, method, path, user);
    println!("{line}");
    if opts.flag("explain") {
        let source = load_source(policy_path)?;
        let probes = explain::Probes::new(&source).map_err(Fail)?;
        for line in explain::explain(&probes, &decision, &cert, method, path, user) {
            println!("{line}");
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
            println!("{attr}={}", quote(value));
        }
    }
    println!("# key: {}, lifetime: {}h", identity.key, identity.lifetime_secs / 3600);
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
        match compile_file(Path::new(path)) {
            Ok(policy) => println!("{path}: ok, {} rules", policy.rule_count()),
            Err(errors) => {
                eprintln!("{}", format_errors(&errors));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
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
    let (mut passed, mut failed) = (0, 0);
    for (n, line) in cases.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [expected, cert, method, path] = fields.as_slice() else {
            return Err(Fail(format!("{cases_path}:{}: expected `ALLOW|DENY CERT METHOD PATH`", n + 1)));
        };
        let want_allow = match *expected {
            "ALLOW" => true,
            "DENY" => false,
            other => {
                return Err(Fail(format!("{cases_path}:{}: `{other}` is neither ALLOW nor DENY", n + 1)))
            }
        };
        let cert_path: PathBuf = base.join(cert);
        let presented = load_cert(&cert_path)?;
        let (decision, reason) = decide_one(&policy, &presented, method, path, None);
        if let Some(coverage) = coverage.as_mut() {
            coverage.record(&decision, presented.identity());
        }
        if decision.allowed == want_allow {
            passed += 1;
        } else {
            failed += 1;
            println!(
                "FAIL {cases_path}:{}: expected {expected} {cert} {method} {path}, got {}: {reason}",
                n + 1,
                if decision.allowed { "ALLOW" } else { "DENY" }
            );
        }
    }
    println!("{passed} passed, {failed} failed");
    if let Some(coverage) = coverage {
        for line in coverage.report() {
            println!("{line}");
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
