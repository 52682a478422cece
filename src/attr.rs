//! The attributes of an identity that a policy can name.

use std::fmt;

/// A field of a distinguished name that a policy can name on its own, as
/// `subject.CN` or `issuer.O`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NameField {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    State,
    Locality,
    EmailAddress,
    SerialNumber,
    UserId,
    DomainComponent,
}

/// Every name field, in the order `cert-authz show` prints them.
pub const NAME_FIELDS: [NameField; 10] = [
    NameField::CommonName,
    NameField::Organization,
    NameField::OrganizationalUnit,
    NameField::Country,
    NameField::State,
    NameField::Locality,
    NameField::EmailAddress,
    NameField::SerialNumber,
    NameField::UserId,
    NameField::DomainComponent,
];

impl NameField {
    /// The short name used in policies and in RFC 4514 text.
    pub fn short_name(self) -> &'static str {
        match self {
            NameField::CommonName => "CN",
            NameField::Organization => "O",
            NameField::OrganizationalUnit => "OU",
            NameField::Country => "C",
            NameField::State => "ST",
            NameField::Locality => "L",
            NameField::EmailAddress => "emailAddress",
            NameField::SerialNumber => "serialNumber",
            NameField::UserId => "UID",
            NameField::DomainComponent => "DC",
        }
    }

    fn from_short_name(name: &str) -> Option<NameField> {
        NAME_FIELDS.iter().copied().find(|f| f.short_name() == name)
    }

    fn index(self) -> usize {
        NAME_FIELDS.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// An attribute of an identity, as named in a policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    /// The whole subject DN, compared as a parsed structure.
    Subject,
    /// The whole issuer DN.
    Issuer,
    SubjectField(NameField),
    IssuerField(NameField),
    SanDns,
    SanEmail,
    SanUri,
    SanIp,
    Serial,
    Fingerprint,
    Spki,
}

/// How many distinct attributes there are (the size of per-attribute tables).
pub const ATTR_COUNT: usize = 2 + 2 * NAME_FIELDS.len() + 7;

impl Attr {
    /// Parses an attribute name such as `subject.CN` or `san.uri`.
    pub fn parse(name: &str) -> Option<Attr> {
        match name {
            "subject" => return Some(Attr::Subject),
            "issuer" => return Some(Attr::Issuer),
            "san.dns" => return Some(Attr::SanDns),
            "san.email" => return Some(Attr::SanEmail),
            "san.uri" => return Some(Attr::SanUri),
            "san.ip" => return Some(Attr::SanIp),
            "serial" => return Some(Attr::Serial),
            "fingerprint" => return Some(Attr::Fingerprint),
            "spki" => return Some(Attr::Spki),
            _ => {}
        }
        if let Some(field) = name.strip_prefix("subject.") {
            return NameField::from_short_name(field).map(Attr::SubjectField);
        }
        if let Some(field) = name.strip_prefix("issuer.") {
            return NameField::from_short_name(field).map(Attr::IssuerField);
        }
        None
    }

    /// A dense number for tables indexed by attribute, below ATTR_COUNT.
    pub fn index(self) -> usize {
        let fields = NAME_FIELDS.len();
        match self {
            Attr::Subject => 0,
            Attr::Issuer => 1,
            Attr::SubjectField(f) => 2 + f.index(),
            Attr::IssuerField(f) => 2 + fields + f.index(),
            Attr::SanDns => 2 + 2 * fields,
            Attr::SanEmail => 3 + 2 * fields,
            Attr::SanUri => 4 + 2 * fields,
            Attr::SanIp => 5 + 2 * fields,
            Attr::Serial => 6 + 2 * fields,
            Attr::Fingerprint => 7 + 2 * fields,
            Attr::Spki => 8 + 2 * fields,
        }
    }

    /// Every attribute, in the order `cert-authz show` prints them.
    pub fn all() -> Vec<Attr> {
        let mut all = vec![Attr::Subject];
        all.extend(NAME_FIELDS.iter().map(|f| Attr::SubjectField(*f)));
        all.push(Attr::Issuer);
        all.extend(NAME_FIELDS.iter().map(|f| Attr::IssuerField(*f)));
        all.extend([
            Attr::SanDns,
            Attr::SanEmail,
            Attr::SanUri,
            Attr::SanIp,
            Attr::Serial,
            Attr::Fingerprint,
            Attr::Spki,
        ]);
        all
    }

    /// Values compared as hex digits (colons and case ignored).
    pub fn is_hex(self) -> bool {
        matches!(self, Attr::Serial | Attr::Fingerprint | Attr::Spki)
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
            Attr::SanDns => f.write_str("san.dns"),
            Attr::SanEmail => f.write_str("san.email"),
            Attr::SanUri => f.write_str("san.uri"),
            Attr::SanIp => f.write_str("san.ip"),
            Attr::Serial => f.write_str("serial"),
            Attr::Fingerprint => f.write_str("fingerprint"),
            Attr::Spki => f.write_str("spki"),
        }
    }
}

/// The list of attribute names, for error messages.
pub fn known_names() -> String {
    Attr::all().iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indexes_are_dense() {
        let all = Attr::all();
        assert_eq!(all.len(), ATTR_COUNT);
        let mut seen = [false; ATTR_COUNT];
        for attr in all {
            assert_eq!(Attr::parse(&attr.to_string()), Some(attr));
            assert!(!seen[attr.index()], "{attr} shares an index");
            seen[attr.index()] = true;
        }
        assert_eq!(Attr::parse("subject.cn"), None);
        assert_eq!(Attr::parse("subject.X"), None);
        assert_eq!(Attr::parse("san"), None);
    }
}
