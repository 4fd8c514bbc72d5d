//go:build linux

package firewall

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Helpers for tests against the real kernel. Everything happens inside
// network namespaces made for the test, never in the host's own.

var nsCounter atomic.Int32

// needRoot skips t unless it runs as root with the given programs at hand.
func needRoot(t *testing.T, programs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and change their firewall")
	}
	for _, p := range append([]string{"ip"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s to set up and inspect network namespaces (apt-get install iproute2 iptables nftables)", p)
		}
	}
}

// testNS is a named network namespace made for one test.
type testNS struct {
	name string
	fd   int
}

// newNS creates a network namespace that is deleted when t ends, with its
// loopback up.
func newNS(t *testing.T) *testNS {
	t.Helper()
	name := fmt.Sprintf("vpnfw-%d-%d", os.Getpid(), nsCounter.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening netns %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ns := &testNS{name: name, fd: fd}
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run runs a program inside the namespace.
func (ns *testNS) run(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

// try runs a program inside the namespace and reports whether it succeeded.
func (ns *testNS) try(args ...string) bool {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).Run() == nil
}

var saveNoise = regexp.MustCompile(`(?m)^#.*\n`)

// natSave returns `iptables-legacy-save -c -t nat` without its comment
// lines (they carry timestamps). Counters are kept: the backend preserves
// them.
func (ns *testNS) natSave(t *testing.T) string {
	t.Helper()
	return saveNoise.ReplaceAllString(ns.run(t, "iptables-legacy-save", "-c", "-t", "nat"), "")
}

// withoutLines drops the lines that contain any of subs.
func withoutLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		keep := true
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
