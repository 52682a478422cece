//! The test PKI, made with rcgen (and openssl for one certificate rcgen
//! cannot make): a trusted CA, an untrusted one, a server certificate for
//! localhost and 127.0.0.1, and the clients every end-to-end test can use.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::{scratch, share_with_workers};

/// One client identity of the test PKI.
pub struct Client {
    pub name: &'static str,
    /// `CN=..`-style subject entries in order, most general first.
    pub subject: &'static [(DnType, &'static str)],
    pub uris: &'static [&'static str],
    /// Issued by the untrusted "Rogue CA" instead of the test CA.
    pub rogue: bool,
}

/// The clients every end-to-end test can use.  Files in the PKI directory:
/// NAME.pem (certificate), NAME.key (key), NAME.both.pem (both, for ab).
pub const CLIENTS: &[Client] = &[
    Client {
        name: "alice",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "users"),
            (DnType::CommonName, "alice"),
        ],
        uris: &[],
        rogue: false,
    },
    Client {
        name: "opsbot",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "ops"),
            (DnType::CommonName, "opsbot"),
        ],
        uris: &[],
        rogue: false,
    },
    Client {
        name: "billing",
        subject: &[(DnType::OrganizationName, "Example Corp"), (DnType::CommonName, "billing")],
        uris: &["spiffe://example.org/ns/prod/sa/billing"],
        rogue: false,
    },
    Client { name: "reporter", subject: &[(DnType::CommonName, "reporter")], uris: &[], rogue: false },
    // A CN that tries to look like an O: must never satisfy subject.O.
    Client {
        name: "mallory",
        subject: &[(DnType::CommonName, "alice,O=Example Corp")],
        uris: &[],
        rogue: false,
    },
    // Same name as alice, but issued by a CA the servers do not trust.
    Client {
        name: "rogue",
        subject: &[
            (DnType::OrganizationName, "Example Corp"),
            (DnType::OrganizationalUnitName, "users"),
            (DnType::CommonName, "alice"),
        ],
        uris: &[],
        rogue: true,
    },
];

/// The generated PKI: `ca.pem` (trusted), `rogue-ca.pem` (not trusted),
/// `server.pem`/`server.key` for localhost and 127.0.0.1, and the clients.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn cert(&self, client: &str) -> PathBuf {
        self.dir.join(format!("{client}.pem"))
    }

    pub fn key(&self, client: &str) -> PathBuf {
        self.dir.join(format!("{client}.key"))
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("generating a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, 3650);
    let pem = params.self_signed(&key).expect("self-signing a CA").pem();
    (params, key, pem)
}

/// Writes a new PKI into `dir` (created if missing).
pub fn make_pki(dir: &Path) -> Pki {
    fs::create_dir_all(dir).expect("creating the PKI directory");
    let (ca_params, ca_key, ca_pem) = ca("Example Test CA");
    let (rogue_params, rogue_key, rogue_pem) = ca("Rogue CA");
    fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    fs::write(dir.join("rogue-ca.pem"), &rogue_pem).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let rogue_issuer = Issuer::from_params(&rogue_params, &rogue_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, 30);
    let server = params.signed_by(&server_key, &issuer).unwrap();
    fs::write(dir.join("server.pem"), server.pem()).unwrap();
    fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();

    for client in CLIENTS {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        for (ty, value) in client.subject {
            dn.push(ty.clone(), *value);
        }
        params.distinguished_name = dn;
        for uri in client.uris {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 30);
        let cert = if client.rogue {
            params.signed_by(&key, &rogue_issuer).unwrap()
        } else {
            params.signed_by(&key, &issuer).unwrap()
        };
        let key_pem = key.serialize_pem();
        fs::write(dir.join(format!("{}.pem", client.name)), cert.pem()).unwrap();
        fs::write(dir.join(format!("{}.key", client.name)), &key_pem).unwrap();
        fs::write(dir.join(format!("{}.both.pem", client.name)), cert.pem() + &key_pem).unwrap();
    }
    fs::write(dir.join("ca.key"), ca_key.serialize_pem()).unwrap();
    two_cn_client(dir);
    odd_client(dir);
    // Servers run as www-data and must read these.
    share_with_workers(dir);
    Pki { dir: dir.to_path_buf() }
}

/// `twocn`: a certificate of the trusted CA with two CNs, `admin` then
/// `opsbot` (rcgen writes one value per attribute type, so openssl makes
/// it).  Which CN a server hands on as the user is the test.
fn two_cn_client(dir: &Path) {
    openssl_client(dir, "twocn", "/O=Example Corp/OU=ops/CN=admin/CN=opsbot");
}

/// `odd`: a certificate of the trusted CA whose CN holds a double quote
/// and a backslash, `say "hi" \ bye`, as log formats must escape them.
fn odd_client(dir: &Path) {
    openssl_client(dir, "odd", "/O=Example Corp/CN=say \"hi\" \\\\ bye");
}

/// A client certificate of the trusted CA made by openssl from `subj`
/// (openssl's -subj syntax): NAME.pem, NAME.key and NAME.both.pem.
fn openssl_client(dir: &Path, name: &str, subj: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (ext, csr, key, pem) =
        (format!("{name}.ext"), format!("{name}.csr"), format!("{name}.key"), format!("{name}.pem"));
    fs::write(dir.join(&ext), "extendedKeyUsage=clientAuth\n").unwrap();
    #[rustfmt::skip]
    run(&[
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-subj", subj, "-keyout", &key, "-out", &csr,
    ]);
    #[rustfmt::skip]
    run(&[
        "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "30", "-extfile", &ext, "-out", &pem,
    ]);
    let both = fs::read_to_string(dir.join(&pem)).unwrap() + &fs::read_to_string(dir.join(&key)).unwrap();
    fs::write(dir.join(format!("{name}.both.pem")), both).unwrap();
}

/// The PKI of this test binary, made on first use: every server of the
/// binary trusts the same CA.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make_pki(&scratch("pki")))
}

/// A CA of its own and a client certificate from it whose CN holds a
/// control character: the TLS layer verifies it, the core must refuse it.
/// Writes hostile.pem and hostile.key into `dir`; returns (CA PEM,
/// certificate file, key file).
pub fn hostile_client(dir: &Path) -> (String, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "Hostile Test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut ca, 30);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::CommonName, "alice\u{1}admin");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 30);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join("hostile.pem"), dir.join("hostile.key"));
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    share_with_workers(dir);
    (ca_pem, cert_path, key_path)
}

/// A CA with the test CA's very name (`O=Example Corp, CN=Example Test
/// CA`) and a key of its own, and `alice` as it would issue her: only the
/// CA's key tells the two apart.  Returns the CA's PEM and alice's
/// certificate and key files in `dir`.
pub fn twin_ca_client(dir: &Path) -> (String, PathBuf, PathBuf) {
    let (ca_params, ca_key, ca_pem) = ca("Example Test CA");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::OrganizationalUnitName, "users");
    params.distinguished_name.push(DnType::CommonName, "alice");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    // With two CAs of one name trusted, OpenSSL finds the right issuer by
    // the authority key identifier.
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, 30);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join("twin-alice.pem"), dir.join("twin-alice.key"));
    fs::write(&cert_path, cert.pem()).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    share_with_workers(dir);
    (ca_pem, cert_path, key_path)
}
