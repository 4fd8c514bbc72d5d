package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// IPv6 through the link, in every mode, against the real pppd (IPV6CP),
// sshd, sudo, iperf3 and ping: the link's own addresses, an IPv6 network
// behind the server reached only through the server's IPv6 masquerade,
// the policy's refusals, the SSH server itself on IPv6 with the default
// route of both families through the link, and nothing left after stop.

const (
	v6Client       = "2001:db8:6::2"
	v6Server       = "2001:db8:6::1"
	v6BehindNet    = "2001:db8:2::/64"
	v6BehindServer = "2001:db8:2::2"
	// v6SSHServer is the lab server's address on the client's side, for
	// an sshd that listens on IPv6.
	v6SSHServer = "2001:db8:1::2"
)

// ipv6Policy is the lab's policy with the IPv6 tunnel range, and the IPv6
// network behind the client, added.
var ipv6Policy = strings.NewReplacer(
	"ALLOW_PEERS=198.51.100.0/24", "ALLOW_PEERS=198.51.100.0/24,2001:db8::/32",
	"ALLOW_NETWORKS=198.18.0.0/15", "ALLOW_NETWORKS=198.18.0.0/15,"+v6BehindClientNet,
).Replace(lab.Policy)

// The IPv6 network behind the client (CLIENT_NETWORKS).
const (
	v6BehindClientNet = "2001:db8:3::/64"
	v6BehindClient    = "2001:db8:3::2"
)

// ipv6BehindClient gives the client and the host behind it an IPv6
// network whose default route is the client: the server reaches it only
// through the link, routed there by CLIENT_NETWORKS.
func ipv6BehindClient(t *testing.T) {
	ipSteps(t, [][]string{
		{"-n", lab.ClientNS, "addr", "add", "2001:db8:3::1/64", "dev", "vpnlab4", "nodad"},
		{"-n", lab.BehindClientNS, "addr", "add", v6BehindClient + "/64", "dev", "vpnlab5", "nodad"},
		{"-n", lab.BehindClientNS, "-6", "route", "add", "default", "via", "2001:db8:3::1"},
	}, [][]string{
		{"-n", lab.ClientNS, "addr", "del", "2001:db8:3::1/64", "dev", "vpnlab4"},
		{"-n", lab.BehindClientNS, "addr", "del", v6BehindClient + "/64", "dev", "vpnlab5"},
		{"-n", lab.BehindClientNS, "-6", "route", "del", "default", "via", "2001:db8:3::1"},
	})
}

// v6Addrs are the lines that make a link carry IPv6: a pair of addresses,
// a /64 both ends share in ethernet mode.
func v6Addrs(mode string) []string {
	if mode == "ethernet" {
		return []string{"CLIENT_IFIP6ADDR=" + v6Client + "/64", "SERVER_IFIP6ADDR=" + v6Server + "/64"}
	}
	return []string{"CLIENT_IFIP6ADDR=" + v6Client, "SERVER_IFIP6ADDR=" + v6Server}
}

// useIPv6Policy lets the lab's server half hand out IPv6 tunnel addresses
// until the test ends.
func useIPv6Policy(t *testing.T) {
	t.Helper()
	if err := lab.WritePolicy(ipv6Policy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.WritePolicy(lab.Policy); err != nil {
			t.Errorf("restoring the lab policy: %v", err)
		}
	})
}

// ipSteps runs `ip` steps, and their undoing at cleanup, newest first.
func ipSteps(t *testing.T, do, undo [][]string) {
	t.Helper()
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			lab.Sh("ip", undo[i]...)
		}
	})
	for _, s := range do {
		if _, err := lab.Sh("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
}

// ipv6BehindServer gives the server and the host behind it an IPv6
// network, 2001:db8:2::/64. The host has no route back to the tunnel's
// addresses: only the server's IPv6 masquerade lets it answer.
func ipv6BehindServer(t *testing.T) {
	ipSteps(t, [][]string{
		{"-n", lab.ServerNS, "addr", "add", "2001:db8:2::1/64", "dev", "vpnlab2", "nodad"},
		{"-n", lab.BehindServerNS, "addr", "add", v6BehindServer + "/64", "dev", "vpnlab3", "nodad"},
	}, [][]string{
		{"-n", lab.ServerNS, "addr", "del", "2001:db8:2::1/64", "dev", "vpnlab2"},
		{"-n", lab.BehindServerNS, "addr", "del", v6BehindServer + "/64", "dev", "vpnlab3"},
	})
}

func ping6(t *testing.T, ns, addr string) {
	t.Helper()
	if msg := pingLoss(ns, addr, "-6"); msg != "" {
		var state strings.Builder
		for _, n := range []string{lab.ClientNS, lab.ServerNS} {
			addrs, _ := lab.Sh("ip", "-n", n, "-6", "addr")
			routes, _ := lab.Sh("ip", "-n", n, "-6", "route")
			fmt.Fprintf(&state, "%s addresses:\n%s\n%s routes:\n%s\n", n, addrs, n, routes)
		}
		t.Fatalf("%s\n%s", msg, state.String())
	}
}

// wantIPv6Carried checks a link that is up and carries IPv6: both ends
// answer over it, the network behind the server answers through the
// server's masquerade, iperf3 moves data over it, and status shows the
// addresses.
func wantIPv6Carried(t *testing.T, conf string, masquerade bool) {
	t.Helper()
	ping6(t, lab.ClientNS, v6Server)
	ping6(t, lab.ServerNS, v6Client)
	if masquerade {
		ping6(t, lab.ClientNS, v6BehindServer)
	}
	mbps, bytes, err := lab.ThroughputTo(v6Server, 2)
	if err != nil || bytes == 0 {
		t.Fatalf("iperf3 over IPv6: %v (%d bytes)", err, bytes)
	}
	t.Logf("iperf3 over IPv6: %.1f Mbit/s", mbps)
	out, code := client(t, "-c", conf, "status")
	if code != 0 || !strings.Contains(out, "local6     "+v6Client) || !strings.Contains(out, "remote6    "+v6Server) {
		t.Errorf("status does not show the IPv6 addresses: exit %d\n%s", code, out)
	}
}

// wantServerIPv6Rules checks the server's firewall while a link with
// SERVER_MASQUERADE carries IPv6: the client's address is masqueraded and
// IPv6 arriving from the link is source-checked, both by rules of ours;
// and the server forwards IPv6.
func wantServerIPv6Rules(t *testing.T) {
	t.Helper()
	rules, err := lab.FirewallRules(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vpn-pppssh:serve-198.51.100.1 src=" + v6Client + "/128", "vpn-pppssh:serve-198.51.100.1 rpf="} {
		if !strings.Contains(rules, want) {
			t.Errorf("the server's firewall lacks %q:\n%s", want, rules)
		}
	}
	if fwd, err := lab.InNS(lab.ServerNS, "cat", "/proc/sys/net/ipv6/conf/all/forwarding"); err != nil || strings.TrimSpace(fwd) != "1" {
		t.Errorf("the server's IPv6 forwarding: %q, %v; want 1", fwd, err)
	}
}

// MODE=ppp: IPV6CP between the real pppds, then the global addresses;
// IPv6 networks behind both ends.
func TestIPv6OverPPP(t *testing.T) {
	needLab(t)
	useIPv6Policy(t)
	ipv6BehindServer(t)
	ipv6BehindClient(t)
	before := snapshots()
	conf := helperConf(t, "vpn", append(v6Addrs("ppp"), "SERVER_NETWORKS="+v6BehindNet, "SERVER_MASQUERADE=yes",
		"CLIENT_NETWORKS="+v6BehindClientNet)...)
	out := mustStart(t, conf)
	if !strings.Contains(out, "198.51.100.1 -> 198.51.100.2, "+v6Client+" -> "+v6Server) {
		t.Errorf("start does not name the IPv6 addresses: %q", out)
	}
	// IPv4 still works beside it.
	ping(t, lab.ClientNS, "198.51.100.2")
	wantIPv6Carried(t, conf, true)
	wantServerIPv6Rules(t)
	// The server reaches the client's IPv6 network, un-masqueraded: its
	// route through the link, the client's IPv6 forwarding.
	ping6(t, lab.ServerNS, v6BehindClient)
	wantV6Route := func(when string) {
		t.Helper()
		routes, err := lab.Sh("ip", "-n", lab.ClientNS, "-6", "route", "show", "proto", "158")
		if err != nil || !strings.Contains(routes, v6BehindNet+" dev ppp") {
			t.Errorf("%s: the client's IPv6 route to %s: %v\n%s", when, v6BehindNet, err, routes)
		}
	}
	wantV6Route("up")
	// The server's pppd killed: the link comes back (renewed in place,
	// IPCP and IPV6CP again; or, when a stale LCP request under load made
	// the new pppd renegotiate and the server ended the session, by a
	// redial), and both ends' IPv6 addresses, routes and rules are back.
	// TestServerPPPDRestartedInPlace asserts the renewal itself.
	local := localPPPD(t, "vpn")
	kill(t, serverPPPD(t), syscall.SIGKILL)
	wantBack(t, conf, 1, time.Minute)
	if p := localPPPD(t, "vpn"); p != local {
		t.Logf("the client's pppd changed from %d to %d: redialled, not renewed in place (%s)", local, p, statusJSON(t, conf).LastError)
	}
	wantIPv6Carried(t, conf, true)
	wantServerIPv6Rules(t)
	ping6(t, lab.ServerNS, v6BehindClient)
	wantV6Route("renewed in place")
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantSnapshots(t, before, 10*time.Second)
	wantClean(t, 5*time.Second)
}

// The server half's policy and its look at the server's own addresses
// refuse IPv6 as they refuse IPv4, through the real sshd and sudo, and
// the refusal names the key or the address.
func TestIPv6ServerPolicyRefuses(t *testing.T) {
	needLab(t)
	ipv6BehindServer(t)
	// The lab's own policy lists no IPv6 range.
	conf := helperConf(t, "vpn", v6Addrs("ppp")...)
	wantFailure(t, conf, 1, 30*time.Second, "the server refused: peer "+v6Client+" is outside ALLOW_PEERS=198.51.100.0/24 in /etc/vpn-pppssh/server.conf")
	useIPv6Policy(t)
	conf = helperConf(t, "vpn", append(v6Addrs("ppp"), "CLIENT_NETWORKS=2001:db8:7::/64")...)
	wantFailure(t, conf, 1, 30*time.Second, "the server refused: routing 2001:db8:7::/64 to the client needs ALLOW_NETWORKS covering it in /etc/vpn-pppssh/server.conf")
	// Inside ALLOW_PEERS, but an address the server has (behind it).
	conf = helperConf(t, "vpn", "CLIENT_IFIP6ADDR="+v6Client, "SERVER_IFIP6ADDR=2001:db8:2::1")
	wantFailure(t, conf, 1, 30*time.Second, "the server refused: local 2001:db8:2::1 is an address of this server (vpnlab2)")
	wantClean(t, 10*time.Second)
}

// The tun and ethernet modes carry IPv6 natively, through the helper and
// through OpenSSH's own forwarding (whose server end a root session
// configures). On the host kernel only: under UML the PPP test carries
// IPv6, and the tun tests of IPv4 already run there.
func TestIPv6TunModes(t *testing.T) {
	for _, c := range tunCases {
		t.Run(c.name, func(t *testing.T) {
			needHostTunLab(t)
			extra := v6Addrs(c.mode)
			if c.helper {
				useIPv6Policy(t)
				ipv6BehindServer(t)
				extra = append(extra, "SERVER_NETWORKS="+v6BehindNet, "SERVER_MASQUERADE=yes")
			}
			before := snapshots()
			conf := tunConf(t, c, "vpn", extra...)
			mustStart(t, conf)
			ping(t, lab.ClientNS, "198.51.100.2")
			wantIPv6Carried(t, conf, c.helper)
			if c.helper {
				wantServerIPv6Rules(t)
			}
			if out, code := client(t, "-c", conf, "stop"); code != 0 {
				t.Fatalf("stop: exit %d: %s", code, out)
			}
			wantNoTun(t, 10*time.Second)
			wantSnapshots(t, before, 10*time.Second)
		})
	}
}

// A link without IPv6 addresses takes no IPv6 from its peer: its devices
// have IPv6 turned off at both ends.
func TestIPv6OffWhenNotCarried(t *testing.T) {
	for _, c := range tunCases {
		if !c.helper {
			continue // the same device settings, made by a root session
		}
		t.Run(c.name, func(t *testing.T) {
			needHostTunLab(t)
			conf := tunConf(t, c, "vpn")
			mustStart(t, conf)
			for _, ns := range []string{lab.ClientNS, lab.ServerNS} {
				dev := tunDevice(t, ns)
				v, err := lab.InNS(ns, "cat", "/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6")
				if err != nil || strings.TrimSpace(v) != "1" {
					t.Errorf("%s in %s: disable_ipv6 %q, %v; want 1", dev, ns, v, err)
				}
			}
		})
	}
}

// The SSH server itself on IPv6, with DEFAULT_ROUTE: everything of both
// families goes through the link (::/1 and 8000::/1 too, since it
// carries IPv6), except the SSH server's own address, which keeps its
// /128 route the way it went before.
func TestIPv6SSHServerAndDefaultRoute(t *testing.T) {
	c := tunCase{"tun-helper", "tun", true}
	l := needHostTunLab(t)
	useIPv6Policy(t)
	ipv6BehindServer(t)
	ipSteps(t, [][]string{
		{"-n", lab.ClientNS, "addr", "add", "2001:db8:1::1/64", "dev", "vpnlab0", "nodad"},
		{"-n", lab.ServerNS, "addr", "add", v6SSHServer + "/64", "dev", "vpnlab1", "nodad"},
	}, [][]string{
		{"-n", lab.ClientNS, "addr", "del", "2001:db8:1::1/64", "dev", "vpnlab0"},
		{"-n", lab.ServerNS, "addr", "del", v6SSHServer + "/64", "dev", "vpnlab1"},
	})
	sshd, err := l.StartSSHDAt("sshd6", lab.ServerNS, v6SSHServer, "ssh_host_ed25519_key")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sshd.Stop)
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(sshd.KnownHost+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Before the link, the host behind the server has no IPv6 route from
	// the client at all.
	if out, err := lab.InNS(lab.ClientNS, "ping", "-6", "-c", "1", "-W", "2", v6BehindServer); err == nil {
		t.Fatalf("%s reachable before the link:\n%s", v6BehindServer, out)
	}
	before := snapshots()
	extra := append(v6Addrs(c.mode), "SERVER_HOSTNAME="+v6SSHServer, "SSH_KNOWN_HOSTS="+known,
		"DEFAULT_ROUTE=yes", "SERVER_MASQUERADE=yes")
	conf := tunConf(t, c, "vpn", extra...)
	mustStart(t, conf)
	s := statusJSON(t, conf)
	if !strings.Contains(s.Server, "["+v6SSHServer+"]:22") || s.Via != "2001:db8:1::1" {
		t.Errorf("status: server %q from %q, want [%s]:22 from 2001:db8:1::1", s.Server, s.Via, v6SSHServer)
	}
	routes, err := lab.Sh("ip", "-n", lab.ClientNS, "-6", "route", "show", "proto", "158")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"::/1 dev " + s.Iface, "8000::/1 dev " + s.Iface, v6SSHServer + " dev vpnlab0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("the client's IPv6 routes lack %q:\n%s", want, routes)
		}
	}
	// Only the default route through the link reaches it, masqueraded.
	ping6(t, lab.ClientNS, v6BehindServer)
	ping(t, lab.ClientNS, lab.BehindServerIP)
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantNoTun(t, 10*time.Second)
	wantSnapshots(t, before, 10*time.Second)
}

// kill -9 of a link that carries IPv6, with every IPv6 change in force on
// both ends (routes, IPv6 forwarding, masquerade, the source checks, the
// default route's ::/1 and 8000::/1): stop undoes the client's from its
// journal, the server half undoes its own when the session ends, and both
// namespaces are as before.
func TestIPv6Kill9ThenStop(t *testing.T) {
	c := tunCase{"tun-helper", "tun", true}
	needHostTunLab(t)
	useIPv6Policy(t)
	ipv6BehindServer(t)
	before := snapshots()
	conf := tunConf(t, c, "vpn", append(v6Addrs(c.mode), "SERVER_NETWORKS="+v6BehindNet, "SERVER_MASQUERADE=yes",
		"DEFAULT_ROUTE=yes", "CLIENT_MASQUERADE=yes")...)
	mustStart(t, conf)
	ping6(t, lab.ClientNS, v6BehindServer)
	routes, err := lab.Sh("ip", "-n", lab.ClientNS, "-6", "route", "show", "proto", "158")
	if err != nil || !strings.Contains(routes, "::/1 dev tun") {
		t.Fatalf("the client's IPv6 routes before kill -9: %v\n%s", err, routes)
	}
	kill(t, runningPid(t, conf), syscall.SIGKILL)
	if ok, s := lab.WaitFor(5*time.Second, func() (bool, string) {
		s := statusJSON(t, conf)
		return !s.Running, fmt.Sprintf("%+v", s)
	}); !ok {
		t.Fatalf("still running 5 s after kill -9: %s", s)
	}
	// The device went with the process, and its routes with it; the
	// firewall rules and IPv6 forwarding did not: they are the journal's
	// to undo.
	rules, err := lab.FirewallRules(lab.ClientNS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vpn-pppssh:vpn rpf=", "vpn-pppssh:vpn src=" + v6Server + "/128"} {
		if !strings.Contains(rules, want) {
			t.Errorf("after kill -9 the client's firewall lacks %q (nothing left for stop to undo?):\n%s", want, rules)
		}
	}
	if fwd, err := lab.InNS(lab.ClientNS, "cat", "/proc/sys/net/ipv6/conf/all/forwarding"); err != nil || strings.TrimSpace(fwd) != "1" {
		t.Errorf("the client's IPv6 forwarding after kill -9: %q, %v; want 1, left for stop", fwd, err)
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop after kill -9: exit %d: %s", code, out)
	}
	wantNoTun(t, 10*time.Second)
	wantSnapshots(t, before, 10*time.Second)
}
