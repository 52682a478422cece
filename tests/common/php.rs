//! A php-fpm of a test's own, and the PHP page that shows what PHP sees.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::server::children_of;
use super::{free_port, scratch, share_with_workers, Reply};

/// The PHP page of the php-fpm tests: one `NAME=value` line per variable a
/// PHP application might take the user from (empty when unset), then
/// ADMIN_KEYS, every $_SERVER key whose value is "admin", the forged name.
pub const WHO_PHP: &str = r#"<?php
header('Content-Type: text/plain');
foreach (['REMOTE_USER', 'CERT_AUTHZ_USER', 'PHP_AUTH_USER', 'HTTP_X_CLIENT_IDENTITY',
          'CERT_AUTHZ_DECISION', 'SCRIPT_FILENAME', 'HTTP_AUTHORIZATION'] as $name) {
    echo $name, '=', $_SERVER[$name] ?? '', "\n";
}
$admin = array_keys(array_filter($_SERVER, fn($v) => $v === 'admin'));
sort($admin);
echo 'ADMIN_KEYS=', implode(',', $admin), "\n";
"#;

/// The php-fpm binary of the installed PHP (Debian names it by version,
/// /usr/sbin/php-fpm8.2); the newest when there are several.
pub fn php_fpm_binary() -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/sbin")
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("php-fpm")) && p.is_file()
    });
    found.sort();
    found.pop().expect("no /usr/sbin/php-fpm*: install php-fpm (`make test` does)")
}

/// A php-fpm of its own: one static pool on a free loopback port, its
/// config, logs and pid in a scratch directory, and a document root with
/// who.php (WHO_PHP).  The access log names each request that reached PHP.
/// Dropping it stops the master by its pid (it stops its workers).
pub struct PhpFpm {
    pub port: u16,
    pub docroot: PathBuf,
    dir: PathBuf,
    child: std::process::Child,
}

impl PhpFpm {
    pub fn start(name: &str) -> PhpFpm {
        let binary = php_fpm_binary();
        let dir = scratch(&format!("php-fpm-{name}"));
        let docroot = dir.join("htdocs");
        fs::create_dir_all(&docroot).unwrap();
        fs::write(docroot.join("who.php"), WHO_PHP).unwrap();
        share_with_workers(&dir);
        let port = free_port();
        let d = dir.display();
        // The master stays root (it only writes the logs); the workers run
        // as www-data, as Debian's own pool does.
        let conf = format!(
            "[global]\n\
             pid = {d}/php-fpm.pid\n\
             error_log = {d}/error.log\n\
             daemonize = no\n\
             [test]\n\
             user = www-data\n\
             group = www-data\n\
             listen = 127.0.0.1:{port}\n\
             listen.allowed_clients = 127.0.0.1\n\
             pm = static\n\
             pm.max_children = 2\n\
             access.log = {d}/access.log\n\
             access.format = \"%{{REQUEST_URI}}e user=%{{CERT_AUTHZ_USER}}e\"\n\
             security.limit_extensions = .php\n"
        );
        let conf_path = dir.join("php-fpm.conf");
        fs::write(&conf_path, conf).unwrap();
        let output = fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(&binary)
            .arg("--fpm-config")
            .arg(&conf_path)
            .arg("-F")
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut fpm = PhpFpm { port, docroot, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = fpm.child.try_wait() {
                panic!("{} exited ({status}):\n{}", binary.display(), fpm.logs());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return fpm;
            }
            assert!(Instant::now() < deadline, "php-fpm did not listen on {port}:\n{}", fpm.logs());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its error log and output, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        read("error.log") + &read("stderr.log")
    }

    /// One line per request that reached PHP: `REQUEST_URI user=CERT_AUTHZ_USER`.
    pub fn requests(&self) -> Vec<String> {
        let text = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Waits until PHP has logged a request for `uri` (the access log is
    /// written when the request ends, which may be after the client has
    /// its answer), then returns the log.
    pub fn wait_for_request(&self, uri: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.requests();
            if lines.iter().any(|l| l.split(' ').next() == Some(uri)) {
                return lines;
            }
            let logs = self.logs();
            assert!(Instant::now() < deadline, "no request for {uri} reached PHP: {lines:?}\n{logs}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of `KEY=` in a who.php reply; panics when who.php did not answer.
    pub fn value(reply: &Reply, key: &str) -> String {
        super::env_of(reply, key)
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        let pid = self.child.id();
        let workers = children_of(pid);
        // TERM: the master stops its workers and exits.
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for worker in workers {
            let _ = Command::new("kill").arg("-KILL").arg(worker.to_string()).status();
        }
    }
}
