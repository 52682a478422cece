#!/bin/bash
# `make demo`: the Apache demo, then the nginx demo.  Each starts its server
# on a loopback port with the module and an example policy, sends requests
# as several client certificates, prints who got what and why, and stops the
# server again.  Both use one demo PKI under $CERT_AUTHZ_DEMO_DIR/pki.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# The servers' workers run as www-data and must reach the demo's files, so
# they live under /tmp rather than in the checkout (which may be in /root).
export CERT_AUTHZ_DEMO_DIR=${CERT_AUTHZ_DEMO_DIR:-${TMPDIR:-/tmp}/cert-authz-demo}

"$here/apache.sh"
echo
"$here/nginx.sh"
