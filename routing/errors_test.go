package routing

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// probeFailed is the real host with a firewall probe that failed: its
// masquerade errors must still name the action, once.
func probeFailed() *netlinkHost {
	h := newNetlinkHost()
	h.fwOnce.Do(func() { h.fwErr = errors.New("probing firewall backends: no usable backend") })
	return h
}

func TestMasqueradeErrorNamesItsActionOnce(t *testing.T) {
	r, err := newRouter("vpn", t.TempDir(), probeFailed())
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParsePrefix("198.51.100.2/32")
	err = r.Set(Config{Iface: "ppp0", Masquerade: []netip.Prefix{src}})
	if err == nil {
		t.Fatal("Set succeeded without a firewall")
	}
	if n := strings.Count(err.Error(), "adding masquerade for 198.51.100.2/32"); n != 1 {
		t.Errorf("the action appears %d times, want once: %v", n, err)
	}
	if len(r.Applied()) != 0 {
		t.Errorf("a failed masquerade was recorded: %v", r.Applied())
	}
}

func TestMasqueradeUndoErrorNamesItsActionOnce(t *testing.T) {
	dir := t.TempDir()
	// A journal left by a run whose firewall worked.
	fake := &fakeHost{}
	r, err := newRouter("vpn", dir, fake)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Set(Config{Iface: "ppp0", Masquerade: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32")}}); err != nil {
		t.Fatal(err)
	}
	r, err = newRouter("vpn", dir, probeFailed())
	if err != nil {
		t.Fatal(err)
	}
	err = r.Close()
	if n := strings.Count(errString(err), "removing masquerade for 198.51.100.2/32"); n != 1 {
		t.Errorf("the action appears %d times, want once: %v", n, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
