//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	backends6 = append(backends6, struct {
		name string
		new  newBackendFunc
	}{NameLegacyChains, func(nsFD int) (Backend, error) {
		b, err := newLegacy(nsFD, noComment)
		if err != nil {
			return nil, err
		}
		return b, nil
	}})
}

// ip6Save returns `ip6tables-legacy-save -c -t <table>` without its
// comment lines.
func (ns *testNS) ip6Save(t *testing.T, table string) string {
	t.Helper()
	return saveNoise.ReplaceAllString(ns.run(t, "ip6tables-legacy-save", "-c", "-t", table), "")
}

// tablesInUse6 is the namespace's /proc/net/ip6_tables_names.
func (ns *testNS) tablesInUse6(t *testing.T) string {
	t.Helper()
	return ns.run(t, "cat", "/proc/net/ip6_tables_names")
}

// The ip6tables nat and raw tables of a fresh namespace, read from the
// kernel, are laid out exactly like the synthetic ones the blob tests use:
// the entry layout constants match the kernel's.
func TestLegacyKernelLayout6(t *testing.T) {
	ns, _ := newLegacyNS(t)
	fd, err := openRawSocket(ns.fd, famIPv6)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, want := range []*iptTable{emptyNat6(), emptyRaw6()} {
		got, err := readTable(fd, famIPv6, want.name)
		if err != nil {
			t.Fatal(err)
		}
		if got.validHooks != want.validHooks || got.numEntries != want.numEntries || len(got.entries) != len(want.entries) {
			t.Fatalf("%s: valid hooks %#x, %d entries, %d bytes; want %#x %d %d", want.name,
				got.validHooks, got.numEntries, len(got.entries), want.validHooks, want.numEntries, len(want.entries))
		}
		if got.hookEntry != want.hookEntry || got.underflow != want.underflow {
			for h := range numHooks {
				if want.hookValid(h) && (got.hookEntry[h] != want.hookEntry[h] || got.underflow[h] != want.underflow[h]) {
					t.Errorf("%s hook %d: entry %d underflow %d, want %d %d", want.name, h, got.hookEntry[h], got.underflow[h], want.hookEntry[h], want.underflow[h])
				}
			}
		}
		offs, err := got.offsets()
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range offs {
			if g, w := got.entry(off), want.entry(off); !famIPv6.sameRule(g, w) {
				t.Errorf("%s entry at %d:\n got %x\nwant %x", want.name, off, g, w)
			}
		}
	}
	for _, c := range []struct {
		name   string
		target bool
	}{{rpfilterMatch, false}, {masqTarget, true}, {commentMatch, false}} {
		if ok, err := kernelHasExtension(fd, famIPv6, c.name, c.target); !ok || err != nil {
			t.Errorf("kernelHasExtension(ip6, %s) = %v, %v", c.name, ok, err)
		}
	}
}

// addUserRules6 are an admin's ip6tables rules, in both tables we use.
func addUserRules6(t *testing.T, ns *testNS) {
	t.Helper()
	for _, args := range [][]string{
		{"-t", "nat", "-N", "MYCHAIN"},
		{"-t", "nat", "-A", "MYCHAIN", "-s", "2001:db8:ff::/48", "-j", "RETURN"},
		{"-t", "nat", "-A", "POSTROUTING", "-s", "2001:db8:fe::/48", "-j", "MYCHAIN"},
		{"-t", "nat", "-A", "POSTROUTING", "-o", "eth9", "-j", "MASQUERADE"},
		{"-t", "raw", "-A", "PREROUTING", "-i", "eth9", "-j", "DROP"},
		{"-t", "raw", "-A", "OUTPUT", "-d", "2001:db8:fd::1/128", "-j", "ACCEPT"},
	} {
		ns.run(t, append([]string{"ip6tables-legacy"}, args...)...)
	}
}

// ip6Lines is what ip6tables-legacy-save shows for our rules, in the
// comment layout or (chains) the chain-per-link one.
func ip6Lines(chains bool, ms []Masquerade, ss []SourceCheck) (nat, raw []string) {
	for _, m := range ms {
		rule := " -s " + m.Source.String()
		if m.NotOut != "" {
			rule += " ! -o " + m.NotOut
		}
		if chains {
			nat = append(nat, "-A POSTROUTING -j "+chainName(m.Link), "-A "+chainName(m.Link)+rule+" -j MASQUERADE")
		} else {
			nat = append(nat, "-A POSTROUTING"+rule+` -m comment --comment "`+commentFor(m)+`" -j MASQUERADE`)
		}
	}
	for _, s := range ss {
		if chains {
			raw = append(raw, "-A PREROUTING -j "+chainName(s.Link), "-A "+chainName(s.Link)+" -i "+s.Iface+" -m rpfilter --invert -j DROP")
		} else {
			raw = append(raw, "-A PREROUTING -i "+s.Iface+` -m rpfilter --invert -m comment --comment "`+sourceCheckComment(s)+`" -j DROP`)
		}
	}
	return nat, raw
}

func TestLegacyIPv6(t *testing.T) {
	for _, chains := range []bool{false, true} {
		name := NameLegacy
		if chains {
			name = NameLegacyChains
		}
		t.Run(name, func(t *testing.T) { legacyIPv6(t, chains) })
	}
}

func legacyIPv6(t *testing.T, chains bool) {
	needRoot(t, "ip6tables-legacy", "ip6tables-legacy-save", "cat")
	ns := newNS(t)
	probe := kernelHasExtension
	if chains {
		probe = noComment
	}
	b, err := newLegacy(ns.fd, probe)
	if err != nil {
		t.Skipf("kernel lacks legacy iptables NAT: %v", err)
	}
	// Looking for rules creates no IPv6 table.
	if _, err := b.Rules(""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SourceChecks(""); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveSourceCheck(SourceCheck{Link: "lab0", Iface: "ppp0"}); err != nil {
		t.Fatal(err)
	}
	if names := ns.tablesInUse6(t); names != "" {
		t.Fatalf("listing and removing created ip6tables tables: %q", names)
	}

	addUserRules6(t, ns)
	natBefore, rawBefore := ns.ip6Save(t, "nat"), ns.ip6Save(t, "raw")
	m4 := lab0Masq()
	m6 := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8::/32"), NotOut: "ppp0"}
	m6b := Masquerade{Link: "lab1", Source: netip.MustParsePrefix("2001:db8:1::/49")}
	s := SourceCheck{Link: "lab0", Iface: "ppp0"}
	for _, m := range []Masquerade{m4, m6, m6b, m6} {
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := b.AddSourceCheck(s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := b.Rules(""); err != nil || len(got) != 3 || got[0] != m4 || got[1] != m6 || got[2] != m6b {
		t.Fatalf("Rules = %+v, %v", got, err)
	}
	if got, err := b.Rules("lab1"); err != nil || len(got) != 1 || got[0] != m6b {
		t.Fatalf("Rules(lab1) = %+v, %v", got, err)
	}
	if got, err := b.SourceChecks(""); err != nil || len(got) != 1 || got[0] != s {
		t.Fatalf("SourceChecks = %+v, %v", got, err)
	}
	nat, raw := ns.ip6Save(t, "nat"), ns.ip6Save(t, "raw")
	wantNat, wantRaw := ip6Lines(chains, []Masquerade{m6, m6b}, []SourceCheck{s})
	for _, c := range []struct {
		save  string
		lines []string
	}{{nat, wantNat}, {raw, wantRaw}} {
		for _, l := range c.lines {
			if n := countLines(c.save, l); n != 1 {
				t.Errorf("%d lines %q in:\n%s", n, l, c.save)
			}
		}
	}
	if strings.Contains(nat, "198.51.100") {
		t.Errorf("an IPv4 rule in ip6tables:\n%s", nat)
	}
	// ip6tables (libiptc) still understands both tables.
	for _, table := range []string{"nat", "raw"} {
		ns.run(t, "ip6tables-legacy", "-t", table, "-I", "PREROUTING", "1", "-s", "2001:db8:fc::/48", "-j", "ACCEPT")
		ns.run(t, "ip6tables-legacy", "-t", table, "-D", "PREROUTING", "-s", "2001:db8:fc::/48", "-j", "ACCEPT")
	}

	if err := b.Remove(m6); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.SourceChecks(""); err != nil || len(got) != 0 {
		t.Fatalf("SourceChecks after RemoveLink = %+v, %v", got, err)
	}
	if err := b.RemoveLink("lab1"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Rules(""); err != nil || len(got) != 0 {
		t.Fatalf("Rules after RemoveLink = %+v, %v", got, err)
	}
	for _, c := range []struct{ table, before string }{{"nat", natBefore}, {"raw", rawBefore}} {
		if after := ns.ip6Save(t, c.table); withoutPolicyCounters(after) != withoutPolicyCounters(c.before) {
			t.Errorf("%s table not restored:\n--- before\n%s--- after\n%s", c.table, c.before, after)
		}
	}
}
