package lab_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// snapshots records both ends' routing and firewall state.
func snapshots() map[string]string {
	return map[string]string{lab.ClientNS: lab.Snapshot(lab.ClientNS), lab.ServerNS: lab.Snapshot(lab.ServerNS)}
}

// wantSnapshots waits until both ends are back to before.
func wantSnapshots(t *testing.T, before map[string]string, timeout time.Duration) {
	t.Helper()
	for ns, want := range before {
		ok, got := lab.WaitFor(timeout, func() (bool, string) {
			s := lab.Snapshot(ns)
			return s == want, s
		})
		if !ok {
			t.Errorf("%s not as before after %v:\n--- before\n%s\n--- after\n%s", ns, timeout, want, got)
		}
	}
}

func helperConf(t *testing.T, name string, extra ...string) string {
	l := needLab(t)
	return l.Config(name, 1, append([]string{"SERVER_HELPER=" + l.Bin}, extra...)...)
}

func TestServerNetworkWithMasquerade(t *testing.T) {
	before := snapshots()
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes")
	mustStart(t, conf)
	// The host behind the server has no route back to the tunnel: only
	// the server's masquerade lets it answer.
	ping(t, lab.ClientNS, lab.BehindServerIP)
	out, code := client(t, "-c", conf, "status")
	if code != 0 || !strings.Contains(out, "applied    route "+lab.BehindServerNet+" dev ppp") {
		t.Errorf("status does not show the route: %s", out)
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: %s", out)
	}
	wantSnapshots(t, before, 5*time.Second)
}

func TestClientNetworkReachedFromServer(t *testing.T) {
	before := snapshots()
	conf := helperConf(t, "vpn", "CLIENT_NETWORKS="+lab.BehindClientNet)
	mustStart(t, conf)
	ping(t, lab.ServerNS, lab.BehindClientIP)
	client(t, "-c", conf, "stop")
	wantSnapshots(t, before, 5*time.Second)
}

func TestDefaultRouteKeepsTheCarrier(t *testing.T) {
	needLab(t)
	// IPv6 between client and server, and an IPv6 default route on the
	// client through the server (as a router's advertisement gives it):
	// the way an IPv6 leak around the tunnel would go.
	v6 := [][]string{
		{"-n", lab.ClientNS, "addr", "add", "2001:db8:1::1/64", "dev", "vpnlab0", "nodad"},
		{"-n", lab.ServerNS, "addr", "add", "2001:db8:1::2/64", "dev", "vpnlab1", "nodad"},
		{"-n", lab.ServerNS, "addr", "add", "2001:db8:2::1/128", "dev", "lo"},
		{"-n", lab.ClientNS, "-6", "route", "add", "default", "via", "2001:db8:1::2"},
	}
	t.Cleanup(func() {
		lab.Sh("ip", "-n", lab.ClientNS, "-6", "route", "del", "default", "via", "2001:db8:1::2")
		lab.Sh("ip", "-n", lab.ServerNS, "addr", "del", "2001:db8:2::1/128", "dev", "lo")
		lab.Sh("ip", "-n", lab.ServerNS, "addr", "del", "2001:db8:1::2/64", "dev", "vpnlab1")
		lab.Sh("ip", "-n", lab.ClientNS, "addr", "del", "2001:db8:1::1/64", "dev", "vpnlab0")
	})
	for _, a := range v6 {
		if _, err := lab.Sh("ip", a...); err != nil {
			t.Fatal(err)
		}
	}
	ping6 := func() (string, error) {
		return lab.InNS(lab.ClientNS, "ping", "-6", "-c", "1", "-W", "3", "2001:db8:2::1")
	}
	if out, err := ping6(); err != nil {
		t.Fatalf("IPv6 beyond the server before the link: %v\n%s", err, out)
	}
	before := snapshots()
	conf := helperConf(t, "vpn", "DEFAULT_ROUTE=yes", "SERVER_MASQUERADE=yes")
	mustStart(t, conf)
	// The link carries IPv4 only: IPv6 that only the default route would
	// carry is refused while it is up, not sent around it; the prefix of
	// the client's own link stays reachable.
	// An unreachable route answers connect(2) with EHOSTUNREACH.
	if out, err := ping6(); err == nil || !strings.Contains(err.Error(), "No route to host") {
		t.Errorf("IPv6 went around the link (or failed otherwise): %v\n%s", err, out)
	}
	if out, err := lab.InNS(lab.ClientNS, "ping", "-6", "-c", "1", "-W", "3", "2001:db8:1::2"); err != nil {
		t.Errorf("IPv6 on the client's own link refused too: %v\n%s", err, out)
	}
	// 203.0.113.2 has no route of its own on the client: only the default
	// route through the tunnel reaches it.
	ping(t, lab.ClientNS, lab.BehindServerIP)
	routes, _ := lab.Sh("ip", "-n", lab.ClientNS, "route", "show", "proto", "158")
	for _, want := range []string{"0.0.0.0/1 dev ppp", "128.0.0.0/1 dev ppp", lab.ServerIP + " dev vpnlab0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes of ours lack %q:\n%s", want, routes)
		}
	}
	// The SSH session survived its own default route: the link still works.
	ping(t, lab.ClientNS, "198.51.100.2")
	if out, code := client(t, "-c", conf, "status"); code != 0 || !strings.Contains(out, ": up") {
		t.Errorf("status: %s", out)
	}
	client(t, "-c", conf, "stop")
	wantSnapshots(t, before, 5*time.Second)
	if out, err := ping6(); err != nil {
		t.Errorf("IPv6 beyond the server after stop: %v\n%s", err, out)
	}
}

func TestHooksSeeTheLink(t *testing.T) {
	l := needLab(t)
	up, down := filepath.Join(l.Dir, "ip-up.d"), filepath.Join(l.Dir, "ip-down.d")
	trace := filepath.Join(l.Dir, "hook-trace")
	if err := os.Remove(trace); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, d := range []string{up, down} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// A hook runs from its open file ($0 is /proc/self/fd/3); its
		// path is in $VPN_HOOK.
		body := "#!/bin/sh\necho \"$(basename $(dirname $VPN_HOOK)) $* $PPP_IFACE $VPN_NAME\" >>" + trace +
			"\nip -o -4 addr show dev \"$1\" >>" + trace + " 2>&1\nip route show " + lab.BehindServerNet + " >>" + trace + "\n"
		if err := os.WriteFile(filepath.Join(d, "10-trace"), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes",
		"IP_UP_DIR="+up, "IP_DOWN_DIR="+down)
	mustStart(t, conf)
	client(t, "-c", conf, "stop")
	b, _ := os.ReadFile(trace)
	got := string(b)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 6 {
		t.Fatalf("want 3 lines from each hook, got:\n%s", got)
	}
	for i, dir := range []string{"ip-up.d", "ip-down.d"} {
		first, addr, route := lines[3*i], lines[3*i+1], lines[3*i+2]
		if !strings.HasPrefix(first, dir+" ppp") || !strings.Contains(first, "38400 198.51.100.1 198.51.100.2 vpn ppp") || !strings.HasSuffix(first, " vpn") {
			t.Errorf("%s arguments: %q", dir, first)
		}
		if !strings.Contains(addr, "198.51.100.1 peer 198.51.100.2") {
			t.Errorf("%s did not see the interface with its addresses: %q", dir, addr)
		}
		if !strings.Contains(route, lab.BehindServerNet+" dev ppp") {
			t.Errorf("%s did not see the route: %q", dir, route)
		}
	}
}

func TestKill9ThenCleanupRestoresBothEnds(t *testing.T) {
	before := snapshots()
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes",
		"CLIENT_NETWORKS="+lab.BehindClientNet, "CLIENT_MASQUERADE=yes")
	mustStart(t, conf)
	ping(t, lab.ClientNS, lab.BehindServerIP)
	kill(t, runningPid(t, conf), syscall.SIGKILL)
	out, code := client(t, "-c", conf, "cleanup")
	if code != 0 || !strings.Contains(out, "routes and rules") {
		t.Errorf("cleanup: exit %d: %s", code, out)
	}
	// The server half sees its pppd end when the dead client's TCP
	// connection closes, and undoes its side by itself.
	wantSnapshots(t, before, 10*time.Second)
	wantClean(t, 5*time.Second)
}

func TestServerPolicyRefuses(t *testing.T) {
	needLab(t)
	// /etc is an overlay inside the lab: this file never reaches the host.
	if err := lab.WritePolicy("ALLOW_PEERS=198.51.100.0/24\nALLOW_FORWARDING=yes\nALLOW_MASQUERADE=no\nALLOW_NETWORKS=198.18.0.0/16\n"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.WritePolicy(lab.Policy); err != nil {
			t.Errorf("restoring the lab policy: %v", err)
		}
	})
	conf := helperConf(t, "vpn", "SERVER_MASQUERADE=yes")
	wantFailure(t, conf, 1, 20*time.Second, "the server refused: masquerade needs ALLOW_MASQUERADE=yes in /etc/vpn-pppssh/server.conf (it says ALLOW_MASQUERADE=no)")
	conf = helperConf(t, "vpn", "CLIENT_NETWORKS=203.0.113.0/24")
	wantFailure(t, conf, 1, 20*time.Second, "routing 203.0.113.0/24 to the client needs ALLOW_NETWORKS covering it in /etc/vpn-pppssh/server.conf (it says ALLOW_NETWORKS=198.18.0.0/16)")
	// Inside the policy: accepted.
	conf = helperConf(t, "vpn", "CLIENT_NETWORKS="+lab.BehindClientNet)
	mustStart(t, conf)
	client(t, "-c", conf, "stop")
	// No policy file: everything is refused, and the refusal says which
	// key in which file would allow it.
	if err := os.Remove(lab.PolicyFile); err != nil {
		t.Fatal(err)
	}
	conf = helperConf(t, "vpn", "SERVER_MASQUERADE=yes")
	wantFailure(t, conf, 1, 20*time.Second, "the server refused: masquerade needs ALLOW_MASQUERADE=yes in /etc/vpn-pppssh/server.conf (the file does not exist)")
	// Not even a plain link: no range of tunnel addresses is assumed.
	conf = helperConf(t, "vpn")
	wantFailure(t, conf, 1, 20*time.Second, "the server refused: tunnel addresses need ALLOW_PEERS in /etc/vpn-pppssh/server.conf (the file does not exist): list the range you hand out, e.g. ALLOW_PEERS=198.51.100.0/24")
}

func TestServerKeysNeedTheHelper(t *testing.T) {
	l := needLab(t)
	conf := l.Config("vpn", 1, "SERVER_MASQUERADE=yes")
	wantFailure(t, conf, 2, 5*time.Second, "SERVER_MASQUERADE=yes needs SERVER_HELPER")
}

// Links that start and stop at the same moment (systemd at boot) share
// forwarding and the firewall without losing each other's changes.
func TestConcurrentLinksShareHostState(t *testing.T) {
	l := needLab(t)
	before := snapshots()
	confs := []string{
		l.Config("a", 1, "CLIENT_MASQUERADE=yes", "SERVER_NETWORKS="+lab.BehindServerNet),
		l.Config("b", 5, "CLIENT_MASQUERADE=yes"),
	}
	both := func(cmd string) {
		done := make(chan string, len(confs))
		for _, c := range confs {
			go func() {
				out, code := l.Client(t.Context(), "-c", c, cmd)
				done <- fmt.Sprintf("%s %s: exit %d: %s", c, cmd, code, out)
			}()
		}
		for range confs {
			if r := <-done; !strings.Contains(r, "exit 0") {
				t.Error(r)
			}
		}
	}
	both("start")
	rules, err := lab.FirewallRules(lab.ClientNS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.51.100.2/32", "198.51.100.6/32", lab.BehindServerNet} {
		if !strings.Contains(rules, want) {
			t.Errorf("masquerade for %s missing:\n%s", want, rules)
		}
	}
	both("stop")
	wantSnapshots(t, before, 5*time.Second)
}
