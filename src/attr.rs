//! The attributes of an identity that a policy can name.
//!
//! An attribute is a small `Copy` value.  Name attribute types with a usual
//! name (the table in [`crate::dn`]) are a [`NameField`], an index into that
//! table; any other type is named by its dotted OID and carried here as the
//! OID's DER content bytes, inline ([`Oid`]), as is the type of an otherName
//! SAN.  Such an attribute shares one slot of the per-attribute tables with
//! every other OID of its kind (`Attr::index`), and the identity finds its
//! values by comparing OIDs: no interner, no global state, and an identity
//! is read without knowing any policy.

use std::fmt;

use crate::dn::TYPES;

/// A name attribute type that has a usual name: an index into `dn::TYPES`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameField(u8);

/// How many name attribute types have a usual name.
pub const NAME_FIELD_COUNT: usize = TYPES.len();

impl NameField {
    pub const COMMON_NAME: NameField = NameField(0);

    /// Every name field, in the order `cert-authz show` prints them.
    pub fn all() -> impl Iterator<Item = NameField> {
        (0..NAME_FIELD_COUNT as u8).map(NameField)
    }

    /// The short name used in policies and in RFC 4514 text.
    pub fn short_name(self) -> &'static str {
        TYPES[self.0 as usize].0
    }

    /// The OID's DER content bytes.
    pub fn oid_bytes(self) -> &'static [u8] {
        TYPES[self.0 as usize].2
    }

    /// The field of a type given by its OID's DER content bytes.
    #[inline]
    pub fn from_oid_bytes(oid: &[u8]) -> Option<NameField> {
        // Most names hold only X.520 types (2.5.4.N): found by N.
        if let [0x55, 0x04, arc] = *oid {
            let i = *X520_FIELDS.get(arc as usize)?;
            return (i != NO_FIELD).then_some(NameField(i));
        }
        TYPES.iter().position(|t| t.2 == oid).map(|i| NameField(i as u8))
    }

    /// A usual name (exactly as written in the table, or a long-name alias
    /// such as `givenName`) or a dotted OID of a type in the table.
    /// A field by its short or long name in any case (variable names come
    /// lower-cased from nginx).
    fn from_name_ignoring_case(name: &str) -> Option<NameField> {
        let name =
            ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map_or(name, |(_, s)| s);
        TYPES
            .iter()
            .position(|t| t.0.eq_ignore_ascii_case(name) || t.1.eq_ignore_ascii_case(name))
            .map(|i| NameField(i as u8))
    }

    fn from_name(name: &str) -> Option<NameField> {
        let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, short)| short);
        TYPES.iter().position(|t| t.0 == name || t.1 == name).map(|i| NameField(i as u8))
    }
}

const NO_FIELD: u8 = u8::MAX;

/// The field of each X.520 type 2.5.4.N with N below 128, by N.
const X520_FIELDS: [u8; 128] = {
    let mut fields = [NO_FIELD; 128];
    let mut i = 0;
    while i < TYPES.len() {
        if let [0x55, 0x04, arc] = *TYPES[i].2 {
            if arc < 128 {
                fields[arc as usize] = i as u8;
            }
        }
        i += 1;
    }
    fields
};

/// Long names that OpenSSL and LDAP also use for two types whose short
/// names are less obvious.
const ALIASES: &[(&str, &str)] = &[("givenName", "GN"), ("surname", "SN")];

/// The longest OID (in DER content bytes) that a policy can name.  Real
/// ones are far shorter (a private enterprise arc with a few sub-arcs is
/// about 15 bytes); a longer one is a policy error, never truncated.
pub const OID_MAX: usize = 30;

/// An object identifier, as the DER content bytes of its encoding.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid {
    len: u8,
    bytes: [u8; OID_MAX],
}

impl Oid {
    /// Parses dotted text (`1.3.6.1.4.1.311.20.2.3`): at least two arcs,
    /// decimal without leading zeros, the first 0, 1 or 2 and, under 0 or 1,
    /// the second below 40.  None for anything else or an OID too long.
    pub fn from_dotted(text: &str) -> Option<Oid> {
        let mut arcs = Vec::new();
        for arc in text.split('.') {
            let canonical = !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc == "0" || !arc.starts_with('0'));
            if !canonical {
                return None;
            }
            arcs.push(arc.parse::<u64>().ok()?);
        }
        if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
            return None;
        }
        let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
        let mut der = Vec::new();
        for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            der.extend(groups.iter().rev());
        }
        Oid::from_bytes(&der)
    }

    /// From DER content bytes, if they fit.
    pub fn from_bytes(der: &[u8]) -> Option<Oid> {
        if der.is_empty() || der.len() > OID_MAX {
            return None;
        }
        let mut bytes = [0u8; OID_MAX];
        bytes[..der.len()].copy_from_slice(der);
        Some(Oid { len: der.len() as u8, bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// No OID: stands for any OID where only an attribute's slot is wanted.
pub const NO_OID: Oid = Oid { len: 0, bytes: [0; OID_MAX] };

/// Dotted text of an OID given by its DER content bytes (which the
/// certificate parser has already checked).
pub fn dotted(der: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in der {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", dotted(self.as_bytes()))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&dotted(self.as_bytes()))
    }
}

/// The Microsoft User Principal Name otherName, 1.3.6.1.4.1.311.20.2.3.
pub const OID_UPN: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];

/// Extended key usages by name, as `eku=` takes them: (name, dotted OID).
pub const EKU_NAMES: &[(&str, &str)] = &[
    ("serverAuth", "1.3.6.1.5.5.7.3.1"),
    ("clientAuth", "1.3.6.1.5.5.7.3.2"),
    ("codeSigning", "1.3.6.1.5.5.7.3.3"),
    ("emailProtection", "1.3.6.1.5.5.7.3.4"),
    ("timeStamping", "1.3.6.1.5.5.7.3.8"),
    ("OCSPSigning", "1.3.6.1.5.5.7.3.9"),
    ("anyExtendedKeyUsage", "2.5.29.37.0"),
];

/// An attribute of an identity, as named in a policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// The whole subject DN, compared as a parsed structure.
    Subject,
    /// The whole issuer DN.
    Issuer,
    SubjectField(NameField),
    IssuerField(NameField),
    /// A subject or issuer attribute of a type without a usual name.
    SubjectOid(Oid),
    IssuerOid(Oid),
    SanDns,
    SanEmail,
    SanUri,
    SanIp,
    /// The Microsoft UPN otherName.
    SanUpn,
    /// Any other otherName, by its type OID.
    SanOther(Oid),
    /// The extended key usages, as dotted OIDs.
    Eku,
    /// The certificatePolicies OIDs, dotted.
    Policy,
    Serial,
    Fingerprint,
    Spki,
    /// SHA-256 of the SubjectPublicKeyInfo of each CA certificate above the
    /// leaf in the chain the server verified.
    CaSpki,
    /// SHA-256 of each of those CA certificates.
    CaFingerprint,
    /// SHA-256 of the SubjectPublicKeyInfo of the leaf's issuer, when the
    /// verified chain holds it.
    IssuerSpki,
}

/// The attributes of a fixed kind after the name fields, in `show` order.
const FIXED: [Attr; 14] = [
    Attr::SanDns,
    Attr::SanEmail,
    Attr::SanUri,
    Attr::SanIp,
    Attr::SanUpn,
    Attr::Eku,
    Attr::Policy,
    Attr::Serial,
    Attr::Fingerprint,
    Attr::Spki,
    Attr::IssuerSpki,
    Attr::CaSpki,
    Attr::CaFingerprint,
    // Placeholder for the slot of SanOther (see `index`).
    Attr::SanOther(NO_OID),
];

/// How many distinct attribute slots there are (the size of per-attribute
/// tables): every OID attribute of one kind shares its kind's slot.
pub const ATTR_COUNT: usize = 2 + 2 * NAME_FIELD_COUNT + 2 + FIXED.len();

impl Attr {
    /// Parses an attribute name such as `subject.CN`, `subject.2.5.4.97`,
    /// `san.upn` or `san.other.1.3.6.1.4.1.99999.1`.
    pub fn parse(name: &str) -> Option<Attr> {
        match name {
            "subject" => return Some(Attr::Subject),
            "issuer" => return Some(Attr::Issuer),
            "san.dns" => return Some(Attr::SanDns),
            "san.email" => return Some(Attr::SanEmail),
            "san.uri" => return Some(Attr::SanUri),
            "san.ip" => return Some(Attr::SanIp),
            "san.upn" => return Some(Attr::SanUpn),
            "eku" => return Some(Attr::Eku),
            "policy" => return Some(Attr::Policy),
            "serial" => return Some(Attr::Serial),
            "fingerprint" => return Some(Attr::Fingerprint),
            "spki" => return Some(Attr::Spki),
            "issuer.spki" => return Some(Attr::IssuerSpki),
            "ca.spki" => return Some(Attr::CaSpki),
            "ca.fingerprint" => return Some(Attr::CaFingerprint),
            _ => {}
        }
        if let Some(oid) = name.strip_prefix("san.other.") {
            let oid = Oid::from_dotted(oid)?;
            // One name per attribute: the UPN is san.upn however written.
            return Some(if oid.as_bytes() == OID_UPN { Attr::SanUpn } else { Attr::SanOther(oid) });
        }
        type Make = (fn(NameField) -> Attr, fn(Oid) -> Attr);
        let (field, rest): (Make, &str) = if let Some(rest) = name.strip_prefix("subject.") {
            ((Attr::SubjectField, Attr::SubjectOid), rest)
        } else if let Some(rest) = name.strip_prefix("issuer.") {
            ((Attr::IssuerField, Attr::IssuerOid), rest)
        } else {
            return None;
        };
        if let Some(known) = NameField::from_name(rest) {
            return Some(field.0(known));
        }
        // A dotted OID of a type in the table is that field, so that one
        // value is never filed under two attributes.
        let oid = Oid::from_dotted(rest)?;
        Some(match NameField::from_oid_bytes(oid.as_bytes()) {
            Some(known) => field.0(known),
            None => field.1(oid),
        })
    }

    /// The environment variable a server exports the attribute's values
    /// under: `CERT_AUTHZ_`, then the attribute's name in upper case with
    /// `_` for `.` (`subject.O` → `CERT_AUTHZ_SUBJECT_O`, `subject.2.5.4.97`
    /// → `CERT_AUTHZ_SUBJECT_ORGANIZATIONIDENTIFIER` when the type has a
    /// name, else `CERT_AUTHZ_SUBJECT_2_5_4_97`).  Two spellings of one
    /// attribute give one name.
    pub fn export_name(self) -> String {
        let mut out = String::from("CERT_AUTHZ_");
        out.extend(self.to_string().chars().map(|c| if c == '.' { '_' } else { c.to_ascii_uppercase() }));
        out
    }

    /// Reads an attribute as a variable name writes it (nginx's
    /// `$cert_authz_attr_NAME`): `_` for `.`, any case, and optionally
    /// `_N` after it for the N-th value (from 0).  Returns the attribute
    /// and the index, None for the single-valued form.  The whole name is
    /// tried first, so for an attribute written as a dotted OID the digits
    /// are part of the OID (`subject_2_5_4_97_0` is `subject.2.5.4.97.0`):
    /// an index follows only an attribute written by name.
    pub fn parse_variable(name: &str) -> Option<(Attr, Option<usize>)> {
        if let Some(attr) = Attr::from_variable(name) {
            return Some((attr, None));
        }
        let (head, tail) = name.rsplit_once('_')?;
        let index_like = !tail.is_empty()
            && tail.len() <= 5
            && tail.bytes().all(|b| b.is_ascii_digit())
            && (tail == "0" || !tail.starts_with('0'));
        let named = head.rsplit('_').next().is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()));
        if !index_like || !named {
            return None;
        }
        Some((Attr::from_variable(head)?, Some(tail.parse().ok()?)))
    }

    fn from_variable(name: &str) -> Option<Attr> {
        let lower = name.to_ascii_lowercase();
        let fixed = [Attr::Subject, Attr::Issuer].into_iter().chain(FIXED[..FIXED.len() - 1].iter().copied());
        for attr in fixed {
            if attr.to_string().replace('.', "_") == lower {
                return Some(attr);
            }
        }
        if let Some(oid) = lower.strip_prefix("san_other_") {
            return Attr::parse(&format!("san.other.{}", oid.replace('_', ".")));
        }
        let (kind, rest) = if let Some(rest) = lower.strip_prefix("subject_") {
            ("subject", rest)
        } else if let Some(rest) = lower.strip_prefix("issuer_") {
            ("issuer", rest)
        } else {
            return None;
        };
        if rest.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return Attr::parse(&format!("{kind}.{}", rest.replace('_', ".")));
        }
        let field = NameField::from_name_ignoring_case(rest)?;
        Some(if kind == "subject" { Attr::SubjectField(field) } else { Attr::IssuerField(field) })
    }

    /// A dense number for tables indexed by attribute, below ATTR_COUNT.
    /// All OID attributes of one kind (subject, issuer, otherName) share one.
    pub fn index(self) -> usize {
        let fields = NAME_FIELD_COUNT;
        match self {
            Attr::Subject => 0,
            Attr::Issuer => 1,
            Attr::SubjectField(f) => 2 + f.0 as usize,
            Attr::IssuerField(f) => 2 + fields + f.0 as usize,
            Attr::SubjectOid(_) => 2 + 2 * fields,
            Attr::IssuerOid(_) => 3 + 2 * fields,
            Attr::SanOther(_) => 4 + 2 * fields + FIXED.len() - 1,
            fixed => 4 + 2 * fields + FIXED.iter().position(|a| *a == fixed).unwrap_or(0),
        }
    }

    /// The OID of an attribute named by OID.
    pub fn oid(self) -> Option<Oid> {
        match self {
            Attr::SubjectOid(oid) | Attr::IssuerOid(oid) | Attr::SanOther(oid) => Some(oid),
            _ => None,
        }
    }

    /// Every attribute of a fixed name, in the order `cert-authz show`
    /// prints them (the identity adds its OID attributes).
    pub fn all() -> Vec<Attr> {
        let mut all = vec![Attr::Subject];
        all.extend(NameField::all().map(Attr::SubjectField));
        all.push(Attr::Issuer);
        all.extend(NameField::all().map(Attr::IssuerField));
        all.extend(FIXED[..FIXED.len() - 1].iter().copied());
        all
    }

    /// Values compared as hex digits (colons and case ignored).
    pub fn is_hex(self) -> bool {
        matches!(
            self,
            Attr::Serial
                | Attr::Fingerprint
                | Attr::Spki
                | Attr::CaSpki
                | Attr::CaFingerprint
                | Attr::IssuerSpki
        )
    }

    /// Values that are dotted OIDs (`eku=` also takes names).
    pub fn is_oid_list(self) -> bool {
        matches!(self, Attr::Eku | Attr::Policy)
    }

    /// The whole subject or issuer DN.
    pub fn is_dn(self) -> bool {
        matches!(self, Attr::Subject | Attr::Issuer)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Subject => f.write_str("subject"),
            Attr::Issuer => f.write_str("issuer"),
            Attr::SubjectField(field) => write!(f, "subject.{}", field.short_name()),
            Attr::IssuerField(field) => write!(f, "issuer.{}", field.short_name()),
            Attr::SubjectOid(oid) => write!(f, "subject.{oid}"),
            Attr::IssuerOid(oid) => write!(f, "issuer.{oid}"),
            Attr::SanDns => f.write_str("san.dns"),
            Attr::SanEmail => f.write_str("san.email"),
            Attr::SanUri => f.write_str("san.uri"),
            Attr::SanIp => f.write_str("san.ip"),
            Attr::SanUpn => f.write_str("san.upn"),
            Attr::SanOther(oid) => write!(f, "san.other.{oid}"),
            Attr::Eku => f.write_str("eku"),
            Attr::Policy => f.write_str("policy"),
            Attr::Serial => f.write_str("serial"),
            Attr::Fingerprint => f.write_str("fingerprint"),
            Attr::Spki => f.write_str("spki"),
            Attr::CaSpki => f.write_str("ca.spki"),
            Attr::CaFingerprint => f.write_str("ca.fingerprint"),
            Attr::IssuerSpki => f.write_str("issuer.spki"),
        }
    }
}

/// The list of attribute names, for error messages.
pub fn known_names() -> String {
    let mut names: Vec<String> = vec!["subject".into(), "issuer".into()];
    let fields: Vec<&str> = NameField::all().map(NameField::short_name).collect();
    names.push(format!("subject.X and issuer.X for X in {} or a dotted OID", fields.join(", ")));
    names.extend(FIXED[..FIXED.len() - 1].iter().map(Attr::to_string));
    names.push("san.other.OID".into());
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_by_oid_agree_with_the_table() {
        let scan = |oid: &[u8]| TYPES.iter().position(|t| t.2 == oid).map(|i| NameField(i as u8));
        for (i, t) in TYPES.iter().enumerate() {
            assert_eq!(NameField::from_oid_bytes(t.2), Some(NameField(i as u8)), "{}", t.0);
        }
        for arc in 0..=255u8 {
            assert_eq!(NameField::from_oid_bytes(&[0x55, 0x04, arc]), scan(&[0x55, 0x04, arc]), "{arc}");
        }
        assert_eq!(NameField::from_oid_bytes(&[0x55, 0x04]), None);
        assert_eq!(NameField::from_oid_bytes(&[0x55, 0x04, 0x03, 0x01]), None);
    }

    #[test]
    fn names_round_trip_and_indexes_are_dense() {
        let mut all = Attr::all();
        for oid in ["1.2.3.4", "2.999.1", "1.3.6.1.4.1.99999.7"] {
            all.push(Attr::parse(&format!("subject.{oid}")).unwrap());
            all.push(Attr::parse(&format!("issuer.{oid}")).unwrap());
            all.push(Attr::parse(&format!("san.other.{oid}")).unwrap());
        }
        let mut seen = [false; ATTR_COUNT];
        for attr in &all {
            assert_eq!(Attr::parse(&attr.to_string()), Some(*attr));
            seen[attr.index()] = true;
        }
        assert!(seen.iter().all(|s| *s), "every slot is used");
        let fixed = Attr::all();
        for (i, a) in fixed.iter().enumerate() {
            assert!(fixed[..i].iter().all(|b| b.index() != a.index()), "{a} shares an index");
        }
        assert_eq!(Attr::parse("subject.cn"), None);
        assert_eq!(Attr::parse("subject.X"), None);
        assert_eq!(Attr::parse("san"), None);
        assert_eq!(Attr::parse("subject.2.5.4.3"), Attr::parse("subject.CN"));
        assert_eq!(Attr::parse("subject.givenName"), Attr::parse("subject.GN"));
        assert_eq!(Attr::parse("san.other.1.3.6.1.4.1.311.20.2.3"), Some(Attr::SanUpn));
        for bad in ["subject.1", "subject.3.1", "subject.1.40", "subject.1.02", "subject.1..2", "san.other."]
        {
            assert_eq!(Attr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn export_and_variable_names() {
        let attr = |name: &str| Attr::parse(name).unwrap();
        assert_eq!(attr("subject.O").export_name(), "CERT_AUTHZ_SUBJECT_O");
        assert_eq!(attr("san.uri").export_name(), "CERT_AUTHZ_SAN_URI");
        assert_eq!(attr("subject.2.5.4.3").export_name(), "CERT_AUTHZ_SUBJECT_CN");
        assert_eq!(attr("san.other.1.2.3.4").export_name(), "CERT_AUTHZ_SAN_OTHER_1_2_3_4");
        assert_eq!(attr("ca.spki").export_name(), "CERT_AUTHZ_CA_SPKI");
        let var = |name: &str| Attr::parse_variable(name).map(|(a, i)| (a.to_string(), i));
        assert_eq!(var("san_uri"), Some(("san.uri".into(), None)));
        assert_eq!(var("SAN_URI_1"), Some(("san.uri".into(), Some(1))));
        assert_eq!(var("subject_cn"), Some(("subject.CN".into(), None)));
        assert_eq!(var("subject_ou_0"), Some(("subject.OU".into(), Some(0))));
        assert_eq!(var("subject_givenname"), Some(("subject.GN".into(), None)));
        assert_eq!(var("subject_serialnumber"), Some(("subject.serialNumber".into(), None)));
        assert_eq!(var("issuer_spki"), Some(("issuer.spki".into(), None)));
        assert_eq!(var("issuer"), Some(("issuer".into(), None)));
        assert_eq!(var("subject_2_5_4_97"), Some(("subject.organizationIdentifier".into(), None)));
        assert_eq!(var("subject_1_2_3_4_0"), Some(("subject.1.2.3.4.0".into(), None)));
        assert_eq!(var("san_other_1_3_6_1_4_1_311_20_2_3"), Some(("san.upn".into(), None)));
        for bad in
            ["san", "subject_cm", "subject_cn_01", "subject_cn_", "cn", "san_uri_x", "subject_cn_999999"]
        {
            assert_eq!(var(bad), None, "{bad}");
        }
    }

    #[test]
    fn dotted_oids_encode_and_decode() {
        for text in ["2.5.4.97", "1.3.6.1.4.1.311.20.2.3", "2.999.3", "0.9.2342.19200300.100.1.1"] {
            let oid = Oid::from_dotted(text).unwrap();
            assert_eq!(dotted(oid.as_bytes()), text);
        }
        assert_eq!(Oid::from_dotted("1.3.6.1.4.1.311.20.2.3").unwrap().as_bytes(), OID_UPN);
        let long = format!("1.3{}", ".1234567".repeat(10));
        assert_eq!(Oid::from_dotted(&long), None);
    }
}
