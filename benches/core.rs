//! The core figures of SPEC §8, printed as tables by `make bench`.
//!
//! A plain harness: each figure is the median of many timed batches, and
//! memory is counted by a global allocator that tallies live bytes.
//!
//! Decisions are measured for every rule form on its own and for a policy
//! that mixes them all, at 10, 1,000 and 100,000 rules, for a request that
//! a rule decides (hit) and one that reaches the indexed part of the policy
//! but that no rule decides (miss).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use cert_authz::{compile_str, Identity, Peer, Policy, Reason};
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

/// Who asks: the client whose values the rules numbered `t` name, or an
/// outsider that no rule names.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Insider,
    Outsider,
}

/// A request: who, method, path.
type Request = (Who, &'static str, String);

/// One rule form: the statements it needs first, its rule number `n`, and
/// a request that rule `t` decides and one that no rule decides.
struct Form {
    name: &'static str,
    preamble: &'static str,
    rule: fn(usize) -> String,
    hit: fn(usize) -> Request,
    miss: fn(usize) -> Request,
    /// What decides a hit.
    hit_reason: Reason,
}

fn forms() -> Vec<Form> {
    vec![
        Form {
            name: "exact `subject.CN=userN subject.O=...`",
            preamble: "",
            rule: |n| format!("allow GET,POST /svc/{n}/** subject.CN=user{n} subject.O=\"Example Corp\"\n"),
            hit: |t| (Who::Insider, "GET", format!("/svc/{t}/reports/today")),
            miss: |t| (Who::Insider, "GET", format!("/svc/{}/reports/today", t + 1)),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "prefix `san.uri=spiffe://…/teamN/*`",
            preamble: "",
            rule: |n| format!("allow GET /spiffe/** san.uri=spiffe://example.org/ns/team{n}/*\n"),
            hit: |_| (Who::Insider, "GET", "/spiffe/a/b".into()),
            miss: |_| (Who::Outsider, "GET", "/spiffe/a/b".into()),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "DNS label `san.dns=*.tN.example.org`",
            preamble: "",
            rule: |n| format!("allow GET /api/** san.dns=*.t{n}.example.org\n"),
            hit: |_| (Who::Insider, "GET", "/api/v1/items".into()),
            miss: |_| (Who::Outsider, "GET", "/api/v1/items".into()),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "path only `/tenant/N/** any`",
            preamble: "",
            rule: |n| format!("allow GET /tenant/{n}/** any\n"),
            hit: |t| (Who::Insider, "GET", format!("/tenant/{t}/x")),
            miss: |_| (Who::Insider, "GET", "/tenant/none/x".into()),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "group `/reports/N/** group=ops`",
            preamble: "group ops subject.OU=ops\ngroup ops san.uri=spiffe://example.org/ns/ops/*\n",
            rule: |n| format!("allow GET /reports/{n}/** group=ops\n"),
            hit: |t| (Who::Insider, "GET", format!("/reports/{t}/x")),
            miss: |_| (Who::Insider, "GET", "/reports/none/x".into()),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "star `/st/N/*/items any`",
            preamble: "",
            rule: |n| format!("allow GET /st/{n}/*/items any\n"),
            hit: |t| (Who::Insider, "GET", format!("/st/{t}/v1/items")),
            miss: |t| (Who::Insider, "GET", format!("/st/{t}/v1/other")),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "template `/tN/{subject.CN}/** subject.O=...`",
            preamble: "",
            rule: |n| format!("allow GET /t{n}/{{subject.CN}}/** subject.O=\"Example Corp\"\n"),
            hit: |t| (Who::Insider, "GET", format!("/t{t}/user{t}/x")),
            miss: |t| (Who::Insider, "GET", format!("/t{t}/someone/x")),
            hit_reason: Reason::AllowRule,
        },
        Form {
            name: "deny `deny * /x/N/** any`",
            preamble: "allow GET /** any\n",
            rule: |n| format!("deny * /x/{n}/** any\n"),
            hit: |t| (Who::Insider, "GET", format!("/x/{t}/y")),
            miss: |_| (Who::Insider, "GET", "/x/none/y".into()),
            hit_reason: Reason::DenyRule,
        },
    ]
}

/// Numbers the rules of a form run over; the target is the middle one.
fn target(rules_per_form: usize) -> usize {
    rules_per_form / 2
}

fn single_policy(form: &Form, n: usize) -> String {
    let mut text = String::from(form.preamble);
    for i in 0..n {
        text.push_str(&(form.rule)(i));
    }
    text
}

/// Every form in turn, n rules in all; the deny form's catch-all allow is
/// left out, so that misses stay misses.
fn mixed_policy(forms: &[Form], n: usize) -> String {
    let mut text: String =
        forms.iter().filter(|f| f.hit_reason != Reason::DenyRule).map(|f| f.preamble).collect();
    for i in 0..n {
        let form = &forms[i % forms.len()];
        text.push_str(&(form.rule)(i / forms.len()));
    }
    text
}

fn certificate(cn: &str, ou: &str, uri: &str, dns: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, if ou == "ops" { "Example Corp" } else { "Other Corp" });
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names =
        vec![SanType::DnsName(dns.try_into().unwrap()), SanType::URI(uri.try_into().unwrap())];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    params.self_signed(&key).unwrap().pem()
}

fn insider(t: usize) -> Identity {
    let pem = certificate(
        &format!("user{t}"),
        "ops",
        &format!("spiffe://example.org/ns/team{t}/sa/billing"),
        &format!("host.t{t}.example.org"),
    );
    Identity::from_pem(pem.as_bytes()).unwrap()
}

fn outsider() -> Identity {
    let pem = certificate("outsider", "dev", "spiffe://example.org/ns/other/sa/x", "host.other.example.org");
    Identity::from_pem(pem.as_bytes()).unwrap()
}

/// Median time of deciding `requests` in turn, per decision.
fn decision_time(policy: &Policy, requests: &[(&Identity, &'static str, String)]) -> Duration {
    let rounds = (2000 / requests.len()).max(1);
    median_per_call(200, rounds * requests.len(), {
        let mut i = 0;
        move || {
            let (identity, method, path) = &requests[i % requests.len()];
            i += 1;
            black_box(policy.decide(Peer::Verified(black_box(identity)), method, black_box(path)));
        }
    })
}

struct Row {
    name: String,
    /// (hit, miss) at each size.
    times: Vec<(Duration, Duration)>,
    compile: Duration,
    bytes_per_rule: isize,
}

const SIZES: [usize; 3] = [10, 1_000, 100_000];

/// Compiles `text` three times; the median time and the bytes the policy
/// keeps per rule.
fn compile_figures(text: &str, rules: usize) -> (Policy, Duration, isize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    let mut kept = None;
    for _ in 0..3 {
        drop(kept.take());
        let before = LIVE.load(Ordering::Relaxed);
        let start = Instant::now();
        let policy = compile_str(text, "bench.policy").expect("bench policy compiles");
        times.push(start.elapsed());
        bytes = LIVE.load(Ordering::Relaxed) - before;
        kept = Some(policy);
    }
    times.sort();
    (kept.unwrap(), times[1], bytes / rules as isize)
}

fn measure(
    name: String,
    text_for: &dyn Fn(usize) -> String,
    requests_for: &dyn Fn(usize) -> (Vec<Request>, Vec<Request>),
    hit_reasons: &[Reason],
    targets: &dyn Fn(usize) -> usize,
    outsider: &Identity,
) -> Row {
    let mut times = Vec::new();
    let (mut compile, mut bytes_per_rule) = (Duration::ZERO, 0);
    for n in SIZES {
        let text = text_for(n);
        let policy = if n == *SIZES.last().unwrap() {
            let (policy, time, bytes) = compile_figures(&text, n);
            (compile, bytes_per_rule) = (time, bytes);
            policy
        } else {
            compile_str(&text, "bench.policy").expect("bench policy compiles")
        };
        let insider = insider(targets(n));
        let (hits, misses) = requests_for(n);
        let resolve = |requests: Vec<Request>| -> Vec<(&Identity, &'static str, String)> {
            requests
                .into_iter()
                .map(|(who, method, path)| {
                    (if who == Who::Insider { &insider } else { outsider }, method, path)
                })
                .collect()
        };
        let (hits, misses) = (resolve(hits), resolve(misses));
        for ((identity, method, path), want) in hits.iter().zip(hit_reasons) {
            let d = policy.decide(Peer::Verified(identity), method, path);
            assert_eq!(d.reason, *want, "{name}, {n} rules: hit {method} {path}: {d:?}");
        }
        for ((identity, method, path), hit) in misses.iter().zip(hit_reasons) {
            let d = policy.decide(Peer::Verified(identity), method, path);
            assert_ne!(d.reason, *hit, "{name}, {n} rules: miss {method} {path}: {d:?}");
        }
        times.push((decision_time(&policy, &hits), decision_time(&policy, &misses)));
    }
    Row { name, times, compile, bytes_per_rule }
}

fn ns(d: Duration) -> String {
    format!("{}", d.as_nanos())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    println!("cert-authz core benchmarks (median per operation)\n");
    let forms = forms();
    let outsider = outsider();
    let mut rows = Vec::new();
    for form in &forms {
        let reasons = [form.hit_reason];
        rows.push(measure(
            form.name.to_string(),
            &|n| single_policy(form, n),
            &|n| (vec![(form.hit)(target(n))], vec![(form.miss)(target(n))]),
            &reasons,
            &target,
            &outsider,
        ));
    }
    // In the mixed policy each form has n / forms rules, numbered from 0.
    let mixed_target = |n: usize| target(n / forms.len());
    let reasons: Vec<Reason> = forms.iter().map(|f| f.hit_reason).collect();
    rows.push(measure(
        "mixed, every form above in turn".to_string(),
        &|n| mixed_policy(&forms, n),
        &|n| {
            let t = mixed_target(n);
            (forms.iter().map(|f| (f.hit)(t)).collect(), forms.iter().map(|f| (f.miss)(t)).collect())
        },
        &reasons,
        &mixed_target,
        &outsider,
    ));

    println!("Decision, identity parsed, ns per decision (hit / miss); bars: ≤ 1,000 ns at 100,000 rules and ≤ 2x the 10-rule figure.");
    println!("Compile of the 100,000-rule policy; bars: ≤ 300 ms, ≤ 500 bytes per rule.\n");
    println!("| rules of the form | 10 | 1,000 | 100,000 | 100k / 10 | compile | bytes/rule | bars |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut all_met = true;
    for row in &rows {
        let (ten, big) = (row.times[0], row.times[2]);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        let (hit_ratio, miss_ratio) = (ratio(big.0, ten.0), ratio(big.1, ten.1));
        let met = big.0 <= Duration::from_micros(1)
            && big.1 <= Duration::from_micros(1)
            && hit_ratio <= 2.0
            && miss_ratio <= 2.0
            && row.compile <= Duration::from_millis(300)
            && row.bytes_per_rule <= 500;
        all_met &= met;
        let cells: Vec<String> = row.times.iter().map(|(h, m)| format!("{} / {}", ns(*h), ns(*m))).collect();
        println!(
            "| {} | {} | {} | {} | {hit_ratio:.2}x / {miss_ratio:.2}x | {:.0} ms | {} | {} |",
            row.name,
            cells[0],
            cells[1],
            cells[2],
            row.compile.as_secs_f64() * 1000.0,
            row.bytes_per_rule,
            if met { "met" } else { "NOT MET" }
        );
    }
    println!("\nEvery decision and compile bar {}.\n", if all_met { "is met" } else { "is NOT met" });

    let pem = certificate(
        "pem-bench-client",
        "ops",
        "spiffe://example.org/ns/prod/sa/billing",
        "client.example.org",
    );
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
    println!("| figure | measured | bar |");
    println!("|---|---|---|");
    println!(
        "| PEM → identity, {} byte certificate (with DN texts and hashes) | {:.2} µs ({:.2} µs) | ≤ 5 µs |",
        pem.len(),
        parse.as_nanos() as f64 / 1000.0,
        parse_all.as_nanos() as f64 / 1000.0
    );
}
