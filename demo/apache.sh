#!/bin/bash
# The Apache half of `make demo`: starts Apache httpd with mod_cert_authz on a
# loopback port, sends requests as several client certificates, prints who
# got what and why, and stops Apache again by the pid in its PidFile.
#
#   demo/apache.sh            (after `make build`)
#
# The demo PKI (demo/common.sh) lives in $CERT_AUTHZ_DEMO_DIR/pki, by default
# /tmp/cert-authz-demo/pki (its keys 0600); demo/nginx.sh shares it.  The
# server root is $CERT_AUTHZ_DEMO_DIR/apache, under /tmp where the CGI
# (run as www-data) can be reached.  Both are removed when the script ends,
# the PKI only when this script made it and demo/run.sh does not share it
# (CERT_AUTHZ_DEMO_SHARED).  Nothing touches the system's Apache
# configuration.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
demo=${CERT_AUTHZ_DEMO_DIR:-${TMPDIR:-/tmp}/cert-authz-demo}
pki=$demo/pki
prefix=$demo/apache
module=${CERT_AUTHZ_APACHE_MODULE:-$root/target/release/mod_cert_authz.so}
apache=${APACHE:-/usr/sbin/apache2}
modules=/usr/lib/apache2/modules

if [ ! -f "$module" ]; then
    echo "demo/apache.sh: $module is missing: run 'make build' first" >&2
    exit 1
fi
if [ ! -x "$apache" ]; then
    echo "demo/apache.sh: $apache is missing: install apache2" >&2
    exit 1
fi

# ---- the demo PKI (demo/common.sh) ----------------------------------------

. "$root/demo/common.sh"
ensure_pki

# ---- server root, policy, backend, configuration -------------------------------

port=$(free_port)

rm -rf "$prefix"
mkdir -p "$prefix"/{conf,logs,run,cgi-bin,htdocs}
cp "$root/demo/cert-authz.policy" "$prefix/conf/cert-authz.policy"

# The "application": a CGI script that shows whom Apache let through.
cat > "$prefix/cgi-bin/app.cgi" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'user=%s rule=%s' "$CERT_AUTHZ_USER" "$CERT_AUTHZ_RULE"
EOF
chmod 755 "$prefix/cgi-bin/app.cgi"
chmod -R a+rX "$prefix"

cat > "$prefix/conf/httpd.conf" <<EOF
ServerRoot "$prefix"
ServerName localhost
Listen 127.0.0.1:$port
PidFile "$prefix/logs/httpd.pid"
DefaultRuntimeDir "$prefix/run"
Mutex file:$prefix/run default
ErrorLog "$prefix/logs/error.log"
LogLevel warn
User www-data
Group www-data

LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule alias_module $modules/mod_alias.so
LoadModule cgid_module $modules/mod_cgid.so
LoadModule socache_shmcb_module $modules/mod_socache_shmcb.so
LoadModule ssl_module $modules/mod_ssl.so
LoadModule http2_module $modules/mod_http2.so
LoadModule cert_authz_module $module

ScriptSock "$prefix/run/cgid.sock"
SSLSessionCache "shmcb:$prefix/run/ssl_scache(512000)"
Protocols h2 http/1.1
DocumentRoot "$prefix/htdocs"
ScriptAliasMatch "^/.*" "$prefix/cgi-bin/app.cgi"

SSLEngine on
SSLCertificateFile "$pki/server.pem"
SSLCertificateKeyFile "$pki/server.key"
SSLCACertificateFile "$pki/ca.pem"
# optional_no_ca lets unverified certificates through: the module refuses them
SSLVerifyClient optional_no_ca
SSLVerifyDepth 2

CertAuthzPolicy conf/cert-authz.policy
<Location "/">
    CertAuthz On
    # REMOTE_USER and CERT_AUTHZ_USER for the backend
    CertAuthzUser subject.CN
</Location>
EOF

httpd() {
    "$apache" -d "$prefix" -f conf/httpd.conf "$@"
}

echo "== apache2 -t"
httpd -t

stop() {
    local pid
    if [ -f "$prefix/logs/httpd.pid" ]; then
        pid=$(cat "$prefix/logs/httpd.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
}

# Whatever happens, Apache stops and what the demo made goes.
finish() {
    stop
    rm -rf "$prefix"
    remove_pki_if_made
}
trap finish EXIT

httpd -k start
for _ in $(seq 1 100); do
    # a bare TCP connect: an HTTPS probe would leave a deny line in the log
    [ -s "$prefix/logs/httpd.pid" ] \
        && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
echo "== Apache is listening on https://127.0.0.1:$port/ (pid $(cat "$prefix/logs/httpd.pid"))"
echo
print_policy "$prefix/conf/cert-authz.policy"

request() {    # request CLIENT METHOD PATH
    local client=$1 method=$2 path=$3 args code before reply="" rule="" deny=""
    args=(-sS --max-time 10 -o "$prefix/reply" -w '%{http_code}'
          --cacert "$pki/ca.pem" -X "$method")
    if [ "$client" != "-" ]; then
        args+=(--cert "$pki/$client.pem" --key "$pki/$client.key")
    fi
    rm -f "$prefix/reply"
    before=$(wc -l < "$prefix/logs/error.log")
    code=$(curl "${args[@]}" "https://127.0.0.1:$port$path" 2>/dev/null) \
        || true
    if [ "$code" = 200 ]; then
        # the CGI's "user=U rule=FILE:LINE"
        reply=$(cat "$prefix/reply")
        rule=${reply##*rule=}
        reply=${reply% rule=*}
    fi
    # The module's deny line, written before the answer was sent.
    deny=$(tail -n +"$((before + 1))" "$prefix/logs/error.log" | grep 'CA00010' | head -1) || true
    table_row "$client" "$method" "$path" "$code" "$reply" "$rule" "$deny"
}

table_header
send_demo_requests
echo

echo "== the deny lines of $prefix/logs/error.log"
grep 'CA00010' "$prefix/logs/error.log" | sed 's/^/    /' || true
echo
stop
echo "== Apache stopped; removing $prefix"
