//! Shared helpers for the integration and end-to-end tests and the server
//! benchmarks: a test PKI made with rcgen, scratch directories and free
//! loopback ports, curl as the TLS client, recording backends, php-fpm, the
//! case table that the CLI, Apache and nginx must all agree on, and the one
//! server harness (`Server`, with an Apache and an nginx implementation),
//! and load from curl for the soak and reload tests.
//!
//! Every test binary and `benches/servers.rs` include this module whole, so
//! each uses only part of it.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod apache;
pub mod cases;
pub mod http;
pub mod load;
pub mod nginx;
pub mod php;
pub mod pki;
pub mod server;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use cases::{SHARED_CASES, SHARED_POLICY};
pub use http::{curl, curl_many, env_of, s_client, serve, Backend, Reply, Transfer};
pub use php::PhpFpm;
pub use pki::{make_pki, pki, Pki};

/// One test per server for `scenario`, a function generic over
/// `server::Server`, in a module named after it: `SCENARIO::apache` and
/// `SCENARIO::nginx`, as nginx-tests runs one .t file per behaviour.
/// `dir` names the scenario's scratch directories (short: Apache's sockets
/// live there).
macro_rules! both {
    ($scenario:ident, $dir:literal) => {
        mod $scenario {
            #[test]
            fn apache() {
                super::$scenario::<crate::common::apache::Apache>($dir);
            }

            #[test]
            fn nginx() {
                super::$scenario::<crate::common::nginx::Nginx>($dir);
            }
        }
    };
}
pub(crate) use both;

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory `name` of this run.  It lives under the
/// system's temporary directory, not the checkout: the servers' workers run
/// as www-data and must reach their files whatever the checkout's parents
/// allow (a clone under /root would not do).
pub fn scratch(name: &str) -> PathBuf {
    let dir = run_dir().join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// cert-authz-tests/BINARY.PID: two runs of one test binary (from two
/// checkouts) never share a file, such as the PKI their servers trust.  The
/// directories of runs that have ended are removed on first use.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir().join("cert-authz-tests");
        let prefix = format!("{}.", env!("CARGO_CRATE_NAME"));
        for entry in fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|p| p.parse::<i32>().ok());
            if pid.is_some_and(|pid| !server::alive(pid)) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        base.join(format!("{prefix}{}", std::process::id()))
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Makes `path` and everything under it readable by the servers' workers
/// (www-data).
pub fn share_with_workers(path: &Path) {
    let _ = std::process::Command::new("chmod").arg("-R").arg("a+rX").arg(path).status();
}
