//! Counts the heap allocations of one compile of a 100,000-rule policy of
//! one form (as benches/core.rs writes them): a measure that, unlike wall
//! time, does not move with the machine's load.
//!
//! `cargo run --release --example compile_allocs -- [exact|prefix|dns|path|group|star|template|deny|mixed]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static REALLOCS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const RULES: usize = 100_000;

fn rule(form: &str, n: usize) -> String {
    match form {
        "exact" => format!("allow GET,POST /svc/{n}/** subject.CN=user{n} subject.O=\"Example Corp\"\n"),
        "prefix" => format!("allow GET /spiffe/** san.uri=spiffe://example.org/ns/team{n}/*\n"),
        "dns" => format!("allow GET /api/** san.dns=*.t{n}.example.org\n"),
        "path" => format!("allow GET /tenant/{n}/** any\n"),
        "group" => format!("allow GET /reports/{n}/** group=ops\n"),
        "star" => format!("allow GET /st/{n}/*/items any\n"),
        "template" => format!("allow GET /t{n}/{{subject.CN}}/** subject.O=\"Example Corp\"\n"),
        "deny" => format!("deny * /x/{n}/** any\n"),
        other => panic!("unknown form {other}"),
    }
}

const FORMS: [&str; 8] = ["exact", "prefix", "dns", "path", "group", "star", "template", "deny"];
const GROUPS: &str = "group ops subject.OU=ops\ngroup ops san.uri=spiffe://example.org/ns/ops/*\n";

fn main() {
    let form = std::env::args().nth(1).unwrap_or_else(|| "exact".to_string());
    let mut text = String::new();
    match form.as_str() {
        "mixed" => {
            text.push_str(GROUPS);
            for i in 0..RULES {
                text.push_str(&rule(FORMS[i % FORMS.len()], i / FORMS.len()));
            }
        }
        "group" => text.push_str(GROUPS),
        "deny" => text.push_str("allow GET /** any\n"),
        _ => {}
    }
    if form != "mixed" {
        for i in 0..RULES {
            text.push_str(&rule(&form, i));
        }
    }
    let (allocs, reallocs, live) =
        (ALLOCS.load(Ordering::Relaxed), REALLOCS.load(Ordering::Relaxed), LIVE.load(Ordering::Relaxed));
    PEAK.store(live, Ordering::Relaxed);
    let start = std::time::Instant::now();
    let policy = cert_authz::compile_str(&text, "x").unwrap();
    let elapsed = start.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs;
    let reallocs = REALLOCS.load(Ordering::Relaxed) - reallocs;
    let kept = LIVE.load(Ordering::Relaxed) - live;
    let peak = PEAK.load(Ordering::Relaxed) - live;
    println!(
        "{form}: {} allocations ({:.2} per rule), {} reallocations ({:.2} per rule), {} B kept per rule, \
         peak {} B per rule, {:.0} ms",
        allocs,
        allocs as f64 / RULES as f64,
        reallocs,
        reallocs as f64 / RULES as f64,
        kept / RULES,
        peak / RULES,
        elapsed.as_secs_f64() * 1000.0
    );
    drop(policy);
}
