//! A request target as a client sends it (`/a/%2e%2e/b?x=1`), turned into
//! the path that Apache or nginx hands the module, or refused where the
//! server itself answers before any module runs.
//!
//! Both servers with their defaults (Apache: MergeSlashes On,
//! AllowEncodedSlashes Off; nginx: merge_slashes on), as measured with
//! Apache 2.4.71 and nginx 1.22.1 on Debian 12, and checked against both in
//! tests/cli.rs (HTTP/1.1 and HTTP/2).  `cert-authz check --target` uses it:
//!
//! - a control character or a space, which a request line cannot carry, is a
//!   400 in both (bytes above 0x7F pass as they are);
//! - the query (`?`) and a fragment (`#`) are cut off;
//! - `%XX` is decoded; a `%` without two hex digits is a 400 in both;
//! - a decoded `.` counts as a dot (`%2e%2e` is `..`); any other decoded
//!   character is data: `%3F` is a `?` in the path, not a query;
//! - `%00` is refused: nginx answers 400, Apache 404;
//! - `%2F`: Apache answers 404 (AllowEncodedSlashes Off); nginx decodes it
//!   to a `/` that then separates segments like any other;
//! - `//` is merged, `.` segments dropped, `..` removes the segment before
//!   it; a `..` above the root is a 400 in both.  A path that ends in `/.`,
//!   `/..` or `/` keeps its trailing `/`.

/// Which server's handling of the target to model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Apache,
    Nginx,
}

impl Server {
    pub fn parse(name: &str) -> Option<Server> {
        match name {
            "apache" => Some(Server::Apache),
            "nginx" => Some(Server::Nginx),
            _ => None,
        }
    }
}

/// What becomes of a request target.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The path the module decides on (decoded: it need not be UTF-8).
    Path(Vec<u8>),
    /// The server answers `status` itself; the module never sees the request.
    Refused { status: &'static str, why: &'static str },
}

/// One byte of the decoded path, and whether it was written as itself or
/// as a decoded `.` (or, for nginx, `/`), so that it takes part in the
/// normalization.
type Decoded = (u8, bool);

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The path `target` becomes for `server`, or None for a target whose
/// outcome depends on the server when none is given.  Err: not a target a
/// client sends (it must start with `/`).
pub fn resolve(target: &str, server: Option<Server>) -> Result<Option<Outcome>, String> {
    let raw = target.split(['?', '#']).next().unwrap_or_default().as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(format!("--target {target}: a request target must start with /"));
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Ok(Some(Outcome::Refused { status: "400", why: "a control character or space" }));
    }
    let mut decoded: Vec<Decoded> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'%' {
            decoded.push((raw[i], true));
            i += 1;
            continue;
        }
        let byte =
            match (raw.get(i + 1).and_then(|&b| hex_digit(b)), raw.get(i + 2).and_then(|&b| hex_digit(b))) {
                (Some(high), Some(low)) => high << 4 | low,
                _ => {
                    return Ok(Some(Outcome::Refused { status: "400", why: "a `%` without two hex digits" }))
                }
            };
        i += 3;
        match (byte, server) {
            (0, Some(Server::Apache)) => return Ok(Some(Outcome::Refused { status: "404", why: "`%00`" })),
            (0, Some(Server::Nginx)) => return Ok(Some(Outcome::Refused { status: "400", why: "`%00`" })),
            (0, None) => {
                return Ok(Some(Outcome::Refused { status: "400 (nginx) or 404 (Apache)", why: "`%00`" }))
            }
            (b'/', Some(Server::Apache)) => {
                return Ok(Some(Outcome::Refused {
                    status: "404",
                    why: "an encoded slash (`%2F`, AllowEncodedSlashes Off)",
                }))
            }
            (b'/', Some(Server::Nginx)) => decoded.push((b'/', true)),
            (b'/', None) => return Ok(None),
            (b'.', _) => decoded.push((b'.', true)),
            (other, _) => decoded.push((other, false)),
        }
    }
    Ok(Some(normalize(&decoded)))
}

/// Merges slashes and resolves `.` and `..` segments, as both servers do.
fn normalize(decoded: &[Decoded]) -> Outcome {
    let mut segments: Vec<&[Decoded]> = Vec::new();
    // Whether the path ends in a directory: after `/`, `/.` or `/..`.
    let mut trailing = false;
    for segment in decoded[1..].split(|&(b, live)| b == b'/' && live) {
        let dots = segment.iter().all(|&(b, live)| b == b'.' && live);
        trailing = true;
        match (segment.len(), dots) {
            (0, _) | (1, true) => {}
            (2, true) => {
                if segments.pop().is_none() {
                    return Outcome::Refused { status: "400", why: "a `..` segment above the root" };
                }
            }
            _ => {
                segments.push(segment);
                trailing = false;
            }
        }
    }
    let mut path = Vec::with_capacity(decoded.len());
    for segment in &segments {
        path.push(b'/');
        path.extend(segment.iter().map(|&(b, _)| b));
    }
    if trailing || segments.is_empty() {
        path.push(b'/');
    }
    Outcome::Path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(target: &str, server: Server) -> String {
        match resolve(target, Some(server)) {
            Ok(Some(Outcome::Path(p))) => String::from_utf8_lossy(&p).into_owned(),
            Ok(Some(Outcome::Refused { status, .. })) => status.to_string(),
            other => panic!("{target}: {other:?}"),
        }
    }

    #[test]
    fn targets_become_the_paths_the_servers_measured() {
        // (target, Apache, nginx), from requests to the servers themselves.
        let cases = [
            ("/a/%2e%2e/b?x=1", "/b", "/b"),
            ("//a//b", "/a/b", "/a/b"),
            ("/a/./b", "/a/b", "/a/b"),
            ("/a/../../b", "400", "400"),
            ("/../b", "400", "400"),
            ("/%2e%2e/b", "400", "400"),
            ("/a/%2F/b", "404", "/a/b"),
            ("/a%2Fb", "404", "/a/b"),
            ("/a/%2E%2E%2Fb", "404", "/b"),
            ("/a/%00b", "404", "400"),
            ("/a/%23b", "/a/#b", "/a/#b"),
            ("/a/%3Fb", "/a/?b", "/a/?b"),
            ("/a%zz", "400", "400"),
            ("/a%2", "400", "400"),
            ("/a/%2e/b", "/a/b", "/a/b"),
            ("/a/.%2e/b", "/b", "/b"),
            ("/a/..", "/", "/"),
            ("/a/.", "/a/", "/a/"),
            ("/a/b/", "/a/b/", "/a/b/"),
            ("/a%252Fb", "/a%2Fb", "/a%2Fb"),
            ("/a/%5Cb", "/a/\\b", "/a/\\b"),
            ("/a;b", "/a;b", "/a;b"),
            ("/a#x", "/a", "/a"),
            ("/a/%7e%41", "/a/~A", "/a/~A"),
            ("/", "/", "/"),
            ("/a/...", "/a/...", "/a/..."),
            ("/a\x01b", "400", "400"),
            ("/a\x7fb", "400", "400"),
            ("/a b", "400", "400"),
            ("/a?b c", "400", "400"),
            ("/a/\u{e9}", "/a/\u{e9}", "/a/\u{e9}"),
        ];
        for (target, apache, nginx) in cases {
            assert_eq!(path(target, Server::Apache), apache, "Apache, {target}");
            assert_eq!(path(target, Server::Nginx), nginx, "nginx, {target}");
        }
        assert_eq!(resolve("/a%2Fb", None), Ok(None));
        assert!(resolve("a/b", None).unwrap_err().contains("must start with /"));
        assert!(resolve("?x", None).is_err());
    }
}
