//! HTTP from the tests' side: curl as the TLS client, and loopback
//! backends that record what a server hands on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::Pki;

/// The answer to one request made with curl.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one HTTPS request with curl.  `client` names a certificate of the
/// PKI, or None for no certificate.  A failed TLS handshake is status 0,
/// and curl's reason goes to the test's output.
pub fn curl(pki: &Pki, client: Option<&str>, method: &str, url: &str, extra: &[&str]) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(pki.path("ca.pem"));
    if method == "HEAD" {
        // A real HEAD, on HTTP/1.1: mod_http2 sometimes ends a HEAD stream
        // to a CGI with a frame curl calls a PROTOCOL_ERROR, which has
        // nothing to do with the decision under test (HTTP/2 is tested on
        // its own).
        cmd.args(["-I", "--http1.1"]);
    } else {
        cmd.args(["-X", method]);
    }
    if let Some(name) = client {
        cmd.arg("--cert").arg(pki.cert(name)).arg("--key").arg(pki.key(name));
    }
    cmd.args(extra).arg(url);
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    let status = code.trim().parse().unwrap_or(0);
    if status == 0 {
        eprintln!("curl {method} {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Reply { status, body: body.to_string() }
}

/// The value of `KEY=` in a reply of `NAME=value` lines (the servers' echo
/// backends, who.php); panics when there is none.
pub fn env_of(reply: &Reply, key: &str) -> String {
    let prefix = format!("{key}=");
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in the backend's reply: {reply:?}"))
        .to_string()
}

/// One transfer of a `curl_many` run.
#[derive(Debug)]
pub struct Transfer {
    pub url: String,
    pub status: u16,
    /// "1.1", "2".
    pub version: String,
    /// The connections curl opened for it (0: it reused one).
    pub connects: u32,
}

/// Requests `urls` in one curl invocation as `client`, so that curl reuses
/// its connections (keep-alive, HTTP/2 streams); `args` go before the URLs
/// (e.g. `--http2 --parallel`).  One transfer per URL, in the order curl
/// reports them (completion order under `--parallel`).
pub fn curl_many(pki: &Pki, client: Option<&str>, args: &[&str], urls: &[String]) -> Vec<Transfer> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"])
        .args(["-w", "%{url_effective} %{http_code} %{http_version} %{num_connects}\\n"])
        .arg("--cacert")
        .arg(pki.path("ca.pem"));
    if let Some(name) = client {
        cmd.arg("--cert").arg(pki.cert(name)).arg("--key").arg(pki.key(name));
    }
    cmd.args(args);
    for url in urls {
        // -o is per URL
        cmd.args(["-o", "/dev/null"]).arg(url);
    }
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let transfers: Vec<Transfer> = text
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or("");
            Transfer {
                url: field(0).to_string(),
                status: field(1).parse().unwrap_or(0),
                version: field(2).to_string(),
                connects: field(3).parse().unwrap_or(0),
            }
        })
        .collect();
    if transfers.len() != urls.len() {
        eprintln!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    transfers
}

/// A loopback server on a free port, in a thread of its own: `handle` gets
/// each connection in turn.  Returns the port.
pub fn serve(what: &str, mut handle: impl FnMut(TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding {what}: {e:?}"));
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            handle(stream);
        }
    });
    port
}

/// A loopback HTTP server in a thread that records each request's header
/// lines and answers 200 "ok".
pub struct Backend {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Backend {
    pub fn start() -> Backend {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let port = serve("the backend", move |mut stream| {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                lines.push(line);
            }
            seen.lock().unwrap().push(lines);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let mut rest = Vec::new();
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = reader.read_to_end(&mut rest);
        });
        Backend { port, requests }
    }

    /// The values of header `name` (case-insensitive) in request `i`.
    pub fn header(&self, i: usize, name: &str) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        requests[i]
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect()
    }
}

/// One `openssl s_client` connection to 127.0.0.1:`port` with `args`
/// (protocol, SNI, certificate, session file, `-quiet`, ...), sending
/// `request` as soon as it connects: what the client printed to stdout.
/// For what curl cannot do: keep or resume a TLS session, choose SNI apart
/// from Host.
pub fn s_client(port: u16, args: &[&std::ffi::OsStr], request: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running openssl s_client");
    child.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
