# Targets that install packages or start Postfix instances need root on Debian.
GO       ?= go
QMGR     ?= bin/oqmgr
FUZZTIME ?= 10s

.PHONY: deps build test demo fuzz clean

# deps installs the Debian postfix package (preseeded to "No configuration",
# so the system's own Postfix stays unconfigured and stopped) and gcc, which
# go test -race needs, when either is missing, then downloads the Go modules.
deps:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make deps: must run as root: it installs the postfix package with apt-get, and the tests start Postfix instances" >&2; \
		exit 1; \
	fi
	@if [ ! -x /usr/sbin/postfix ] || [ ! -x /usr/sbin/smtp-sink ] || ! command -v gcc >/dev/null; then \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || exit 1; \
		export DEBIAN_FRONTEND=noninteractive; \
		if ! apt-get update </dev/null; then \
			echo "make deps: apt-get update failed: check network access to the Debian mirrors" >&2; exit 1; \
		fi; \
		if ! apt-get install -y postfix gcc </dev/null; then \
			echo "make deps: apt-get install postfix gcc failed: check network access to the Debian mirrors" >&2; exit 1; \
		fi; \
	fi
	@if ! $(GO) mod download; then \
		echo "make deps: go mod download failed: check network access to the Go module proxy" >&2; exit 1; \
	fi

build:
	$(GO) build -o bin/oqmgr ./cmd/oqmgr

test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

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
