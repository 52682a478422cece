//! What the backend and the access log are given, in both servers: Apache's
//! `CertAuthzExport` and `CertAuthzRequestHeader` items, nginx's variables
//! (`$cert_authz_groups`, `$cert_authz_client_cert`, `$cert_authz_attr_NAME`,
//! ...), and the JSON access-log recipes of docs/audit-logs.md, run as the
//! document writes them.
//!
//! The expected values are worked out here from the certificates
//! themselves (PEM bodies, SHA-256 of the DER), not read back from the
//! module.  Each test starts its own server on a free loopback port and
//! stops it by its pid.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use cert_authz::{Attr, Identity, Reason};
use sha2::{Digest, Sha256};

use common::apache::{Apache, MODULES};
use common::nginx::{tls_server, Nginx};
use common::server::{Kind, Server};
use common::{pki, Backend, Reply};

const POLICY: &str = "\
group staff subject.O=\"Example Corp\"
group ops subject.OU=ops
group payers san.uri=spiffe://example.org/ns/prod/sa/billing
allow GET /app/** any
allow GET /proxy/** any
allow GET /json/** subject.O=\"Example Corp\"
allow GET /errors/** any
";

/// The attributes the tests export, by the name each server gives them
/// (CERT_AUTHZ_<NAME>, $cert_authz_attr_<name>).
const ATTRS: &[(&str, &str)] = &[
    ("ISSUER", "issuer"),
    ("SERIAL", "serial"),
    ("FINGERPRINT", "fingerprint"),
    ("SUBJECT_CN", "subject.CN"),
    ("SUBJECT_OU", "subject.OU"),
    ("SAN_URI", "san.uri"),
];

/// The DER of the first certificate in a PEM file, as base64: the PEM body.
fn pem_body(pem: &str) -> String {
    let start = pem.find("-----BEGIN CERTIFICATE-----").unwrap() + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----").unwrap() + start;
    pem[start..end].split_whitespace().collect()
}

/// Everything `client`'s allowed request exports, by the name after
/// CERT_AUTHZ_, as Apache names it: each attribute as NAME_0, NAME_1, ...
/// and as NAME where it has exactly one value.
fn expected(client: &str, groups: &str) -> BTreeMap<String, String> {
    let pem = fs::read_to_string(pki().cert(client)).unwrap();
    let identity = Identity::from_pem(pem.as_bytes()).unwrap();
    let der = data_encoding::BASE64.decode(pem_body(&pem).as_bytes()).unwrap();
    let ca = fs::read_to_string(pki().path("ca.pem")).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;

    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    put("DECISION", "allow".into());
    put("REASON", Reason::AllowRule.text().into());
    put("MODE", "enforce".into());
    put("SUBJECT", identity.subject_text().into());
    if !groups.is_empty() {
        put("GROUPS", groups.into());
    }
    // The server counted at the request, a moment ago: within that
    // moment a day may end (a certificate made in the second of the
    // request has exactly 30 days left then, a second later 29).
    let days = (identity.not_after - now).div_euclid(86_400);
    assert!((28..=30).contains(&days), "a 30-day certificate has {days} days left");
    put("DAYS_LEFT", days.to_string());
    put("DAYS_LEFT_BEFORE", (identity.not_after - now + DAYS_SLACK).div_euclid(86_400).to_string());
    put("CLIENT_CERT", format!(":{}:", pem_body(&pem)));
    put("CLIENT_CERT_CHAIN", format!(":{}:", pem_body(&ca)));
    for (name, attr) in ATTRS {
        let values: Vec<String> = match *attr {
            "issuer" => vec!["CN=Example Test CA,O=Example Corp".into()],
            "fingerprint" => vec![Sha256::digest(&der).iter().map(|b| format!("{b:02X}")).collect()],
            other => identity.values(Attr::parse(other).unwrap()).iter().map(|v| v.to_string()).collect(),
        };
        for (i, v) in values.iter().enumerate() {
            put(&format!("{name}_{i}"), v.clone());
        }
        if values.len() == 1 {
            put(name, values[0].clone());
        }
    }
    out
}

/// How long before `expected` a request may have been counted.
const DAYS_SLACK: i64 = 60;

/// Takes DAYS_LEFT as right when it is either count of the moment before
/// `expected` ran (see there), so that maps can be compared whole.
fn settle_days(got: &mut BTreeMap<String, String>, want: &mut BTreeMap<String, String>) {
    let before = want.remove("DAYS_LEFT_BEFORE").unwrap();
    if got.get("DAYS_LEFT") == Some(&before) {
        want.insert("DAYS_LEFT".into(), before);
    }
}

/// The CERT_AUTHZ_* variables a CGI script was given, but the rule (its
/// FILE:LINE is checked apart).
fn cgi_env(reply: &Reply) -> BTreeMap<String, String> {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("CERT_AUTHZ_"))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "RULE")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A CGI script that prints every CERT_AUTHZ_* variable it was given.
const EXPORT_CGI: &str =
    "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | grep '^CERT_AUTHZ_' | sort\n";

#[test]
fn apache_exports_what_a_scope_asks_for_and_nothing_a_client_or_config_forged() {
    let backend = Backend::start();
    let mut apache = Apache::new("exports");
    fs::write(apache.path("cgi-bin/env.cgi"), EXPORT_CGI).unwrap();
    apache.policy_file("exports.policy", POLICY);
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
CertAuthzPolicy exports.policy
# Configured values under the module's names: the module's own replace
# them, and names it did not set are removed.
SetEnv CERT_AUTHZ_GROUPS forged
SetEnv CERT_AUTHZ_SUBJECT_CN_7 forged
ProxyPass "/proxy/" "http://127.0.0.1:{port}/proxy/"
<Location "/app">
    CertAuthz On
    CertAuthzExport groups days-left client-cert client-cert-chain mode
    CertAuthzExport issuer serial fingerprint subject.CN subject.OU san.uri
</Location>
<Location "/app/plain">
    # Inherits the list, adds nothing.
</Location>
<Location "/provider">
    # The provider is never asked when the address grants: no decision,
    # and still nothing under the module's names but the module's.
    CertAuthz Off
    SetEnvIf User-Agent "(.+)" CERT_AUTHZ_GROUPS=$1
    <RequireAny>
        Require ip 127.0.0.1
        Require cert-authz
    </RequireAny>
</Location>
<Location "/proxy">
    CertAuthz On
    CertAuthzRequestHeader Client-Cert client-cert
    CertAuthzRequestHeader Client-Cert-Chain client-cert-chain
    CertAuthzRequestHeader X-Groups groups
    CertAuthzRequestHeader X-CN subject.CN
    CertAuthzRequestHeader X-Days-Left days-left
    CertAuthzRequestHeader X-Reason reason
</Location>
"#,
        port = backend.port
    ));
    apache.start();

    for (client, groups) in [("opsbot", "staff,ops"), ("billing", "staff,payers"), ("twocn", "staff,ops")] {
        let reply = apache.request(Some(client), "GET", "/app/x");
        let rule = reply.body.lines().find_map(|l| l.strip_prefix("CERT_AUTHZ_RULE=")).unwrap_or_default();
        assert!(rule.ends_with("exports.policy:4"), "{client}: {reply:?}");
        let (mut got, mut want) = (cgi_env(&reply), expected(client, groups));
        settle_days(&mut got, &mut want);
        assert_eq!(got, want, "{client}");
    }
    // Two CNs: each by its index, neither as "the" CN.
    let twocn = cgi_env(&apache.request(Some("twocn"), "GET", "/app/x"));
    assert_eq!(
        (twocn.get("SUBJECT_CN_0"), twocn.get("SUBJECT_CN_1")),
        (Some(&"admin".into()), Some(&"opsbot".into()))
    );
    assert_eq!(twocn.get("SUBJECT_CN"), None);
    // No group: no variable.  The inherited list applies below.
    let reporter = cgi_env(&apache.request(Some("reporter"), "GET", "/app/plain/y"));
    assert_eq!(reporter.get("GROUPS"), None, "{reporter:?}");
    assert_eq!(reporter.get("SUBJECT_CN").map(String::as_str), Some("reporter"));

    let reply = apache.request_with(Some("opsbot"), "GET", "/provider/x", &["-A", "admins"]);
    assert_eq!(cgi_env(&reply), BTreeMap::new(), "{reply:?}");

    // Proxied: every header a backend could read under one of the names is
    // the module's alone, in whatever spelling the client sent it.
    #[rustfmt::skip]
    let forged = [
        "-H", "Client-Cert: :Zm9yZ2Vk:", "-H", "client_cert: :Zm9yZ2Vk:", "-H", "X-Groups: admins",
        "-H", "x_cn: admin", "-H", "X-Reason: forged",
    ];
    let reply = apache.request_with(Some("twocn"), "GET", "/proxy/z", &forged);
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut want = expected("twocn", "staff,ops");
    let requests = backend.requests.lock().unwrap().clone();
    let folded = |name: &str| -> Vec<String> {
        requests[0]
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.to_ascii_lowercase().replace('_', "-") == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    assert_eq!(folded("client-cert"), vec![want["CLIENT_CERT"].clone()], "{:?}", requests[0]);
    assert_eq!(folded("client-cert-chain"), vec![want["CLIENT_CERT_CHAIN"].clone()]);
    assert_eq!(folded("x-groups"), vec!["staff,ops".to_string()]);
    let mut got = BTreeMap::from([("DAYS_LEFT".to_string(), folded("x-days-left").concat())]);
    settle_days(&mut got, &mut want);
    assert_eq!(got["DAYS_LEFT"], want["DAYS_LEFT"]);
    assert_eq!(folded("x-reason"), vec![Reason::AllowRule.text().to_string()]);
    // Two CNs: no X-CN at all, and the forged one is gone too.
    assert!(folded("x-cn").is_empty(), "{:?}", requests[0]);

    // A word that is neither an item nor an attribute stops the configuration.
    apache.write_conf("CertAuthzExport subject.CM\n");
    let (ok, text) = apache.config_test();
    assert!(!ok && text.contains("CertAuthzExport: 'subject.CM' is neither an item"), "{text}");
    apache.write_conf("CertAuthzExport user\n");
    let (ok, text) = apache.config_test();
    assert!(!ok && text.contains("CERT_AUTHZ_USER is always exported"), "{text}");
    // CERT_AUTHZ_SAN_OTHER_1_2_3 would be both san.other.1.2.3 and the
    // fourth value of san.other.1.2.
    apache.write_conf("CertAuthzExport san.other.1.2 san.other.1.2.3\n");
    let (ok, text) = apache.config_test();
    assert!(!ok && text.contains("would share variable names"), "{text}");
    // Items are words in any case, as the directive's other values are.
    apache.write_conf("CertAuthzRequestHeader X-Groups Groups\nCertAuthzExport Days-Left\n");
    let (ok, text) = apache.config_test();
    assert!(ok, "{text}");
}

#[test]
fn apache_variables_changed_after_the_export_are_the_modules_again() {
    // The fixups check the variables where the export put them: a change
    // before them (rewrite's [E=!]), of them in another case
    // ([E=cert_authz_user:...], SetEnv), or a name added after them must
    // each lead to the module's own values alone, and so must the
    // ErrorDocument of a refusal.
    let mut apache = Apache::new("env-changed");
    // Every name in any case: apr's tables and the CGI environment keep it.
    let cgi =
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | grep -i '^CERT_AUTHZ_' | sort\n";
    fs::write(apache.path("cgi-bin/env.cgi"), cgi).unwrap();
    apache.policy_file("changed.policy", "allow GET /app/** subject.OU=ops\nallow GET /errors/** any\n");
    apache.write_conf(&format!(
        r#"SSLVerifyClient require
LoadModule rewrite_module {MODULES}/mod_rewrite.so
CertAuthzPolicy changed.policy
CertAuthzUser subject.CN
SetEnvIf Request_URI "." EARLY=1 CERT_AUTHZ_USER=admin
ErrorDocument 403 /errors/403
<Location "/app">
    CertAuthz On
</Location>
<Location "/errors">
    CertAuthz On
</Location>
<Location "/app/rewrite">
    RewriteEngine On
    RewriteRule ^ - [E=!EARLY,E=cert_authz_user:admin,E=Cert_Authz_Decision:allow]
</Location>
<Location "/app/after">
    SetEnv cert_authz_subject CN=admin
    SetEnv CERT_AUTHZ_RULE forged
</Location>
<Location "/app/added">
    RewriteEngine On
    RewriteRule ^ - [E=cert_authz_x:1]
</Location>
<Location "/app/removed">
    RewriteEngine On
    RewriteRule ^ - [E=!CERT_AUTHZ_REASON]
</Location>
"#
    ));
    apache.start();

    // Each line of a CERT_AUTHZ_* name in any case, upper-cased.
    let names = |body: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(name, _)| name.to_ascii_uppercase())
            .filter(|name| name.starts_with("CERT_AUTHZ_"))
            .collect()
    };
    let value = |body: &str, name: &str| -> String {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("CERT_AUTHZ_{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    let mine = [
        "CERT_AUTHZ_DECISION",
        "CERT_AUTHZ_REASON",
        "CERT_AUTHZ_RULE",
        "CERT_AUTHZ_SUBJECT",
        "CERT_AUTHZ_USER",
    ];
    for path in ["/app/x", "/app/rewrite/x", "/app/after/x", "/app/added/x", "/app/removed/x"] {
        let reply = apache.request(Some("opsbot"), "GET", path);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(names(&reply.body), mine, "{path}: {reply:?}");
        assert_eq!(value(&reply.body, "USER"), "opsbot", "{path}");
        assert_eq!(value(&reply.body, "DECISION"), "allow", "{path}");
        assert_eq!(value(&reply.body, "REASON"), Reason::AllowRule.text(), "{path}");
        assert!(value(&reply.body, "SUBJECT").starts_with("CN=opsbot,"), "{path}");
        assert!(value(&reply.body, "RULE").ends_with("changed.policy:1"), "{path}");
    }
    // Refused: the error page's script is told of the refusal, not of its
    // own allow, and of no user.
    for path in ["/app/rewrite/x", "/app/after/x", "/app/added/x"] {
        let reply = apache.request(Some("billing"), "GET", path);
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
        assert_eq!(value(&reply.body, "DECISION"), "deny", "{path}: {reply:?}");
        assert!(!names(&reply.body).contains(&"CERT_AUTHZ_USER".to_string()), "{path}: {reply:?}");
        assert!(!reply.body.contains("admin"), "{path}: {reply:?}");
    }
}

/// The variables the nginx test hands to its backend, each as a header
/// X-CA-<NAME> (with '-' for '_'): (NAME, variable).
const NGINX_VARS: &[(&str, &str)] = &[
    ("DECISION", "cert_authz_decision"),
    ("REASON", "cert_authz_reason"),
    ("MODE", "cert_authz_mode"),
    ("SUBJECT", "cert_authz_subject"),
    ("GROUPS", "cert_authz_groups"),
    ("ISSUER", "cert_authz_issuer"),
    ("SERIAL", "cert_authz_serial"),
    ("FINGERPRINT", "cert_authz_fingerprint"),
    ("DAYS_LEFT", "cert_authz_days_left"),
    ("CLIENT_CERT", "cert_authz_client_cert"),
    ("CLIENT_CERT_CHAIN", "cert_authz_client_cert_chain"),
    ("SUBJECT_CN", "cert_authz_attr_subject_cn"),
    ("SUBJECT_CN_0", "cert_authz_attr_subject_CN_0"),
    ("SUBJECT_CN_1", "cert_authz_attr_subject_cn_1"),
    ("SUBJECT_OU", "cert_authz_attr_subject_ou"),
    ("SAN_URI", "cert_authz_attr_san_uri"),
    ("SAN_URI_0", "cert_authz_attr_san_uri_0"),
];

#[test]
fn nginx_variables_give_the_backend_what_it_used_to_parse_itself() {
    let backend = Backend::start();
    let headers: String = NGINX_VARS
        .iter()
        .map(|(name, var)| format!("proxy_set_header X-CA-{} ${var};\n", name.replace('_', "-")))
        .collect();
    let mut nginx = Nginx::new("exports");
    nginx.policy_file("exports.policy", POLICY);
    nginx.write_conf(&tls_server(
        "on",
        &format!(
            "cert_authz_policy exports.policy;\n\
             location / {{ cert_authz on;\n{headers}proxy_pass http://127.0.0.1:{}; }}",
            backend.port
        ),
    ));
    nginx.start();

    let clients =
        [("opsbot", "staff,ops"), ("billing", "staff,payers"), ("twocn", "staff,ops"), ("reporter", "")];
    for (i, (client, groups)) in clients.iter().enumerate() {
        // A client's own X-CA-* headers are replaced, or dropped where the
        // variable is empty.
        let forged: Vec<String> =
            NGINX_VARS.iter().map(|(n, _)| format!("X-CA-{}: forged", n.replace('_', "-"))).collect();
        let mut args = Vec::new();
        for h in &forged {
            args.extend(["-H", h.as_str()]);
        }
        let reply = nginx.request_with(Some(client), "GET", "/app/x", &args);
        assert_eq!(reply.status, 200, "{client}: {reply:?}");
        let mut want = expected(client, groups);
        let days = backend.header(i, "X-CA-DAYS-LEFT").concat();
        settle_days(&mut BTreeMap::from([("DAYS_LEFT".to_string(), days)]), &mut want);
        for (name, var) in NGINX_VARS {
            let got = backend.header(i, &format!("X-CA-{}", name.replace('_', "-")));
            let want: Vec<String> = want.get(*name).cloned().into_iter().collect();
            assert_eq!(got, want, "{client}: ${var}");
        }
    }

    // A variable that names no attribute fails nginx -t.
    nginx.write_conf(&tls_server(
        "on",
        "location / { cert_authz on; cert_authz_rule \"allow * /** any\"; \
         add_header X-CN $cert_authz_attr_subject_cm; }",
    ));
    let (ok, text) = nginx.config_test();
    assert!(
        !ok && text.contains("variable \"$cert_authz_attr_subject_cm\" names no certificate attribute"),
        "{text}"
    );

    // A named variable under the module's prefix would stand in for the
    // module's own: refused.
    for define in [
        "set $cert_authz_attr_subject_cn $http_x_user;",
        "map $http_x_user $cert_authz_attr_san_uri { default $http_x_user; }",
    ] {
        let in_server = define.starts_with("set");
        let location = "location / { cert_authz on; cert_authz_rule \"allow * /** any\"; \
                        proxy_set_header X-CN $cert_authz_attr_subject_cn; proxy_pass http://127.0.0.1:1; }";
        nginx.write_conf(&if in_server {
            tls_server("on", &format!("{define}\n{location}"))
        } else {
            format!("{define}\n{}", tls_server("on", location))
        });
        let (ok, text) = nginx.config_test();
        assert!(!ok && text.contains("is the cert_authz module's"), "{define}: {text}");
    }
}

// ---- the JSON access-log recipes of docs/audit-logs.md ----------------------

/// The body of the one fenced block of `lang` in docs/audit-logs.md.
fn recipe(lang: &str) -> String {
    let doc = fs::read_to_string(common::root().join("docs/audit-logs.md")).unwrap();
    let fence = format!("```{lang}\n");
    let start = doc.find(&fence).unwrap_or_else(|| panic!("no {lang} block")) + fence.len();
    let end = doc[start..].find("```").unwrap() + start;
    assert!(!doc[end + 3..].contains(&fence), "one {lang} block");
    doc[start..end].to_string()
}

/// The JSON lines of a log, once `n` of them are there.
fn json_lines<S: Server>(server: &S, file: &str, n: usize) -> Vec<serde_json::Value> {
    let path = server.dir().join(file);
    let read = || fs::read_to_string(&path).unwrap_or_default();
    server.wait_for("the access log lines", || read().lines().count() >= n);
    read()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// What both servers' recipes must log: an allowed request, a refused one
/// (a subject without O), one whose subject holds quotes and a backslash,
/// and one without a certificate.
fn check_audit_lines<S: Server>(server: &S, file: &str) {
    for (client, want) in [(Some("alice"), 200), (Some("reporter"), 403), (Some("odd"), 200), (None, 403)] {
        assert_eq!(server.status(client, "GET", "/json/a"), want, "{client:?}");
    }
    let lines = json_lines(server, file, 4);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let field =
        |i: usize, k: &str| lines[i][k].as_str().unwrap_or_else(|| panic!("{k} in {}", lines[i])).to_string();
    let identity = |client: &str| Identity::from_pem(&fs::read(pki().cert(client)).unwrap()).unwrap();

    let alice = identity("alice");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(field(0, "decision"), "allow");
    assert_eq!(field(0, "reason"), Reason::AllowRule.text());
    assert!(field(0, "rule").ends_with("exports.policy:6"), "{}", lines[0]);
    assert_eq!(field(0, "mode"), "enforce");
    assert_eq!(field(0, "subject"), alice.subject_text());
    assert_eq!(field(0, "issuer"), "CN=Example Test CA,O=Example Corp");
    assert_eq!(field(0, "serial"), &*alice.values(Attr::Serial)[0]);
    assert_eq!(field(0, "fingerprint"), &*alice.values(Attr::Fingerprint)[0]);
    assert_eq!(field(0, "path"), "/json/a");

    // Refused, then served the error page, which the policy allows: the
    // line is the refusal's.
    assert_eq!(lines[1]["status"], 403);
    assert_eq!(field(1, "decision"), "deny", "{}", lines[1]);
    assert_eq!(field(1, "reason"), Reason::NoMatchingRule.text());
    assert_eq!(field(1, "rule"), if server.kind() == Kind::Apache { "-" } else { "" });
    assert_eq!(field(1, "subject"), "CN=reporter");
    assert_eq!(field(1, "serial"), &*identity("reporter").values(Attr::Serial)[0]);

    assert_eq!(field(2, "subject"), "CN=say \\\"hi\\\" \\\\ bye,O=Example Corp");
    assert_eq!(field(3, "decision"), "deny");
    assert_eq!(field(3, "reason"), Reason::NoCertificate.text());
}

#[test]
fn apache_json_access_log_recipe_is_valid_json_with_every_field() {
    let mut apache = Apache::new("json-log");
    apache.policy_file("exports.policy", POLICY);
    apache.write_conf(&format!(
        "SSLVerifyClient optional\nCertAuthzPolicy exports.policy\n{}<Location \"/\">\n    CertAuthz On\n</Location>\n\
         # The error page is an internal redirect that the policy allows: the\n\
         # log must still show the refusal it is the page of.\n\
         ErrorDocument 403 /errors/403.html\n",
        recipe("apache")
    ));
    apache.start();
    check_audit_lines(&apache, "logs/cert-authz.json");
}

#[test]
fn nginx_json_access_log_recipe_is_valid_json_with_every_field() {
    let mut nginx = Nginx::new("json-log");
    nginx.policy_file("exports.policy", POLICY);
    nginx.write_conf(&format!(
        "{}{}",
        recipe("nginx"),
        tls_server(
            "optional",
            "cert_authz_policy exports.policy;\n\
             location / { cert_authz on; root PREFIX/html; }\n\
             error_page 403 /errors/403.html;",
        )
    ));
    fs::create_dir_all(nginx.dir().join("html/json")).unwrap();
    fs::write(nginx.dir().join("html/json/a"), "ok\n").unwrap();
    fs::create_dir_all(nginx.dir().join("html/errors")).unwrap();
    fs::write(nginx.dir().join("html/errors/403.html"), "refused\n").unwrap();
    common::share_with_workers(nginx.dir());
    nginx.start();
    check_audit_lines(&nginx, "logs/cert-authz.json");
}
