//! `cert-authz`: check, show, lint and test policies from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cert_authz::report::{self, LineKind};
use cert_authz::{compile_file, Attr, Peer, Policy, PolicyError, Presented};

const USAGE: &str = "\
usage:
  cert-authz check --policy POLICY --cert CERT [--method METHOD] --path PATH [--user ATTR]
  cert-authz show CERT
  cert-authz lint POLICY...
  cert-authz test --policy POLICY CASES

exit status: 0 allow / success, 1 deny / failed cases, 2 usage, policy or I/O error";

/// Exit 2: usage, policy or I/O errors.
struct Fail(String);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("show") => show(&args[1..]),
        Some("lint") => lint(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some("--version" | "version") => {
            println!("cert-authz {}", cert_authz::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(Fail(USAGE.to_string())),
    };
    match result {
        Ok(code) => code,
        Err(Fail(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` pairs, and the other arguments.
type Options = (Vec<(String, String)>, Vec<String>);

/// Parses `--name value` options; every name must be in `known`.
fn options(args: &[String], known: &[&str]) -> Result<Options, Fail> {
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(name) = args[i].strip_prefix("--") {
            if !known.contains(&name) {
                return Err(Fail(format!("unknown option --{name}\n{USAGE}")));
            }
            let value = args.get(i + 1).ok_or_else(|| Fail(format!("--{name} needs a value")))?;
            opts.push((name.to_string(), value.clone()));
            i += 2;
        } else {
            rest.push(args[i].clone());
            i += 1;
        }
    }
    Ok((opts, rest))
}

fn option<'a>(opts: &'a [(String, String)], name: &str) -> Option<&'a str> {
    opts.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn required<'a>(opts: &'a [(String, String)], name: &str) -> Result<&'a str, Fail> {
    option(opts, name).ok_or_else(|| Fail(format!("--{name} is required\n{USAGE}")))
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
    let bytes = std::fs::read(path).map_err(|e| Fail(format!("cannot read {}: {e}", path.display())))?;
    Ok(Presented::from_pem_or_der(&bytes))
}

/// Decides one request for a certificate file, as a verified certificate,
/// as a server with CertAuthzUser `user` would.  The text is the line the
/// servers log for the decision, and the user handed on.
fn decide_one(
    policy: &Policy,
    cert: &Presented,
    method: &str,
    path: &str,
    user: Option<Attr>,
) -> (bool, String) {
    let peer = cert.identity().map_or(Peer::Unparsable, Peer::Verified);
    let decision = policy.decide_as(peer, method, path, user);
    let kind = if decision.allowed { LineKind::Allow } else { LineKind::Deny };
    let mut text = report::line(kind, &decision, Some(cert), true, method.as_bytes(), path.as_bytes());
    if let (Some(identity), Some(attr), Some(index)) = (cert.identity(), user, decision.user) {
        text = format!("{text}, user {}", identity.values(attr)[index]);
    }
    (decision.allowed, text)
}

fn check(args: &[String]) -> Result<ExitCode, Fail> {
    let (opts, rest) = options(args, &["policy", "cert", "method", "path", "user"])?;
    if !rest.is_empty() {
        return Err(Fail(format!("unexpected argument {}\n{USAGE}", rest[0])));
    }
    let policy = load_policy(required(&opts, "policy")?)?;
    let cert = load_cert(Path::new(required(&opts, "cert")?))?;
    let method = option(&opts, "method").unwrap_or("GET");
    let path = required(&opts, "path")?;
    let user = match option(&opts, "user") {
        Some(name) => {
            Some(Attr::parse(name).ok_or_else(|| Fail(format!("--user {name}: not an attribute")))?)
        }
        None => None,
    };
    let (allowed, line) = decide_one(&policy, &cert, method, path, user);
    println!("{line}");
    Ok(if allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
    let [path] = args else {
        return Err(Fail(USAGE.to_string()));
    };
    let cert = load_cert(Path::new(path))?;
    let identity = match (cert.identity(), cert.refusal()) {
        (Some(identity), _) => identity,
        (None, why) => return Err(Fail(format!("{path}: refused: {}", why.map_or("", |w| &w.0)))),
    };
    for attr in Attr::all() {
        for value in identity.values(attr) {
            println!("{attr}={}", quote(value));
        }
    }
    println!("# key: {}, lifetime: {}h", identity.key, identity.lifetime_secs / 3600);
    Ok(ExitCode::SUCCESS)
}

fn lint(args: &[String]) -> Result<ExitCode, Fail> {
    if args.is_empty() {
        return Err(Fail(USAGE.to_string()));
    }
    let mut failed = false;
    for path in args {
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
    let (opts, rest) = options(args, &["policy"])?;
    let [cases_path] = rest.as_slice() else {
        return Err(Fail(USAGE.to_string()));
    };
    let policy = load_policy(required(&opts, "policy")?)?;
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
        let identity = load_cert(&cert_path)?;
        let (allowed, reason) = decide_one(&policy, &identity, method, path, None);
        if allowed == want_allow {
            passed += 1;
        } else {
            failed += 1;
            println!(
                "FAIL {cases_path}:{}: expected {expected} {cert} {method} {path}, got {}: {reason}",
                n + 1,
                if allowed { "ALLOW" } else { "DENY" }
            );
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
