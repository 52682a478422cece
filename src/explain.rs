//! What `cert-authz check --explain` and `cert-authz test --coverage` say about a
//! policy's statements: which part of each held for a request, and which statements
//! decided a case.  Part of the CLI binary, not of the library.
//!
//! A compiled [`Policy`] keeps only what decisions need: paths live in a trie, groups
//! are numbers and group lines have no place.  So the statements are read again from
//! the policy's files with the library's own lexer, and every part of every statement
//! (its methods, its path, each matcher, each group line) is restated as a rule of a
//! probe policy that the library compiles and decides.  Whether a part holds is
//! therefore always the library's answer, never a second implementation of the
//! language that could drift from it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use cert_authz::decide::normalized_path;
use cert_authz::lexer::{lex_each, LChar, Lexed, Token};
use cert_authz::policy::MAX_INCLUDE_DEPTH;
use cert_authz::{compile_str, Attr, Decision, Identity, Peer, Policy, Presented, Reason};

/// How many near statements `--explain` shows.
const NEAREST: usize = 5;
/// How many lines of a group, and values of an attribute, it shows.
const GROUP_LINES: usize = 3;
const VALUES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Group,
    Allow,
    Deny,
    Require,
}

/// One statement as written, where the policy's decisions name it.
pub struct Statement {
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    tokens: Vec<Token>,
}

impl Statement {
    /// `FILE:LINE`, as a decision's origin names it.
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The statement on one line, continuations joined.
    pub fn text(&self) -> String {
        self.tokens.iter().map(written).collect::<Vec<_>>().join(" ")
    }

    fn matchers(&self) -> &[Token] {
        match self.kind {
            Kind::Group => &self.tokens[2..],
            Kind::Allow | Kind::Deny => &self.tokens[3..],
            Kind::Require => &[],
        }
    }
}

/// A matcher token, classified as the parser does.
enum Part {
    Any,
    Group(String),
    Attr(Attr),
}

fn part(token: &Token) -> Part {
    let plain = |c: &LChar| !c.quoted && !c.escaped;
    let text = |chars: &[LChar]| chars.iter().map(|c| c.c).collect::<String>();
    let chars = &token.chars;
    let eq = chars.iter().position(|c| c.c == '=' && plain(c));
    match eq.map(|eq| (text(&chars[..eq]), &chars[eq + 1..])) {
        Some((name, value)) if name == "group" => Part::Group(text(value)),
        // The policy compiled: without an `=` the matcher is `any`.
        Some((name, _)) => Attr::parse(&name).map_or(Part::Any, Part::Attr),
        None => Part::Any,
    }
}

/// A token written back so that the lexer reads the same characters: quotes where the
/// original had them, `\` before the characters it escaped.  (A `\` the lexer kept as
/// written is never followed by `"`, which it would have escaped.)
fn written(token: &Token) -> String {
    written_chars(&token.chars)
}

fn written_chars(chars: &[LChar]) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in chars {
        if c.quoted != quoted {
            out.push('"');
            quoted = c.quoted;
        }
        if c.escaped {
            out.push('\\');
        }
        out.push(c.c);
    }
    if quoted {
        out.push('"');
    }
    out
}

/// The `{ATTR}` segments of a path token: (segment number, attribute, the segment's
/// characters' range in the token), as the parser finds them.
fn templates(token: &Token) -> Vec<(usize, Attr, std::ops::Range<usize>)> {
    let chars = &token.chars;
    let mut found = Vec::new();
    let (mut start, mut segment) = (1, 0);
    for i in 1..=chars.len() {
        if i == chars.len() || (chars[i].c == '/' && !chars[i].escaped) {
            let text: String = chars[start..i].iter().map(|c| c.c).collect();
            if text.len() > 2 && text.starts_with('{') && text.ends_with('}') && !chars[start].escaped {
                if let Some(attr) = Attr::parse(&text[1..text.len() - 1]) {
                    found.push((segment, attr, start..i));
                }
            }
            start = i + 1;
            segment += 1;
        }
    }
    found
}

/// The path token with the templates not in `keep` written as `*`.
fn relaxed(token: &Token, keep: Option<usize>) -> String {
    let mut chars = token.chars.clone();
    for (n, (_, _, range)) in templates(token).into_iter().enumerate().rev() {
        if Some(n) != keep {
            let star = LChar { c: '*', quoted: false, escaped: false, ..chars[range.start] };
            chars.splice(range, [star]);
        }
    }
    written_chars(&chars)
}

/// The statements of a policy that compiled, read again from its files.
pub struct Source {
    pub statements: Vec<Statement>,
}

impl Source {
    /// Reads `path` and its includes as the builder does (the same file names, so that
    /// a decision's origin names a statement here); a file included again is skipped.
    pub fn read(path: &Path) -> Result<Source, String> {
        let mut source = Source { statements: Vec::new() };
        source.read_file(path, &mut HashSet::new(), 0)?;
        Ok(source)
    }

    fn read_file(&mut self, path: &Path, seen: &mut HashSet<String>, depth: usize) -> Result<(), String> {
        let name = path.to_string_lossy().into_owned();
        if depth > MAX_INCLUDE_DEPTH || !seen.insert(name.clone()) {
            return Ok(());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        // Skipped as the builder skips it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut lexed = Vec::new();
        let _ = lex_each(text, 1, |item| {
            if let Lexed::Statement(statement) = item {
                lexed.push(statement.tokens.clone());
            }
            ControlFlow::Continue(())
        });
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for tokens in lexed {
            let kind = match tokens[0].text() {
                "group" => Kind::Group,
                "allow" => Kind::Allow,
                "deny" => Kind::Deny,
                "require" => Kind::Require,
                "include" if tokens.len() == 2 => {
                    self.read_file(&base.join(tokens[1].text()), seen, depth + 1)?;
                    continue;
                }
                _ => continue,
            };
            self.statements.push(Statement { file: name.clone(), line: tokens[0].line, kind, tokens });
        }
        Ok(())
    }

    fn find(&self, origin: Option<(&str, u32)>) -> Option<usize> {
        let (file, line) = origin?;
        self.statements.iter().position(|s| s.file == file && s.line == line)
    }
}

/// The probe policies of a source.  In `parts`, statement S's methods are the rule at
/// `/mS`, its matcher K (an attribute matcher, of a rule or a group line) at `/aS.K`,
/// and a group line S as a whole at `/gS`.
/// In `paths`, each distinct path J of the rules is the rule of method `PJ`, the path
/// with its templates as `*` that of `RJ`, and with only template K kept, `RJKK`: a
/// method name of its own makes a rule the only candidate of its decision.  (One rule
/// per path, not per statement: a decision looks at every rule filed where the request's
/// path leads, and a policy has many statements of one path.)
pub struct Probes<'s> {
    source: &'s Source,
    parts: Policy,
    paths: Policy,
    /// Group name → its group lines (statement numbers).
    groups: HashMap<String, Vec<usize>>,
    /// Statement number → its path's number J in `paths` (0 for other statements).
    path_of: Vec<usize>,
}

/// A part of a rule that did not hold.
enum Failure {
    Method,
    /// Template number, among the path's templates.
    Template(usize),
    /// Matcher number, among the rule's matchers.
    Matcher(usize),
}

/// Statement `s`'s attribute matchers as probe rules `/aS.K`.
fn restate_matchers(parts: &mut String, s: usize, statement: &Statement) {
    for (k, matcher) in statement.matchers().iter().enumerate() {
        if let Part::Attr(_) = part(matcher) {
            let _ = writeln!(parts, "allow * /a{s}.{k} {} #", written(matcher));
        }
    }
}

impl<'s> Probes<'s> {
    pub fn new(source: &'s Source) -> Result<Probes<'s>, String> {
        let (mut parts, mut paths) = (String::new(), String::new());
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        let mut path_ids: HashMap<String, usize> = HashMap::new();
        let mut path_of = vec![0; source.statements.len()];
        // Every line ends in ` #`: a token that ends in a kept `\` must not continue it.
        for (s, statement) in source.statements.iter().enumerate() {
            let tokens = &statement.tokens;
            match statement.kind {
                Kind::Group => {
                    groups.entry(tokens[1].text().to_string()).or_default().push(s);
                    let matchers: Vec<String> = statement.matchers().iter().map(written).collect();
                    let _ = writeln!(parts, "group g{s} {} #", matchers.join(" "));
                    let _ = writeln!(parts, "allow * /g{s} group=g{s} #");
                    restate_matchers(&mut parts, s, statement);
                }
                Kind::Allow | Kind::Deny => {
                    let _ = writeln!(parts, "allow {} /m{s} any #", written(&tokens[1]));
                    restate_matchers(&mut parts, s, statement);
                    let path = &tokens[2];
                    let next = path_ids.len();
                    let j = *path_ids.entry(written(path)).or_insert(next);
                    path_of[s] = j;
                    if j != next {
                        continue;
                    }
                    let _ = writeln!(paths, "allow P{j} {} any #", written(path));
                    let count = templates(path).len();
                    if count > 0 {
                        let _ = writeln!(paths, "allow R{j} {} any #", relaxed(path, None));
                        for k in 0..count {
                            let _ = writeln!(paths, "allow R{j}K{k} {} any #", relaxed(path, Some(k)));
                        }
                    }
                }
                Kind::Require => {}
            }
        }
        let compile = |text: &str, name: &str| {
            compile_str(text, name).map_err(|errors| {
                let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                format!("cannot restate the policy's statements to explain them: {first}")
            })
        };
        Ok(Probes {
            source,
            parts: compile(&parts, "(explain: parts)")?,
            paths: compile(&paths, "(explain: paths)")?,
            groups,
            path_of,
        })
    }

    fn part_holds(&self, identity: &Identity, method: &str, probe: &str) -> bool {
        self.parts.decide(Peer::Verified(identity), method, probe).allowed
    }

    fn path_fits(&self, identity: &Identity, probe: &str, path: &str) -> bool {
        self.paths.decide(Peer::Verified(identity), probe, path).allowed
    }

    /// The group lines of `group` that the identity matches.
    fn matching_lines(&self, identity: &Identity, group: &str) -> Vec<usize> {
        let lines = self.groups.get(group).map_or(&[][..], Vec::as_slice);
        lines.iter().copied().filter(|s| self.part_holds(identity, "GET", &format!("/g{s}"))).collect()
    }

    fn matcher_holds(&self, identity: &Identity, s: usize, k: usize) -> bool {
        match part(&self.source.statements[s].matchers()[k]) {
            Part::Any => true,
            Part::Group(name) => !self.matching_lines(identity, &name).is_empty(),
            Part::Attr(_) => self.part_holds(identity, "GET", &format!("/a{s}.{k}")),
        }
    }

    /// The parts of rule `s` that do not hold for the request, or None when its path does
    /// not fit even with its templates as `*`.
    fn failures(&self, identity: &Identity, method: &str, path: &str, s: usize) -> Option<Vec<Failure>> {
        let statement = &self.source.statements[s];
        let mut failed = Vec::new();
        let j = self.path_of[s];
        if !self.path_fits(identity, &format!("P{j}"), path) {
            if !self.path_fits(identity, &format!("R{j}"), path) {
                return None;
            }
            for k in 0..templates(&statement.tokens[2]).len() {
                if !self.path_fits(identity, &format!("R{j}K{k}"), path) {
                    failed.push(Failure::Template(k));
                }
            }
        }
        if !self.part_holds(identity, method, &format!("/m{s}")) {
            failed.push(Failure::Method);
        }
        for k in 0..statement.matchers().len() {
            if !self.matcher_holds(identity, s, k) {
                failed.push(Failure::Matcher(k));
            }
        }
        Some(failed)
    }
}

/// `subject.OU=users, subject.OU=eng`, or `no subject.OU`: what the certificate has.
fn has(identity: &Identity, attr: Attr) -> String {
    let values = identity.values(attr);
    if values.is_empty() {
        return format!("no {attr}");
    }
    let mut shown: Vec<String> =
        values.iter().take(VALUES).map(|v| format!("{attr}={}", super::quote(v))).collect();
    if values.len() > VALUES {
        shown.push(format!("and {} more", values.len() - VALUES));
    }
    shown.join(", ")
}

fn duration(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n != 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The lines `check --explain` prints after the decision's line.
pub fn explain(
    probes: &Probes<'_>,
    decision: &Decision<'_>,
    cert: &Presented,
    method: &str,
    path: &str,
    user: Option<Attr>,
) -> Vec<String> {
    let source = probes.source;
    let mut out = Vec::new();
    let deciding = source.find(decision.origin).map(|s| &source.statements[s]);
    let named = |s: &Statement| format!("{}: {}", s.place(), s.text());
    let Some(identity) = cert.identity() else {
        out.push("explain: the certificate was refused before any statement was looked at".into());
        return out;
    };
    match decision.reason {
        Reason::AllowRule => {
            if let Some(s) = deciding {
                out.push(format!("explain: allowed by {}", named(s)));
            }
        }
        Reason::UserAmbiguous => {
            if let (Some(s), Some(attr)) = (deciding, user) {
                out.push(format!("explain: {} allows the request,", named(s)));
                out.push(format!(
                    "  but it does not single out one of the certificate's values of {attr} ({})",
                    has(identity, attr)
                ));
            }
        }
        Reason::DenyRule => {
            if let Some(s) = deciding {
                out.push(format!("explain: refused by {} (a matching deny beats every allow)", named(s)));
            }
            let allows: Vec<usize> = (0..source.statements.len())
                .filter(|&s| source.statements[s].kind == Kind::Allow)
                .filter(|&s| probes.failures(identity, method, path, s).is_some_and(|f| f.is_empty()))
                .collect();
            for s in allows {
                out.push(format!("  it also matched: {}", named(&source.statements[s])));
            }
        }
        Reason::KeyRejected => {
            if let Some(s) = deciding {
                out.push(format!("explain: {}: the certificate's key is {}", named(s), identity.key));
            }
        }
        Reason::LifetimeTooLong => {
            if let Some(s) = deciding {
                out.push(format!(
                    "explain: {}: the certificate's lifetime is {}",
                    named(s),
                    duration(identity.lifetime_secs)
                ));
            }
        }
        Reason::NoMatchingRule => nearest(probes, identity, method, path, &mut out),
        _ => out.push("explain: the request was refused before any statement was looked at".into()),
    }
    out
}

/// The allow statements whose path fits, nearest (fewest parts that did not hold)
/// first, each with the parts that did not hold.
fn nearest(probes: &Probes<'_>, identity: &Identity, method: &str, path: &str, out: &mut Vec<String>) {
    let source = probes.source;
    let mut near: Vec<(usize, Vec<Failure>)> = (0..source.statements.len())
        .filter(|&s| source.statements[s].kind == Kind::Allow)
        .filter_map(|s| Some((s, probes.failures(identity, method, path, s)?)))
        .collect();
    if near.is_empty() {
        out.push(format!("explain: no allow statement's path fits {path}"));
        return;
    }
    // Stable: among equally near statements, the first written first.
    near.sort_by_key(|(_, failed)| failed.len());
    out.push(format!(
        "explain: no allow statement holds; the nearest of the {} whose path fits:",
        near.len()
    ));
    for (s, failed) in near.iter().take(NEAREST) {
        let statement = &source.statements[*s];
        out.push(format!("  {}: {}", statement.place(), statement.text()));
        for failure in failed {
            match failure {
                Failure::Method => {
                    out.push(format!("    method {method} is not {}", written(&statement.tokens[1])))
                }
                Failure::Template(k) => {
                    let (segment, attr, _) = templates(&statement.tokens[2])[*k];
                    let given = normalized_path(path).and_then(|p| p.split('/').nth(segment)).unwrap_or("");
                    out.push(format!(
                        "    path segment {{{attr}}} is {}, the certificate has {}",
                        super::quote(given),
                        has(identity, attr)
                    ));
                }
                Failure::Matcher(k) => {
                    explain_matcher(probes, identity, statement, *k, "    ", out);
                }
            }
        }
    }
    if near.len() > NEAREST {
        out.push(format!("  and {} more", near.len() - NEAREST));
    }
}

fn explain_matcher(
    probes: &Probes<'_>,
    identity: &Identity,
    statement: &Statement,
    k: usize,
    indent: &str,
    out: &mut Vec<String>,
) {
    let token = &statement.matchers()[k];
    match part(token) {
        Part::Any => {}
        Part::Attr(attr) => out.push(format!(
            "{indent}{} does not hold: the certificate has {}",
            written(token),
            has(identity, attr)
        )),
        Part::Group(name) => {
            out.push(format!("{indent}{} does not hold: no line of group {name} matches:", written(token)));
            let lines = probes.groups.get(&name).map_or(&[][..], Vec::as_slice);
            for &g in lines.iter().take(GROUP_LINES) {
                let line = &probes.source.statements[g];
                out.push(format!("{indent}  {}: {}", line.place(), line.text()));
                for m in 0..line.matchers().len() {
                    if !probes.matcher_holds(identity, g, m) {
                        explain_matcher(probes, identity, line, m, &format!("{indent}    "), out);
                    }
                }
            }
            if lines.len() > GROUP_LINES {
                out.push(format!("{indent}  and {} more lines", lines.len() - GROUP_LINES));
            }
        }
    }
}

/// Which statements decided a case of `cert-authz test`.
pub struct Coverage<'p> {
    probes: &'p Probes<'p>,
    exercised: Vec<bool>,
}

impl<'p> Coverage<'p> {
    pub fn new(probes: &'p Probes<'p>) -> Coverage<'p> {
        Coverage { probes, exercised: vec![false; probes.source.statements.len()] }
    }

    /// Counts the statement that decided a case (an allow, a deny or a require), and
    /// the group lines through which it matched: the lines of the groups it names that
    /// the case's certificate matches.
    pub fn record(&mut self, decision: &Decision<'_>, identity: Option<&Identity>) {
        let Some(s) = self.probes.source.find(decision.origin) else {
            return;
        };
        self.exercised[s] = true;
        let Some(identity) = identity else {
            return;
        };
        for matcher in self.probes.source.statements[s].matchers() {
            if let Part::Group(name) = part(matcher) {
                for g in self.probes.matching_lines(identity, &name) {
                    self.exercised[g] = true;
                }
            }
        }
    }

    /// The report: a count, then every statement that no case exercised.
    pub fn report(&self) -> Vec<String> {
        let statements = &self.probes.source.statements;
        let missed: Vec<&Statement> =
            statements.iter().zip(&self.exercised).filter(|(_, e)| !**e).map(|(s, _)| s).collect();
        if missed.is_empty() {
            return vec![format!("coverage: all {} statements exercised", statements.len())];
        }
        let mut out = vec![format!(
            "coverage: {} of {} statements exercised; not exercised:",
            statements.len() - missed.len(),
            statements.len()
        )];
        out.extend(missed.iter().map(|s| format!("  {}: {}", s.place(), s.text())));
        out
    }
}
