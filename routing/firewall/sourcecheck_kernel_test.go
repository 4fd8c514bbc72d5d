//go:build linux

package firewall

import (
	"fmt"
	"net"
	"testing"
)

// TestSourceCheckWorks sends UDP from A to router B over B's checked
// interface b0, with source addresses B routes back through b0
// (2001:db8:1::2, and fe80::a on the link), through another interface
// (2001:db8:9::2, routed through B's b1, a veth pair within B), and nowhere (2001:db8:99::2).
// With the source check the last two are dropped; before and after it
// they arrive.
//
//	A 2001:db8:1::2/64 fe80::a [a0] --- [b0] 2001:db8:1::1/64 fe80::b  B  [b1] 2001:db8:9::1/64
func TestSourceCheckWorks(t *testing.T) {
	needRoot(t, "sysctl", "cat")
	for _, tc := range backends6 {
		t.Run(tc.name, func(t *testing.T) { sourceCheckWorks(t, tc.name, tc.new) })
	}
}

func sourceCheckWorks(t *testing.T, name string, newBackend newBackendFunc) {
	a, b := newNS(t), newNS(t)
	run(t, "ip", "-n", a.name, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", b.name)
	b.run(t, "ip", "link", "add", "b1", "type", "veth", "peer", "name", "b1p")
	upNoDAD(t, a, "a0")
	upNoDAD(t, b, "b0", "b1", "b1p")
	addAddrs(t, a, "a0", "2001:db8:1::2/64", "fe80::a/64", "2001:db8:9::2/128", "2001:db8:99::2/128")
	addAddrs(t, b, "b0", "2001:db8:1::1/64", "fe80::b/64")
	addAddrs(t, b, "b1", "2001:db8:9::1/64")
	// A knows B's address on the link for good: neighbour discovery for
	// it would take the source of the packet that prompts it, which may
	// be one the check drops. Link-local discovery is tested below.
	a.run(t, "ip", "-6", "neigh", "replace", "2001:db8:1::1", "lladdr", macOf(t, b, "b0"), "dev", "a0", "nud", "permanent")

	fw, err := newBackend(b.fd)
	if err != nil {
		t.Skipf("kernel lacks %s: %v", name, err)
	}
	const port = 5454
	server := listenUDP6(t, b, port)
	to := fmt.Sprintf("[2001:db8:1::1]:%d", port)
	seq := 0
	send := func(src, payload string) {
		t.Helper()
		seq++
		sendUDP6(t, a, net.JoinHostPort(src, fmt.Sprint(41000+seq)), to, payload)
	}
	// expect reads datagrams until the one with payload want: the others
	// read before it must be exactly those in passed.
	expect := func(want string, passed ...string) {
		t.Helper()
		for i := 0; ; i++ {
			got := recvUDP6(t, server)
			if got.payload == want {
				if i != len(passed) {
					t.Fatalf("%q arrived, but only %d of %q before it", want, i, passed)
				}
				return
			}
			if i >= len(passed) || got.payload != passed[i] {
				t.Fatalf("%q arrived from %s, want %q next", got.payload, got.src, want)
			}
		}
	}

	// Without the check, every source gets through.
	send("2001:db8:9::2", "other-if 1")
	send("2001:db8:99::2", "no-route 1")
	send("2001:db8:1::2", "routed 1")
	expect("routed 1", "other-if 1", "no-route 1")

	s := SourceCheck{Link: "lab0", Iface: "b0"}
	for range 2 {
		if err := fw.AddSourceCheck(s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := fw.SourceChecks(""); err != nil || len(got) != 1 || got[0] != s {
		t.Fatalf("SourceChecks = %+v, %v", got, err)
	}
	// Link-local sources pass: fe80::a is resolved by neighbour
	// discovery from fe80::a, and the datagram arrives.
	sendUDP6(t, a, "[fe80::a%a0]:41500", fmt.Sprintf("[fe80::b%%a0]:%d", port), "link-local")
	expect("link-local")
	send("2001:db8:9::2", "other-if 2")
	send("2001:db8:99::2", "no-route 2")
	send("2001:db8:1::2", "routed 2")
	expect("routed 2")
	// Nothing dropped arrives late either.
	send("2001:db8:1::2", "routed 3")
	expect("routed 3")

	if err := fw.RemoveSourceCheck(s); err != nil {
		t.Fatal(err)
	}
	if err := fw.RemoveSourceCheck(s); err != nil { // absent: not an error
		t.Fatal(err)
	}
	if got, err := fw.SourceChecks(""); err != nil || len(got) != 0 {
		t.Fatalf("SourceChecks after removal = %+v, %v", got, err)
	}
	send("2001:db8:9::2", "other-if 4")
	send("2001:db8:1::2", "routed 4")
	expect("routed 4", "other-if 4")
}
