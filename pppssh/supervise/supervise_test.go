package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSession is a session that ends when the test says.
type fakeSession struct {
	name     string
	done     chan struct{}
	err      error
	closeErr error
	closed   int
}

func newSession(name string) *fakeSession {
	return &fakeSession{name: name, done: make(chan struct{})}
}

func (f *fakeSession) end(err error) *fakeSession {
	f.err = err
	close(f.done)
	return f
}

func (f *fakeSession) Done() <-chan struct{} { return f.done }
func (f *fakeSession) Wait() error           { <-f.done; return f.err }
func (f *fakeSession) Close(context.Context) error {
	f.closed++
	return f.closeErr
}

var errPermanent = errors.New("host key changed")

// fakeDriver dials from a script, one result per dial, and writes down
// every phase it is told as text: "connecting", "up (redials N)",
// "waiting Ds (last error: E)".
type fakeDriver struct {
	t       *testing.T
	clock   *fakeClock
	script  []any // a Session or an error, in dial order
	dials   int
	log     []string
	server  string
	onPhase func(Status)
}

func (d *fakeDriver) Dial(_ context.Context, connecting func()) (Session, error) {
	if d.dials >= len(d.script) {
		d.t.Errorf("dial %d: the script has %d", d.dials+1, len(d.script))
		return nil, errPermanent
	}
	r := d.script[d.dials]
	d.dials++
	if err, ok := r.(error); ok && errors.Is(err, errConfig) {
		return nil, err // refused before dialling: nothing published
	}
	connecting()
	if err, ok := r.(error); ok {
		return nil, err
	}
	return r.(Session), nil
}

var errConfig = errors.New("missing required key SERVER_HOSTNAME")

func (d *fakeDriver) Server() string { return d.server }

func (d *fakeDriver) Publish(s Status) {
	line := string(s.Phase)
	switch s.Phase {
	case Up:
		line += fmt.Sprintf(" (redials %d)", s.Redials)
	case Waiting:
		line += fmt.Sprintf(" %v", s.NextAttempt.Sub(d.clock.now()))
		if s.LastError != nil {
			line += " (last error: " + s.LastError.Error() + ")"
		}
	}
	d.log = append(d.log, line)
	if d.onPhase != nil {
		d.onPhase(s)
	}
}

func (d *fakeDriver) Permanent(err error) bool { return errors.Is(err, errPermanent) }

// fakeClock stands still unless advanced; a wait ends at once (fire) or
// never.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	fire  bool
	waits []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if !c.fire {
		return nil
	}
	ch := make(chan time.Time, 1)
	ch <- c.t
	return ch
}

func newSupervisor(t *testing.T, cfg Config, script ...any) (*Supervisor, *fakeDriver, *fakeClock, chan os.Signal) {
	clock := &fakeClock{t: time.Unix(1700000000, 0), fire: true}
	d := &fakeDriver{t: t, clock: clock, script: script}
	redial := make(chan os.Signal, 1)
	s := New(d, cfg, redial, slog.New(slog.DiscardHandler))
	s.now, s.after = clock.now, clock.after
	return s, d, clock, redial
}

func connect(t *testing.T, s *Supervisor) Session {
	t.Helper()
	sess, err := s.Connect(context.Background())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return sess
}

// run is s.Run(ctx, sess), given 10 s: a supervisor that waits for ever
// fails the test rather than hanging it.
func run(t *testing.T, s *Supervisor, ctx context.Context, sess Session) error {
	t.Helper()
	ended := make(chan error, 1)
	go func() { ended <- s.Run(ctx, sess) }()
	select {
	case err := <-ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s")
		return nil
	}
}

func wantLog(t *testing.T, d *fakeDriver, want ...string) {
	t.Helper()
	if got := strings.Join(d.log, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("published:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestBackoffDoublesUntilMaxFail: failed redials wait 1 s, 2 s, 4 s … up
// to HoldoffMax, and MAXFAIL failures in a row end Run with the last one.
func TestBackoffDoublesUntilMaxFail(t *testing.T) {
	refused := errors.New("connecting to 192.0.2.2:22: connection refused")
	s1 := newSession("s1")
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: 4 * time.Second, MaxFail: 5},
		s1, refused, refused, refused, refused, refused)
	sess := connect(t, s)
	s1.end(errors.New("local pppd ended"))
	err := run(t, s, context.Background(), sess)
	if !errors.Is(err, refused) || err.Error() != "giving up after 5 failed redials (MAXFAIL): "+refused.Error() {
		t.Errorf("Run = %v", err)
	}
	if fmt.Sprint(clock.waits) != "[1s 2s 4s 4s 4s]" {
		t.Errorf("waits %v, want [1s 2s 4s 4s 4s]", clock.waits)
	}
	if s1.closed != 1 {
		t.Errorf("the session that ended was closed %d times, want 1", s1.closed)
	}
	e1, e2 := "local pppd ended", refused.Error()
	wantLog(t, d, "connecting", "up (redials 0)",
		"waiting 1s (last error: "+e1+")", "connecting",
		"waiting 2s (last error: "+e2+")", "connecting",
		"waiting 4s (last error: "+e2+")", "connecting",
		"waiting 4s (last error: "+e2+")", "connecting",
		"waiting 4s (last error: "+e2+")", "connecting")
}

// TestRedialComesBack: a redial that succeeds counts, resets the failures
// (MAXFAIL counts them in a row) and is supervised in turn; ctx ending
// takes it down and Run returns nil.
func TestRedialComesBack(t *testing.T) {
	refused := errors.New("connection refused")
	s1, s2, s3 := newSession("s1"), newSession("s2"), newSession("s3")
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second, MaxFail: 2},
		s1, refused, s2, refused, s3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Up && st.Redials == 1:
			s2.end(errors.New("session lost"))
		case st.Phase == Up && st.Redials == 2:
			cancel()
		}
	}
	sess := connect(t, s)
	s1.end(errors.New("keepalive"))
	if err := run(t, s, ctx, sess); err != nil {
		t.Errorf("Run after ctx ended = %v, want nil", err)
	}
	if s1.closed != 1 || s2.closed != 1 || s3.closed != 1 {
		t.Errorf("closed s1 %d, s2 %d, s3 %d times; want once each", s1.closed, s2.closed, s3.closed)
	}
	if fmt.Sprint(clock.waits) != "[1s 2s 4s 8s]" {
		t.Errorf("waits %v, want [1s 2s 4s 8s]", clock.waits)
	}
	wantLog(t, d, "connecting", "up (redials 0)",
		"waiting 1s (last error: keepalive)", "connecting",
		"waiting 2s (last error: connection refused)", "connecting", "up (redials 1)",
		"waiting 4s (last error: session lost)", "connecting",
		"waiting 8s (last error: connection refused)", "connecting", "up (redials 2)")
}

// TestPermanentErrorEndsRun: a host key problem is not redialled.
func TestPermanentErrorEndsRun(t *testing.T) {
	s1 := newSession("s1")
	s, d, _, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: time.Second}, s1, errPermanent)
	sess := connect(t, s)
	s1.end(errors.New("session lost"))
	if err := run(t, s, context.Background(), sess); err != errPermanent {
		t.Errorf("Run = %v, want the permanent error itself", err)
	}
	if d.dials != 2 {
		t.Errorf("%d dials, want 2", d.dials)
	}
}

// TestPersistOffEndsRun: without PERSIST the first end is the last, and a
// failure to take the session down is said too.
func TestPersistOffEndsRun(t *testing.T) {
	s1 := newSession("s1")
	s1.closeErr = errors.New("removing route 203.0.113.0/24: no such process")
	s, d, clock, _ := newSupervisor(t, Config{HoldoffMax: time.Second}, s1)
	sess := connect(t, s)
	reason := errors.New("local pppd ended")
	s1.end(reason)
	err := run(t, s, context.Background(), sess)
	if !errors.Is(err, reason) || !errors.Is(err, s1.closeErr) || !strings.HasPrefix(err.Error(), "link ended: local pppd ended") {
		t.Errorf("Run = %v", err)
	}
	if d.dials != 1 || len(clock.waits) != 0 || s1.closed != 1 {
		t.Errorf("dials %d, waits %v, closed %d: want 1, none, 1", d.dials, clock.waits, s1.closed)
	}
}

// TestRedialSignal: a value on the redial channel takes the session down
// and dials at once, without a wait; during a wait it cuts it short.
func TestRedialSignal(t *testing.T) {
	s1, s2, s3 := newSession("s1"), newSession("s2"), newSession("s3")
	refused := errors.New("connection refused")
	s, d, clock, redial := newSupervisor(t, Config{Persist: true, HoldoffMax: time.Minute}, s1, s2, refused, s3)
	clock.fire = false // a wait ends only when the redial channel says
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Up && st.Redials == 1:
			s2.end(errors.New("session lost"))
		case st.Phase == Waiting:
			redial <- os.Interrupt
		case st.Phase == Up && st.Redials == 2:
			cancel()
		}
	}
	sess := connect(t, s)
	redial <- os.Interrupt
	if err := run(t, s, ctx, sess); err != nil {
		t.Errorf("Run = %v", err)
	}
	if fmt.Sprint(clock.waits) != "[1s 2s]" {
		t.Errorf("waits %v: want none after the signal, then 1s and 2s, each cut short", clock.waits)
	}
	if s1.closed != 1 || s2.closed != 1 || s3.closed != 1 {
		t.Errorf("closed s1 %d, s2 %d, s3 %d times; want once each", s1.closed, s2.closed, s3.closed)
	}
	wantLog(t, d, "connecting", "up (redials 0)", "connecting", "up (redials 1)",
		"waiting 1s (last error: session lost)", "connecting",
		"waiting 2s (last error: connection refused)", "connecting", "up (redials 2)")
}

// TestStableSessionResetsBackoff: a session that stayed up for a minute
// is redialled after 1 s again, not after the doubled wait.
func TestStableSessionResetsBackoff(t *testing.T) {
	s1, s2, s3 := newSession("s1"), newSession("s2"), newSession("s3")
	refused := errors.New("connection refused")
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: time.Minute}, s1, refused, refused, s2, s3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Up && st.Redials == 1:
			clock.advance(stableAfter)
			s2.end(errors.New("keepalive"))
		case st.Phase == Up && st.Redials == 2:
			cancel()
		}
	}
	sess := connect(t, s)
	s1.end(errors.New("keepalive"))
	if err := run(t, s, ctx, sess); err != nil {
		t.Errorf("Run = %v", err)
	}
	if fmt.Sprint(clock.waits) != "[1s 2s 4s 1s]" {
		t.Errorf("waits %v, want [1s 2s 4s 1s]", clock.waits)
	}
}

// TestConfigErrorPublishesNothing: a dial refused before it began says
// nothing of connecting.
func TestConfigErrorPublishesNothing(t *testing.T) {
	s, d, _, _ := newSupervisor(t, Config{}, errConfig)
	if _, err := s.Connect(context.Background()); err != errConfig {
		t.Errorf("Connect = %v", err)
	}
	wantLog(t, d)
}

// TestStopTakesTheSessionDown: ctx ending takes the session down; what
// could not be undone is returned.
func TestStopTakesTheSessionDown(t *testing.T) {
	s1 := newSession("s1")
	s1.closeErr = errors.New("removing rule: permission denied")
	s, _, _, _ := newSupervisor(t, Config{Persist: true}, s1)
	sess := connect(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(t, s, ctx, sess); !errors.Is(err, s1.closeErr) || !strings.HasPrefix(err.Error(), "stopping: ") {
		t.Errorf("Run = %v", err)
	}
	if s1.closed != 1 {
		t.Errorf("closed %d times", s1.closed)
	}
}

// TestServerAnsweringEndsTheWait: the probe's TCP connect to the server
// ends a long wait early; the probe is joined when holdoff returns.
func TestServerAnsweringEndsTheWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: time.Hour})
	clock.fire = false
	d.server = ln.Addr().String()
	s.probeEvery = 10 * time.Millisecond
	done := make(chan bool, 1)
	go func() { done <- s.holdoff(context.Background(), time.Hour) }()
	select {
	case ok := <-done:
		if !ok {
			t.Error("holdoff = false, want true: the server answers")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server answers, and the wait went on")
	}
	// A wait no longer than the probe's interval does not probe.
	d.server = "192.0.2.1:22"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s.holdoff(ctx, 5*time.Millisecond) {
		t.Error("holdoff after ctx ended = true")
	}
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 8 {
		d = nextBackoff(d, 30*time.Second)
		got = append(got, d)
	}
	want := "[1s 2s 4s 8s 16s 30s 30s 30s]"
	if fmt.Sprint(got) != want {
		t.Errorf("backoff %v, want %s", got, want)
	}
	if d := nextBackoff(time.Second, time.Second); d != time.Second {
		t.Errorf("HOLDOFF_MAX=1: %v", d)
	}
}

// keeperSession is a fakeSession that keeps its connection when asked, if
// keep says so, and counts the asking.
type keeperSession struct {
	*fakeSession
	keep  bool
	asked int
}

func (k *keeperSession) KeepConnection() bool {
	k.asked++
	if k.closed != 0 {
		panic("asked to keep the connection of a closed session")
	}
	return k.keep
}

// TestKeptConnectionRedialsAtOnce: a session that ended by itself and
// keeps its connection is redialled without a holdoff; one that does not
// keep it waits as before; a session ended by the redial signal is not
// asked (the admin wants a fresh dial).
func TestKeptConnectionRedialsAtOnce(t *testing.T) {
	s1 := &keeperSession{fakeSession: newSession("s1"), keep: true}
	s2 := &keeperSession{fakeSession: newSession("s2"), keep: false}
	s3 := &keeperSession{fakeSession: newSession("s3"), keep: true}
	s4 := newSession("s4")
	s, d, clock, redial := newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second}, s1, s2, s3, s4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Up && st.Redials == 1:
			s2.end(errors.New("the helper exited"))
		case st.Phase == Up && st.Redials == 2:
			redial <- os.Interrupt
		case st.Phase == Up && st.Redials == 3:
			cancel()
		}
	}
	sess := connect(t, s)
	s1.end(errors.New("the server's pppd died"))
	if err := run(t, s, ctx, sess); err != nil {
		t.Errorf("Run = %v", err)
	}
	if s1.asked != 1 || s2.asked != 1 || s3.asked != 0 {
		t.Errorf("asked s1 %d, s2 %d, s3 %d times; want 1, 1, 0", s1.asked, s2.asked, s3.asked)
	}
	if fmt.Sprint(clock.waits) != "[1s]" {
		t.Errorf("waits %v, want [1s]: only the session that did not keep its connection waits", clock.waits)
	}
	wantLog(t, d, "connecting", "up (redials 0)",
		"connecting", "up (redials 1)",
		"waiting 1s (last error: the helper exited)", "connecting", "up (redials 2)",
		"connecting", "up (redials 3)")
}

// stoppingSession is a keeperSession whose end comes with a stop: its
// Wait, which says why it ended, cancels the run's context first.
type stoppingSession struct {
	*keeperSession
	stop func()
}

func (s *stoppingSession) Wait() error { s.stop(); return s.keeperSession.Wait() }

// TestNoConnectionKeptWhenStopping: a session that ended as the program
// was told to stop is not asked to keep its connection, which no next run
// would use, and whose keeping could only delay the stop.
func TestNoConnectionKeptWhenStopping(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &keeperSession{fakeSession: newSession("s1"), keep: true}
	s1 := &stoppingSession{keeperSession: k, stop: cancel}
	s, _, _, _ := newSupervisor(t, Config{Persist: true}, s1)
	sess := connect(t, s)
	k.end(errors.New("the server's pppd died"))
	if err := run(t, s, ctx, sess); err != nil {
		t.Errorf("Run = %v, want nil (stopped)", err)
	}
	if k.asked != 0 || k.closed != 1 {
		t.Errorf("asked to keep its connection %d times, closed %d; want 0 and 1", k.asked, k.closed)
	}
}

// TestRetryAfterAFailedFirstDial: RETRY_FIRST_DIAL redials a first dial
// that failed as it would a dropped link (backoff, MAXFAIL in a row), and
// a permanent error is not retried at all.
func TestRetryAfterAFailedFirstDial(t *testing.T) {
	refused := errors.New("connecting to 192.0.2.2:22: network is unreachable")
	s1 := newSession("s1")
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second, MaxFail: 5}, refused, refused, s1)
	_, err := s.Connect(context.Background())
	if !errors.Is(err, refused) {
		t.Fatalf("Connect = %v", err)
	}
	sess, err := s.Retry(context.Background(), err)
	if sess != s1 || err != nil {
		t.Fatalf("Retry = %v, %v; want s1", sess, err)
	}
	if fmt.Sprint(clock.waits) != "[1s 2s]" {
		t.Errorf("waits %v, want [1s 2s]", clock.waits)
	}
	wantLog(t, d, "connecting", "waiting 1s (last error: "+refused.Error()+")", "connecting",
		"waiting 2s (last error: "+refused.Error()+")", "connecting", "up (redials 1)")

	s, _, _, _ = newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second, MaxFail: 2}, refused, refused)
	_, err = s.Connect(context.Background())
	if sess, err = s.Retry(context.Background(), err); sess != nil || err == nil || !strings.HasPrefix(err.Error(), "giving up after 2 failed redials (MAXFAIL)") {
		t.Errorf("Retry with MAXFAIL=2: %v, %v", sess, err)
	}
	s, d, _, _ = newSupervisor(t, Config{Persist: true}, errPermanent)
	_, err = s.Connect(context.Background())
	if sess, err = s.Retry(context.Background(), err); sess != nil || !errors.Is(err, errPermanent) || d.dials != 1 {
		t.Errorf("Retry after a permanent error: %v, %v, %d dials", sess, err, d.dials)
	}
}

// renewerSession is a session that can go down in place, and keeps its
// connection when asked: the test sends on lapsed, and each Renew takes
// the next result of renews.
type renewerSession struct {
	*fakeSession
	lapsed chan struct{}
	renews []error
	renewN int
	asked  int // KeepConnection
}

func newRenewer(name string, renews ...error) *renewerSession {
	return &renewerSession{fakeSession: newSession(name), lapsed: make(chan struct{}, 1), renews: renews}
}

func (r *renewerSession) Lapsed() <-chan struct{} { return r.lapsed }
func (r *renewerSession) Renew(context.Context) error {
	if r.closed != 0 {
		panic("renewing a closed session")
	}
	err := r.renews[r.renewN]
	r.renewN++
	return err
}
func (r *renewerSession) KeepConnection() bool { r.asked++; return true }

// TestLapseRenewedInPlace: a session that went down in place is renewed,
// not closed or redialled, and counts as a redial; when it does not come
// back, it is closed and redialled at once on its kept connection.
func TestLapseRenewedInPlace(t *testing.T) {
	notBack := errors.New("local pppd ended: exit status 16")
	s1 := newRenewer("s1", nil, notBack)
	s2 := newSession("s2")
	s, d, clock, _ := newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second}, s2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Up && st.Redials == 1:
			s1.lapsed <- struct{}{} // the second lapse does not come back
		case st.Phase == Up && st.Redials == 2:
			cancel()
		}
	}
	s1.lapsed <- struct{}{}
	if err := run(t, s, ctx, s1); err != nil {
		t.Errorf("Run = %v", err)
	}
	if s1.renewN != 2 || s1.closed != 1 || s1.asked != 1 || s2.closed != 1 {
		t.Errorf("renewed %d times, s1 closed %d, asked to keep %d, s2 closed %d; want 2, 1, 1, 1", s1.renewN, s1.closed, s1.asked, s2.closed)
	}
	if len(clock.waits) != 0 {
		t.Errorf("waits %v: neither the renewal nor the redial on the kept connection should wait", clock.waits)
	}
	wantLog(t, d, "connecting", "up (redials 1)", "connecting", "connecting", "up (redials 2)")
}

// TestLapseWithoutPersistEnds: without PERSIST a lapse ends Run as a drop
// does, and nothing is renewed.
func TestLapseWithoutPersistEnds(t *testing.T) {
	s1 := newRenewer("s1")
	s, _, _, _ := newSupervisor(t, Config{})
	s1.lapsed <- struct{}{}
	err := run(t, s, context.Background(), s1)
	if !errors.Is(err, ErrLapsed) || s1.renewN != 0 || s1.closed != 1 {
		t.Errorf("Run = %v, renewed %d times, closed %d; want ErrLapsed, 0, 1", err, s1.renewN, s1.closed)
	}
}

// blockingRenewer's Renew waits for its ctx, as a renewal does when the
// link does not come back.
type blockingRenewer struct{ *renewerSession }

func (b blockingRenewer) Renew(ctx context.Context) error {
	<-ctx.Done()
	return context.Cause(ctx)
}

// TestRedialSignalEndsARenewal: SIGHUP during a renewal ends it, and the
// session is closed and dialled afresh, its connection not kept.
func TestRedialSignalEndsARenewal(t *testing.T) {
	s1 := blockingRenewer{newRenewer("s1")}
	s2 := newSession("s2")
	s, d, _, redial := newSupervisor(t, Config{Persist: true, HoldoffMax: 30 * time.Second}, s2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.onPhase = func(st Status) {
		switch {
		case st.Phase == Connecting && st.Redials == 0 && len(d.log) == 1:
			redial <- os.Interrupt // during the renewal
		case st.Phase == Up:
			cancel()
		}
	}
	s1.lapsed <- struct{}{}
	if err := run(t, s, ctx, s1); err != nil {
		t.Errorf("Run = %v", err)
	}
	if s1.closed != 1 || s1.asked != 0 {
		t.Errorf("s1 closed %d times, asked to keep its connection %d times; want 1, 0", s1.closed, s1.asked)
	}
	wantLog(t, d, "connecting", "connecting", "up (redials 1)")
}
