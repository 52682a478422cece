//! The identity of a certificate: every value a policy can match, taken
//! from x509-parser's parsed structures.  All x509-parser calls live here.
//!
//! A certificate is refused as a whole (it authorizes nothing) when it has
//! bytes after its DER, a name or SAN string that cannot be decoded, or a
//! control character (NUL included) in any such string: a value is never
//! truncated or guessed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use once_cell::sync::OnceCell;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::der_parser::asn1_rs::{Any, Class, Oid as DerOid, Tag};
use x509_parser::extensions::{GeneralName, SubjectAlternativeName};
use x509_parser::nom::Parser;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::attr::{dotted, Attr, NameField, ATTR_COUNT, OID_UPN};
use crate::dn::{write_canonical_key, write_rfc4514};

/// One value as it is read: its attribute slot, for the attributes named
/// by OID the OID's DER content bytes, and the value.
type Read = (usize, Option<Box<[u8]>>, Box<str>);

/// The values of one OID: (slot, OID content bytes, start, end in `values`).
type OidRun = (u16, Box<[u8]>, u16, u16);

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError(pub String);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertError {}

fn refuse<T>(why: impl Into<String>) -> Result<T, CertError> {
    Err(CertError(why.into()))
}

/// A certificate as a server presented it: read into an identity, or
/// refused with the reason why.  Either way it keeps the DER it came from,
/// so that a server's per-connection cache can tell whether a certificate
/// it sees again is the same one.
// The refused variant is the small one and the rare one; both live behind
// the handle's Arc, so boxing the identity would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Presented {
    Accepted(Identity),
    Refused { der: Box<[u8]>, why: CertError },
}

impl Presented {
    pub fn from_der(der: &[u8]) -> Presented {
        Presented::from_der_chain(der, &[])
    }

    /// A leaf with the chain the server verified it with (see
    /// `Identity::from_der_chain`).
    pub fn from_der_chain(der: &[u8], chain: &[&[u8]]) -> Presented {
        match Identity::from_der_chain(der, chain) {
            Ok(identity) => Presented::Accepted(identity),
            Err(why) => Presented::Refused { der: der.into(), why },
        }
    }

    /// The first CERTIFICATE block of a PEM text.  A PEM that does not
    /// decode keeps no DER: it is never the same as another certificate.
    pub fn from_pem(pem: &[u8]) -> Presented {
        match pem_to_der(pem) {
            Ok(der) => match Identity::from_der_vec(der, &[]) {
                Ok(identity) => Presented::Accepted(identity),
                Err((why, der)) => Presented::Refused { der: der.into(), why },
            },
            Err(why) => Presented::Refused { der: Box::default(), why },
        }
    }

    /// PEM or DER, whichever the bytes are.
    pub fn from_pem_or_der(bytes: &[u8]) -> Presented {
        if is_pem(bytes) {
            Presented::from_pem(bytes)
        } else {
            Presented::from_der(bytes)
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Presented::Accepted(identity) => Some(identity),
            Presented::Refused { .. } => None,
        }
    }

    /// Why the certificate was refused; None when it was accepted.
    pub fn refusal(&self) -> Option<&CertError> {
        match self {
            Presented::Accepted(_) => None,
            Presented::Refused { why, .. } => Some(why),
        }
    }

    fn der(&self) -> &[u8] {
        match self {
            Presented::Accepted(identity) => &identity.der,
            Presented::Refused { der, .. } => der,
        }
    }

    /// Whether `bytes` (PEM or DER) are this certificate.
    pub fn is_same(&self, bytes: &[u8]) -> bool {
        let der = self.der();
        if der.is_empty() {
            return false;
        }
        // The very bytes first: a DER certificate may hold `-----BEGIN`
        // in a name, which would make it look like PEM.
        if *der == *bytes {
            return true;
        }
        is_pem(bytes) && pem_to_der(bytes).is_ok_and(|other| *der == *other)
    }
}

/// PEM unless the bytes are one DER SEQUENCE, end to end: a certificate's
/// names are the sender's to choose, and one holding a PEM block of another
/// certificate must still be read as itself.
fn is_pem(bytes: &[u8]) -> bool {
    !is_one_der_sequence(bytes) && bytes.windows(10).any(|w| w == b"-----BEGIN")
}

fn is_one_der_sequence(bytes: &[u8]) -> bool {
    let (len, header) = match bytes {
        [0x30, n, ..] if *n < 0x80 => (*n as usize, 2),
        [0x30, n @ 0x81..=0x84, ..] => {
            let count = (*n & 0x7f) as usize;
            match bytes.get(2..2 + count) {
                Some(len) => (len.iter().fold(0usize, |acc, b| acc << 8 | *b as usize), 2 + count),
                None => return false,
            }
        }
        _ => return false,
    };
    bytes.len().checked_sub(header) == Some(len)
}

/// The public key of a certificate, as `require key` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa(u32),
    Ec(u32),
    Ed25519,
    Ed448,
    Other,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "rsa {bits}"),
            KeyKind::Ec(bits) => write!(f, "ec {bits}"),
            KeyKind::Ed25519 => f.write_str("ed25519"),
            KeyKind::Ed448 => f.write_str("ed448"),
            KeyKind::Other => f.write_str("other"),
        }
    }
}

/// Everything a policy can ask of one certificate.
///
/// Name fields, SANs and the serial are read when the certificate is
/// parsed.  The values few requests use (whole-DN texts and keys, the
/// SHA-256 hashes of the leaf and of its chain, the RFC 9440 items) are
/// derived on first use, once each (thread-safe: an identity is shared),
/// from data kept here: a connection whose requests only decide pays for
/// none of them.
#[derive(Debug)]
pub struct Identity {
    /// The values as displayed and matched, grouped by Attr::index: those
    /// of attribute i are values[ends[i-1]..ends[i]].  Empty for the derived
    /// attributes, which live in the cells below.
    values: Box<[Box<str>]>,
    ends: [u16; ATTR_COUNT],
    /// The values of attributes named by OID (subject and issuer types
    /// without a usual name, otherName SANs) share their kind's slot,
    /// sorted by OID: (slot, OID content bytes, start, end) of each OID's
    /// run within `values`.  A certificate has few, so they are scanned.
    oid_runs: Box<[OidRun]>,
    /// Subject then issuer as the certificate lists their values (the
    /// issuer's from `issuer_from`), each pointing into `values`: enough to
    /// write the whole-DN texts and keys when they are first asked for.
    names: Vec<NameEntry>,
    issuer_from: usize,
    der: Vec<u8>,
    /// Where the SubjectPublicKeyInfo lies within `der`.
    spki: std::ops::Range<usize>,
    subject: OnceCell<SubjectText>,
    issuer: OnceCell<[Box<str>; 1]>,
    keys: OnceCell<[[Box<str>; 1]; 2]>,
    hashes: OnceCell<[[Box<str>; 1]; 2]>,
    /// The CA certificates above the leaf in the verified chain.
    chain: Chain,
    /// The RFC 9440 values of leaf and chain, made on first use.
    rfc9440: OnceCell<(Box<str>, Box<str>)>,
    pub key: KeyKind,
    /// notAfter − notBefore, in seconds.
    pub lifetime_secs: i64,
    /// notAfter, in seconds since the epoch.
    pub not_after: i64,
}

/// One value of a subject or issuer: its place in `Identity::values`, its
/// type (None: named by the OID of its run in `oid_runs`), and whether it
/// starts an RDN (the values of a multi-valued RDN follow its first).
#[derive(Debug, Clone, Copy)]
struct NameEntry {
    value: u16,
    field: Option<NameField>,
    new_rdn: bool,
}

/// The CA certificates above a leaf in the chain the server verified, in
/// the order it passed them (issuer first): kept for their hashes (made on
/// first use) and the RFC 9440 Client-Cert-Chain export.
#[derive(Debug)]
struct Chain {
    cas: Box<[ChainCa]>,
    /// Which of them is the first whose subject is the leaf's issuer name.
    issuer_at: Option<usize>,
    /// `ca.spki`, `ca.fingerprint` and `issuer.spki`.
    hashes: OnceCell<[Box<[Box<str>]>; 3]>,
}

#[derive(Debug)]
struct ChainCa {
    der: Box<[u8]>,
    /// Where its SubjectPublicKeyInfo lies within `der`.
    spki: std::ops::Range<usize>,
}

impl Chain {
    /// How many values the hashes are.
    fn value_count(&self) -> usize {
        2 * self.cas.len() + usize::from(self.issuer_at.is_some())
    }

    fn hashes(&self) -> &[Box<[Box<str>]>; 3] {
        self.hashes.get_or_init(|| {
            let spki = |ca: &ChainCa| -> Box<str> {
                hex(&Sha256::digest(ca.der.get(ca.spki.clone()).unwrap_or_default())).into()
            };
            [
                self.cas.iter().map(spki).collect(),
                self.cas.iter().map(|ca| hex(&Sha256::digest(&ca.der)).into()).collect(),
                self.issuer_at.and_then(|i| self.cas.get(i)).map(spki).into_iter().collect(),
            ]
        })
    }
}

/// The subject's RFC 4514 text, as a value and again with a NUL after it,
/// for servers that hand it on as a C string: one copy per certificate,
/// none per request.
#[derive(Debug)]
struct SubjectText {
    text: [Box<str>; 1],
    nul: Box<str>,
}

impl Identity {
    /// Parses a DER certificate; anything after it is an error.
    pub fn from_der(der: &[u8]) -> Result<Identity, CertError> {
        Identity::from_der_chain(der, &[])
    }

    /// Parses a DER leaf certificate with the chain the server verified it
    /// with, leaf first (a copy of the leaf in `chain` is skipped, so
    /// OpenSSL's verified chain can be passed as it is).  Each other
    /// certificate is a CA above the leaf: `ca.spki` and `ca.fingerprint`
    /// take its hashes, and `issuer.spki` the key of the first one whose
    /// subject is the leaf's issuer name.  A chain certificate that cannot
    /// be read refuses the whole identity: what the server verified is
    /// never guessed at.  The chain is the caller's word, as the
    /// verification flag is: only a chain the server verified may be passed.
    pub fn from_der_chain(der: &[u8], chain: &[&[u8]]) -> Result<Identity, CertError> {
        Identity::from_der_vec(der.to_vec(), chain).map_err(|(why, _)| why)
    }

    /// As `from_der_chain`, keeping `der` itself (no copy); a refusal hands
    /// it back.
    fn from_der_vec(der: Vec<u8>, chain: &[&[u8]]) -> Result<Identity, (CertError, Vec<u8>)> {
        match Identity::read(&der, chain) {
            Ok(mut identity) => {
                identity.der = der;
                Ok(identity)
            }
            Err(why) => Err((why, der)),
        }
    }

    /// Everything of an identity but its DER, which the caller moves in
    /// once the parsed certificate, which borrows it, is gone.
    fn read(der: &[u8], chain: &[&[u8]]) -> Result<Identity, CertError> {
        let cert = parse_der(der, None)?;
        let mut cas: Vec<ChainCa> = Vec::new();
        let mut issuer_at = None;
        for (i, ca_der) in chain.iter().enumerate() {
            if *ca_der == der {
                continue;
            }
            let ca = parse_der(ca_der, Some(i))?;
            if issuer_at.is_none() && ca.subject().as_raw() == cert.issuer().as_raw() {
                issuer_at = Some(cas.len());
            }
            let spki = ca.public_key().raw;
            let spki_start = spki.as_ptr() as usize - ca_der.as_ptr() as usize;
            cas.push(ChainCa { der: (*ca_der).into(), spki: spki_start..spki_start + spki.len() });
        }
        let chain = Chain { cas: cas.into_boxed_slice(), issuer_at, hashes: OnceCell::new() };
        Identity::from_parsed(&cert, der, chain)
    }

    /// Parses the first CERTIFICATE block of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Identity, CertError> {
        Identity::from_der_vec(pem_to_der(pem)?, &[]).map_err(|(why, _)| why)
    }

    /// Reads PEM or DER, whichever the bytes are.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Identity, CertError> {
        if is_pem(bytes) {
            Identity::from_pem(bytes)
        } else {
            Identity::from_der(bytes)
        }
    }

    fn from_parsed(cert: &X509Certificate<'_>, der: &[u8], chain: Chain) -> Result<Identity, CertError> {
        let mut values: Vec<Read> = Vec::with_capacity(16);
        let mut names: Vec<NameEntry> = Vec::with_capacity(12);

        read_name(cert.subject(), "subject", Attr::SubjectField, NO_SUBJECT_OID, &mut values, &mut names)?;
        let issuer_from = names.len();
        read_name(cert.issuer(), "issuer", Attr::IssuerField, NO_ISSUER_OID, &mut values, &mut names)?;

        for ext in cert.extensions() {
            let oid = ext.oid.as_bytes();
            let seen = cert.extensions().iter().filter(|e| e.oid.as_bytes() == oid).count();
            if [OID_SAN, OID_EKU, OID_POLICIES].contains(&oid) && seen > 1 {
                return refuse(format!("two {} extensions", extension_name(oid)));
            }
            match oid {
                OID_SAN => match SubjectAlternativeName::from_der(ext.value) {
                    Ok((&[], san)) => {
                        for name in &san.general_names {
                            read_general_name(name, &mut values)?;
                        }
                    }
                    Ok(_) => return refuse("bytes after the subjectAltName"),
                    Err(e) => return refuse(format!("bad subjectAltName: {e}")),
                },
                OID_EKU => read_oid_list(ext.value, Attr::Eku, false, &mut values)?,
                OID_POLICIES => read_oid_list(ext.value, Attr::Policy, true, &mut values)?,
                _ => {}
            }
        }

        values.push((Attr::Serial.index(), None, serial_hex(cert.raw_serial()).into()));
        // The chain's hashes are values too, made on first use: counted as
        // when they were made here.
        if values.len() + chain.value_count() > u16::MAX as usize {
            return refuse("too many names");
        }
        // ends[i]: how many values belong to attributes 0..=i.
        let mut ends = [0u16; ATTR_COUNT];
        for (attr, _, _) in &values {
            ends[*attr] += 1;
        }
        for i in 1..ATTR_COUNT {
            ends[i] += ends[i - 1];
        }
        // Each value goes after those of the attributes before its own, the
        // values of one attribute in the certificate's order (a counting
        // sort, so stable); a name entry follows its value there.
        let mut next = [0u16; ATTR_COUNT];
        next[1..].copy_from_slice(&ends[..ATTR_COUNT - 1]);
        let mut sorted: Vec<Box<str>> = vec![Box::default(); values.len()];
        let mut by_oid: Vec<(usize, Box<[u8]>, u16)> = Vec::new();
        let mut entries = names.iter_mut().peekable();
        for (read, (attr, oid, value)) in values.into_iter().enumerate() {
            let place = next[attr];
            next[attr] += 1;
            sorted[place as usize] = value;
            if let Some(entry) = entries.next_if(|e| e.value as usize == read) {
                entry.value = place;
            }
            if let Some(oid) = oid {
                by_oid.push((attr, oid, place));
            }
        }
        // The values named by OID (all of their kinds' slots) are sorted by
        // OID within their slot, stably: the k-th of them in that order
        // takes the k-th of their places.
        let mut oid_runs: Vec<OidRun> = Vec::new();
        if !by_oid.is_empty() {
            let mut places: Vec<u16> = by_oid.iter().map(|&(_, _, place)| place).collect();
            places.sort_unstable();
            by_oid.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
            // Taken out first, then put back: a place may be both.
            let moved: Vec<Box<str>> =
                by_oid.iter().map(|&(_, _, from)| std::mem::take(&mut sorted[from as usize])).collect();
            for (k, value) in moved.into_iter().enumerate() {
                sorted[places[k] as usize] = value;
            }
            for entry in names.iter_mut().filter(|e| e.field.is_none()) {
                if let Some(k) = by_oid.iter().position(|&(_, _, from)| from == entry.value) {
                    entry.value = places[k];
                }
            }
            for (k, (attr, oid, _)) in by_oid.into_iter().enumerate() {
                let at = places[k];
                match oid_runs.last_mut() {
                    Some(run) if run.0 as usize == attr && run.1 == oid => run.3 = at + 1,
                    _ => oid_runs.push((attr as u16, oid, at, at + 1)),
                }
            }
        }

        let validity = cert.validity();
        let lifetime_secs = validity.not_after.timestamp() - validity.not_before.timestamp();
        // The SPKI is a sub-slice of `der`: keep its place, not a copy.
        let spki_raw = cert.public_key().raw;
        let spki_start = spki_raw.as_ptr() as usize - der.as_ptr() as usize;

        Ok(Identity {
            values: sorted.into_boxed_slice(),
            ends,
            oid_runs: oid_runs.into_boxed_slice(),
            names,
            issuer_from,
            der: Vec::new(),
            spki: spki_start..spki_start + spki_raw.len(),
            subject: OnceCell::new(),
            issuer: OnceCell::new(),
            keys: OnceCell::new(),
            hashes: OnceCell::new(),
            chain,
            rfc9440: OnceCell::new(),
            key: key_kind(cert),
            lifetime_secs,
            not_after: validity.not_after.timestamp(),
        })
    }

    /// The RFC 4514 text (or with `key`, the canonical key) of the subject
    /// or the issuer, written from the values read and their places.
    fn name_text(&self, issuer: bool, key: bool) -> String {
        let entries = if issuer { &self.names[self.issuer_from..] } else { &self.names[..self.issuer_from] };
        // As everywhere else, not x509-parser's text, which writes 0.0 as
        // `0`, a type no policy can name.  Few names have such types.
        let dotted_types: Vec<String> = if entries.iter().any(|e| e.field.is_none()) {
            entries.iter().map(|e| dotted(self.oid_at(e.value as usize))).collect()
        } else {
            Vec::new()
        };
        let ty = |i: usize| match entries[i].field {
            Some(field) => field.short_name(),
            None => dotted_types.get(i).map_or("", String::as_str),
        };
        // Each RDN's first and last entry + 1, most general first.
        let mut rdns: Vec<(usize, usize)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            match rdns.last_mut() {
                Some(rdn) if !entry.new_rdn => rdn.1 = i + 1,
                _ => rdns.push((i, i + 1)),
            }
        }
        // Most specific first.
        let pairs = rdns
            .iter()
            .rev()
            .map(|&(start, end)| (start..end).map(|i| (ty(i), &*self.values[entries[i].value as usize])));
        let mut out = String::new();
        if key {
            write_canonical_key(pairs, &mut out);
        } else {
            write_rfc4514(pairs, &mut out);
        }
        out
    }

    /// The OID of the value at `i` of an OID-named attribute.
    fn oid_at(&self, i: usize) -> &[u8] {
        let run = self.oid_runs.iter().find(|run| (run.2 as usize..run.3 as usize).contains(&i));
        run.map_or(&[], |run| &run.1)
    }

    fn subject(&self) -> &SubjectText {
        self.subject.get_or_init(|| {
            let mut text = self.name_text(false, false);
            let plain: Box<str> = text.as_str().into();
            text.push('\0');
            SubjectText { text: [plain], nul: text.into() }
        })
    }

    fn issuer(&self) -> &[Box<str>; 1] {
        self.issuer.get_or_init(|| [self.name_text(true, false).into()])
    }

    /// Canonical keys of the subject and issuer DNs, for matching.
    fn keys(&self) -> &[[Box<str>; 1]; 2] {
        self.keys.get_or_init(|| [[self.name_text(false, true).into()], [self.name_text(true, true).into()]])
    }

    /// SHA-256 of the certificate and of its SubjectPublicKeyInfo.
    fn hashes(&self) -> &[[Box<str>; 1]; 2] {
        self.hashes.get_or_init(|| {
            let spki = self.der.get(self.spki.clone()).unwrap_or_default();
            [[hex(&Sha256::digest(&self.der)).into()], [hex(&Sha256::digest(spki)).into()]]
        })
    }

    /// The values of an attribute, as displayed (RFC 4514 text for whole
    /// DNs, lower case for DNS names, upper-case hex for hex values).
    #[inline(always)]
    pub fn values(&self, attr: Attr) -> &[Box<str>] {
        match attr {
            Attr::Subject
            | Attr::Issuer
            | Attr::Fingerprint
            | Attr::Spki
            | Attr::CaSpki
            | Attr::CaFingerprint
            | Attr::IssuerSpki => self.derived_values(attr),
            Attr::SubjectOid(_) | Attr::IssuerOid(_) | Attr::SanOther(_) => self.oid_values(attr),
            // Every decision asks for these: kept small enough to inline.
            _ => {
                let i = attr.index();
                let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
                &self.values[start..self.ends[i] as usize]
            }
        }
    }

    #[inline(never)]
    fn derived_values(&self, attr: Attr) -> &[Box<str>] {
        match attr {
            Attr::Subject => &self.subject().text,
            Attr::Issuer => self.issuer(),
            Attr::Fingerprint => &self.hashes()[0],
            Attr::Spki => &self.hashes()[1],
            Attr::CaSpki => &self.chain.hashes()[0],
            Attr::CaFingerprint => &self.chain.hashes()[1],
            Attr::IssuerSpki => &self.chain.hashes()[2],
            _ => &[],
        }
    }

    #[inline(never)]
    fn oid_values(&self, attr: Attr) -> &[Box<str>] {
        let i = attr.index();
        let Some(oid) = attr.oid() else {
            return &[];
        };
        match self.oid_runs.iter().find(|run| run.0 as usize == i && *run.1 == *oid.as_bytes()) {
            Some(&(_, _, start, end)) => &self.values[start as usize..end as usize],
            None => &[],
        }
    }

    /// Every attribute the identity has a value of, by name, with its
    /// values, in the order `cert-authz show` prints them: the fixed
    /// attributes, each kind of OID attribute after its kind's fields.
    pub fn listing(&self) -> Vec<(String, &[Box<str>])> {
        let mut out: Vec<(String, &[Box<str>])> = Vec::new();
        let last_field = NameField::all().last();
        fn oid_runs<'a>(
            identity: &'a Identity,
            slot: usize,
            prefix: &str,
            out: &mut Vec<(String, &'a [Box<str>])>,
        ) {
            for (run_slot, oid, start, end) in identity.oid_runs.iter() {
                if *run_slot as usize == slot {
                    out.push((
                        format!("{prefix}{}", dotted(oid)),
                        &identity.values[*start as usize..*end as usize],
                    ));
                }
            }
        }
        for attr in Attr::all() {
            let values = self.values(attr);
            if !values.is_empty() {
                out.push((attr.to_string(), values));
            }
            match attr {
                Attr::SubjectField(f) if Some(f) == last_field => {
                    oid_runs(self, NO_SUBJECT_OID.index(), "subject.", &mut out)
                }
                Attr::IssuerField(f) if Some(f) == last_field => {
                    oid_runs(self, NO_ISSUER_OID.index(), "issuer.", &mut out)
                }
                Attr::SanUpn => oid_runs(self, Attr::SanOther(NO_OID).index(), "san.other.", &mut out),
                _ => {}
            }
        }
        out
    }

    /// The values a policy compares against: for whole DNs, the canonical
    /// key of the parsed structure, otherwise the displayed values.
    #[inline(always)]
    pub fn match_values(&self, attr: Attr) -> &[Box<str>] {
        match attr {
            Attr::Subject => &self.keys()[0],
            Attr::Issuer => &self.keys()[1],
            _ => self.values(attr),
        }
    }

    /// The subject as RFC 4514 text.
    /// The subject as RFC 4514 text, followed in memory by a NUL.
    pub fn subject_text(&self) -> &str {
        let nul = &self.subject().nul;
        &nul[..nul.len() - 1]
    }

    /// The issuer as RFC 4514 text.
    pub fn issuer_text(&self) -> &str {
        &self.issuer()[0]
    }

    /// The leaf as an RFC 9440 Client-Cert value: the DER as a structured
    /// field byte sequence, `:BASE64:`.
    pub fn client_cert(&self) -> &str {
        &self.rfc9440().0
    }

    /// The CA certificates of the verified chain as an RFC 9440
    /// Client-Cert-Chain value: a list of byte sequences, issuer first;
    /// empty when the server passed no chain.
    pub fn client_cert_chain(&self) -> &str {
        &self.rfc9440().1
    }

    fn rfc9440(&self) -> &(Box<str>, Box<str>) {
        self.rfc9440.get_or_init(|| {
            let item = |der: &[u8]| format!(":{}:", BASE64.encode(der));
            let chain: Vec<String> = self.chain.cas.iter().map(|ca| item(&ca.der)).collect();
            (item(&self.der).into(), chain.join(", ").into())
        })
    }

    /// Whole days from `now` (seconds since the epoch) until notAfter,
    /// rounded down: 0 on the last day, negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// Computes the values derived on first use now (for benchmarks and
    /// for callers that want the cost paid up front).
    pub fn derive_all(&self) {
        self.subject();
        self.issuer();
        self.keys();
        self.hashes();
        self.chain.hashes();
    }
}

/// Parses one DER certificate; anything after it is an error.
fn parse_der(der: &[u8], chain_index: Option<usize>) -> Result<X509Certificate<'_>, CertError> {
    let which = || chain_index.map_or_else(String::new, |i| format!("chain certificate {i}: "));
    // Extensions are not parsed deeply: the few read are parsed where they
    // are read, which saves a third of the parse time.
    let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
    let (rest, cert) = match parser.parse(der) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(format!("{}not a certificate: {e}", which())),
    };
    if !rest.is_empty() {
        return refuse(format!("{}{} bytes follow the certificate's DER", which(), rest.len()));
    }
    Ok(cert)
}

/// The DER of every CERTIFICATE block of a PEM text (a chain file), in order.
pub fn pem_chain_to_der(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.windows(BEGIN.len()).position(|w| w == BEGIN) {
        let block = &rest[start..];
        let Some(end) = block.windows(END.len()).position(|w| w == END) else {
            return refuse("no -----END CERTIFICATE----- line after a block");
        };
        out.push(pem_to_der(&block[..end + END.len()])?);
        rest = &block[end + END.len()..];
    }
    Ok(out)
}

/// The DER of the first CERTIFICATE block of a PEM text.
fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    // Servers hand over exactly one block, so look at the start first.
    let begin =
        if pem.starts_with(BEGIN) { Some(0) } else { pem.windows(BEGIN.len()).position(|w| w == BEGIN) };
    let Some(start) = begin.map(|p| p + BEGIN.len()) else {
        return refuse("no -----BEGIN CERTIFICATE----- line");
    };
    // Base64 has no `-`: the first one after the body starts the END line.
    let body_len = memchr::memchr(b'-', &pem[start..]).unwrap_or(pem.len() - start);
    if !pem[start + body_len..].starts_with(END) {
        return refuse("no -----END CERTIFICATE----- line after the body");
    }
    let body = &pem[start..start + body_len];
    let mut der = vec![0u8; decoded_room(body.len())];
    match decode_base64_lines(body, &mut der) {
        Some(len) => der.truncate(len),
        None => return refuse("the PEM body is not base64"),
    }
    Ok(der)
}

/// The value of each base64 digit; 0xff for every other byte (`=` too).
static BASE64_DIGITS: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Room enough for the bytes of `len` bytes of base64 lines and for the
/// slack that `decode_base64_lines` writes after them.
fn decoded_room(len: usize) -> usize {
    len / 4 * 3 + 8
}

/// The bits of four base64 digits; None when one is not a digit.
fn base64_group(a: u8, b: u8, c: u8, d: u8) -> Option<u32> {
    let [a, b, c, d] = [a, b, c, d].map(|x| BASE64_DIGITS[x as usize]);
    let bits = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
    ((a | b | c | d) & 0x80 == 0).then_some(bits)
}

/// Decodes a PEM body into the start of `out` and says how many bytes it
/// wrote.  Each line (ended by LF, one CR before it dropped; empty ones
/// skipped) must be a padded base64 text of its own (RFC 4648 §4), as the
/// base64 crate's standard engine takes one: whole groups of four, `=`
/// only as one or two at its end, the bits that padding leaves over all
/// zero.  Otherwise None, with `out` in any state.  Written by hand, eight
/// digits at a time, as that costs half of decoding line by line.
fn decode_base64_lines(body: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut pos, mut len) = (0, 0);
    loop {
        // A line's whole groups: eight digits at a time, then four.  No
        // group reaches past a line's end (a line break is no digit).
        while let Some(&chunk) = body.get(pos..pos + 8).and_then(|c| <&[u8; 8]>::try_from(c).ok()) {
            let digit = |i: usize| u64::from(BASE64_DIGITS[chunk[i] as usize]);
            let bad = digit(0) | digit(1) | digit(2) | digit(3) | digit(4) | digit(5) | digit(6) | digit(7);
            if bad & 0x80 != 0 {
                break;
            }
            // Six bytes, and two of slack that the next write overwrites.
            let bits = digit(0) << 58
                | digit(1) << 52
                | digit(2) << 46
                | digit(3) << 40
                | digit(4) << 34
                | digit(5) << 28
                | digit(6) << 22
                | digit(7) << 16;
            out.get_mut(len..len + 8)?.copy_from_slice(&bits.to_be_bytes());
            (pos, len) = (pos + 8, len + 6);
        }
        if let Some(&[a, b, c, d]) = body.get(pos..pos + 4) {
            if let Some(bits) = base64_group(a, b, c, d) {
                out.get_mut(len..len + 3)?.copy_from_slice(&bits.to_be_bytes()[1..]);
                (pos, len) = (pos + 4, len + 3);
            }
        }
        // Then the line ends, or its last group is padded and then it ends.
        let ends = |rest: &[u8]| match rest {
            [] | [b'\r'] => Some(None),
            [b'\n', ..] => Some(Some(1)),
            [b'\r', b'\n', ..] => Some(Some(2)),
            _ => None,
        };
        let next = match ends(&body[pos..]) {
            Some(next) => next,
            None => {
                let (bits, keep) = match *body.get(pos..pos + 4)? {
                    [a, b, b'=', b'='] => (base64_group(a, b, b'A', b'A')?, 1),
                    [a, b, c, b'='] => (base64_group(a, b, c, b'A')?, 2),
                    _ => return None,
                };
                let bytes = bits.to_be_bytes();
                if bytes[1 + keep..].iter().any(|&b| b != 0) {
                    return None;
                }
                out.get_mut(len..len + keep)?.copy_from_slice(&bytes[1..1 + keep]);
                (pos, len) = (pos + 4, len + keep);
                ends(&body[pos..])?
            }
        };
        match next {
            Some(step) => pos += step,
            None => return Some(len),
        }
    }
}

/// Reads a Name, decoding every string, and adds each attribute value to
/// `values` as its own value, most general first as the certificate lists
/// them: two CNs (or a CN in a multi-valued RDN) are two values, never one
/// joined string.  `names` gets each value's place and type, from which
/// the whole-DN text and key are written when first asked for.
fn read_name(
    name: &X509Name<'_>,
    which: &str,
    field_attr: fn(NameField) -> Attr,
    oid_attr: Attr,
    values: &mut Vec<Read>,
    names: &mut Vec<NameEntry>,
) -> Result<(), CertError> {
    for rdn in name.iter_rdn() {
        // x509-parser reads an RDN only with at least one value.
        for (j, atv) in rdn.iter().enumerate() {
            let oid = atv.attr_type().as_bytes();
            // A type of the table is a well-formed OID: only others are checked.
            let field = NameField::from_oid_bytes(oid);
            if field.is_none() {
                check_oid(oid).map_err(|why| CertError(format!("{which}: {why}")))?;
            }
            let value = decode_string(atv.attr_value()).map_err(|why| {
                let ty = field.map_or_else(|| dotted(oid), |field| field.short_name().to_string());
                CertError(format!("{which} {ty}: {why}"))
            })?;
            names.push(NameEntry {
                value: values.len().min(u16::MAX as usize) as u16,
                field,
                new_rdn: j == 0,
            });
            match field {
                Some(field) => values.push((field_attr(field).index(), None, value)),
                None => values.push((oid_attr.index(), Some(oid.into()), value)),
            }
        }
    }
    Ok(())
}

/// Decodes every ASN.1 string type a name may use into Unicode.  Any other
/// type, an invalid encoding or a control character is an error.
fn decode_string(any: &Any<'_>) -> Result<Box<str>, String> {
    let data: &[u8] = any.data;
    let text: Box<str> = match any.tag() {
        Tag::Utf8String => std::str::from_utf8(data).map_err(|_| "invalid UTF8String")?.into(),
        Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            if !data.is_ascii() {
                return Err("non-ASCII byte in an ASCII string type".into());
            }
            std::str::from_utf8(data).map_err(|_| "invalid string")?.into()
        }
        // T.61 is taken as Latin-1, as OpenSSL and most software do.
        Tag::TeletexString => data.iter().map(|&b| b as char).collect(),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return Err("BMPString of odd length".into());
            }
            let units = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| "invalid BMPString")?.into()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return Err("UniversalString of bad length".into());
            }
            data.chunks(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .ok_or("invalid UniversalString")?
                .into()
        }
        other => return Err(format!("unsupported string type {other:?}")),
    };
    check_text(&text)?;
    Ok(text)
}

/// Refuses a control character (Unicode's Cc: U+0000..U+001F, U+007F and
/// U+0080..U+009F), looked for in the UTF-8 bytes: the C0 ones and DEL are
/// one byte each, the C1 ones 0xC2 and a byte 0x80..0x9F.
fn check_text(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let control = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b < 0x20 || b == 0x7f || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f))));
    if control {
        return Err("control character (NUL included) in a value".into());
    }
    Ok(())
}

fn read_general_name(name: &GeneralName<'_>, values: &mut Vec<Read>) -> Result<(), CertError> {
    let (attr, value) = match name {
        GeneralName::DNSName(dns) => (Attr::SanDns, dns.to_ascii_lowercase()),
        GeneralName::RFC822Name(email) => (Attr::SanEmail, email.to_string()),
        GeneralName::URI(uri) => (Attr::SanUri, uri.to_string()),
        GeneralName::IPAddress(bytes) => (Attr::SanIp, ip_text(bytes)?),
        GeneralName::OtherName(oid, content) => return read_other_name(oid.as_bytes(), content, values),
        GeneralName::Invalid(tag, _) => return refuse(format!("undecodable subjectAltName entry {tag:?}")),
        // Other name forms are not matchable; they cannot fake one that is.
        _ => return Ok(()),
    };
    check_text(&value).map_err(|why| CertError(format!("{attr}: {why}")))?;
    values.push((attr.index(), None, value.into()));
    Ok(())
}

/// An otherName's `[0] EXPLICIT` value.  The UPN must be a UTF8String, as
/// Microsoft defines it.  Any other type's value is the decoded string when
/// it is one of the string types, else `#` and the upper-case hex of its
/// DER (tag and length included), as RFC 4514 writes a value of a type it
/// cannot show as text.
fn read_other_name(oid: &[u8], content: &[u8], values: &mut Vec<Read>) -> Result<(), CertError> {
    check_oid(oid).map_err(|why| CertError(format!("subjectAltName otherName: {why}")))?;
    let what = format!("subjectAltName otherName {}", dotted(oid));
    let inner = match Any::from_der(content) {
        Ok((&[], outer)) if outer.class() == Class::ContextSpecific && outer.tag() == Tag(0) => outer.data,
        _ => return refuse(format!("{what}: not an [0] EXPLICIT value")),
    };
    let value = match Any::from_der(inner) {
        Ok((&[], any)) => any,
        _ => return refuse(format!("{what}: bad value")),
    };
    let text = if oid == OID_UPN {
        if value.tag() != Tag::Utf8String || value.class() != Class::Universal {
            return refuse(format!("{what}: the UPN is not a UTF8String"));
        }
        decode_string(&value).map_err(|why| CertError(format!("{what}: {why}")))?
    } else if value.class() == Class::Universal && is_string_tag(value.tag()) {
        decode_string(&value).map_err(|why| CertError(format!("{what}: {why}")))?
    } else {
        format!("#{}", hex(inner)).into()
    };
    if oid == OID_UPN {
        values.push((Attr::SanUpn.index(), None, text));
    } else {
        values.push((Attr::SanOther(NO_OID).index(), Some(oid.into()), text));
    }
    Ok(())
}

fn is_string_tag(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::NumericString
            | Tag::VisibleString
            | Tag::TeletexString
            | Tag::BmpString
            | Tag::UniversalString
    )
}

/// extendedKeyUsage (SEQUENCE OF OID) or certificatePolicies (SEQUENCE OF
/// SEQUENCE { OID, qualifiers }): each OID as a dotted value of `attr`.
fn read_oid_list(der: &[u8], attr: Attr, wrapped: bool, values: &mut Vec<Read>) -> Result<(), CertError> {
    let bad = || {
        CertError(format!(
            "bad {} extension",
            if wrapped { "certificatePolicies" } else { "extendedKeyUsage" }
        ))
    };
    let mut items = match Any::from_der(der) {
        Ok((&[], seq)) if seq.tag() == Tag::Sequence && seq.class() == Class::Universal => seq.data,
        _ => return Err(bad()),
    };
    while !items.is_empty() {
        let (rest, oid) = if wrapped {
            let (rest, info) = Any::from_der(items).map_err(|_| bad())?;
            if info.tag() != Tag::Sequence {
                return Err(bad());
            }
            let (_, oid) = DerOid::from_der(info.data).map_err(|_| bad())?;
            (rest, oid)
        } else {
            DerOid::from_der(items).map_err(|_| bad())?
        };
        check_oid(oid.as_bytes()).map_err(|_| bad())?;
        values.push((attr.index(), None, dotted(oid.as_bytes()).into()));
        items = rest;
    }
    Ok(())
}

/// An OID is read only when its dotted text is exactly it: DER (at least
/// one byte, each arc in its shortest form, the last one ended) with every
/// arc within 64 bits, as `dotted` and policies read them.  Otherwise two
/// encodings would show, and as `eku` and `policy` values match, as one
/// OID (`…3.2` written with a leading 0x80, or with 2^64 added, would be
/// clientAuth).
fn check_oid(oid: &[u8]) -> Result<(), String> {
    let mut arc: u64 = 0;
    let mut arc_start = true;
    for &b in oid {
        if arc_start && b == 0x80 {
            return Err(format!("OID {} is not in its shortest form", hex(oid)));
        }
        arc = match arc.checked_mul(128) {
            Some(shifted) => shifted | u64::from(b & 0x7f),
            None => return Err(format!("OID {} has an arc beyond 64 bits", hex(oid))),
        };
        arc_start = b & 0x80 == 0;
        if arc_start {
            arc = 0;
        }
    }
    if !arc_start || oid.is_empty() {
        return Err(format!("OID {} is cut short", hex(oid)));
    }
    Ok(())
}

fn extension_name(oid: &[u8]) -> &'static str {
    match oid {
        OID_SAN => "subjectAltName",
        OID_EKU => "extendedKeyUsage",
        _ => "certificatePolicies",
    }
}

fn ip_text(bytes: &[u8]) -> Result<String, CertError> {
    match bytes.len() {
        4 => Ok(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            let ip = Ipv6Addr::from(octets);
            // Ambiguous: IPv4 to a policy, IPv6 to the name constraints
            // OpenSSL checks, so a CA kept out of 10.0.0.0/8 could still
            // name ::ffff:10.1.2.3.  Refused, as any identity that two
            // readers would read apart.
            if ip.to_ipv4_mapped().is_some() {
                return refuse(format!("subjectAltName IP address {ip} is IPv4-mapped"));
            }
            Ok(IpAddr::V6(ip).to_string())
        }
        n => refuse(format!("subjectAltName IP address of {n} bytes")),
    }
}

/// Upper-case hex of the serial's magnitude, without leading zero bytes.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex(&raw[start.min(raw.len())..])
}

/// Upper-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let digits: Vec<u8> =
        bytes.iter().flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]).collect();
    // Hex digits are ASCII.
    String::from_utf8(digits).unwrap_or_default()
}

const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_EKU: &[u8] = &[0x55, 0x1d, 0x25];
const OID_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
// Stand for any OID where only an attribute's slot is wanted.
const NO_OID: crate::attr::Oid = crate::attr::NO_OID;
const NO_SUBJECT_OID: Attr = Attr::SubjectOid(NO_OID);
const NO_ISSUER_OID: Attr = Attr::IssuerOid(NO_OID);
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
// Named curves: P-256, secp256k1, P-384, P-521.
const CURVES: &[(&[u8], u32)] = &[
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 256),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], 256),
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], 384),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], 521),
];

fn key_kind(cert: &X509Certificate<'_>) -> KeyKind {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.as_bytes();
    if alg == OID_RSA || alg == OID_RSA_PSS {
        let modulus: &[u8] =
            match x509_parser::public_key::RSAPublicKey::from_der(spki.subject_public_key.data.as_ref()) {
                Ok((_, rsa)) => rsa.modulus,
                Err(_) => return KeyKind::Other,
            };
        let start = modulus.iter().position(|&b| b != 0).unwrap_or(modulus.len());
        let significant = &modulus[start..];
        let bits = match significant.first() {
            Some(first) => significant.len() as u32 * 8 - first.leading_zeros(),
            None => 0,
        };
        KeyKind::Rsa(bits)
    } else if alg == OID_EC {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .and_then(|oid| CURVES.iter().find(|(der, _)| *der == oid.as_bytes()).map(|(_, bits)| *bits));
        curve.map(KeyKind::Ec).unwrap_or(KeyKind::Other)
    } else if alg == OID_ED25519 {
        KeyKind::Ed25519
    } else if alg == OID_ED448 {
        KeyKind::Ed448
    } else {
        KeyKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PEM body as the base64 crate's standard engine reads it, line
    /// by line (the code before the hand-written decoder).
    fn reference(body: &[u8]) -> Option<Vec<u8>> {
        let mut der = Vec::new();
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                der.extend(BASE64.decode(line).ok()?);
            }
        }
        Some(der)
    }

    fn decode(body: &[u8]) -> Option<Vec<u8>> {
        let mut der = vec![0u8; decoded_room(body.len())];
        decode_base64_lines(body, &mut der).map(|len| der[..len].to_vec())
    }

    /// The hand-written decoder takes exactly the bodies the base64 crate
    /// takes line by line, to the same bytes: every body of up to six
    /// bytes from digits of each kind of trailing bits, padding, line ends
    /// and bytes outside base64; of up to ten from fewer (padding inside a
    /// line, groups after it, lines of every length); and long ones.
    #[test]
    fn pem_bodies_decode_as_the_base64_crate_decodes_their_lines() {
        let alphabets: [(&[u8], u32); 2] = [(b"AQgw/+=\n\rE -\x80", 6), (b"AQ=\n\r", 10)];
        for (chars, longest) in alphabets {
            let mut body = Vec::new();
            for len in 0..=longest {
                for mut n in 0..(chars.len() as u64).pow(len) {
                    body.clear();
                    for _ in 0..len {
                        body.push(chars[(n % chars.len() as u64) as usize]);
                        n /= chars.len() as u64;
                    }
                    assert_eq!(decode(&body), reference(&body), "{:?}", String::from_utf8_lossy(&body));
                }
            }
        }
        let mut x: u32 = 1;
        for _ in 0..20_000 {
            let (mut body, mut garbled) = (Vec::new(), false);
            while body.len() < 200 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let bytes: Vec<u8> =
                    (0..x as usize % 61).map(|i| (x >> (i % 4 * 8)) as u8 ^ i as u8).collect();
                let line = BASE64.encode(bytes);
                body.extend(line.as_bytes());
                body.extend(if x.is_multiple_of(3) { &b"\r\n"[..] } else { b"\n" });
                if x.is_multiple_of(97) {
                    body.push(b"A=\r\n+"[x as usize % 5]);
                    garbled = true;
                }
            }
            assert_eq!(decode(&body), reference(&body), "{:?}", String::from_utf8_lossy(&body));
            assert!(garbled || decode(&body).is_some());
        }
    }
}
