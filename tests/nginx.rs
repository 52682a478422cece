//! End-to-end tests of what only ngx_http_cert_authz_module in nginx has:
//! `satisfy any` with the access module, internal redirects and
//! `try_files`, the variables in proxy headers, FastCGI parameters and the
//! access log, php-fpm with Debian's fastcgi_params, `cert_authz on` where
//! a server{} does not verify, and certificates verified by another
//! server{}.  What both servers do is tested once for both in
//! tests/both.rs.
//!
//! Each test starts its own nginx (common::nginx: its own prefix from
//! common::scratch(), loopback ports, the test PKI of common::pki) and stops
//! it by its pid when the test ends, also when it panics.  A missing nginx
//! or module is a failure, never a skip: run `make build` first.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::nginx::{tls_server, Nginx};
use common::server::Server;
use common::{free_port, pki, serve, share_with_workers, Backend};

/// A plain HTTP server block inside the same nginx on `port` that answers
/// every method with 200 and shows what it received: the "application".
fn app_server(port: u16) -> String {
    format!(
        "server {{\n\
         listen 127.0.0.1:{port};\n\
         location / {{ return 200 \"user=$http_x_client_identity\"; }}\n\
         }}\n"
    )
}

/// A TLS server block (see tls_server) followed by the app_server it proxies
/// to: `body` gets the app's port and returns the TLS server's body.
fn tls_server_with_app(verify: &str, body: impl FnOnce(u16) -> String) -> String {
    let app = free_port();
    format!("{}{}", tls_server(verify, &body(app)), app_server(app))
}

#[test]
fn satisfy_any_lifts_no_enforced_refusal_and_combines_in_report_mode() {
    let mut nginx = Nginx::with_http(
        "satisfy",
        &tls_server_with_app("optional", |app| {
            format!(
                "cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz on;\n\
                 location /local/ {{\n\
                 satisfy any;\n\
                 allow 127.0.0.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /remote/ {{\n\
                 satisfy any;\n\
                 allow 192.0.2.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /both/ {{\n\
                 allow 127.0.0.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /local-report/ {{\n\
                 cert_authz_mode report;\n\
                 satisfy any;\n\
                 allow 127.0.0.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}\n\
                 location /remote-report/ {{\n\
                 cert_authz_mode report;\n\
                 satisfy any;\n\
                 allow 192.0.2.1;\n\
                 deny all;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // An enforced refusal is final under satisfy any too: the address that
    // the access module allows does not lift it.
    assert_eq!(nginx.status(None, "GET", "/local/a"), 403);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/local/a"), 403);
    assert_eq!(nginx.status(Some("alice"), "GET", "/local/a"), 200);
    // an allow is NGX_OK, which grants under satisfy any
    assert_eq!(nginx.status(Some("alice"), "GET", "/remote/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/remote/a"), 403);
    assert_eq!(nginx.status(None, "GET", "/remote/a"), 403);
    // satisfy all: both must allow
    assert_eq!(nginx.status(Some("alice"), "GET", "/both/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/both/a"), 403);
    // each is one error line, the module's, as any final refusal
    let log = nginx.error_log();
    let lines = nginx.deny_lines(&log);
    assert_eq!(lines.len(), 5, "{log}");
    assert!(
        lines.iter().all(|l| l.contains("[error]") && l.contains("CA00010: client denied by cert-authz: ")),
        "{log}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains("GET /local/a,")).count(), 2, "{log}");
    assert!(!log.contains("access forbidden by rule"), "{log}");

    // Report mode is the composable form, as Apache's Require cert-authz in
    // a <RequireAny>: the policy's allow grants, its would-be refusal leaves
    // the outcome to the access module.
    assert_eq!(nginx.status(None, "GET", "/local-report/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/local-report/a"), 200);
    assert_eq!(nginx.status(Some("alice"), "GET", "/remote-report/a"), 200);
    assert_eq!(nginx.status(Some("reporter"), "GET", "/remote-report/a"), 403);
    assert_eq!(nginx.status(None, "GET", "/remote-report/a"), 403);
    // the two refusals are the access module's
    let log = nginx.error_log();
    assert_eq!(nginx.deny_lines(&log).len(), 5, "{log}");
    assert_eq!(log.matches("access forbidden by rule").count(), 2, "{log}");
}

#[test]
fn a_configuration_with_the_variables_passes_nginx_t() {
    let nginx = Nginx::with_http(
        "good",
        &tls_server(
            "on",
            "cert_authz on; cert_authz_rule \"allow GET /** any\";\n\
             cert_authz_mode enforce; cert_authz_user san.uri;\n\
             location / { fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
             fastcgi_param CERT_AUTHZ_RULE $cert_authz_rule; }",
        ),
    );
    let (ok, out) = nginx.config_test();
    assert!(ok, "{out}");
}

#[test]
fn the_backend_gets_the_real_identity_and_never_a_forged_one() {
    let backend = Backend::start();
    let mut nginx = Nginx::with_http(
        "proxy",
        &format!(
            "log_format authz '$cert_authz_decision|$cert_authz_rule|$cert_authz_user|\
             $cert_authz_subject|$uri';\n\
             {}",
            tls_server(
                "optional",
                &format!(
                    "access_log PREFIX/logs/authz.log authz;\n\
                     cert_authz_user subject.CN;\n\
                     proxy_set_header X-Client-Identity $cert_authz_user;\n\
                     proxy_set_header X-Cert-Authz-Subject $cert_authz_subject;\n\
                     proxy_set_header X-Cert-Authz-Decision $cert_authz_decision;\n\
                     location / {{\n\
                     cert_authz on;\n\
                     cert_authz_rule \"allow GET /app/** subject.O=\\\"Example Corp\\\"\";\n\
                     proxy_pass http://127.0.0.1:{};\n\
                     }}\n\
                     location /open/ {{ proxy_pass http://127.0.0.1:{}; }}",
                    backend.port, backend.port
                ),
            )
        ),
    );
    nginx.start();

    // spellings that WSGI or PHP read as the same variable: nginx ignores
    // header names with '_' (ignore_invalid_headers, on by default)
    #[rustfmt::skip]
    let forged = [
        "-H", "X-Client-Identity: admin", "-H", "X-Cert-Authz-Decision: allow",
        "-H", "X_Client_Identity: admin", "-H", "x-client_identity: admin",
    ];
    let reply = nginx.request_with(Some("alice"), "GET", "/app/x?q=1", &forged);
    assert_eq!(reply.status, 200);
    assert_eq!(backend.header(0, "X-Client-Identity"), vec!["alice"]);
    let folded = backend.requests.lock().unwrap()[0]
        .iter()
        .filter(|l| l.to_ascii_lowercase().replace('_', "-").starts_with("x-client-identity:"))
        .count();
    assert_eq!(folded, 1, "{:?}", backend.requests.lock().unwrap()[0]);
    assert_eq!(backend.header(0, "X-Cert-Authz-Decision"), vec!["allow"]);
    assert_eq!(backend.header(0, "X-Cert-Authz-Subject"), vec!["CN=alice,OU=users,O=Example Corp"]);

    // where the module is off nothing is exported, and the forged header
    // still does not pass: proxy_set_header replaces the client's
    let reply = nginx.request_with(None, "GET", "/open/x", &forged);
    assert_eq!(reply.status, 200);
    assert!(backend.header(1, "X-Client-Identity").is_empty());
    assert!(backend.header(1, "X-Cert-Authz-Decision").is_empty());

    // denied requests never reach the backend
    let reply = nginx.request_with(Some("reporter"), "GET", "/app/x", &forged);
    assert_eq!(reply.status, 403);
    assert_eq!(backend.requests.lock().unwrap().len(), 2);

    // log_format sees the variables too; nginx writes the line after the
    // response, so it may come a moment after curl is done
    let read_log = || fs::read_to_string(nginx.dir().join("logs/authz.log")).unwrap_or_default();
    nginx.wait_for("three access log lines", || read_log().lines().count() >= 3);
    let log = read_log();
    let conf = nginx.dir().join("conf/nginx.conf").display().to_string();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].starts_with(&format!("allow|{conf}:")), "{log}");
    assert!(lines[0].ends_with("|alice|CN=alice,OU=users,O=Example Corp|/app/x"), "{log}");
    assert_eq!(lines[1], "-|-|-|-|/open/x");
    assert!(lines[2].starts_with("deny|-|-|CN=reporter|/app/x"), "{log}");
}

#[test]
fn an_internal_redirect_is_a_new_decision() {
    let mut nginx = Nginx::with_http(
        "redirect",
        &tls_server_with_app("on", |app| {
            format!(
                "location /pub/ {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /pub/** any\";\n\
                 try_files /nonexistent /priv/from-pub;\n\
                 }}\n\
                 location /priv/ {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /priv/** subject.CN=opsbot\";\n\
                 cert_authz_user subject.CN;\n\
                 proxy_set_header X-Client-Identity $cert_authz_user;\n\
                 proxy_pass http://127.0.0.1:{app};\n\
                 }}"
            )
        }),
    );
    nginx.start();

    // allowed into /pub/, then try_files redirects to /priv/: decided again
    assert_eq!(nginx.status(Some("alice"), "GET", "/pub/a"), 403);
    let reply = nginx.request_with(Some("opsbot"), "GET", "/pub/a", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "user=opsbot"));
    let log = nginx.error_log();
    let lines = nginx.deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /priv/from-pub,"), "{log}");
}

/// A loopback server that records the raw bytes of the first read of each
/// connection and closes it: enough to see FastCGI parameters.
fn raw_backend() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let port = serve("the raw backend", move |mut stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
        let mut buf = [0u8; 65536];
        if let Ok(n) = stream.read(&mut buf) {
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (port, out)
}

#[test]
fn fastcgi_params_carry_the_identity() {
    let (port, seen) = raw_backend();
    let mut nginx = Nginx::with_http(
        "fastcgi",
        &tls_server(
            "on",
            &format!(
                "location / {{\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz_user subject.CN;\n\
                 fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
                 fastcgi_param CERT_AUTHZ_DECISION $cert_authz_decision;\n\
                 fastcgi_pass 127.0.0.1:{port};\n\
                 }}"
            ),
        ),
    );
    nginx.start();
    // the backend speaks no FastCGI: nginx answers 502, after sending
    let status = nginx.status(Some("alice"), "GET", "/index.php");
    assert_eq!(status, 502);
    let bytes = seen.lock().unwrap().clone();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // FastCGI name-value pairs: lengths, then name and value back to back
    assert!(has(b"CERT_AUTHZ_USERalice"), "{}", String::from_utf8_lossy(&bytes));
    assert!(has(b"CERT_AUTHZ_DECISIONallow"), "{}", String::from_utf8_lossy(&bytes));
}

/// Three TLS servers on one listener, as in issue 7: a.test (the default
/// server) verifies with the partner CA (the PKI's rogue CA, whose "rogue"
/// client is named alice too), b.test and c.test with the test CA and
/// enforce the policy; `c_verify` is c.test's ssl_verify_client.  Each
/// serves PREFIX/html/NAME/who, a file that names the server.  nginx 1.22's
/// default protocols stop at TLS 1.2: 1.3 is enabled here.
fn three_servers(name: &str, c_verify: &str, session: &str) -> Nginx {
    let server = |host: &str, ca: &str, verify: &str, authz: &str| {
        format!(
            "server {{\n\
             listen 127.0.0.1:PORT ssl;\n\
             server_name {host}.test;\n\
             ssl_client_certificate PKI/{ca};\n\
             ssl_verify_client {verify};\n\
             root PREFIX/html/{host};\n\
             add_header X-Reused $ssl_session_reused always;\n\
             {authz}\n\
             }}\n"
        )
    };
    let authz = "cert_authz on;\ncert_authz_rule \"allow GET /** subject.CN=alice\";";
    let nginx = Nginx::with_http(
        name,
        &format!(
            "ssl_protocols TLSv1.2 TLSv1.3;\n\
             ssl_certificate PKI/server.pem;\n\
             ssl_certificate_key PKI/server.key;\n\
             {session}\n{}{}{}",
            server("a", "rogue-ca.pem", "on", ""),
            server("b", "ca.pem", "on", authz),
            server("c", "ca.pem", c_verify, authz),
        ),
    );
    for host in ["a", "b", "c"] {
        let dir = nginx.dir().join("html").join(host);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("who"), format!("{host}.test\n")).unwrap();
    }
    share_with_workers(&nginx.dir().join("html"));
    nginx
}

/// What one `openssl s_client` connection got.
#[derive(Debug)]
struct TlsReply {
    /// Whether nginx says it resumed the session ($ssl_session_reused).
    reused: bool,
    /// The HTTP status, 0 when there was none (a failed handshake).
    status: u16,
    body: String,
}

/// s_client's arguments of both helpers below: `-quiet` (only what the
/// server sends, and -ign_eof), the protocol, the PKI's certificate
/// `client`, and a session to write or to resume.
fn tls_args(
    proto: &str,
    client: Option<&str>,
    sess_out: Option<&Path>,
    sess_in: Option<&Path>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-quiet".into(), format!("-{proto}").into()];
    if let Some(name) = client {
        args.extend(["-cert".into(), pki().cert(name).into(), "-key".into(), pki().key(name).into()]);
    }
    if let Some(path) = sess_out {
        args.extend(["-sess_out".into(), path.into()]);
    }
    if let Some(path) = sess_in {
        args.extend(["-sess_in".into(), path.into()]);
    }
    args
}

fn os_strs(args: &[OsString]) -> Vec<&OsStr> {
    args.iter().map(OsString::as_os_str).collect()
}

/// One `GET /who` with `Host: host` over `openssl s_client` with protocol
/// `proto` ("tls1_2", "tls1_3"), SNI `sni` (None: no SNI, as for an IP
/// address), client certificate `client` of the PKI, writing the session to
/// `sess_out` or resuming the one in `sess_in`.
fn s_client(
    nginx: &Nginx,
    proto: &str,
    sni: Option<&str>,
    client: Option<&str>,
    host: &str,
    sess_out: Option<&Path>,
    sess_in: Option<&Path>,
) -> TlsReply {
    let mut args = tls_args(proto, client, sess_out, sess_in);
    match sni {
        Some(name) => args.extend(["-servername".into(), name.into()]),
        None => args.push("-noservername".into()),
    }
    let request = format!("GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let text = common::s_client(nginx.port(), &os_strs(&args), &request);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let reused = head.lines().any(|l| l == "X-Reused: r");
    let status =
        head.strip_prefix("HTTP/1.1 ").and_then(|l| l.get(..3)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = body.lines().next().unwrap_or("").to_string();
    TlsReply { reused, status, body }
}

#[test]
fn a_certificate_verified_by_another_server_does_not_count() {
    // Resumption with session tickets (nginx's default) and with the
    // shared session cache.
    for (variant, session) in
        [("tickets", ""), ("cache", "ssl_session_tickets off;\nssl_session_cache shared:SSL:1m;")]
    {
        let mut nginx = three_servers(&format!("sni-{variant}"), "optional", session);
        nginx.start();
        let sess = nginx.dir().join("session.pem");
        let mut refused = 0;

        for proto in ["tls1_2", "tls1_3"] {
            let what = |case: &str| format!("{variant} {proto}: {case}");

            // The control: alice's session at b.test resumes into b.test,
            // and the certificate it was made with still counts there.
            let made = s_client(&nginx, proto, Some("b.test"), Some("alice"), "b.test", Some(&sess), None);
            assert_eq!((made.status, made.body.as_str()), (200, "b.test"), "{}", what("a full handshake"));
            let again = s_client(&nginx, proto, Some("b.test"), None, "b.test", None, Some(&sess));
            assert!(again.reused, "{}: {again:?}", what("not resumed within b.test"));
            assert_eq!((again.status, again.body.as_str()), (200, "b.test"), "{}", what("resumed in b.test"));

            // The partner's "alice", verified by a.test (the default
            // server, reached without SNI) and resumed into b.test and
            // c.test: nginx resumes it and reports it verified, the module
            // refuses it.
            let made = s_client(&nginx, proto, None, Some("rogue"), "a.test", Some(&sess), None);
            assert_eq!(
                (made.status, made.body.as_str()),
                (200, "a.test"),
                "{}",
                what("the partner at a.test")
            );
            for target in ["b.test", "c.test"] {
                let resumed = s_client(&nginx, proto, Some(target), None, target, None, Some(&sess));
                assert!(resumed.reused, "{}: {resumed:?}", what("not resumed: the case is not tested"));
                assert_eq!(resumed.status, 403, "{}: {resumed:?}", what(&format!("resumed into {target}")));
                refused += 1;
                // and without SNI, where nginx stays in a.test's settings
                let resumed = s_client(&nginx, proto, None, None, target, None, Some(&sess));
                assert!(resumed.reused, "{}: {resumed:?}", what("not resumed without SNI"));
                assert_eq!(resumed.status, 403, "{}: {resumed:?}", what(&format!("no SNI, Host {target}")));
                refused += 1;
            }

            // A session made with SNI a.test, resumed into c.test: nginx
            // refuses it itself (TLS 1.2: 421 for the other Host; TLS 1.3:
            // its CVE-2025-23419 fix rejects the handshake).
            s_client(&nginx, proto, Some("a.test"), Some("rogue"), "a.test", Some(&sess), None);
            let resumed = s_client(&nginx, proto, Some("c.test"), None, "c.test", None, Some(&sess));
            assert!(
                resumed.status == 421 || resumed.status == 0,
                "{}: {resumed:?}",
                what("SNI a.test into c.test")
            );

            // SNI other than Host in a full handshake.
            let reply = s_client(&nginx, proto, None, Some("rogue"), "b.test", None, None);
            assert_eq!(reply.status, 403, "{}: {reply:?}", what("no SNI, Host b.test"));
            refused += 1;
            let reply = s_client(&nginx, proto, Some("a.test"), Some("rogue"), "c.test", None, None);
            assert_eq!(reply.status, 421, "{}: {reply:?}", what("SNI a.test, Host c.test"));
            let reply = s_client(&nginx, proto, Some("c.test"), Some("alice"), "c.test", None, None);
            assert_eq!((reply.status, reply.body.as_str()), (200, "c.test"), "{}", what("alice at c.test"));
        }

        let log = nginx.error_log();
        let lines = nginx.deny_lines(&log);
        assert_eq!(lines.len(), refused, "one line per refusal:\n{log}");
        for line in &lines {
            assert!(line.contains("[error]"), "{line}");
            assert!(line.contains("reason: client certificate not verified by the server,"), "{line}");
            // read, for the log only, as a certificate it did not verify
            assert!(line.contains("subject \"(unverified) CN="), "{line}");
        }
    }
}

#[test]
fn each_request_of_a_connection_is_checked_under_its_own_server() {
    // The connection keeps the peer checks' verdict per server{}: requests
    // of one keep-alive connection to several server{}s (no SNI, so Host
    // chooses) must each get their own server{}'s verdict, in any order.
    // a.test (the default) trusts the partner's CA, b.test does not: the
    // partner's "alice" is verified at a.test only.
    let server = |host: &str, ca: &str| {
        format!(
            "server {{\n\
             listen 127.0.0.1:PORT ssl http2;\n\
             server_name {host}.test;\n\
             ssl_client_certificate PKI/{ca};\n\
             ssl_verify_client on;\n\
             root PREFIX/html/{host};\n\
             cert_authz on;\n\
             cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
             }}\n"
        )
    };
    let mut nginx = Nginx::with_http(
        "verdict-per-server",
        &format!(
            "ssl_protocols TLSv1.2 TLSv1.3;\n\
             ssl_certificate PKI/server.pem;\n\
             ssl_certificate_key PKI/server.key;\n{}{}",
            server("a", "rogue-ca.pem"),
            server("b", "ca.pem"),
        ),
    );
    for host in ["a", "b"] {
        let dir = nginx.dir().join("html").join(host);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("who"), format!("{host}.test\n")).unwrap();
    }
    share_with_workers(&nginx.dir().join("html"));
    nginx.start();
    let order = ["a.test", "b.test", "a.test", "a.test", "b.test", "b.test", "a.test"];
    let mut request = String::new();
    for (i, host) in order.iter().enumerate() {
        let close = if i + 1 == order.len() { "Connection: close\r\n" } else { "" };
        request.push_str(&format!("GET /who HTTP/1.1\r\nHost: {host}\r\n{close}\r\n"));
    }
    for proto in ["tls1_2", "tls1_3"] {
        let args = tls_args(proto, Some("rogue"), None, None);
        let mut args = os_strs(&args);
        args.push(OsStr::new("-noservername"));
        let text = common::s_client(nginx.port(), &args, &request);
        let statuses: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("HTTP/1.1 ")).map(|l| &l[..3]).collect();
        let want: Vec<&str> = order.iter().map(|h| if *h == "a.test" { "200" } else { "403" }).collect();
        assert_eq!(statuses, want, "{proto}: {text}");
        assert_eq!(text.matches("a.test\n").count(), 4, "{proto}: {text}");
    }
    // HTTP/2: streams of one connection, Host (:authority) choosing.
    let mut curl = Command::new("curl");
    curl.args(["-sk", "--http2"]);
    for (i, host) in order.iter().enumerate() {
        if i > 0 {
            curl.arg("--next").args(["-sk", "--http2"]);
        }
        curl.arg("--cert").arg(pki().cert("rogue")).arg("--key").arg(pki().key("rogue"));
        curl.args(["-H", &format!("Host: {host}"), "-o", "/dev/null"]);
        curl.args(["-w", "%{http_version} %{http_code} %{num_connects}\\n"]);
        curl.arg(format!("https://127.0.0.1:{}/who", nginx.port()));
    }
    let out = curl.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = text.lines().collect();
    let want: Vec<String> = order
        .iter()
        .enumerate()
        .map(|(i, h)| format!("2 {} {}", if *h == "a.test" { 200 } else { 403 }, u8::from(i == 0)))
        .collect();
    assert_eq!(got, want, "HTTP/2 on one connection: {text}");
    let log = nginx.error_log();
    let lines = nginx.deny_lines(&log);
    assert_eq!(lines.len(), 9, "{log}");
    for line in &lines {
        assert!(line.contains("reason: client certificate not verified by the server,"), "{line}");
    }
}

#[test]
fn cert_authz_on_in_a_server_that_does_not_verify_fails_nginx_t() {
    let conf_line = |nginx: &Nginx, needle: &str| {
        let conf = nginx.dir().join("conf/nginx.conf");
        let text = fs::read_to_string(&conf).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).expect(needle) + 1;
        format!("\"cert_authz on\" in {}:{line} ", conf.display())
    };

    // in a location, in either mode, and in the server itself
    for (name, c_body) in [
        ("unverified-location", "location / {\ncert_authz on; # HERE\n}"),
        ("unverified-report", "location / {\ncert_authz_mode report;\ncert_authz on; # HERE\n}"),
        ("unverified-server", "cert_authz on; # HERE\n"),
    ] {
        let nginx = Nginx::with_http(
            name,
            &format!(
                "cert_authz_rule \"allow GET /** any\";\n\
                 ssl_certificate PKI/server.pem;\n\
                 ssl_certificate_key PKI/server.key;\n\
                 server {{ listen 127.0.0.1:PORT ssl; server_name a.test;\n\
                 ssl_client_certificate PKI/ca.pem; ssl_verify_client on; cert_authz on; }}\n\
                 server {{ listen 127.0.0.1:PORT ssl; server_name c.test;\n\
                 ssl_verify_client off;\n{c_body}\n}}\n"
            ),
        );
        let (ok, out) = nginx.config_test();
        assert!(!ok, "{name}: nginx -t accepted it:\n{out}");
        assert!(out.contains(&conf_line(&nginx, "# HERE")), "{name}: {out}");
        assert!(out.contains("does not verify client certificates"), "{name}: {out}");
    }

    // inherited from http{}: the error names the http{} line, and the
    // server{} that does not verify (here one without TLS)
    let app = free_port();
    let nginx = Nginx::with_http(
        "unverified-http",
        &format!(
            "cert_authz on; # HERE\n\
             cert_authz_rule \"allow GET /** any\";\n{}\
             server {{ # PLAIN\nlisten 127.0.0.1:{app};\n}}\n",
            tls_server("on", "")
        ),
    );
    let (ok, out) = nginx.config_test();
    assert!(!ok, "nginx -t accepted it:\n{out}");
    assert!(out.contains(&conf_line(&nginx, "# HERE")), "{out}");
    let conf = nginx.dir().join("conf/nginx.conf");
    let plain = fs::read_to_string(&conf).unwrap().lines().position(|l| l.contains("# PLAIN")).unwrap() + 1;
    assert!(out.contains(&format!("in the server in {}:{plain},", conf.display())), "{out}");

    // every verifying mode passes, and so does "cert_authz off" where the
    // server does not verify
    for verify in ["on", "optional", "optional_no_ca"] {
        let nginx = Nginx::with_http(
            &format!("verified-{verify}"),
            &format!(
                "cert_authz on;\n\
                 cert_authz_rule \"allow GET /** any\";\n{}\
                 server {{ listen 127.0.0.1:{app}; cert_authz off; }}\n",
                tls_server(verify, "")
            ),
        );
        let (ok, out) = nginx.config_test();
        assert!(ok, "{verify}: {out}");
    }
}

#[test]
fn try_files_serves_only_what_the_policy_allows() {
    let mut nginx = Nginx::with_http(
        "try-files",
        &format!(
            "error_log PREFIX/logs/error.log warn;\n{}",
            tls_server(
                "on",
                "root PREFIX/html;\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /** any\";\n\
                 cert_authz_rule \"deny * /site/internal.html any\";\n\
                 cert_authz_rule \"deny * /denied/** any\";\n\
                 add_header X-Decision $cert_authz_decision always;\n\
                 location /site/ { try_files $uri $uri.html $uri/ =404; }\n\
                 location /fixed/ { try_files /denied/file =404; }\n\
                 location /report/ { cert_authz_mode report; try_files /denied/file =404; }",
            )
        ),
    );
    for (path, text) in
        [("site/internal.html", "internal"), ("site/public.html", "public"), ("denied/file", "denied")]
    {
        let file = nginx.dir().join("html").join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    }
    share_with_workers(&nginx.dir().join("html"));
    nginx.start();

    let get = |path: &str| {
        let reply = nginx.request_with(Some("alice"), "GET", path, &["-D", "-"]);
        let body = reply.body.rsplit("\r\n\r\n").next().unwrap_or("").to_string();
        (reply.status, body, reply.body)
    };

    // the refused file, asked for by its own name and by try_files' other
    let (status, _, head) = get("/site/internal");
    assert_eq!(status, 403, "{head}");
    let (status, _, head) = get("/site/internal.html");
    assert_eq!(status, 403, "{head}");
    // a fixed file that try_files serves in place of any URI
    let (status, _, head) = get("/fixed/anything");
    assert_eq!(status, 403, "{head}");

    // what the policy allows still passes, the same ways
    let (status, body, head) = get("/site/public");
    assert_eq!((status, body.as_str()), (200, "public"), "{head}");
    assert!(head.contains("X-Decision: allow"), "{head}");
    let (status, body, head) = get("/site/public.html");
    assert_eq!((status, body.as_str()), (200, "public"), "{head}");
    let (status, _, head) = get("/site/missing");
    assert_eq!(status, 404, "{head}");

    // report mode decides again too, and logs instead of refusing
    let (status, body, head) = get("/report/anything");
    assert_eq!((status, body.as_str()), (200, "denied"), "{head}");
    assert!(head.contains("X-Decision: deny"), "{head}");

    let log = nginx.error_log();
    // one line per refusal, and one for report mode's
    let forbidden = nginx.deny_lines(&log);
    assert_eq!(forbidden.len(), 3, "{log}");
    assert_eq!(nginx.denies_of(&log, "/site/internal.html").len(), 2, "{log}");
    assert_eq!(nginx.denies_of(&log, "/denied/file").len(), 1, "{log}");
    assert!(
        forbidden.iter().all(|l| l.contains("[error]") && l.contains("reason: deny rule matched")),
        "{log}"
    );
    let report = nginx.report_lines(&log);
    assert_eq!(report.len(), 1, "{log}");
    assert!(report[0].contains("GET /denied/file,") && report[0].contains("[warn]"), "{log}");
}

#[test]
fn php_fpm_with_debians_fastcgi_params_reads_only_the_authorized_identity() {
    let php = common::PhpFpm::start("nginx");
    let fastcgi = |extra: &str| {
        format!(
            "include /etc/nginx/fastcgi_params;\n\
             fastcgi_param SCRIPT_FILENAME {docroot}/who.php;\n\
             fastcgi_param CERT_AUTHZ_USER $cert_authz_user;\n\
             fastcgi_param CERT_AUTHZ_DECISION $cert_authz_decision;\n\
             {extra}\n\
             fastcgi_pass 127.0.0.1:{port};\n",
            docroot = php.docroot.display(),
            port = php.port,
        )
    };
    let mut nginx = Nginx::with_http(
        "php-fpm",
        &tls_server(
            "on",
            &format!(
                "cert_authz_rule \"allow GET /** subject.CN=alice\";\n\
                 cert_authz_rule \"allow GET /** subject.CN=reporter\";\n\
                 cert_authz_user subject.CN;\n\
                 location /php/ {{ cert_authz on;\n{plain} }}\n\
                 location /php-noauth/ {{ cert_authz on;\n{noauth} }}\n\
                 location /open/ {{ cert_authz off;\n{plain} }}\n",
                plain = fastcgi(""),
                noauth = fastcgi("fastcgi_param HTTP_AUTHORIZATION \"\";"),
            ),
        ),
    );
    nginx.start();
    #[rustfmt::skip]
    let forged = [
        "-H", "Authorization: Basic YWRtaW46eA==", "-H", "X-Client-Identity: admin",
        "-H", "X_Client_Identity: admin", "-H", "Remote-User: admin",
    ];
    let get = |client: &str, path: &str, extra: &[&str]| {
        let r = nginx.request_with(Some(client), "GET", path, extra);
        assert_eq!(r.status, 200, "{path}: {r:?}\n{}\n{}", nginx.error_log(), php.logs());
        r
    };
    let value = common::PhpFpm::value;

    // The module owns $remote_user here: fastcgi_params' REMOTE_USER is the certificate's user.
    let r = get("reporter", "/php/who", &forged);
    assert_eq!(value(&r, "SCRIPT_FILENAME"), format!("{}/who.php", php.docroot.display()), "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_DECISION"), "allow", "{r:?}");
    assert_eq!(value(&r, "REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "reporter", "{r:?}");
    // PHP makes PHP_AUTH_USER from the HTTP_AUTHORIZATION that nginx
    // passes on: the client's name unless the location blanks it (below).
    eprintln!("who.php under Debian's fastcgi_params alone:\n{}", r.body);
    // nginx drops a header with '_' (ignore_invalid_headers): alone, it gives PHP nothing.
    let r = get("reporter", "/php/who-underscore", &["-H", "X_Client_Identity: admin"]);
    assert_eq!(value(&r, "HTTP_X_CLIENT_IDENTITY"), "", "{r:?}");
    assert_eq!(value(&r, "ADMIN_KEYS"), "", "{r:?}");

    // The line that keeps the client's Authorization from PHP.
    let r = get("reporter", "/php-noauth/who", &forged);
    assert_eq!(value(&r, "REMOTE_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "reporter", "{r:?}");
    assert_eq!(value(&r, "HTTP_AUTHORIZATION"), "", "{r:?}");
    assert_eq!(value(&r, "PHP_AUTH_USER"), "", "{r:?}");

    // The takeover is scoped: with cert_authz off, $remote_user is nginx's own, the Basic name.
    let r = get("reporter", "/open/who", &forged);
    assert_eq!(value(&r, "REMOTE_USER"), "admin", "{r:?}");
    assert_eq!(value(&r, "CERT_AUTHZ_USER"), "", "{r:?}");

    // Refused: a 403 from nginx, and PHP never runs.
    let r = nginx.request_with(Some("opsbot"), "GET", "/php/refused", &forged);
    assert_eq!(r.status, 403, "{r:?}");
    let r = get("alice", "/php/after", &[]);
    assert_eq!(value(&r, "REMOTE_USER"), "alice", "{r:?}");
    let reached = php.wait_for_request("/php/after");
    assert_eq!(
        reached,
        [
            "/php/who user=reporter",
            "/php/who-underscore user=reporter",
            "/php-noauth/who user=reporter",
            "/open/who user=",
            "/php/after user=alice",
        ],
        "{}",
        php.logs()
    );
    let log = nginx.error_log();
    let lines = nginx.deny_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("GET /php/refused,"), "{log}");
}

/// A CRL of the test CA that revokes `clients`, made by `openssl ca` with a
/// database of its own in `dir` (the PKI stays as it is).
fn crl_revoking(dir: &Path, clients: &[&str]) -> std::path::PathBuf {
    let ca = dir.join("crl-ca");
    fs::create_dir_all(&ca).unwrap();
    fs::write(ca.join("index.txt"), "").unwrap();
    fs::write(ca.join("crlnumber"), "01\n").unwrap();
    fs::write(
        ca.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&ca)
            .args(["ca", "-config", "ca.cnf", "-cert"])
            .arg(pki().path("ca.pem"))
            .arg("-keyfile")
            .arg(pki().path("ca.key"))
            .args(args)
            .output()
            .expect("running openssl ca");
        assert!(out.status.success(), "openssl ca {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    for client in clients {
        openssl(&["-revoke", pki().cert(client).to_str().unwrap()]);
    }
    let crl = dir.join("crl.pem");
    openssl(&["-gencrl", "-out", crl.to_str().unwrap()]);
    share_with_workers(&crl);
    crl
}

/// One `openssl s_client` connection to 127.0.0.1:`port` without SNI,
/// protocol `proto`, certificate `client`, writing the session to
/// `sess_out` or resuming the one in `sess_in`, with `requests` pipelined
/// `GET /who` (Host localhost): whether nginx resumed the session, and the
/// status of each response (none when the handshake failed).
fn on_one_connection(
    port: u16,
    proto: &str,
    client: Option<&str>,
    sess_out: Option<&Path>,
    sess_in: Option<&Path>,
    requests: usize,
) -> (bool, Vec<u16>) {
    let mut args = tls_args(proto, client, sess_out, sess_in);
    args.push("-noservername".into());
    let mut pipelined = "GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(requests - 1);
    pipelined += "GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let text = common::s_client(port, &os_strs(&args), &pipelined);
    let statuses = text
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP/1.1 "))
        .map(|l| l.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0))
        .collect();
    (text.lines().any(|l| l.trim_end() == "X-Reused: r"), statuses)
}

/// Session settings under which a session made at one server{} resumes at
/// another one or after a reload: nginx's shared cache, or tickets with
/// keys of a file (without one, nginx 1.22 makes keys per server{} and per
/// configuration load).
fn resumption_variants(nginx: &Nginx) -> [(&'static str, String); 2] {
    let key = nginx.dir().join("conf/ticket.key");
    fs::write(&key, (0..80u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect::<Vec<u8>>()).unwrap();
    share_with_workers(&key);
    [
        ("cache", "ssl_session_tickets off;\nssl_session_cache shared:SSL:1m;".to_string()),
        ("tickets", format!("ssl_session_ticket_key {};", key.display())),
    ]
}

/// The TLS settings the resumption tests share, in http{}: both protocols,
/// one CA for every server{}, and /who served by every one.
const RESUMPTION_HTTP: &str = "ssl_protocols TLSv1.2 TLSv1.3;\n\
     ssl_certificate PKI/server.pem;\n\
     ssl_certificate_key PKI/server.key;\n\
     ssl_client_certificate PKI/ca.pem;\n\
     ssl_verify_client on;\n\
     root PREFIX/html;\n\
     add_header X-Reused $ssl_session_reused always;\n\
     error_log PREFIX/logs/error.log error;\n\
     error_log PREFIX/logs/debug.log debug;\n";

fn serve_who(nginx: &Nginx) {
    fs::create_dir_all(nginx.dir().join("html")).unwrap();
    fs::write(nginx.dir().join("html/who"), "localhost\n").unwrap();
    share_with_workers(&nginx.dir().join("html"));
}

/// The lines of the debug log with `needle`.
fn debug_lines(nginx: &Nginx, needle: &str) -> usize {
    let debug = fs::read_to_string(nginx.dir().join("logs/debug.log")).unwrap_or_default();
    debug.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_session_resumed_from_another_listener_meets_this_servers_crl() {
    let reverified = "cert_authz: verified the resumed session's client certificate again";
    let fails = "cert_authz: the client certificate of the resumed session does not verify";
    for variant in 0..2 {
        let second = free_port();
        let mut nginx = Nginx::with_http(&format!("resume-crl-{variant}"), "");
        let (name, session) = resumption_variants(&nginx)[variant].clone();
        let crl = crl_revoking(nginx.dir(), &["alice"]);
        // Two server{}s of one name on two listeners; the second has the
        // CRL. Both enforce the policy.
        nginx.write_conf(&format!(
            "{RESUMPTION_HTTP}{session}\n\
             cert_authz on;\n\
             cert_authz_rule \"allow GET /** any\";\n\
             server {{ listen 127.0.0.1:PORT ssl; server_name localhost; }}\n\
             server {{ listen 127.0.0.1:{second} ssl; server_name localhost;\n\
             ssl_crl {}; }}\n",
            crl.display()
        ));
        serve_who(&nginx);
        nginx.start();
        let first = nginx.port();
        let sess = nginx.dir().join("session.pem");
        let mut refused = 0;

        for proto in ["tls1_2", "tls1_3"] {
            let what = |case: &str| format!("{name} {proto}: {case}");

            // alice is revoked: a full handshake at the second port fails
            let got = on_one_connection(second, proto, Some("alice"), None, None, 1);
            assert_eq!(got, (false, vec![400]), "{}", what("alice's full handshake at the second port"));

            // her session of the first port resumes at the second (nginx's
            // session id context covers certificates and CAs, not the CRL),
            // and the module refuses it, on every request of the connection
            let got = on_one_connection(first, proto, Some("alice"), Some(&sess), None, 1);
            assert_eq!(got, (false, vec![200]), "{}", what("alice at the first port"));
            let got = on_one_connection(second, proto, None, None, Some(&sess), 2);
            assert_eq!(got, (true, vec![403, 403]), "{}", what("alice's session resumed at the second port"));
            refused += 2;

            // ordinary resumption still works: within the first server
            // (no CRL), and a certificate the CRL does not revoke at the
            // second, from either server
            let got = on_one_connection(first, proto, None, None, Some(&sess), 2);
            assert_eq!(got, (true, vec![200, 200]), "{}", what("alice's session resumed at the first port"));
            let got = on_one_connection(first, proto, Some("reporter"), Some(&sess), None, 1);
            assert_eq!(got, (false, vec![200]), "{}", what("reporter at the first port"));
            let got = on_one_connection(second, proto, None, None, Some(&sess), 2);
            assert_eq!(
                got,
                (true, vec![200, 200]),
                "{}",
                what("reporter's session resumed at the second port")
            );
            let got = on_one_connection(second, proto, Some("reporter"), Some(&sess), None, 1);
            assert_eq!(got, (false, vec![200]), "{}", what("reporter at the second port"));
            let got = on_one_connection(second, proto, None, None, Some(&sess), 1);
            assert_eq!(got, (true, vec![200]), "{}", what("reporter's session resumed where it was made"));
        }

        // once per connection: 3 resumed connections that pass and 1 that
        // fails per protocol, whatever the number of requests
        assert_eq!(debug_lines(&nginx, reverified), 6, "{name}");
        assert_eq!(debug_lines(&nginx, fails), 2, "{name}");
        let log = nginx.error_log();
        let lines = nginx.deny_lines(&log);
        assert_eq!(lines.len(), refused, "{name}: one line per refusal:\n{log}");
        assert!(
            lines.iter().all(|l| l.contains("reason: client certificate not verified by the server,")),
            "{name}: {log}"
        );
    }
}

#[test]
fn a_reload_that_adds_a_crl_refuses_a_session_made_before_it() {
    for variant in 0..2 {
        let mut nginx = Nginx::with_http(&format!("resume-reload-{variant}"), "");
        let (name, session) = resumption_variants(&nginx)[variant].clone();
        let crl = crl_revoking(nginx.dir(), &["alice"]);
        let conf = |crl: &str| {
            format!(
                "{RESUMPTION_HTTP}{session}\n\
                 server {{ listen 127.0.0.1:PORT ssl; server_name localhost;\n\
                 cert_authz on; cert_authz_rule \"allow GET /** any\";\n{crl} }}\n"
            )
        };
        nginx.write_conf(&conf(""));
        serve_who(&nginx);
        nginx.start();
        let port = nginx.port();
        let sessions: Vec<std::path::PathBuf> = ["alice-1.2", "alice-1.3", "reporter-1.2", "reporter-1.3"]
            .iter()
            .map(|s| nginx.dir().join(s))
            .collect();

        for (i, proto) in ["tls1_2", "tls1_3"].iter().enumerate() {
            for (client, sess) in [("alice", &sessions[i]), ("reporter", &sessions[2 + i])] {
                let got = on_one_connection(port, proto, Some(client), Some(sess), None, 1);
                assert_eq!(got, (false, vec![200]), "{name} {proto}: {client} before the CRL");
            }
        }

        let master = nginx.pid().expect("the master's pid");
        let workers = children(master);
        nginx.write_conf(&conf(&format!("ssl_crl {};", crl.display())));
        nginx.reload().expect("the reload with the CRL");
        // until the old workers, which still have no CRL, are gone: one of
        // them may take a connection until it has handled its QUIT
        nginx.wait_for("only workers with the CRL", || {
            children(master) == workers
                && on_one_connection(port, "tls1_2", Some("alice"), None, None, 1).1 == [400]
        });

        for (i, proto) in ["tls1_2", "tls1_3"].iter().enumerate() {
            let got = on_one_connection(port, proto, None, None, Some(&sessions[i]), 1);
            assert_eq!(got, (true, vec![403]), "{name} {proto}: alice's session after the CRL");
            let got = on_one_connection(port, proto, None, None, Some(&sessions[2 + i]), 1);
            assert_eq!(got, (true, vec![200]), "{name} {proto}: reporter's session after the CRL");
        }
        let log = nginx.error_log();
        assert_eq!(nginx.deny_lines(&log).len(), 2, "{name}: {log}");
    }
}
#[test]
fn webdav_copy_and_move_write_only_where_the_policy_allows() {
    // report lines are warnings: log them
    let mut nginx = Nginx::with_http(
        "webdav",
        &format!(
            "error_log PREFIX/logs/error.log warn;\n{}",
            tls_server(
                "on",
                "root PREFIX/html;\n\
                 add_header X-Decision $cert_authz_decision always;\n\
                 location / {\n\
                 dav_methods PUT DELETE MKCOL COPY MOVE;\n\
                 cert_authz on;\n\
                 cert_authz_rule \"allow GET /site/** any\";\n\
                 cert_authz_rule \"allow * /upload/** subject.CN=alice\";\n\
                 }\n\
                 location /report/ {\n\
                 dav_methods PUT COPY MOVE;\n\
                 cert_authz on;\n\
                 cert_authz_mode report;\n\
                 cert_authz_rule \"allow * /report/upload/** subject.CN=alice\";\n\
                 }",
            )
        ),
    );
    let html = nginx.dir().join("html");
    for dir in ["site", "upload", "report/site", "report/upload"] {
        fs::create_dir_all(html.join(dir)).unwrap();
    }
    fs::write(html.join("site/index.html"), "original\n").unwrap();
    // the dav module writes as the worker's user
    let chown = Command::new("chown").arg("-R").arg("www-data").arg(&html).status().unwrap();
    assert!(chown.success());
    nginx.start();

    let origin = format!("https://127.0.0.1:{}", nginx.port());
    let request = |method: &str, path: &str, extra: &[&str]| {
        nginx.request_with(Some("alice"), method, path, extra).status
    };
    let put = |path: &str| request("PUT", path, &["--data-binary", "evil\n"]);
    let to = |destination: &str| format!("Destination: {destination}");
    let site = || fs::read_to_string(html.join("site/index.html")).unwrap();

    // the setting of the review: the policy refuses the PUT, allows the upload
    assert_eq!(put("/site/index.html"), 403);
    assert_eq!(put("/upload/evil.html"), 201);

    // and now refuses a COPY or MOVE of it onto /site, however the
    // Destination names it: as an absolute URI, an absolute path, with
    // percent-encoding, or with a query that the dav module cuts off
    let mut refused = Vec::new();
    for destination in [
        format!("{origin}/site/index.html"),
        "/site/index.html".to_string(),
        "/%73ite/index.html".to_string(),
        format!("{origin}/site%2Findex.html"),
        "/site/index.html?/upload/x".to_string(),
    ] {
        for method in ["MOVE", "COPY"] {
            let status = request(method, "/upload/evil.html", &["-H", &to(&destination)]);
            assert_eq!(status, 403, "{method} to {destination}");
            refused.push(method);
        }
    }
    assert_eq!(site(), "original\n");
    assert!(html.join("upload/evil.html").exists());

    // a Destination that cannot be read unambiguously is refused: none,
    // two, an encoded slash still there after decoding, an empty or a dot
    // segment, another host, another scheme
    for extra in [
        vec![],
        vec!["-H".to_string(), to("/upload/a.html"), "-H".to_string(), to("/site/index.html")],
        vec!["-H".to_string(), to("/upload/a%252Fb.html")],
        vec!["-H".to_string(), to("/upload//a.html")],
        vec!["-H".to_string(), to("/upload/./a.html")],
        vec!["-H".to_string(), to("/upload/%2E%2E/site/index.html")],
        vec!["-H".to_string(), to("https://example.org/upload/a.html")],
        vec!["-H".to_string(), to(&format!("http://127.0.0.1:{}/upload/a.html", nginx.port()))],
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        assert_eq!(request("MOVE", "/upload/evil.html", &extra), 403, "{extra:?}");
        refused.push("MOVE");
    }
    assert!(html.join("upload/evil.html").exists());

    // where the policy allows both paths, COPY and MOVE still work (the
    // dav module answers 204 to both)
    assert_eq!(request("COPY", "/upload/evil.html", &["-H", &to("/upload/c%6Fpy.html")]), 204);
    assert_eq!(
        request("MOVE", "/upload/copy.html", &["-H", &to(&format!("{origin}/upload/moved.html"))]),
        204
    );
    let reply = nginx.request_with(Some("alice"), "GET", "/upload/moved.html", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "evil\n"));
    assert!(!html.join("upload/copy.html").exists());
    // and the source is decided first: a refused source is refused whatever
    // the Destination
    assert_eq!(
        nginx
            .request_with(Some("reporter"), "MOVE", "/upload/evil.html", &["-H", &to("/upload/b.html")])
            .status,
        403
    );
    refused.push("MOVE");

    // report mode decides the Destination too, and only logs
    let reply = nginx.request_with(
        Some("alice"),
        "PUT",
        "/report/upload/a.html",
        &["--data-binary", "report\n", "-D", "-"],
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = nginx.request_with(
        Some("alice"),
        "MOVE",
        "/report/upload/a.html",
        &["-H", &to("/report/site/a.html"), "-D", "-"],
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert!(reply.body.contains("X-Decision: deny"), "{}", reply.body);

    let log = nginx.error_log();
    let forbidden = nginx.deny_lines(&log);
    assert_eq!(forbidden.len(), refused.len() + 1, "one line per refusal, the PUT too:\n{log}");
    assert!(forbidden.iter().all(|l| l.contains("[error]")), "{log}");
    // the line names the Destination's path; nginx's context, the request's
    let onto_site = forbidden.iter().filter(|l| l.contains(" /site/index.html, subject \"CN=alice,")).count();
    assert_eq!(onto_site, 1 + 10, "the PUT, then 5 Destinations by 2 methods:\n{log}");
    assert!(
        forbidden.iter().any(|l| l.contains("CA00010: client denied by cert-authz: MOVE /site/index.html, ")
            && l.contains("reason: no allow rule matched")
            && l.contains("request: \"MOVE /upload/evil.html HTTP/1.1\"")),
        "{log}"
    );
    let ambiguous = forbidden.iter().filter(|l| l.contains("reason: path is not unambiguous")).count();
    assert_eq!(ambiguous, 8, "{log}");
    assert!(forbidden.iter().any(|l| l.contains("MOVE -, subject")), "no or two Destinations: {log}");
    let report = nginx.report_lines(&log);
    assert_eq!(report.len(), 1, "{log}");
    assert!(report[0].contains("MOVE /report/site/a.html,") && report[0].contains("[warn]"), "{log}");
}

/// How many processes `parent` has: an nginx master's workers (and, for a
/// moment after a reload, the old ones still finishing).
fn children(parent: i32) -> usize {
    let Ok(entries) = fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, so after ')'
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|ppid| ppid == parent.to_string()))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn cert_authz_on_where_a_server_listens_without_ssl_is_named_by_nginx_t() {
    let position = |nginx: &Nginx, needle: &str| {
        let conf = nginx.dir().join("conf/nginx.conf");
        let text = fs::read_to_string(&conf).unwrap();
        format!("{}:{}", conf.display(), text.lines().position(|l| l.contains(needle)).expect(needle) + 1)
    };
    let tls = "cert_authz_rule \"allow GET /** any\";\n\
               ssl_certificate PKI/server.pem;\n\
               ssl_certificate_key PKI/server.key;\n\
               ssl_client_certificate PKI/ca.pem;\n";

    // a server{} that verifies on no listener with TLS: an error, in either mode
    for mode in ["enforce", "report"] {
        let nginx = Nginx::with_http(
            &format!("plain-only-{mode}"),
            &format!(
                "{tls}server {{ # SERVER\nlisten 127.0.0.1:PORT;\nssl_verify_client on;\n\
                 cert_authz_mode {mode};\ncert_authz on; # HERE\n}}\n"
            ),
        );
        let (ok, out) = nginx.config_test();
        assert!(!ok, "{mode}: nginx -t accepted it:\n{out}");
        let want = format!(
            "\"cert_authz on\" in {} is in effect in the server in {}, which has no \"listen ... ssl\": no \
             client certificate can be verified there, so every request would be refused",
            position(&nginx, "# HERE"),
            position(&nginx, "# SERVER")
        );
        assert!(out.contains(&want), "{mode}: {out}");
    }

    // a plain listener beside a TLS one: a warning that names it, once for the
    // server{} however many locations it has; and it does refuse every request
    let plain = free_port();
    let mut nginx = Nginx::with_http(
        "plain-beside-tls",
        &format!(
            "{tls}server {{ # SERVER\nlisten 127.0.0.1:PORT ssl;\nlisten 127.0.0.1:{plain};\n\
             server_name localhost;\nssl_verify_client on;\ncert_authz on; # HERE\n\
             location /a/ {{ }}\nlocation /b/ {{ cert_authz_user subject.CN; }}\n}}\n"
        ),
    );
    let (ok, out) = nginx.config_test();
    assert!(ok, "{out}");
    let want = format!(
        "[warn] \"cert_authz on\" in {} is in effect in the server in {}, which also listens on \
         127.0.0.1:{plain} without ssl: every request there is refused",
        position(&nginx, "# HERE"),
        position(&nginx, "# SERVER")
    );
    assert_eq!(out.matches(&want).count(), 1, "{out}");
    nginx.start();
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{plain}/a/x")])
        .output()
        .expect("running curl");
    assert_eq!(String::from_utf8_lossy(&status.stdout), "403");
    assert_eq!(nginx.status(Some("alice"), "GET", "/a/x"), 404, "allowed over TLS, then no such file");
}
