//! End-to-end tests of what only mod_cert_authz in Apache httpd has: the
//! `Require cert-authz` provider, the CGI environment, per-location
//! `SSLVerifyClient` (TLS 1.3 post-handshake authentication, TLS 1.2
//! renegotiation), subrequests, `Satisfy Any`, encoded slashes,
//! `CertAuthzRequestHeader` and php-fpm through mod_proxy_fcgi.  What both
//! servers do is tested once for both in tests/both.rs.
//!
//! Each test starts its own server (common::apache: own ServerRoot from
//! common::scratch(), own loopback port, event MPM, `User www-data`) and
//! stops it by the pid in its PidFile when the test ends, also when it
//! panics.  A missing Apache or module is a failure, never a skip: run
//! `make build` first (`make test` does).
//!
//! Every location is served by one CGI script that prints the environment
//! the backend sees, so the tests can check CERT_AUTHZ_* and REMOTE_USER.

mod common;

use std::fs;

use common::apache::{Apache, MODULES};
use common::server::Server;
use common::{env_of, share_with_workers, Backend};

// ---- the authz provider and the backend's view ------------------------------

const PROVIDER_CONF: &str = r#"SSLVerifyClient optional_no_ca
CertAuthzPolicy shared.policy
CertAuthzUser subject.CN
# A client header copied into the environment, and a configured value: the
# module's own variables must win over both.
SetEnvIf X-Forge "(.+)" CERT_AUTHZ_SUBJECT=$1 CERT_AUTHZ_USER=$1
SetEnv CERT_AUTHZ_RULE forged-by-config
<Location "/">
    CertAuthz On
</Location>
<Location "/mixed">
    CertAuthz Off
    CertAuthzRule "allow GET /mixed/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/local">
    CertAuthz Off
    CertAuthzRule "allow GET /local/** subject.CN=alice"
    <RequireAny>
        Require ip 127.0.0.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/mixed-report">
    CertAuthz Off
    CertAuthzMode report
    CertAuthzRule "allow GET /mixed-report/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
"#;

#[test]
fn the_provider_is_one_require_line_and_the_environment_cannot_be_forged() {
    let mut apache = Apache::new("provider");
    apache.write_conf(PROVIDER_CONF);
    apache.start();

    // Require cert-authz inside <RequireAny>.
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(None, "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(Some("rogue"), "GET", "/mixed/x"), 403);
    assert_eq!(apache.status(Some("reporter"), "GET", "/local/x"), 200, "Require ip grants");
    assert_eq!(apache.status(None, "GET", "/local/x"), 200, "Require ip grants");

    // Report mode in a <RequireAny>: cert-authz grants what it allows, and
    // what it would refuse is left to the other lines, never granted.
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed-report/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed-report/x"), 403);
    assert_eq!(apache.status(None, "GET", "/mixed-report/x"), 403);

    // What the backend sees on allow, with forging attempts by header.
    let r = apache.request_with(
        Some("alice"),
        "GET",
        "/users/alice/x?CERT_AUTHZ_USER=evil",
        &["-H", "X-Forge: mallory", "-H", "CERT_AUTHZ_USER: mallory", "-H", "Cert-Authz-User: mallory"],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(env_of(&r, "CERT_AUTHZ_DECISION"), "allow");
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(env_of(&r, "REMOTE_USER"), "alice");
    let subject = env_of(&r, "CERT_AUTHZ_SUBJECT");
    assert!(subject.starts_with("CN=alice,") && subject.contains("O=Example Corp"), "{subject}");
    let rule = env_of(&r, "CERT_AUTHZ_RULE");
    assert!(rule.ends_with("shared.policy:6"), "rule {rule}");
    assert!(!env_of(&r, "HTTP_CERT_AUTHZ_USER").contains("alice"));

    // mallory's CN pretends to carry an O: no user, no allow.
    let r = apache.request_with(Some("mallory"), "GET", "/corp/x", &["-H", "X-Forge: alice"]);
    assert_eq!(r.status, 403, "{r:?}");

    // The version, once per configuration load.
    let log = apache.error_log();
    assert!(log.contains("CA00005: cert-authz "), "no version line:\n{log}");
}

// ---- a per-location SSLVerifyClient: TLS 1.3 post-handshake auth ---------------

#[test]
fn per_location_verify_client_uses_the_post_handshake_certificate() {
    let mut apache = Apache::new("pha");
    apache.write_conf_with(
        r#"SSLVerifyClient none
SSLProtocol -all +TLSv1.3
<Location "/pha">
    SSLVerifyClient require
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /pha/** subject.CN=alice"
</Location>
<Location "/strict">
    CertAuthz On
    CertAuthzRule "allow GET /strict/** any"
</Location>
# On, and only a regular expression's section (which apply is known per
# request) might give it a policy: none does, so it is refused per request.
<Location "/nopolicy">
    CertAuthz On
</Location>
<LocationMatch "^/elsewhere">
    CertAuthzRule "allow GET /elsewhere/** any"
</LocationMatch>
"#,
        "http/1.1",
        "LogLevel warn cert_authz:debug",
    );
    apache.start();

    // The handshake carries no certificate; /pha asks for one afterwards.
    let r = apache.request(Some("alice"), "GET", "/pha/x");
    assert_eq!(r.status, 200, "{r:?}\n{}", apache.error_log());
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(apache.status(Some("reporter"), "GET", "/pha/x"), 403);
    // Without a certificate to give, mod_ssl itself ends the connection
    // (curl's status 0); it never reaches a backend.
    let none = apache.status(None, "GET", "/pha/x");
    assert!(none == 0 || none == 403, "no certificate got {none}");
    // Where no certificate was requested, none counts.
    assert_eq!(apache.status(Some("alice"), "GET", "/strict/x"), 403);

    // A location that is on without any policy fails closed, with a 500
    // (the server's own fault) and a line saying why.
    assert_eq!(apache.status(Some("alice"), "GET", "/nopolicy/x"), 500);
    assert!(apache.error_log().contains("CA00020"), "{}", apache.error_log());

    // One connection: first no certificate, then post-handshake auth; the
    // certificate change on the connection is noticed.
    let statuses = one_connection(&apache, &[], &["/strict/a", "/pha/b", "/pha/c"]);
    assert_eq!(statuses, ["403 1", "200 0", "200 0"], "{}", apache.error_log());

    let log = apache.error_log();
    assert!(log.contains("CA00012: allowed by cert-authz: GET /pha/b"), "LogLevel cert_authz:debug:\n{log}");
}

#[test]
fn per_location_verify_client_renegotiates_on_tls_1_2() {
    // TLS 1.2: mod_ssl renegotiates for the location's SSLVerifyClient, and
    // the certificate that appears on the connection is the one decided.
    let mut apache = Apache::new("reneg");
    apache.write_conf_with(
        r#"SSLVerifyClient none
SSLProtocol -all +TLSv1.2
<Location "/reneg">
    SSLVerifyClient require
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /reneg/** subject.CN=alice"
</Location>
<Location "/strict">
    CertAuthz On
    CertAuthzRule "allow GET /strict/** any"
</Location>
"#,
        "http/1.1",
        "LogLevel warn cert_authz:debug",
    );
    apache.start();

    let r = apache.request(Some("alice"), "GET", "/reneg/x");
    assert_eq!(r.status, 200, "{r:?}\n{}", apache.error_log());
    assert_eq!(env_of(&r, "CERT_AUTHZ_USER"), "alice");
    assert_eq!(apache.status(Some("reporter"), "GET", "/reneg/x"), 403);

    // One connection: no certificate first, then a renegotiation brings
    // alice's; the change on the connection is noticed.
    let statuses = one_connection(&apache, &["--tls-max", "1.2"], &["/strict/a", "/reneg/b"]);
    assert_eq!(statuses, ["403 1", "200 0"], "{}", apache.error_log());
}

/// Requests `paths` in order on one curl invocation as alice (curl reuses
/// the connection); one "STATUS NEW_CONNECTIONS" per path.
fn one_connection(apache: &Apache, tls: &[&str], paths: &[&str]) -> Vec<String> {
    let mut args = vec!["--http1.1"];
    args.extend_from_slice(tls);
    apache
        .requests(Some("alice"), &args, paths)
        .iter()
        .map(|t| format!("{} {}", t.status, t.connects))
        .collect()
}

// ---- configuration errors ----------------------------------------------------------

#[test]
fn configuration_errors_in_apache_terms_stop_configtest() {
    let apache = Apache::new("configtest");

    // A working configuration first, with a rule naming a group that a
    // later rule defines inside a section.
    apache.write_conf(
        r#"SSLVerifyClient optional
CertAuthzPolicy shared.policy
<Location "/x">
    CertAuthz On
    CertAuthzRule "allow GET /x/** group=late"
    <IfModule ssl_module>
        CertAuthzRule "group late subject.CN=alice"
    </IfModule>
    CertAuthzMode report
    CertAuthzUser san.uri
</Location>
"#,
    );
    let (ok, text) = apache.config_test();
    assert!(ok, "a good configuration failed:\n{text}");

    // The provider takes no argument.
    apache.write_conf(
        "CertAuthzPolicy shared.policy\n<Location \"/\">\n    Require cert-authz please\n</Location>\n",
    );
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
}

// ---- subrequests: a new URI is a new decision ---------------------------------------

#[test]
fn subrequests_with_the_same_configuration_are_decided_again() {
    let mut apache = Apache::new("subrequest");
    for (file, text) in [
        ("htdocs/pub/page.shtml", "page:<!--#include virtual=\"/secret/s.txt\" -->:end\n"),
        ("htdocs/pub/ok.shtml", "page:<!--#include virtual=\"/pub/p.txt\" -->:end\n"),
        ("htdocs/pub/p.txt", "public-text"),
        ("htdocs/secret/s.txt", "secret-text"),
    ] {
        let path = apache.path(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    share_with_workers(&apache.path("htdocs"));
    // No ScriptAliasMatch here: the files are served by mod_include.
    let body = r#"SSLVerifyClient require
LoadModule include_module /usr/lib/apache2/modules/mod_include.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
TypesConfig /etc/mime.types
<Directory "DIR/htdocs">
    Options +Includes
    AddOutputFilter INCLUDES .shtml
    AddType text/html .shtml
</Directory>
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /pub/** any"
</Location>
"#
    .replace("DIR", &apache.dir().display().to_string());
    apache.write_conf(&body);
    let conf = fs::read_to_string(apache.path("conf/httpd.conf")).unwrap();
    fs::write(apache.path("conf/httpd.conf"), conf.replace("ScriptAliasMatch", "#ScriptAliasMatch")).unwrap();
    apache.start();

    let r = apache.request(Some("alice"), "GET", "/pub/ok.shtml");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("public-text"), "{r:?}\n{}", apache.error_log());
    assert_eq!(apache.status(Some("alice"), "GET", "/secret/s.txt"), 403);
    let r = apache.request(Some("alice"), "GET", "/pub/page.shtml");
    assert!(!r.body.contains("secret-text"), "a subrequest bypassed the policy: {r:?}");
    assert!(
        apache.deny_lines(&apache.error_log()).iter().any(|l| l.contains("GET /secret/s.txt")),
        "{}",
        apache.error_log()
    );
}

// ---- configurations that must not get around the policy --------------------

#[test]
fn satisfy_any_cannot_lift_a_refusal_and_require_lines_log_once() {
    let mut apache = Apache::new("satisfy-any");
    apache.write_conf(&format!(
        r#"SSLVerifyClient optional_no_ca
LoadModule access_compat_module {MODULES}/mod_access_compat.so
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /open/** subject.CN=alice"
    CertAuthzRule "allow GET /compat-allow/** subject.CN=alice"
    CertAuthzRule "allow GET /compat-deny/** subject.CN=alice"
    Satisfy Any
    Require all granted
</Location>
<Location "/compat-allow">
    Order allow,deny
    Allow from all
</Location>
<Location "/compat-deny">
    Order deny,allow
    Deny from all
</Location>
<Location "/mixed">
    CertAuthz Off
    # Inherited Satisfy Any would skip every Require line (httpd's rule).
    Satisfy All
    CertAuthzRule "allow GET /mixed/** subject.CN=alice"
    <RequireAny>
        Require ip 127.0.0.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/mixed-none">
    CertAuthz Off
    Satisfy All
    CertAuthzRule "allow GET /mixed-none/** subject.CN=alice"
    <RequireAny>
        Require ip 192.0.2.1
        Require cert-authz
    </RequireAny>
</Location>
"#
    ));
    apache.start();

    // Satisfy Any with Require all granted, with mod_access_compat granting,
    // refusing or silent: the policy's refusal stands.
    // (What Deny from all does to alice there is mod_access_compat's call.)
    for path in ["/open/x", "/compat-allow/x"] {
        assert_eq!(apache.status(Some("alice"), "GET", path), 200, "alice {path}");
    }
    for path in ["/open/x", "/compat-allow/x", "/compat-deny/x"] {
        assert_eq!(apache.status(Some("reporter"), "GET", path), 403, "reporter {path}");
        assert_eq!(apache.status(Some("rogue"), "GET", path), 403, "rogue {path}");
        assert_eq!(apache.status(None, "GET", path), 403, "no certificate {path}");
    }
    assert_eq!(apache.status(Some("alice"), "POST", "/open/y"), 403);

    // Require cert-authz stays one vote among the Require lines.
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed/x"), 200, "Require ip grants");
    assert_eq!(apache.status(Some("alice"), "GET", "/mixed-none/x"), 200);
    assert_eq!(apache.status(Some("reporter"), "GET", "/mixed-none/x"), 403);

    // One deny line per refused request, none where another line granted.
    // The provider's line is written when the request ends.
    apache.wait_for("the provider's deny line", || {
        !apache.denies_of(&apache.error_log(), "/mixed-none/x").is_empty()
    });
    let log = apache.error_log();
    for path in ["/open/x", "/compat-allow/x", "/compat-deny/x"] {
        assert_eq!(apache.denies_of(&log, path).len(), 3, "{path}:\n{log}");
    }
    assert_eq!(apache.denies_of(&log, "/mixed-none/x").len(), 1, "{log}");
    assert!(apache.denies_of(&log, "/mixed-none/x")[0].contains("CN=reporter"), "{log}");
    assert!(
        apache.denies_of(&log, "/mixed/x").is_empty(),
        "a request that Require ip granted was logged as denied:\n{log}"
    );
    assert!(
        !apache.deny_lines(&log).iter().any(|l| l.contains(": GET ") && l.contains("subject \"CN=alice")),
        "{log}"
    );
}

#[test]
fn an_encoded_slash_never_reaches_a_decoding_backend() {
    let backend = Backend::start();
    let mut apache = Apache::new("encoded-slash");
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
AllowEncodedSlashes NoDecode
ProxyPass "/api/" "http://127.0.0.1:{port}/api/" nocanon
<Location "/">
    CertAuthz On
    CertAuthzRule "allow * /api/** any"
    CertAuthzRule "deny * /api/admin/** any"
</Location>
"#,
        port = backend.port
    ));
    apache.start();

    assert_eq!(apache.status(Some("alice"), "GET", "/api/reports/1"), 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/api/admin/users"), 403);
    for path in [
        "/api/admin%2Fusers",
        "/api/admin%2fusers",
        "/api/x%2F..%2Fadmin%2Fusers",
        "/api/admin%5Cusers",
        "/api/admin;x/users",
    ] {
        let r = apache.request_with(Some("alice"), "GET", path, &["--path-as-is"]);
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    // A method in lower case, which a backend may serve as its upper-case
    // twin, is refused rather than left unmatched by `deny GET` rules.
    assert_eq!(apache.status(Some("alice"), "get", "/api/reports/1"), 403);
    let requests = backend.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "only the allowed request reaches the backend: {requests:?}");
    assert!(requests[0][0].starts_with("GET /api/reports/1 "), "{requests:?}");
    let log = apache.error_log();
    assert!(
        apache
            .deny_lines(&log)
            .iter()
            .any(|l| l.contains("/api/admin%2Fusers") && l.contains("path is not unambiguous")),
        "{log}"
    );
}

#[test]
fn identity_headers_for_proxies_cannot_be_forged_in_any_spelling() {
    let backend = Backend::start();
    let mut apache = Apache::new("request-header");
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
LoadModule headers_module {MODULES}/mod_headers.so
ProxyPass "/app/" "http://127.0.0.1:{port}/app/"
ProxyPass "/open/" "http://127.0.0.1:{port}/open/"
CertAuthzUser subject.CN
<Location "/app">
    CertAuthz On
    CertAuthzRule "allow GET /app/** any"
    CertAuthzRequestHeader X-Client-Identity user
    CertAuthzRequestHeader X-Client-Subject subject
    # An old setup's header, set before the module's: the module wins.
    RequestHeader set X-Client-Identity "expr=%{{reqenv:HTTP_X_FORGE}}"
</Location>
<Location "/open">
    # No decision here, yet nobody may pose as an identity either.
    CertAuthzRequestHeader X-Client-Identity user
</Location>
"#,
        port = backend.port
    ));
    apache.start();

    #[rustfmt::skip]
    let forged = [
        "-H", "X-Client-Identity: admin", "-H", "X_Client_Identity: admin", "-H", "x-client_identity: admin",
        "-H", "X-CLIENT-SUBJECT: CN=admin", "-H", "X-Forge: admin",
    ];
    let r = apache.request_with(Some("alice"), "GET", "/app/x", &forged);
    assert_eq!(r.status, 200, "{r:?}");
    let r = apache.request_with(Some("alice"), "GET", "/open/x", &forged);
    assert_eq!(r.status, 200, "{r:?}");

    let folded = |line: &str| {
        line.split_once(':').map(|(n, v)| (n.to_ascii_lowercase().replace('_', "-"), v.trim().to_string()))
    };
    let requests = backend.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let headers = |i: usize, name: &str| -> Vec<String> {
        requests[i]
            .iter()
            .skip(1)
            .filter_map(|l| folded(l))
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(headers(0, "x-client-identity"), vec!["alice"], "{:?}", requests[0]);
    let subject = headers(0, "x-client-subject");
    assert_eq!(subject.len(), 1, "{:?}", requests[0]);
    assert!(subject[0].starts_with("CN=alice,"), "{subject:?}");
    assert!(headers(1, "x-client-identity").is_empty(), "{:?}", requests[1]);
}

#[test]
fn php_fpm_through_proxy_fcgi_reads_only_the_authorized_identity() {
    let php = common::PhpFpm::start("apache");
    let mut apache = Apache::new("php-fpm");
    // ProxyPassMatch sends SCRIPT_FILENAME as proxy:fcgi://HOST:PORT/PATH,
    // which php-fpm turns back into PATH (checked below).
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_fcgi_module {MODULES}/mod_proxy_fcgi.so
ProxyPassMatch "^/php/.*$" "fcgi://127.0.0.1:{port}{docroot}/who.php"
<Location "/php/">
    CertAuthz On
    CertAuthzUser subject.CN
    CertAuthzRule "allow GET /php/** subject.CN=alice"
    CertAuthzRule "allow GET /php/** subject.CN=reporter"
    CertAuthzRequestHeader X-Client-Identity user
</Location>
"#,
        port = php.port,
        docroot = php.docroot.display(),
    ));
    apache.start();

    #[rustfmt::skip]
    let forged = [
        "-H", "Authorization: Basic YWRtaW46eA==", "-H", "X-Client-Identity: admin",
        "-H", "X_Client_Identity: admin", "-H", "Remote-User: admin",
    ];
    let r = apache.request_with(Some("reporter"), "GET", "/php/who", &forged);
    assert_eq!(r.status, 200, "{r:?}\n{}", php.logs());
    let php_value = |key: &str| common::PhpFpm::value(&r, key);
    assert_eq!(php_value("SCRIPT_FILENAME"), format!("{}/who.php", php.docroot.display()), "{r:?}");
    assert_eq!(php_value("CERT_AUTHZ_DECISION"), "allow", "{r:?}");
    assert_eq!(php_value("REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(php_value("CERT_AUTHZ_USER"), "reporter", "{r:?}");
    assert_eq!(php_value("HTTP_X_CLIENT_IDENTITY"), "reporter", "{r:?}");
    // httpd keeps the Authorization header from FastCGI (no CGIPassAuth).
    assert_eq!(php_value("PHP_AUTH_USER"), "", "{r:?}");
    // Only the header that names itself Remote-User still says admin, as a header.
    assert_eq!(php_value("ADMIN_KEYS"), "HTTP_REMOTE_USER", "{r:?}");

    // Refused: a 403 from Apache, and PHP never runs.
    let r = apache.request_with(Some("opsbot"), "GET", "/php/refused", &forged);
    assert_eq!(r.status, 403, "{r:?}");
    let r = apache.request(Some("alice"), "GET", "/php/after");
    assert_eq!((r.status, common::PhpFpm::value(&r, "REMOTE_USER")), (200, "alice".to_string()), "{r:?}");
    let reached = php.wait_for_request("/php/after");
    assert_eq!(reached, ["/php/who user=reporter", "/php/after user=alice"], "{}", php.logs());
    assert_eq!(apache.denies_of(&apache.error_log(), "/php/refused").len(), 1, "{}", apache.error_log());
}

/// One request over `openssl s_client`, saving or resuming the session:
/// (status, whether the session was resumed).
fn s_client(apache: &Apache, proto: &str, client: &str, sess: (&str, &std::path::Path)) -> (u16, bool) {
    let pki = apache.pki();
    let (cert, key, proto) = (pki.cert(client), pki.key(client), format!("-{proto}"));
    let args: [&std::ffi::OsStr; 10] = [
        "-ign_eof".as_ref(),
        "-servername".as_ref(),
        "localhost".as_ref(),
        proto.as_ref(),
        "-cert".as_ref(),
        cert.as_ref(),
        "-key".as_ref(),
        key.as_ref(),
        sess.0.as_ref(),
        sess.1.as_ref(),
    ];
    let text = common::s_client(
        apache.port(),
        &args,
        "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let status = text
        .lines()
        .find_map(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text.lines().any(|l| l.starts_with("Reused,")))
}

#[test]
fn a_resumed_session_is_decided_with_the_chain_verified_again() {
    let mut apache = Apache::new("resumed-chain");
    let ca = cert_authz::Identity::from_pem(&fs::read(apache.pki().path("ca.pem")).unwrap()).unwrap();
    let spki = ca.values(cert_authz::Attr::parse("spki").unwrap())[0].to_string();
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
SSLProtocol -all +TLSv1.2 +TLSv1.3
<Location "/">
    CertAuthz On
    CertAuthzRule "allow GET /** ca.spki={spki}"
    CertAuthzRule "deny GET /** ca.spki={spki} subject.CN=reporter"
</Location>
"#
    ));
    apache.start();

    // OpenSSL keeps no verified chain with a session: a resumed one must
    // still see the CA, for the allow (alice) and for the deny (reporter).
    // (TLS 1.2: this s_client exchange gets no answer over TLS 1.3 here; the
    // module's path for a resumed session is the same for both.)
    for proto in ["tls1_2"] {
        for (client, want) in [("alice", 200), ("reporter", 403)] {
            let sess = apache.dir().join(format!("{proto}-{client}.sess"));
            let first = s_client(&apache, proto, client, ("-sess_out", &sess));
            assert_eq!(first, (want, false), "{proto} {client}, new session");
            let again = s_client(&apache, proto, client, ("-sess_in", &sess));
            assert_eq!(again, (want, true), "{proto} {client}, resumed session");
        }
    }
}

// ---- mistakes that apache2 -t names ---------------------------------------------------

#[test]
fn configtest_names_a_scope_where_no_certificate_can_be_verified() {
    let mut apache = Apache::new("no-verify");
    let on = "CertAuthzPolicy shared.policy\n<Location \"/x\">\n    CertAuthz On\n</Location>\n";
    let refused = "no client certificate can be verified there, so every request would be refused";

    apache.write_conf(on);
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
    let at = apache.conf_position("CertAuthz On");
    assert!(
        text.contains(&format!(
            "CA00040: {at}: CertAuthz On, but no SSLVerifyClient require, optional or optional_no_ca is \
             set in the main server or any virtual host: {refused}"
        )),
        "{text}"
    );

    // In report mode too, as in nginx: a report of nothing but refusals tells nothing.
    apache.write_conf(&on.replace("CertAuthz On\n", "CertAuthz On\n    CertAuthzMode report\n"));
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
    assert!(text.contains(&format!("CA00040: {at}: CertAuthz On, but no SSLVerifyClient")), "{text}");

    // A SSLVerifyClient in any section counts: which sections apply is known per request.
    apache.write_conf(&format!("{on}<Location \"/y\">\n    SSLVerifyClient optional\n</Location>\n"));
    let (ok, text) = apache.config_test();
    assert!(ok && !text.contains("CA0004"), "{text}");

    // A virtual host without TLS never sees a client certificate.
    let port = common::free_port();
    let plain_host = format!("Listen 127.0.0.1:{port}\n<VirtualHost 127.0.0.1:{port}>\n    SSLEngine off\n");
    apache.write_conf(&format!(
        "SSLVerifyClient require\nCertAuthzPolicy shared.policy\n{plain_host}    <Location \"/\">\n        \
         CertAuthz On\n    </Location>\n</VirtualHost>\n"
    ));
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
    let (at, host) = (apache.conf_position("CertAuthz On"), apache.conf_position("<VirtualHost"));
    assert!(
        text.contains(&format!(
            "CA00040: {at}: CertAuthz On, but SSLEngine is not on in the virtual host at {host}: {refused}"
        )),
        "{text}"
    );

    // The main server's CertAuthz On applies to such a host too, which it then refuses whole.
    apache.write_conf(&format!(
        "SSLVerifyClient require\nCertAuthzPolicy shared.policy\nCertAuthz On\n{plain_host}</VirtualHost>\n"
    ));
    let (ok, text) = apache.config_test();
    assert!(ok, "{text}");
    let (at, host) = (apache.conf_position("CertAuthz On"), apache.conf_position("<VirtualHost"));
    assert!(
        text.contains(&format!(
            "CA00041: {at}: CertAuthz On applies to the virtual host at {host} too, which has no SSLEngine \
             on: every request to it is refused"
        )),
        "{text}"
    );

    // At start-up, httpd reads its configuration twice: the warning is in the error log once.
    apache.start();
    assert_eq!(apache.error_log().matches("CA00041").count(), 1, "{}", apache.error_log());
    apache.stop();

    // A <Location> whose only policies are in sections beside it, never where it applies.
    let siblings =
        "SSLVerifyClient require\n<Location \"/a\">\n    CertAuthzRule \"allow GET /a any\"\n</Location>\n\
                    <Location \"/b\">\n    CertAuthz On\n</Location>\n";
    apache.write_conf(siblings);
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
    let at = apache.conf_position("CertAuthz On");
    assert!(
        text.contains(&format!(
            "CA00042: {at}: CertAuthz On in <Location \"/b\">, but no policy can be in effect there: the only \
             CertAuthzPolicy and CertAuthzRule lines are in <Location> sections that neither contain it nor lie \
             within it"
        )),
        "{text}"
    );
    // One that contains it, lies within it, or may apply (another kind of section) is enough.
    for other in
        ["<Location \"/\">", "<Location \"/b/api\">", "<LocationMatch \"^/[ab]\">", "<Directory \"/\">"]
    {
        let close = other.split(' ').next().unwrap().replace('<', "</") + ">";
        apache.write_conf(&format!("{siblings}{other}\n    CertAuthzRule \"allow GET /b any\"\n{close}\n"));
        let (ok, text) = apache.config_test();
        assert!(ok, "{other}: {text}");
    }

    // Without mod_ssl, nothing is ever verified.
    apache.write_conf("CertAuthzPolicy shared.policy\nCertAuthz On\n");
    let conf = fs::read_to_string(apache.conf_path()).unwrap();
    let without_ssl: String = conf
        .lines()
        .filter(|l| !l.contains("ssl_module") && !l.starts_with("SSL"))
        .map(|l| format!("{l}\n"))
        .collect();
    apache.write_raw_conf(&without_ssl);
    let (ok, text) = apache.config_test();
    assert!(!ok, "accepted:\n{text}");
    let at = apache.conf_position("CertAuthz On");
    assert!(
        text.contains(&format!("CA00040: {at}: CertAuthz On, but mod_ssl is not loaded: {refused}")),
        "{text}"
    );
}

#[test]
fn a_htaccess_file_cannot_change_the_module_and_is_told_why() {
    let mut apache = Apache::new("htaccess");
    apache.write_conf(&format!(
        "SSLVerifyClient require\nCertAuthzPolicy shared.policy\n<Location \"/\">\n    CertAuthz On\n</Location>\n\
         <Directory \"{}\">\n    AllowOverride AuthConfig\n</Directory>\n",
        apache.path("cgi-bin").display()
    ));
    apache.start();
    assert_eq!(apache.status(Some("alice"), "GET", "/status"), 200);
    assert_eq!(apache.status(Some("alice"), "GET", "/admin/x"), 403);
    for line in [
        "CertAuthz Off",
        "CertAuthzRule \"allow * /** any\"",
        "CertAuthzPolicy /dev/null",
        "CertAuthzMode report",
        "CertAuthzUser subject.CN",
        "CertAuthzRequestHeader X-User user",
        "CertAuthzExport groups",
    ] {
        fs::write(apache.path("cgi-bin/.htaccess"), format!("{line}\n")).unwrap();
        // Refused as a broken .htaccess is: the request fails, and does not pass.
        assert_eq!(apache.status(Some("alice"), "GET", "/admin/x"), 500, "{line}");
        let name = line.split(' ').next().unwrap();
        let want = format!(
            "{name} cannot be used in a .htaccess file: cert-authz is configured only in the server \
             configuration (a <Directory> or <Location> section), where its policy is compiled at start-up \
             and no .htaccess file can change it"
        );
        let log = apache.error_log();
        assert!(log.contains(&want), "{line}: {log}");
    }
    fs::remove_file(apache.path("cgi-bin/.htaccess")).unwrap();
    assert_eq!(apache.status(Some("alice"), "GET", "/admin/x"), 403);
}
