package pppssh

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

// sessionServer is an x/crypto/ssh server on loopback that accepts
// sessions and answers "exec" as mode says:
//
//	exit: prints a sudo refusal on stderr and exits with status 1
//	hang: says nothing and reads stdin until the client closes the session
//
// Every goroutine it starts is joined in t.Cleanup.
type sessionServer struct {
	addr    string
	hostKey ssh.PublicKey
	execs   chan string // the commands clients asked for
}

func startSessionServer(t *testing.T, allowed ssh.PublicKey, mode string) *sessionServer {
	t.Helper()
	cfg, hostKey := serverConfig(t, allowed)
	s := &sessionServer{hostKey: hostKey.PublicKey(), execs: make(chan string, 8)}
	s.addr = listenLoopback(t, func(lb *loopback, c net.Conn) { s.serveConn(c, cfg, mode, &lb.wg) }).addr
	return s
}

// loopback is a listener on 127.0.0.1 for a test: when the test ends it
// stops listening, closes every connection it accepted or was given
// (track) and joins the goroutines of wg, serve's among them.
type loopback struct {
	addr  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// listenLoopback accepts connections until the test ends and runs serve
// for each in a goroutine of lb.wg.
func listenLoopback(t *testing.T, serve func(lb *loopback, c net.Conn)) *loopback {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &loopback{addr: ln.Addr().String()}
	t.Cleanup(func() {
		ln.Close()
		lb.mu.Lock()
		for _, c := range lb.conns {
			c.Close()
		}
		lb.mu.Unlock()
		lb.wg.Wait()
	})
	lb.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			lb.track(c)
			lb.wg.Go(func() { serve(lb, c) })
		}
	})
	return lb
}

// track has cs closed when the test ends.
func (lb *loopback) track(cs ...net.Conn) {
	lb.mu.Lock()
	lb.conns = append(lb.conns, cs...)
	lb.mu.Unlock()
}

func (s *sessionServer) serveConn(c net.Conn, cfg *ssh.ServerConfig, mode string, wg *sync.WaitGroup) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() {
			defer ch.Close()
			for r := range creqs {
				if r.Type != "exec" {
					r.Reply(false, nil)
					continue
				}
				var cmd struct{ Command string }
				ssh.Unmarshal(r.Payload, &cmd)
				r.Reply(true, nil)
				s.execs <- cmd.Command
				switch mode {
				case "exit":
					io.WriteString(ch.Stderr(), "sudo: a password is required\n")
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{1}))
					ch.Close()
				case "hang":
					wg.Go(func() { io.Copy(io.Discard, ch) })
				}
			}
		})
	}
}

// testLink is a Link to addr whose local pppd is a fake that writes a
// marker file and sleeps; it never reports IPCP up.
func testLink(t *testing.T, addr string, hostKey ssh.PublicKey, key ed25519.PrivateKey) (l *Link, marker string) {
	t.Helper()
	dir := t.TempDir()
	marker = filepath.Join(dir, "pppd-started")
	fake := filepath.Join(dir, "pppd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho started >"+marker+"\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, addr, hostKey, key, "")
	c.PPPD = fake
	l, err := New(c, Options{Logger: quiet(), Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return l, marker
}

// testConfig is a link's configuration for a server at addr that knows
// key, with extra lines of configuration after the test's own.
func testConfig(t *testing.T, addr string, hostKey ssh.PublicKey, key ed25519.PrivateKey, extra string) Config {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(identity, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	c := Defaults()
	if _, err := c.Parse("test.conf", []byte(fmt.Sprintf(
		"SERVER_HOSTNAME=%s\nSERVER_PORT=%s\nSERVER_USERNAME=vpn\nCLIENT_IFIPADDR=198.51.100.1\nSERVER_IFIPADDR=198.51.100.2\nSSH_IDENTITY=%s\nSSH_KNOWN_HOSTS=%s\nCONNECT_TIMEOUT=30\n%s",
		host, port, identity, writeKnownHosts(t, addr, hostKey), extra))); err != nil {
		t.Fatal(err)
	}
	return c
}

// noLinkGoroutines fails the test if a goroutine that the link's code
// started is still there. It is called right after Close returns, without
// retrying: Close must have joined them, not merely have made them end
// soon. (goleak, in TestMain, catches any other leak, with retries.)
// onlyExiting reports whether a goroutine's frames are all the runtime's
// exit path (runtime.goexit1, runtime.goexit): its function has returned.
func onlyExiting(frames string) bool {
	lines := strings.Split(strings.TrimSpace(frames), "\n")
	for i := 0; i < len(lines); i += 2 { // a function line, then its file line
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "runtime.goexit") {
			return false
		}
	}
	return len(lines) > 0
}

func noLinkGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		frames, creator, ok := strings.Cut(g, "\ncreated by ")
		if !ok {
			continue
		}
		creator, _, _ = strings.Cut(creator, " in goroutine")
		// A goroutine that has run its last deferred call (wg.Done) and
		// is only leaving its entry function has been joined: its header
		// says runnable and one frame (function line, file line) is left.
		header, rest, _ := strings.Cut(frames, "\n")
		if strings.Contains(header, "[runnable]") && (strings.Count(rest, "\n") == 1 || onlyExiting(rest)) {
			continue
		}
		for _, p := range []string{"pppssh.(*Link)", "pppssh.(*pppCarrier)", "pppssh.(*serverSession)", "pppssh.(*pppdProc)", "pppssh.startPPPD", "pppssh.dial"} {
			if strings.Contains(creator, "vpn-pppssh/pppssh.") && strings.Contains(creator, p) {
				t.Errorf("a goroutine of the link outlived Close:\n%s", g)
			}
		}
	}
}

// leakCheck registers goleak's check to run after every other cleanup of
// the test (the test's servers included).
func leakCheck(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// waitReturns runs Wait and fails the test if it has not returned within d.
func waitReturns(t *testing.T, l *Link, d time.Duration) error {
	t.Helper()
	got := make(chan error, 1)
	go func() { got <- l.Wait() }()
	select {
	case err := <-got:
		return err
	case <-time.After(d):
		t.Fatalf("Wait did not return within %v", d)
		return nil
	}
}

// silentPort accepts connections and never says a word.
func silentPort(t *testing.T) string {
	t.Helper()
	return listenLoopback(t, func(*loopback, net.Conn) {}).addr
}

func TestWaitAfterFailedStart(t *testing.T) {
	leakCheck(t)
	hk, _ := newSigner(t)
	_, key := newSigner(t)
	l, marker := testLink(t, silentPort(t), hk.PublicKey(), key)
	// The dial fails when ctx ends; the fake pppd has run meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, startErr := l.Start(ctx)
	if !errors.Is(startErr, context.DeadlineExceeded) {
		t.Fatalf("Start against a silent server: %v, want a deadline error", startErr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the fake pppd did not run, so its teardown is not tested: %v", err)
	}
	noLinkGoroutines(t)
	if err := waitReturns(t, l, 5*time.Second); err != startErr {
		t.Errorf("Wait after a failed Start = %v, want the start error %v", err, startErr)
	}
	select {
	case <-l.Done():
	default:
		t.Error("Done is not closed after a failed Start")
	}
	for i := range 2 {
		if err := l.Close(); err != nil {
			t.Errorf("Close #%d after a failed Start: %v", i+1, err)
		}
	}
	if err := l.Wait(); err != startErr {
		t.Errorf("Wait after Close = %v, still want the start error", err)
	}
	if _, err := l.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start again after a failed Start: %v, want ErrClosed", err)
	}
}

func TestCloseBeforeStart(t *testing.T) {
	leakCheck(t)
	hk, _ := newSigner(t)
	_, key := newSigner(t)
	l, marker := testLink(t, "127.0.0.1:9", hk.PublicKey(), key)
	if err := l.Close(); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	if err := waitReturns(t, l, 5*time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
	if _, err := l.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("Start after Close started pppd")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseDuringStart closes a link whose server ran the command but
// never speaks, while Start waits for IPCP and another goroutine waits in
// Wait: Start gives up with ErrClosed, Wait returns, and when Close
// returns every goroutine of the link has ended.
func TestCloseDuringStart(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	l, _ := testLink(t, srv.addr, srv.hostKey, key)
	started := make(chan error, 1)
	go func() {
		_, err := l.Start(context.Background())
		started <- err
	}()
	waited := make(chan error, 1)
	go func() { waited <- l.Wait() }()
	select {
	case cmd := <-srv.execs:
		t.Logf("server ran %q", cmd)
	case err := <-started:
		t.Fatalf("Start returned before the server ran its command: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the server was not asked to run a command")
	}
	begin := time.Now()
	if err := l.Close(); err != nil {
		t.Errorf("Close during Start: %v", err)
	}
	noLinkGoroutines(t)
	select {
	case err := <-started:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Start closed under it = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after Close")
	}
	select {
	case err := <-waited:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSessionEndKeepsExitError: the server command exits with status 1;
// Start's error says so once, with what the server printed, and the
// *ssh.ExitError stays reachable.
func TestSessionEndKeepsExitError(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "exit")
	l, _ := testLink(t, srv.addr, srv.hostKey, key)
	_, err := l.Start(context.Background())
	noLinkGoroutines(t)
	var exit *ssh.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("Start = %v, want an *ssh.ExitError under it", err)
	}
	if exit.ExitStatus() != 1 {
		t.Errorf("exit status %d, want 1", exit.ExitStatus())
	}
	msg := err.Error()
	if strings.Count(msg, "exited with status 1") != 1 || strings.Count(msg, "sudo: a password is required") != 1 {
		t.Errorf("message should say the status and the server's words once each: %q", msg)
	}
	if werr := waitReturns(t, l, 5*time.Second); werr != err {
		t.Errorf("Wait = %v, want Start's error", werr)
	}
}

// TestCloseJoinsKeepalive: a keepalive with a request outstanding (the
// server never answers) has returned, requests and all, when Close does.
func TestCloseJoinsKeepalive(t *testing.T) {
	leakCheck(t)
	l := keepaliveLink(t, false)
	l.cfg.Keepalive = 40 * time.Millisecond
	l.goJoined(l.keepalive)
	// Outstanding but not yet overdue: sent at k/4 or k/2, dead at 1.5k
	// after that. Poll for the request goroutine rather than sleep.
	deadline := time.Now().Add(5 * time.Second)
	for !goroutineCreatedBy("pppssh.(*Link).goJoined", 2) {
		if time.Now().After(deadline) {
			t.Fatal("the keepalive sent no request")
		}
		runtime.Gosched()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	noLinkGoroutines(t)
	if err := l.Wait(); !errors.Is(err, ErrClosed) && err == nil {
		t.Errorf("Wait = %v", err)
	}
}

// goroutineCreatedBy reports whether at least n goroutines were created by
// a function whose name contains fn.
func goroutineCreatedBy(fn string, n int) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/vpn-pppssh/vpn-pppssh/"+fn) >= n
}

// A local pppd that cannot start fails the start at once, not after a
// login that a silent server stretches to CONNECT_TIMEOUT (30 s here).
func TestStartFailsAtOnceWithoutLocalPPPD(t *testing.T) {
	leakCheck(t)
	hk, _ := newSigner(t)
	_, key := newSigner(t)
	l, _ := testLink(t, silentPort(t), hk.PublicKey(), key)
	l.cfg.PPPD = filepath.Join(t.TempDir(), "no-such-pppd")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := l.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "no-such-pppd") {
		t.Fatalf("Start with a missing pppd: %v, want an error naming it", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Start waited for the silent server's login before reporting the missing pppd (%v)", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	noLinkGoroutines(t)
}
