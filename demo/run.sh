#!/bin/bash
# `make demo`: the Apache demo, then the nginx demo.  Each starts its server
# on a loopback port with the module and an example policy, sends requests
# as several client certificates, prints who got what and why, and stops the
# server again.  Both use one demo PKI under $CERT_AUTHZ_DEMO_DIR/pki;
# what the demo made is removed when it ends.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# The servers' workers run as www-data and must reach the demo's files, so
# they live under /tmp rather than in the checkout (which may be in /root).
export CERT_AUTHZ_DEMO_DIR=${CERT_AUTHZ_DEMO_DIR:-${TMPDIR:-/tmp}/cert-authz-demo}

# The two scripts share the PKI; it goes at the end when this run made
# it, and so does the demo directory when it is left empty.
export CERT_AUTHZ_DEMO_SHARED=1
pki=$CERT_AUTHZ_DEMO_DIR/pki
if [ -d "$pki" ]; then made_pki=no; else made_pki=yes; fi
finish() {
    if [ $made_pki = yes ]; then
        rm -rf "$pki"
        echo "== removed the demo PKI $pki"
    fi
    rmdir "$CERT_AUTHZ_DEMO_DIR" 2>/dev/null || true
}
trap finish EXIT

"$here/apache.sh"
echo
"$here/nginx.sh"
