# cert-authz: build, test, benchmark and demo.  `make demo` and `make test`
# install what is missing (Debian packages, crates) by themselves.

SHELL        := /bin/bash
CARGO        ?= cargo
CC           ?= cc
RELEASE      := target/release
BUILD        := build
DEB_PACKAGES := apache2 apache2-dev nginx nginx-dev libclang-dev apache2-utils \
                curl openssl libssl-dev libapache2-mod-php php-cgi php-fpm

# groff checks the CLI's manual page (tests/install.rs).
DEB_PACKAGES += groff-base

CORE_LIB     := $(RELEASE)/libcert_authz.a
CLI          := $(RELEASE)/cert-authz
APACHE_SO    := $(RELEASE)/mod_cert_authz.so
NGINX_SO     := $(RELEASE)/ngx_http_cert_authz_module.so

# Apache's compiler flags come from its own tools, never from fixed paths.
APACHE_CFLAGS = -I$(shell apxs -q INCLUDEDIR 2>/dev/null || echo /usr/include/apache2) \
                $(shell apr-1-config --cppflags --includes) \
                $(shell apu-1-config --includes)

.PHONY: all deps toolchain build lint test bench demo install uninstall clean

all: build

# The Rust toolchain, checked up front so that an old one is named instead
# of failing in cargo.  RUST_MIN is the oldest rustc that builds the locked
# crates (time 0.3.55 under x509-parser, and rcgen for the tests, need
# 1.88; tests/install.rs holds it to Cargo.lock's newest rust-version).
# Debian 12's rustc 1.63 is far older.
RUST_MIN := 1.88
RUSTC    ?= rustc

toolchain:
	@have=$$($(RUSTC) --version 2>/dev/null | sed -n 's/^rustc \([0-9][0-9.]*\).*/\1/p'); \
	if [ -z "$$have" ] || ! $(CARGO) --version >/dev/null 2>&1; then \
	    echo "cert-authz needs Rust $(RUST_MIN) or newer (rustc and cargo), and" \
	         "there is no working '$(RUSTC)' or '$(CARGO)'."; bad=yes; \
	elif [ "$$(printf '%s\n' $(RUST_MIN) $$have | sort -V | head -n1)" != "$(RUST_MIN)" ]; then \
	    echo "cert-authz needs Rust $(RUST_MIN) or newer; $(RUSTC) is $$have" \
	         "(Debian 12's rustc is 1.63)."; bad=yes; \
	fi; \
	if [ -n "$$bad" ]; then \
	    echo "Get a current toolchain with rustup (https://rustup.rs), then open a new shell:"; \
	    echo "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal"; \
	    echo "    . \"$$HOME/.cargo/env\""; \
	    exit 1; \
	fi

# Installs the Debian packages that are missing; a no-op when all are there.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

build: toolchain deps
	$(CARGO) build --release --locked
	$(MAKE) --no-print-directory $(APACHE_SO) $(NGINX_SO)

$(CORE_LIB) $(CLI): | toolchain
	$(CARGO) build --release --locked

# The Apache module: the shim compiled with Apache's flags, linked with the
# core.  Only cert_authz_module is exported; std and the core stay local.
$(APACHE_SO): module/apache/mod_cert_authz.c include/cert_authz.h $(CORE_LIB) module/apache/exports.map
	@mkdir -p $(BUILD)/apache
	$(CC) -std=gnu99 -O2 -g -fPIC -Wall -Wextra -Werror -Iinclude $(APACHE_CFLAGS) \
	    -c $< -o $(BUILD)/apache/mod_cert_authz.o
	$(CC) -shared -o $@ $(BUILD)/apache/mod_cert_authz.o $(CORE_LIB) \
	    -Wl,--exclude-libs,ALL -Wl,--version-script=module/apache/exports.map \
	    -Wl,--gc-sections -lssl -lcrypto -lpthread -ldl -lm

# The nginx module: built by nginx's own build system from Debian's
# configure flags, so its signature matches /usr/sbin/nginx.
$(NGINX_SO): module/nginx/ngx_http_cert_authz_module.c module/nginx/config module/nginx/build.sh \
              include/cert_authz.h $(CORE_LIB)
	NGINX_SRC=/usr/share/nginx/src NGINX_FLAGS=conf_flags NGINX_BIN=/usr/sbin/nginx \
	    CERT_AUTHZ_ROOT=$(CURDIR) module/nginx/build.sh $(CURDIR)/$(BUILD)/nginx $@

# Style is checked as the tests are: formatting, and clippy over every
# target (library, CLI, tests, benches) with warnings as errors.
lint: toolchain
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

# Every test: the core, the C ABI program (tests/abi.rs compiles
# tests/c/abi_test.c against the library built above), the CLI, and real
# Apache and nginx end to end.
test: build lint
	$(CARGO) test --release --locked -- --test-threads=2

# The core figures, then the servers' (real Apache and nginx on loopback):
# instructions per request under callgrind, then throughput from oha
# (about ten minutes).  oha, the load generator that presents a client
# certificate from several threads, comes from crates.io: installed here
# when missing (about 7 minutes on 2 cores), never by `make test`.
OHA_VERSION := 1.16.0
CARGO_BIN   ?= $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
OHA         ?= $(or $(shell command -v oha 2>/dev/null),$(CARGO_BIN)/oha)

# The bench's own Debian packages (callgrind), installed as `deps` does.
BENCH_PACKAGES := valgrind

bench: build $(OHA)
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"
	$(CARGO) bench --locked --bench core
	OHA=$(OHA) $(CARGO) bench --locked --bench servers

$(OHA):
	$(CARGO) install --locked --version $(OHA_VERSION) oha

demo: build
	demo/run.sh

# The long soak: tests/soak.rs with 200,000 requests per server (`make
# test` runs 20,000), at concurrency 32 over HTTP/1.1 and HTTP/2, with the
# figures printed (requests, wrong decisions, 5xx, workers' RSS).
SOAK_REQUESTS ?= 200000
.PHONY: soak
soak: build
	CERT_AUTHZ_SOAK_REQUESTS=$(SOAK_REQUESTS) $(CARGO) test --release --locked --test soak \
	    -- --test-threads=1 --nocapture

# The end-to-end suites of both servers with the module built with
# AddressSanitizer (the core, on nightly) and UndefinedBehaviorSanitizer
# (the shims), preloaded into the servers; 50 reloads included.  Any
# sanitizer error, or a leak with a frame of the module, fails it.  See
# tests/sanitize.sh.
.PHONY: test-sanitize
test-sanitize: build
	APACHE_CFLAGS="$(APACHE_CFLAGS)" tests/sanitize.sh --test both --test apache --test nginx \
	    --test paths --test reload -- --test-threads=2

# The fuzz targets (cargo-fuzz on the nightly toolchain; fuzz/ is a
# workspace of its own, never built by `build` or `test`): FUZZ_SECONDS of
# fuzzing each, one after another, from the committed seeds (fuzz/seeds/T)
# and what earlier runs found (fuzz/corpus/T, not committed).  A crash or a
# difference stops with the input in fuzz/artifacts/T/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= policy_compile cert_identity decide_differential
FUZZ_ARGS_policy_compile = -dict=seeds/policy_compile.dict -max_len=8192
FUZZ_ARGS_cert_identity = -max_len=16384
.PHONY: fuzz fuzz-tool $(FUZZ_TARGETS:%=fuzz-%)
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
fuzz-tool:
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: | fuzz-tool
	mkdir -p fuzz/corpus/$*
	cd fuzz && nice -n 10 $(CARGO) +nightly fuzz run $* corpus/$* seeds/$* -- \
	    $(FUZZ_ARGS_$*) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# ---- install, uninstall ----------------------------------------------------
# Debian's layout: the modules where the servers look for them (Apache's
# from apxs, nginx's --modules-path), stripped, their debug information
# under DEBUGDIR/.build-id (where gdb looks), the CLI in BINDIR and its
# manual page (from its --help) in MANDIR,
# mods-available/cert_authz.load (# Depends: ssl, for a2enmod) and a
# commented cert_authz.conf, nginx's modules-available file and its
# modules-enabled link (as Debian's module packages' postinst makes it).
# DESTDIR stages it all elsewhere.  `make build` first: install only
# builds what is missing.  packaging/install.sh holds the one file list.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
APACHE_MODDIR  ?= $(shell apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
APACHE_CONFDIR ?= /etc/apache2
NGINX_MODDIR   ?= /usr/lib/nginx/modules
NGINX_DATADIR  ?= /usr/share/nginx
NGINX_CONFDIR  ?= /etc/nginx
DEBUGDIR       ?= /usr/lib/debug
STRIP          ?= yes
NGINX_ENABLE   ?= yes
INSTALL_VARS    = DESTDIR="$(DESTDIR)" BINDIR="$(BINDIR)" MANDIR="$(MANDIR)" APACHE_MODDIR="$(APACHE_MODDIR)" \
                  APACHE_CONFDIR="$(APACHE_CONFDIR)" NGINX_MODDIR="$(NGINX_MODDIR)" \
                  NGINX_DATADIR="$(NGINX_DATADIR)" NGINX_CONFDIR="$(NGINX_CONFDIR)" \
                  DEBUGDIR="$(DEBUGDIR)" STRIP="$(STRIP)" NGINX_ENABLE="$(NGINX_ENABLE)"

install: $(APACHE_SO) $(NGINX_SO) $(CLI)
	$(INSTALL_VARS) packaging/install.sh install

uninstall:
	$(INSTALL_VARS) packaging/install.sh uninstall

# ---- Debian packages ---------------------------------------------------------
# libapache2-mod-cert-authz, libnginx-mod-http-cert-authz and cert-authz
# (the CLI), with their -dbgsym packages, in build/deb/.  debhelper, as
# Debian's own module packages: dh_apache2 and dh_nginx read the server
# ABIs from apache2-dev and nginx-dev and write the maintainer scripts
# that enable the modules.  `make build` first.  `make deb-check` lints
# them (lintian, installed for that target only).
DEB_DIR       := $(BUILD)/deb
DEB_VERSION   := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
DEB_TREE      := $(DEB_DIR)/cert-authz-$(DEB_VERSION)
DEB_TOOLS     := dpkg-dev debhelper
LINT_PACKAGES := lintian

.PHONY: deb deb-check
deb: $(APACHE_SO) $(NGINX_SO) $(CLI)
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_TOOLS)"
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_TREE)
	cp -r packaging/debian $(DEB_TREE)/debian
	@{ echo "cert-authz ($(DEB_VERSION)) unstable; urgency=medium"; echo; \
	   echo "  * Built from the cert-authz repository at commit" \
	        "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)."; echo; \
	   echo " -- cert-authz developers <cert-authz@example.org>  $$(git log -1 --format=%aD 2>/dev/null || date -R)"; \
	} > $(DEB_TREE)/debian/changelog
	cd $(DEB_TREE) && REPO=$(CURDIR) dpkg-buildpackage -b -us -uc
	@ls -l $(DEB_DIR)/*.deb

deb-check: deb
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(LINT_PACKAGES)"
	lintian --fail-on error $(DEB_DIR)/cert-authz_$(DEB_VERSION)_*.changes

# ---- the nginx module for another nginx ---------------------------------------
# make nginx-module NGINX_SRC=DIR [NGINX_BIN=NGINX | NGINX_FLAGS=FILE]
# builds the module against the nginx source tree DIR (the version of the
# nginx that will load it) with that nginx's own configure arguments: by
# default from `NGINX_BIN -V` (/usr/sbin/nginx), or from FILE (nginx -V's
# output saved elsewhere), or NGINX_FLAGS=conf_flags for a Debian tree's
# own.  NGINX_BUILD holds the configured copy of the tree and the objects.
# See module/nginx/build.sh.
NGINX_BIN    ?= /usr/sbin/nginx
NGINX_FLAGS  ?= binary
NGINX_MODULE ?= $(BUILD)/nginx-module/ngx_http_cert_authz_module.so
NGINX_BUILD  ?= $(BUILD)/nginx-module

.PHONY: nginx-module
nginx-module: $(CORE_LIB)
	@if [ -z "$(NGINX_SRC)" ]; then \
	    echo "usage: make nginx-module NGINX_SRC=DIR [NGINX_BIN=NGINX | NGINX_FLAGS=FILE]"; exit 2; fi
	NGINX_SRC="$(NGINX_SRC)" NGINX_BIN="$(NGINX_BIN)" NGINX_FLAGS="$(NGINX_FLAGS)" \
	    CERT_AUTHZ_ROOT=$(CURDIR) module/nginx/build.sh $(abspath $(NGINX_BUILD)) $(NGINX_MODULE)

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
