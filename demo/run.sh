#!/bin/bash
# `make demo`: the Apache demo, then the nginx demo.  Each starts its server
# on a loopback port with the module and an example policy, sends requests
# as several client certificates, prints who got what and why, and stops the
# server again.  Both use one demo PKI under build/demo/pki.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

"$here/apache.sh"
echo
if [ -x "$here/nginx.sh" ]; then
    "$here/nginx.sh"
else
    echo "== demo/nginx.sh is not there yet: skipping the nginx demo"
fi
