package lab

import (
	"strings"
	"testing"
)

// A LAN behind a bridge of the server, for ethernet mode with
// SERVER_BRIDGE: the bridge LANBridge in the server namespace, with one
// port to a host LANHost in a namespace of its own. The bridge has no
// address: the server does not route to the LAN, the client joins it.
const (
	LANBridge = "vpnbr0"
	LANNS     = "vpnlab-l"
	LANNet    = "198.19.0.0/24"
	LANHost   = "198.19.0.2"
	LANClient = "198.19.0.50" // the client's tap, on the LAN
)

// LAN is a bridged LAN that a test set up.
type LAN struct{}

// BridgedLAN builds the LAN for the test and removes it afterwards.
func BridgedLAN(t testing.TB) *LAN {
	t.Helper()
	t.Cleanup(func() {
		Sh("ip", "netns", "del", LANNS)
		Sh("ip", "-n", ServerNS, "link", "del", LANBridge)
	})
	for _, s := range [][]string{
		{"netns", "add", LANNS},
		{"-n", ServerNS, "link", "add", LANBridge, "type", "bridge"},
		{"link", "add", "vpnlab6", "netns", ServerNS, "type", "veth", "peer", "name", "vpnlab7", "netns", LANNS},
		{"-n", ServerNS, "link", "set", "vpnlab6", "master", LANBridge},
		{"-n", ServerNS, "link", "set", "vpnlab6", "up"},
		{"-n", ServerNS, "link", "set", LANBridge, "up"},
		{"-n", LANNS, "addr", "add", LANHost + "/24", "dev", "vpnlab7"},
		{"-n", LANNS, "link", "set", "vpnlab7", "up"},
		{"-n", LANNS, "link", "set", "lo", "up"},
	} {
		if _, err := Sh("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
	return &LAN{}
}

// Ports lists the bridge's ports.
func (*LAN) Ports(t testing.TB) []string {
	t.Helper()
	out, err := Sh("ip", "-n", ServerNS, "-o", "link", "show", "master", LANBridge)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			ports = append(ports, name)
		}
	}
	return ports
}

// ClientMAC is the MAC address of the client's only tap device.
func (*LAN) ClientMAC(t testing.TB) string {
	t.Helper()
	out, err := Sh("ip", "-n", ClientNS, "-o", "link", "show", "type", "tun")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one tap device on the client, got %q", out)
	}
	_, rest, ok := strings.Cut(lines[0], "link/ether ")
	if !ok {
		t.Fatalf("the client's device is not a tap: %q", lines[0])
	}
	return strings.Fields(rest)[0]
}

// Neighbour is the LAN host's neighbour entry (the MAC address) for ip, or
// "" if it has none.
func (*LAN) Neighbour(t testing.TB, ip string) string {
	t.Helper()
	out, err := Sh("ip", "-n", LANNS, "neigh", "show", ip)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(out, "lladdr ")
	if !ok {
		return ""
	}
	return strings.Fields(rest)[0]
}
