//! Distinguished names as parsed structures: RFC 4514 text in and out, and
//! a canonical key that compares two names RDN by RDN, never as display
//! strings (a CN of `alice,O=Example Corp` stays one CN).

use std::borrow::Cow;

/// Attribute types with a short name: (short name, dotted OID, OID content
/// bytes as they appear in DER).  Other types are named by dotted OID.
pub(crate) const TYPES: &[(&str, &str, &[u8])] = &[
    // The first ten in the order `cert-authz show` has always printed them.
    ("CN", "2.5.4.3", &[0x55, 0x04, 0x03]),
    ("O", "2.5.4.10", &[0x55, 0x04, 0x0a]),
    ("OU", "2.5.4.11", &[0x55, 0x04, 0x0b]),
    ("C", "2.5.4.6", &[0x55, 0x04, 0x06]),
    ("ST", "2.5.4.8", &[0x55, 0x04, 0x08]),
    ("L", "2.5.4.7", &[0x55, 0x04, 0x07]),
    ("emailAddress", "1.2.840.113549.1.9.1", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
    ("serialNumber", "2.5.4.5", &[0x55, 0x04, 0x05]),
    ("UID", "0.9.2342.19200300.100.1.1", &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01]),
    ("DC", "0.9.2342.19200300.100.1.25", &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]),
    // The other X.520 string types, by OpenSSL's short names.
    ("SN", "2.5.4.4", &[0x55, 0x04, 0x04]),
    ("GN", "2.5.4.42", &[0x55, 0x04, 0x2a]),
    ("initials", "2.5.4.43", &[0x55, 0x04, 0x2b]),
    ("generationQualifier", "2.5.4.44", &[0x55, 0x04, 0x2c]),
    ("title", "2.5.4.12", &[0x55, 0x04, 0x0c]),
    ("pseudonym", "2.5.4.65", &[0x55, 0x04, 0x41]),
    ("name", "2.5.4.41", &[0x55, 0x04, 0x29]),
    ("dnQualifier", "2.5.4.46", &[0x55, 0x04, 0x2e]),
    ("description", "2.5.4.13", &[0x55, 0x04, 0x0d]),
    ("street", "2.5.4.9", &[0x55, 0x04, 0x09]),
    ("postalCode", "2.5.4.17", &[0x55, 0x04, 0x11]),
    ("postOfficeBox", "2.5.4.18", &[0x55, 0x04, 0x12]),
    ("houseIdentifier", "2.5.4.51", &[0x55, 0x04, 0x33]),
    ("telephoneNumber", "2.5.4.20", &[0x55, 0x04, 0x14]),
    ("businessCategory", "2.5.4.15", &[0x55, 0x04, 0x0f]),
    ("organizationIdentifier", "2.5.4.97", &[0x55, 0x04, 0x61]),
    ("dmdName", "2.5.4.54", &[0x55, 0x04, 0x36]),
    ("countryCode3c", "2.5.4.98", &[0x55, 0x04, 0x62]),
    ("countryCode3n", "2.5.4.99", &[0x55, 0x04, 0x63]),
    // PKCS #9, and the EV jurisdiction types (1.3.6.1.4.1.311.60.2.1.x).
    ("unstructuredName", "1.2.840.113549.1.9.2", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02]),
    ("unstructuredAddress", "1.2.840.113549.1.9.8", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x08]),
    (
        "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.1",
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01],
    ),
    (
        "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.2",
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02],
    ),
    (
        "jurisdictionC",
        "1.3.6.1.4.1.311.60.2.1.3",
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03],
    ),
];

/// The short name for an OID given by its DER content bytes, if it has one.
pub fn short_name_for_oid_bytes(oid: &[u8]) -> Option<&'static str> {
    TYPES.iter().find(|(_, _, der)| *der == oid).map(|(name, _, _)| *name)
}

/// The canonical name of an attribute type written in a policy: a known
/// short name (any case) or dotted OID becomes the short name; any other
/// dotted OID stays as it is.
fn canonical_type(written: &str) -> Option<AttrType> {
    if let Some((name, _, _)) =
        TYPES.iter().find(|(name, oid, _)| name.eq_ignore_ascii_case(written) || *oid == written)
    {
        return Some(Cow::Borrowed(name));
    }
    let dotted = !written.is_empty()
        && written.split('.').count() >= 2
        && written.split('.').all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    dotted.then(|| Cow::Owned(written.to_string()))
}

/// An attribute type: a short name, or a dotted OID.
pub type AttrType = Cow<'static, str>;

/// One relative distinguished name: one or more (type, value) pairs.
pub type Rdn = Vec<(AttrType, String)>;

/// A distinguished name, most specific RDN first (as RFC 4514 writes it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dn {
    pub rdns: Vec<Rdn>,
}

// Separators of the canonical key.  Values never hold control characters
// (identities with them are refused, policy values with them rejected), so
// the key is unambiguous.
const PAIR_SEP: char = '\u{1f}';
const RDN_SEP: char = '\u{1e}';

impl Dn {
    /// A key equal for two names exactly when they have the same RDNs in the
    /// same order, each with the same set of (type, value) pairs.
    pub fn canonical_key(&self) -> String {
        let mut key = String::new();
        write_canonical_key(self.borrowed(), &mut key);
        key
    }

    /// RFC 4514 text, as `openssl x509 -nameopt RFC2253` prints it (but with
    /// UTF-8 left as UTF-8).
    pub fn to_rfc4514(&self) -> String {
        let mut out = String::new();
        write_rfc4514(self.borrowed(), &mut out);
        out
    }

    fn borrowed(&self) -> impl Iterator<Item = impl Iterator<Item = (&str, &str)>> {
        self.rdns.iter().map(|rdn| rdn.iter().map(|(ty, value)| (ty.as_ref(), value.as_str())))
    }

    /// Parses RFC 4514 text.  Accepts `\` followed by a special character or
    /// by two hex digits (as openssl prints UTF-8 bytes), and spaces after a
    /// separator.  Errors name the byte offset of the problem.
    pub fn parse_rfc4514(text: &str) -> Result<Dn, (usize, String)> {
        let bytes = text.as_bytes();
        let mut rdns = Vec::new();
        let mut pos = 0;
        if text.trim().is_empty() {
            return Ok(Dn { rdns });
        }
        let mut rdn: Rdn = Vec::new();
        loop {
            while pos < bytes.len() && bytes[pos] == b' ' {
                pos += 1;
            }
            let type_start = pos;
            while pos < bytes.len() && bytes[pos] != b'=' && bytes[pos] != b',' && bytes[pos] != b'+' {
                pos += 1;
            }
            if pos >= bytes.len() || bytes[pos] != b'=' {
                return Err((type_start, "expected TYPE=VALUE in the distinguished name".into()));
            }
            let written = text[type_start..pos].trim();
            let ty = canonical_type(written).ok_or_else(|| {
                (type_start, format!("unknown attribute type `{written}` in the distinguished name"))
            })?;
            pos += 1;
            let value_start = pos;
            let mut value: Vec<u8> = Vec::new();
            // Length of `value` up to its last escaped byte: spaces after it
            // are significant, unescaped trailing spaces are not.
            let mut keep = 0;
            while pos < bytes.len() && bytes[pos] != b',' && bytes[pos] != b'+' {
                if bytes[pos] == b'\\' {
                    let next = *bytes.get(pos + 1).ok_or((pos, "a `\\` ends the value".to_string()))?;
                    // Two hex digits, strictly: from_str_radix alone would
                    // also take `+1` as a number.
                    let hex = bytes
                        .get(pos + 1..pos + 3)
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(byte) = hex {
                        value.push(byte);
                        pos += 3;
                    } else if b",+\"\\<>;=# ".contains(&next) {
                        value.push(next);
                        pos += 2;
                    } else {
                        return Err((pos, format!("`\\{}` is not an escape", next as char)));
                    }
                    keep = value.len();
                } else {
                    if value.is_empty() && bytes[pos] == b'#' {
                        return Err((pos, "hex-encoded (`#...`) values are not supported".into()));
                    }
                    if !(value.is_empty() && bytes[pos] == b' ') {
                        value.push(bytes[pos]);
                        if bytes[pos] != b' ' {
                            keep = value.len();
                        }
                    }
                    pos += 1;
                }
            }
            value.truncate(keep);
            let value =
                String::from_utf8(value).map_err(|_| (value_start, "the value is not UTF-8".to_string()))?;
            if value.chars().any(char::is_control) {
                return Err((value_start, "control characters never match".into()));
            }
            rdn.push((ty, value));
            if pos >= bytes.len() {
                rdns.push(rdn);
                break;
            }
            if bytes[pos] == b',' {
                rdns.push(std::mem::take(&mut rdn));
            }
            pos += 1;
            if pos >= bytes.len() {
                return Err((pos, "the distinguished name ends with a separator".into()));
            }
        }
        Ok(Dn { rdns })
    }
}

/// Writes the RFC 4514 text of a name given as its RDNs, most specific
/// first, each as its (type, value) pairs: what `Dn::to_rfc4514` returns,
/// for callers that hold the values elsewhere.
pub fn write_rfc4514<'a, P>(rdns: impl Iterator<Item = P>, out: &mut String)
where
    P: Iterator<Item = (&'a str, &'a str)>,
{
    for (i, rdn) in rdns.enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (ty, value)) in rdn.enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(ty);
            out.push('=');
            escape_value(value, out);
        }
    }
}

/// Writes the canonical key (`Dn::canonical_key`) of a name given as for
/// `write_rfc4514`.
pub fn write_canonical_key<'a, P>(rdns: impl Iterator<Item = P>, key: &mut String)
where
    P: Iterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (i, rdn) in rdns.enumerate() {
        if i > 0 {
            key.push(RDN_SEP);
        }
        pairs.clear();
        pairs.extend(rdn);
        pairs.sort();
        for (j, (ty, value)) in pairs.iter().enumerate() {
            if j > 0 {
                key.push(PAIR_SEP);
            }
            key.push_str(ty);
            key.push('=');
            key.push_str(value);
        }
    }
}

fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_rfc4514() {
        let dn = Dn::parse_rfc4514("CN=alice\\,O=Example Corp,O=Example Corp,C=DE").unwrap();
        assert_eq!(dn.rdns.len(), 3);
        assert_eq!(dn.rdns[0], vec![("CN".into(), "alice,O=Example Corp".to_string())]);
        assert_eq!(dn.to_rfc4514(), "CN=alice\\,O=Example Corp,O=Example Corp,C=DE");
    }

    #[test]
    fn multi_valued_rdns_compare_as_sets_and_order_of_rdns_matters() {
        let a = Dn::parse_rfc4514("CN=a+UID=7,O=x").unwrap();
        let b = Dn::parse_rfc4514("uid=7+cn=a, O=x").unwrap();
        let c = Dn::parse_rfc4514("O=x,CN=a+UID=7").unwrap();
        let d = Dn::parse_rfc4514("CN=a,UID=7,O=x").unwrap();
        assert_eq!(a.canonical_key(), b.canonical_key());
        assert_ne!(a.canonical_key(), c.canonical_key());
        assert_ne!(a.canonical_key(), d.canonical_key());
    }

    #[test]
    fn hex_escapes_decode_utf8_and_oids_map_to_names() {
        let dn = Dn::parse_rfc4514("2.5.4.3=J\\C3\\BCrgen,1.2.3.4=x").unwrap();
        assert_eq!(dn.rdns[0][0], ("CN".into(), "Jürgen".to_string()));
        assert_eq!(dn.rdns[1][0].0, "1.2.3.4");
        // `\+` followed by a digit is an escaped `+`, not a hex pair.
        let plus = Dn::parse_rfc4514("CN=a\\+1,O=x").unwrap();
        assert_eq!(plus.rdns[0][0].1, "a+1");
    }

    #[test]
    fn the_type_table_agrees_with_itself() {
        for (i, (name, dotted, der)) in TYPES.iter().enumerate() {
            assert_eq!(crate::attr::Oid::from_dotted(dotted).unwrap().as_bytes(), *der, "{name}");
            assert!(TYPES[..i].iter().all(|t| !t.0.eq_ignore_ascii_case(name) && t.2 != *der), "{name}");
        }
    }

    #[test]
    fn rejects_broken_names() {
        for bad in ["CN", "CN=a,", "XX=a", "CN=#0403", "CN=a\\q", "CN=a\\00b"] {
            assert!(Dn::parse_rfc4514(bad).is_err(), "{bad} parsed");
        }
    }
}
