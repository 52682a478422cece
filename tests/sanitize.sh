#!/bin/bash
# make test-sanitize: the end-to-end suites of both servers with the module
# built with AddressSanitizer (core and shim) and UndefinedBehaviorSanitizer
# (shim), then a count of what the sanitizers found that is the module's.
#
#   APACHE_CFLAGS="..." tests/sanitize.sh [cargo test arguments...]
#
# - The core: nightly rustc's -Zsanitizer=address, a static library of its
#   own under target/sanitize (std itself is not instrumented).
# - The shims: gcc -fsanitize=address,undefined, linked with that library.
#   The nginx shim is built by nginx's build system (module/nginx/build.sh)
#   against a root whose target/release/libcert_authz.a is the sanitized
#   core, then compiled again with the sanitizer flags.
# - apache2 and nginx are not built with ASan, so the tests preload gcc's
#   libasan into the servers only (CERT_AUTHZ_SERVER_PRELOAD; curl and
#   openssl run as they are) and load these modules
#   (CERT_AUTHZ_APACHE_MODULE, CERT_AUTHZ_NGINX_MODULE).
# - Every server process writes its reports to build/sanitize/logs: ASan
#   errors, UBSan's runtime errors, and LeakSanitizer's leaks at exit.  Any
#   error fails.  The servers leave memory behind at exit by design (pools
#   that live as long as the process: httpd's children exit without
#   destroying the configuration pool); a leak record with no frame of the
#   module (cert_authz) is the server's and not counted.  One with a frame
#   of the module fails, unless it was allocated at configuration time:
#   the compiled policies of the process's own configuration, held by that
#   pool until exit.  Those are a handful per process (one per scope with
#   rules); a policy leaked by each reload would be one per reload, and
#   the check fails when any process holds half as many as there were
#   reloads (50 in the reload tests here).
set -euo pipefail

root=$(pwd)
out=$root/build/sanitize
triple=x86_64-unknown-linux-gnu
san="-fsanitize=address,undefined -fno-omit-frame-pointer"
core=$root/target/sanitize/$triple/release/libcert_authz.a

echo "== the core, with AddressSanitizer (nightly)"
RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" \
    cargo +nightly build --release --locked --lib --target "$triple" --target-dir "$root/target/sanitize"

echo "== the Apache shim"
mkdir -p "$out/apache"
# shellcheck disable=SC2086 # flag lists
gcc -std=gnu99 -O1 -g $san -fPIC -Wall -Wextra -Werror -Iinclude ${APACHE_CFLAGS:-} \
    -c module/apache/mod_cert_authz.c -o "$out/apache/mod_cert_authz.o"
# shellcheck disable=SC2086
gcc -shared $san -o "$out/mod_cert_authz.so" "$out/apache/mod_cert_authz.o" "$core" \
    -Wl,--exclude-libs,ALL -Wl,--version-script=module/apache/exports.map \
    -lssl -lcrypto -lpthread -ldl -lm

echo "== the nginx shim"
mkdir -p "$out/root/target/release"
ln -sfn "$root/include" "$out/root/include"
ln -sf "$core" "$out/root/target/release/libcert_authz.a"
CERT_AUTHZ_ROOT=$out/root module/nginx/build.sh "$out/nginx" "$out/plain.so" > /dev/null
objs=$out/nginx/objs
flags=$(sed -n 's/^CFLAGS = //p' "$objs/Makefile")
rm -f "$objs"/addon/nginx/ngx_http_cert_authz_module.o "$objs/ngx_http_cert_authz_module.so"
make -s -f "$objs/Makefile" -C "$out/nginx/nginx-src" modules \
    CFLAGS="$flags $san" LINK="cc $san"
install -m 644 "$objs/ngx_http_cert_authz_module.so" "$out/ngx_http_cert_authz_module.so"
# Both halves instrumented: the core's objects have rustc's ASan
# constructors, the shim calls UBSan's handlers.
for so in "$out/mod_cert_authz.so" "$out/ngx_http_cert_authz_module.so"; do
    ldd "$so" > "$out/ldd.txt"
    grep -q libasan "$out/ldd.txt" || { echo "$so is not linked with libasan" >&2; exit 1; }
    nm "$so" > "$out/nm.txt"
    ctors=$(grep -c 'asan\.module_ctor' "$out/nm.txt" || true)
    if [ "$ctors" -lt 2 ]; then
        echo "$so is not instrumented ($ctors ASan constructors)" >&2
        exit 1
    fi
    grep -q __ubsan_handle "$out/nm.txt" || { echo "$so: the shim is not instrumented" >&2; exit 1; }
done

echo "== the end-to-end suites under the sanitizers"
rm -rf "$out/logs"
mkdir -p "$out/logs"
chmod 1777 "$out/logs"   # the workers run as www-data
export CERT_AUTHZ_APACHE_MODULE=$out/mod_cert_authz.so
export CERT_AUTHZ_NGINX_MODULE=$out/ngx_http_cert_authz_module.so
CERT_AUTHZ_SERVER_PRELOAD=$(gcc -print-file-name=libasan.so)
export CERT_AUTHZ_SERVER_PRELOAD
export CERT_AUTHZ_RELOADS=${CERT_AUTHZ_RELOADS:-50}
# The servers' exit status stays theirs (a leak report would change it and
# fail `apache2 -t`); the reports are counted below.
export ASAN_OPTIONS="log_path=$out/logs/asan:detect_leaks=1:exitcode=0:detect_odr_violation=0"
export LSAN_OPTIONS="exitcode=0"
export UBSAN_OPTIONS="log_path=$out/logs/ubsan:print_stacktrace=1"
status=0
cargo test --release --locked "$@" || status=$?

echo "== what the sanitizers found"
found=0
python3 - "$out/logs" "$CERT_AUTHZ_RELOADS" <<'EOF' || found=$?
import os, re, sys

logs, reloads = sys.argv[1], int(sys.argv[2])
# The shim's configuration-time functions: what they allocate (the
# compiled policy of the configuration) is owned by the configuration's
# pool, which httpd's processes do not destroy before they exit.
config_time = re.compile(r" in (cert_authz_check_config|add_source|set_\w+|"
                         r"ngx_http_cert_authz_(create|merge|init|policy|rule)\w*) ")
files = sorted(os.listdir(logs))
errors, ub, leaks, held, foreign = [], [], [], 0, 0
most_held = 0
for name in files:
    text = open(os.path.join(logs, name), errors="replace").read()
    policies = 0
    for block in re.split(r"\n(?=(?:Direct|Indirect) leak of |==\d+==ERROR: )", text):
        if "ERROR: AddressSanitizer" in block:
            errors.append((name, block))
            continue
        m = re.match(r"(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+)", block)
        if not m:
            continue
        if "cert_authz" not in block:
            foreign += 1
        elif config_time.search(block):
            held += 1
            if m.group(1) == "Direct":
                policies += int(m.group(3))
        else:
            leaks.append((name, block))
    most_held = max(most_held, policies)
    for line in text.splitlines():
        if "runtime error" in line:
            ub.append((name, line))
# What a process still holds at exit is the policies of the configuration
# it runs (one per scope with rules, of at most two readings: httpd reads
# its configuration twice at start), a handful; a policy leaked by each
# reload would be one per reload, in the master and every worker forked
# after them.
grows = most_held >= reloads // 2
print(f"{len(files)} report files after {reloads} reloads per reload test: "
      f"{len(errors)} AddressSanitizer errors, {len(ub)} UndefinedBehaviorSanitizer errors, "
      f"{len(leaks)} leaks of the module's (request time or growing), "
      f"{held} records of configuration-time memory still held at exit "
      f"(at most {most_held} compiled policies in a process), "
      f"{foreign} leak records of the servers' own (not counted)")
for name, block in (errors + leaks)[:5]:
    print(f"--- {name}\n{block[:3000]}")
for name, line in ub[:10]:
    print(f"--- {name}: {line}")
if grows:
    print(f"a process held {most_held} compiled policies at exit after {reloads} reloads: "
          "one leaks per reload")
sys.exit(1 if errors or ub or leaks or grows else 0)
EOF
exit $(( status != 0 ? status : found ))
