//! The compiled policy and its decisions.
//!
//! No rule is found by checking rules one by one: a path trie
//! ([`paths`]) takes a request to the few places where the patterns that
//! match its path end, and at each a value index ([`values`]) gives the
//! rules filed under a value, prefix, DNS suffix or group that the identity
//! has, or under `any`.  Group lines are indexed the same way.  Every
//! candidate is then checked in full, so a 100,000-rule policy of any form
//! decides about as fast as a 10-rule one, and the order of statements
//! never changes a decision: deny beats allow, and among several matches
//! the first written is reported.
//!
//! A decision allocates nothing: path segments are read from the path as
//! the walk needs them, and the identity's groups are kept on the stack.

mod paths;
mod values;

use std::cell::OnceCell;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::attr::Attr;
use crate::identity::{Identity, KeyKind};
use crate::policy::Pos;
use paths::PathTrie;
use values::{KeyIndex, NONE};

/// How a value in a policy matches an identity's value.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(Box<str>),
    Prefix(Box<str>),
    /// `san.dns=*.example.org`: exactly one label before this suffix.
    DnsLabel(Box<str>),
    /// `san.ip=10.0.0.0/8`: the addresses of one family whose first `len`
    /// bits are those of `net` (the rest of `net` is zero).
    IpNet(IpNet),
}

/// An IPv4 or IPv6 network, as `san.ip=` names a range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub v4: bool,
    pub len: u8,
    /// The network's bytes: 4 for IPv4 (then zeros), 16 for IPv6.
    pub net: [u8; 16],
}

impl IpNet {
    /// The network of `len` bits that `addr` is in.
    pub fn of(addr: IpAddr, len: u8) -> IpNet {
        let (v4, mut net) = match addr.to_canonical() {
            IpAddr::V4(a) => {
                let mut net = [0u8; 16];
                net[..4].copy_from_slice(&a.octets());
                (true, net)
            }
            IpAddr::V6(a) => (false, a.octets()),
        };
        for (i, byte) in net.iter_mut().enumerate() {
            let keep = (len as usize).saturating_sub(i * 8).min(8);
            *byte &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
        }
        IpNet { v4, len, net }
    }

    /// Whether the identity's `san.ip` value `text` (as the identity
    /// writes it: an IPv4-mapped address is IPv4) is in this network.
    pub fn contains(&self, text: &str) -> bool {
        match text.parse::<IpAddr>() {
            Ok(addr) => {
                let v4 = addr.is_ipv4();
                v4 == self.v4 && IpNet::of(addr, self.len) == *self
            }
            Err(_) => false,
        }
    }
}

impl ValueMatch {
    #[inline]
    fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => values::same_bytes(v.as_bytes(), value.as_bytes()),
            _ => self.matches_pattern(value),
        }
    }

    #[inline(never)]
    fn matches_pattern(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => **v == *value,
            ValueMatch::Prefix(p) => value.starts_with(&**p),
            ValueMatch::DnsLabel(suffix) => match value.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest == &**suffix,
                None => false,
            },
            ValueMatch::IpNet(net) => net.contains(value),
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
    /// Shared: a policy's rules repeat a few lists.
    List(Arc<[Box<str>]>),
}

/// The methods most requests use, each a bit of a `MethodSet`: a
/// candidate's methods are then checked with one AND, not compared as
/// text.  At most 8 bytes each, as `packed` reads them.
const KNOWN_METHODS: [u64; 16] = [
    packed(b"GET"),
    packed(b"HEAD"),
    packed(b"POST"),
    packed(b"PUT"),
    packed(b"DELETE"),
    packed(b"PATCH"),
    packed(b"OPTIONS"),
    packed(b"CONNECT"),
    packed(b"TRACE"),
    packed(b"PROPFIND"),
    packed(b"MKCOL"),
    packed(b"COPY"),
    packed(b"MOVE"),
    packed(b"LOCK"),
    packed(b"UNLOCK"),
    packed(b"REPORT"),
];

/// Up to eight bytes as one little-endian word, zero-padded (a method
/// holds no NUL, so no two methods share a word); 0 for a longer one.
const fn packed(bytes: &[u8]) -> u64 {
    if bytes.len() > 8 {
        return 0;
    }
    let mut word = 0;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        word = (word << 8) | bytes[i] as u64;
    }
    word
}

/// A request's method with its bit among KNOWN_METHODS (0: none).
#[derive(Clone, Copy)]
struct RequestMethod<'a> {
    text: &'a [u8],
    bit: u64,
}

impl RequestMethod<'_> {
    /// Checks a request's method and finds its bit.  A known method is a
    /// token already: its word alone says so; another is checked byte by
    /// byte.
    #[inline(always)]
    fn checked(bytes: &[u8]) -> Option<RequestMethod<'_>> {
        let word = exact_word(bytes);
        if let Some(i) = KNOWN_METHODS.iter().position(|known| *known == word) {
            // The word of "GET\0" is GET's: a last byte of 0 (no token
            // character, nor the end of a known method) is not taken for one.
            if word != 0 && bytes.last() != Some(&0) {
                return Some(RequestMethod { text: bytes, bit: 1 << i });
            }
        }
        if bytes.is_empty() || !bytes.iter().all(|&c| METHOD_BYTE[c as usize]) {
            return None;
        }
        Some(RequestMethod { text: bytes, bit: 0 })
    }

    fn of(text: &str) -> RequestMethod<'_> {
        let word = packed(text.as_bytes());
        let bit = match KNOWN_METHODS.iter().position(|known| *known == word) {
            Some(i) if word != 0 => 1 << i,
            _ => 0,
        };
        RequestMethod { text: text.as_bytes(), bit }
    }
}

/// Up to eight bytes as `packed` makes them, read in a few loads (0 for
/// more than eight, as `packed`, and for none).
#[inline(always)]
fn exact_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    match n {
        8 => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
        4..=7 => {
            let lo = u64::from(u32::from_le_bytes(bytes[..4].try_into().unwrap_or([0; 4])));
            let hi = u64::from(u32::from_le_bytes(bytes[n - 4..].try_into().unwrap_or([0; 4])));
            // The overlapping bytes are the same in both: OR keeps them.
            lo | (hi << (8 * (n - 4)))
        }
        // First, middle and last byte: all of one to three, each where it is.
        1..=3 => {
            u64::from(bytes[0])
                | (u64::from(bytes[n / 2]) << (8 * (n / 2)))
                | (u64::from(bytes[n - 1]) << (8 * (n - 1)))
        }
        _ => 0,
    }
}

/// The methods of a statement as decisions check them: the known ones as
/// bits, the others as text.
#[derive(Debug)]
struct MethodSet {
    any: bool,
    known: u64,
    others: Box<[Box<str>]>,
}

impl MethodSet {
    fn of(methods: &Methods) -> MethodSet {
        match methods {
            Methods::Any => MethodSet { any: true, known: 0, others: Box::default() },
            Methods::List(list) => {
                let mut set = MethodSet { any: false, known: 0, others: Box::default() };
                let mut others = Vec::new();
                for method in list.iter() {
                    match RequestMethod::of(method).bit {
                        0 => others.push(method.clone()),
                        bit => set.known |= bit,
                    }
                }
                set.others = others.into_boxed_slice();
                set
            }
        }
    }

    #[inline]
    fn allows(&self, method: RequestMethod<'_>) -> bool {
        // A known method is never among the others, nor an unknown one a bit.
        self.any
            || self.known & method.bit != 0
            || (method.bit == 0 && self.others.iter().any(|m| m.as_bytes() == method.text))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Seg {
    /// `PathSegs::text[start..][..len]`.
    Literal {
        start: u32,
        len: u32,
    },
    Star,
    Template(Attr),
}

/// The segments of every path pattern of a policy, kept together while it
/// is built: one list for all, not a list per pattern and a string per
/// literal segment.
#[derive(Debug, Default)]
pub struct PathSegs {
    pub segs: Vec<Seg>,
    pub text: String,
}

impl PathSegs {
    pub fn of(&self, pattern: &PathPattern) -> &[Seg] {
        &self.segs[pattern.first as usize..][..pattern.len as usize]
    }

    pub fn literal(&self, start: u32, len: u32) -> &str {
        &self.text[start as usize..][..len as usize]
    }
}

/// A path pattern: `PathSegs::segs[first..][..len]`.
#[derive(Debug, Clone, Copy)]
pub struct PathPattern {
    pub first: u32,
    pub len: u32,
    /// Ends in `**`: zero or more further segments.
    pub rest: bool,
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
            Reason::BadMethod => "method is not an upper-case token",
            Reason::InternalError => "internal error",
            Reason::UserAmbiguous => {
                "the user attribute has several values and the allow rule does not single one out"
            }
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

/// A rule as the index keeps it: its path lives in the trie, and only the
/// places of its `{ATTR}` segments are kept, for `authorized_value`.
#[derive(Debug)]
struct CompiledRule {
    matchers: Box<[Matcher]>,
    /// (segment number, attribute) of each template segment.
    templates: Box<[(u32, Attr)]>,
    /// Into `Policy::methods`: most policies have a handful of distinct lists.
    methods: u32,
    deny: bool,
    file: u32,
    line: u32,
    /// Where this statement's `FILE:LINE` is in `Policy::origins`.
    origin: u32,
}

/// A compiled, immutable policy.
pub struct Policy {
    files: Vec<Box<str>>,
    rules: Vec<CompiledRule>,
    methods: Vec<MethodSet>,
    paths: PathTrie,
    rule_index: KeyIndex,
    group_lines: Vec<(u32, Box<[Matcher]>)>,
    /// Group lines have no paths: here they are all filed in one bucket, 0,
    /// to find every group of an identity at once...
    group_index: KeyIndex,
    /// ...and here in one bucket per group, to ask about one group when an
    /// identity is in more than a decision keeps (GroupSet).
    group_members: KeyIndex,
    group_count: usize,
    /// The name of each group, by its number (set by the builder).
    pub(crate) group_names: Vec<Box<str>>,
    /// With each requirement, where its `FILE:LINE` is in `origins`.
    key_requirements: Vec<(Vec<KeySpec>, Pos, u32)>,
    lifetime_requirements: Vec<(i64, Pos, u32)>,
    /// `FILE:LINE` and a NUL of every statement that can decide, written
    /// once here: a decision's file points into it, and a server that
    /// wants the whole text (Apache's CERT_AUTHZ_RULE) takes it as it is
    /// instead of formatting it per request.
    origins: String,
}

/// Appends `FILE:LINE` and a NUL to `origins`; returns where it starts.
fn add_origin(origins: &mut String, files: &[Box<str>], file: u32, line: u32) -> u32 {
    let at = origins.len() as u32;
    origins.push_str(&files[file as usize]);
    origins.push(':');
    // Written by hand: the formatter took more than the rest of a rule's
    // compile.
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut rest = line;
    loop {
        digits[n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        origins.push(char::from(*d));
    }
    origins.push('\0');
    at
}

impl Policy {
    pub(crate) fn new(
        files: Vec<Box<str>>,
        rules: Vec<Rule>,
        path_segs: &PathSegs,
        group_lines: Vec<(u32, Vec<Matcher>)>,
        group_count: usize,
        key_requirements: Vec<(Vec<KeySpec>, Pos)>,
        lifetime_requirements: Vec<(i64, Pos)>,
    ) -> Policy {
        let mut paths = PathTrie::new();
        let mut method_ids: HashMap<String, u32> = HashMap::default();
        let mut methods = Vec::new();
        let mut method_lists = Vec::new();
        // Sized once: grown by doubling, the copies cost more than the text.
        let longest = files.iter().map(|f| f.len()).max().unwrap_or(0);
        let mut origins = String::with_capacity(rules.len() * (longest + 12));
        let mut buckets = Vec::with_capacity(rules.len());
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            // Counted first: collected, the list would be grown and then shrunk.
            let segs = path_segs.of(&rule.path);
            let count = segs.iter().filter(|seg| matches!(seg, Seg::Template(_))).count();
            let mut templates = Vec::with_capacity(count);
            for (i, seg) in segs.iter().enumerate() {
                if let Seg::Template(attr) = seg {
                    templates.push((i as u32, *attr));
                }
            }
            buckets.push(paths.insert(path_segs, &rule.path));
            // Rules written one after another mostly share their methods.
            let last = compiled.last().map(|r: &CompiledRule| r.methods);
            let method_id = match last {
                Some(id) if same_methods(&method_lists[id as usize], &rule.methods) => id,
                _ => {
                    let name = match &rule.methods {
                        Methods::Any => "*".to_string(),
                        Methods::List(list) => list.join(","),
                    };
                    let next = methods.len() as u32;
                    let id = *method_ids.entry(name).or_insert(next);
                    if id == next {
                        methods.push(MethodSet::of(&rule.methods));
                        method_lists.push(rule.methods);
                    }
                    id
                }
            };
            compiled.push(CompiledRule {
                matchers: rule.matchers,
                templates: templates.into_boxed_slice(),
                methods: method_id,
                deny: rule.deny,
                file: rule.file,
                line: rule.line,
                origin: add_origin(&mut origins, &files, rule.file, rule.line),
            });
        }
        paths.finish();
        let key_requirements = key_requirements
            .into_iter()
            .map(|(specs, pos)| {
                let at = add_origin(&mut origins, &files, pos.file, pos.line);
                (specs, pos, at)
            })
            .collect();
        let lifetime_requirements = lifetime_requirements
            .into_iter()
            .map(|(max, pos)| {
                let at = add_origin(&mut origins, &files, pos.file, pos.line);
                (max, pos, at)
            })
            .collect();
        origins.shrink_to_fit();
        let entries: Vec<(u32, bool, &[Matcher])> = buckets
            .iter()
            .zip(&compiled)
            .map(|(bucket, rule)| (*bucket, rule.deny, &*rule.matchers))
            .collect();
        let rule_index = KeyIndex::build(paths.bucket_count(), &entries);
        drop(entries);

        let group_lines: Vec<(u32, Box<[Matcher]>)> =
            group_lines.into_iter().map(|(g, m)| (g, m.into_boxed_slice())).collect();
        let entries: Vec<(u32, bool, &[Matcher])> =
            group_lines.iter().map(|(_, m)| (0, false, &**m)).collect();
        let group_index = KeyIndex::build(1, &entries);
        let entries: Vec<(u32, bool, &[Matcher])> =
            group_lines.iter().map(|(g, m)| (*g, false, &**m)).collect();
        let group_members = KeyIndex::build(group_count, &entries);
        drop(entries);
        Policy {
            files,
            rules: compiled,
            methods,
            paths,
            rule_index,
            group_lines,
            group_index,
            group_members,
            group_count,
            group_names: Vec::new(),
            key_requirements,
            lifetime_requirements,
            origins,
        }
    }

    /// The number of allow and deny statements.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// (file, line) of a statement whose `FILE:LINE` starts at `at` in
    /// `origins`: the file is taken from there, so that `:LINE` and a NUL
    /// follow it in memory (the C ABI promises so).
    #[inline(always)]
    fn origin(&self, at: u32, file: u32, line: u32) -> Option<(&str, u32)> {
        let len = self.files[file as usize].len();
        Some((&self.origins[at as usize..][..len], line))
    }

    /// Calls `f` with the group of every group line the identity matches
    /// (a group once per matching line), until `f` returns false.
    fn each_group_line(&self, identity: &Identity, mut f: impl FnMut(u32) -> bool) {
        if self.group_count == 0 {
            return;
        }
        let mut going = true;
        self.group_index.probe(0, identity, &mut |line| {
            let (group, matchers) = &self.group_lines[line as usize];
            // Group lines hold no `group=` (the parser refuses it).
            if going && matchers.iter().all(|m| matcher_ok(m, identity, &|_| false)) {
                going = f(*group);
            }
            going
        });
    }

    /// Whether the identity matches some line of `group`.
    fn in_group(&self, identity: &Identity, group: u32) -> bool {
        let mut found = false;
        self.group_members.probe(group, identity, &mut |line| {
            let (_, matchers) = &self.group_lines[line as usize];
            found = found || matchers.iter().all(|m| matcher_ok(m, identity, &|_| false));
            !found
        });
        found
    }

    /// The names of the groups an identity belongs to, in the order the
    /// policy first names them.
    pub fn group_names_of(&self, identity: &Identity) -> Vec<&str> {
        self.groups_of(identity).into_iter().map(|g| &*self.group_names[g as usize]).collect()
    }

    /// The first group, from number `from` on, that the identity belongs
    /// to: its number and name.
    pub fn next_group_of(&self, identity: &Identity, from: usize) -> Option<(usize, &str)> {
        (from..self.group_count)
            .find(|&g| self.in_group(identity, g as u32))
            .map(|g| (g, &*self.group_names[g]))
    }

    /// The groups an identity belongs to, sorted.
    pub fn groups_of(&self, identity: &Identity) -> Vec<u32> {
        let mut groups = Vec::new();
        self.each_group_line(identity, |g| {
            groups.push(g);
            true
        });
        groups.sort_unstable();
        groups.dedup();
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
        self.decide_bytes(peer, method.as_bytes(), path.as_bytes(), user)
    }

    /// `decide_as` on the bytes a server passes, which need not be UTF-8:
    /// a method or path that is not cannot match any rule, and is refused
    /// with its own reason before the peer's.
    #[inline(always)]
    pub(crate) fn decide_bytes(
        &self,
        peer: Peer<'_>,
        method: &[u8],
        path: &[u8],
        user: Option<Attr>,
    ) -> Decision<'_> {
        let utf8 = |bytes| std::str::from_utf8(bytes).is_ok();
        let identity = match peer {
            Peer::Verified(identity) => identity,
            _ if !utf8(method) => return Decision::deny(Reason::BadMethod),
            _ if !utf8(path) => return Decision::deny(Reason::BadPath),
            Peer::None => return Decision::deny(Reason::NoCertificate),
            Peer::Unverified => return Decision::deny(Reason::Unverified),
            Peer::Unparsable => return Decision::deny(Reason::BadCertificate),
        };
        let Some(method) = RequestMethod::checked(method) else {
            let reason = if utf8(method) && !utf8(path) { Reason::BadPath } else { Reason::BadMethod };
            return Decision::deny(reason);
        };
        let Some(path) = checked_path(path) else {
            return Decision::deny(Reason::BadPath);
        };
        let rest = path.rest;
        for (specs, pos, at) in &self.key_requirements {
            if !specs.iter().any(|s| s.accepts(identity.key)) {
                return Decision {
                    allowed: false,
                    reason: Reason::KeyRejected,
                    origin: self.origin(*at, pos.file, pos.line),
                    user: None,
                };
            }
        }
        for (max, pos, at) in &self.lifetime_requirements {
            if identity.lifetime_secs > *max {
                return Decision {
                    allowed: false,
                    reason: Reason::LifetimeTooLong,
                    origin: self.origin(*at, pos.file, pos.line),
                    user: None,
                };
            }
        }
        let search = Search { policy: self, identity, method, groups: OnceCell::new() };
        let (mut first_allow, mut first_deny) = (NONE, NONE);
        // A chain holds rules of one kind in ascending order: once one
        // decides, or could no longer be the first, the chain is done.
        let mut consider = |id: u32| {
            let rule = &self.rules[id as usize];
            // Once a deny has matched, no allow can decide.
            let best = match (rule.deny, first_deny) {
                (true, _) => first_deny,
                (false, NONE) => first_allow,
                (false, _) => 0,
            };
            if id >= best {
                return false;
            }
            if search.matches(rule) {
                *(if rule.deny { &mut first_deny } else { &mut first_allow }) = id;
                return false;
            }
            true
        };
        self.paths.walk(path, identity, |bucket| {
            self.rule_index.probe(bucket, identity, &mut consider);
            let groups = self.rule_index.groups(bucket);
            if !groups.is_empty() {
                search.each_group(groups, |g| self.rule_index.probe_group(bucket, g, &mut consider));
            }
        });
        let (id, allowed, reason) = if first_deny != NONE {
            (first_deny, false, Reason::DenyRule)
        } else if first_allow != NONE {
            (first_allow, true, Reason::AllowRule)
        } else {
            return Decision::deny(Reason::NoMatchingRule);
        };
        let rule = &self.rules[id as usize];
        let origin = self.origin(rule.origin, rule.file, rule.line);
        let Some(attr) = user.filter(|_| allowed) else {
            return Decision { allowed, reason, origin, user: None };
        };
        match authorized_value(rule, attr, identity, rest) {
            Ok(user) => Decision { allowed, reason, origin, user },
            Err(()) => Decision { allowed: false, reason: Reason::UserAmbiguous, origin, user: None },
        }
    }
}

fn same_methods(a: &Methods, b: &Methods) -> bool {
    match (a, b) {
        (Methods::Any, Methods::Any) => true,
        (Methods::List(a), Methods::List(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    }
}

/// The groups of an identity that a decision has found, on the stack.  An
/// identity in more groups than fit is still decided exactly: the groups
/// past the first GROUP_CAPACITY are then looked up again when asked for.
const GROUP_CAPACITY: usize = 64;

#[derive(Debug)]
struct GroupSet {
    sorted: [u32; GROUP_CAPACITY],
    len: usize,
    overflow: bool,
}

impl Default for GroupSet {
    fn default() -> GroupSet {
        GroupSet { sorted: [0; GROUP_CAPACITY], len: 0, overflow: false }
    }
}

impl GroupSet {
    fn listed(&self) -> &[u32] {
        &self.sorted[..self.len]
    }

    fn insert(&mut self, group: u32) {
        let Err(at) = self.listed().binary_search(&group) else {
            return;
        };
        if self.len == GROUP_CAPACITY {
            self.overflow = true;
            return;
        }
        self.sorted.copy_within(at..self.len, at + 1);
        self.sorted[at] = group;
        self.len += 1;
    }
}

/// One decision's view of the identity: the groups are found on first use,
/// as most requests reach no rule that asks for one.
struct Search<'a> {
    policy: &'a Policy,
    identity: &'a Identity,
    method: RequestMethod<'a>,
    groups: OnceCell<GroupSet>,
}

impl Search<'_> {
    fn groups(&self) -> &GroupSet {
        self.groups.get_or_init(|| {
            let mut set = GroupSet::default();
            // Past the capacity the set is only marked: the rest is asked
            // about one group at a time.
            self.policy.each_group_line(self.identity, |g| {
                set.insert(g);
                !set.overflow
            });
            set
        })
    }

    fn in_group(&self, group: u32) -> bool {
        let set = self.groups();
        if set.listed().binary_search(&group).is_ok() {
            return true;
        }
        set.overflow && self.policy.in_group(self.identity, group)
    }

    /// Calls `f` with each group of the identity among `wanted`.
    fn each_group(&self, wanted: &[u32], mut f: impl FnMut(u32)) {
        let set = self.groups();
        // Whichever list is shorter (an overflowing set is long).
        if set.overflow || wanted.len() < set.len {
            wanted.iter().filter(|g| self.in_group(**g)).for_each(|g| f(*g));
        } else {
            set.listed().iter().filter(|g| wanted.binary_search(g).is_ok()).for_each(|g| f(*g));
        }
    }

    /// The full check of a candidate: methods and every matcher.  Its path
    /// matched already: the trie led to it.
    #[inline(always)]
    fn matches(&self, rule: &CompiledRule) -> bool {
        self.policy.methods[rule.methods as usize].allows(self.method)
            && rule.matchers.iter().all(|m| matcher_ok(m, self.identity, &|g| self.in_group(g)))
    }
}

/// Which value of `attr` the allow statement `rule` authorized: Ok(None)
/// when the identity has none, the only one when it has one, and with
/// several the single one that every matcher and template segment of the
/// rule on `attr` accepts.  Err when several remain, or when the rule does
/// not look at `attr` at all (it matched through `any`, a group, or another
/// attribute): then no value was authorized more than another.
fn authorized_value(
    rule: &CompiledRule,
    attr: Attr,
    identity: &Identity,
    rest: &[u8],
) -> Result<Option<usize>, ()> {
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
        for (segment, a) in rule.templates.iter() {
            if *a == attr {
                constrained = true;
                // The rule matched, so the path has this segment.
                accepted &= rest.split(|&b| b == b'/').nth(*segment as usize) == Some(value.as_bytes());
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

#[inline]
fn matcher_ok(matcher: &Matcher, identity: &Identity, in_group: &dyn Fn(u32) -> bool) -> bool {
    match matcher {
        Matcher::Any => true,
        Matcher::Group(g) => in_group(*g),
        Matcher::Attr(attr, value) => identity.match_values(*attr).iter().any(|v| value.matches(v)),
    }
}

/// A method the policy can name: a token of upper-case letters, digits
/// and token punctuation.  Policies write methods in upper case, and a
/// server hands `get` on as it came, which Django, Werkzeug and others
/// then serve as GET: a lower-case method is refused, not unmatched.
pub fn is_method(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|c| METHOD_BYTE[c as usize])
}

const METHOD_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_uppercase() || b.is_ascii_digit();
        c += 1;
    }
    let punctuation = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

/// The bytes `checked_path` looks at twice: separators, what is one to
/// some backend, and bytes outside ASCII (the path must then be UTF-8).
const PATH_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'/' as usize] = true;
    table[b'%' as usize] = true;
    table[0] = true;
    table[b'\\' as usize] = true;
    table[b';' as usize] = true;
    let mut c = 0x80;
    while c < 256 {
        table[c] = true;
        c += 1;
    }
    table
};

/// A request path as decisions walk it: without its leading `/` and one
/// trailing `/`, and where its `/` are, so that the walk does not look for
/// them again: bit i of `slashes` is set when `rest[i]` is `/`, for a path
/// of up to 64 bytes (`slashes` is None for a longer one).
#[derive(Clone, Copy)]
pub(crate) struct CheckedPath<'a> {
    pub rest: &'a [u8],
    pub slashes: Option<u64>,
}

/// Checks a request path and returns it without its leading `/` and one
/// trailing `/`.  An empty path, a path not starting with `/`, an empty,
/// `.` or `..` segment, a NUL, a backslash, a `;`, or an encoded slash or
/// backslash make the path ambiguous: None.
///
/// Each of these is a separator to some backend, not to the policy: Tomcat
/// and Spring drop `;params` from a segment (`/admin;x/users` is
/// `/admin/users` there), Windows-minded backends split at `\`, and a
/// server that leaves `%2F` or `%5C` encoded (Apache's AllowEncodedSlashes
/// NoDecode, ProxyPass nocanon) hands on a path a decoding backend splits
/// again.
pub fn normalized_path(path: &str) -> Option<&str> {
    let checked = checked_path(path.as_bytes())?;
    // The check keeps the bytes from 1 to the end or one before it.
    Some(&path[1..1 + checked.rest.len()])
}

/// `normalized_path` on the bytes a server passes, which must also be
/// UTF-8: one pass over them checks it all, as this runs on every request.
#[inline(always)]
pub(crate) fn checked_path(bytes: &[u8]) -> Option<CheckedPath<'_>> {
    if bytes.first() != Some(&b'/') {
        return None;
    }
    let mut end = bytes.len();
    if end > 1 && bytes[end - 1] == b'/' {
        if end == 2 {
            // "//": an empty segment, not the root
            return None;
        }
        end -= 1;
    }
    // Neither slash taken off can be part of what is refused: a `%2F` ends
    // in no `/`, and none starts with one.
    let rest = &bytes[1..end];
    let segment_ok = |segment: &[u8]| !matches!(segment, [] | [b'.'] | [b'.', b'.']);
    let mut start = 0;
    let mut slashes = 0u64;
    let mut ascii = true;
    for (i, &b) in rest.iter().enumerate() {
        if !PATH_SPECIAL[b as usize] {
            continue;
        }
        match b {
            b'/' => {
                if !segment_ok(&rest[start..i]) {
                    return None;
                }
                start = i + 1;
                if i < 64 {
                    slashes |= 1 << i;
                }
            }
            b'%' => {
                if let Some(&[c1, c2]) = rest.get(i + 1..i + 3) {
                    if matches!((c1, c2 | 0x20), (b'2', b'f') | (b'5', b'c')) {
                        return None;
                    }
                }
            }
            0x80.. => ascii = false,
            _ => return None,
        }
    }
    if !rest.is_empty() && !segment_ok(&rest[start..]) {
        return None;
    }
    // Neither slash taken off splits a UTF-8 sequence: checking the rest
    // checks the path.
    if !ascii && std::str::from_utf8(rest).is_err() {
        return None;
    }
    Some(CheckedPath { rest, slashes: (rest.len() <= 64).then_some(slashes) })
}

#[cfg(test)]
mod tests {
    use super::normalized_path;

    #[test]
    fn a_method_word_is_read_as_packed_makes_it() {
        let mut bytes = Vec::new();
        for len in 0..=10usize {
            for seed in 0..64u8 {
                bytes.clear();
                bytes.extend((0..len).map(|i| b'A' + (seed.wrapping_mul(7).wrapping_add(i as u8 * 13)) % 26));
                assert_eq!(super::exact_word(&bytes), super::packed(&bytes), "{bytes:?}");
            }
        }
        for known in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"] {
            let method = super::RequestMethod::checked(known.as_bytes()).map(|m| m.bit);
            assert!(method.is_some_and(|bit| bit != 0), "{known}");
        }
        assert_eq!(super::RequestMethod::checked(b"BREW").map(|m| m.bit), Some(0));
        assert!(super::RequestMethod::checked(b"get").is_none());
        assert!(super::RequestMethod::checked(b"").is_none());
    }

    /// The rules of `normalized_path` written plainly, one check at a time.
    fn plain(path: &str) -> Option<&str> {
        let rest = path.strip_prefix('/')?;
        let lower = path.to_ascii_lowercase();
        if path.contains(['\0', '\\', ';']) || lower.contains("%2f") || lower.contains("%5c") || rest == "/" {
            return None;
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if !rest.is_empty() && rest.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return None;
        }
        Some(rest)
    }

    #[test]
    fn the_one_pass_check_is_the_plain_one() {
        let alphabet = ['/', '.', '%', '2', '5', 'f', 'F', 'c', 'C', 'a', ';', '\\', '\0'];
        let mut path = String::new();
        // Every path of up to five of these characters.
        fn each(path: &mut String, alphabet: &[char], left: usize) {
            assert_eq!(normalized_path(path), plain(path), "{path:?}");
            if left > 0 {
                for c in alphabet {
                    path.push(*c);
                    each(path, alphabet, left - 1);
                    path.pop();
                }
            }
        }
        each(&mut path, &alphabet, 5);
    }
}
