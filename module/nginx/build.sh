#!/bin/bash
# Builds ngx_http_cert_authz_module.so with nginx's own build system and the
# configure arguments of the nginx it is for, so that its signature matches
# that nginx's binary.
#
#   CERT_AUTHZ_ROOT=REPO module/nginx/build.sh BUILD_DIR OUTPUT.so
#
# Environment:
#   NGINX_SRC    the nginx source tree (default /usr/share/nginx/src, from
#                nginx-dev): the same version as the nginx that loads it.
#   NGINX_BIN    that nginx (default /usr/sbin/nginx).  Its signature is
#                checked against the module's; NGINX_BIN=none skips that.
#   NGINX_FLAGS  where the configure arguments come from:
#                  conf_flags   NGINX_SRC/conf_flags, Debian's bash array
#                               (the default when the tree has one)
#                  binary       the "configure arguments:" of NGINX_BIN -V
#                               (the default otherwise)
#                  FILE         a file holding such a line, or nginx -V's
#                               whole output
#                From nginx -V, --add-module, --add-dynamic-module and
#                --with-*=dynamic are dropped (other modules, whose sources
#                are not here and do not change this module's build), and
#                -fPIC is added to --with-cc-opt.
#
# BUILD_DIR gets a private copy of the source tree (headers and the auto/
# scripts, about 1 MB for nginx-dev's: configure writes a Makefile into the
# tree it runs in, and /usr/share/nginx/src is not ours to write) and the
# objects.  configure runs once per BUILD_DIR, module directory and
# arguments; later runs only compile and link.  The result is installed
# with `install`, which makes a new file: nginx keeps the old one mapped
# until a reload.
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
ngx_bin=${NGINX_BIN:-/usr/sbin/nginx}
lib=$root/target/release/libcert_authz.a

if [ ! -f "$src/configure" ]; then
    if [ "$src" = /usr/share/nginx/src ]; then
        echo "$0: $src/configure is missing: install nginx-dev (apt-get install nginx-dev)" >&2
    else
        echo "$0: $src/configure is missing: NGINX_SRC must be an nginx source tree" >&2
    fi
    exit 1
fi
if [ ! -f "$lib" ]; then
    echo "$0: $lib is missing: run cargo build --release first" >&2
    exit 1
fi

flags_from=${NGINX_FLAGS:-}
if [ -z "$flags_from" ]; then
    if [ -f "$src/conf_flags" ]; then flags_from=conf_flags; else flags_from=binary; fi
fi

# The configure arguments, one per array element.
conf_args=()
if [ "$flags_from" = conf_flags ]; then
    if [ ! -f "$src/conf_flags" ]; then
        echo "$0: $src/conf_flags is missing (NGINX_FLAGS=conf_flags)" >&2
        exit 1
    fi
    # conf_flags is Debian's array of nginx's own configure flags, without
    # the other dynamic modules.  It is a bash file: read it in a subshell
    # that prints the elements, not into this script.
    readarray -d '' conf_args < <(bash -c '. "$1" && printf "%s\0" "${NGX_CONF_FLAGS[@]}"' \
        _ "$src/conf_flags")
    conf_args=(--with-cc-opt=-fPIC "${conf_args[@]}")
else
    if [ "$flags_from" = binary ]; then
        if [ ! -x "$ngx_bin" ]; then
            echo "$0: $ngx_bin is not an nginx binary (set NGINX_BIN or NGINX_FLAGS)" >&2
            exit 1
        fi
        line=$("$ngx_bin" -V 2>&1 | sed -n 's/^configure arguments: //p')
    else
        line=$(sed -n 's/^configure arguments: //p' "$flags_from")
        if [ -z "$line" ]; then line=$(grep -v '^nginx version\|^built \|^TLS SNI' "$flags_from"); fi
    fi
    if [ -z "$line" ]; then
        echo "$0: no configure arguments in $flags_from" >&2
        exit 1
    fi
    # Split as the shell that ran configure did (quotes, backslashes), but
    # without eval: xargs does the quoting and runs nothing but printf.
    readarray -d '' raw < <(printf '%s\n' "$line" | xargs printf '%s\0')
    cc_opt=no
    for a in "${raw[@]}"; do
        case $a in
            --add-module=*|--add-dynamic-module=*|--with-*=dynamic)
                echo "dropping $a" ;;
            --with-cc-opt=*)
                conf_args+=("$a -fPIC"); cc_opt=yes ;;
            *) conf_args+=("$a") ;;
        esac
    done
    if [ $cc_opt = no ]; then conf_args=(--with-cc-opt=-fPIC "${conf_args[@]}"); fi
fi

mkdir -p "$bld"
bld=$(cd "$bld" && pwd)
tree=$bld/nginx-src
objs=$bld/objs
stamp=$objs/cert-authz.configured

# What the configuration depends on: a change to any of it reconfigures.
want=$(printf '%s\n' "$moddir" "$root" "$src" "${conf_args[@]}"; cat "$moddir/config")
want=$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)

if [ ! -f "$objs/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]
then
    echo "configuring nginx ($src, arguments from $flags_from) for the module in $objs"
    rm -rf "$tree" "$objs"
    cp -a "$src" "$tree"
    (
        cd "$tree"
        CERT_AUTHZ_ROOT=$root ./configure "${conf_args[@]}" \
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

built=$objs/ngx_http_cert_authz_module.so

# The signature nginx checks at load_module: it must be the server's own,
# or nothing is installed (nginx would refuse the module at start).
sig='^[0-9]+,[0-9]+,[0-9]+,[01]+$'
mod_sig=$(strings "$built" | grep -E "$sig" || true)
if [ "$ngx_bin" != none ]; then
    ngx_sig=$(strings "$ngx_bin" | grep -E "$sig" || true)
    if [ -z "$mod_sig" ] || [ "$mod_sig" != "$ngx_sig" ]; then
        echo "$0: module signature '$mod_sig' is not '$ngx_sig' of $ngx_bin;" \
            "$out is left as it was" >&2
        exit 1
    fi
fi

install -D -m 644 "$built" "$out"
if [ "$ngx_bin" = none ]; then
    echo "built $out (signature $mod_sig, not checked: NGINX_BIN=none)"
else
    echo "built $out"
fi
