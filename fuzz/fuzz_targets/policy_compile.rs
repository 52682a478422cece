//! The policy parser and compiler on any bytes.  Whatever the bytes, the
//! builder must not panic, and must give either a policy or errors, each at
//! a place that exists: the file it names is one that was read, and its
//! LINE:COL is a character of that file (the error of a byte that is not
//! UTF-8 points at where that byte stands).
//!
//! The input is up to four files, split at a line `@@`: p0 is the policy,
//! p1..p3 are there for its `include`s.  The first byte picks how p0 is
//! given: as a file (any bytes), or as an inline statement starting at a
//! line the input chooses (UTF-8 only, as the servers' directives are).
//! Valid UTF-8 without includes is given both ways, which must agree.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cert_authz::{Peer, PolicyBuilder, PolicyError};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/differential/model.rs"]
#[allow(dead_code)]
mod model;

const FILES: usize = 4;

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cert-authz-fuzz-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A few identities to decide with once a policy compiles, so that what the
/// compiler made from odd text is also used, not only built.
fn pool() -> &'static [model::PoolIdentity] {
    static POOL: OnceLock<Vec<model::PoolIdentity>> = OnceLock::new();
    POOL.get_or_init(|| model::identity_pool(&mut model::Rng(0x0b5e55ed), 4))
}

fn split_files(data: &[u8]) -> Vec<&[u8]> {
    let mut files = Vec::new();
    let mut rest = data;
    while files.len() < FILES - 1 {
        match rest.windows(4).position(|w| w == b"\n@@\n") {
            Some(at) => {
                files.push(&rest[..at]);
                rest = &rest[at + 4..];
            }
            None => break,
        }
    }
    files.push(rest);
    files
}

/// The number of characters of each line, as the lexer counts them (a
/// byte that is not UTF-8 counts as one character where it stands).
fn line_lengths(bytes: &[u8]) -> Vec<usize> {
    String::from_utf8_lossy(bytes).split('\n').map(|line| line.chars().count()).collect()
}

fn check_position(error: &PolicyError, files: &[(String, Vec<usize>, u32)]) {
    // Line 0: a file that cannot be read, or no policy at all.  Ours can be
    // read, so only a file named by an include may have none.
    if error.line == 0 {
        assert_eq!(error.col, 0, "{error}: a column without a line");
        assert!(
            !files.iter().any(|(name, _, _)| *name == *error.file),
            "{error}: an error without a line in a file that was read"
        );
        return;
    }
    let (lengths, first_line) = match files.iter().find(|(name, _, _)| *name == *error.file) {
        Some((_, lengths, first)) => (lengths.clone(), *first),
        // An include of a file outside the input (an absolute name): check
        // against what is there now.
        None => match std::fs::read(&*error.file) {
            Ok(bytes) => (line_lengths(&bytes), 1),
            Err(_) => panic!("{error}: names a file that cannot be read"),
        },
    };
    assert!(error.line >= first_line, "{error}: before the first line {first_line}");
    let index = (error.line - first_line) as usize;
    assert!(index < lengths.len(), "{error}: past the last line ({} lines)", lengths.len());
    // Column 1 of an empty line is where an empty file starts, which is
    // where an error about the whole file points.
    assert!(
        error.col >= 1 && error.col as usize <= lengths[index].max(1),
        "{error}: column outside the line ({} characters)",
        lengths[index]
    );
}

fuzz_target!(|data: &[u8]| {
    let (mode, data) = match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    };
    let parts = split_files(data);
    let dir = scratch();
    let mut files: Vec<(String, Vec<usize>, u32)> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("p{i}"));
        std::fs::write(&path, part).unwrap();
        files.push((path.to_string_lossy().into_owned(), line_lengths(part), 1));
    }
    // A file left from a longer input must not be there to include.
    for i in parts.len()..FILES {
        let _ = std::fs::remove_file(dir.join(format!("p{i}")));
    }
    let main = dir.join("p0");

    let inline = mode & 1 == 1;
    let text = std::str::from_utf8(parts[0]).ok();
    let mut builder = PolicyBuilder::new();
    match text {
        Some(text) if inline => {
            // A small first line, or one so large that the last line of
            // the text is numbered u32::MAX or just below.
            let lines = text.matches('\n').count() as u32;
            let first = match mode & 2 {
                0 => 1 + u32::from(mode >> 2),
                _ => (u32::MAX - lines).saturating_sub(u32::from(mode >> 2)).max(1),
            };
            // Named as a server's config file is, which is not p0: p0 may
            // still be included, and then its lines count from 1.
            let origin = dir.join("server.conf").to_string_lossy().into_owned();
            builder.add_statement(text, &origin, first);
            files.push((origin, files[0].1.clone(), first));
        }
        _ => builder.add_file(&main),
    }
    let result = builder.build();
    match &result {
        Err(errors) => {
            assert!(!errors.is_empty(), "no policy and no error");
            for error in errors {
                check_position(error, &files);
            }
        }
        Ok(policy) => {
            for pooled in pool() {
                for (method, path) in [("GET", "/"), ("POST", "/a/b"), ("GET", "/users/alice/x")] {
                    let _ = policy.decide(Peer::Verified(&pooled.identity), method, path);
                }
            }
            let _ = policy.rule_count();
        }
    }

    // Given as a file or inline, the same text is the same policy.
    if let Some(text) = text {
        let first = files.last().map_or(1, |f| f.2);
        {
            let mut other = PolicyBuilder::new();
            if inline {
                other.add_file(&main);
            } else {
                other.add_statement(text, &files[0].0, 1);
            }
            let other = other.build();
            // Only includes may differ: the file given directly is among
            // the files being read, so including it again is a loop sooner.
            let included = |r: &Result<cert_authz::Policy, Vec<PolicyError>>| {
                r.as_ref().err().is_some_and(|e| e.iter().any(|e| e.message.contains("include")))
            };
            if included(&result) || included(&other) {
                return;
            }
            // The same errors, but for the main source's name and line
            // offset (errors in included files are the same as they are),
            // in any order (errors are sorted by file name).
            let main_name = &files[0].0;
            let origin = &files.last().unwrap().0;
            let place = |errors: &[PolicyError], name: &str, first: u32| {
                let mut placed: Vec<_> = errors
                    .iter()
                    .map(|e| match *e.file == *name {
                        true => (None, e.line - first + 1, e.col, e.message.clone()),
                        false => (Some(e.file.to_string()), e.line, e.col, e.message.clone()),
                    })
                    .collect();
                placed.sort();
                placed
            };
            match (&result, &other) {
                (Ok(a), Ok(b)) => assert_eq!(a.rule_count(), b.rule_count(), "file and inline differ"),
                (Err(a), Err(b)) if inline => assert_eq!(
                    place(a, origin, first),
                    place(b, main_name, 1),
                    "file and inline errors differ"
                ),
                (Err(a), Err(b)) => assert_eq!(a, b, "file and inline errors differ"),
                _ => {
                    panic!("file and inline differ: {:?} / {:?}", result.as_ref().err(), other.as_ref().err())
                }
            }
        }
    }
});
