//! Random policies, identities and requests, and a reference evaluator
//! that checks every statement in the order written, with none of the
//! core's indexes.  Shared by tests/differential.rs (a seeded generator)
//! and fuzz/fuzz_targets/decide_differential.rs (the fuzzer's bytes).
//!
//! The reference reads the identity only through `Identity::values` and
//! `match_values`, and knows the policy only as the statements it wrote,
//! so a difference is a fault of the compiled policy or of the reference,
//! never of both in the same way.

// `*src.pick(..)` looks like a deref clippy could leave to auto-deref, but
// `pick` is generic and the deref is what lets its type be inferred.
#![allow(clippy::explicit_auto_deref)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cert_authz::{Attr, Identity, Peer, Policy, PolicyBuilder, Reason};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType, SerialNumber, SignatureAlgorithm,
};

/// Where random choices come from.
pub trait Source {
    fn next_u64(&mut self) -> u64;

    /// A number below `n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// SplitMix64: small, seedable, and good enough to pick test cases.
pub struct Rng(pub u64);

impl Source for Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The fuzzer's bytes as choices; once they run out, a generator seeded
/// by them goes on (zeros would make every `chance` come true forever).
#[allow(dead_code)] // Used by the fuzz target, not by tests/differential.rs.
pub struct Bytes<'a> {
    data: &'a [u8],
    rest: Rng,
}

#[allow(dead_code)]
impl Bytes<'_> {
    pub fn new(data: &[u8]) -> Bytes<'_> {
        let seed = data.iter().fold(data.len() as u64, |h, b| h.rotate_left(8) ^ u64::from(*b));
        Bytes { data, rest: Rng(seed) }
    }
}

impl Source for Bytes<'_> {
    fn next_u64(&mut self) -> u64 {
        if self.data.is_empty() {
            return self.rest.next_u64();
        }
        let (head, rest) = self.data.split_at(self.data.len().min(2));
        self.data = rest;
        head.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
    }
}

// The vocabulary: few values, so that random rules and identities meet.
const CNS: &[&str] = &["alice", "bob", "ops", "a.b", "..", "*", "x y"];
const OUS: &[&str] = &["ops", "dev", "qa"];
const OS: &[&str] = &["Example Corp", "Other"];
const DNS: &[&str] =
    &["api.example.org", "www.example.org", "example.org", "a.b.example.org", "Mixed.Example.ORG"];
const URIS: &[&str] =
    &["spiffe://example.org/ns/prod/sa/a", "spiffe://example.org/ns/ops/sa/b", "https://alice/x", "alice"];
const EMAILS: &[&str] = &["alice@example.org", "bob@example.org", "ops"];
const IPS: &[&str] = &["10.0.0.1", "::1", "192.168.1.20"];
const TITLES: &[&str] = &["Dr", "Prof", "ops"];
/// Values of a subject attribute that has no usual name (1.3.6.1.4.1.99999.1).
const PRIVATE: &[&str] = &["x", "y", "alice"];
const UPNS: &[&str] = &["alice@corp.example", "bob@corp.example"];
/// Values of the otherName 1.2.3.4.
const OTHERS: &[&str] = &["o1", "o2"];
/// Extended key usages: (as written, the OID the identity shows).
const EKUS: &[(&str, &str)] = &[
    ("clientAuth", "1.3.6.1.5.5.7.3.2"),
    ("serverAuth", "1.3.6.1.5.5.7.3.1"),
    ("emailProtection", "1.3.6.1.5.5.7.3.4"),
    ("1.3.6.1.4.1.99999.9", "1.3.6.1.4.1.99999.9"),
];
const POLICIES: &[&str] = &["1.2.3.4", "1.2.3.5", "2.16.840.1.101.2.1.11.10"];
const SERIALS: &[&[u8]] = &[&[0x4f, 0x2a], &[0x01], &[0x7f, 0x00, 0x10]];
/// With segments past ASCII and long ones, so that paths often come near
/// 64 bytes, where the path check stops noting its slashes for the walk.
const SEGMENTS: &[&str] = &[
    "a",
    "b",
    "api",
    "alice",
    "ops",
    "x y",
    "*",
    "v1",
    "a.b",
    "api.example.org",
    "\u{e9}t\u{e9}",
    "\u{1f600}",
    "a-segment-of-thirty-one-bytes-x",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/// The attributes the generator writes matchers and templates for.
const ATTRS: &[&str] = &[
    "subject.CN",
    "subject.OU",
    "subject.O",
    "issuer.CN",
    "san.dns",
    "san.uri",
    "san.email",
    "san.ip",
    "serial",
    "fingerprint",
    "subject",
    "subject.title",
    "subject.1.3.6.1.4.1.99999.1",
    "san.upn",
    "san.other.1.2.3.4",
    "eku",
    "policy",
    "ca.spki",
    "issuer.spki",
];

/// One certificate of the pool, with the texts the generator may copy.
pub struct PoolIdentity {
    pub identity: Identity,
    pub description: String,
}

/// The CA every pool certificate is issued by.
fn ca() -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::CommonName, "Example Users CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params, key)
}

fn some<'a>(src: &mut impl Source, values: &[&'a str], max: usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..src.below(max + 1) {
        let v = *src.pick(values);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// `count` certificates with random names: one or two CNs, up to two OUs
/// (rcgen writes one value per type, so a second is written under its OID
/// as a custom type), and several SANs of each kind.
pub fn identity_pool(src: &mut impl Source, count: usize) -> Vec<PoolIdentity> {
    let (ca_params, ca_key) = ca();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    // Most identities come with the chain the server verified them with.
    let ca_der = ca_params.self_signed(&ca_key).unwrap().der().to_vec();
    let algs: [&'static SignatureAlgorithm; 3] =
        [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519];
    (0..count)
        .map(|_| {
            let alg = *src.pick(&algs);
            let key = KeyPair::generate_for(alg).unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            let mut dn = DistinguishedName::new();
            if src.chance(70) {
                dn.push(DnType::OrganizationName, *src.pick(OS));
            }
            for (i, ou) in some(src, OUS, 2).into_iter().enumerate() {
                let ty = if i == 0 {
                    DnType::OrganizationalUnitName
                } else {
                    DnType::CustomDnType(vec![2, 5, 4, 11])
                };
                dn.push(ty, DnValue::Utf8String(ou.into()));
            }
            for (i, cn) in some(src, CNS, 2).into_iter().enumerate() {
                let ty = if i == 0 { DnType::CommonName } else { DnType::CustomDnType(vec![2, 5, 4, 3]) };
                dn.push(ty, DnValue::Utf8String(cn.into()));
            }
            if src.chance(40) {
                dn.push(DnType::CustomDnType(vec![2, 5, 4, 12]), *src.pick(TITLES));
            }
            if src.chance(40) {
                dn.push(DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]), *src.pick(PRIVATE));
            }
            params.distinguished_name = dn;
            let mut sans = Vec::new();
            for upn in some(src, UPNS, 1) {
                sans.push(SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3], upn.into())));
            }
            for other in some(src, OTHERS, 2) {
                sans.push(SanType::OtherName((vec![1, 2, 3, 4], other.into())));
            }
            let ekus: Vec<&str> = some(src, &EKUS.iter().map(|(name, _)| *name).collect::<Vec<_>>(), 2);
            params.extended_key_usages = ekus
                .iter()
                .map(|name| match *name {
                    "clientAuth" => ExtendedKeyUsagePurpose::ClientAuth,
                    "serverAuth" => ExtendedKeyUsagePurpose::ServerAuth,
                    "emailProtection" => ExtendedKeyUsagePurpose::EmailProtection,
                    _ => ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 99999, 9]),
                })
                .collect();
            let policies = some(src, POLICIES, 2);
            if !policies.is_empty() {
                params.custom_extensions.push(certificate_policies(&policies));
            }
            for name in some(src, DNS, 3) {
                sans.push(SanType::DnsName(name.try_into().unwrap()));
            }
            for uri in some(src, URIS, 2) {
                sans.push(SanType::URI(uri.try_into().unwrap()));
            }
            for email in some(src, EMAILS, 2) {
                sans.push(SanType::Rfc822Name(email.try_into().unwrap()));
            }
            for ip in some(src, IPS, 2) {
                sans.push(SanType::IpAddress(ip.parse().unwrap()));
            }
            params.subject_alt_names = sans;
            params.serial_number = Some(SerialNumber::from(src.pick(SERIALS).to_vec()));
            let days = *src.pick(&[10i64, 60, 120]);
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now - time::Duration::hours(1) + time::Duration::days(days);
            let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
            let chain: &[&[u8]] = if src.chance(70) { &[&ca_der] } else { &[] };
            let identity = Identity::from_der_chain(&der, chain).expect("a pool certificate parses");
            let mut description = format!("key {}, lifetime {} s:", identity.key, identity.lifetime_secs);
            for attr in ATTRS {
                let values = identity.values(Attr::parse(attr).unwrap());
                if !values.is_empty() {
                    let _ = write!(description, " {attr}={values:?}");
                }
            }
            PoolIdentity { identity, description }
        })
        .collect()
}

/// A certificatePolicies extension naming `oids` (rcgen has no builder
/// for it): SEQUENCE OF SEQUENCE { OID }.
fn certificate_policies(oids: &[&str]) -> CustomExtension {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128);
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }
    let mut infos = Vec::new();
    for oid in oids {
        let arcs: Vec<u64> = oid.split('.').map(|a| a.parse().unwrap()).collect();
        let mut der = Vec::new();
        for arc in std::iter::once(arcs[0] * 40 + arcs[1]).chain(arcs[2..].iter().copied()) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            der.extend(groups.iter().rev());
        }
        infos.extend(tlv(0x30, &tlv(0x06, &der)));
    }
    CustomExtension::from_oid_content(&[2, 5, 29, 32], tlv(0x30, &infos))
}

/// How a value in a written matcher compares.
#[derive(Debug, Clone)]
enum Cmp {
    Exact(String),
    Prefix(String),
    DnsLabel(String),
    /// `san.ip=NET/LEN`: the network as written, and its length.
    IpNet(std::net::IpAddr, u8),
}

/// An address as a 128-bit number and its family's width.
fn ip_bits(ip: std::net::IpAddr) -> (u128, u8) {
    match ip {
        std::net::IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        std::net::IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// Whether `value` (as the identity writes an address) is in NET/LEN.
fn in_net(value: &str, net: std::net::IpAddr, len: u8) -> bool {
    let Ok(addr) = value.parse::<std::net::IpAddr>() else {
        return false;
    };
    let ((a, wa), (n, wn)) = (ip_bits(addr), ip_bits(net));
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
    wa == wn && (a & mask) == (n & mask)
}

#[derive(Debug, Clone)]
enum M {
    Any,
    Group(usize),
    Attr(&'static str, Cmp),
}

#[derive(Debug, Clone)]
enum PSeg {
    Literal(&'static str),
    Star,
    Template(&'static str),
}

#[derive(Debug, Clone)]
enum Stmt {
    Group {
        group: usize,
        matchers: Vec<M>,
    },
    /// `target`: the pool identity whose values the matchers mostly copy.
    Rule {
        deny: bool,
        methods: Option<Vec<&'static str>>,
        segs: Vec<PSeg>,
        rest: bool,
        matchers: Vec<M>,
        target: usize,
    },
    RequireKey(&'static str),
    RequireLifetime(i64),
}

/// A generated policy: its statements in the order the core reads them
/// (includes expanded), each with the file and line it is written at.
pub struct Model {
    stmts: Vec<(Stmt, usize, u32)>,
    groups: usize,
    /// (file name as the core names it, text).
    files: Vec<(String, String)>,
}

/// A matcher value quoted as the policy language needs it: `*` and `"`
/// and `\` escaped, quotes around spaces.
fn quote(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if matches!(c, '*' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.contains(' ') {
        format!("\"{out}\"")
    } else {
        out
    }
}

fn random_case(src: &mut impl Source, text: &str) -> String {
    text.chars().map(|c| if src.chance(30) { c.to_ascii_uppercase() } else { c }).collect()
}

/// A value of `attr` that some pool identity has (most of the time).
fn pool_value(src: &mut impl Source, pool: &[PoolIdentity], attr: &'static str, target: usize) -> String {
    let a = Attr::parse(attr).unwrap();
    let from = if src.chance(85) { target } else { src.below(pool.len()) };
    let values = pool[from].identity.values(a);
    // An empty value (a certificate with an empty subject) cannot be written.
    if values.is_empty() || values.iter().any(|v| v.is_empty()) || src.chance(10) {
        let vocabulary: &[&str] = match attr {
            "subject.CN" | "issuer.CN" => CNS,
            "subject.OU" => OUS,
            "subject.O" => OS,
            "san.dns" => DNS,
            "san.uri" => URIS,
            "san.email" => EMAILS,
            "san.ip" => IPS,
            "subject.title" => TITLES,
            "subject.1.3.6.1.4.1.99999.1" => PRIVATE,
            "san.upn" => UPNS,
            "san.other.1.2.3.4" => OTHERS,
            "eku" => &["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.8"],
            "policy" => POLICIES,
            "serial" => &["4F2A", "01", "99"],
            "fingerprint" | "ca.spki" | "issuer.spki" => &["AB"],
            _ => &["CN=nobody"],
        };
        let v = src.pick(vocabulary).to_string();
        return if matches!(attr, "fingerprint" | "ca.spki" | "issuer.spki") { v.repeat(32) } else { v };
    }
    values[src.below(values.len())].to_string()
}

fn random_matcher(
    src: &mut impl Source,
    pool: &[PoolIdentity],
    target: usize,
    groups: usize,
    in_group: bool,
) -> M {
    let roll = src.below(100);
    if roll < 12 {
        return M::Any;
    }
    if roll < 24 && !in_group && groups > 0 {
        return M::Group(src.below(groups));
    }
    let attr = *src.pick(ATTRS);
    let value = pool_value(src, pool, attr, target);
    let kind = src.below(100);
    let prefix_ok =
        !matches!(attr, "serial" | "fingerprint" | "subject" | "eku" | "policy" | "ca.spki" | "issuer.spki");
    if attr == "san.ip" && kind < 40 {
        // A network around the value, of a random length (host bits zero).
        if let Ok(ip) = value.parse::<std::net::IpAddr>() {
            let (bits, width) = ip_bits(ip.to_canonical());
            let len = src.below(usize::from(width) + 1) as u8;
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            let net = match ip.to_canonical() {
                std::net::IpAddr::V4(_) => {
                    std::net::IpAddr::from(std::net::Ipv4Addr::from(((bits & mask) >> 96) as u32))
                }
                std::net::IpAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::from(bits & mask)),
            };
            return M::Attr(attr, Cmp::IpNet(net, len));
        }
    }
    if attr == "san.dns" && kind < 25 {
        // `*.` and what follows the first label of a real name, or of none.
        let suffix = match value.split_once('.') {
            Some((_, rest)) if !rest.is_empty() && src.chance(80) => rest.to_string(),
            _ => src.pick(&["example.org", "org", "b.example.org"]).to_string(),
        };
        return M::Attr(attr, Cmp::DnsLabel(random_case(src, &suffix)));
    }
    if prefix_ok && kind < 50 {
        let cut = src.below(value.chars().count() + 1);
        let prefix: String = value.chars().take(cut).collect();
        return M::Attr(attr, Cmp::Prefix(prefix));
    }
    let value = match attr {
        "san.dns" => random_case(src, &value),
        // An extended key usage by its name, when it has one.
        "eku" if src.chance(60) => {
            EKUS.iter().find(|(_, oid)| *oid == value).map_or(value, |(name, _)| name.to_string())
        }
        "serial" | "fingerprint" | "ca.spki" if src.chance(50) => {
            // Colons and lower case are the same value.
            let bytes: Vec<String> =
                value.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_lowercase()).collect();
            bytes.join(":")
        }
        _ => value,
    };
    M::Attr(attr, Cmp::Exact(value))
}

fn matcher_text(m: &M) -> String {
    match m {
        M::Any => "any".into(),
        M::Group(g) => format!("group=g{g}"),
        M::Attr(attr, Cmp::Exact(v)) => {
            if *attr == "subject" {
                // An RFC 4514 text: `\`, `"` and `*` are escaped for the
                // policy's lexer, which hands the name parser the text as it was.
                format!("{attr}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('*', "\\*"))
            } else {
                format!("{attr}={}", quote(v))
            }
        }
        M::Attr(attr, Cmp::Prefix(p)) => {
            let quoted = quote(p);
            match quoted.strip_suffix('"') {
                Some(inside) => format!("{attr}={inside}*\""),
                None => format!("{attr}={quoted}*"),
            }
        }
        M::Attr(attr, Cmp::DnsLabel(s)) => format!("{attr}=*.{s}"),
        M::Attr(attr, Cmp::IpNet(net, len)) => format!("{attr}={net}/{len}"),
    }
}

fn stmt_text(stmt: &Stmt) -> String {
    match stmt {
        Stmt::Group { group, matchers } => {
            let ms: Vec<String> = matchers.iter().map(matcher_text).collect();
            format!("group g{group} {}", ms.join(" "))
        }
        Stmt::Rule { deny, methods, segs, rest, matchers, .. } => {
            let methods = match methods {
                None => "*".to_string(),
                Some(list) => list.join(","),
            };
            let mut path = String::new();
            for seg in segs {
                path.push('/');
                match seg {
                    PSeg::Literal(text) => path.push_str(&text.replace('*', "\\*")),
                    PSeg::Star => path.push('*'),
                    PSeg::Template(attr) => {
                        let _ = write!(path, "{{{attr}}}");
                    }
                }
            }
            if *rest {
                path.push_str("/**");
            }
            if path.is_empty() {
                path.push('/');
            }
            let path = if path.contains(' ') { format!("\"{path}\"") } else { path };
            let ms: Vec<String> = matchers.iter().map(matcher_text).collect();
            format!("{} {methods} {path} {}", if *deny { "deny" } else { "allow" }, ms.join(" "))
        }
        Stmt::RequireKey(spec) => format!("require key {spec}"),
        Stmt::RequireLifetime(days) => format!("require lifetime<={days}d"),
    }
}

/// A random policy over the pool's values.  With `dir`, it is written as a
/// main file that includes others (some nested); without, as one text.
pub fn random_policy(src: &mut impl Source, pool: &[PoolIdentity], dir: Option<&Path>) -> Model {
    // Now and then more groups than a decision keeps on the stack (64),
    // most of which every identity is in.
    let many_groups = src.chance(5);
    let groups = if many_groups { 60 + src.below(30) } else { src.below(4) };
    let rules = 1 + if src.chance(10) { src.below(300) } else { src.below(12) };
    let mut stmts = Vec::new();
    for group in 0..groups {
        for _ in 0..1 + src.below(3) {
            let target = src.below(pool.len());
            let matchers = if many_groups && src.chance(80) {
                vec![M::Any]
            } else {
                (0..1 + src.below(2)).map(|_| random_matcher(src, pool, target, groups, true)).collect()
            };
            stmts.push(Stmt::Group { group, matchers });
        }
    }
    for _ in 0..rules {
        let methods = if src.chance(35) {
            None
        } else {
            let mut list: Vec<&str> = Vec::new();
            for _ in 0..1 + src.below(3) {
                let m = *src.pick(METHODS);
                if !list.contains(&m) {
                    list.push(m);
                }
            }
            Some(list)
        };
        let segs = (0..src.below(4))
            .map(|_| match src.below(10) {
                0..=5 => PSeg::Literal(*src.pick(SEGMENTS)),
                6 | 7 => PSeg::Star,
                _ => PSeg::Template(*src.pick(&[
                    "subject.CN",
                    "subject.OU",
                    "san.dns",
                    "san.email",
                    "san.uri",
                    "san.upn",
                    "subject.1.3.6.1.4.1.99999.1",
                ])),
            })
            .collect();
        let target = src.below(pool.len());
        let count = if src.chance(60) { 1 } else { 2 + src.below(2) };
        let matchers = (0..count).map(|_| random_matcher(src, pool, target, groups, false)).collect();
        stmts.push(Stmt::Rule {
            deny: src.chance(25),
            methods,
            segs,
            rest: src.chance(50),
            matchers,
            target,
        });
    }
    if src.chance(8) {
        stmts.push(Stmt::RequireKey(*src.pick(&[
            "ec>=384 ed25519",
            "ec>=256",
            "ed25519",
            "rsa>=2048 ec>=256",
        ])));
    }
    if src.chance(8) {
        stmts.push(Stmt::RequireLifetime(*src.pick(&[30i64, 90, 200])));
    }
    // The order of statements is free: groups may come after their use.
    for i in (1..stmts.len()).rev() {
        let j = src.below(i + 1);
        stmts.swap(i, j);
    }
    let mut model = Model { stmts: Vec::new(), groups, files: Vec::new() };
    match dir {
        None => {
            let name = "inline.policy".to_string();
            let mut text = String::new();
            let mut line = 1;
            for stmt in stmts {
                line += blank_lines(src, &mut text);
                let _ = writeln!(text, "{}", stmt_text(&stmt));
                model.stmts.push((stmt, 0, line));
                line += 1;
            }
            model.files.push((name, text));
        }
        Some(dir) => {
            let mut counter = 0;
            write_file(src, dir, &dir.join("main.policy"), stmts, &mut model, &mut counter, 0);
        }
    }
    model
}

/// Comments or blank lines before a statement; how many lines they take.
fn blank_lines(src: &mut impl Source, text: &mut String) -> u32 {
    let mut lines = 0;
    // Bounded: the fuzzer's source repeats itself once its bytes run out.
    while lines < 3 && src.chance(15) {
        text.push_str(if src.chance(50) { "# a comment\n" } else { "\n" });
        lines += 1;
    }
    lines
}

/// Writes `stmts` to `path`, moving some runs of them into included files.
fn write_file(
    src: &mut impl Source,
    dir: &Path,
    path: &PathBuf,
    stmts: Vec<Stmt>,
    model: &mut Model,
    counter: &mut usize,
    depth: usize,
) {
    let name = path.to_string_lossy().into_owned();
    let file = model.files.len();
    model.files.push((name, String::new()));
    let mut text = String::new();
    let mut line = 1;
    let mut rest = stmts.into_iter().peekable();
    while rest.peek().is_some() {
        line += blank_lines(src, &mut text);
        if depth < 3 && src.chance(15) {
            let take = 1 + src.below(4);
            let chunk: Vec<Stmt> = rest.by_ref().take(take).collect();
            *counter += 1;
            let included = format!("f{counter}.policy");
            let _ = writeln!(text, "include {included}");
            write_file(src, dir, &dir.join(&included), chunk, model, counter, depth + 1);
        } else {
            let stmt = rest.next().unwrap();
            let _ = writeln!(text, "{}", stmt_text(&stmt));
            model.stmts.push((stmt, file, line));
        }
        line += 1;
    }
    std::fs::write(path, &text).unwrap();
    model.files[file].1 = text;
}

impl Model {
    pub fn text(&self) -> String {
        self.files.iter().map(|(name, text)| format!("== {name}\n{text}")).collect()
    }

    /// The policy as the core compiles it.
    pub fn compile(&self) -> Result<Policy, String> {
        let mut builder = PolicyBuilder::new();
        match self.files.first() {
            Some((name, text)) if name == "inline.policy" => builder.add_statement(text, name, 1),
            Some((name, _)) => builder.add_file(Path::new(name)),
            None => return Err("no files".into()),
        }
        builder.build().map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
    }
}

/// The outcome the reference finds, in the core's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub reason: Reason,
    pub origin: Option<(String, u32)>,
    pub user: Option<usize>,
}

fn value_matches(attr: &str, cmp: &Cmp, identity: &Identity) -> bool {
    let a = Attr::parse(attr).unwrap();
    let values = identity.values(a);
    let norm = |v: &str| -> String {
        match attr {
            "san.dns" => v.to_ascii_lowercase(),
            "serial" => {
                let digits: String = v.chars().filter(|c| *c != ':').collect::<String>().to_ascii_uppercase();
                let trimmed = digits.trim_start_matches('0');
                let padded = if trimmed.len() % 2 == 1 { format!("0{trimmed}") } else { trimmed.to_string() };
                if padded.is_empty() {
                    "00".into()
                } else {
                    padded
                }
            }
            "fingerprint" | "ca.spki" | "issuer.spki" => {
                v.chars().filter(|c| *c != ':').collect::<String>().to_ascii_uppercase()
            }
            "san.ip" => {
                v.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical().to_string()).unwrap_or_default()
            }
            "eku" => EKUS.iter().find(|(name, _)| *name == v).map_or(v, |(_, oid)| oid).to_string(),
            _ => v.to_string(),
        }
    };
    values.iter().any(|v| match cmp {
        Cmp::Exact(want) => **v == *norm(want),
        Cmp::Prefix(p) => v.starts_with(&*if attr == "san.dns" { p.to_ascii_lowercase() } else { p.clone() }),
        Cmp::DnsLabel(suffix) => match v.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix.to_ascii_lowercase(),
            None => false,
        },
        Cmp::IpNet(net, len) => in_net(v, *net, *len),
    })
}

/// A value of one index among the attribute's values, or of each: used to
/// find which value a rule singles out for the user.
fn one_value_matches(attr: &str, cmp: &Cmp, value: &str) -> bool {
    match cmp {
        Cmp::Exact(want) => value == if attr == "san.dns" { want.to_ascii_lowercase() } else { want.clone() },
        Cmp::Prefix(p) => {
            value.starts_with(&*if attr == "san.dns" { p.to_ascii_lowercase() } else { p.clone() })
        }
        Cmp::DnsLabel(suffix) => match value.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix.to_ascii_lowercase(),
            None => false,
        },
        Cmp::IpNet(net, len) => in_net(value, *net, *len),
    }
}

fn template_ok(value: &str) -> bool {
    !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '\0'])
}

/// The request path's segments, as SPEC §3 and invariant 4 read it.
fn segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let lower = path.to_ascii_lowercase();
    if path.contains(['\0', '\\', ';']) || lower.contains("%2f") || lower.contains("%5c") || rest == "/" {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let segs: Vec<&str> = rest.split('/').collect();
    segs.iter().all(|s| !s.is_empty() && *s != "." && *s != "..").then_some(segs)
}

fn path_matches(segs: &[PSeg], rest: bool, path: &[&str], identity: &Identity) -> bool {
    if path.len() < segs.len() || (!rest && path.len() != segs.len()) {
        return false;
    }
    segs.iter().zip(path).all(|(seg, part)| match seg {
        PSeg::Literal(text) => text == part,
        PSeg::Star => true,
        PSeg::Template(attr) => {
            identity.values(Attr::parse(attr).unwrap()).iter().any(|v| template_ok(v) && **v == **part)
        }
    })
}

fn key_ok(spec: &str, key: cert_authz::KeyKind) -> bool {
    use cert_authz::KeyKind;
    spec.split(' ').any(|s| match (s, key) {
        ("ed25519", KeyKind::Ed25519) => true,
        (s, KeyKind::Ec(bits)) if s.starts_with("ec>=") => bits >= s[4..].parse().unwrap(),
        (s, KeyKind::Rsa(bits)) if s.starts_with("rsa>=") => bits >= s[5..].parse().unwrap(),
        _ => false,
    })
}

impl Model {
    fn origin(&self, file: usize, line: u32) -> Option<(String, u32)> {
        Some((self.files[file].0.clone(), line))
    }

    /// Every statement, in order.
    pub fn reference(&self, identity: &Identity, method: &str, path: &str, user: Option<&str>) -> Outcome {
        let refuse = |reason| Outcome { allowed: false, reason, origin: None, user: None };
        if method.is_empty()
            || !method
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c))
        {
            return refuse(Reason::BadMethod);
        }
        let Some(path) = segments(path) else {
            return refuse(Reason::BadPath);
        };
        // Key requirements are checked before lifetimes, each in order.
        for (stmt, file, line) in &self.stmts {
            if let Stmt::RequireKey(spec) = stmt {
                if !key_ok(spec, identity.key) {
                    return Outcome { origin: self.origin(*file, *line), ..refuse(Reason::KeyRejected) };
                }
            }
        }
        for (stmt, file, line) in &self.stmts {
            if let Stmt::RequireLifetime(days) = stmt {
                if identity.lifetime_secs > days * 86_400 {
                    return Outcome { origin: self.origin(*file, *line), ..refuse(Reason::LifetimeTooLong) };
                }
            }
        }
        let member: Vec<bool> = (0..self.groups)
            .map(|g| {
                self.stmts.iter().any(|(stmt, _, _)| match stmt {
                    Stmt::Group { group, matchers } => {
                        *group == g && matchers.iter().all(|m| self.matcher_ok(m, identity, &[]))
                    }
                    _ => false,
                })
            })
            .collect();
        let mut first = [None, None];
        for (i, (stmt, _, _)) in self.stmts.iter().enumerate() {
            let Stmt::Rule { deny, methods, segs, rest, matchers, .. } = stmt else {
                continue;
            };
            let method_ok = match methods {
                None => true,
                Some(list) => list.contains(&method) || (method == "HEAD" && list.contains(&"GET")),
            };
            if method_ok
                && path_matches(segs, *rest, &path, identity)
                && matchers.iter().all(|m| self.matcher_ok(m, identity, &member))
            {
                let slot = &mut first[usize::from(*deny)];
                if slot.is_none() {
                    *slot = Some(i);
                }
            }
        }
        let (i, allowed, reason) = match first {
            [_, Some(deny)] => (deny, false, Reason::DenyRule),
            [Some(allow), None] => (allow, true, Reason::AllowRule),
            [None, None] => return refuse(Reason::NoMatchingRule),
        };
        let (stmt, file, line) = &self.stmts[i];
        let origin = self.origin(*file, *line);
        let Some(user) = user.filter(|_| allowed) else {
            return Outcome { allowed, reason, origin, user: None };
        };
        let Stmt::Rule { segs, matchers, .. } = stmt else { unreachable!() };
        let values = identity.match_values(Attr::parse(user).unwrap());
        let chosen = match values.len() {
            0 => Ok(None),
            1 => Ok(Some(0)),
            _ => {
                let on_user: Vec<&Cmp> = matchers
                    .iter()
                    .filter_map(|m| match m {
                        M::Attr(a, cmp) if *a == user => Some(cmp),
                        _ => None,
                    })
                    .collect();
                let templates: Vec<usize> = segs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| matches!(s, PSeg::Template(a) if *a == user).then_some(i))
                    .collect();
                let accepted: Vec<usize> = (0..values.len())
                    .filter(|&v| {
                        on_user.iter().all(|cmp| one_value_matches(user, cmp, &values[v]))
                            && templates.iter().all(|&s| *values[v] == *path[s])
                    })
                    .collect();
                match accepted[..] {
                    [one] if !on_user.is_empty() || !templates.is_empty() => Ok(Some(one)),
                    _ => Err(()),
                }
            }
        };
        match chosen {
            Ok(user) => Outcome { allowed, reason, origin, user },
            Err(()) => Outcome { allowed: false, reason: Reason::UserAmbiguous, origin, user: None },
        }
    }

    fn matcher_ok(&self, m: &M, identity: &Identity, member: &[bool]) -> bool {
        match m {
            M::Any => true,
            M::Group(g) => member[*g],
            M::Attr("subject", Cmp::Exact(text)) => {
                identity.values(Attr::Subject).iter().any(|v| **v == **text)
            }
            M::Attr(attr, cmp) => value_matches(attr, cmp, identity),
        }
    }
}

/// A random request: mostly valid paths made of the vocabulary and of the
/// identity's own values, sometimes ambiguous ones; mostly valid methods.
/// A random request: with `rule`, a path that follows its pattern; else,
/// or when the pattern is `/`, one of the vocabulary and of the identity's
/// own values.  Sometimes ambiguous paths and invalid methods.
fn random_request(
    src: &mut impl Source,
    rule: Option<(&[PSeg], bool)>,
    identity: &Identity,
) -> (String, String) {
    let method = if src.chance(3) {
        src.pick(&["", "GE T", "get\r", "get", "Post"]).to_string()
    } else {
        src.pick(METHODS).to_string()
    };
    let mut path = String::new();
    if let Some((segs, rest)) = rule {
        for seg in segs {
            path.push('/');
            match seg {
                PSeg::Literal(text) => path.push_str(text),
                PSeg::Star => path.push_str(*src.pick(SEGMENTS)),
                PSeg::Template(attr) => {
                    let values = identity.values(Attr::parse(attr).unwrap());
                    match values.get(src.below(values.len() + 1)) {
                        Some(v) => path.push_str(v),
                        None => path.push_str(*src.pick(SEGMENTS)),
                    }
                }
            }
        }
        if rest {
            // Sometimes deeper than the walk keeps segment starts for.
            let more = if src.chance(10) { 12 } else { 3 };
            for _ in 0..src.below(more) {
                path.push('/');
                path.push_str(*src.pick(SEGMENTS));
            }
        }
    }
    for _ in 0..if path.is_empty() { src.below(6) } else { 0 } {
        path.push('/');
        if src.chance(25) {
            let attr = Attr::parse(*src.pick(&[
                "subject.CN",
                "subject.OU",
                "san.dns",
                "san.email",
                "san.uri",
                "san.upn",
            ]))
            .unwrap();
            let values = identity.values(attr);
            if !values.is_empty() {
                path.push_str(&values[src.below(values.len())]);
                continue;
            }
        }
        path.push_str(*src.pick(SEGMENTS));
    }
    if path.is_empty() || src.chance(15) {
        path.push('/');
    }
    if src.chance(4) {
        let odd = *src.pick(&["//", "/./", "/../", "%2F", "%2f", "%5C", "%5c", "\\", ";", ";x=1", "\0"]);
        let at = src.below(path.len() + 1);
        if path.is_char_boundary(at) {
            path.insert_str(at, odd);
        }
    }
    if src.chance(1) {
        path = path.trim_start_matches('/').to_string();
    }
    (method, path)
}

/// One policy and `requests` requests against it; Err describes the first
/// difference between the core and the reference.
pub fn run_case(
    src: &mut impl Source,
    pool: &[PoolIdentity],
    dir: Option<&Path>,
    requests: usize,
) -> Result<(), String> {
    let model = random_policy(src, pool, dir);
    let policy = model
        .compile()
        .map_err(|e| format!("the generated policy does not compile:\n{e}\n{}", model.text()))?;
    let rules: Vec<(&[PSeg], bool, usize)> = model
        .stmts
        .iter()
        .filter_map(|(stmt, _, _)| match stmt {
            Stmt::Rule { segs, rest, target, .. } => Some((&segs[..], *rest, *target)),
            _ => None,
        })
        .collect();
    let users = [
        None,
        Some("subject.CN"),
        Some("subject.OU"),
        Some("san.dns"),
        Some("san.uri"),
        Some("san.email"),
        Some("san.other.1.2.3.4"),
    ];
    for _ in 0..requests {
        // Most requests follow a rule, as the identity the rule was written for.
        let rule = match rules.len() {
            0 => None,
            n if src.chance(70) => Some(rules[src.below(n)]),
            _ => None,
        };
        let who = match rule {
            Some((_, _, target)) if src.chance(80) => target,
            _ => src.below(pool.len()),
        };
        let identity = &pool[who].identity;
        let (method, path) = random_request(src, rule.map(|(segs, rest, _)| (segs, rest)), identity);
        let user = *src.pick(&users);
        let want = model.reference(identity, &method, &path, user);
        let d =
            policy.decide_as(Peer::Verified(identity), &method, &path, user.map(|u| Attr::parse(u).unwrap()));
        let got = Outcome {
            allowed: d.allowed,
            reason: d.reason,
            origin: d.origin.map(|(f, l)| (f.to_string(), l)),
            user: d.user,
        };
        if got != want {
            return Err(format!(
                "{method} {path:?} as identity {who} ({}), user {user:?}:\n  core:      {got:?}\n  reference: {want:?}\npolicy:\n{}",
                pool[who].description,
                model.text()
            ));
        }
    }
    Ok(())
}
