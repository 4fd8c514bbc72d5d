package tunnel

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerEndScript(t *testing.T) {
	tests := []struct {
		name string
		end  serverEnd
		want []string // lines the script must hold
		not  []string
	}{
		{"tun", serverEnd{addr: netip.MustParsePrefix("198.51.100.2/32"), peer: netip.MustParseAddr("198.51.100.1"), mtu: 1400},
			[]string{`link set dev $dev mtu 1400`, `addr add 198.51.100.2 peer 198.51.100.1 dev $dev`, `link set dev $dev up`},
			[]string{"master"}},
		{"ethernet", serverEnd{ethernet: true, addr: netip.MustParsePrefix("198.51.100.2/24")},
			[]string{`addr add 198.51.100.2/24 dev $dev`, `link set dev $dev up`},
			[]string{"peer", "mtu"}},
		{"bridge", serverEnd{ethernet: true, bridge: "br0", mtu: 1400},
			[]string{`link set dev $dev master br0`, `mtu=$(cat /sys/class/net/br0/mtu)`, `link set dev $dev mtu $mtu`},
			[]string{"addr add", "mtu 1400"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.end.script()
			for _, w := range tt.want {
				if !strings.Contains(s, w+"\n") {
					t.Errorf("script lacks %q:\n%s", w, s)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(s, n) {
					t.Errorf("script has %q:\n%s", n, s)
				}
			}
			if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
				t.Errorf("sh -n: %v: %s", err, out)
			}
		})
	}
}

// TestServerEndScriptFindsTheDevice runs the script's device search
// against a fake /proc of its parent: the fdinfo of a tun file names the
// device, other files do not.
func TestServerEndScriptFindsTheDevice(t *testing.T) {
	s := serverEnd{}.script()
	search, _, ok := strings.Cut(s, `[ "$(id -u)"`)
	if !ok {
		t.Fatalf("no root check in the script:\n%s", s)
	}
	dir := t.TempDir()
	fdinfo := filepath.Join(dir, "fdinfo")
	if err := os.Mkdir(fdinfo, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"0": "pos:\t0\nflags:\t02\n",
		"7": "pos:\t0\nflags:\t02004002\nmnt_id:\t25\niff:\ttun3\n",
		"9": "pos:\t0\n",
	} {
		if err := os.WriteFile(filepath.Join(fdinfo, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fake := strings.ReplaceAll(search, "/proc/$PPID/fdinfo", fdinfo)
	out, err := exec.Command("sh", "-c", fake).Output()
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "tun3" {
		t.Errorf("found %q, want tun3", got)
	}
	if err := os.Remove(filepath.Join(fdinfo, "7")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", fake).CombinedOutput(); err == nil || !strings.Contains(string(out), "no tunnel device") {
		t.Errorf("without a tun file: err %v, output %q", err, out)
	}
}

func TestValidIfName(t *testing.T) {
	for _, s := range []string{"tun0", "tap12", "a", "x-y_z.1"} {
		if !validIfName(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx", "tun0\x1b[2J", "é"} {
		if validIfName(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
