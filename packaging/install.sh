#!/bin/bash
# `make install` and `make uninstall`: one list of files for both, so that
# uninstall removes exactly what install wrote.
#
#   packaging/install.sh install|uninstall|list
#
# The Makefile passes the locations in the environment: DESTDIR, BINDIR,
# MANDIR, APACHE_MODDIR, APACHE_CONFDIR, NGINX_MODDIR, NGINX_DATADIR,
# NGINX_CONFDIR, DEBUGDIR, and STRIP (yes: install stripped binaries and keep their debug
# information under DEBUGDIR/.build-id, where gdb looks; no: install them as
# built, for dh_strip to split when making the Debian packages) and
# NGINX_ENABLE (yes: also make the modules-enabled link that Debian's nginx
# module packages make in their postinst; no: for the packages, whose
# postinst makes it).
set -euo pipefail

: "${DESTDIR:=}" "${STRIP:=yes}" "${NGINX_ENABLE:=yes}"
for v in BINDIR MANDIR APACHE_MODDIR APACHE_CONFDIR NGINX_MODDIR NGINX_DATADIR NGINX_CONFDIR DEBUGDIR; do
    if [ -z "${!v:-}" ]; then
        echo "$0: $v is not set (run it through make install)" >&2
        exit 2
    fi
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rel=${RELEASE:-$root/target/release}

# What is installed: KIND SOURCE DESTINATION MODE.  KIND elf is stripped
# (with STRIP=yes), conf is copied, template has @VAR@ replaced, man is
# the manual page made from the CLI SOURCE's --help (manpage.sh).
files() {
    cat <<EOF
elf $rel/mod_cert_authz.so $APACHE_MODDIR/mod_cert_authz.so 644
elf $rel/ngx_http_cert_authz_module.so $NGINX_MODDIR/ngx_http_cert_authz_module.so 644
elf $rel/cert-authz $BINDIR/cert-authz 755
man $rel/cert-authz $MANDIR/man1/cert-authz.1 644
template $here/apache/cert_authz.load.in $APACHE_CONFDIR/mods-available/cert_authz.load 644
conf $here/apache/cert_authz.conf $APACHE_CONFDIR/mods-available/cert_authz.conf 644
template $here/nginx/mod-http-cert-authz.conf.in $NGINX_DATADIR/modules-available/mod-http-cert-authz.conf 644
EOF
}

# The name and target of the link, as dh_nginx's postinst makes them
# (priority 50 for an http module).
link=$NGINX_CONFDIR/modules-enabled/50-mod-http-cert-authz.conf
link_target=$NGINX_DATADIR/modules-available/mod-http-cert-authz.conf

# What load_module names: in Debian's module directory, the path relative
# to nginx's prefix that dh_nginx writes (/usr/share/nginx/modules is a
# link to it), so that the packages and make install write the same file.
if [ "$NGINX_MODDIR" = /usr/lib/nginx/modules ]; then
    nginx_module=modules/ngx_http_cert_authz_module.so
else
    nginx_module=$NGINX_MODDIR/ngx_http_cert_authz_module.so
fi

build_id() {    # the GNU build ID of an ELF file, in hex
    readelf -n "$1" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p' | head -1
}

debug_file() {    # where the debug information of ELF file $1 goes
    local id
    id=$(build_id "$1")
    if [ -z "$id" ]; then
        echo "$0: $1 has no build ID" >&2
        return 1
    fi
    echo "$DEBUGDIR/.build-id/${id:0:2}/${id:2}.debug"
}

install_elf() {    # SOURCE DESTINATION MODE
    local src=$1 dst=$DESTDIR$2 mode=$3 dbg tmp
    if [ "$STRIP" != yes ]; then
        install -D -m "$mode" "$src" "$dst"
        return
    fi
    dbg=$DESTDIR$(debug_file "$src")
    tmp=$(mktemp -d)
    # The debug information, compressed, then the stripped binary that
    # names it as dh_strip does: gdb finds it by build ID, and the
    # debuglink (the file's name and checksum) confirms it.
    objcopy --only-keep-debug --compress-debug-sections "$src" "$tmp/${dbg##*/}"
    objcopy --strip-debug --strip-unneeded --remove-section=.comment \
        --add-gnu-debuglink="$tmp/${dbg##*/}" "$src" "$tmp/stripped"
    install -D -m 644 "$tmp/${dbg##*/}" "$dbg"
    # install writes a new file: a server that has the old one mapped keeps
    # it until it reloads.
    install -D -m "$mode" "$tmp/stripped" "$dst"
    rm -rf "$tmp"
    echo "installed $dst (debug information: $dbg)"
}

do_install() {
    local kind src dst mode
    for f in "$rel/mod_cert_authz.so" "$rel/ngx_http_cert_authz_module.so" "$rel/cert-authz"; do
        if [ ! -f "$f" ]; then
            echo "$0: $f is missing: run 'make build' first" >&2
            exit 1
        fi
    done
    while read -r kind src dst mode; do
        case $kind in
            elf) install_elf "$src" "$dst" "$mode" ;;
            conf) install -D -m "$mode" "$src" "$DESTDIR$dst" ;;
            man)
                install -d "$(dirname "$DESTDIR$dst")"
                "$here/manpage.sh" "$src" > "$DESTDIR$dst.tmp"
                chmod "$mode" "$DESTDIR$dst.tmp"
                mv -f "$DESTDIR$dst.tmp" "$DESTDIR$dst"
                ;;
            template)
                install -d "$(dirname "$DESTDIR$dst")"
                sed -e "s|@APACHE_MODDIR@|$APACHE_MODDIR|g" \
                    -e "s|@NGINX_MODULE@|$nginx_module|g" "$src" > "$DESTDIR$dst.tmp"
                chmod "$mode" "$DESTDIR$dst.tmp"
                mv -f "$DESTDIR$dst.tmp" "$DESTDIR$dst"
                ;;
        esac
    done < <(files)
    if [ "$NGINX_ENABLE" = yes ]; then
        install -d "$DESTDIR$NGINX_CONFDIR/modules-enabled"
        ln -sfn "$link_target" "$DESTDIR$link"
    fi
    echo "Apache: enable with 'a2enmod cert_authz' (it enables mod_ssl too)"
}

do_uninstall() {
    local kind src dst mode dbg
    if [ -L "$DESTDIR$link" ]; then
        rm -f "$DESTDIR$link"
    fi
    while read -r kind src dst mode; do
        if [ "$kind" = elf ] && [ -f "$DESTDIR$dst" ]; then
            # The stripped binary names its debug file by its build ID.
            dbg=$DESTDIR$(debug_file "$DESTDIR$dst") || dbg=""
            if [ -n "$dbg" ] && [ -f "$dbg" ]; then
                rm -f "$dbg"
                rmdir --ignore-fail-on-non-empty "$(dirname "$dbg")"
            fi
        fi
        rm -f "$DESTDIR$dst"
    done < <(files)
    # a2enmod's links to the files just removed would stop Apache from
    # starting: they go too (mod_ssl, which a2enmod enabled with them, stays).
    for f in cert_authz.load cert_authz.conf; do
        if [ -L "$DESTDIR$APACHE_CONFDIR/mods-enabled/$f" ]; then
            rm -f "$DESTDIR$APACHE_CONFDIR/mods-enabled/$f"
            echo "removed $APACHE_CONFDIR/mods-enabled/$f"
        fi
    done
}

case ${1:-} in
    install) do_install ;;
    uninstall) do_uninstall ;;
    list) files | awk '{ print $3 }'; echo "$link" ;;
    *) echo "usage: $0 install|uninstall|list" >&2; exit 2 ;;
esac
