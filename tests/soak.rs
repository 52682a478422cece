//! Soak: many requests at concurrency 32 against each server, from four
//! identities that the policy treats differently, over HTTP/1.1 and
//! HTTP/2, every answer checked against the decision expected for its
//! identity and path; the workers' resident memory before and after.
//!
//! Bar: no wrong decision, no 5xx, no failed request, every request on the
//! protocol asked for, one deny line per refusal, and a worker's RSS grown
//! by less than 1 MiB, from after a warm-up (a tenth of the run, at the
//! same concurrency) to the end, beyond what the server grows by alone.
//! Apache's workers grow by themselves (about 1 MiB per 100,000 requests
//! here, with the module off too: pools and the heap), so the same run
//! with the module loaded but off is the baseline, and its figures are
//! printed next to the module's.  `make test` runs 20,000 requests per server; `make soak` runs
//! CERT_AUTHZ_SOAK_REQUESTS=200000 and prints the figures.

mod common;

use common::both;
use std::collections::BTreeMap;

use common::load::{run_load, worker_rss, StaticSite, Tally, Workers};
use common::server::Server;

/// alice and reporter have their own /users/NAME/, opsbot also /ops/;
/// mallory (CN "alice,O=Example Corp") has only what any client has.
pub const POLICY: &str = "group ops subject.O=\"Example Corp\" subject.OU=ops
allow GET /pub/** any
allow GET /users/{subject.CN}/** any
allow GET /ops/** group=ops
";

const CLIENTS: &[&str] = &["alice", "opsbot", "reporter", "mallory"];
const PATHS: &[&str] =
    &["/pub/f.txt", "/users/alice/f.txt", "/users/opsbot/f.txt", "/users/reporter/f.txt", "/ops/f.txt"];
/// Per curl process: four of them make 32 at once.
const PARALLEL: usize = 8;

/// The status POLICY gives `client` for `path`.
fn expected(client: &str, path: &str) -> u16 {
    let allowed = match path {
        "/pub/f.txt" => true,
        "/ops/f.txt" => client == "opsbot",
        _ => path.strip_prefix("/users/").and_then(|p| p.strip_suffix("/f.txt")) == Some(client),
    };
    if allowed {
        200
    } else {
        403
    }
}

fn requests() -> usize {
    std::env::var("CERT_AUTHZ_SOAK_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000)
}

/// Half the requests over each protocol, a quarter per client.
fn round<S: Server>(server: &S, total: usize, expected: impl Fn(&str, &str) -> u16 + Copy) -> Tally {
    let mut tally = Tally::default();
    for protocol in ["--http1.1", "--http2"] {
        let t = run_load(server, CLIENTS, PATHS, total / 2 / CLIENTS.len(), protocol, PARALLEL, expected);
        let want = if protocol == "--http2" { "2" } else { "1.1" };
        assert_eq!(t.versions.keys().collect::<Vec<_>>(), [want], "{protocol}: {t:?}");
        tally.add(&t);
    }
    tally
}

/// The figures of one soak: the tally and each worker's RSS (KiB) after
/// the warm-up and at the end.
struct Soak {
    name: &'static str,
    tally: Tally,
    warm: Tally,
    denies: usize,
    before: BTreeMap<u32, u64>,
    after: BTreeMap<u32, u64>,
}

impl Soak {
    /// Each worker's growth in KiB; None when the workers changed.
    fn growth(&self) -> Option<Vec<i64>> {
        if self.before.keys().ne(self.after.keys()) {
            return None;
        }
        Some(self.before.iter().map(|(pid, kib)| self.after[pid] as i64 - *kib as i64).collect())
    }

    fn mean_growth(&self) -> i64 {
        let growth = self
            .growth()
            .unwrap_or_else(|| panic!("the workers changed: {:?} {:?}", self.before, self.after));
        growth.iter().sum::<i64>() / growth.len().max(1) as i64
    }
}

/// A soak of `total` requests (after a warm-up of a tenth), with the
/// module enforcing or off.
fn soak<S: StaticSite>(dir: &str, total: usize, enforce: bool) -> Soak {
    let mut server = S::new(dir);
    server.policy_file("soak.policy", POLICY);
    server.write_static("soak.policy", Workers::Fixed, enforce);
    server.start();
    let master = server.pid().expect("a master pid");
    let off = |_: &str, _: &str| 200;
    let round = |total| if enforce { round(&server, total, expected) } else { round(&server, total, off) };
    let warm = round(total / 10);
    let before = worker_rss(master);
    let tally = round(total);
    let after = worker_rss(master);
    let denies = server.deny_lines(&server.error_log()).len();
    assert!(!before.is_empty(), "no workers of {master}");
    Soak { name: server.name(), tally, warm, denies, before, after }
}

both!(soak_decides_every_request_right_without_errors_or_growth, "soak");

fn soak_decides_every_request_right_without_errors_or_growth<S: StaticSite>(name: &str) {
    let total = requests();
    // The server's own growth, under the same load with the module off.
    let base = soak::<S>(&format!("{name}-off"), total, false);
    let on = soak::<S>(name, total, true);
    for s in [&base, &on] {
        println!(
            "soak {} module {}: {} requests ({:?}), concurrency {}, {} wrong, {} 5xx, {} failed, {} deny lines; \
             worker RSS KiB after warm-up {:?}, at the end {:?}, growth {:?}",
            s.name,
            if std::ptr::eq(s, &base) { "off" } else { "on" },
            s.tally.requests,
            s.tally.versions,
            CLIENTS.len() * PARALLEL,
            s.tally.wrong,
            s.tally.server_errors,
            s.tally.failed,
            s.denies,
            s.before.values().collect::<Vec<_>>(),
            s.after.values().collect::<Vec<_>>(),
            s.growth(),
        );
    }
    let share = on.mean_growth() - base.mean_growth();
    println!("soak {}: the module's share of a worker's growth: {share} KiB", on.name);

    for s in [&base, &on] {
        let t = &s.tally;
        assert_eq!(t.requests as usize, total / 2 / CLIENTS.len() * 2 * CLIENTS.len(), "{t:?}");
        assert_eq!((t.wrong, t.server_errors, t.failed), (0, 0, 0), "{t:?}");
        assert_eq!((s.warm.wrong, s.warm.server_errors, s.warm.failed), (0, 0, 0), "warm-up: {:?}", s.warm);
    }
    // Every refusal is one deny line, warm-up included.
    assert_eq!(on.denies as u64, on.warm.refused + on.tally.refused, "deny lines");
    assert!(on.tally.refused > on.tally.requests / 2, "too few refusals: {:?}", on.tally);
    assert!(share < 1024, "the module grew a worker by {share} KiB more than the server alone");
}
