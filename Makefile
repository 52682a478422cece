# cert-authz: build, test, benchmark and demo.  `make demo` and `make test`
# install what is missing (Debian packages, crates) by themselves.

SHELL        := /bin/bash
CARGO        ?= cargo
CC           ?= cc
RELEASE      := target/release
BUILD        := build
DEB_PACKAGES := apache2 apache2-dev nginx nginx-dev libclang-dev apache2-utils \
                curl openssl libssl-dev libapache2-mod-php php-cgi php-fpm

CORE_LIB     := $(RELEASE)/libcert_authz.a
CLI          := $(RELEASE)/cert-authz
APACHE_SO    := $(RELEASE)/mod_cert_authz.so
NGINX_SO     := $(RELEASE)/ngx_http_cert_authz_module.so

# Apache's compiler flags come from its own tools, never from fixed paths.
APACHE_CFLAGS = -I$(shell apxs -q INCLUDEDIR 2>/dev/null || echo /usr/include/apache2) \
                $(shell apr-1-config --cppflags --includes) \
                $(shell apu-1-config --includes)

.PHONY: all deps build lint test bench demo install clean

all: build

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

build: deps
	$(CARGO) build --release --locked
	$(MAKE) --no-print-directory $(APACHE_SO) $(NGINX_SO)

$(CORE_LIB) $(CLI):
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
	CERT_AUTHZ_ROOT=$(CURDIR) module/nginx/build.sh $(CURDIR)/$(BUILD)/nginx $@

# Style is checked as the tests are: formatting, and clippy over every
# target (library, CLI, tests, benches) with warnings as errors.
lint:
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

install: build
	install -d /usr/lib/apache2/modules /usr/lib/nginx/modules /usr/local/bin \
	    /etc/apache2/mods-available /usr/share/nginx/modules-available
	install -m 644 $(APACHE_SO) /usr/lib/apache2/modules/mod_cert_authz.so
	install -m 644 $(NGINX_SO) /usr/lib/nginx/modules/ngx_http_cert_authz_module.so
	install -m 755 $(CLI) /usr/local/bin/cert-authz
	echo 'LoadModule cert_authz_module /usr/lib/apache2/modules/mod_cert_authz.so' \
	    > /etc/apache2/mods-available/cert_authz.load
	echo 'load_module modules/ngx_http_cert_authz_module.so;' \
	    > /usr/share/nginx/modules-available/mod-http-cert-authz.conf

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
