#!/bin/bash
# The nginx half of `make demo`: starts nginx with ngx_http_cert_authz_module
# on a loopback port, sends requests as several client certificates, prints
# who got what and why, and stops nginx again.
#
#   demo/nginx.sh            (after `make build`)
#
# The demo PKI (demo/common.sh) lives in $CERT_AUTHZ_DEMO_DIR/pki, by default
# /tmp/cert-authz-demo/pki (its keys 0600); the Apache demo shares it.
# Everything else is under $CERT_AUTHZ_DEMO_DIR/nginx.  Both are removed
# when the script ends, the PKI only when this script made it and
# demo/run.sh does not share it (CERT_AUTHZ_DEMO_SHARED).  Nothing touches
# the system's nginx configuration.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
demo=${CERT_AUTHZ_DEMO_DIR:-${TMPDIR:-/tmp}/cert-authz-demo}
pki=$demo/pki
prefix=$demo/nginx
module=${CERT_AUTHZ_NGINX_MODULE:-$root/target/release/ngx_http_cert_authz_module.so}
nginx=${NGINX:-/usr/sbin/nginx}

if [ ! -f "$module" ]; then
    echo "demo/nginx.sh: $module is missing: run 'make build' first" >&2
    exit 1
fi

# ---- the demo PKI (demo/common.sh) ----------------------------------------

. "$root/demo/common.sh"
ensure_pki

# ---- the policy and the nginx configuration --------------------------------

rm -rf "$prefix"
mkdir -p "$prefix"/{conf,logs,temp}

# The example policy that the Apache demo uses too.
cp "$root/demo/cert-authz.policy" "$prefix/conf/demo.policy"

port=$(free_port)
backend_port=$(free_port)

cat > "$prefix/conf/nginx.conf" <<EOF
load_module $module;

user www-data;
worker_processes 1;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log error;

events {
    worker_connections 64;
}

http {
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;

    cert_authz_policy demo.policy;     # relative to the conf directory

    server {
        listen 127.0.0.1:$port ssl;
        server_name localhost;

        ssl_certificate $pki/server.pem;
        ssl_certificate_key $pki/server.key;
        ssl_client_certificate $pki/ca.pem;
        ssl_verify_client optional_no_ca;    # the module checks the result

        location / {
            cert_authz on;
            cert_authz_user subject.CN;
            # the client cannot forge this header: nginx replaces it
            proxy_set_header X-Client-Identity \$cert_authz_user;
            proxy_set_header X-Cert-Authz-Rule \$cert_authz_rule;
            proxy_pass http://127.0.0.1:$backend_port;
        }
    }

    # The "application": it answers every method and shows what it got.
    server {
        listen 127.0.0.1:$backend_port;
        location / {
            return 200 "user=\$http_x_client_identity rule=\$http_x_cert_authz_rule";
        }
    }
}
EOF

echo "== nginx -t"
"$nginx" -p "$prefix" -c conf/nginx.conf -e "$prefix/logs/error.log" -t 2>&1 \
    | sed 's/^/    /'

stop() {
    if [ -f "$prefix/logs/nginx.pid" ]; then
        kill -QUIT "$(cat "$prefix/logs/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -f "$prefix/logs/nginx.pid" ] || break
            sleep 0.1
        done
    fi
}

# Whatever happens, nginx stops and what the demo made goes.
finish() {
    stop
    rm -rf "$prefix"
    remove_pki_if_made
}
trap finish EXIT

"$nginx" -p "$prefix" -c conf/nginx.conf -e "$prefix/logs/error.log"
for _ in $(seq 1 50); do
    [ -f "$prefix/logs/nginx.pid" ] && break
    sleep 0.1
done
echo "== nginx is listening on https://127.0.0.1:$port/ (pid $(cat "$prefix/logs/nginx.pid"))"
echo
print_policy "$prefix/conf/demo.policy"

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
        # the backend's "user=U rule=FILE:LINE"
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
echo "== nginx stopped; removing $prefix"
