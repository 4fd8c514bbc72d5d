//go:build linux

package routing

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// inNewNetNS runs f on a thread that has entered a fresh network namespace
// with two up interfaces (veth, the kernel here has no dummy): tun0 (the link, 198.51.100.1 peer 198.51.100.2)
// and eth0 (192.0.2.1/24, the way to the SSH server 192.0.2.2). Every
// netlink, procfs and firewall call f makes lands in that namespace.
func inNewNetNS(t *testing.T, f func(ns string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to set up the namespace")
	}
	name := fmt.Sprintf("vpnrt-%d", os.Getpid())
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for _, args := range [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
		{"link", "set", "eth0p", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "add", "tun0", "type", "veth", "peer", "name", "tun0p"},
		{"link", "set", "tun0p", "up"},
		{"addr", "add", "198.51.100.1", "peer", "198.51.100.2", "dev", "tun0"},
		{"link", "set", "tun0", "up"},
	} {
		sh(t, "ip", append([]string{"-n", name}, args...)...)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread is left in the namespace and never reused: the
		// goroutine exits while still locked, so the runtime drops it.
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		f(name)
	}()
	<-done
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// snapshot is the namespace's routes, forwarding and firewall as text.
// Each part must be readable, and one firewall backend at least, so that
// "as before" never holds for want of looking. (It runs on the namespace's
// goroutine, so it returns an error rather than calling t.Fatal.)
func snapshot(ns string) (string, error) {
	routes, err := exec.Command("ip", "-n", ns, "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("routes of %s: %w: %s", ns, err, routes)
	}
	// IPv6: only ours (proto 158). The kernel adds link-local and
	// multicast routes as interfaces come up, at times of its own.
	routes6, err := exec.Command("ip", "-n", ns, "-6", "route", "show", "table", "all", "proto", "158").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("IPv6 routes of %s: %w: %s", ns, err, routes6)
	}
	routes = append(routes, routes6...)
	fwd, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("forwarding of %s: %w: %s", ns, err, fwd)
	}
	nft, nftErr := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	ipt, iptErr := exec.Command("ip", "netns", "exec", ns, "iptables-legacy-save", "-t", "nat").CombinedOutput()
	if nftErr != nil && iptErr != nil {
		return "", fmt.Errorf("no firewall readable in %s: nft: %w: %s; iptables-legacy-save: %w: %s", ns, nftErr, nft, iptErr, ipt)
	}
	var rules []string
	for _, l := range strings.Split(string(ipt), "\n") {
		if !strings.HasPrefix(l, "#") { // dates and versions
			rules = append(rules, counters.ReplaceAllString(l, ""))
		}
	}
	return fmt.Sprintf("routes:\n%sforward=%snft (%v):\n%s\niptables (%v):\n%s", routes, fwd, nftErr, nft, iptErr, strings.Join(rules, "\n")), nil
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// TestRouterOnTheKernel applies and undoes a full configuration through
// netlink, procfs and the firewall backend the kernel offers, and checks
// the namespace is exactly as before.
func TestRouterOnTheKernel(t *testing.T) {
	inNewNetNS(t, func(ns string) {
		before, err := snapshot(ns)
		if err != nil {
			t.Error(err)
			return
		}
		r, err := New("office", t.TempDir())
		if err != nil {
			t.Error(err)
			return
		}
		cfg := Config{
			Iface:        "tun0",
			Networks:     prefixes("203.0.113.0/24"),
			Masquerade:   prefixes("198.51.100.2/32", "203.0.113.0/24"),
			Forwarding:   true,
			DefaultRoute: true,
			Carrier:      netip.MustParseAddr("192.0.2.2"),
		}
		if err := r.Set(cfg); err != nil {
			t.Errorf("Set: %v", err)
			if err := r.Close(); err != nil {
				t.Errorf("Close after a failed Set: %v", err)
			}
			return
		}
		if err := r.Set(cfg); err != nil {
			t.Errorf("Set again: %v", err)
		}
		during, err := snapshot(ns)
		if err != nil {
			t.Error(err)
		}
		for _, want := range []string{
			"203.0.113.0/24 dev tun0 proto 158 scope link",
			"0.0.0.0/1 dev tun0 proto 158 scope link",
			"128.0.0.0/1 dev tun0 proto 158 scope link",
			"192.0.2.2 dev eth0 proto 158 scope link",
			"unreachable ::/1 dev lo",
			"unreachable 8000::/1 dev lo",
			"forward=1",
		} {
			if !strings.Contains(during, want) {
				t.Errorf("applied state lacks %q:\n%s", want, during)
			}
		}
		if !strings.Contains(during, `oifname != "tun0"`) && !strings.Contains(during, "! -o tun0") {
			t.Errorf("no masquerade rule for tun0 (firewall %s):\n%s", r.Firewall(), during)
		}
		t.Logf("firewall backend: %s", r.Firewall())
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if after, err := snapshot(ns); err != nil {
			t.Error(err)
		} else if after != before {
			t.Errorf("namespace not as before:\n--- before\n%s\n--- after\n%s", before, after)
		}
	})
}

// TestForwardingOnTheKernel: both families' forwarding go on and back,
// and an interface the admin had set differently from "all" keeps its
// setting, though the kernel sets every interface along with "all".
func TestForwardingOnTheKernel(t *testing.T) {
	inNewNetNS(t, func(ns string) {
		read := func(path string) string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
			}
			return strings.TrimSpace(string(b))
		}
		for _, p := range []string{"/proc/sys/net/ipv4/conf/eth0/forwarding", "/proc/sys/net/ipv6/conf/eth0/forwarding"} {
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				t.Error(err)
				return
			}
		}
		r, err := New("office", t.TempDir())
		if err != nil {
			t.Error(err)
			return
		}
		if err := r.Set(Config{Iface: "tun0", Forwarding: true, Forwarding6: true}); err != nil {
			t.Errorf("Set: %v", err)
		}
		for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/ipv6/conf/tun0/forwarding"} {
			if v := read(p); v != "1" {
				t.Errorf("%s = %s while the link is up, want 1", p, v)
			}
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for p, want := range map[string]string{
			"/proc/sys/net/ipv4/ip_forward":              "0",
			"/proc/sys/net/ipv6/conf/all/forwarding":     "0",
			"/proc/sys/net/ipv4/conf/tun0/forwarding":    "0",
			"/proc/sys/net/ipv6/conf/tun0/forwarding":    "0",
			"/proc/sys/net/ipv4/conf/eth0/forwarding":    "1",
			"/proc/sys/net/ipv6/conf/eth0/forwarding":    "1",
			"/proc/sys/net/ipv4/conf/default/forwarding": "0",
		} {
			if v := read(p); v != want {
				t.Errorf("%s = %s after Close, want %s", p, v, want)
			}
		}
	})
}
