//! What the fuzz targets of fuzz/ found, each kept as a test that failed
//! before its fix.  The inputs are rebuilt here from what made them fail,
//! not copied from the fuzzer's artifacts.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cert_authz::{compile_str, Attr, Identity, Peer, PolicyBuilder, Presented};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, KeyPair};

fn self_signed(subject: &[(DnType, &str)]) -> Vec<u8> {
    self_signed_with(subject, Vec::new())
}

fn self_signed_with(subject: &[(DnType, &str)], extensions: Vec<CustomExtension>) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in subject {
        params.distinguished_name.push(ty.clone(), DnValue::Utf8String((*value).into()));
    }
    params.custom_extensions = extensions;
    params.self_signed(&key).unwrap().der().to_vec()
}

/// An extension that is a SEQUENCE of the OIDs given by their content bytes
/// (extendedKeyUsage), or of SEQUENCEs of them (certificatePolicies).
fn oid_list_extension(oid: &[u64], items: &[&[u8]], wrapped: bool) -> CustomExtension {
    let tlv = |tag: u8, content: &[u8]| {
        assert!(content.len() < 0x80);
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    };
    let mut seq = Vec::new();
    for item in items {
        let oid = tlv(0x06, item);
        seq.extend(if wrapped { tlv(0x30, &oid) } else { oid });
    }
    CustomExtension::from_oid_content(oid, tlv(0x30, &seq))
}

/// Replaces one run of bytes by another of the same length.
fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = der.windows(from.len()).position(|w| w == from).expect("bytes to patch");
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
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

/// policy_compile: a policy of inline statements only (a server's
/// directives) with no allow or deny was reported at line 1 of the file
/// the directives are in, not at the directive's own line.
#[test]
fn a_policy_without_rules_is_reported_where_its_first_statement_is() {
    let mut builder = PolicyBuilder::new();
    builder.add_statement("require key ec", "/etc/apache2/sites-enabled/app.conf", 57);
    builder.add_statement("# nothing", "/etc/apache2/sites-enabled/app.conf", 58);
    let errors = builder.build().err().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "/etc/apache2/sites-enabled/app.conf:57:1: the policy has no allow or deny statement, so it would \
         refuse everything"
    );

    // A file still points at its own start.
    let dir = std::env::temp_dir().join(format!("cert-authz-fuzz-regression-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("empty.policy");
    std::fs::write(&file, "").unwrap();
    let errors = cert_authz::compile_file(&file).err().unwrap();
    assert_eq!(errors[0].line, 1);
    assert_eq!(errors[0].col, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// policy_compile: a `\` ending an inline statement's last line counted a
/// line that is not there, which overflowed for a statement at line
/// u32::MAX (a panic where overflow is checked, as in the fuzz build; the
/// wrapped count was never used after it).  The release build cannot see
/// the overflow, so the input is also in the fuzz seed corpus
/// (fuzz/seeds/policy_compile/trailing-backslash-at-last-line), which
/// `make fuzz` replays with overflow checks.
#[test]
fn a_trailing_backslash_on_the_last_possible_line_is_one_statement() {
    let mut builder = PolicyBuilder::new();
    builder.add_statement("allow GET /x any \\", "server.conf", u32::MAX);
    assert_eq!(builder.build().unwrap().rule_count(), 1);

    let mut builder = PolicyBuilder::new();
    builder.add_statement("allow GET /x subject.XX=a \\", "server.conf", u32::MAX);
    let errors = builder.build().err().unwrap();
    assert_eq!(errors[0].line, u32::MAX);
}

/// cert_identity: an OID arc beyond 64 bits wrapped when written as dotted
/// text, and an arc with a leading 0x80 byte (not DER) read as the shorter
/// one, so an extendedKeyUsage or certificatePolicies OID that is not
/// clientAuth (or not the policy) was shown as it and matched `eku=` and
/// `policy=` statements written for it.  Such a certificate is refused.
#[test]
fn an_oid_that_dotted_text_cannot_be_exactly_is_refused() {
    const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
    // 1.3.6.1.5.5.7.3.(2^64 + 2) and 1.3.6.1.5.5.7.3.2 with the 2 written long.
    const WRAPPED: &[u8] = &[
        0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
    ];
    const LONG_FORM: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x80, 0x02];
    const EKU: &[u64] = &[2, 5, 29, 37];
    const POLICIES: &[u64] = &[2, 5, 29, 32];
    let allows = |der: &[u8], policy: &str| {
        let identity = Identity::from_der(der).unwrap();
        compile_str(policy, "p.policy").unwrap().decide(Peer::Verified(&identity), "GET", "/x").allowed
    };

    let real =
        self_signed_with(&[(DnType::CommonName, "a")], vec![oid_list_extension(EKU, &[CLIENT_AUTH], false)]);
    assert!(allows(&real, "allow GET /x eku=clientAuth"));
    for fake in [WRAPPED, LONG_FORM] {
        let der =
            self_signed_with(&[(DnType::CommonName, "a")], vec![oid_list_extension(EKU, &[fake], false)]);
        let why = Identity::from_der(&der).expect_err("an EKU OID that reads as clientAuth was accepted");
        assert!(why.0.contains("extendedKeyUsage"), "{why}");
        let der =
            self_signed_with(&[(DnType::CommonName, "a")], vec![oid_list_extension(POLICIES, &[fake], true)]);
        assert!(Identity::from_der(&der).is_err(), "a policy OID that reads as another was accepted");
    }

    // In a name, an attribute type cut short (its last byte still
    // continues) is refused too, not shown as the OID it is not.
    let private = DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]);
    let der = self_signed(&[(DnType::CommonName, "a"), (private, "x")]);
    let oid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01];
    assert!(Identity::from_der(&der).is_ok());
    let cut = patch(&der, &oid, &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x81]);
    let why = Identity::from_der(&cut).expect_err("a cut-short OID in a name was accepted");
    assert!(why.0.contains("is cut short"), "{why}");
}

/// cert_identity: the whole-DN text named an attribute type without a
/// short name by x509-parser's text for its OID, which writes 0.0 as `0`:
/// the `subject=` value that `show` printed was not a policy value at all.
/// The type is written as every other OID is.
#[test]
fn a_subject_shown_with_an_unnamed_type_is_a_policy_value_that_matches() {
    let der = self_signed(&[(DnType::CommonName, "a"), (DnType::CustomDnType(vec![0, 0]), "x")]);
    let identity = Identity::from_der(&der).unwrap();
    let shown = identity.values(Attr::Subject)[0].to_string();
    assert_eq!(shown, "0.0=x,CN=a");
    let policy = compile_str(&format!("allow GET /x subject=\"{shown}\" subject.0.0=x"), "p.policy").unwrap();
    assert!(policy.decide(Peer::Verified(&identity), "GET", "/x").allowed);
}
