//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"golang.org/x/sys/unix"
	"strings"
	"testing"
)

// noComment is the probe of a minimal kernel: no comment match, the rest
// as the kernel says.
func noComment(fd int, f *xtFamily, name string, target bool) (bool, error) {
	if !target && name == commentMatch {
		return false, nil
	}
	return kernelHasExtension(fd, f, name, target)
}

// newChainsNS gives a fresh namespace and the legacy backend bound to it,
// told that the kernel has no comment match.
func newChainsNS(t *testing.T) (*testNS, *legacyBackend) {
	t.Helper()
	needRoot(t, "iptables-legacy", "iptables-legacy-save")
	ns := newNS(t)
	b, err := newLegacy(ns.fd, noComment)
	if err != nil {
		t.Skipf("kernel lacks legacy iptables NAT: %v", err)
	}
	if b.Name() != NameLegacyChains {
		t.Fatalf("Name() = %q, want %q", b.Name(), NameLegacyChains)
	}
	return ns, b
}

// The probe asks the real kernel: this one has the comment match (the
// host's and the lab's kernels load xt_comment) and MASQUERADE, and no
// match by a made-up name.
func TestKernelHasExtension(t *testing.T) {
	ns, _ := newLegacyNS(t)
	fd, err := openRawSocket(ns.fd, famIPv4)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		name   string
		target bool
		want   bool
	}{{commentMatch, false, true}, {masqTarget, true, true}, {"vpnpppsshnone", false, false}, {"VPNPPPSSHNONE", true, false}} {
		got, err := kernelHasExtension(fd, famIPv4, c.name, c.target)
		if err != nil || got != c.want {
			t.Errorf("kernelHasExtension(%s, target %v) = %v, %v; want %v", c.name, c.target, got, err, c.want)
		}
	}
	b, err := NewLegacyNS(ns.fd)
	if err != nil || b.Name() != NameLegacy {
		t.Fatalf("with the comment match the backend is %v, %v", b, err)
	}
}

// chainLines is how iptables-legacy-save shows the chain layout for want.
func chainLines(want []Masquerade) []string {
	var lines []string
	links := map[string]bool{}
	for _, m := range want {
		c := chainName(m.Link)
		if !links[m.Link] {
			links[m.Link] = true
			lines = append(lines, ":"+c+" - ", "-A POSTROUTING -j "+c)
		}
		s := "-A " + c
		if m.Source.Bits() > 0 {
			s += " -s " + m.Source.String()
		}
		if m.NotOut != "" {
			s += " ! -o " + m.NotOut
		}
		lines = append(lines, s+" -j MASQUERADE")
	}
	return lines
}

// Without xt_comment, the rules go into a chain per link on the real
// kernel; iptables reads and edits the table, and everything goes again.
func TestLegacyChainsBackend(t *testing.T) {
	ns, b := newChainsNS(t)
	addUserRules(t, ns)
	before := ns.natSave(t)
	runBackendScenario(t, b, func(t *testing.T, want []Masquerade) {
		t.Helper()
		now := ns.natSave(t)
		for _, line := range chainLines(want) {
			if n := countLines(now, line); n != 1 {
				t.Errorf("%d lines %q in:\n%s", n, line, now)
			}
		}
		if strings.Contains(now, "--comment") {
			t.Errorf("a comment match was used:\n%s", now)
		}
		if rest := withoutLines(now, chainPrefix); withoutPolicyCounters(rest) != withoutPolicyCounters(before) {
			t.Errorf("rules other than ours changed:\n--- before\n%s--- now\n%s", before, rest)
		}
		// libiptc still understands the table.
		ns.run(t, "iptables-legacy", "-t", "nat", "-I", "POSTROUTING", "2", "-s", "192.0.2.99/32", "-j", "MYCHAIN")
		ns.run(t, "iptables-legacy", "-t", "nat", "-D", "POSTROUTING", "-s", "192.0.2.99/32", "-j", "MYCHAIN")
		before = withoutLines(ns.natSave(t), chainPrefix)
	})
	if after := ns.natSave(t); withoutPolicyCounters(after) != withoutPolicyCounters(before) {
		t.Errorf("nat table not restored:\n--- before\n%s--- after\n%s", before, after)
	}
}

// Cleanup with a backend that has the comment match (as `cleanup` probes
// it, or after the kernel gained the module) still finds the chain-layout
// rules by the link's name and removes them with their chain and jump.
func TestLegacyCleanupFindsChains(t *testing.T) {
	ns, chains := newChainsNS(t)
	before := ns.natSave(t)
	m := lab0Masq()
	long := Masquerade{Link: strings.Repeat("l", 32), Source: m.Source}
	for _, x := range []Masquerade{m, long} {
		if err := chains.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := newLegacy(ns.fd, func(int, *xtFamily, string, bool) (bool, error) { return true, nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []Masquerade{m, long} {
		got, err := plain.Rules(x.Link)
		if err != nil || len(got) != 1 || got[0] != x {
			t.Fatalf("Rules(%s) = %+v, %v; want %+v", x.Link, got, err, x)
		}
		if err := plain.RemoveLink(x.Link); err != nil {
			t.Fatal(err)
		}
	}
	if after := ns.natSave(t); after != before {
		t.Errorf("chains left after RemoveLink:\n--- before\n%s--- after\n%s", before, after)
	}
}

// The chain layout masquerades real traffic.
func TestMasqueradeWorksWithoutComment(t *testing.T) {
	needRoot(t, "ping", "sysctl")
	masqueradeWorks(t, NameLegacyChains, func(nsFD int) (Backend, error) {
		b, err := newLegacy(nsFD, noComment)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}
