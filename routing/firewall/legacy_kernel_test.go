//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newLegacyNS gives a fresh namespace and the legacy backend bound to it,
// or skips when the kernel has no legacy iptables nat table.
func newLegacyNS(t *testing.T) (*testNS, Backend) {
	t.Helper()
	needRoot(t, "iptables-legacy", "iptables-legacy-save")
	ns := newNS(t)
	b, err := NewLegacyNS(ns.fd)
	if err != nil {
		t.Skipf("kernel lacks legacy iptables NAT: %v", err)
	}
	if b.Name() != NameLegacy {
		t.Fatalf("Name() = %q", b.Name())
	}
	return ns, b
}

// The nat table of a fresh namespace, read from the kernel, is laid out
// exactly like the synthetic one the blob tests use.
func TestLegacyKernelLayout(t *testing.T) {
	ns, _ := newLegacyNS(t)
	fd, err := openRawSocket(ns.fd, famIPv4)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	got, err := readTable(fd, famIPv4, natTable)
	if err != nil {
		t.Fatal(err)
	}
	want := emptyNat()
	if got.validHooks != want.validHooks || got.numEntries != want.numEntries {
		t.Fatalf("valid hooks %#x entries %d, want %#x %d", got.validHooks, got.numEntries, want.validHooks, want.numEntries)
	}
	for h := range numHooks {
		if want.hookValid(h) && (got.hookEntry[h] != want.hookEntry[h] || got.underflow[h] != want.underflow[h]) {
			t.Errorf("hook %d: entry %d underflow %d, want %d %d", h, got.hookEntry[h], got.underflow[h], want.hookEntry[h], want.underflow[h])
		}
	}
	offs, err := got.offsets()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.entries) != len(want.entries) {
		t.Fatalf("blob is %d bytes, want %d", len(got.entries), len(want.entries))
	}
	for _, off := range offs {
		g, w := got.entry(off), want.entry(off)
		if !famIPv4.sameRule(g, w) {
			t.Errorf("entry at %d:\n got %x\nwant %x", off, g, w)
		}
	}
}

// userRules are pre-existing rules of the namespace's admin, including a
// user chain jumped to from POSTROUTING and PREROUTING, a fall-through
// rule right before POSTROUTING's policy, and a rule that counts packets.
func addUserRules(t *testing.T, ns *testNS) {
	t.Helper()
	for _, args := range [][]string{
		{"-N", "MYCHAIN"},
		{"-A", "MYCHAIN", "-s", "198.51.100.128/25", "-j", "RETURN"},
		{"-A", "MYCHAIN", "-p", "udp", "-j", "ACCEPT"},
		{"-N", "ZCHAIN"},
		{"-A", "ZCHAIN", "-d", "203.0.113.9/32", "-j", "SNAT", "--to-source", "203.0.113.1"},
		{"-A", "PREROUTING", "-s", "192.0.2.0/24", "-j", "MYCHAIN"},
		{"-A", "OUTPUT", "-d", "127.0.0.1/32", "-p", "icmp", "-j", "ACCEPT"},
		{"-A", "POSTROUTING", "-s", "203.0.113.0/24", "-j", "MYCHAIN"},
		{"-A", "POSTROUTING", "-o", "eth9", "-j", "ZCHAIN"},
		{"-A", "POSTROUTING", "-s", "192.0.2.7/32"},
	} {
		ns.run(t, append([]string{"iptables-legacy", "-t", "nat"}, args...)...)
	}
	// One packet through the OUTPUT rule, so there is a counter to keep.
	ns.run(t, "ping", "-c", "1", "-W", "2", "127.0.0.1")
}

func TestLegacyBackend(t *testing.T) {
	ns, b := newLegacyNS(t)
	addUserRules(t, ns)
	before := ns.natSave(t)
	if !strings.Contains(before, "[1:84] -A OUTPUT -d 127.0.0.1/32 -p icmp -j ACCEPT") {
		t.Fatalf("counted rule missing from:\n%s", before)
	}
	runBackendScenario(t, b, func(t *testing.T, want []Masquerade) {
		t.Helper()
		now := ns.natSave(t)
		for _, m := range want {
			line := legacyLine(m)
			if n := countLines(now, line); n != 1 {
				t.Errorf("%d lines %q in:\n%s", n, line, now)
			}
		}
		if rest := withoutLines(now, "vpn-pppssh:"); rest != before {
			t.Errorf("rules other than ours changed:\n--- before\n%s--- now\n%s", before, rest)
		}
		// libiptc still understands the table: it can add and delete
		// a rule of its own in the middle of it.
		ns.run(t, "iptables-legacy", "-t", "nat", "-I", "POSTROUTING", "2", "-s", "192.0.2.99/32", "-j", "MYCHAIN")
		ns.run(t, "iptables-legacy", "-t", "nat", "-D", "POSTROUTING", "-s", "192.0.2.99/32", "-j", "MYCHAIN")
		// iptables 1.8.9's libiptc zeroes the built-in chains' policy
		// counters when it changes a table, so what our next step must
		// keep is the state it leaves.
		if now := withoutLines(ns.natSave(t), "vpn-pppssh:"); withoutPolicyCounters(now) != withoutPolicyCounters(before) {
			t.Fatalf("libiptc changed more than policy counters:\n%s", now)
		} else {
			before = now
		}
	})
	if after := ns.natSave(t); after != before {
		t.Errorf("nat table not restored:\n--- before\n%s--- after\n%s", before, after)
	}
}

var policyCounters = regexp.MustCompile(`(?m)^(:\S+ \S+) \[\d+:\d+\]$`)

func withoutPolicyCounters(s string) string { return policyCounters.ReplaceAllString(s, "$1") }

// legacyLine is how iptables-legacy-save shows the rule for m.
func legacyLine(m Masquerade) string {
	s := "-A POSTROUTING"
	if m.Source.Bits() > 0 {
		s += " -s " + m.Source.String()
	}
	if m.NotOut != "" {
		s += " ! -o " + m.NotOut
	}
	return s + ` -m comment --comment "` + commentFor(m) + `" -j MASQUERADE`
}

// A backend made with NewLegacy on a thread that has entered the namespace
// works there too.
func TestLegacyOnLockedThread(t *testing.T) {
	ns, _ := newLegacyNS(t)
	m := lab0Masq()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		b, err := NewLegacy()
		if err == nil {
			err = b.Add(m)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if save := ns.natSave(t); countLines(save, legacyLine(m)) != 1 {
		t.Fatalf("rule missing from:\n%s", save)
	}
}

// The legacy backend edits a table only under iptables' own lock, so
// that an admin's iptables and this program never replace the table from
// under each other.
func TestLegacyTakesTheXtablesLock(t *testing.T) {
	_, b := newLegacyNS(t)
	f, err := os.OpenFile(xtablesLock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("taking the xtables lock for the test: %v", err)
	}
	saved := xtablesLockWait
	xtablesLockWait = 50 * time.Millisecond
	defer func() { xtablesLockWait = saved }()
	m := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32")}
	if err := b.Add(m); err == nil || !strings.Contains(err.Error(), "xtables lock") {
		t.Fatalf("Add while iptables holds its lock: %v, want an error naming the lock", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(m); err != nil {
		t.Fatalf("Add once the lock is free: %v", err)
	}
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
}
