//! Warnings about a policy that compiles but probably does not say what its
//! author meant: a group no statement uses, a statement written twice, a
//! name in openssl's display order, a serial number without its issuer.
//!
//! Only `cert-authz lint` asks for them (see `PolicyBuilder::collect_warnings`):
//! finding duplicates keeps a copy of every statement, which a server loading
//! a policy of 100,000 rules has no need to pay for.

use std::collections::{HashMap, HashSet};

use crate::attr::Attr;
use crate::lexer::Token;
use crate::policy::Pos;

/// A matcher as the lint sees it: an attribute's, or a group named.
pub(crate) enum Noted {
    Attr(Attr),
    Group(String),
}

/// What a statement's matchers say about the lint's questions.
#[derive(Debug, Default)]
struct Matchers {
    /// Where the first `serial=` matcher is.
    serial: Option<Pos>,
    /// Whether a matcher names the issuer (its name, key or a CA above it).
    issuer: bool,
    groups: Vec<String>,
}

#[derive(Debug)]
struct GroupLine {
    name: String,
    pos: Pos,
    matchers: Matchers,
}

/// The lint's notes while the builder reads, and the warnings found so far.
#[derive(Debug, Default)]
pub(crate) struct Lint {
    /// Each statement's tokens as written (escapes marked), and where it was first seen.
    seen: HashMap<Vec<String>, Pos>,
    /// Where a statement was written again, and where first.
    duplicates: Vec<(Pos, Pos)>,
    groups: Vec<GroupLine>,
    rules: Vec<Matchers>,
    pub(crate) warnings: Vec<(Pos, String)>,
}

/// Matchers that tie a serial number to one CA.
fn names_issuer(attr: Attr) -> bool {
    matches!(
        attr,
        Attr::Issuer
            | Attr::IssuerField(_)
            | Attr::IssuerOid(_)
            | Attr::IssuerSpki
            | Attr::CaSpki
            | Attr::CaFingerprint
    )
}

/// A token as written, so that `a\*` and `a*` stay apart.
fn written(token: &Token) -> String {
    let mut out = String::with_capacity(token.chars.len());
    for c in &token.chars {
        if c.escaped {
            out.push('\\');
        }
        out.push(c.c);
    }
    out
}

/// The position of the value of an `ATTR=VALUE` token, and the attribute.
fn attr_token(token: &Token, file: u32) -> Option<(Attr, String, Pos)> {
    let eq = token.chars.iter().position(|c| c.c == '=' && !c.quoted && !c.escaped)?;
    let name: String = token.chars[..eq].iter().map(|c| c.c).collect();
    let attr = Attr::parse(&name)?;
    let value: String = token.chars[eq + 1..].iter().map(|c| c.c).collect();
    let at = token.chars.get(eq + 1).unwrap_or(&token.chars[eq]);
    Some((attr, value, Pos { file, line: at.line, col: at.col }))
}

impl Lint {
    /// Notes one statement that parsed: `tokens` as the lexer gave them,
    /// `group` its name when it is a group line, `matchers` its matchers.
    pub(crate) fn statement(
        &mut self,
        tokens: &[Token],
        file: u32,
        group: Option<&str>,
        matchers: impl Iterator<Item = Noted>,
    ) {
        let pos = Pos { file, line: tokens[0].line, col: tokens[0].col };
        let key: Vec<String> = tokens.iter().map(written).collect();
        match self.seen.get(&key) {
            // The same place read again is a file included twice, not a statement written twice.
            Some(first) if *first == pos => {}
            Some(first) => self.duplicates.push((pos, *first)),
            None => {
                self.seen.insert(key, pos);
            }
        }

        let mut notes = Matchers::default();
        for matcher in matchers {
            match matcher {
                Noted::Attr(attr) if names_issuer(attr) => notes.issuer = true,
                Noted::Attr(_) => {}
                Noted::Group(name) => notes.groups.push(name),
            }
        }
        for token in tokens {
            let Some((attr, value, at)) = attr_token(token, file) else { continue };
            if attr == Attr::Serial && notes.serial.is_none() {
                notes.serial = Some(Pos { file, line: token.line, col: token.col });
            }
            if attr.is_dn() {
                if let Some(written_right) = display_order(&value) {
                    self.warnings.push((
                        at,
                        format!(
                            "`{value}` is in openssl's display order (most significant part first); \
                             {attr}= takes RFC 4514's, most specific first: `{written_right}`"
                        ),
                    ));
                }
            }
        }
        match group {
            Some(name) => self.groups.push(GroupLine { name: name.to_string(), pos, matchers: notes }),
            None => self.rules.push(notes),
        }
    }

    /// The warnings that need the whole policy: unused groups and serials
    /// without an issuer.  Then every warning, in no particular order.
    /// `files` names the positions' files.
    pub(crate) fn finish(mut self, files: &[impl AsRef<str>]) -> Vec<(Pos, String)> {
        for (pos, first) in &self.duplicates {
            let at = if first.file == pos.file {
                format!("line {}", first.line)
            } else {
                format!("{}:{}", files[first.file as usize].as_ref(), first.line)
            };
            self.warnings.push((*pos, format!("the same statement as at {at}")));
        }
        let used: HashSet<&str> =
            self.rules.iter().flat_map(|r| r.groups.iter().map(String::as_str)).collect();
        // A group pins the issuer when every one of its lines does.
        let mut pins: HashMap<&str, bool> = HashMap::new();
        for line in &self.groups {
            let all = pins.entry(line.name.as_str()).or_insert(true);
            *all &= line.matchers.issuer;
        }
        let pinned = |m: &Matchers| m.issuer || m.groups.iter().any(|g| pins.get(g.as_str()) == Some(&true));
        let serial_warning = |name: &str| {
            format!(
                "`serial=` without a matcher of the issuer: serial numbers are unique only per CA, so \
                 another trusted CA's certificate may carry the same one; add issuer=, issuer.spki= or \
                 ca.spki= to {name}"
            )
        };

        let mut reported: HashSet<&str> = HashSet::new();
        for line in &self.groups {
            if !used.contains(line.name.as_str()) {
                if reported.insert(&line.name) {
                    self.warnings.push((
                        line.pos,
                        format!(
                            "group `{}` is never used: no allow or deny statement names group={0}",
                            line.name
                        ),
                    ));
                }
                continue;
            }
            if let (Some(at), false) = (line.matchers.serial, line.matchers.issuer) {
                let users_pin = self.rules.iter().filter(|r| r.groups.contains(&line.name)).all(|r| {
                    r.issuer
                        || r.groups.iter().any(|g| *g != line.name && pins.get(g.as_str()) == Some(&true))
                });
                if !users_pin {
                    self.warnings
                        .push((at, serial_warning("this line or the statements that use the group")));
                }
            }
        }
        for rule in &self.rules {
            if let (Some(at), false) = (rule.serial, pinned(rule)) {
                self.warnings.push((at, serial_warning("the statement")));
            }
        }
        self.warnings
    }
}

/// How specific a name's attribute type is, from the person or host (0) to
/// the country or domain (4); None for types without a usual place.
fn rank(kind: &str) -> Option<u8> {
    match kind.to_ascii_uppercase().as_str() {
        "CN" | "UID" | "EMAILADDRESS" | "E" | "SERIALNUMBER" => Some(0),
        "OU" => Some(1),
        "O" => Some(2),
        "L" | "ST" | "STREET" => Some(3),
        "C" | "DC" => Some(4),
        _ => None,
    }
}

/// The `TYPE=value` parts of a name as written, split at `,` and `+` that no
/// `\` escapes.  Only for looking at their order: the parser proper is `dn`.
fn parts(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | '+' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn tidy(part: &str) -> String {
    match part.split_once('=') {
        Some((kind, value)) => format!("{}={}", kind.trim(), value.trim()),
        None => part.trim().to_string(),
    }
}

/// When a name's parts run from the country or organization down to the
/// common name, as `openssl x509 -subject` shows them (`O = x, CN = y`), the
/// name written the RFC 4514 way round; None when the order looks right.
pub(crate) fn display_order(text: &str) -> Option<String> {
    let parts = parts(text);
    let ranks: Vec<u8> =
        parts.iter().filter_map(|p| p.split_once('=')).filter_map(|(k, _)| rank(k.trim())).collect();
    match (ranks.first(), ranks.last()) {
        (Some(first), Some(last)) if first > last => {
            Some(parts.iter().rev().map(|p| tidy(p)).collect::<Vec<_>>().join(","))
        }
        _ => None,
    }
}

/// For a name in openssl's old one-line form (`/O=x/CN=y`), the same name as
/// RFC 4514 writes it (`CN=y,O=x`).
pub(crate) fn slash_form(text: &str) -> Option<String> {
    let rest = text.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| !p.contains('=')) {
        return None;
    }
    Some(parts.iter().rev().map(|p| tidy(p)).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_display_order_are_turned_round() {
        assert_eq!(display_order("O = x, CN = y").as_deref(), Some("CN=y,O=x"));
        assert_eq!(
            display_order("C=DE,O=Example\\, Inc.,OU=ops,CN=bot").as_deref(),
            Some("CN=bot,OU=ops,O=Example\\, Inc.,C=DE")
        );
        assert_eq!(display_order("DC=com,DC=example,CN=x").as_deref(), Some("CN=x,DC=example,DC=com"));
        assert_eq!(display_order("CN=y,O=x"), None);
        assert_eq!(display_order("CN=y"), None);
        assert_eq!(display_order("2.5.4.3=y,O=x"), None);
        assert_eq!(slash_form("/C=DE/O=x/CN=y").as_deref(), Some("CN=y,O=x,C=DE"));
        assert_eq!(slash_form("/etc/x"), None);
        assert_eq!(slash_form("CN=y"), None);
    }
}
