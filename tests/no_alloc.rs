//! A decision allocates nothing (issue 9): a counting global allocator
//! around `decide_as` on policies of every rule form, for requests that
//! hit and that miss, a path of a thousand segments and an identity in
//! more groups than a decision keeps on the stack.  Its own test binary,
//! as a #[global_allocator] is one per binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use cert_authz::{compile_str, Attr, Identity, Peer, Policy, Reason};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SanType};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn identity() -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::OrganizationalUnitName, "ops");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 11]), DnValue::Utf8String("dev".into()));
    dn.push(DnType::CommonName, "alice");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 3]), DnValue::Utf8String("opsbot".into()));
    params.distinguished_name = dn;
    params.subject_alt_names = vec![
        SanType::DnsName("api.example.org".try_into().unwrap()),
        SanType::DnsName("www.t7.example.org".try_into().unwrap()),
        SanType::URI("spiffe://example.org/ns/team7/sa/billing".try_into().unwrap()),
        SanType::Rfc822Name("alice@example.org".try_into().unwrap()),
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Identity::from_der(&der).unwrap()
}

fn policy(text: &str) -> Policy {
    compile_str(text, "no-alloc.policy").unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_decision_allocates_nothing() {
    let id = identity();
    let mut text = String::from(
        "group ops subject.OU=ops\n\
         group ops san.uri=spiffe://example.org/ns/ops/*\n\
         require key ec>=256 ed25519\n\
         require lifetime<=90d\n",
    );
    for n in 0..200 {
        text.push_str(&format!(
            "allow GET /svc/{n}/** subject.CN=user{n} subject.O=\"Example Corp\"\n\
             allow GET /spiffe/** san.uri=spiffe://example.org/ns/team{n}/*\n\
             allow GET /api/** san.dns=*.t{n}.example.org\n\
             allow GET /tenant/{n}/** any\n\
             allow GET /reports/{n}/** group=ops\n\
             allow GET /st/{n}/*/items any\n\
             allow GET /t{n}/{{subject.CN}}/** subject.O=\"Example Corp\"\n\
             deny * /x/{n}/** any\n\
             allow * /fp/{n} subject=\"CN=opsbot,CN=alice,OU=dev,OU=ops,O=Example Corp\" fingerprint=00:{n:02x}{}\n",
            "00".repeat(30)
        ));
    }
    let forms = policy(&text);
    // An identity in more groups than a decision keeps on the stack.
    let mut many = String::new();
    for g in 0..300 {
        many.push_str(&format!("group g{g} subject.O=\"Example Corp\"\nallow GET /g/{g}/** group=g{g}\n"));
    }
    let groups = policy(&many);
    let long_path = "/a".repeat(1000);
    let requests: &[(&Policy, &str, &str, Reason)] = &[
        (&forms, "GET", "/svc/7/x", Reason::NoMatchingRule),
        (&forms, "GET", "/spiffe/a", Reason::AllowRule),
        (&forms, "HEAD", "/api/v1", Reason::AllowRule),
        (&forms, "GET", "/tenant/7/", Reason::AllowRule),
        (&forms, "GET", "/tenant/none/x", Reason::NoMatchingRule),
        (&forms, "GET", "/reports/7/x", Reason::AllowRule),
        (&forms, "GET", "/st/7/v1/items", Reason::AllowRule),
        (&forms, "GET", "/t7/opsbot/x", Reason::AllowRule),
        (&forms, "GET", "/t7/bob/x", Reason::NoMatchingRule),
        (&forms, "DELETE", "/x/7/y", Reason::DenyRule),
        (&forms, "GET", "/fp/7", Reason::NoMatchingRule),
        (&forms, "GET", &long_path, Reason::NoMatchingRule),
        (&forms, "GET", "/a//b", Reason::BadPath),
        (&forms, "GE T", "/", Reason::BadMethod),
        (&groups, "GET", "/g/299/x", Reason::AllowRule),
        (&groups, "GET", "/g/0/x", Reason::AllowRule),
        (&groups, "GET", "/g/none/x", Reason::NoMatchingRule),
    ];
    let users = [None, Attr::parse("subject.CN"), Attr::parse("san.dns"), Attr::parse("san.uri")];
    // The identity derives a few values (DN texts, hashes) on first use,
    // once per certificate, not per decision: that happens here.
    for (policy, method, path, _) in requests {
        for user in users {
            policy.decide_as(Peer::Verified(&id), method, path, user);
        }
    }
    // The counter counts (a test that passes by not counting proves nothing).
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![0u8; 16]));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 1);
    for (policy, method, path, reason) in requests {
        for user in users {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            let d = policy.decide_as(Peer::Verified(&id), method, path, user);
            let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
            assert_eq!(allocations, 0, "{method} {:.40} as {user:?} allocated: {d:?}", path);
            if user.is_none() {
                assert_eq!(d.reason, *reason, "{method} {:.40}", path);
            }
        }
    }
}
