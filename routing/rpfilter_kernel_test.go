//go:build linux

package routing

import (
	"os"
	"strings"
	"testing"
)

// On the real kernel, the source check is the interface's rp_filter, made
// strict for the link's life and given back after.
func TestKernelSourceCheck(t *testing.T) {
	inNewNetNS(t, func(string) {
		path := "/proc/sys/net/ipv4/conf/tun0/rp_filter"
		if err := os.WriteFile(path, []byte("2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		read := func() string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(b))
		}
		r, err := New("vpn", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Set(Config{Iface: "tun0", SourceCheck: true}); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != "1" {
			t.Errorf("rp_filter while up = %s, want 1", got)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != "2" {
			t.Errorf("rp_filter after Close = %s, want 2 again", got)
		}
	})
}
