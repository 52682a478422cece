//! What the fuzz targets of fuzz/ found, each kept as a test that failed
//! before its fix.  The inputs are rebuilt here from what made them fail,
//! not copied from the fuzzer's artifacts.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cert_authz::{Attr, Identity, PolicyBuilder, Presented};
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
