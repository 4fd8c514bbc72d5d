package pppssh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeCarrier is a Carrier that brings up nothing: it records what the
// Link asked of it, and ends when the test says or when it is closed, as
// package tunnel's does (its Close closes Done).
type fakeCarrier struct {
	mu       sync.Mutex
	prepared bool
	client   *ssh.Client
	closes   int
	kept     int // keepConnection calls before the first Close

	done chan struct{}
	once sync.Once
	err  error
}

func newFakeCarrier() *fakeCarrier { return &fakeCarrier{done: make(chan struct{})} }

func (f *fakeCarrier) Prepare(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepared = true
	return nil
}

func (f *fakeCarrier) Start(_ context.Context, c *ssh.Client) (CarrierInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.prepared {
		return CarrierInfo{}, errors.New("Start before Prepare")
	}
	f.client = c
	return CarrierInfo{Iface: "tun9", ServerIface: "tun3"}, nil
}

func (f *fakeCarrier) end(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.done)
	})
}

func (f *fakeCarrier) Done() <-chan struct{} { return f.done }
func (f *fakeCarrier) Err() error            { return f.err }

// keepConnection: the Link handed the connection over (connKeeper).
func (f *fakeCarrier) keepConnection(<-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closes == 0 {
		f.kept++
	}
}

func (f *fakeCarrier) Close() error {
	f.mu.Lock()
	f.closes++
	f.mu.Unlock()
	f.end(errors.New("fake carrier closed"))
	return nil
}

// fakeLink is a MODE=tun link to srv whose carrier is fake.
func fakeLink(t *testing.T, srv *sessionServer, key ed25519.PrivateKey) (*Link, *fakeCarrier) {
	t.Helper()
	cfg := testConfig(t, srv.addr, srv.hostKey, key, "MODE=tun\n")
	f := newFakeCarrier()
	l, err := New(cfg, Options{Logger: quiet(), Home: t.TempDir(),
		Carrier: func(c Config, _ *slog.Logger) (Carrier, error) {
			if c.Mode != ModeTUN {
				t.Errorf("carrier made for mode %q", c.Mode)
			}
			return f, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return l, f
}

// TestLinkRunsAnyCarrier: the Link dials, hands the carrier the
// connection, completes its report with the configuration and the
// stand-ins for pppd's arguments, and ends when the carrier does.
func TestLinkRunsAnyCarrier(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	l, f := fakeLink(t, srv, key)
	info, err := l.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := CarrierInfo{Mode: ModeTUN, Iface: "tun9", ServerIface: "tun3", TTY: DeviceTTY, Speed: NoSpeed,
		Local: netip.MustParseAddr("198.51.100.1"), Remote: netip.MustParseAddr("198.51.100.2")}
	if !reflect.DeepEqual(info.CarrierInfo, want) || info.Name != "vpn" || info.ServerAddr != netip.MustParseAddr("127.0.0.1") ||
		!strings.HasPrefix(info.Server, "vpn@127.0.0.1:") {
		t.Errorf("info %+v,\nwant carrier %+v", info, want)
	}
	if f.client == nil {
		t.Error("the carrier was not given the connection")
	}
	ended := errors.New("the device went away")
	f.end(ended)
	if err := waitReturns(t, l, 5*time.Second); err != ended {
		t.Errorf("Wait = %v, want the carrier's %v", err, ended)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	noLinkGoroutines(t)
	if err := l.Close(); err != nil || f.closes != 1 {
		t.Errorf("second Close: %v; the carrier was closed %d times, want 1", err, f.closes)
	}
	if err := l.Wait(); err != ended {
		t.Errorf("Wait after Close = %v, still want %v", err, ended)
	}
}

// TestCloseIsNoEndOfTheCarrier: a carrier's Close closes its Done; Wait
// still says the link was closed, not that the carrier ended by itself.
// The monitor sees both at once when it runs late, so this is tried a
// number of times.
func TestCloseIsNoEndOfTheCarrier(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	for i := range 30 {
		l, _ := fakeLink(t, srv, key)
		if _, err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Wait(); !errors.Is(err, ErrClosed) {
			t.Fatalf("try %d: Wait after Close = %v, want ErrClosed", i, err)
		}
	}
}

// TestModeNeedsItsCarrier: without a carrier for tun and ethernet, New
// refuses those modes and touches nothing.
func TestModeNeedsItsCarrier(t *testing.T) {
	hk, _ := newSigner(t)
	_, key := newSigner(t)
	for _, mode := range []string{ModeTUN, ModeEthernet} {
		cfg := testConfig(t, "127.0.0.1:9", hk.PublicKey(), key, "MODE="+mode+"\n")
		_, err := New(cfg, Options{Logger: quiet(), Home: t.TempDir()})
		if err == nil || err.Error() != "MODE="+mode+" is not available in this build" {
			t.Errorf("MODE=%s without a carrier: %v", mode, err)
		}
	}
}

// renewingCarrier is a fakeCarrier that can go down in place: the test
// sends on lapsed, and Renewed returns what it sends on back. Its Renewed
// watches only ctx, not the carrier's end: the Link must end the wait.
type renewingCarrier struct {
	*fakeCarrier
	lapsed chan struct{}
	back   chan CarrierInfo
}

func (r *renewingCarrier) Lapsed() <-chan struct{} { return r.lapsed }
func (r *renewingCarrier) Renewed(ctx context.Context) (CarrierInfo, error) {
	select {
	case ci := <-r.back:
		return ci, nil
	case <-ctx.Done():
		return CarrierInfo{}, context.Cause(ctx)
	}
}

// TestLinkRenewed: a carrier that went down in place is reported up again
// by Renewed with the rest of the link's report kept; when the link ends
// during the wait, Renewed says so instead of waiting out CONNECT_TIMEOUT.
// A carrier that cannot come back in place has no lapses and no renewal.
func TestLinkRenewed(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	l, _ := fakeLink(t, srv, key)
	if l.Lapsed() != nil {
		t.Error("lapses before Start")
	}
	if _, err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Lapsed() != nil {
		t.Error("lapses of a carrier that cannot come back in place")
	}
	if _, err := l.Renewed(context.Background()); err == nil {
		t.Error("a renewal of a carrier that cannot come back in place")
	}
	l.Close()

	r := &renewingCarrier{fakeCarrier: newFakeCarrier(), lapsed: make(chan struct{}, 1), back: make(chan CarrierInfo, 1)}
	cfg := testConfig(t, srv.addr, srv.hostKey, key, "MODE=tun\n")
	l, err := New(cfg, Options{Logger: quiet(), Home: t.TempDir(),
		Carrier: func(Config, *slog.Logger) (Carrier, error) { return r, nil }})
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if l.Lapsed() != r.lapsed {
		t.Fatal("the carrier's lapses are not the link's")
	}
	r.back <- CarrierInfo{Iface: "tun4"}
	info, err := l.Renewed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Iface != "tun4" || info.Mode != ModeTUN || info.Server != first.Server || info.ServerAddr != first.ServerAddr ||
		!info.Since.After(first.Since) {
		t.Errorf("renewed %+v,\nfirst up %+v", info, first)
	}
	ended := errors.New("the device went away")
	r.end(ended) // the Link's monitor sees it before or during the wait
	begin := time.Now()
	if _, err := l.Renewed(context.Background()); !errors.Is(err, ended) {
		t.Errorf("Renewed as the link ended = %v, want it to wrap %v", err, ended)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Renewed took %v to see the link's end", took)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	noLinkGoroutines(t)
}

func TestRenewedAfter(t *testing.T) {
	refused := errors.New("the server could not apply its side: route exists")
	for _, c := range []struct {
		name     string
		k        int
		judged   bool
		verdict  error
		ups      int
		live     bool
		whole    bool
		wantFail bool
	}{
		{"restart announced, nothing since", 1, false, nil, 1, true, false, false},
		{"local pppd down in place", 1, false, nil, 1, false, false, false},
		{"local pppd up again, no verdict yet", 1, false, nil, 2, true, false, false},
		{"verdict ready, local pppd not up again yet", 1, true, nil, 1, false, false, false},
		{"verdict ready, the old round still up", 1, true, nil, 1, true, false, false},
		{"both", 1, true, nil, 2, true, true, false},
		{"two restarts, one renegotiation", 2, true, nil, 2, true, false, false},
		{"two restarts, two renegotiations", 2, true, nil, 3, true, true, false},
		{"refused", 1, true, refused, 2, true, false, true},
		{"refused before the local pppd came back", 1, true, refused, 1, false, false, true},
	} {
		whole, err := renewedAfter(c.k, c.judged, c.verdict, c.ups, c.live)
		if whole != c.whole || (err != nil) != c.wantFail || c.wantFail && !errors.Is(err, refused) {
			t.Errorf("%s: %v, %v; want %v, failure %v", c.name, whole, err, c.whole, c.wantFail)
		}
	}
}

// Renewed waits for the helper's verdict and the local pppd's renewal,
// takes an announcement its wait already counted, and keeps one made
// since; the helper's failure ends the wait.
func TestPPPCarrierRenewedWaits(t *testing.T) {
	newCarrier := func() (*pppCarrier, *pppdWatcher, *serverSession) {
		w := newPPPDWatcher()
		w.renews = true
		for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2"} {
			w.line(l)
		}
		srv := &serverSession{ready: make(chan error, 1), restarts: newRestartLog()}
		srv.verdict(nil) // the first: the link's start
		// Addresses the configuration does not have: negotiated fails at
		// once after the wait, touching no interface.
		c := &pppCarrier{cfg: Config{ClientIfAddr: netip.MustParseAddr("198.51.100.9")},
			pppd: &pppdProc{watch: w}, srv: srv, done: make(chan struct{})}
		return c, w, srv
	}
	c, w, srv := newCarrier()
	srv.serverLine(ServerRestartMarker)
	<-srv.restarts.announcements()      // taken by the supervisor, whose renewal follows
	srv.serverLine(ServerRestartMarker) // a second, announced before the renewal ends
	got := make(chan error, 1)
	go func() {
		_, err := c.Renewed(context.Background())
		got <- err
	}()
	for range 2 {
		w.line("Connect time 0.1 minutes.")
		w.line("local  IP address 198.51.100.1")
		w.line("remote IP address 198.51.100.2")
	}
	srv.serverLine(ServerReadyMarker)
	if err := <-got; err == nil || !strings.Contains(err.Error(), "pppd negotiated") {
		t.Fatalf("Renewed = %v, want it past the wait, at the address check", err)
	}
	if fired(srv.restarts.announcements()) {
		t.Error("an announcement the wait counted was left for a second renewal")
	}

	c, _, srv = newCarrier()
	srv.serverLine(ServerRestartMarker)
	<-srv.restarts.announcements()
	go func() {
		_, err := c.Renewed(context.Background())
		got <- err
	}()
	srv.serverLine(ServerFailedMarker + "applying the server's routes: route exists")
	if err := <-got; err == nil || !strings.Contains(err.Error(), "route exists") {
		t.Fatalf("Renewed after the helper's failure = %v", err)
	}
}

// watch ends the carrier when the local pppd renegotiated with no restart
// announced (after markerGrace), and not when the helper announced it,
// even if its word comes after the renegotiation.
func TestPPPCarrierWatchRenegotiation(t *testing.T) {
	defer func(g time.Duration) { markerGrace = g }(markerGrace)
	markerGrace = 50 * time.Millisecond
	start := func() (*pppCarrier, *pppdWatcher, *serverSession, chan struct{}) {
		w := newPPPDWatcher()
		w.renews = true
		for _, l := range []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2"} {
			w.line(l)
		}
		srv := &serverSession{ready: make(chan error, 1), restarts: newRestartLog(), ended: make(chan struct{})}
		srv.verdict(nil) // the first: the link's start
		c := &pppCarrier{pppd: &pppdProc{watch: w, exited: make(chan struct{})}, srv: srv,
			done: make(chan struct{}), closing: make(chan struct{})}
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			c.watch()
		}()
		return c, w, srv, returned
	}
	renegotiate := func(w *pppdWatcher) {
		w.line("Connect time 0.1 minutes.")
		w.line("local  IP address 198.51.100.1")
		w.line("remote IP address 198.51.100.2")
	}

	c, w, _, returned := start()
	renegotiate(w)
	<-returned
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "renegotiated") {
		t.Errorf("an unannounced renegotiation: %v", err)
	}

	c, w, srv, returned := start()
	renegotiate(w)
	srv.serverLine(ServerRestartMarker) // late, within the grace
	srv.serverLine(ServerReadyMarker)
	renegotiate(w) // a second, its restart announced just after
	srv.serverLine(ServerRestartMarker)
	// Several graces: an announced renegotiation must not end it at
	// the end of one.
	select {
	case <-returned:
		t.Fatalf("announced renegotiations ended the carrier: %v", c.Err())
	case <-time.After(5 * markerGrace):
	}
	close(c.closing)
	<-returned
	if err := c.Err(); err != nil {
		t.Errorf("announced renegotiations ended the carrier: %v", err)
	}
}

// A restart marker before the helper's first verdict restarts no link
// that was up: it is not counted.
func TestRestartMarkerBeforeTheFirstVerdict(t *testing.T) {
	srv := &serverSession{ready: make(chan error, 1), restarts: newRestartLog()}
	srv.serverLine(ServerRestartMarker)
	srv.serverLine(ServerReadyMarker)
	if n, _, _, _ := srv.restarts.state(); n != 0 || fired(srv.restarts.announcements()) {
		t.Errorf("a restart before the first verdict counted: %d, announced %v", n, n != 0)
	}
	if err := <-srv.ready; err != nil {
		t.Errorf("first verdict %v", err)
	}
}
