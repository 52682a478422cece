//! Reading callgrind's output files (valgrind's "callgrind format"), for
//! the instruction counts of benches/servers.rs: the program's total, and
//! per function its own instructions and those of everything it called.
//!
//! Functions are keyed by name alone.  callgrind files a function's inlined
//! code under the source file it came from (`fi=`/`fe=`), and
//! callgrind_annotate shows each such piece as a function of its own;
//! summed by name they are the whole function again.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// What one function cost in one run.
#[derive(Clone, Debug, Default)]
pub struct Cost {
    /// Instructions in the function itself.
    pub own: u64,
    /// Its own and those of all it called (calls to itself left out).
    pub inclusive: u64,
    /// The object (executable or shared library) it lives in.
    pub object: String,
}

/// One run's profile.
pub struct Profile {
    pub total: u64,
    pub functions: HashMap<String, Cost>,
    /// Per object, the inclusive instructions of the calls into it from
    /// code outside it: all that the object's code made the program do
    /// (what it calls elsewhere included, how the rest of the program lays
    /// out its memory not).
    pub calls_into: HashMap<String, u64>,
}

/// Names are compressed: `(ID) NAME` defines ID, a later `(ID)` reuses it.
/// Files and objects have id spaces of their own; a function's callee
/// (`cfn=`) shares the functions'.
fn name(ids: &mut HashMap<u64, String>, spec: &str) -> String {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix('(') {
        if let Some((id, tail)) = rest.split_once(')') {
            if let Ok(id) = id.parse::<u64>() {
                let tail = tail.trim();
                if !tail.is_empty() {
                    ids.insert(id, tail.to_string());
                }
                return ids.get(&id).cloned().unwrap_or_default();
            }
        }
    }
    spec.to_string()
}

/// The instructions of a cost line (`POSITION COUNT`); only one event,
/// Ir, is collected.
fn cost_of(line: &str) -> u64 {
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

pub fn read(path: &Path) -> Profile {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut fn_ids = HashMap::new();
    let mut ob_ids = HashMap::new();
    let mut file_ids = HashMap::new();
    let mut functions: HashMap<String, Cost> = HashMap::new();
    let mut total = 0;
    let mut object = String::new();
    let mut current = String::new();
    let mut callee = String::new();
    // The callee's object: `cob=` names it when it is not the caller's.
    let mut callee_object: Option<String> = None;
    let mut pending_cob = false;
    let mut calls_into: HashMap<String, u64> = HashMap::new();
    // The cost line after `calls=` is the call's inclusive cost.
    let mut call_follows = false;
    for line in text.lines() {
        let Some(first) = line.bytes().next() else { continue };
        if first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*' {
            let cost = cost_of(line);
            let entry = functions.entry(current.clone()).or_default();
            if call_follows {
                call_follows = false;
                if callee != current {
                    entry.inclusive += cost;
                }
                if let Some(into) = callee_object.take().filter(|o| *o != object) {
                    *calls_into.entry(into).or_default() += cost;
                }
            } else {
                entry.own += cost;
                entry.inclusive += cost;
            }
        } else if let Some(spec) = line.strip_prefix("fn=") {
            current = name(&mut fn_ids, spec);
            let entry = functions.entry(current.clone()).or_default();
            if entry.object.is_empty() {
                entry.object = object.clone();
            }
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee = name(&mut fn_ids, spec);
            // A `cob=` comes before its `cfn=`: the callee's object unless
            // none was given for this call.
            if !pending_cob {
                callee_object = None;
            }
            pending_cob = false;
        } else if line.starts_with("calls=") {
            call_follows = true;
        } else if let Some(spec) = line.strip_prefix("ob=") {
            object = name(&mut ob_ids, spec);
        } else if let Some(spec) = line.strip_prefix("cob=") {
            callee_object = Some(name(&mut ob_ids, spec));
            pending_cob = true;
        } else if let Some((key, spec)) = line.split_once('=') {
            if matches!(key, "fl" | "fi" | "fe" | "cfi" | "cfl") {
                name(&mut file_ids, spec);
            }
        } else if let Some(n) = line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")) {
            total = total.max(n.trim().parse().unwrap_or(0));
        }
    }
    Profile { total, functions, calls_into }
}

/// Per function, what `long` cost more than `short`, divided by `requests`
/// (the difference in requests served): own and inclusive instructions per
/// request.
pub fn per_request(short: &Profile, long: &Profile, requests: f64) -> HashMap<String, (f64, f64, String)> {
    let mut out = HashMap::new();
    let empty = Cost::default();
    for name in short.functions.keys().chain(long.functions.keys()) {
        if out.contains_key(name) {
            continue;
        }
        let a = short.functions.get(name).unwrap_or(&empty);
        let b = long.functions.get(name).unwrap_or(&empty);
        let object = if b.object.is_empty() { a.object.clone() } else { b.object.clone() };
        out.insert(
            name.clone(),
            (
                (b.own as f64 - a.own as f64) / requests,
                (b.inclusive as f64 - a.inclusive as f64) / requests,
                object,
            ),
        );
    }
    out
}
