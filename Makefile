# vpn-pppssh. `make demo` and `make test` work on a fresh Debian machine as
# root: they install what is missing first.

GO      ?= go
DEBS    := ppp openssh-server openssh-client sudo user-mode-linux kmod iproute2 \
           iputils-ping iperf3 procps iptables nftables shellcheck systemd lintian \
           dnsmasq-base
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# A count, not a duration: Go 1.26's fuzz coordinator can report "context
# deadline exceeded" at the end of a -fuzztime duration without any failing
# input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 300000x

.PHONY: all build deps test unit lint lint-scripts fuzz lab soak demo bench man install uninstall deb deb-package clean

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
	$(GO) build $(BUILDFLAGS) -o bin/vpn-pppssh ./cmd/vpn-pppssh
	$(GO) build -o bin/vpn-lab ./cmd/vpn-lab

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@latest

lint: $(STATICCHECK) lint-scripts
	@out=$$(gofmt -l .); [ -z "$$out" ] || { echo "gofmt would change: $$out"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The shell scripts, and the unit as systemd reads it (pointed at the
# program just built: verify checks that ExecStart= exists). Any message
# from systemd-analyze fails, warnings included.
SHELL_SCRIPTS := scripts/ip-up.d-vpn-pppssh scripts/ip-down.d-vpn-pppssh scripts/vpn-pppssh.init
lint-scripts: build
	for f in $(SHELL_SCRIPTS); do sh -n $$f || exit 1; done
	shellcheck -s sh $(SHELL_SCRIPTS)
	shellcheck -s bash scripts/vpn-pppssh.bash-completion
	mkdir -p bin/verify
	sed 's|/usr/local/sbin/vpn-pppssh|$(CURDIR)/bin/vpn-pppssh|g' scripts/vpn-pppssh@.service >bin/verify/vpn-pppssh@lint.service
	@out=$$(systemd-analyze verify $(CURDIR)/bin/verify/vpn-pppssh@lint.service 2>&1); \
		[ -z "$$out" ] || { echo "systemd-analyze verify: $$out"; exit 1; }

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

test: deps build lint unit fuzz deb lab

demo: deps build
	./bin/vpn-lab demo

bench: deps build
	./bin/vpn-lab bench
	./bin/vpn-lab --cipher chacha20-poly1305@openssh.com bench-host

# Installation, as a package would lay it out. PREFIX=/usr for a distribution
# package; DESTDIR stages it elsewhere (make deb). The unit, the init script,
# the hooks and the defaults file name the program at $(SBINDIR).
PREFIX        ?= /usr/local
SYSCONFDIR    ?= /etc
SBINDIR       ?= $(PREFIX)/sbin
MANDIR        ?= $(PREFIX)/share/man
DOCDIR        ?= $(PREFIX)/share/doc/vpn-pppssh
UNITDIR       ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
SUBST = sed -e 's|/usr/local/sbin/vpn-pppssh|$(SBINDIR)/vpn-pppssh|g'

# The manual pages, made by the program from its own flags and keys.
man: build
	mkdir -p bin/man
	bin/vpn-pppssh --print-man 8 >bin/man/vpn-pppssh.8
	bin/vpn-pppssh --print-man 5 >bin/man/vpn-pppssh.conf.5

# What install puts in place, relative to DESTDIR; uninstall removes it.
INSTALLED = $(SBINDIR)/vpn-pppssh $(UNITDIR)/vpn-pppssh@.service \
	$(SYSCONFDIR)/init.d/vpn-pppssh $(SYSCONFDIR)/ppp/ip-up.d/vpn-pppssh \
	$(SYSCONFDIR)/ppp/ip-down.d/vpn-pppssh $(MANDIR)/man8/vpn-pppssh.8 \
	$(MANDIR)/man5/vpn-pppssh.conf.5 $(COMPLETIONDIR)/vpn-pppssh \
	$(DOCDIR)/README.md $(DOCDIR)/HOWTO.md $(DOCDIR)/examples/vpn.conf.example

# /etc/default/vpn-pppssh is the admin's: installed when absent, never
# replaced or removed. /etc/vpn-pppssh is created, never emptied.
install: build man
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/init.d \
		$(DESTDIR)$(SYSCONFDIR)/ppp/ip-up.d $(DESTDIR)$(SYSCONFDIR)/ppp/ip-down.d \
		$(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(DOCDIR)/examples
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/vpn-pppssh
	install -m 0755 bin/vpn-pppssh $(DESTDIR)$(SBINDIR)/vpn-pppssh
	$(SUBST) scripts/vpn-pppssh@.service >bin/vpn-pppssh@.service
	install -m 0644 bin/vpn-pppssh@.service $(DESTDIR)$(UNITDIR)/vpn-pppssh@.service
	$(SUBST) scripts/vpn-pppssh.init >bin/vpn-pppssh.init
	install -m 0755 bin/vpn-pppssh.init $(DESTDIR)$(SYSCONFDIR)/init.d/vpn-pppssh
	$(SUBST) scripts/ip-up.d-vpn-pppssh >bin/ip-up.d-vpn-pppssh
	install -m 0755 bin/ip-up.d-vpn-pppssh $(DESTDIR)$(SYSCONFDIR)/ppp/ip-up.d/vpn-pppssh
	$(SUBST) scripts/ip-down.d-vpn-pppssh >bin/ip-down.d-vpn-pppssh
	install -m 0755 bin/ip-down.d-vpn-pppssh $(DESTDIR)$(SYSCONFDIR)/ppp/ip-down.d/vpn-pppssh
	$(SUBST) scripts/vpn-pppssh.default >bin/vpn-pppssh.default
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/vpn-pppssh ] || \
		install -m 0644 bin/vpn-pppssh.default $(DESTDIR)$(SYSCONFDIR)/default/vpn-pppssh
	install -m 0644 bin/man/vpn-pppssh.8 $(DESTDIR)$(MANDIR)/man8/vpn-pppssh.8
	install -m 0644 bin/man/vpn-pppssh.conf.5 $(DESTDIR)$(MANDIR)/man5/vpn-pppssh.conf.5
	install -m 0644 scripts/vpn-pppssh.bash-completion $(DESTDIR)$(COMPLETIONDIR)/vpn-pppssh
	install -m 0644 README.md HOWTO.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 scripts/vpn.conf.example $(DESTDIR)$(DOCDIR)/examples/vpn.conf.example
	@echo "installed under $(DESTDIR)$(PREFIX) and $(DESTDIR)$(SYSCONFDIR); with systemd: systemctl daemon-reload"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "kept: $(SYSCONFDIR)/default/vpn-pppssh and $(SYSCONFDIR)/vpn-pppssh (your settings)"

# A Debian package of the client and the server half, laid out by make
# install with PREFIX=/usr. The binary is a static PIE (no cgo), stripped:
# it depends on nothing but the kernel. lintian must find no error in it.
DEB_VERSION := $(shell sed -n 's/^const Release = "\(.*\)"/\1/p' internal/version/version.go)
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB         := bin/vpn-pppssh_$(DEB_VERSION)-1_$(DEB_ARCH).deb
deb: deps deb-package
	lintian --fail-on error $(DEB)
	@echo "built $(DEB)"

# The package alone, without lintian (the lab tests install it).
deb-package:
	rm -rf bin/deb
	$(MAKE) install DESTDIR=$(CURDIR)/bin/deb PREFIX=/usr UNITDIR=/lib/systemd/system \
		GO="CGO_ENABLED=0 $(GO)" BUILDFLAGS="-trimpath -buildmode=pie -ldflags=-s"
	DEB_VERSION=$(DEB_VERSION)-1 DEB_ARCH=$(DEB_ARCH) sh packaging/layout bin/deb
	dpkg-deb --root-owner-group -Zxz --build bin/deb $(DEB)

clean:
	rm -rf bin
