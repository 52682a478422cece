#!/bin/bash
# Builds ngx_http_cert_authz_module.so with nginx's own build system and
# Debian's configure flags, so that its signature matches /usr/sbin/nginx.
#
#   CERT_AUTHZ_ROOT=REPO module/nginx/build.sh BUILD_DIR OUTPUT.so
#
# BUILD_DIR gets a private copy of nginx-dev's source tree (headers and the
# auto/ scripts, about 1 MB: configure writes a Makefile into the tree it
# runs in, and /usr/share/nginx/src is not ours to write) and the objects.
# configure runs once per BUILD_DIR and module directory; later runs only
# compile and link.  The result is installed with `install`, which makes a
# new file: nginx keeps the old one mapped until a reload.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: CERT_AUTHZ_ROOT=REPO $0 BUILD_DIR OUTPUT.so" >&2
    exit 2
fi

moddir=$(cd "$(dirname "$0")" && pwd)
root=${CERT_AUTHZ_ROOT:-$(cd "$moddir/../.." && pwd)}
bld=$1
out=$2
src=${NGINX_SRC:-/usr/share/nginx/src}
lib=$root/target/release/libcert_authz.a

for f in "$src/configure" "$src/conf_flags"; do
    if [ ! -f "$f" ]; then
        echo "$0: $f is missing: install nginx-dev (apt-get install nginx-dev)" >&2
        exit 1
    fi
done
if [ ! -f "$lib" ]; then
    echo "$0: $lib is missing: run cargo build --release first" >&2
    exit 1
fi

mkdir -p "$bld"
bld=$(cd "$bld" && pwd)
tree=$bld/nginx-src
objs=$bld/objs
stamp=$objs/cert-authz.configured

# What the configuration depends on: a change to any of it reconfigures.
want=$(printf '%s\n%s\n' "$moddir" "$root"; cat "$moddir/config" "$src/conf_flags")
want=$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)

if [ ! -f "$objs/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]
then
    echo "configuring nginx for the module in $objs"
    rm -rf "$tree" "$objs"
    cp -a "$src" "$tree"
    (
        cd "$tree"
        # conf_flags is Debian's array of nginx's own configure flags.
        . ./conf_flags
        CERT_AUTHZ_ROOT=$root ./configure --with-cc-opt="-fPIC" \
            "${NGX_CONF_FLAGS[@]}" \
            --add-dynamic-module="$moddir" --builddir="$objs"
    ) > "$bld/configure.log" 2>&1 || {
        tail -n 30 "$bld/configure.log" >&2
        echo "$0: nginx configure failed; see $bld/configure.log" >&2
        exit 1
    }
    echo "$want" > "$stamp"
fi

# nginx's Makefile does not know the core library: relink every time.
rm -f "$objs/ngx_http_cert_authz_module.so"
make -s -f "$objs/Makefile" -C "$tree" modules

install -D -m 644 "$objs/ngx_http_cert_authz_module.so" "$out"

# The signature nginx checks at load_module: it must be the server's own.
sig='^[0-9]+,[0-9]+,[0-9]+,[01]+$'
mod_sig=$(strings "$out" | grep -E "$sig" || true)
ngx_bin=${NGINX_BIN:-/usr/sbin/nginx}
ngx_sig=$(strings "$ngx_bin" | grep -E "$sig" || true)
if [ -z "$mod_sig" ] || [ "$mod_sig" != "$ngx_sig" ]; then
    echo "$0: module signature '$mod_sig' is not '$ngx_sig' of $ngx_bin" >&2
    exit 1
fi
echo "built $out"
