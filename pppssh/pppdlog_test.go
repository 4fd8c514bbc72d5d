package pppssh

import (
	"net/netip"
	"testing"
)

func TestPPPDWatcher(t *testing.T) {
	w := newPPPDWatcher()
	lines := []string{
		"using channel 3",
		"Using interface ppp1",
		"Connect: ppp1 <--> /dev/pts/4",
		"local  IP address 198.51.100.1",
	}
	for _, l := range lines {
		if w.line(l) {
			t.Fatalf("up after %q, before the remote address", l)
		}
	}
	if !w.line("remote IP address 198.51.100.2") {
		t.Fatal("not up after the remote address")
	}
	select {
	case <-w.up:
	default:
		t.Fatal("up channel not closed")
	}
	iface, local, remote := w.result()
	if iface != "ppp1" || local != netip.MustParseAddr("198.51.100.1") || remote != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("result = %s %s %s", iface, local, remote)
	}
	// A second IPCP up (renegotiation) must not panic on the closed
	// channel, and says the interface went down meanwhile.
	select {
	case <-w.again:
		t.Fatal("renegotiation reported before it happened")
	default:
	}
	w.line("remote IP address 198.51.100.2")
	select {
	case <-w.again:
	default:
		t.Fatal("a second IPCP up was not reported")
	}
	for range 20 {
		w.line("noise")
	}
	if got := len(w.tail); got != tailLines {
		t.Errorf("kept %d lines, want %d", got, tailLines)
	}
}

func TestPPPDExitReason(t *testing.T) {
	if got := pppdExitReason(4); got != "exit status 4: the kernel has no PPP support" {
		t.Errorf("4: %q", got)
	}
	if got := pppdExitReason(99); got != "exit status 99" {
		t.Errorf("99: %q", got)
	}
}

// DNS=peer: the name servers pppd prints after the remote address belong
// to the link, which is up at the secondary's line.
func TestPPPDWatcherPeerDNS(t *testing.T) {
	w := newPPPDWatcher()
	w.wantDNS = true
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2", "primary   DNS address 203.0.113.53"} {
		if w.line(l) {
			t.Fatalf("up at %q, before the secondary name server", l)
		}
	}
	if !w.line("secondary DNS address 203.0.113.54") {
		t.Fatal("not up after the secondary name server")
	}
	<-w.up
	if got := w.peerDNS(); len(got) != 2 || got[0] != netip.MustParseAddr("203.0.113.53") || got[1] != netip.MustParseAddr("203.0.113.54") {
		t.Fatalf("peer DNS %v", got)
	}
	// Only a primary: up at the next line of another kind.
	w = newPPPDWatcher()
	w.wantDNS = true
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2", "primary   DNS address 203.0.113.53"} {
		w.line(l)
	}
	if !w.line("local  LL address fe80::1") {
		t.Fatal("not up at the line after the name server")
	}
	// None offered: up dnsGrace after the remote address, with none.
	w = newPPPDWatcher()
	w.wantDNS = true
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2"} {
		w.line(l)
	}
	<-w.up
	if got := w.peerDNS(); len(got) != 0 {
		t.Fatalf("peer DNS %v, none offered", got)
	}
	// Without DNS=peer the lines are not taken.
	w = newPPPDWatcher()
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2", "primary   DNS address 203.0.113.53"} {
		w.line(l)
	}
	if got := w.peerDNS(); len(got) != 0 {
		t.Fatalf("peer DNS %v without DNS=peer", got)
	}
}
