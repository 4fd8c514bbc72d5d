//go:build linux

package firewall

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Helpers for IPv6 traffic between test namespaces: UDP sockets opened
// inside a namespace by a thread that entered it, so that the test sees
// which source address a datagram arrives with.

// udpWait bounds every read: a datagram that should come has come by then.
const udpWait = 5 * time.Second

// listenUDP6 opens a UDP socket on [::]:port inside ns, closed when t ends.
func listenUDP6(t *testing.T, ns *testNS, port int) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := inNetNS(ns.fd, func() error {
		var err error
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", ns.name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sendUDP6 sends payload from the address from (with a port, and a zone
// for a link-local one) to the address to, inside ns.
func sendUDP6(t *testing.T, ns *testNS, from, to, payload string) {
	t.Helper()
	err := inNetNS(ns.fd, func() error {
		laddr, err := net.ResolveUDPAddr("udp6", from)
		if err != nil {
			return err
		}
		raddr, err := net.ResolveUDPAddr("udp6", to)
		if err != nil {
			return err
		}
		conn, err := net.DialUDP("udp6", laddr, raddr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte(payload))
		return err
	})
	if err != nil {
		t.Fatalf("sending %q from %s to %s in %s: %v", payload, from, to, ns.name, err)
	}
}

// received is one datagram: its payload and its source address.
type received struct {
	payload string
	src     netip.Addr
}

// recvUDP6 reads the next datagram, failing t when none comes in udpWait.
func recvUDP6(t *testing.T, conn *net.UDPConn) received {
	t.Helper()
	buf := make([]byte, 512)
	if err := conn.SetReadDeadline(time.Now().Add(udpWait)); err != nil {
		t.Fatal(err)
	}
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for a datagram: %v", err)
	}
	return received{string(buf[:n]), from.Addr().WithZone("")}
}

// upNoDAD brings interfaces of ns up with duplicate address detection off,
// so that their addresses are usable at once instead of tentative.
func upNoDAD(t *testing.T, ns *testNS, ifaces ...string) {
	t.Helper()
	for _, i := range ifaces {
		ns.run(t, "sysctl", "-q", "-w", "net.ipv6.conf."+i+".accept_dad=0")
		ns.run(t, "ip", "link", "set", i, "up")
	}
}

// addAddrs adds addresses (with prefix length) to iface of ns, without DAD.
func addAddrs(t *testing.T, ns *testNS, iface string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		ns.run(t, "ip", "-6", "addr", "add", a, "dev", iface, "nodad")
	}
}

// macOf is the hardware address of iface in ns.
func macOf(t *testing.T, ns *testNS, iface string) string {
	t.Helper()
	return strings.TrimSpace(ns.run(t, "cat", "/sys/class/net/"+iface+"/address"))
}
