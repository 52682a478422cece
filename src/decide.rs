//! The compiled policy and its decisions.
//!
//! Rules and group lines are indexed by the exact identity value they ask
//! for, so a decision looks up the identity's own values instead of
//! scanning every rule: a 100,000-rule policy decides about as fast as a
//! 10-rule one.  Only rules with no exact matcher (`any`, prefixes) are
//! scanned.  The order of statements never changes a decision: deny beats
//! allow, and among several matches the first written is reported.

use rustc_hash::FxHashMap as HashMap;

use crate::attr::{Attr, ATTR_COUNT};
use crate::identity::{Identity, KeyKind};
use crate::policy::Pos;

/// How a value in a policy matches an identity's value.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(Box<str>),
    Prefix(Box<str>),
    /// `san.dns=*.example.org`: exactly one label before this suffix.
    DnsLabel(Box<str>),
}

impl ValueMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => **v == *value,
            ValueMatch::Prefix(p) => value.starts_with(&**p),
            ValueMatch::DnsLabel(suffix) => match value.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest == &**suffix,
                None => false,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub enum Matcher {
    Any,
    Group(u32),
    Attr(Attr, ValueMatch),
}

#[derive(Debug, Clone)]
pub enum Methods {
    Any,
    List(Box<[Box<str>]>),
}

impl Methods {
    fn allows(&self, method: &str) -> bool {
        match self {
            Methods::Any => true,
            Methods::List(list) => list.iter().any(|m| **m == *method),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Seg {
    Literal(Box<str>),
    Star,
    Template(Attr),
}

#[derive(Debug, Clone)]
pub struct PathPattern {
    pub segs: Box<[Seg]>,
    /// Ends in `**`: zero or more further segments.
    pub rest: bool,
}

impl PathPattern {
    fn matches(&self, path: &[&str], identity: &Identity) -> bool {
        if path.len() < self.segs.len() || (!self.rest && path.len() != self.segs.len()) {
            return false;
        }
        self.segs.iter().zip(path).all(|(seg, part)| match seg {
            Seg::Literal(lit) => **lit == **part,
            Seg::Star => true,
            Seg::Template(attr) => {
                identity.values(*attr).iter().any(|v| template_value_ok(v) && **v == **part)
            }
        })
    }
}

/// A value that could make a template match more than one segment, or a
/// segment the server would never pass, never matches.
fn template_value_ok(value: &str) -> bool {
    !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '\0'])
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub deny: bool,
    pub methods: Methods,
    pub path: PathPattern,
    pub matchers: Box<[Matcher]>,
    pub file: u32,
    pub line: u32,
}

#[derive(Debug, Clone, Copy)]
pub enum KeySpec {
    Rsa(u32),
    Ec(u32),
    Ed25519,
    Ed448,
}

impl KeySpec {
    fn accepts(self, key: KeyKind) -> bool {
        match (self, key) {
            (KeySpec::Rsa(min), KeyKind::Rsa(bits)) => bits >= min,
            (KeySpec::Ec(min), KeyKind::Ec(bits)) => bits >= min,
            (KeySpec::Ed25519, KeyKind::Ed25519) | (KeySpec::Ed448, KeyKind::Ed448) => true,
            _ => false,
        }
    }
}

/// Why a decision came out as it did.  The numbers are the C ABI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    AllowRule = 0,
    NoMatchingRule = 1,
    DenyRule = 2,
    KeyRejected = 3,
    LifetimeTooLong = 4,
    NoCertificate = 5,
    Unverified = 6,
    BadCertificate = 7,
    BadPath = 8,
    BadMethod = 9,
    InternalError = 10,
    UserAmbiguous = 11,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Reason::AllowRule => "allow rule matched",
            Reason::NoMatchingRule => "no allow rule matched",
            Reason::DenyRule => "deny rule matched",
            Reason::KeyRejected => "key type or size not allowed by require key",
            Reason::LifetimeTooLong => "certificate lifetime longer than require lifetime allows",
            Reason::NoCertificate => "no client certificate",
            Reason::Unverified => "client certificate not verified by the server",
            Reason::BadCertificate => "client certificate refused as malformed",
            Reason::BadPath => "path is not unambiguous",
            Reason::BadMethod => "method is not a valid token",
            Reason::InternalError => "internal error",
            Reason::UserAmbiguous => "the user attribute has several values and the allow rule does not single one out",
        }
    }
}

/// What the server knows of the peer certificate.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    None,
    Verified(&'a Identity),
    Unverified,
    Unparsable,
}

/// One decision: allowed or not, why, and which statement decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    pub allowed: bool,
    pub reason: Reason,
    /// (file, line) of the deciding statement.
    pub origin: Option<(&'p str, u32)>,
    /// On an allow decided for a user attribute: the index, among the
    /// identity's values of that attribute, of the one that was authorized.
    pub user: Option<usize>,
}

impl Decision<'_> {
    pub fn deny(reason: Reason) -> Decision<'static> {
        Decision { allowed: false, reason, origin: None, user: None }
    }
}

/// Entries keyed by the exact identity values they ask for.  FxHash: keys
/// come from the administrator's policy; certificates only look up.
#[derive(Default)]
struct ValueIndex {
    exact: Vec<HashMap<Box<str>, Vec<u32>>>,
    dns_label: HashMap<Box<str>, Vec<u32>>,
    by_group: Vec<Vec<u32>>,
    scan: Vec<u32>,
}

impl ValueIndex {
    fn new(groups: usize) -> ValueIndex {
        ValueIndex {
            exact: (0..ATTR_COUNT).map(|_| HashMap::default()).collect(),
            dns_label: HashMap::default(),
            by_group: vec![Vec::new(); groups],
            scan: Vec::new(),
        }
    }

    /// Files an entry under its most selective matcher.
    fn insert(&mut self, id: u32, matchers: &[Matcher]) {
        let exact = matchers.iter().find_map(|m| match m {
            Matcher::Attr(attr, ValueMatch::Exact(v)) => Some((*attr, v)),
            _ => None,
        });
        if let Some((attr, value)) = exact {
            self.exact[attr.index()].entry(value.clone()).or_default().push(id);
            return;
        }
        let label = matchers.iter().find_map(|m| match m {
            Matcher::Attr(Attr::SanDns, ValueMatch::DnsLabel(suffix)) => Some(suffix),
            _ => None,
        });
        if let Some(suffix) = label {
            self.dns_label.entry(suffix.clone()).or_default().push(id);
            return;
        }
        let group = matchers.iter().find_map(|m| match m {
            Matcher::Group(g) => Some(*g as usize),
            _ => None,
        });
        match group {
            Some(g) => self.by_group[g].push(id),
            None => self.scan.push(id),
        }
    }

    /// Calls `f` with every entry that may match the identity (and some
    /// that may not: the caller checks each in full).
    fn candidates(&self, identity: &Identity, groups: &[u32], mut f: impl FnMut(u32)) {
        for (index, table) in self.exact.iter().enumerate() {
            if table.is_empty() {
                continue;
            }
            for value in identity.match_values(attr_for_index(index)) {
                if let Some(ids) = table.get(&**value) {
                    ids.iter().for_each(|id| f(*id));
                }
            }
        }
        if !self.dns_label.is_empty() {
            for name in identity.values(Attr::SanDns) {
                if let Some((_, rest)) = name.split_once('.') {
                    if let Some(ids) = self.dns_label.get(rest) {
                        ids.iter().for_each(|id| f(*id));
                    }
                }
            }
        }
        for g in groups {
            self.by_group[*g as usize].iter().for_each(|id| f(*id));
        }
        self.scan.iter().for_each(|id| f(*id));
    }
}

/// The attribute with a given index (the inverse of Attr::index).
fn attr_for_index(index: usize) -> Attr {
    static ALL: once_cell::sync::Lazy<Vec<Attr>> = once_cell::sync::Lazy::new(|| {
        let mut by_index = Attr::all();
        by_index.sort_by_key(|a| a.index());
        by_index
    });
    ALL[index]
}

/// A compiled, immutable policy.
pub struct Policy {
    files: Vec<Box<str>>,
    rules: Vec<Rule>,
    rule_index: ValueIndex,
    group_lines: Vec<(u32, Box<[Matcher]>)>,
    group_index: ValueIndex,
    group_count: usize,
    key_requirements: Vec<(Vec<KeySpec>, Pos)>,
    lifetime_requirements: Vec<(i64, Pos)>,
}

impl Policy {
    pub(crate) fn new(
        files: Vec<Box<str>>,
        rules: Vec<Rule>,
        group_lines: Vec<(u32, Vec<Matcher>)>,
        group_count: usize,
        key_requirements: Vec<(Vec<KeySpec>, Pos)>,
        lifetime_requirements: Vec<(i64, Pos)>,
    ) -> Policy {
        let mut rule_index = ValueIndex::new(group_count);
        for (id, rule) in rules.iter().enumerate() {
            rule_index.insert(id as u32, &rule.matchers);
        }
        let mut group_index = ValueIndex::new(0);
        let group_lines: Vec<(u32, Box<[Matcher]>)> =
            group_lines.into_iter().map(|(g, m)| (g, m.into_boxed_slice())).collect();
        for (id, (_, matchers)) in group_lines.iter().enumerate() {
            group_index.insert(id as u32, matchers);
        }
        Policy {
            files,
            rules,
            rule_index,
            group_lines,
            group_index,
            group_count,
            key_requirements,
            lifetime_requirements,
        }
    }

    /// The number of allow and deny statements.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn origin(&self, file: u32, line: u32) -> Option<(&str, u32)> {
        Some((&self.files[file as usize], line))
    }

    /// The groups an identity belongs to, sorted.
    pub fn groups_of(&self, identity: &Identity) -> Vec<u32> {
        let mut groups = Vec::new();
        if self.group_count == 0 {
            return groups;
        }
        self.group_index.candidates(identity, &[], |line| {
            let (group, matchers) = &self.group_lines[line as usize];
            if !groups.contains(group) && matchers.iter().all(|m| matcher_ok(m, identity, &[])) {
                groups.push(*group);
            }
        });
        groups.sort_unstable();
        groups
    }

    /// Decides one request.  `path` is the server's decoded, normalized
    /// path without the query string.
    pub fn decide(&self, peer: Peer<'_>, method: &str, path: &str) -> Decision<'_> {
        self.decide_as(peer, method, path, None)
    }

    /// Decides one request for a server that hands the value of `user` to
    /// its backend as the user's name.  The name must be the value that was
    /// authorized: with several values (two CNs, many SANs) the deciding
    /// allow statement must single one out by matching that attribute, or
    /// the request is refused as ambiguous (SPEC §6, invariant 11).
    pub fn decide_as(&self, peer: Peer<'_>, method: &str, path: &str, user: Option<Attr>) -> Decision<'_> {
        let identity = match peer {
            Peer::Verified(identity) => identity,
            Peer::None => return Decision::deny(Reason::NoCertificate),
            Peer::Unverified => return Decision::deny(Reason::Unverified),
            Peer::Unparsable => return Decision::deny(Reason::BadCertificate),
        };
        if method.is_empty()
            || !method.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
        {
            return Decision::deny(Reason::BadMethod);
        }
        let mut segments: Vec<&str> = Vec::with_capacity(8);
        if !split_path(path, &mut segments) {
            return Decision::deny(Reason::BadPath);
        }
        for (specs, pos) in &self.key_requirements {
            if !specs.iter().any(|s| s.accepts(identity.key)) {
                return Decision {
                    allowed: false,
                    reason: Reason::KeyRejected,
                    origin: self.origin(pos.file, pos.line),
                    user: None,
                };
            }
        }
        for (max, pos) in &self.lifetime_requirements {
            if identity.lifetime_secs > *max {
                return Decision {
                    allowed: false,
                    reason: Reason::LifetimeTooLong,
                    origin: self.origin(pos.file, pos.line),
                    user: None,
                };
            }
        }
        let groups = self.groups_of(identity);
        let (mut first_allow, mut first_deny) = (u32::MAX, u32::MAX);
        self.rule_index.candidates(identity, &groups, |id| {
            let rule = &self.rules[id as usize];
            let slot = if rule.deny { &mut first_deny } else { &mut first_allow };
            if id < *slot
                && rule.methods.allows(method)
                && rule.path.matches(&segments, identity)
                && rule.matchers.iter().all(|m| matcher_ok(m, identity, &groups))
            {
                *slot = id;
            }
        });
        let (id, allowed, reason) = if first_deny != u32::MAX {
            (first_deny, false, Reason::DenyRule)
        } else if first_allow != u32::MAX {
            (first_allow, true, Reason::AllowRule)
        } else {
            return Decision::deny(Reason::NoMatchingRule);
        };
        let rule = &self.rules[id as usize];
        let origin = self.origin(rule.file, rule.line);
        let Some(attr) = user.filter(|_| allowed) else {
            return Decision { allowed, reason, origin, user: None };
        };
        match authorized_value(rule, attr, identity, &segments) {
            Ok(user) => Decision { allowed, reason, origin, user },
            Err(()) => Decision { allowed: false, reason: Reason::UserAmbiguous, origin, user: None },
        }
    }
}

/// Which value of `attr` the allow statement `rule` authorized: Ok(None)
/// when the identity has none, the only one when it has one, and with
/// several the single one that every matcher and template segment of the
/// rule on `attr` accepts.  Err when several remain, or when the rule does
/// not look at `attr` at all (it matched through `any`, a group, or another
/// attribute): then no value was authorized more than another.
fn authorized_value(rule: &Rule, attr: Attr, identity: &Identity, segments: &[&str]) -> Result<Option<usize>, ()> {
    let values = identity.match_values(attr);
    match values.len() {
        0 => return Ok(None),
        1 => return Ok(Some(0)),
        _ => {}
    }
    let mut constrained = false;
    let mut found = None;
    for (index, value) in values.iter().enumerate() {
        let mut accepted = true;
        for matcher in rule.matchers.iter() {
            if let Matcher::Attr(a, m) = matcher {
                if *a == attr {
                    constrained = true;
                    accepted &= m.matches(value);
                }
            }
        }
        for (seg, part) in rule.path.segs.iter().zip(segments) {
            if let Seg::Template(a) = seg {
                if *a == attr {
                    constrained = true;
                    accepted &= **value == **part;
                }
            }
        }
        if accepted {
            if found.is_some() {
                return Err(());
            }
            found = Some(index);
        }
    }
    match found {
        Some(index) if constrained => Ok(Some(index)),
        _ => Err(()),
    }
}

fn matcher_ok(matcher: &Matcher, identity: &Identity, groups: &[u32]) -> bool {
    match matcher {
        Matcher::Any => true,
        Matcher::Group(g) => groups.contains(g),
        Matcher::Attr(attr, value) => identity.match_values(*attr).iter().any(|v| value.matches(v)),
    }
}

/// Splits a request path into segments.  One trailing `/` is ignored;
/// an empty path, a path not starting with `/`, an empty, `.` or `..`
/// segment, or a NUL make the path ambiguous: false.
pub fn split_path<'a>(path: &'a str, out: &mut Vec<&'a str>) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path.contains('\0') {
        return false;
    }
    // A server that leaves `%2F` encoded (Apache's AllowEncodedSlashes
    // NoDecode) hands on a path whose segments a backend may split
    // differently: `/api/admin%2Fusers` is `/api/admin/users` to it.
    if path.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'f') {
        return false;
    }
    if rest == "/" {
        return false;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return true;
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return false;
        }
        out.push(segment);
    }
    true
}
