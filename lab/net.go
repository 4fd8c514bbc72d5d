package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Namespaces and addresses of the lab's hosts: a client and a server on
// 192.0.2.0/24, a host behind the server on 203.0.113.0/24 with no route
// back to the tunnel, and a host behind the client on 198.18.0.0/24 whose
// default route is the client.
const (
	ClientNS = "vpnlab-c"
	ServerNS = "vpnlab-s"
	ClientIP = "192.0.2.1"
	ServerIP = "192.0.2.2"

	BehindServerNS  = "vpnlab-n"
	BehindServerIP  = "203.0.113.2"
	BehindServerNet = "203.0.113.0/24"
	BehindClientNS  = "vpnlab-b"
	BehindClientIP  = "198.18.0.2"
	BehindClientNet = "198.18.0.0/24"
)

// Sh runs a command on the host side of the lab and returns its combined
// output; the error includes that output.
func Sh(name string, args ...string) (string, error) {
	return shWithin(2*time.Minute, name, args...)
}

// shWithin is Sh for a command that may take longer than two minutes.
func shWithin(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// InNS runs a command inside a network namespace.
func InNS(ns, name string, args ...string) (string, error) {
	return inNSWithin(2*time.Minute, ns, name, args...)
}

// inNSWithin is InNS for a command that may take longer than two minutes.
func inNSWithin(timeout time.Duration, ns, name string, args ...string) (string, error) {
	return shWithin(timeout, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// setupNetwork creates the two namespaces and the veth between them.
func setupNetwork() error {
	teardownNetwork()
	steps := [][]string{
		{"netns", "add", ClientNS},
		{"netns", "add", ServerNS},
		{"link", "add", "vpnlab0", "netns", ClientNS, "type", "veth", "peer", "name", "vpnlab1", "netns", ServerNS},
		{"-n", ClientNS, "addr", "add", ClientIP + "/24", "dev", "vpnlab0"},
		{"-n", ServerNS, "addr", "add", ServerIP + "/24", "dev", "vpnlab1"},
		{"-n", ClientNS, "link", "set", "vpnlab0", "up"},
		{"-n", ServerNS, "link", "set", "vpnlab1", "up"},
		{"-n", ClientNS, "link", "set", "lo", "up"},
		{"-n", ServerNS, "link", "set", "lo", "up"},

		{"netns", "add", BehindServerNS},
		{"link", "add", "vpnlab2", "netns", ServerNS, "type", "veth", "peer", "name", "vpnlab3", "netns", BehindServerNS},
		{"-n", ServerNS, "addr", "add", "203.0.113.1/24", "dev", "vpnlab2"},
		{"-n", BehindServerNS, "addr", "add", BehindServerIP + "/24", "dev", "vpnlab3"},
		{"-n", ServerNS, "link", "set", "vpnlab2", "up"},
		{"-n", BehindServerNS, "link", "set", "vpnlab3", "up"},
		{"-n", BehindServerNS, "link", "set", "lo", "up"},

		{"netns", "add", BehindClientNS},
		{"link", "add", "vpnlab4", "netns", ClientNS, "type", "veth", "peer", "name", "vpnlab5", "netns", BehindClientNS},
		{"-n", ClientNS, "addr", "add", "198.18.0.1/24", "dev", "vpnlab4"},
		{"-n", BehindClientNS, "addr", "add", BehindClientIP + "/24", "dev", "vpnlab5"},
		{"-n", ClientNS, "link", "set", "vpnlab4", "up"},
		{"-n", BehindClientNS, "link", "set", "vpnlab5", "up"},
		{"-n", BehindClientNS, "link", "set", "lo", "up"},
		{"-n", BehindClientNS, "route", "add", "default", "via", "198.18.0.1"},
	}
	for _, s := range steps {
		if _, err := Sh("ip", s...); err != nil {
			return err
		}
	}
	return nil
}

func teardownNetwork() {
	for _, ns := range []string{ClientNS, ServerNS, BehindServerNS, BehindClientNS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			Sh("ip", "netns", "del", ns)
		}
	}
}

// PPPInterfaces lists the ppp interfaces of a namespace with their IPv4
// addresses, one "name local peer" line each.
func PPPInterfaces(ns string) ([]string, error) {
	out, err := Sh("ip", "-n", ns, "-o", "-4", "addr", "show")
	if err != nil {
		return nil, err
	}
	var ifs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[1], "ppp") && f[4] == "peer" {
			ifs = append(ifs, f[1]+" "+f[3]+" "+strings.TrimSuffix(f[5], "/32"))
		}
	}
	links, err := Sh("ip", "-n", ns, "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], "ppp") {
			name := strings.TrimSuffix(f[1], ":")
			if !hasPrefixAny(ifs, name+" ") {
				ifs = append(ifs, name+" (no address)")
			}
		}
	}
	return ifs, nil
}

func hasPrefixAny(list []string, p string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Processes lists running processes whose command name is comm, as
// "pid args" lines. It panics when /proc cannot be read.
func Processes(comm string) []string {
	var out []string
	ents, err := os.ReadDir("/proc")
	if err != nil || len(ents) == 0 {
		// An empty list would read as "nothing left running": a check
		// that cannot look must not pass.
		panic(fmt.Sprintf("lab: cannot list processes in /proc (%d entries): %v", len(ents), err))
	}
	for _, e := range ents {
		c, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		args, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, e.Name()+" "+strings.ReplaceAll(strings.TrimRight(string(args), "\x00"), "\x00", " "))
	}
	return out
}

// WaitFor polls cond until it holds or the deadline passes; it returns the
// last description cond gave. Polling with a deadline is how the lab waits
// for another kernel's or process's state, never a bare sleep.
func WaitFor(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	return WaitForEvery(timeout, 50*time.Millisecond, cond)
}

// WaitForEvery is WaitFor polling every interval (a measurement should
// not poll: see filewatch).
func WaitForEvery(timeout, interval time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, what := cond()
		if ok || time.Now().After(deadline) {
			return ok, what
		}
		time.Sleep(interval)
	}
}

// withoutLinkLocal drops the IPv6 link-local and multicast routes the
// kernel adds by itself once a link's duplicate address detection is done,
// whenever that is: they say nothing about what a test changed.
func withoutLinkLocal(routes string) string {
	var keep []string
	for _, l := range strings.Split(routes, "\n") {
		if !strings.Contains(l, "fe80::") && !strings.Contains(l, "ff00::/8") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// Snapshot is a namespace's routing and firewall state as text: every
// route in every table of both families, forwarding, the legacy iptables
// and ip6tables rules and the nftables ruleset (whichever the kernel has),
// without counters.
func Snapshot(ns string) string {
	var b strings.Builder
	routes, err := Sh("ip", "-n", ns, "-4", "route", "show", "table", "all")
	fmt.Fprintf(&b, "routes (%v):\n%s", err, withoutLinkLocal(routes))
	routes, err = Sh("ip", "-n", ns, "-6", "route", "show", "table", "all")
	fmt.Fprintf(&b, "IPv6 routes (%v):\n%s", err, withoutLinkLocal(routes))
	fwd, _ := InNS(ns, "cat", "/proc/sys/net/ipv4/ip_forward")
	fmt.Fprintf(&b, "ip_forward=%s", fwd)
	fwd, _ = InNS(ns, "cat", "/proc/sys/net/ipv6/conf/all/forwarding")
	fmt.Fprintf(&b, "IPv6 forwarding=%s", fwd)
	for _, cmd := range [][]string{{"iptables-legacy-save"}, {"ip6tables-legacy-save"}, {"nft", "list", "ruleset"}} {
		out, err := InNS(ns, cmd[0], cmd[1:]...)
		if err != nil {
			// Recorded, not skipped: a backend that stops answering is a
			// difference too.
			fmt.Fprintf(&b, "%s: unavailable: %v\n", cmd[0], err)
			continue
		}
		fmt.Fprintf(&b, "%s:\n", cmd[0])
		for _, l := range strings.Split(out, "\n") {
			if cmd[0] != "nft" && !meaningfulRuleLine(l) {
				continue
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// meaningfulRuleLine keeps rules, user chains and non-default policies: a
// table that was merely looked at (the kernel instantiates it empty, with
// ACCEPT policies, and keeps it) is not a change.
func meaningfulRuleLine(l string) bool {
	switch {
	case strings.HasPrefix(l, "-"):
		return true
	case strings.HasPrefix(l, ":"):
		f := strings.Fields(l)
		return len(f) >= 2 && f[1] != "ACCEPT"
	}
	return false
}

// FirewallRules returns the namespace's firewall rules from both backends
// the tool may use: `iptables-legacy-save` and `ip6tables-legacy-save`
// (nat and raw tables included) and `nft list ruleset`. A backend the kernel lacks contributes a line saying
// so; when neither can be read it is an error, so that a leak check never
// passes for want of looking.
func FirewallRules(ns string) (string, error) {
	var b strings.Builder
	var errs []string
	cmds := [][]string{{"iptables-legacy-save"}, {"ip6tables-legacy-save"}, {"nft", "list", "ruleset"}}
	for _, cmd := range cmds {
		out, err := InNS(ns, cmd[0], cmd[1:]...)
		if err != nil {
			errs = append(errs, err.Error())
			fmt.Fprintf(&b, "# %s: unavailable\n", cmd[0])
			continue
		}
		fmt.Fprintf(&b, "# %s:\n%s", cmd[0], out)
	}
	if len(errs) == len(cmds) {
		return "", fmt.Errorf("reading the firewall of %s: %s", ns, strings.Join(errs, "; "))
	}
	return b.String(), nil
}

// TunInterfaces lists the tun and tap devices of a namespace with their
// IPv4 addresses, one "kind local[ peer P]/len" line each ("tun
// 198.51.100.1 peer 198.51.100.2/32", "tap 198.51.100.1/24", or "tap -"
// for a device without an address).
func TunInterfaces(ns string) ([]string, error) {
	out, err := Sh("ip", "-n", ns, "-d", "-o", "link", "show", "type", "tun")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		kind := "tun"
		if strings.Contains(line, " tap ") {
			kind = "tap"
		}
		addrs, err := Sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", name)
		if err != nil {
			return nil, err
		}
		got := kind + " -"
		for _, a := range strings.Split(strings.TrimSpace(addrs), "\n") {
			_, rest, ok := strings.Cut(a, " inet ")
			if !ok {
				continue
			}
			rest, _, _ = strings.Cut(rest, " scope ")
			rest, _, _ = strings.Cut(rest, " brd ")
			got = kind + " " + rest
		}
		lines = append(lines, got)
	}
	return lines, nil
}
