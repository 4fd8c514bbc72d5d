package device

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
)

// testNS is a network namespace made for one test, with a netlink handle
// in it. The namespace goes when its last reference does: the handle and
// fd (closed in t.Cleanup), the threads that entered it (they exit while
// locked, so the runtime drops them) and the devices made in it.
type testNS struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

// needTun skips the test when it cannot make devices on this host.
func needTun(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and tun devices")
	}
	if _, err := os.Stat(cloneDevice); err != nil {
		t.Skipf("needs the tun driver: %v", err)
	}
}

// newNS makes a fresh network namespace for t.
func newNS(t *testing.T) *testNS {
	t.Helper()
	needTun(t)
	var (
		ns  netns.NsHandle
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread is dropped
		ns, err = netns.New()
	}()
	<-done
	if err != nil {
		t.Fatalf("creating a network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in the test namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return &testNS{ns: ns, nl: h}
}

// do runs f on a thread inside the namespace; the thread is dropped
// afterwards.
func (n *testNS) do(f func()) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err = netns.Set(n.ns); err != nil {
			err = fmt.Errorf("entering the test namespace: %w", err)
			return
		}
		f()
	}()
	<-done
	return err
}

// create runs Create in the namespace and closes the device at cleanup.
func (n *testNS) create(t *testing.T, cfg Config) (*Device, error) {
	t.Helper()
	var (
		d   *Device
		err error
	)
	if nsErr := n.do(func() { d, err = Create(cfg) }); nsErr != nil {
		t.Fatal(nsErr)
	}
	if d != nil {
		t.Cleanup(func() { d.Close() })
	}
	return d, err
}

// mustCreate is create that fails the test on error.
func (n *testNS) mustCreate(t *testing.T, cfg Config) *Device {
	t.Helper()
	d, err := n.create(t, cfg)
	if err != nil {
		t.Fatalf("Create(%+v): %v", cfg, err)
	}
	return d
}

// links is the namespace's links as text, one per line, sorted: name,
// kind, master index, up or down. Comparing it before and after shows
// what an operation left behind.
func (n *testNS) links(t *testing.T) string {
	t.Helper()
	ls, err := nldump.Retry(n.nl.LinkList)
	if err != nil {
		t.Fatalf("listing links: %v", err)
	}
	var lines []string
	for _, l := range ls {
		a := l.Attrs()
		state := "down"
		if a.Flags&1 != 0 { // net.FlagUp
			state = "up"
		}
		lines = append(lines, fmt.Sprintf("%s %s master=%d %s", a.Name, l.Type(), a.MasterIndex, state))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// gone reports whether the link with index i no longer exists; any other
// error fails the test.
func (n *testNS) gone(t *testing.T, i int) bool {
	t.Helper()
	_, err := n.nl.LinkByIndex(i)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return true
	}
	if err != nil {
		t.Fatalf("looking up link %d: %v", i, err)
	}
	return false
}
