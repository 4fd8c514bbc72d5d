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

// wantState checks the watcher's count of ups and whether it is up, and
// returns the channel that its next change closes.
func wantState(t *testing.T, w *pppdWatcher, when string, ups int, live bool) <-chan struct{} {
	t.Helper()
	u, l, changed := w.state()
	if u != ups || l != live {
		t.Fatalf("%s: ups %d, live %v; want %d, %v", when, u, l, ups, live)
	}
	return changed
}

// fired takes a value from c, or sees it closed, without waiting.
func fired(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// The link goes down in place (the peer restarted LCP: pppd logs its
// statistics as IPCP goes down) and comes back with the next round's
// lines, name servers included; the first round's are not reused.
func TestPPPDWatcherLapseAndRenewal(t *testing.T) {
	w := newPPPDWatcher()
	w.renews = true
	w.wantDNS = true
	up := []string{
		"Using interface ppp0",
		"local  IP address 198.51.100.1",
		"remote IP address 198.51.100.2",
		"primary   DNS address 192.0.2.53",
		"secondary DNS address 192.0.2.54",
	}
	for _, l := range up {
		w.line(l)
	}
	changed := wantState(t, w, "after the first round", 1, true)
	w.line("Connect time 0.1 minutes.")
	if !fired(changed) {
		t.Fatal("the statistics line after up did not wake the waiters")
	}
	changed = wantState(t, w, "after the statistics line", 1, false)
	w.line("Sent 1000 bytes, received 2000 bytes.")
	if _, local, _ := w.result(); local.IsValid() {
		t.Errorf("the first round's local address %s kept after the lapse", local)
	}
	w.line("local  IP address 198.51.100.1")
	if w.line("remote IP address 198.51.100.2") || fired(changed) {
		t.Fatal("renewed before the name servers of the new round came")
	}
	w.line("primary   DNS address 192.0.2.55")
	if !w.line("secondary DNS address 192.0.2.56") || !fired(changed) {
		t.Fatal("not renewed once the new round was whole")
	}
	wantState(t, w, "after the second round", 2, true)
	if got := w.peerDNS(); len(got) != 2 || got[0] != netip.MustParseAddr("192.0.2.55") {
		t.Errorf("name servers after the renewal: %v, want the second round's", got)
	}
	if fired(w.again) {
		t.Error("again closed, though the renegotiation was announced by the statistics line")
	}
	// A final statistics line, as pppd prints when it ends, is one more lapse.
	w.line("Connect time 0.2 minutes.")
	wantState(t, w, "after the last statistics line", 2, false)
}

// A second IPCP up with no statistics line before it is a lapse and a
// renewal at once, with the address of the line before it.
func TestPPPDWatcherRenegotiationWithoutStatistics(t *testing.T) {
	w := newPPPDWatcher()
	w.renews = true
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2"} {
		w.line(l)
	}
	w.line("local  IP address 198.51.100.9")
	if !w.line("remote IP address 198.51.100.2") {
		t.Fatal("the second round did not complete the link")
	}
	wantState(t, w, "after the second IPCP up", 2, true)
	if !fired(w.again) {
		t.Error("again not closed at a second IPCP up")
	}
	if _, local, _ := w.result(); local != netip.MustParseAddr("198.51.100.9") {
		t.Errorf("local after the renewal: %s, want the second round's 198.51.100.9", local)
	}
}

// With IPv6, the renewal waits for IPV6CP of the new round too.
func TestPPPDWatcherRenewalWaitsForIPv6(t *testing.T) {
	w := newPPPDWatcher()
	w.renews = true
	w.want6 = true
	round := []string{"local  IP address 198.51.100.1", "remote IP address 198.51.100.2",
		"local  LL address fe80::1", "remote LL address fe80::2"}
	w.line("Using interface ppp0")
	for _, l := range round {
		w.line(l)
	}
	wantState(t, w, "up", 1, true)
	w.line("Connect time 0.1 minutes.")
	for _, l := range round[:2] {
		w.line(l)
	}
	wantState(t, w, "after IPCP of the new round", 1, false)
	for _, l := range round[2:] {
		w.line(l)
	}
	wantState(t, w, "after IPV6CP", 2, true)
}

// Without renews (the server's PPPDLog), a second IPCP up only closes
// again and leaves the first round's result as it was: the server ends
// the link on it, and nothing applied may follow the new addresses. The
// statistics line that comes first changes nothing.
func TestPPPDWatcherWithoutRenewals(t *testing.T) {
	w := newPPPDWatcher()
	for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.2", "remote IP address 198.51.100.1",
		"Connect time 0.1 minutes.", "local  IP address 198.51.100.2", "remote IP address 198.51.100.77"} {
		w.line(l)
	}
	if !fired(w.again) {
		t.Fatal("a second IPCP up did not close again")
	}
	if _, _, remote := w.result(); remote != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("remote after a second IPCP up: %s, want the first round's 198.51.100.1", remote)
	}
	wantState(t, w, "without renews", 1, true)
}
