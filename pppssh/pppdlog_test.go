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
	// A second IPCP up (renegotiation) must not panic on the closed channel.
	w.line("remote IP address 198.51.100.2")
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
