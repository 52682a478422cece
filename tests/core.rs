//! The core, through its Rust API: identities from generated certificates,
//! every attribute and pattern form, precedence, errors and hostile
//! certificates.

use std::process::Command;
use std::sync::OnceLock;

use cert_authz::{compile_str, Attr, Identity, KeyKind, Peer, Policy, Presented, Reason};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair, SanType,
    SerialNumber, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};

/// The CA all test certificates are issued by.
fn ca() -> &'static (CertificateParams, KeyPair) {
    static CA: OnceLock<(CertificateParams, KeyPair)> = OnceLock::new();
    CA.get_or_init(|| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
        params.distinguished_name.push(DnType::CommonName, "Example Users CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (params, key)
    })
}

struct Spec {
    subject: Vec<(DnType, DnValue)>,
    sans: Vec<SanType>,
    days: i64,
    alg: &'static SignatureAlgorithm,
    serial: Option<Vec<u8>>,
}

impl Spec {
    fn cn(cn: &str) -> Spec {
        Spec {
            subject: vec![(DnType::CommonName, DnValue::Utf8String(cn.into()))],
            sans: Vec::new(),
            days: 30,
            alg: &PKCS_ECDSA_P256_SHA256,
            serial: None,
        }
    }

    fn der(&self) -> Vec<u8> {
        let key = KeyPair::generate_for(self.alg).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        for (ty, value) in &self.subject {
            dn.push(ty.clone(), value.clone());
        }
        params.distinguished_name = dn;
        params.subject_alt_names = self.sans.clone();
        params.serial_number = self.serial.clone().map(SerialNumber::from);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now - time::Duration::hours(1) + time::Duration::days(self.days);
        let (ca_params, ca_key) = ca();
        let issuer = Issuer::from_params(ca_params, ca_key);
        params.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    fn identity(&self) -> Identity {
        Identity::from_der(&self.der()).expect("the test certificate parses")
    }
}

/// A self-signed certificate made by the openssl CLI, for name forms rcgen
/// cannot write (multi-valued RDNs, repeated attributes, RSA keys).
fn openssl_der(subject: &str, extra: &[&str]) -> Vec<u8> {
    // One file pair per call: tests run on several threads, and two
    // subjects of one length once shared a name (and read each other's).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cert-authz-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{n}.der"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "30", "-outform", "DER", "-subj", subject])
        .arg("-keyout")
        .arg(dir.join(format!("{n}.key")))
        .arg("-out")
        .arg(&out)
        .args(extra);
    if !extra.contains(&"-newkey") {
        cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    let status = cmd.output().expect("running openssl");
    assert!(status.status.success(), "openssl failed: {}", String::from_utf8_lossy(&status.stderr));
    std::fs::read(out).unwrap()
}

/// Replaces one run of bytes in a DER with another of the same length (the
/// signature no longer verifies, which the core does not check anyway).
fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = der.windows(from.len()).position(|w| w == from).expect("bytes to patch");
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

fn policy(text: &str) -> Policy {
    compile_str(text, "test.policy").unwrap_or_else(|e| panic!("policy failed: {e:?}"))
}

fn allows(policy: &Policy, identity: &Identity, method: &str, path: &str) -> bool {
    policy.decide(Peer::Verified(identity), method, path).allowed
}

fn errors(text: &str) -> Vec<String> {
    match compile_str(text, "bad.policy") {
        Ok(_) => panic!("policy compiled:\n{text}"),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn full_identity() -> Identity {
    let mut spec = Spec::cn("alice");
    spec.subject = vec![
        (DnType::CountryName, DnValue::PrintableString("DE".try_into().unwrap())),
        (DnType::StateOrProvinceName, "Berlin".into()),
        (DnType::LocalityName, "Berlin".into()),
        (DnType::OrganizationName, "Example Corp".into()),
        (DnType::OrganizationalUnitName, "dev".into()),
        (DnType::CustomDnType(vec![2, 5, 4, 5]), "4711".into()),
        (DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]), "alice01".into()),
        (
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            DnValue::Ia5String("example".try_into().unwrap()),
        ),
        (
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            DnValue::Ia5String("alice@example.org".try_into().unwrap()),
        ),
        (DnType::CommonName, "alice".into()),
    ];
    spec.sans = vec![
        SanType::DnsName("API.example.org".try_into().unwrap()),
        SanType::DnsName("alice.example.org".try_into().unwrap()),
        SanType::Rfc822Name("alice@example.org".try_into().unwrap()),
        SanType::URI("spiffe://example.org/ns/prod/sa/alice".try_into().unwrap()),
        SanType::IpAddress("127.0.0.1".parse().unwrap()),
        SanType::IpAddress("::1".parse().unwrap()),
    ];
    spec.serial = Some(vec![0x4f, 0x2a, 0x00, 0x91]);
    spec.identity()
}

#[test]
fn every_attribute_is_read_from_the_parsed_certificate() {
    let id = full_identity();
    let values = |attr: &str| -> Vec<String> {
        id.values(Attr::parse(attr).unwrap()).iter().map(|v| v.to_string()).collect()
    };
    assert_eq!(values("subject.CN"), ["alice"]);
    assert_eq!(values("subject.O"), ["Example Corp"]);
    assert_eq!(values("subject.C"), ["DE"]);
    assert_eq!(values("subject.ST"), ["Berlin"]);
    assert_eq!(values("subject.L"), ["Berlin"]);
    assert_eq!(values("subject.serialNumber"), ["4711"]);
    assert_eq!(values("subject.UID"), ["alice01"]);
    assert_eq!(values("subject.DC"), ["example"]);
    assert_eq!(values("subject.emailAddress"), ["alice@example.org"]);
    assert_eq!(values("issuer.CN"), ["Example Users CA"]);
    assert_eq!(values("issuer.O"), ["Example Corp"]);
    assert_eq!(values("san.dns"), ["api.example.org", "alice.example.org"]);
    assert_eq!(values("san.email"), ["alice@example.org"]);
    assert_eq!(values("san.uri"), ["spiffe://example.org/ns/prod/sa/alice"]);
    assert_eq!(values("san.ip"), ["127.0.0.1", "::1"]);
    assert_eq!(values("serial"), ["4F2A0091"]);
    assert_eq!(values("issuer"), ["CN=Example Users CA,O=Example Corp"]);
    assert_eq!(values("fingerprint")[0].len(), 64);
    assert_eq!(values("spki")[0].len(), 64);
    // rcgen keeps one value per type; several values are tested with openssl.
    assert_eq!(values("subject.OU"), ["dev"]);
    assert!(values("subject")[0].starts_with("CN=alice,"), "{:?}", values("subject"));
    assert_eq!(id.key, KeyKind::Ec(256));
}

#[test]
fn every_attribute_matches_in_a_policy() {
    let id = full_identity();
    let fp = id.values(Attr::Fingerprint)[0].to_string();
    let spki = id.values(Attr::Spki)[0].to_string();
    let colon_fp: String = fp
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(":");
    let subject = id.values(Attr::Subject)[0].to_string();
    let matching = [
        "subject.CN=alice".to_string(),
        "subject.O=\"Example Corp\"".into(),
        "subject.OU=dev".into(),
        "subject.C=DE".into(),
        "subject.ST=Berlin".into(),
        "subject.L=Berlin".into(),
        "subject.serialNumber=4711".into(),
        "subject.UID=alice01".into(),
        "subject.DC=example".into(),
        "subject.emailAddress=alice@example.org".into(),
        "issuer.CN=\"Example Users CA\"".into(),
        "issuer.O=\"Example Corp\"".into(),
        "issuer=\"CN=Example Users CA,O=Example Corp\"".into(),
        format!("subject=\"{subject}\""),
        "san.dns=API.EXAMPLE.ORG".into(),
        "san.dns=*.example.org".into(),
        "san.email=alice@example.org".into(),
        "san.uri=spiffe://example.org/ns/prod/*".into(),
        "san.ip=::1".into(),
        "san.ip=127.0.0.1".into(),
        "serial=4f:2a:00:91".into(),
        "serial=004F2A0091".into(),
        format!("fingerprint={colon_fp}"),
        format!("spki={spki}"),
        "subject.CN=ali*".into(),
        "subject.CN=*".into(),
    ];
    for matcher in &matching {
        let p = policy(&format!("allow GET /x {matcher}"));
        assert!(allows(&p, &id, "GET", "/x"), "{matcher} should match");
    }
    let not_matching = [
        "subject.CN=Alice",
        "subject.CN=alic",
        "subject.O=Example",
        "issuer.CN=alice",
        "issuer=\"O=Example Corp,CN=Example Users CA\"",
        "san.dns=*.org",
        "san.dns=example.org",
        "san.uri=spiffe://example.org/ns/prod",
        "san.ip=127.0.0.2",
        "serial=4F2A0092",
        "subject.CN=alice\\*",
        "subject.emailAddress=ALICE@example.org",
    ];
    for matcher in not_matching {
        let p = policy(&format!("allow GET /x {matcher}"));
        assert!(!allows(&p, &id, "GET", "/x"), "{matcher} should not match");
    }
}

#[test]
fn methods_and_paths() {
    let id = Spec::cn("alice").identity();
    let p = policy(
        "allow GET /status any\n\
         allow GET,POST /api/*/items any\n\
         allow * /admin/** any\n\
         allow PUT /users/{subject.CN}/** any\n\
         allow DELETE / any\n",
    );
    let cases: &[(bool, &str, &str)] = &[
        (true, "GET", "/status"),
        (true, "HEAD", "/status"),
        (true, "GET", "/status/"),
        (false, "POST", "/status"),
        (false, "GET", "/status/x"),
        (false, "GET", "/Status"),
        (true, "POST", "/api/v1/items"),
        (false, "POST", "/api/items"),
        (false, "POST", "/api/v1/v2/items"),
        (true, "PATCH", "/admin"),
        (true, "PATCH", "/admin/"),
        (true, "PATCH", "/admin/a/b/c"),
        (false, "PATCH", "/administrator"),
        (true, "PUT", "/users/alice"),
        (true, "PUT", "/users/alice/x"),
        (false, "PUT", "/users/bob/x"),
        (true, "DELETE", "/"),
        (false, "DELETE", "/x"),
        // Paths a module cannot read unambiguously.
        (false, "PATCH", "/admin//x"),
        (false, "PATCH", "/admin/./x"),
        (false, "PATCH", "/admin/../admin/x"),
        (false, "PATCH", "/admin/x\0"),
        (false, "PATCH", ""),
        (false, "PATCH", "admin"),
        (false, "PATCH", "//"),
        (false, "GET\r", "/status"),
    ];
    for (want, method, path) in cases {
        assert_eq!(allows(&p, &id, method, path), *want, "{method} {path:?}");
    }
    assert_eq!(p.decide(Peer::Verified(&id), "GET", "/a//b").reason, Reason::BadPath);
}

#[test]
fn deny_beats_allow_whatever_the_order_and_the_first_written_decides() {
    let id = Spec::cn("alice").identity();
    let statements = [
        "allow * /** subject.CN=alice",
        "deny * /secret/** any",
        "allow GET /secret/open subject.CN=alice",
        "deny DELETE /** subject.CN=ali*",
    ];
    let mut order: Vec<usize> = (0..statements.len()).collect();
    for round in 0..8 {
        order.rotate_left(1);
        if round % 2 == 1 {
            order.reverse();
        }
        let text: String = order.iter().map(|&i| format!("{}\n", statements[i])).collect();
        let p = policy(&text);
        assert!(allows(&p, &id, "GET", "/a"));
        assert!(!allows(&p, &id, "GET", "/secret/open"), "{text}");
        assert!(!allows(&p, &id, "DELETE", "/a"));
        let d = p.decide(Peer::Verified(&id), "GET", "/secret/open");
        assert_eq!(d.reason, Reason::DenyRule);
        let line = order.iter().position(|&i| i == 1).unwrap() as u32 + 1;
        assert_eq!(d.origin, Some(("test.policy", line)));
    }
}

#[test]
fn groups_are_or_of_lines_and_and_within_a_line() {
    let p = policy(
        "group ops subject.O=\"Example Corp\" subject.OU=ops\n\
         group ops san.uri=spiffe://example.org/ns/ops/*\n\
         allow * /admin/** group=ops\n",
    );
    let mut both = Spec::cn("a");
    both.subject = vec![
        (DnType::OrganizationName, "Example Corp".into()),
        (DnType::OrganizationalUnitName, "ops".into()),
    ];
    let mut only_o = Spec::cn("b");
    only_o.subject = vec![
        (DnType::OrganizationName, "Example Corp".into()),
        (DnType::OrganizationalUnitName, "dev".into()),
    ];
    let mut uri = Spec::cn("c");
    uri.sans = vec![SanType::URI("spiffe://example.org/ns/ops/bot".try_into().unwrap())];
    assert!(allows(&p, &both.identity(), "GET", "/admin/x"));
    assert!(!allows(&p, &only_o.identity(), "GET", "/admin/x"));
    assert!(allows(&p, &uri.identity(), "GET", "/admin/x"));
}

#[test]
fn requirements_on_keys_and_lifetimes() {
    let p = policy("require key ec>=384 ed25519\nrequire lifetime<=90d\nallow * /** any\n");
    let weak = Spec::cn("a").identity();
    let d = p.decide(Peer::Verified(&weak), "GET", "/");
    assert_eq!((d.allowed, d.reason, d.origin), (false, Reason::KeyRejected, Some(("test.policy", 1))));
    let mut ed = Spec::cn("b");
    ed.alg = &rcgen::PKCS_ED25519;
    assert!(allows(&p, &ed.identity(), "GET", "/"));
    let mut p384 = Spec::cn("c");
    p384.alg = &rcgen::PKCS_ECDSA_P384_SHA384;
    assert!(allows(&p, &p384.identity(), "GET", "/"));
    let mut long = Spec::cn("d");
    long.alg = &rcgen::PKCS_ED25519;
    long.days = 91;
    assert_eq!(p.decide(Peer::Verified(&long.identity()), "GET", "/").reason, Reason::LifetimeTooLong);
    long.days = 90;
    assert!(allows(&p, &long.identity(), "GET", "/"), "90 days is within lifetime<=90d");

    let rsa = Identity::from_der(&openssl_der("/CN=rsa", &["-newkey", "rsa:1024"])).unwrap();
    assert_eq!(rsa.key, KeyKind::Rsa(1024));
    let p = policy("require key rsa>=2048\nallow * /** any\n");
    assert_eq!(p.decide(Peer::Verified(&rsa), "GET", "/").reason, Reason::KeyRejected);
}

#[test]
fn peers_that_are_not_verified_identities_are_refused() {
    let p = policy("allow * /** any\n");
    for (peer, reason) in [
        (Peer::None, Reason::NoCertificate),
        (Peer::Unverified, Reason::Unverified),
        (Peer::Unparsable, Reason::BadCertificate),
    ] {
        let d = p.decide(peer, "GET", "/");
        assert_eq!((d.allowed, d.reason), (false, reason));
    }
}

#[test]
fn hostile_identities_cannot_fake_a_value() {
    let p = policy("allow * /corp/** subject.O=\"Example Corp\"\nallow * /users/{subject.CN}/** any\n");

    // A CN that reads like an O in a display string stays one CN.
    let comma = Spec::cn("alice,O=Example Corp").identity();
    assert!(!allows(&p, &comma, "GET", "/corp/x"));
    assert_eq!(comma.values(Attr::Subject)[0].as_ref(), "CN=alice\\,O=Example Corp");
    let by_dn = policy("allow * /** subject=\"CN=alice,O=Example Corp\"\n");
    assert!(!allows(&by_dn, &comma, "GET", "/x"));
    let exact = policy("allow * /** subject=\"CN=alice\\,O=Example Corp\"\n");
    assert!(allows(&exact, &comma, "GET", "/x"));

    // A multi-valued RDN is one RDN of two values, not two RDNs.
    let multi =
        Identity::from_der(&openssl_der("/CN=alice+O=Example Corp/C=DE", &["-multivalue-rdn"])).unwrap();
    assert!(allows(&p, &multi, "GET", "/corp/x"), "O is still an O inside a multi-valued RDN");
    assert_eq!(multi.subject_text(), "C=DE,CN=alice+O=Example Corp");
    let two_rdns = policy("allow * /** subject=\"C=DE,CN=alice,O=Example Corp\"\n");
    assert!(!allows(&two_rdns, &multi, "GET", "/x"));
    let as_set = policy("allow * /** subject=\"C=DE,O=Example Corp+CN=alice\"\n");
    assert!(allows(&as_set, &multi, "GET", "/x"));

    // Two CNs: each is a value, neither hides the other.
    let two = Identity::from_der(&openssl_der("/CN=alice/CN=bob", &[])).unwrap();
    assert_eq!(two.values(Attr::parse("subject.CN").unwrap()).len(), 2);
    assert!(allows(&p, &two, "GET", "/users/alice/x"));
    assert!(allows(&p, &two, "GET", "/users/bob/x"));

    // Template values that would escape their segment never match.
    for cn in ["..", ".", "a/b"] {
        let id = Spec::cn(cn).identity();
        assert!(!allows(&p, &id, "GET", &format!("/users/{cn}/x")), "CN {cn:?}");
    }
    let star = Spec::cn("*").identity();
    assert!(allows(&p, &star, "GET", "/users/*/x"));
    assert!(!allows(&p, &star, "GET", "/users/bob/x"), "a CN of `*` is literal in a template");
}

#[test]
fn odd_string_types_are_decoded() {
    let mut spec = Spec::cn("x");
    spec.subject = vec![
        (DnType::OrganizationName, DnValue::BmpString("Exämple Corp".try_into().unwrap())),
        (DnType::OrganizationalUnitName, DnValue::UniversalString("Öps".try_into().unwrap())),
        (DnType::LocalityName, DnValue::TeletexString("Berlin".try_into().unwrap())),
        (DnType::CommonName, DnValue::BmpString("alice".try_into().unwrap())),
    ];
    let id = spec.identity();
    let p =
        policy("allow * /** subject.O=\"Exämple Corp\" subject.OU=Öps subject.CN=alice subject.L=Berlin\n");
    assert!(allows(&p, &id, "GET", "/"));
}

#[test]
fn certificates_with_control_characters_or_trailing_bytes_are_refused() {
    let der = Spec::cn("alice").der();
    Identity::from_der(&der).unwrap();
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(Identity::from_der(&trailing).is_err(), "trailing bytes");

    let nul = patch(&Spec::cn("aliceXbob").der(), b"aliceXbob", b"alice\0bob");
    assert!(Identity::from_der(&nul).is_err(), "NUL in CN");
    let newline = patch(&Spec::cn("aliceXbob").der(), b"aliceXbob", b"alice\nbob");
    assert!(Identity::from_der(&newline).is_err(), "newline in CN");

    let mut spec = Spec::cn("a");
    spec.sans = vec![SanType::DnsName("goodXname.example.org".try_into().unwrap())];
    let dns = patch(&spec.der(), b"goodXname", b"good\0name");
    assert!(Identity::from_der(&dns).is_err(), "NUL in a SAN");

    // A PrintableString holding a non-ASCII byte cannot be decoded.
    let mut spec = Spec::cn("a");
    spec.subject = vec![(DnType::CountryName, DnValue::PrintableString("DX".try_into().unwrap()))];
    let bad = patch(&spec.der(), b"DX", b"D\xff");
    assert!(Identity::from_der(&bad).is_err(), "undecodable PrintableString");

    assert!(Identity::from_der(b"not a certificate").is_err());
    assert!(Identity::from_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err());
}

#[test]
fn pem_and_der_give_the_same_identity() {
    let der = Spec::cn("alice").der();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        data_encoding::BASE64
            .encode(&der)
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let a = Identity::from_der(&der).unwrap();
    let b = Identity::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(a.values(Attr::Fingerprint), b.values(Attr::Fingerprint));
    assert_eq!(a.subject_text(), "CN=alice");
}

#[test]
fn errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        ("allow GET /x subject.X=1", "bad.policy:1:14: unknown attribute `subject.X`"),
        ("\n\nallow GET x any", "bad.policy:3:11: a path must start with `/`"),
        ("allow get /x any", "bad.policy:1:7: methods are case-sensitive"),
        ("allow * /a/**/b any", "bad.policy:1:12: `**` may only be the last segment"),
        ("allow * /a//b any", "bad.policy:1:11: empty path segment"),
        ("allow * /a/../b any", "bad.policy:1:12: `..` segments never match"),
        ("allow * /a/b* any", "bad.policy:1:12: `*` and `{ATTR}` must be whole segments"),
        ("allow * /{subject.XX} any", "bad.policy:1:10: unknown attribute `subject.XX` in path template"),
        ("allow * /x group=ops", "bad.policy:1:18: unknown group `ops`"),
        ("allow * /x", "bad.policy:1:1: expected `allow METHODS PATH MATCHER...`"),
        ("deny * /x serial=xyz", "bad.policy:1:18: `xyz` is not a hex value"),
        ("deny * /x fingerprint=AB", "bad.policy:1:23: fingerprint is a SHA-256 hash"),
        ("deny * /x san.ip=1.2.3", "bad.policy:1:18: `1.2.3` is not an IPv4 or IPv6 address"),
        ("deny * /x subject.CN=", "bad.policy:1:11: empty value for subject.CN"),
        ("allow * /x subject=\"CN=a,\"", "bad.policy:1:"),
        ("require lifetime<=9x\nallow * / any", "bad.policy:1:9: bad lifetime"),
        ("require key dsa\nallow * / any", "bad.policy:1:13: bad key type `dsa`"),
        ("require lifetime<=90日\nallow * / any", "bad.policy:1:9: bad lifetime"),
        ("allow * /x subject.O=\"Example", "bad.policy:1:22: unterminated quote"),
        ("frob * /x any", "bad.policy:1:1: unknown statement `frob`"),
        ("group g group=h\nallow * / group=g", "bad.policy:1:9: a group cannot contain another group"),
        ("# only a comment\n", "bad.policy:1:1: the policy has no allow or deny statement"),
        (
            "include /nonexistent/x.policy\nallow * / any",
            "bad.policy:1:9: cannot read policy file /nonexistent/x.policy",
        ),
        ("allow * /x \\\n   bogus", "bad.policy:2:4: expected `any`, `group=NAME` or `ATTR=VALUE`"),
    ];
    for (text, want) in cases {
        let got = errors(text);
        assert!(got.iter().any(|e| e.starts_with(want)), "for {text:?} wanted {want:?}, got {got:?}");
    }
    // Every error is reported, not just the first.
    assert_eq!(errors("allow get /x any\nallow GET y any\n").len(), 2);
}

#[test]
fn includes_are_relative_to_the_including_file_and_loops_are_errors() {
    let dir = std::env::temp_dir().join(format!("cert-authz-include-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("main.policy"), "include sub/groups.policy\nallow * /admin/** group=ops\n")
        .unwrap();
    std::fs::write(dir.join("sub/groups.policy"), "group ops subject.OU=ops\ninclude more.policy\n").unwrap();
    std::fs::write(dir.join("sub/more.policy"), "deny * /admin/secret any\n").unwrap();
    let p = cert_authz::compile_file(&dir.join("main.policy")).unwrap();
    let mut ops = Spec::cn("a");
    ops.subject.push((DnType::OrganizationalUnitName, "ops".into()));
    let id = ops.identity();
    assert!(allows(&p, &id, "GET", "/admin/x"));
    let d = p.decide(Peer::Verified(&id), "GET", "/admin/secret");
    assert_eq!(d.origin.map(|(f, l)| (f.ends_with("sub/more.policy"), l)), Some((true, 1)));

    std::fs::write(dir.join("loop.policy"), "include loop.policy\nallow * / any\n").unwrap();
    let errs = cert_authz::compile_file(&dir.join("loop.policy")).err().expect("a loop is an error");
    assert!(errs[0].to_string().contains("makes a loop"), "{errs:?}");
}

#[test]
fn a_large_policy_is_indexed_and_still_exact() {
    let mut text = String::from("deny * /svc/13/private any\n");
    for i in 0..20_000 {
        text.push_str(&format!("allow GET /svc/{i}/** subject.CN=user{i}\n"));
    }
    let p = policy(&text);
    assert_eq!(p.rule_count(), 20_001);
    let id = Spec::cn("user13").identity();
    assert!(allows(&p, &id, "GET", "/svc/13/x"));
    assert!(!allows(&p, &id, "GET", "/svc/14/x"));
    assert!(!allows(&p, &id, "GET", "/svc/13/private"));
    assert_eq!(p.decide(Peer::Verified(&id), "GET", "/svc/13/x").origin, Some(("test.policy", 15)));
}

#[test]
fn damaged_certificates_and_policies_are_errors_never_panics() {
    // Every byte of a real certificate, flipped three ways: each result is
    // a parsed identity or a refusal.
    let der = full_identity_der();
    for i in 0..der.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = der.clone();
            bad[i] ^= mask;
            let _ = Identity::from_der(&bad);
        }
        let _ = Identity::from_der(&der[..i]);
    }
    // Every prefix of lines that exercise the grammar, and each with every
    // character replaced by a multi-byte one.
    let lines = [
        "allow GET,POST /a/*/{subject.CN}/** subject=\"CN=a\\,b+O=x,C=DE\" san.dns=*.ex.org serial=4F:2A group=g # c \\\n",
        "require lifetime<=90d\n",
        "require key ec>=256 rsa>=2048 ed25519\n",
        "deny * /x san.ip=::ffff:10.0.0.1 fingerprint=AB:CD\n",
        "include x.policy\n",
    ];
    for line in lines {
        for end in 0..=line.len() {
            if line.is_char_boundary(end) {
                let _ = compile_str(&format!("group g any\n{}", &line[..end]), "p");
            }
        }
        for (i, _) in line.char_indices() {
            for wide in ["日", "é", "\u{1F600}"] {
                let mut changed = line.to_string();
                let width = line[i..].chars().next().unwrap().len_utf8();
                changed.replace_range(i..i + width, wide);
                let _ = compile_str(&format!("group g any\n{changed}"), "p");
            }
        }
    }
}

fn full_identity_der() -> Vec<u8> {
    let mut spec = Spec::cn("alice");
    spec.subject.push((DnType::OrganizationName, DnValue::BmpString("Exämple".try_into().unwrap())));
    spec.sans = vec![
        SanType::DnsName("api.example.org".try_into().unwrap()),
        SanType::URI("spiffe://example.org/x".try_into().unwrap()),
        SanType::IpAddress("::1".parse().unwrap()),
    ];
    spec.der()
}

#[test]
fn an_ipv4_mapped_san_is_refused_and_a_policy_may_write_one_as_ipv4() {
    // IPv4 to the policy, IPv6 to OpenSSL's name constraints: ambiguous.
    let mut spec = Spec::cn("a");
    spec.sans = vec![SanType::IpAddress("::ffff:10.0.0.1".parse().unwrap())];
    let err = Identity::from_der(&spec.der()).unwrap_err();
    assert!(err.0.contains("IPv4-mapped"), "{err}");
    // In a policy the mapped form means the IPv4 address.
    spec.sans = vec![SanType::IpAddress("10.0.0.1".parse().unwrap())];
    let id = spec.identity();
    for written in ["10.0.0.1", "::ffff:10.0.0.1", "::FFFF:a00:1"] {
        let p = policy(&format!("allow * /** any\ndeny * /** san.ip={written}\n"));
        assert!(!allows(&p, &id, "GET", "/"), "san.ip={written} should match");
    }
}

#[test]
fn an_encoded_slash_left_in_the_path_is_ambiguous() {
    let id = Spec::cn("alice").identity();
    let p = policy("allow * /api/** any\ndeny * /api/admin/** any\n");
    for path in ["/api/admin%2Fusers", "/api/x%2F..%2Fadmin%2Fusers", "/api/a%2fb", "/api/%2F"] {
        let d = p.decide(Peer::Verified(&id), "GET", path);
        assert_eq!((d.allowed, d.reason), (false, Reason::BadPath), "{path}");
    }
    // Other escapes are the server's business, and %2 alone is no slash.
    assert!(allows(&p, &id, "GET", "/api/a%20b"));
    assert!(allows(&p, &id, "GET", "/api/100%2"));
    // Separators of other backends: path parameters, backslashes.
    for path in
        ["/api/admin;x/users", "/api/x;jsessionid=1", "/api/admin\\users", "/api/admin%5Cusers", "/api/a%5cb"]
    {
        let d = p.decide(Peer::Verified(&id), "GET", path);
        assert_eq!((d.allowed, d.reason), (false, Reason::BadPath), "{path}");
    }
}

#[test]
fn a_method_in_lower_case_is_refused_not_unmatched() {
    let id = Spec::cn("alice").identity();
    let p = policy("allow * /** any\ndeny GET /private/** any\n");
    for method in ["get", "Get", "gET", "post"] {
        let d = p.decide(Peer::Verified(&id), method, "/private/x");
        assert_eq!((d.allowed, d.reason), (false, Reason::BadMethod), "{method}");
    }
    assert!(!allows(&p, &id, "GET", "/private/x"));
    assert!(allows(&p, &id, "M-SEARCH", "/x"));
}

#[test]
fn a_known_method_with_nul_bytes_after_it_is_no_token() {
    // A method's word pads a short method with zero bytes: "GET\0" must
    // not pass for GET (a NUL is no token character).
    let id = Spec::cn("alice").identity();
    let p = policy("allow GET /x any\nallow DELETE /y any\n");
    for (method, path) in [("GET\0", "/x"), ("GET\0\0\0\0\0", "/x"), ("DELETE\0", "/y"), ("DELETE\0\0", "/y")]
    {
        let d = p.decide(Peer::Verified(&id), method, path);
        assert_eq!((d.allowed, d.reason), (false, Reason::BadMethod), "{method:?}");
    }
    assert!(allows(&p, &id, "GET", "/x"));
}

#[test]
fn the_user_is_the_value_the_allow_statement_authorized() {
    // rcgen keeps one value per attribute type: openssl writes both CNs.
    let two_cns = Identity::from_der(&openssl_der("/CN=admin/CN=opsbot", &[])).unwrap();
    assert_eq!(two_cns.values(Attr::parse("subject.CN").unwrap()).len(), 2);
    let cn_attr = Attr::parse("subject.CN").unwrap();
    let cn = Some(cn_attr);
    let user = |p: &Policy, path: &str| {
        let d = p.decide_as(Peer::Verified(&two_cns), "GET", path, cn);
        (d.allowed, d.reason, d.user.map(|i| two_cns.values(cn_attr)[i].to_string()))
    };
    let p = policy(
        "group ops subject.CN=opsbot\n\
         allow GET /ops/** subject.CN=opsbot\n\
         allow GET /any/** any\n\
         allow GET /group/** group=ops\n\
         allow GET /prefix/** subject.CN=*\n\
         allow GET /home/{subject.CN}/** any\n\
         allow GET /both/** subject.CN=o* subject.CN=op*\n",
    );
    assert_eq!(user(&p, "/ops/x"), (true, Reason::AllowRule, Some("opsbot".into())));
    assert_eq!(user(&p, "/home/opsbot/x"), (true, Reason::AllowRule, Some("opsbot".into())));
    assert_eq!(user(&p, "/home/admin"), (true, Reason::AllowRule, Some("admin".into())));
    assert_eq!(user(&p, "/both/x"), (true, Reason::AllowRule, Some("opsbot".into())));
    for path in ["/any/x", "/group/x", "/prefix/x"] {
        assert_eq!(user(&p, path), (false, Reason::UserAmbiguous, None), "{path}");
    }
    // Without a user attribute, and for a single-valued one, nothing changes.
    assert!(p.decide(Peer::Verified(&two_cns), "GET", "/any/x").allowed);
    let alice = Spec::cn("alice").identity();
    let d = p.decide_as(Peer::Verified(&alice), "GET", "/any/x", cn);
    assert_eq!((d.allowed, d.user), (true, Some(0)));
    // An attribute the certificate lacks leaves the user unset.
    let d = p.decide_as(Peer::Verified(&alice), "GET", "/any/x", Attr::parse("san.email"));
    assert_eq!((d.allowed, d.user), (true, None));
}

/// A certificate with every name form of the identity issue, from openssl.
fn name_forms_der() -> Vec<u8> {
    openssl_der(
        "/CN=carol/title=Dr/GN=Carol/SN=Liddell/initials=CL/pseudonym=cl/organizationIdentifier=VATDE-123\
         /businessCategory=Private Organization/postalCode=12345/street=Main St 1/generationQualifier=III\
         /dnQualifier=q1/description=on call",
        &[
            "-addext",
            "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:carol@corp.example,\
             otherName:1.2.3.4;UTF8:other-value,otherName:1.2.3.5;INTEGER:5,\
             otherName:1.2.3.6;BMPSTRING:bmp,IP:10.1.2.3,IP:2001:db8::7,IP:192.168.7.1",
            "-addext",
            "extendedKeyUsage=clientAuth,1.3.6.1.4.1.99999.9",
            "-addext",
            "certificatePolicies=1.2.3.4,2.16.840.1.101.2.1.11.10",
        ],
    )
}

#[test]
fn every_name_form_is_read_and_matches() {
    let id = Identity::from_der(&name_forms_der()).unwrap();
    let values = |attr: &str| -> Vec<String> {
        id.values(Attr::parse(attr).unwrap_or_else(|| panic!("{attr}")))
            .iter()
            .map(|v| v.to_string())
            .collect()
    };
    for (attr, want) in [
        ("subject.title", "Dr"),
        ("subject.2.5.4.12", "Dr"),
        ("subject.GN", "Carol"),
        ("subject.givenName", "Carol"),
        ("subject.SN", "Liddell"),
        ("subject.initials", "CL"),
        ("subject.pseudonym", "cl"),
        ("subject.organizationIdentifier", "VATDE-123"),
        ("subject.2.5.4.97", "VATDE-123"),
        ("subject.businessCategory", "Private Organization"),
        ("subject.postalCode", "12345"),
        ("subject.street", "Main St 1"),
        ("subject.generationQualifier", "III"),
        ("subject.dnQualifier", "q1"),
        ("subject.description", "on call"),
        ("issuer.title", "Dr"),
        ("san.upn", "carol@corp.example"),
        ("san.other.1.3.6.1.4.1.311.20.2.3", "carol@corp.example"),
        ("san.other.1.2.3.4", "other-value"),
        // Not a string type: `#` and the hex of its DER.
        ("san.other.1.2.3.5", "#020105"),
        ("san.other.1.2.3.6", "bmp"),
    ] {
        assert_eq!(values(attr), [want], "{attr}");
    }
    assert_eq!(values("eku"), ["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.99999.9"]);
    assert_eq!(values("policy"), ["1.2.3.4", "2.16.840.1.101.2.1.11.10"]);
    assert_eq!(values("san.ip"), ["10.1.2.3", "2001:db8::7", "192.168.7.1"]);
    assert!(values("san.other.1.2.3.7").is_empty());
    assert!(values("subject.1.2.3.4").is_empty(), "an otherName is not a subject attribute");
    assert!(values("subject").iter().all(|s| s.contains("organizationIdentifier=VATDE-123,")));

    for (matcher, want) in [
        ("subject.title=Dr", true),
        ("subject.title=Mr", false),
        ("subject.2.5.4.12=Dr", true),
        ("issuer.organizationIdentifier=VATDE-*", true),
        ("subject.businessCategory=\"Private Organization\"", true),
        ("san.upn=carol@corp.example", true),
        ("san.upn=Carol@corp.example", false),
        ("san.other.1.2.3.4=other-value", true),
        ("san.other.1.2.3.5=#020105", true),
        ("san.other.1.2.3.5=#020106", false),
        ("san.other.1.2.3.4=#020105", false),
        ("eku=clientAuth", true),
        ("eku=1.3.6.1.5.5.7.3.2", true),
        ("eku=1.3.6.1.4.1.99999.9", true),
        ("eku=serverAuth", false),
        ("eku=anyExtendedKeyUsage", false),
        ("policy=1.2.3.4", true),
        ("policy=1.2.3", false),
        ("policy=2.16.840.1.101.2.1.11.10", true),
        ("san.ip=10.0.0.0/8", true),
        ("san.ip=10.1.2.3/32", true),
        ("san.ip=10.1.2.0/24", true),
        ("san.ip=10.2.0.0/16", false),
        ("san.ip=0.0.0.0/0", true),
        ("san.ip=2001:db8::/32", true),
        ("san.ip=2001:db9::/32", false),
        ("san.ip=::/0", true),
        // A policy's IPv4-mapped network is the IPv4 one.
        ("san.ip=192.168.0.0/16", true),
        ("san.ip=::ffff:192.168.0.0/112", true),
        ("san.ip=::ffff:0:0/96", true),
    ] {
        let p = policy(&format!("allow GET /x {matcher}\n"));
        assert_eq!(allows(&p, &id, "GET", "/x"), want, "{matcher}");
        // The same as a group line, and among many rules (indexed).
        let grouped = policy(&format!("group g {matcher}\nallow GET /x group=g\n"));
        assert_eq!(allows(&grouped, &id, "GET", "/x"), want, "group {matcher}");
        let mut many = String::new();
        for i in 0..200 {
            many.push_str(&format!("allow GET /x san.ip=172.{i}.0.0/16\nallow GET /x eku=1.2.{i}\n"));
            many.push_str(&format!("allow GET /x subject.title=t{i} subject.1.2.{i}=v\n"));
        }
        many.push_str(&format!("allow GET /x {matcher}\n"));
        assert_eq!(allows(&policy(&many), &id, "GET", "/x"), want, "indexed {matcher}");
    }

    // Templates and the user name take the new attributes too.
    let p = policy("allow GET /u/{san.upn}/** any\nallow GET /t/** subject.title=Dr\n");
    assert!(allows(&p, &id, "GET", "/u/carol@corp.example/x"));
    let d = p.decide_as(Peer::Verified(&id), "GET", "/t/a", Attr::parse("subject.title"));
    assert_eq!(d.user.map(|i| values("subject.title")[i].clone()).as_deref(), Some("Dr"));
}

#[test]
fn attributes_named_by_an_unknown_oid_are_matched_by_oid() {
    let mut spec = Spec::cn("dave");
    spec.subject = vec![
        (DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]), "first".into()),
        (DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 2]), "other".into()),
        (DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 3]), "second".into()),
        (DnType::CommonName, "dave".into()),
    ];
    spec.sans = vec![
        SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3], "dave@corp.example".into())),
        SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 99999, 1], "san-value".into())),
    ];
    // rcgen keeps one value per type: the second 99999.1 is made from a 99999.3.
    let der = patch(&spec.der(), &[0x86, 0x8d, 0x1f, 0x03], &[0x86, 0x8d, 0x1f, 0x01]);
    let id = Identity::from_der(&der).unwrap();
    let values = |attr: &str| -> Vec<String> {
        id.values(Attr::parse(attr).unwrap()).iter().map(|v| v.to_string()).collect()
    };
    assert_eq!(values("subject.1.3.6.1.4.1.99999.1"), ["first", "second"]);
    assert_eq!(values("subject.1.3.6.1.4.1.99999.2"), ["other"]);
    assert!(values("issuer.1.3.6.1.4.1.99999.1").is_empty());
    assert_eq!(values("san.other.1.3.6.1.4.1.99999.1"), ["san-value"]);
    assert_eq!(values("san.upn"), ["dave@corp.example"]);
    let names: Vec<String> = id.listing().iter().map(|(name, _)| name.clone()).collect();
    for name in
        ["subject.1.3.6.1.4.1.99999.1", "subject.1.3.6.1.4.1.99999.2", "san.other.1.3.6.1.4.1.99999.1"]
    {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let p = policy(
        "allow GET /a subject.1.3.6.1.4.1.99999.1=second\nallow GET /b subject.1.3.6.1.4.1.99999.2=first\n\
         allow GET /c/{subject.1.3.6.1.4.1.99999.2} any\nallow GET /d san.other.1.3.6.1.4.1.99999.1=san-*\n",
    );
    assert!(allows(&p, &id, "GET", "/a"));
    assert!(!allows(&p, &id, "GET", "/b"), "values of one OID never match under another");
    assert!(allows(&p, &id, "GET", "/c/other"));
    assert!(!allows(&p, &id, "GET", "/c/first"));
    assert!(allows(&p, &id, "GET", "/d"));
    // Two values of one OID: the user must be singled out.
    let d = p.decide_as(Peer::Verified(&id), "GET", "/a", Attr::parse("subject.1.3.6.1.4.1.99999.1"));
    assert_eq!(d.user, Some(1));
}

#[test]
fn hostile_name_forms_are_refused_or_never_fake_a_value() {
    // A control character in an otherName, a UPN that is not a UTF8String.
    let upn = |value: &str| {
        openssl_der(
            "/CN=upn",
            &["-addext", &format!("subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;{value}")],
        )
    };
    let nul = patch(&upn("UTF8:evilXadmin"), b"evilXadmin", b"evil\0admin");
    assert!(Identity::from_der(&nul).is_err(), "NUL in a UPN");
    let other = openssl_der("/CN=other", &["-addext", "subjectAltName=otherName:1.2.3.4;UTF8:evilXadmin"]);
    let newline = patch(&other, b"evilXadmin", b"evil\nadmin");
    assert!(Identity::from_der(&newline).is_err(), "newline in an otherName");
    let err = Identity::from_der(&upn("IA5STRING:a@b")).unwrap_err();
    assert!(err.0.contains("not a UTF8String"), "{err}");
    // A control character in a new name type refuses the certificate.
    let title = patch(&openssl_der("/CN=t/title=DrXNo", &[]), b"DrXNo", b"Dr\x01No");
    assert!(Identity::from_der(&title).is_err());

    // A multi-valued RDN: the title is the title, the CN the CN.
    let multi = Identity::from_der(&openssl_der("/CN=erin+title=Dr/O=X", &["-multivalue-rdn"])).unwrap();
    assert_eq!(&*multi.values(Attr::parse("subject.title").unwrap())[0], "Dr");
    assert_eq!(multi.values(Attr::parse("subject.CN").unwrap()).len(), 1);
    // Two titles are two values; neither hides the other, and no joined one exists.
    let two = Identity::from_der(&openssl_der("/CN=frank/title=A/title=B", &[])).unwrap();
    let p = policy(
        "allow GET /a subject.title=A\nallow GET /b subject.title=B\nallow GET /ab subject.title=AB\n",
    );
    assert!(allows(&p, &two, "GET", "/a") && allows(&p, &two, "GET", "/b"));
    assert!(!allows(&p, &two, "GET", "/ab"));
}

#[test]
fn bad_values_of_the_new_forms_are_errors() {
    for (matcher, message) in [
        ("eku=clientauth", "is not an extended key usage"),
        ("eku=1.2.3*", "exact OIDs"),
        ("policy=anything", "is not a dotted OID"),
        ("san.ip=10.0.0.1/8", "bits set past its network length (write `10.0.0.0/8`)"),
        ("san.ip=10.0.0.0/33", "network length must be 0 to 32"),
        ("san.ip=2001:db8::/129", "network length must be 0 to 128"),
        ("san.ip=10.0.0.0/08", "network length"),
        ("subject.1.2.03=x", "unknown attribute"),
        ("subject.title.x=x", "unknown attribute"),
        ("san.other.x=y", "unknown attribute"),
    ] {
        let errs = errors(&format!("allow GET / {matcher}\n"));
        assert!(errs[0].contains(message), "{matcher}: {errs:?}");
    }
}

/// A CA named `Example Users CA` (as the trusted one is) with its own key,
/// optionally issued by `parent`; returns its params, key and DER.
fn named_ca(parent: Option<&(CertificateParams, KeyPair, Vec<u8>)>) -> (CertificateParams, KeyPair, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::CommonName, "Example Users CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = match parent {
        Some((p, k, _)) => params.signed_by(&key, &Issuer::from_params(p, k)).unwrap().der().to_vec(),
        None => params.self_signed(&key).unwrap().der().to_vec(),
    };
    (params, key, der)
}

fn leaf_of(ca: &(CertificateParams, KeyPair, Vec<u8>), cn: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.signed_by(&key, &Issuer::from_params(&ca.0, &ca.1)).unwrap().der().to_vec()
}

fn own(der: &[u8], attr: Attr) -> String {
    Identity::from_der(der).unwrap().values(attr)[0].to_string()
}

#[test]
fn a_rogue_ca_with_the_trusted_name_is_told_apart_by_its_key() {
    let trusted = named_ca(None);
    let rogue = named_ca(None);
    let good = leaf_of(&trusted, "alice");
    let forged = leaf_of(&rogue, "alice");
    let trusted_spki = own(&trusted.2, Attr::Spki);
    let text = format!(
        "allow GET /name issuer.CN=\"Example Users CA\"\nallow GET /key ca.spki={trusted_spki}\n\
         allow GET /issuer issuer.spki={}\nallow GET /cert ca.fingerprint={}\n",
        trusted_spki.to_lowercase(),
        own(&trusted.2, Attr::Fingerprint),
    );
    let p = policy(&text);
    // The leaf is passed in the chain too, as SSL_get0_verified_chain gives it.
    let alice = Identity::from_der_chain(&good, &[&good, &trusted.2]).unwrap();
    let mallory = Identity::from_der_chain(&forged, &[&forged, &rogue.2]).unwrap();
    assert_eq!(alice.values(Attr::CaSpki).len(), 1, "the leaf is skipped");
    for path in ["/name", "/key", "/issuer", "/cert"] {
        assert!(allows(&p, &alice, "GET", path), "{path}");
    }
    assert!(allows(&p, &mallory, "GET", "/name"), "the name alone cannot tell them apart");
    for path in ["/key", "/issuer", "/cert"] {
        assert!(!allows(&p, &mallory, "GET", path), "{path}");
    }
    // Without a chain there is no CA to match.
    let bare = Identity::from_der(&good).unwrap();
    assert!(bare.values(Attr::CaSpki).is_empty() && bare.values(Attr::IssuerSpki).is_empty());
    assert!(!allows(&p, &bare, "GET", "/key"));
    // Indexed among many rules as any exact value is.
    let mut many = String::new();
    for i in 0..300 {
        many.push_str(&format!("allow GET /key ca.spki={i:064X}\n"));
    }
    many.push_str(&format!("allow GET /key ca.spki={trusted_spki}\n"));
    let many = policy(&many);
    assert!(allows(&many, &alice, "GET", "/key") && !allows(&many, &mallory, "GET", "/key"));
}

#[test]
fn every_ca_of_the_chain_counts_and_the_issuer_is_the_one_named_by_the_leaf() {
    let root = named_ca(None);
    let mut intermediate = named_ca(Some(&root));
    intermediate.0.distinguished_name.push(DnType::CommonName, "Example Issuing CA");
    let intermediate = {
        let (p, k, _) = intermediate;
        let der = p.signed_by(&k, &Issuer::from_params(&root.0, &root.1)).unwrap().der().to_vec();
        (p, k, der)
    };
    let leaf = leaf_of(&intermediate, "bob");
    let id = Identity::from_der_chain(&leaf, &[&intermediate.2, &root.2]).unwrap();
    let spkis: Vec<String> = id.values(Attr::CaSpki).iter().map(|v| v.to_string()).collect();
    assert_eq!(spkis, [own(&intermediate.2, Attr::Spki), own(&root.2, Attr::Spki)]);
    assert_eq!(id.values(Attr::CaFingerprint).len(), 2);
    assert_eq!(&*id.values(Attr::IssuerSpki)[0], own(&intermediate.2, Attr::Spki));
    // A chain that does not hold the leaf's issuer: CAs, but no issuer.spki.
    let other = Identity::from_der_chain(&leaf, &[&root.2]).unwrap();
    assert_eq!(other.values(Attr::CaSpki).len(), 1);
    assert!(other.values(Attr::IssuerSpki).is_empty());
    // A chain certificate that cannot be read refuses the identity.
    let mut broken = root.2.clone();
    broken.push(0);
    assert!(Identity::from_der_chain(&leaf, &[&intermediate.2, &broken]).is_err());
    assert!(Presented::from_der_chain(&leaf, &[b"junk"]).refusal().is_some());
    // Attribute names.
    for name in ["ca.spki", "ca.fingerprint", "issuer.spki"] {
        assert_eq!(Attr::parse(name).unwrap().to_string(), name);
    }
    assert!(errors("allow GET / ca.spki=AB\n")[0].contains("32 bytes"));
    assert!(errors("allow GET / ca.fingerprint=AB*\n")[0].contains("not allowed"));
}
