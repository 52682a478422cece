//! The indexed decision against a reference that checks every statement in
//! order (tests/differential/model.rs): random policies of every form
//! (literal, `*`, `{ATTR}` and `**` paths; exact, prefix and `*.` values of
//! several attributes; `any`; groups of several lines; deny and allow;
//! method lists; requirements; includes), random certificates with several
//! values per attribute, random requests and user attributes.  Decision,
//! reason, deciding statement and user must agree.
//!
//! Seeded: CERT_AUTHZ_DIFF_SEED=N reruns a failure (the seed is printed
//! with it); CERT_AUTHZ_DIFF_ROUNDS=N runs longer than the default, which
//! stays within a few seconds.

#[path = "differential/model.rs"]
mod model;

use model::{identity_pool, run_case, Rng, Source};

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

#[test]
fn indexed_decisions_equal_the_reference_on_random_policies() {
    let seed = env_number("CERT_AUTHZ_DIFF_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let rounds = env_number("CERT_AUTHZ_DIFF_ROUNDS").unwrap_or(1500);
    eprintln!("differential test: seed {seed}, {rounds} rounds");
    let mut rng = Rng(seed);
    let pool = identity_pool(&mut rng, 24);
    let dir = std::env::temp_dir().join(format!("cert-authz-differential-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for round in 0..rounds {
        // Every round from a seed of its own, so that one can be replayed.
        let round_seed = rng.next_u64();
        let mut case = Rng(round_seed);
        let with_files = case.chance(50);
        let result = run_case(&mut case, &pool, with_files.then_some(dir.as_path()), 150);
        if let Err(difference) = result {
            panic!("seed {seed} (CERT_AUTHZ_DIFF_SEED={seed}), round {round}: {difference}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
