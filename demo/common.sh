# Shared by demo/apache.sh and demo/nginx.sh (sourced, not run): the demo
# PKI, made once with the openssl CLI and reused, and free loopback ports.
# Expects $pki (the PKI directory) to be set.

# The demo's client certificates: NAME|SUBJECT|SAN.
clients=(
    "alice|/O=Example Corp/OU=users/CN=alice|"
    "opsbot|/O=Example Corp/OU=ops/CN=opsbot|"
    "billing|/O=Example Corp/CN=billing|URI:spiffe://example.org/ns/prod/sa/billing"
    # a CN that reads like an O: it must never count as one
    "mallory|/CN=alice,O=Example Corp|"
)

make_ca() {    # make_ca NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$pki/$1.key" -subj "/O=Example Corp/CN=$2" -days 365 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$pki/$1.pem" 2>/dev/null
}

issue() {    # issue NAME SUBJECT SAN CA EXTENDED_KEY_USAGE
    local name=$1 subject=$2 san=$3 ca=$4 eku=$5
    {
        echo "basicConstraints=CA:FALSE"
        echo "extendedKeyUsage=$eku"
        if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
    } > "$pki/$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" \
        2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.pem" \
        -CAkey "$pki/$ca.key" -CAcreateserial -days 30 -sha256 \
        -extfile "$pki/$name.ext" -out "$pki/$name.pem" 2>/dev/null
    rm -f "$pki/$name.csr" "$pki/$name.ext"
}

# Makes the demo PKI in $pki unless a complete one is there: a trusted CA,
# an untrusted "Rogue CA", a server certificate for localhost, the clients,
# and "rogue" (alice's very name, from the untrusted CA).
ensure_pki() {
    local have=yes f c name subject san
    for f in ca.pem rogue-ca.pem server.pem server.key; do
        [ -f "$pki/$f" ] || have=no
    done
    for c in "${clients[@]}" "rogue||"; do
        name=${c%%|*}
        { [ -f "$pki/$name.pem" ] && [ -f "$pki/$name.key" ]; } || have=no
    done
    if [ $have = yes ]; then
        echo "== reusing the demo PKI in $pki"
    else
        echo "== making a demo PKI in $pki"
        mkdir -p "$pki"
        make_ca ca "Example Demo CA"
        make_ca rogue-ca "Rogue CA"
        issue server "/CN=localhost" "DNS:localhost,IP:127.0.0.1" ca serverAuth
        for c in "${clients[@]}"; do
            IFS='|' read -r name subject san <<< "$c"
            issue "$name" "$subject" "$san" ca clientAuth
        done
        issue rogue "/O=Example Corp/OU=users/CN=alice" "" rogue-ca clientAuth
    fi
    chmod -R a+rX "$pki"      # the servers' workers run as www-data
}

free_port() {    # a random loopback port that nothing listens on
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    echo "demo: no free loopback port found" >&2
    return 1
}

# The demo's requests, the same for both servers, each through the calling
# script's own `request CLIENT METHOD PATH` ("-": no certificate).
send_demo_requests() {
    request alice   GET    /status
    request alice   GET    /users/alice/profile
    request alice   GET    /users/bob/profile
    request alice   GET    /admin/
    request opsbot  DELETE /admin/users/7
    request opsbot  GET    /admin/secrets/key
    request billing POST   /invoices/2026/11
    request billing PUT    /invoices/2026/11
    request mallory GET    /users/alice/profile
    request rogue   GET    /status
    request -       GET    /status
}
