//go:build linux

package routing

import (
	"net/netip"
	"strings"
	"testing"
)

// TestKernelMasqueradeErrorOnce: with the real firewall backend, whose own
// errors name the action, the Router's error says it once. The interface
// name is one the backend refuses, so that nothing is installed.
func TestKernelMasqueradeErrorOnce(t *testing.T) {
	inNewNetNS(t, func(ns string) {
		r, err := New("vpn", t.TempDir())
		if err != nil {
			t.Error(err)
			return
		}
		err = r.Set(Config{Iface: "bad/name", Masquerade: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32")}})
		if err == nil {
			t.Error("Set accepted an interface name the firewall refuses")
			return
		}
		if n := strings.Count(err.Error(), "adding masquerade for 198.51.100.2/32"); n != 1 {
			t.Errorf("the action appears %d times, want once: %v", n, err)
		}
		t.Log(err)
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
