# vpn-pppssh. `make demo` and `make test` work on a fresh Debian machine as
# root: they install what is missing first.

GO      ?= go
DEBS    := ppp openssh-server openssh-client sudo user-mode-linux kmod iproute2 \
           iputils-ping iperf3 procps iptables nftables
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# A count, not a duration: Go 1.26's fuzz coordinator can report "context
# deadline exceeded" at the end of a -fuzztime duration without any failing
# input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 300000x

.PHONY: all build deps test unit lint fuzz lab soak demo bench install clean

all: build

# Debian packages the lab needs. Services are kept from starting while
# they install (policy-rc.d): the lab runs its own sshd, in a namespace.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		had_policy=; [ -e /usr/sbin/policy-rc.d ] && had_policy=1; \
		[ -n "$$had_policy" ] || printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		rc=$$?; [ -n "$$had_policy" ] || rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi

build:
	$(GO) build -o bin/vpn-pppssh ./cmd/vpn-pppssh
	$(GO) build -o bin/vpn-lab ./cmd/vpn-lab

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@latest

lint: $(STATICCHECK)
	@out=$$(gofmt -l .); [ -z "$$out" ] || { echo "gofmt would change: $$out"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Unit tests, with the race detector, on the host kernel.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /lab$$)

# A short fuzz run of each parser; `make fuzz FUZZTIME=20000000x` for a long one.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pppssh
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $(FUZZTIME) ./pppssh
	$(GO) test -run '^$$' -fuzz '^FuzzReadReply$$' -fuzztime $(FUZZTIME) ./pppssh
	$(GO) test -run '^$$' -fuzz '^FuzzEscape$$' -fuzztime $(FUZZTIME) ./internal/safetext

# End-to-end tests against real pppd, sshd and sudo, in a User-Mode Linux
# kernel when the host has no PPP (no -race: it cannot run there).
lab: deps
	$(GO) test -count=1 -v -timeout 25m ./lab/

# The reliability soak: 50 start/stop cycles and 50 server pppd kills.
soak: deps
	VPN_LAB_SOAK=1 $(GO) test -count=1 -v -timeout 60m -run 'Soak|Silent' ./lab/

test: deps build lint unit fuzz lab

demo: deps build
	./bin/vpn-lab demo

bench: deps build
	./bin/vpn-lab bench
	./bin/vpn-lab --cipher chacha20-poly1305@openssh.com bench-host

install: build
	install -m 0755 bin/vpn-pppssh /usr/local/sbin/vpn-pppssh
	install -d -m 0755 /etc/vpn-pppssh

clean:
	rm -rf bin
