# Targets that install packages or start Postfix instances need root on Debian.
GO       ?= go
QMGR     ?= bin/oqmgr
FUZZTIME ?= 10s

.PHONY: deps build test demo fuzz clean

# deps installs the Debian postfix package (preseeded to "No configuration",
# so the system's own Postfix stays unconfigured and stopped), gcc, which
# go test -race needs, and e2fsprogs, which the queue file system tests use,
# when one is missing, then downloads the Go modules.
deps:
	@if ! command -v $(GO) >/dev/null; then \
		echo "make deps: no Go toolchain on the PATH: install Go 1.26 or later" >&2; exit 1; \
	fi
	@if ! $(GO) list -m >/dev/null 2>&1; then \
		echo "make deps: $$($(GO) version) cannot build this module: install Go 1.26 or later" >&2; exit 1; \
	fi
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make deps: must run as root: it installs the postfix package with apt-get, and the tests start Postfix instances" >&2; \
		exit 1; \
	fi
	@if [ ! -x /usr/sbin/postfix ] || [ ! -x /usr/sbin/smtp-sink ] || ! command -v gcc >/dev/null || \
		! command -v mkfs.ext4 >/dev/null || ! command -v e2fsck >/dev/null; then \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || exit 1; \
		export DEBIAN_FRONTEND=noninteractive; \
		if ! apt-get update </dev/null; then \
			echo "make deps: apt-get update failed: check network access to the Debian mirrors" >&2; exit 1; \
		fi; \
		if ! apt-get install -y postfix gcc e2fsprogs </dev/null; then \
			echo "make deps: apt-get install postfix gcc e2fsprogs failed: check network access to the Debian mirrors" >&2; exit 1; \
		fi; \
	fi
	@if ! $(GO) mod download; then \
		echo "make deps: go mod download failed: check network access to the Go module proxy" >&2; exit 1; \
	fi

build:
	$(GO) build -o bin/oqmgr ./cmd/oqmgr

# test runs one package at a time (-p 1): many packages start real Postfix
# instances, and on two cores their timing figures suffer when they overlap.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 60m ./...

# demo runs QMGR (default: our build) in a private Postfix instance; add
# DEMO_FLAGS=-keep to keep the instance directory.
demo: deps build
	$(GO) run ./internal/demo -qmgr $(QMGR) $(DEMO_FLAGS)

# fuzz runs every Fuzz function in the module for FUZZTIME each.
fuzz:
	@found=0; \
	for file in $$(grep -rl --include='*_test.go' --exclude-dir=.git '^func Fuzz' .); do \
		dir=$$(dirname "$$file"); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			found=1; \
			echo "fuzz $$dir $$name"; \
			$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$dir" || exit 1; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "make fuzz: no Fuzz functions found"; fi

clean:
	rm -rf bin

# Installing on an operator's Postfix. install puts bin/oqmgr in
# DAEMON_DIR/oqmgr-go (default: `postconf -xh daemon_directory`) and the
# oqmgr-go-switch command and manual page below PREFIX, all below DESTDIR.
# switch-on and switch-off change the qmgr service of CONFIG_DIR/master.cf
# (default: the system's Postfix) and reload Postfix. See oqmgr-go(8).
PREFIX     ?= /usr/local
DESTDIR    ?=
DAEMON_DIR ?=
CONFIG_DIR ?=
VERSION    ?= 0~git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

.PHONY: deb install uninstall switch-on switch-off

# deb writes bin/oqmgr-go_VERSION_ARCH.deb, built with dpkg-deb.
deb: build
	internal/install/deb.sh -b bin/oqmgr -v '$(VERSION)' -o bin

install: build
	internal/install/install.sh -b bin/oqmgr -p '$(PREFIX)' -r '$(DESTDIR)' $(if $(DAEMON_DIR),-d '$(DAEMON_DIR)')

uninstall:
	internal/install/install.sh -u -p '$(PREFIX)' -r '$(DESTDIR)' $(if $(DAEMON_DIR),-d '$(DAEMON_DIR)')

switch-on:
	internal/install/oqmgr-go-switch $(if $(CONFIG_DIR),-c '$(CONFIG_DIR)') on

switch-off:
	internal/install/oqmgr-go-switch $(if $(CONFIG_DIR),-c '$(CONFIG_DIR)') off

# bench compares bin/oqmgr with the C oqmgr and qmgr of the Debian package
# (about five minutes on two cores) and writes bin/bench/bench.json and
# bin/bench/bench.png; see BENCHMARKS.md. BENCH_FLAGS=-full uses the full
# sizes, and -profile records our queue manager with perf(1).
BENCH_FLAGS ?=

.PHONY: bench
bench: deps build
	$(GO) run ./internal/bench/cmd/bench -qmgr bin/oqmgr -out bin/bench $(BENCH_FLAGS)
