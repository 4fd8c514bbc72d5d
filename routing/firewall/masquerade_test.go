//go:build linux

package firewall

import (
	"net/netip"
	"testing"
)

// TestMasqueradeWorks routes pings from client A through router B to
// server C, which has no route back to A's network: they only get answers
// when B masquerades them.
//
//	A 192.0.2.2/24 [a0] --- [b0] 192.0.2.1/24  B  203.0.113.1/24 [b1] --- [c0] 203.0.113.2/24 C
func TestMasqueradeWorks(t *testing.T) {
	needRoot(t, "ping", "sysctl")
	backends := []struct {
		name string
		new  func(nsFD int) (Backend, error)
	}{
		{NameNFTables, NewNFTablesNS},
		{NameLegacy, NewLegacyNS},
	}
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) { masqueradeWorks(t, tc.name, tc.new) })
	}
}

// masqueradeWorks is TestMasqueradeWorks for one backend.
func masqueradeWorks(t *testing.T, name string, newBackend func(nsFD int) (Backend, error)) {
	a, b, c := newNS(t), newNS(t), newNS(t)
	run(t, "ip", "-n", a.name, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", b.name)
	run(t, "ip", "-n", b.name, "link", "add", "b1", "type", "veth", "peer", "name", "c0", "netns", c.name)
	a.run(t, "ip", "addr", "add", "192.0.2.2/24", "dev", "a0")
	a.run(t, "ip", "link", "set", "a0", "up")
	a.run(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	b.run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "b0")
	b.run(t, "ip", "addr", "add", "203.0.113.1/24", "dev", "b1")
	b.run(t, "ip", "link", "set", "b0", "up")
	b.run(t, "ip", "link", "set", "b1", "up")
	b.run(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	c.run(t, "ip", "addr", "add", "203.0.113.2/24", "dev", "c0")
	c.run(t, "ip", "link", "set", "c0", "up")

	// B itself reaches C: the wiring is right.
	if !b.try("ping", "-c", "2", "-i", "0.2", "-W", "2", "203.0.113.2") {
		t.Fatal("B cannot ping C")
	}
	if a.try("ping", "-c", "1", "-W", "1", "203.0.113.2") {
		t.Fatal("A reaches C without masquerading: the test proves nothing")
	}

	fw, err := newBackend(b.fd)
	if err != nil {
		t.Skipf("kernel lacks %s NAT: %v", name, err)
	}
	m := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("192.0.2.0/24"), NotOut: "b0"}
	if err := fw.Add(m); err != nil {
		t.Fatal(err)
	}
	if !a.try("ping", "-c", "2", "-i", "0.2", "-W", "2", "203.0.113.2") {
		t.Fatal("A cannot reach C through the masquerade")
	}
	if err := fw.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	if got, err := fw.Rules(""); err != nil || len(got) != 0 {
		t.Fatalf("Rules after RemoveLink = %+v, %v", got, err)
	}
}
