//! `make install`, `make uninstall`, `make nginx-module` and the Rust
//! version check, run as an administrator runs them: through make, into a
//! scratch DESTDIR (the system is never touched here; tests/deb.rs installs
//! the packages for real).  Each installed file is checked: its mode, that
//! the binaries are stripped and their debug information is where gdb looks
//! for it, the configuration files' contents, and that the installed modules
//! still load into the real servers.  Run `make build` first: install only
//! builds what is missing, and these tests refuse modules older than their
//! sources.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::server::built_module;
use common::{root, scratch, share_with_workers};

/// Runs make in the repository with `args`; panics unless it succeeds.
fn make(args: &[&str]) -> Output {
    let out = make_status(args);
    assert!(
        out.status.success(),
        "make {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn make_status(args: &[&str]) -> Output {
    Command::new("make")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(root())
        .args(args)
        // A make above this test (make test) must not hand its flags down.
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .expect("running make")
}

/// The modules and the CLI that make install takes, checked fresh.
fn built() -> [PathBuf; 3] {
    let cli = built_module("cert-authz", &[]);
    [
        built_module("mod_cert_authz.so", &["module/apache/mod_cert_authz.c"]),
        built_module("ngx_http_cert_authz_module.so", &["module/nginx/ngx_http_cert_authz_module.c"]),
        cli,
    ]
}

/// Every file, link and directory under `dir`, by path relative to it:
/// "f MODE", "l TARGET" or "d".
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, into: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                into.insert(rel, format!("l {}", fs::read_link(&path).unwrap().display()));
            } else if meta.is_dir() {
                into.insert(rel, "d".into());
                walk(base, &path, into);
            } else {
                into.insert(rel, format!("f {:o}", meta.permissions().mode() & 0o7777));
            }
        }
    }
    let mut map = BTreeMap::new();
    walk(dir, dir, &mut map);
    map
}

fn files_only(tree: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tree.iter().filter(|(_, v)| *v != "d").map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn tool(cmd: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(cmd).args(args).arg(file).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The section names of an ELF file.
fn sections(file: &Path) -> Vec<String> {
    tool("readelf", &["-S", "-W"], file)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('[')?.split_once(']')?.1;
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

fn build_id(file: &Path) -> String {
    tool("readelf", &["-n"], file)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .unwrap_or_else(|| panic!("{} has no build ID", file.display()))
}

/// The file name that .gnu_debuglink holds.
fn debuglink(file: &Path) -> String {
    let dump = tool("readelf", &["--string-dump=.gnu_debuglink"], file);
    dump.lines()
        .find_map(|l| Some(l.split_once(']')?.1.trim().to_string()))
        .unwrap_or_else(|| panic!("{} has no .gnu_debuglink:\n{dump}", file.display()))
}

/// The checks of one installed binary: mode, stripped, its debug file
/// under usr/lib/debug/.build-id with the build ID of what was built, and
/// the debuglink naming it.  Returns the debug file's path in DESTDIR.
fn check_elf(dest: &Path, built: &Path, installed: &str, mode: u32) -> String {
    let file = dest.join(installed);
    let meta = fs::metadata(&file).unwrap_or_else(|e| panic!("{installed}: {e}"));
    assert_eq!(meta.permissions().mode() & 0o7777, mode, "{installed}: mode");
    let have = sections(&file);
    for debug in [".debug_info", ".debug_line", ".debug_str", ".symtab"] {
        assert!(!have.iter().any(|s| s == debug), "{installed} is not stripped: it has {debug}");
    }
    let built_size = fs::metadata(built).unwrap().len();
    assert!(
        meta.len() * 4 < built_size && meta.len() < 3 << 20,
        "{installed}: {} bytes installed of {built_size} built",
        meta.len()
    );
    let id = build_id(built);
    assert_eq!(build_id(&file), id, "{installed}: the installed build ID is not the built one");
    let debug = format!("usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    let debug_file = dest.join(&debug);
    assert!(sections(&debug_file).iter().any(|s| s == ".debug_info"), "{debug}: no .debug_info");
    assert_eq!(build_id(&debug_file), id, "{debug}: build ID");
    assert_eq!(fs::metadata(&debug_file).unwrap().permissions().mode() & 0o7777, 0o644, "{debug}: mode");
    assert_eq!(debuglink(&file), format!("{}.debug", &id[2..]), "{installed}: the debuglink");
    debug
}

#[test]
fn install_into_a_destdir_writes_debians_layout_stripped_and_uninstall_removes_it() {
    let [apache_so, nginx_so, cli] = built();
    let dest = scratch("destdir");
    // Something of the system's that uninstall must leave alone.
    fs::create_dir_all(dest.join("etc/apache2/mods-available")).unwrap();
    fs::write(dest.join("etc/apache2/mods-available/ssl.load"), "LoadModule ssl_module x\n").unwrap();
    let dest_arg = format!("DESTDIR={}", dest.display());
    make(&["install", &dest_arg, "PREFIX=/usr"]);

    let mut want: BTreeMap<String, String> = [
        ("etc/apache2/mods-available/ssl.load", "f 644"),
        ("usr/lib/apache2/modules/mod_cert_authz.so", "f 644"),
        ("usr/lib/nginx/modules/ngx_http_cert_authz_module.so", "f 644"),
        ("usr/bin/cert-authz", "f 755"),
        ("usr/share/man/man1/cert-authz.1", "f 644"),
        ("etc/apache2/mods-available/cert_authz.load", "f 644"),
        ("etc/apache2/mods-available/cert_authz.conf", "f 644"),
        ("usr/share/nginx/modules-available/mod-http-cert-authz.conf", "f 644"),
        (
            "etc/nginx/modules-enabled/50-mod-http-cert-authz.conf",
            "l /usr/share/nginx/modules-available/mod-http-cert-authz.conf",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (built, installed, mode) in [
        (&apache_so, "usr/lib/apache2/modules/mod_cert_authz.so", 0o644),
        (&nginx_so, "usr/lib/nginx/modules/ngx_http_cert_authz_module.so", 0o644),
        (&cli, "usr/bin/cert-authz", 0o755),
    ] {
        let debug = check_elf(&dest, built, installed, mode);
        want.insert(debug, "f 644".into());
    }
    assert_eq!(files_only(&tree(&dest)), want, "the files make install wrote");

    // The configuration files, as Debian's module packages write them.
    let load = fs::read_to_string(dest.join("etc/apache2/mods-available/cert_authz.load")).unwrap();
    assert_eq!(
        load,
        "# Depends: ssl\nLoadModule cert_authz_module /usr/lib/apache2/modules/mod_cert_authz.so\n"
    );
    let nginx_conf =
        fs::read_to_string(dest.join("usr/share/nginx/modules-available/mod-http-cert-authz.conf")).unwrap();
    assert_eq!(nginx_conf, "load_module modules/ngx_http_cert_authz_module.so;\n");
    // cert_authz.conf: comments, and nothing active but its <IfModule>.
    let conf = fs::read_to_string(dest.join("etc/apache2/mods-available/cert_authz.conf")).unwrap();
    let active: Vec<&str> =
        conf.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(active, ["<IfModule cert_authz_module>", "</IfModule>"], "cert_authz.conf has active lines");
    for directive in
        ["CertAuthzPolicy", "CertAuthz On", "CertAuthzMode report", "CertAuthzUser", "Require cert-authz"]
    {
        assert!(conf.contains(directive), "cert_authz.conf does not show {directive}");
    }

    // The manual page: every command of the CLI, and groff has nothing to
    // say about it.
    let man = dest.join("usr/share/man/man1/cert-authz.1");
    let page = fs::read_to_string(&man).unwrap();
    assert!(page.starts_with(".TH CERT\\-AUTHZ 1 "), "{page}");
    for section in [".SS check", ".SS show", ".SS lint", ".SS test"] {
        assert!(page.contains(section), "the manual page has no {section}");
    }
    let groff = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&man).output().unwrap();
    assert!(
        groff.status.success() && groff.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&groff.stderr)
    );

    // The stripped files still work: the CLI runs, and both servers load
    // the installed modules (with the installed cert_authz.conf).
    let version = Command::new(dest.join("usr/bin/cert-authz")).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cert-authz {}", env!("CARGO_PKG_VERSION"))
    );
    apache_t_loads(&dest);
    nginx_t_loads(&dest.join("usr/lib/nginx/modules/ngx_http_cert_authz_module.so"));

    // Installing again over it changes nothing (the link is replaced).
    let before = tree(&dest);
    make(&["install", &dest_arg, "PREFIX=/usr"]);
    assert_eq!(files_only(&tree(&dest)), files_only(&before), "a second make install");

    // a2enmod's links: the module's go with it (a dangling one would stop
    // Apache), mod_ssl's stays.
    fs::create_dir_all(dest.join("etc/apache2/mods-enabled")).unwrap();
    for f in ["cert_authz.load", "cert_authz.conf", "ssl.load"] {
        std::os::unix::fs::symlink(
            format!("../mods-available/{f}"),
            dest.join("etc/apache2/mods-enabled").join(f),
        )
        .unwrap();
    }
    make(&["uninstall", &dest_arg, "PREFIX=/usr"]);
    let left = files_only(&tree(&dest));
    let only_ssl: BTreeMap<String, String> = [
        ("etc/apache2/mods-available/ssl.load".to_string(), "f 644".to_string()),
        ("etc/apache2/mods-enabled/ssl.load".to_string(), "l ../mods-available/ssl.load".to_string()),
    ]
    .into();
    assert_eq!(left, only_ssl, "what make uninstall left");
    assert!(
        !dest.join("usr/lib/debug/.build-id").read_dir().unwrap().any(|_| true),
        "debug directories left"
    );
}

/// `apache2 -t` with the installed module and cert_authz.conf, and a
/// policy rule that only the module understands.
fn apache_t_loads(dest: &Path) {
    let dir = scratch("apache-t");
    let conf = dir.join("httpd.conf");
    fs::write(
        &conf,
        format!(
            "ServerRoot {dir}\nServerName localhost\nListen 127.0.0.1:9\nPidFile {dir}/pid\n\
             ErrorLog {dir}/error.log\nDefaultRuntimeDir {dir}\n\
             LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
             LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
             LoadModule cert_authz_module {dest}/usr/lib/apache2/modules/mod_cert_authz.so\n\
             Include {dest}/etc/apache2/mods-available/cert_authz.conf\n\
             CertAuthzRule \"allow GET /x subject.CN=alice\"\n",
            dir = dir.display(),
            dest = dest.display()
        ),
    )
    .unwrap();
    share_with_workers(&dir);
    let out = Command::new("/usr/sbin/apache2").arg("-t").arg("-f").arg(&conf).output().unwrap();
    assert!(
        out.status.success(),
        "apache2 -t with the installed module: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nginx -t` with `module` and a rule that only the module understands.
fn nginx_t_loads(module: &Path) {
    let dir = scratch(&format!("nginx-t-{}", module.file_name().unwrap().to_string_lossy()));
    fs::create_dir_all(dir.join("logs")).unwrap();
    let conf = dir.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "load_module {};\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
             events {{ }}\nhttp {{ cert_authz_rule \"allow GET /x subject.CN=alice\"; }}\n",
            module.display(),
            dir = dir.display()
        ),
    )
    .unwrap();
    let out = Command::new("/usr/sbin/nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .arg("-t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nginx -t with {}: {}",
        module.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prefix_moves_the_cli_and_not_what_the_servers_read() {
    built();
    let dest = scratch("destdir-prefix");
    let dest_arg = format!("DESTDIR={}", dest.display());
    // STRIP=no: the layout is under test here, not the stripping.
    make(&["install", &dest_arg, "PREFIX=/opt/cert-authz", "STRIP=no", "NGINX_ENABLE=no"]);
    let files: Vec<String> = files_only(&tree(&dest)).into_keys().collect();
    assert_eq!(
        files,
        [
            "etc/apache2/mods-available/cert_authz.conf",
            "etc/apache2/mods-available/cert_authz.load",
            "opt/cert-authz/bin/cert-authz",
            "opt/cert-authz/share/man/man1/cert-authz.1",
            "usr/lib/apache2/modules/mod_cert_authz.so",
            "usr/lib/nginx/modules/ngx_http_cert_authz_module.so",
            "usr/share/nginx/modules-available/mod-http-cert-authz.conf",
        ]
    );
    // Not stripped: the installed module is the built one, byte for byte.
    assert_eq!(
        fs::read(dest.join("usr/lib/apache2/modules/mod_cert_authz.so")).unwrap(),
        fs::read(root().join("target/release/mod_cert_authz.so")).unwrap()
    );
    make(&["uninstall", &dest_arg, "PREFIX=/opt/cert-authz"]);
    assert!(files_only(&tree(&dest)).is_empty(), "make uninstall left {:?}", files_only(&tree(&dest)));
}

/// `make nginx-module` against Debian's source tree with the configure
/// arguments of /usr/sbin/nginx -V, then with the same arguments from a
/// file: the module's signature is the binary's (build.sh checks) and
/// nginx loads it.
#[test]
fn nginx_module_builds_against_a_source_tree_with_that_nginxs_arguments() {
    built();
    let dir = scratch("nginx-module");
    let out_so = dir.join("from-binary.so");
    let out = make(&[
        "nginx-module",
        "NGINX_SRC=/usr/share/nginx/src",
        "NGINX_BIN=/usr/sbin/nginx",
        &format!("NGINX_MODULE={}", out_so.display()),
    ]);
    let log = String::from_utf8_lossy(&out.stdout);
    // The arguments came from nginx -V, not from Debian's conf_flags: its
    // other dynamic modules were dropped.
    assert!(log.contains("dropping --with-stream=dynamic"), "make nginx-module:\n{log}");
    nginx_t_loads(&out_so);

    let flags = dir.join("nginx-V.txt");
    let v = Command::new("/usr/sbin/nginx").arg("-V").output().unwrap();
    fs::write(&flags, [v.stdout, v.stderr].concat()).unwrap();
    let from_file = dir.join("from-file.so");
    let out = make(&[
        "nginx-module",
        "NGINX_SRC=/usr/share/nginx/src",
        &format!("NGINX_FLAGS={}", flags.display()),
        &format!("NGINX_MODULE={}", from_file.display()),
    ]);
    let log = String::from_utf8_lossy(&out.stdout);
    // Parsed as nginx -V's output is (the configuration, the same, is kept).
    assert!(log.contains("dropping --with-stream=dynamic"), "make nginx-module NGINX_FLAGS=FILE:\n{log}");
    nginx_t_loads(&from_file);

    // Arguments that are not the binary's (no --with-compat) make a module
    // that nginx would refuse: it is not delivered.
    let other_flags = dir.join("other-V.txt");
    let text = fs::read_to_string(&flags).unwrap().replace(" --with-compat", "");
    fs::write(&other_flags, text).unwrap();
    let refused = dir.join("refused.so");
    let out = make_status(&[
        "nginx-module",
        "NGINX_SRC=/usr/share/nginx/src",
        &format!("NGINX_FLAGS={}", other_flags.display()),
        &format!("NGINX_BUILD={}", dir.join("build-other").display()),
        &format!("NGINX_MODULE={}", refused.display()),
    ]);
    assert!(!out.status.success(), "a module of other arguments was delivered");
    assert!(String::from_utf8_lossy(&out.stderr).contains("module signature"), "{out:?}");
    assert!(!refused.exists(), "{} was written", refused.display());

    // A tree that is not nginx's is named, not half-built.
    let out = make_status(&["nginx-module", &format!("NGINX_SRC={}", dir.display())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be an nginx source tree"), "{out:?}");
}

/// The Makefile's RUST_MIN, the Rust that `make` asks for.
fn rust_min() -> String {
    let makefile = fs::read_to_string(root().join("Makefile")).unwrap();
    makefile
        .lines()
        .find_map(|l| l.strip_prefix("RUST_MIN := "))
        .expect("the Makefile sets RUST_MIN")
        .trim()
        .to_string()
}

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|n| n.parse().unwrap_or_else(|_| panic!("version {v}"))).collect()
}

/// `make` names a Rust older than RUST_MIN, and how to get a current one,
/// before cargo runs.
#[test]
fn make_names_a_rust_that_is_too_old() {
    let dir = scratch("old-rust");
    let fake = dir.join("rustc");
    fs::write(&fake, "#!/bin/sh\necho 'rustc 1.63.0 (Debian)'\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let out = make_status(&["toolchain", &format!("RUSTC={}", fake.display())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "make accepted rustc 1.63: {text}");
    assert!(text.contains(&format!("needs Rust {} or newer", rust_min())), "{text}");
    assert!(text.contains("is 1.63.0") && text.contains("rustup"), "{text}");

    let missing = make_status(&["toolchain", "RUSTC=/nonexistent/rustc"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("no working '/nonexistent/rustc'"),
        "{missing:?}"
    );

    // The README asks for the same.
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("Rust {} or newer", rust_min())), "the README names another Rust");

    // The toolchain that builds this test passes.
    let out = make_status(&["toolchain"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// RUST_MIN is the newest rust-version among the locked crates (for this
/// platform): neither a version that cannot build them nor a needless one.
#[test]
fn rust_min_is_what_the_locked_crates_need() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(root())
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8_lossy(&out.stdout);
    let needed = json
        .split("\"rust_version\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|v| {
            let mut v = version(v);
            v.resize(3, 0);
            v
        })
        .max()
        .expect("rust_version in cargo metadata");
    let mut min = version(&rust_min());
    min.resize(3, 0);
    assert_eq!(min, needed, "RUST_MIN in the Makefile is not the locked crates' newest rust-version");
}
