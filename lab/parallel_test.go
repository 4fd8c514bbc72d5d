package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// parallelLinks is how many links TestParallelLinks starts at once: enough
// that one link's addresses change while another lists its own (the
// kernel then marks the netlink dump interrupted, NLM_F_DUMP_INTR).
const parallelLinks = 8

// inParallel runs vpn-pppssh -c conf cmd for every conf at once and fails
// the test for each that does not exit 0.
func inParallel(t *testing.T, confs []string, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // not t.Context(): it has ended when Cleanup stops the links
	defer cancel()
	type result struct {
		conf, out string
		code      int
	}
	done := make(chan result, len(confs))
	for _, c := range confs {
		go func() {
			out, code := needLab(t).Client(ctx, "-c", c, cmd)
			done <- result{c, out, code}
		}()
	}
	for range confs {
		r := <-done
		if r.code != 0 {
			t.Errorf("%s %s: exit %d: %s", r.conf, cmd, r.code, r.out)
			dumpLog(t, r.conf)
		}
	}
}

// busyAddrs is how many addresses the client namespace gets besides the
// links' own, as a busy host has: a dump of them takes several netlink
// messages, and a change between two of them (another link's interface
// getting its address) interrupts it.
const busyAddrs = 2000

// busyHost puts busyAddrs addresses from 198.18.0.0/15 on lo in ns and
// removes them at the end of the test.
func busyHost(t *testing.T, l *lab.Lab, ns string) {
	t.Helper()
	var b strings.Builder
	for i := range busyAddrs {
		fmt.Fprintf(&b, "addr add 198.18.%d.%d/32 dev lo\n", i/250, i%250+1)
	}
	batch := filepath.Join(l.Dir, "busy-addrs")
	if err := os.WriteFile(batch, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := lab.InNS(ns, "ip", "addr", "flush", "dev", "lo", "to", "198.18.0.0/15"); err != nil {
			t.Errorf("removing the busy addresses: %v: %s", err, out)
		}
	})
	if out, err := lab.InNS(ns, "ip", "-batch", batch); err != nil {
		t.Fatalf("adding %d addresses: %v: %s", busyAddrs, err, out)
	}
	out, err := lab.InNS(ns, "ip", "-4", "-o", "addr", "show", "dev", "lo")
	if n := strings.Count(out, "198.18."); err != nil || n != busyAddrs {
		t.Fatalf("lo has %d of the %d addresses (%v)", n, busyAddrs, err)
	}
}

// TestParallelLinks starts many links at the same moment on a host with
// many addresses; each must come up (none may fail on an interrupted
// netlink dump while another link's interface gets its addresses), and
// all must stop cleanly.
func TestParallelLinks(t *testing.T) {
	l := needLab(t)
	busyHost(t, l, lab.ClientNS)
	var confs, clientPairs, serverPairs []string
	for i := range parallelLinks {
		n := 1 + 4*i // 198.51.100.1/2, .5/6, .9/10, ...
		// Eight logins, sudos and pppds at once are slow under UML: the
		// test is about the netlink dumps, not the start-up time.
		confs = append(confs, l.Config(fmt.Sprintf("par%d", i), n, "CONNECT_TIMEOUT=120"))
		clientPairs = append(clientPairs, fmt.Sprintf("198.51.100.%d 198.51.100.%d", n, n+1))
		serverPairs = append(serverPairs, fmt.Sprintf("198.51.100.%d 198.51.100.%d", n+1, n))
	}
	t.Cleanup(func() {
		if t.Failed() {
			inParallel(t, confs, "stop")
		}
	})
	inParallel(t, confs, "start")
	if t.Failed() {
		t.FailNow()
	}
	wantInterfaces(t, lab.ClientNS, 0, clientPairs...)
	wantInterfaces(t, lab.ServerNS, 10*time.Second, serverPairs...)
	for i := range parallelLinks {
		out, code := client(t, "-c", confs[i], "status")
		if code != 0 || !strings.Contains(out, ": up") {
			t.Errorf("status of %s: exit %d: %s", confs[i], code, out)
		}
	}
	inParallel(t, confs, "stop")
	wantClean(t, 10*time.Second)
}
