//go:build linux

package firewall

import (
	"strings"
	"testing"
)

// newNFTNS gives a fresh namespace and the nftables backend bound to it, or
// skips when the kernel has no nftables NAT for the ip family.
func newNFTNS(t *testing.T) (*testNS, Backend) {
	t.Helper()
	needRoot(t, "nft")
	ns := newNS(t)
	b, err := NewNFTablesNS(ns.fd)
	if err != nil {
		t.Skipf("kernel lacks nftables NAT: %v", err)
	}
	if b.Name() != NameNFTables {
		t.Fatalf("Name() = %q", b.Name())
	}
	if tables := ns.run(t, "nft", "list", "tables"); tables != "" {
		t.Fatalf("checking nftables left tables behind:\n%s", tables)
	}
	return ns, b
}

// nftLine is how `nft list table ip vpn-pppssh` shows the rule for m.
func nftLine(m Masquerade) string {
	var parts []string
	if m.Source.Bits() > 0 {
		src := m.Source.String()
		if m.Source.Bits() == 32 {
			src = m.Source.Addr().String()
		}
		parts = append(parts, "ip saddr "+src)
	}
	if m.NotOut != "" {
		parts = append(parts, `oifname != "`+m.NotOut+`"`)
	}
	return strings.Join(append(parts, `masquerade comment "`+commentFor(m)+`"`), " ")
}

func TestNFTablesBackend(t *testing.T) {
	ns, b := newNFTNS(t)
	// A table of the namespace's admin, which must stay as it is.
	ns.run(t, "nft", "add table ip admin")
	ns.run(t, "nft", "add chain ip admin post { type nat hook postrouting priority 50 ; }")
	ns.run(t, "nft", "add rule ip admin post ip saddr 192.0.2.0/24 oifname eth9 masquerade")
	before := ns.run(t, "nft", "list", "ruleset")

	runBackendScenario(t, b, func(t *testing.T, want []Masquerade) {
		t.Helper()
		ours := ns.run(t, "nft", "list", "table", "ip", NFTTable)
		if !strings.Contains(ours, "type nat hook postrouting priority srcnat; policy accept;") {
			t.Errorf("chain not as expected:\n%s", ours)
		}
		if n := strings.Count(ours, "masquerade"); n != len(want) {
			t.Errorf("%d rules, want %d:\n%s", n, len(want), ours)
		}
		for _, m := range want {
			if line := nftLine(m); countLines(ours, line) != 1 {
				t.Errorf("rule %q not listed once in:\n%s", line, ours)
			}
		}
		admin := ns.run(t, "nft", "list", "table", "ip", "admin")
		if !strings.Contains(before, admin) {
			t.Errorf("admin table changed:\n%s", admin)
		}
	})
	if after := ns.run(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset not restored:\n--- before\n%s--- after\n%s", before, after)
	}
	if tables := ns.run(t, "nft", "list", "tables"); strings.Contains(tables, NFTTable) {
		t.Errorf("table %s left behind:\n%s", NFTTable, tables)
	}
}

// RemoveLink removes a table left empty by a crash, and keeps a table that
// still has rules someone else put there.
func TestNFTablesLeftovers(t *testing.T) {
	ns, b := newNFTNS(t)
	ns.run(t, "nft", "add table ip "+NFTTable)
	ns.run(t, "nft", "add chain ip "+NFTTable+" "+NFTChain+" { type nat hook postrouting priority srcnat ; }")
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if tables := ns.run(t, "nft", "list", "tables"); tables != "" {
		t.Fatalf("empty table not removed:\n%s", tables)
	}

	ns.run(t, "nft", "add table ip "+NFTTable)
	ns.run(t, "nft", "add chain ip "+NFTTable+" "+NFTChain+" { type nat hook postrouting priority srcnat ; }")
	ns.run(t, "nft", "add rule ip "+NFTTable+" "+NFTChain+" ip saddr 192.0.2.0/24 masquerade")
	m := lab0Masq()
	if err := b.Add(m); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Rules(""); err != nil || len(got) != 1 || got[0] != m {
		t.Fatalf("Rules = %+v, %v", got, err)
	}
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	ours := ns.run(t, "nft", "list", "table", "ip", NFTTable)
	if !strings.Contains(ours, "ip saddr 192.0.2.0/24 masquerade") || strings.Contains(ours, "vpn-pppssh:") {
		t.Fatalf("table after RemoveLink:\n%s", ours)
	}
}

func TestProbeNS(t *testing.T) {
	needRoot(t, "nft")
	ns := newNS(t)
	b, err := ProbeNS(ns.fd)
	if err != nil {
		t.Skipf("no firewall backend in this kernel: %v", err)
	}
	if _, nftErr := NewNFTablesNS(ns.fd); nftErr == nil && b.Name() != NameNFTables {
		t.Fatalf("Probe picked %s although nftables works", b.Name())
	}
	if tables := ns.run(t, "nft", "list", "tables"); tables != "" {
		t.Fatalf("Probe left tables behind:\n%s", tables)
	}
	// With our table already there, probing leaves it alone.
	m := lab0Masq()
	if err := b.Add(m); err != nil {
		t.Fatal(err)
	}
	if _, err := ProbeNS(ns.fd); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Rules("lab0"); err != nil || len(got) != 1 {
		t.Fatalf("Rules after second probe = %+v, %v", got, err)
	}
}
