#!/bin/bash
# Writes cert-authz(1) to stdout from the CLI's own --help texts, so that
# the manual page says what the installed binary does and cannot drift.
#
#   packaging/manpage.sh CLI
set -euo pipefail

cli=${1:?usage: $0 CLI}

# Text for roff: backslashes and hyphens escaped, and no line may start
# with a control character.
roff() {
    sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

version=$("$cli" --version | sed -n 's/^cert-authz //p')
top=$("$cli" --help)
# The commands, from the usage lines "  cert-authz COMMAND ...".
commands=$(printf '%s\n' "$top" | sed -n 's/^  cert-authz \([a-z][a-z-]*\) .*/\1/p' | sort -u)
if [ -z "$version" ] || [ -z "$commands" ]; then
    echo "$0: $cli --help does not look like cert-authz's" >&2
    exit 1
fi

cat <<EOF
.TH CERT\\-AUTHZ 1 "" "cert\\-authz $version" "User Commands"
.SH NAME
cert\\-authz \\- check, test and lint cert\\-authz policies
.SH SYNOPSIS
.nf
EOF
printf '%s\n' "$top" | roff
cat <<'EOF'
.fi
.SH DESCRIPTION
cert\-authz is the command\-line side of the cert\-authz modules for Apache
httpd (mod_cert_authz) and nginx (ngx_http_cert_authz_module): it
decides as they do, from the same policy language.
.SH COMMANDS
EOF
for c in $commands; do
    echo ".SS $c"
    echo ".nf"
    "$cli" "$c" --help | roff
    echo ".fi"
done
cat <<'EOF'
.SH SEE ALSO
.BR apache2 (8),
.BR nginx (8),
and the README of cert\-authz.
EOF
