//! The words of a decision's log line.  Apache, nginx and the CLI print
//! these, so a deny reads the same wherever it was made; each server adds
//! only its own prefix (time, level, client address) around them.

use crate::decide::{Decision, Reason};
use crate::identity::Presented;

/// Which line.  The tags are the header's CERT_AUTHZ_TAG_* and never
/// change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A refusal the server enforces.
    Deny,
    /// A refusal in report mode: nothing was refused.
    WouldDeny,
    /// A refusal that other access rules may still outvote (`Require
    /// cert-authz` in a `<RequireAny>`, nginx's `satisfy any`).
    NotGranted,
    Allow,
}

impl LineKind {
    pub fn tag(self) -> &'static str {
        match self {
            LineKind::Deny => "CA00010",
            LineKind::Allow => "CA00012",
            LineKind::WouldDeny => "CA00013",
            LineKind::NotGranted => "CA00015",
        }
    }

    fn words(self) -> &'static str {
        match self {
            LineKind::Deny => "client denied by cert-authz",
            LineKind::Allow => "allowed by cert-authz",
            LineKind::WouldDeny => "would deny (report mode)",
            LineKind::NotGranted => "not granted by cert-authz, left to the other access rules",
        }
    }
}

/// The longest path a line shows; the rest is cut with `...`.  With the
/// other fields' limits a line stays under 2048 bytes.
const MAX_PATH: usize = 1024;

/// `CA00010: client denied by cert-authz: GET /admin/x, subject "CN=..",
/// reason: deny rule matched, rule /etc/p.policy:4`.
///
/// `cert` is what the client presented (None: nothing), `verified` whether
/// the server verified it.  A certificate the server did not verify is
/// shown `(unverified) DN`; one the core refused, `(refused)`, with the
/// reason it was refused after the decision's reason.
pub fn line(
    kind: LineKind,
    decision: &Decision<'_>,
    cert: Option<&Presented>,
    verified: bool,
    method: &[u8],
    path: &[u8],
) -> String {
    // Subject, reason and rule come from the certificate (whose strings
    // hold no control characters, or it is refused) and the policy.
    let subject = match cert.map(|c| (c.identity(), verified)) {
        None => "-".to_string(),
        Some((Some(identity), true)) => identity.subject_text().to_string(),
        Some((Some(identity), false)) => format!("(unverified) {}", identity.subject_text()),
        Some((None, _)) => "(refused)".to_string(),
    };
    let mut reason = decision.reason.text().to_string();
    if decision.reason == Reason::BadCertificate {
        if let Some(why) = cert.and_then(Presented::refusal) {
            reason = format!("{reason}: {}", why.0);
        }
    }
    let rule = match decision.origin {
        Some((file, line)) => format!("{file}:{line}"),
        None => "-".to_string(),
    };
    format!(
        "{}: {}: {} {}, subject \"{}\", reason: {}, rule {}",
        kind.tag(),
        kind.words(),
        shown(method, 64),
        if path.is_empty() { "-".into() } else { shown(path, MAX_PATH) },
        cut(&subject, MAX_FIELD),
        cut(&reason, MAX_FIELD),
        cut(&rule, MAX_FIELD)
    )
}

/// The longest subject, reason and rule a line shows, so that every line
/// fits the header's CERT_AUTHZ_LINE_MAX.
const MAX_FIELD: usize = 256;

fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end]).into()
}

/// A request's bytes as a log shows them: control characters, spaces,
/// quotes, backslashes and bytes that are not UTF-8 as `%XX` (never a
/// backslash, which httpd would escape a second time), cut at `max`.
fn shown(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(bytes.len().min(max) + 3);
    for c in text.chars() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        match c {
            '\u{fffd}' => out.push_str("%FF"),
            c if c.is_control() || c == ' ' || c == '"' || c == '\\' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_cannot_forge_fields_of_the_line() {
        assert_eq!(shown(b"/a b\"c\n\\d\x7f", 100), "/a%20b%22c%0A%5Cd%7F");
        assert_eq!(shown(b"/caf\xc3\xa9/\xff", 100), "/caf\u{e9}/%FF");
        assert_eq!(shown(&[b'a'; 20], 8), "aaaaaaaa...");
        assert_eq!(shown(b"/api/admin%2Fusers", 100), "/api/admin%2Fusers");
    }

    #[test]
    fn the_line_names_every_field() {
        let d = Decision { allowed: false, reason: Reason::NoCertificate, origin: None, user: None };
        assert_eq!(
            line(LineKind::Deny, &d, None, false, b"GET", b"/x"),
            "CA00010: client denied by cert-authz: GET /x, subject \"-\", reason: no client certificate, rule -"
        );
        let refused = Presented::from_der(b"junk");
        let d = Decision {
            allowed: false,
            reason: Reason::BadCertificate,
            origin: Some(("p.policy", 3)),
            user: None,
        };
        let text = line(LineKind::WouldDeny, &d, Some(&refused), true, b"GET", b"/x");
        assert!(text.starts_with("CA00013: would deny (report mode): GET /x, subject \"(refused)\", reason: client certificate refused as malformed: not a certificate"), "{text}");
        assert!(text.ends_with(", rule p.policy:3"), "{text}");
    }
}
