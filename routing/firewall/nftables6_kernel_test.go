//go:build linux

package firewall

import (
	"net/netip"
	"strings"
	"testing"
)

// IPv6 masquerades and source checks go to the ip6 table, IPv4 ones stay
// in the ip table; each table goes with its last rule, and an admin's ip6
// table is left alone.
func TestNFTablesIPv6(t *testing.T) {
	ns, b := newNFTNS(t)
	ns.run(t, "nft", "add table ip6 admin")
	ns.run(t, "nft", "add chain ip6 admin pre { type filter hook prerouting priority -300 ; }")
	ns.run(t, "nft", "add rule ip6 admin pre iifname eth9 drop")
	before := ns.run(t, "nft", "list", "ruleset")

	m4 := lab0Masq()
	m6 := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8::/32"), NotOut: "ppp0"}
	m6b := Masquerade{Link: "lab1", Source: netip.MustParsePrefix("2001:db8:1::2/128")}
	s := SourceCheck{Link: "lab0", Iface: "ppp0"}
	for _, m := range []Masquerade{m4, m6, m6b, m6} {
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddSourceCheck(s); err != nil {
		t.Fatal(err)
	}
	if err := b.AddSourceCheck(s); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Rules(""); err != nil || len(got) != 3 || got[0] != m4 || got[1] != m6 || got[2] != m6b {
		t.Fatalf("Rules = %+v, %v", got, err)
	}
	if got, err := b.SourceChecks("lab0"); err != nil || len(got) != 1 || got[0] != s {
		t.Fatalf("SourceChecks = %+v, %v", got, err)
	}
	if got, err := b.SourceChecks("lab1"); err != nil || len(got) != 0 {
		t.Fatalf("SourceChecks(lab1) = %+v, %v", got, err)
	}
	ours := ns.run(t, "nft", "list", "table", "ip6", NFTTable)
	for _, want := range []string{
		"chain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;",
		"chain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;",
		`ip6 saddr 2001:db8::/32 oifname != "ppp0" masquerade comment "vpn-pppssh:lab0 src=2001:db8::/32 notout=ppp0"`,
		`ip6 saddr 2001:db8:1::2 masquerade comment "vpn-pppssh:lab1 src=2001:db8:1::2/128"`,
		`iifname "ppp0" fib saddr . iif oif 0 drop comment "vpn-pppssh:lab0 rpf=ppp0"`,
	} {
		if strings.Count(ours, want) != 1 {
			t.Errorf("not listed once: %q in\n%s", want, ours)
		}
	}
	if n := strings.Count(ours, "masquerade"); n != 2 {
		t.Errorf("%d masquerades in the ip6 table:\n%s", n, ours)
	}
	if ip := ns.run(t, "nft", "list", "table", "ip", NFTTable); countLines(ip, nftLine(m4)) != 1 || strings.Contains(ip, "2001:db8") {
		t.Errorf("ip table:\n%s", ip)
	}

	// The ip6 table stays while the source check is left in it.
	if err := b.Remove(m6); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(m6b); err != nil {
		t.Fatal(err)
	}
	if tables := ns.run(t, "nft", "list", "tables"); !strings.Contains(tables, "table ip6 "+NFTTable) {
		t.Fatalf("ip6 table gone with its source check:\n%s", tables)
	}
	// Its nat chain went with its last rule: an empty nat base chain
	// would keep connection tracking on for all IPv6.
	if ip6 := ns.run(t, "nft", "list", "table", "ip6", NFTTable); strings.Contains(ip6, "chain "+NFTChain) || !strings.Contains(ip6, "chain "+NFTRPFChain) {
		t.Errorf("ip6 table with only a source check left:\n%s", ip6)
	}
	if err := b.RemoveSourceCheck(s); err != nil {
		t.Fatal(err)
	}
	if tables := ns.run(t, "nft", "list", "tables"); strings.Contains(tables, "table ip6 "+NFTTable) || !strings.Contains(tables, "table ip "+NFTTable) {
		t.Fatalf("tables after the last IPv6 rule went:\n%s", tables)
	}

	// RemoveLink takes both families' rules and both tables.
	for _, m := range []Masquerade{m6, m6b} {
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddSourceCheck(s); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Rules(""); err != nil || len(got) != 1 || got[0] != m6b {
		t.Fatalf("Rules after RemoveLink(lab0) = %+v, %v", got, err)
	}
	if got, err := b.SourceChecks(""); err != nil || len(got) != 0 {
		t.Fatalf("SourceChecks after RemoveLink = %+v, %v", got, err)
	}
	if err := b.RemoveLink("lab1"); err != nil {
		t.Fatal(err)
	}
	if after := ns.run(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset not restored:\n--- before\n%s--- after\n%s", before, after)
	}
}

// RemoveLink removes an ip6 table left empty by a crash, with either chain.
func TestNFTablesLeftovers6(t *testing.T) {
	ns, b := newNFTNS(t)
	ns.run(t, "nft", "add table ip6 "+NFTTable)
	ns.run(t, "nft", "add chain ip6 "+NFTTable+" "+NFTRPFChain+" { type filter hook prerouting priority raw ; }")
	ns.run(t, "nft", "add chain ip6 "+NFTTable+" "+NFTChain+" { type nat hook postrouting priority srcnat ; }")
	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if tables := ns.run(t, "nft", "list", "tables"); tables != "" {
		t.Fatalf("empty table not removed:\n%s", tables)
	}
}
