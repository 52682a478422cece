//! The core figures of SPEC §8, printed as a table by `make bench`.
//!
//! A plain harness: each figure is the median of many timed batches, and
//! memory is counted by a global allocator that tallies live bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use cert_authz::{compile_str, Identity, Peer, Policy};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Median time per call of `f`, over `batches` batches of `per_batch` calls.
fn median_per_call(batches: usize, per_batch: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed() / per_batch as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// A policy of `n` allow rules keyed on CN, plus a few rules of each other
/// form (groups, templates, SAN URI, a deny, requirements).
fn policy_text(n: usize) -> String {
    let mut text = String::from(
        "group ops subject.O=\"Example Corp\" subject.OU=ops\n\
         allow GET /status any\n\
         allow * /admin/** group=ops\n\
         allow * /users/{subject.CN}/** issuer.CN=\"Bench CA\"\n\
         allow GET,POST /invoices/** san.uri=spiffe://example.org/ns/prod/sa/billing\n\
         deny * /** serial=4F:2A:00:91\n\
         require key ec>=256 rsa>=2048 ed25519\n\
         require lifetime<=90d\n",
    );
    for i in 0..n.saturating_sub(5) {
        text.push_str(&format!("allow GET,POST /svc/{i}/** subject.CN=user{i} subject.O=\"Example Corp\"\n"));
    }
    text
}

fn certificate(cn: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::OrganizationalUnitName, "ops");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![
        SanType::DnsName("client.example.org".try_into().unwrap()),
        SanType::URI("spiffe://example.org/ns/prod/sa/billing".try_into().unwrap()),
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    params.self_signed(&key).unwrap().pem()
}

fn decision_figure(n: usize) -> (Duration, Duration) {
    let policy: Policy = compile_str(&policy_text(n), "bench.policy").expect("bench policy compiles");
    let target = (n - 5) / 2;
    let cn = format!("user{target}");
    let identity = Identity::from_pem(certificate(&cn).as_bytes()).unwrap();
    let path = format!("/svc/{target}/reports/today");
    let allow = policy.decide(Peer::Verified(&identity), "GET", &path);
    assert!(allow.allowed, "the bench request should be allowed: {allow:?}");
    let hit = median_per_call(200, 2000, || {
        black_box(policy.decide(Peer::Verified(black_box(&identity)), "GET", black_box(&path)));
    });
    let miss = median_per_call(200, 2000, || {
        black_box(policy.decide(
            Peer::Verified(black_box(&identity)),
            "DELETE",
            black_box("/nowhere/at/all"),
        ));
    });
    (hit, miss)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    println!("cert-authz core benchmarks (median per operation)\n");
    println!("| figure | measured | bar |");
    println!("|---|---|---|");

    let mut ten = Duration::ZERO;
    for n in [10, 1_000, 100_000] {
        let (hit, miss) = decision_figure(n);
        if n == 10 {
            ten = hit;
        }
        let ratio = hit.as_secs_f64() / ten.as_secs_f64();
        println!(
            "| decision, {n} rules (allowed / no match) | {:.0} ns / {:.0} ns ({ratio:.2}x the 10-rule policy) | ≤ 1 µs, ≤ 2x |",
            hit.as_nanos(),
            miss.as_nanos()
        );
    }

    let pem = certificate("pem-bench-client");
    let parse = median_per_call(200, 500, || {
        black_box(Identity::from_pem(black_box(pem.as_bytes())).unwrap());
    });
    // The DN texts and the two SHA-256 hashes are derived on first use
    // (a deny's log line, a fingerprint rule): measured apart.
    let parse_all = median_per_call(200, 500, || {
        let identity = Identity::from_pem(black_box(pem.as_bytes())).unwrap();
        identity.derive_all();
        black_box(identity);
    });
    println!(
        "| PEM → identity, {} byte certificate (with DN texts and hashes) | {:.2} µs ({:.2} µs) | ≤ 5 µs |",
        pem.len(),
        parse.as_nanos() as f64 / 1000.0,
        parse_all.as_nanos() as f64 / 1000.0
    );

    let text = policy_text(100_000);
    let mut compile_times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let before = LIVE.load(Ordering::Relaxed);
        let start = Instant::now();
        let policy = compile_str(&text, "bench.policy").unwrap();
        compile_times.push(start.elapsed());
        bytes = LIVE.load(Ordering::Relaxed) - before;
        drop(black_box(policy));
    }
    compile_times.sort();
    println!(
        "| policy compile, 100,000 rules | {:.0} ms, {} bytes/rule | ≤ 300 ms, ≤ 500 bytes/rule |",
        compile_times[2].as_secs_f64() * 1000.0,
        bytes / 100_000
    );
}
