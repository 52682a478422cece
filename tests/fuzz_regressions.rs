//! What the fuzz targets of fuzz/ found, each kept as a test that failed
//! before its fix.  The inputs are rebuilt here from what made them fail,
//! not copied from the fuzzer's artifacts.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cert_authz::{Attr, Identity, Presented};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

fn self_signed(subject: &[(DnType, &str)]) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in subject {
        params.distinguished_name.push(ty.clone(), DnValue::Utf8String((*value).into()));
    }
    params.self_signed(&key).unwrap().der().to_vec()
}

fn cn(identity: &Identity) -> Vec<String> {
    identity.values(Attr::parse("subject.CN").unwrap()).iter().map(|v| v.to_string()).collect()
}

/// cert_identity: a DER certificate with `-----BEGIN` in a name was taken
/// for PEM, so `Presented::is_same` did not know it as itself (a server's
/// cache would read it again each time; harmless, but wrong).
#[test]
fn a_der_certificate_with_begin_in_a_name_is_the_same_as_itself() {
    let der = self_signed(&[(DnType::CommonName, "-----BEGIN CERTIFICATE-----")]);
    let presented = Presented::from_der(&der);
    assert_eq!(cn(presented.identity().unwrap()), ["-----BEGIN CERTIFICATE-----"]);
    assert!(presented.is_same(&der));

    // Refused for its trailing bytes, it still keeps them, and knows them.
    let mut trailing = der.clone();
    trailing.extend_from_slice(b"-----BEGIN");
    let refused = Presented::from_der(&trailing);
    assert!(refused.refusal().is_some());
    assert!(refused.is_same(&trailing));
    assert!(!refused.is_same(&der));
}

/// cert_identity: a DER certificate whose name holds a whole PEM block of
/// another certificate was read, by `from_pem_or_der` (the CLI's `--cert`),
/// as that other certificate: `cert-authz check` would have shown the
/// decision for an identity that is not the one presented.
#[test]
fn a_der_certificate_holding_a_pem_block_is_read_as_itself() {
    let inner = self_signed(&[(DnType::CommonName, "inner")]);
    let pem_line = format!("-----BEGIN CERTIFICATE-----{}-----END CERTIFICATE-----", BASE64.encode(&inner));
    let outer =
        self_signed(&[(DnType::CommonName, "outer"), (DnType::OrganizationalUnitName, pem_line.as_str())]);

    let read = Identity::from_pem_or_der(&outer).unwrap();
    assert_eq!(cn(&read), ["outer"]);
    let presented = Presented::from_pem_or_der(&outer);
    assert_eq!(cn(presented.identity().unwrap()), ["outer"]);
    assert!(presented.is_same(&outer));

    // A PEM file of the outer certificate is still PEM, and the same one.
    let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", BASE64.encode(&outer));
    assert_eq!(cn(&Identity::from_pem_or_der(pem.as_bytes()).unwrap()), ["outer"]);
    assert!(presented.is_same(pem.as_bytes()));
}
