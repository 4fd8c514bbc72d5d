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

// Namespaces and addresses of the lab's two hosts.
const (
	ClientNS = "vpnlab-c"
	ServerNS = "vpnlab-s"
	ClientIP = "192.0.2.1"
	ServerIP = "192.0.2.2"
)

// Sh runs a command on the host side of the lab and returns its combined
// output; the error includes that output.
func Sh(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	return Sh("ip", append([]string{"netns", "exec", ns, name}, args...)...)
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
	}
	for _, s := range steps {
		if _, err := Sh("ip", s...); err != nil {
			return err
		}
	}
	return nil
}

func teardownNetwork() {
	for _, ns := range []string{ClientNS, ServerNS} {
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
// "pid args" lines.
func Processes(comm string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
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
	deadline := time.Now().Add(timeout)
	for {
		ok, what := cond()
		if ok || time.Now().After(deadline) {
			return ok, what
		}
		time.Sleep(50 * time.Millisecond)
	}
}
