//go:build linux

package firewall

import (
	"net/netip"
	"testing"
)

// newBackendFunc makes a backend bound to a namespace.
type newBackendFunc func(nsFD int) (Backend, error)

// backends6 are the backends the IPv6 traffic tests run against; the
// legacy one without xt_comment is added by legacy6_kernel_test.go.
var backends6 = []struct {
	name string
	new  newBackendFunc
}{
	{NameNFTables, NewNFTablesNS},
	{NameLegacy, NewLegacyNS},
}

// TestMasquerade6Works sends UDP from client A through router B to server
// C and looks at the source address C sees: A's own before the masquerade
// is added, B's once it is, A's again once it is removed.
//
//	A 2001:db8:1::2/64 [a0] --- [b0] 2001:db8:1::1/64  B  2001:db8:2::1/64 [b1] --- [c0] 2001:db8:2::2/64 C
func TestMasquerade6Works(t *testing.T) {
	needRoot(t, "sysctl", "cat")
	for _, tc := range backends6 {
		t.Run(tc.name, func(t *testing.T) { masquerade6Works(t, tc.name, tc.new) })
	}
}

func masquerade6Works(t *testing.T, name string, newBackend newBackendFunc) {
	a, b, c := newNS(t), newNS(t), newNS(t)
	run(t, "ip", "-n", a.name, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", b.name)
	run(t, "ip", "-n", b.name, "link", "add", "b1", "type", "veth", "peer", "name", "c0", "netns", c.name)
	upNoDAD(t, a, "a0")
	upNoDAD(t, b, "b0", "b1")
	upNoDAD(t, c, "c0")
	addAddrs(t, a, "a0", "2001:db8:1::2/64")
	addAddrs(t, b, "b0", "2001:db8:1::1/64")
	addAddrs(t, b, "b1", "2001:db8:2::1/64")
	addAddrs(t, c, "c0", "2001:db8:2::2/64")
	a.run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
	b.run(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")

	fw, err := newBackend(b.fd)
	if err != nil {
		t.Skipf("kernel lacks %s NAT: %v", name, err)
	}
	server := listenUDP6(t, c, 5353)
	const to = "[2001:db8:2::2]:5353"
	clientA := netip.MustParseAddr("2001:db8:1::2")
	routerB := netip.MustParseAddr("2001:db8:2::1")
	// A fresh source port each time: a connection NATed before keeps its
	// mapping in conntrack after the rule goes.
	expect := func(port, payload string, want netip.Addr) {
		t.Helper()
		sendUDP6(t, a, "[2001:db8:1::2]:"+port, to, payload)
		if got := recvUDP6(t, server); got.payload != payload || got.src != want {
			t.Fatalf("C got %q from %s, want %q from %s", got.payload, got.src, payload, want)
		}
	}
	expect("40001", "before", clientA)

	m := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8:1::/64"), NotOut: "b0"}
	if err := fw.Add(m); err != nil {
		t.Fatal(err)
	}
	expect("40002", "masqueraded", routerB)
	if got, err := fw.Rules("lab0"); err != nil || len(got) != 1 || got[0] != m {
		t.Fatalf("Rules = %+v, %v", got, err)
	}

	if err := fw.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if got, err := fw.Rules(""); err != nil || len(got) != 0 {
		t.Fatalf("Rules after RemoveLink = %+v, %v", got, err)
	}
	expect("40003", "after", clientA)
}
