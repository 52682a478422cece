//! Reload under load, in both servers: while curl keeps 32 requests in
//! flight (HTTP/1.1 and HTTP/2 in turn, keep-alive), the policy changes and
//! the server reloads (Apache `-k graceful`, nginx HUP), then a broken
//! policy is installed and the server is asked to reload again.
//!
//! Bar: no request fails (no transport error, no 5xx; but see below for
//! kept-alive connections that a reload closes); every answer is the
//! one the policy in force gives, where a batch of requests that overlaps
//! the first reload may find either policy on the path that changes; after
//! the reload only the new policy answers; the broken policy never does
//! (the path only it would allow stays refused throughout) and the server
//! keeps the new one.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, sleep};
use std::time::Duration;

use common::both;
use common::load::{run_load, StaticSite, Tally, Workers, EITHER};
use common::server::Server;

const OLD: &str = "allow GET /pub/** any\nallow GET /flip/** subject.CN=alice\n";
const NEW: &str = "allow GET /pub/** any\nallow GET /flip/** subject.CN=opsbot\n";
/// Would allow /broken/ to anyone, if it were ever taken: its third line
/// is an error.
const BROKEN: &str = "allow GET /pub/** any\nallow GET /broken/** any\nallow GET /flip/** bogus\n";

const CLIENTS: &[&str] = &["alice", "opsbot"];
const PATHS: &[&str] = &["/pub/f.txt", "/flip/f.txt", "/broken/f.txt"];
/// Per curl process: two of them make 32 at once.
const PARALLEL: usize = 16;
/// Requests per client in one batch.
const BATCH: usize = 600;

/// The phases of the run, in order.
const OLD_POLICY: usize = 0;
const RELOADING: usize = 1;
const NEW_POLICY: usize = 2;
const BROKEN_RELOAD: usize = 3;
const DONE: usize = 4;

/// The status for `client` and `path` of a batch that ran from phase
/// `first` to phase `last`.
fn expected(first: usize, last: usize, client: &str, path: &str) -> u16 {
    match path {
        "/pub/f.txt" => 200,
        "/flip/f.txt" => {
            let allowed = if last == OLD_POLICY {
                client == "alice"
            } else if first >= NEW_POLICY {
                client == "opsbot"
            } else {
                return EITHER;
            };
            if allowed {
                200
            } else {
                403
            }
        }
        _ => 403,
    }
}

/// Batches of load until `stop`: each batch's tally, and the phases it
/// started and ended in.
fn keep_loading<S: Server + Sync>(
    server: &S,
    phase: &AtomicUsize,
    stop: &AtomicBool,
) -> Vec<(usize, usize, Tally)> {
    let mut batches = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let protocol = if i % 2 == 0 { "--http1.1" } else { "--http2" };
        let first = phase.load(Ordering::SeqCst);
        // judged by `rejudge` once the phase at its end is known
        let tally = run_load(server, CLIENTS, PATHS, BATCH, protocol, PARALLEL, |_, _| EITHER);
        let last = phase.load(Ordering::SeqCst);
        batches.push((first, last, tally));
        i += 1;
    }
    batches
}

both!(a_reload_under_load_fails_no_request_and_a_broken_one_changes_nothing, "rl");

fn a_reload_under_load_fails_no_request_and_a_broken_one_changes_nothing<S: StaticSite + Sync>(name: &str) {
    let mut server = S::new(name);
    server.policy_file("live.policy", OLD);
    server.write_static("live.policy", Workers::Reloadable, true);
    server.start();
    let pid = server.pid();

    let phase = Arc::new(AtomicUsize::new(OLD_POLICY));
    let stop = Arc::new(AtomicBool::new(false));
    let probe = |client: &str, path: &str| server.status(Some(client), "GET", path);
    let batches = thread::scope(|scope| {
        let load = scope.spawn(|| keep_loading(&server, &phase, &stop));
        sleep(Duration::from_secs(3));

        phase.store(RELOADING, Ordering::SeqCst);
        server.policy_file("live.policy", NEW);
        server.reload().unwrap_or_else(|e| panic!("the reload was refused:\n{e}"));
        // workers of the old generation may finish what they have
        server.wait_for("the new policy", || {
            probe("opsbot", "/flip/f.txt") == 200 && probe("alice", "/flip/f.txt") == 403
        });
        phase.store(NEW_POLICY, Ordering::SeqCst);
        sleep(Duration::from_secs(3));

        phase.store(BROKEN_RELOAD, Ordering::SeqCst);
        let bad = server.policy_file("live.policy", BROKEN);
        let complaint = server.reload().expect_err("a broken policy was accepted");
        assert!(complaint.contains(&format!("{}:3:", bad.display())), "no FILE:LINE in:\n{complaint}");
        sleep(Duration::from_secs(3));
        phase.store(DONE, Ordering::SeqCst);
        sleep(Duration::from_secs(1));
        stop.store(true, Ordering::SeqCst);
        load.join().expect("the load thread")
    });

    assert_eq!(server.pid(), pid, "the master changed");
    assert_eq!(
        (probe("opsbot", "/flip/f.txt"), probe("alice", "/flip/f.txt")),
        (200, 403),
        "not the new policy"
    );
    assert_eq!(probe("alice", "/broken/f.txt"), 403, "the broken policy is in force");

    // Judge each batch by the phases it spanned.
    let mut total = Tally::default();
    for (_, _, tally) in &batches {
        total.add(tally);
    }
    let spans: Vec<(usize, usize)> = batches.iter().map(|(f, l, _)| (*f, *l)).collect();
    let wrong = rejudge(&batches);
    // A reload closes the old workers' kept-alive connections, and a
    // request in flight on one can be lost with the module or without it:
    // over HTTP/1.1 one that a client has just sent (a broken pipe, or a
    // connection that died: curl tries its other connections, closing too,
    // and gives up after 5); over HTTP/2, now and then, curl 7.88 takes
    // nginx's GOAWAY as "Error in the HTTP2 framing layer" (curl issue
    // #1618: the same against a reloading nginx).  With the module off the
    // same runs lost 17 of 21,600 requests across 10 graceful restarts of
    // Apache and 12 of 38,400 across 10 reloads of nginx, all HTTP/1.1.  So
    // such a loss is tolerated, and counted, where it can only be that: in
    // a batch that ran across the reload, with no worker crashed.  Every
    // other request must be answered.
    let tolerated = |first: usize, last: usize| first <= RELOADING && last >= RELOADING;
    let failed: u64 = batches.iter().filter(|(f, l, _)| !tolerated(*f, *l)).map(|b| b.2.failed).sum();
    let closed: u64 = batches.iter().filter(|(f, l, _)| tolerated(*f, *l)).map(|b| b.2.failed).sum();
    println!(
        "reload under load, {}: {} requests in {} batches ({:?}), {} wrong, {} 5xx, {} failed \
         ({} more on connections the reload closed); phases {:?}",
        server.name(),
        total.requests,
        batches.len(),
        total.versions,
        wrong.iter().map(|(_, n)| n).sum::<u64>(),
        total.server_errors,
        failed,
        closed,
        spans
    );
    assert_eq!(
        (failed, total.server_errors),
        (0, 0),
        "{:?}",
        batches.iter().map(|b| &b.2.samples).collect::<Vec<_>>()
    );
    let log = server.error_log();
    assert!(!log.contains("exit signal") && !log.contains("exited on signal"), "a worker crashed:\n{log}");
    assert!(wrong.is_empty(), "{wrong:#?}");
    // the load ran under each policy, and across the broken reload
    for want in [OLD_POLICY, NEW_POLICY, BROKEN_RELOAD] {
        assert!(
            spans.iter().any(|&(f, l)| f == want && l == want),
            "no batch wholly in phase {want}: {spans:?}"
        );
    }
    assert!(
        spans.iter().any(|&(f, l)| f <= RELOADING && l >= RELOADING),
        "no batch during the reload: {spans:?}"
    );
}

/// The wrong answers of every batch, judged against the phases it
/// spanned, and how many of each.
fn rejudge(batches: &[(usize, usize, Tally)]) -> Vec<(String, u64)> {
    let mut wrong = Vec::new();
    for (first, last, tally) in batches {
        for ((client, path, status), n) in &tally.answers {
            if *status == 0 {
                // no answer at all: counted as failed
                continue;
            }
            let want = expected(*first, *last, client, path);
            let right = if want == EITHER { *status == 200 || *status == 403 } else { *status == want };
            if !right {
                wrong.push((
                    format!("phases {first}..{last}: {client} {path}: {status}, expected {want}"),
                    *n,
                ));
            }
        }
    }
    wrong
}

both!(many_reloads_each_take_their_policy, "rln");

/// Reload after reload (CERT_AUTHZ_RELOADS of them, 5 by default; 50 in
/// `make test-sanitize`, where a leak or a use after free of a policy that
/// a reload replaced would show), each with a policy that moves /flip/ to
/// the other client, each checked to be in force before the next.
fn many_reloads_each_take_their_policy<S: StaticSite>(name: &str) {
    let reloads: usize = std::env::var("CERT_AUTHZ_RELOADS").ok().and_then(|n| n.parse().ok()).unwrap_or(5);
    let mut server = S::new(name);
    server.policy_file("live.policy", OLD);
    server.write_static("live.policy", Workers::Reloadable, true);
    server.start();
    let pid = server.pid();
    let probe = |client: &str| server.status(Some(client), "GET", "/flip/f.txt");
    for i in 0..reloads {
        let (policy, allowed, refused) =
            if i % 2 == 0 { (NEW, "opsbot", "alice") } else { (OLD, "alice", "opsbot") };
        server.policy_file("live.policy", policy);
        server.reload().unwrap_or_else(|e| panic!("reload {i} was refused:\n{e}"));
        server.wait_for(&format!("the policy of reload {i}"), || {
            probe(allowed) == 200 && probe(refused) == 403
        });
    }
    assert_eq!(server.pid(), pid, "the master changed");
    assert!(server.stop(), "{} did not stop on its signal", server.name());
}
