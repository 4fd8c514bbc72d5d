package pppssh

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// silencer is a TCP relay to addr that can go silent, as a path does when
// a line goes dead: from then on it forwards nothing either way and
// answers nothing (it reads and drops, so that no write blocks).
type silencer struct {
	addr   string
	silent atomic.Bool
}

func startSilencer(t *testing.T, to string) *silencer {
	t.Helper()
	s := &silencer{}
	s.addr = listenLoopback(t, func(lb *loopback, in net.Conn) {
		out, err := net.Dial("tcp", to)
		if err != nil {
			in.Close()
			return
		}
		lb.track(out)
		lb.wg.Go(func() { s.relay(out, in) })
		s.relay(in, out)
	}).addr
	return s
}

// relay copies from src to dst until src ends, dropping what comes once
// the relay is silent.
func (s *silencer) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !s.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readerCarrier is a carrier shaped as the tun carrier's helper path: a
// server session whose stdout a goroutine reads until it ends, joined by
// Close after closing the session. Only the server, or the connection's
// end, ends that read.
type readerCarrier struct {
	sess   *ssh.Session
	wg     sync.WaitGroup
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func (r *readerCarrier) Prepare(context.Context) error { return nil }

func (r *readerCarrier) Start(_ context.Context, c *ssh.Client) (CarrierInfo, error) {
	s, err := c.NewSession()
	if err != nil {
		return CarrierInfo{}, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		return CarrierInfo{}, err
	}
	if err := s.Start("serve"); err != nil {
		return CarrierInfo{}, err
	}
	r.sess = s
	r.wg.Go(func() {
		io.Copy(io.Discard, out)
		r.end()
	})
	return CarrierInfo{Iface: "tun9"}, nil
}

func (r *readerCarrier) end()                  { r.once.Do(func() { close(r.done) }) }
func (r *readerCarrier) Done() <-chan struct{} { return r.done }
func (r *readerCarrier) Err() error            { return io.EOF }

func (r *readerCarrier) Close() error {
	r.end()
	if r.sess != nil {
		r.sess.Close()
	}
	r.wg.Wait()
	r.closed.Store(true)
	return nil
}

// keptReaderCarrier is a readerCarrier that takes the Link's word that
// the connection was handed over (connKeeper), as the PPP carrier does.
type keptReaderCarrier struct{ *readerCarrier }

func (keptReaderCarrier) keepConnection(<-chan struct{}) {}

// silentLink is a MODE=tun link through a silencer to a server whose
// sessions hang, with a readerCarrier and a keepalive of k.
func silentLink(t *testing.T, k time.Duration) (*Link, *silencer, *readerCarrier) {
	return silentLinkOf(t, k, func(rc *readerCarrier) Carrier { return rc })
}

// silentLinkOf is silentLink with the carrier wrap makes of the
// readerCarrier.
func silentLinkOf(t *testing.T, k time.Duration, wrap func(*readerCarrier) Carrier) (*Link, *silencer, *readerCarrier) {
	t.Helper()
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	relay := startSilencer(t, srv.addr)
	cfg := testConfig(t, relay.addr, srv.hostKey, key, "MODE=tun\n")
	cfg.Keepalive = k
	rc := &readerCarrier{done: make(chan struct{})}
	l, err := New(cfg, Options{Logger: quiet(), Home: t.TempDir(),
		Carrier: func(Config, *slog.Logger) (Carrier, error) { return wrap(rc), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l, relay, rc
}

// closeReturns runs Close and fails the test if it has not returned
// within d; it returns how long Close took.
func closeReturns(t *testing.T, l *Link, d time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	got := make(chan error, 1)
	go func() { got <- l.Close() }()
	select {
	case <-got:
		return time.Since(begin)
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
		return 0
	}
}

// TestSilentPathLinkCloses: once the keepalive has declared the path
// dead, Close does not wait for a session that only the silent server
// could end: the connection goes first, and with it every read.
func TestSilentPathLinkCloses(t *testing.T) {
	old := carrierCloseWait
	carrierCloseWait = time.Minute // only closing the connection first can end the read
	t.Cleanup(func() { carrierCloseWait = old })
	l, relay, rc := silentLink(t, 100*time.Millisecond)
	relay.silent.Store(true)
	err := waitReturns(t, l, 5*time.Second)
	t.Logf("the link ended: %v", err)
	took := closeReturns(t, l, 5*time.Second)
	if !rc.closed.Load() {
		t.Error("Close returned before the carrier's Close")
	}
	if took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	noLinkGoroutines(t)
}

// TestSilentPathUnnoticedLinkCloses: the path goes silent and Close comes
// before the keepalive noticed: the carrier's Close is given
// carrierCloseWait, then the connection is closed under it.
func TestSilentPathUnnoticedLinkCloses(t *testing.T) {
	old := carrierCloseWait
	carrierCloseWait = 300 * time.Millisecond
	t.Cleanup(func() { carrierCloseWait = old })
	l, relay, rc := silentLink(t, time.Hour)
	relay.silent.Store(true)
	took := closeReturns(t, l, 5*time.Second)
	if !rc.closed.Load() {
		t.Error("Close returned before the carrier's Close")
	}
	if took < carrierCloseWait {
		t.Errorf("Close took %v: the connection was closed before the carrier had carrierCloseWait (%v)", took, carrierCloseWait)
	}
	noLinkGoroutines(t)
}

// TestSilentPathKeptConnectionGivenUp: the connection was handed over
// (Detach), the path then went silent, and the closer gives up (a stop):
// the carrier gets carrierCloseWait from then, not the keptSessionWait a
// PPP carrier gives the server's sessions.
func TestSilentPathKeptConnectionGivenUp(t *testing.T) {
	oldWait, oldKept := carrierCloseWait, keptSessionWait
	carrierCloseWait, keptSessionWait = 300*time.Millisecond, time.Minute
	t.Cleanup(func() { carrierCloseWait, keptSessionWait = oldWait, oldKept })
	l, relay, rc := silentLinkOf(t, time.Hour, func(rc *readerCarrier) Carrier { return keptReaderCarrier{rc} })
	rc.end() // the carrier ended by itself: the connection may be handed over
	waitReturns(t, l, 5*time.Second)
	c := l.Detach(5 * time.Second)
	if c == nil {
		t.Fatal("Detach handed nothing over")
	}
	relay.silent.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	begin := time.Now()
	got := make(chan error, 1)
	go func() { got <- l.CloseContext(ctx) }()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("CloseContext went on waiting for the kept sessions after its ctx ended")
	}
	if took := time.Since(begin); took < carrierCloseWait {
		t.Errorf("CloseContext took %v: the carrier had less than carrierCloseWait (%v)", took, carrierCloseWait)
	}
	if !rc.closed.Load() {
		t.Error("CloseContext returned before the carrier's Close")
	}
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
		t.Error("the connection the carrier could not close on is still open")
	}
	noLinkGoroutines(t)
}
