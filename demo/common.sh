# Shared by demo/apache.sh and demo/nginx.sh (sourced, not run): the demo
# PKI, made once with the openssl CLI and reused, free loopback ports, and
# the table of who got what and why.  Expects $pki (the PKI directory) to
# be set.

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
    made_pki=no
    if [ $have = yes ]; then
        echo "== reusing the demo PKI in $pki"
    else
        echo "== making a demo PKI in $pki"
        made_pki=yes
        mkdir -p "$pki"
        # The keys are written for their owner alone from the start.
        local umask_was
        umask_was=$(umask)
        umask 077
        make_ca ca "Example Demo CA"
        make_ca rogue-ca "Rogue CA"
        issue server "/CN=localhost" "DNS:localhost,IP:127.0.0.1" ca serverAuth
        for c in "${clients[@]}"; do
            IFS='|' read -r name subject san <<< "$c"
            issue "$name" "$subject" "$san" ca clientAuth
        done
        issue rogue "/O=Example Corp/OU=users/CN=alice" "" rogue-ca clientAuth
        umask "$umask_was"
    fi
    # Every key stays its owner's alone: the servers' masters and curl read
    # them as root, no www-data worker needs one.  The certificates are
    # public.
    chmod 755 "$pki"
    chmod 600 "$pki"/*.key
    chmod 644 "$pki"/*.pem
    rm -f "$pki"/*.srl
}

# Removes the demo PKI when this script made it and no caller (demo/run.sh)
# shares it with another script.
remove_pki_if_made() {
    if [ "${made_pki:-no}" = yes ] && [ -z "${CERT_AUTHZ_DEMO_SHARED:-}" ]; then
        rm -rf "$pki"
        rmdir "$(dirname "$pki")" 2>/dev/null || true
    fi
}

# The policy with its line numbers, which the rule of every decision names.
print_policy() {    # print_policy FILE
    echo "== the policy, $1:"
    awk '{ printf "    %3d  %s\n", NR, $0 }' "$1"
    echo
}

table_header() {
    echo "== who got what, and why (the rule is a line of the policy above)"
    printf '    %-8s %-7s %-22s %-4s %s\n' client method path code why
}

# One row: who asked for what, the answer, and why.  ALLOW_RULE is the
# rule the module exported on allow (FILE:LINE), DENY_LINE the module's
# CA00010 log line on a refusal.
table_row() {    # table_row CLIENT METHOD PATH CODE REPLY ALLOW_RULE DENY_LINE
    local client=$1 method=$2 path=$3 code=$4 reply=$5 rule=$6 deny=$7 why
    case $code in
        200) why="allowed by line ${rule##*:}; the backend saw $reply" ;;
        403) if [ -n "$deny" ]; then
                 # "reason: R, rule FILE:LINE" or "reason: R, rule -",
                 # then nginx's ", client: ..." context
                 deny=${deny#*reason: }
                 why=${deny%%, rule *}
                 rule=${deny#*, rule }
                 rule=${rule%%,*}
                 if [ "$rule" != - ]; then why="$why (line ${rule##*:})"; fi
             else
                 why="refused (no log line found)"
             fi ;;
        000) why="no answer (the TLS handshake failed)" ;;
        *)   why="" ;;
    esac
    printf '    %-8s %-7s %-22s %-4s %s\n' "${client/-/(none)}" "$method" "$path" \
        "$code" "$why"
}

free_port() {    # a random loopback port that no socket uses
    local p
    for _ in $(seq 1 50); do
        # Below the kernel's ephemeral range (32768 and up on Debian), from
        # which every client connection takes its local port: a port picked
        # there can be taken by a connection before the server binds it.
        p=$((20000 + RANDOM % 12000))
        if ! ss -Htan "( sport = :$p )" | grep -q .; then
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
