package pppssh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vpn-pppssh/vpn-pppssh/internal/ifaddr"
)

// pppCarrier is the carrier of MODE=ppp: the local pppd on a pty, joined
// over one SSH session to the server's pppd (sudo -n SERVER_PPPD ...) or
// to the server helper (sudo -n SERVER_HELPER serve), which runs pppd
// itself; with the helper and SERVER_PTY, a second session with a
// terminal carries PPP, and the server's pppd speaks on that terminal
// (terminal.go). The session carries PPP's bytes both ways, one copy each way;
// the link is up once the local pppd reports IPCP up (pppd(8): "local  IP
// address", "remote IP address") with the configured addresses, confirmed
// through netlink, and, with the helper, once the helper reports its
// routes and rules in place.
type pppCarrier struct {
	cfg   Config
	log   *slog.Logger
	begin time.Time // Prepare: for the debug log's timings

	pppd    *pppdProc
	client  *ssh.Client
	srv     *serverSession // the server's pppd or helper
	term    *serverSession // SERVER_PTY: the terminal session, which carries PPP; nil without one
	replied chan struct{}  // with term: closed once the helper's answer is read (and a refusal recorded)

	up   bool        // Start succeeded
	gone atomic.Bool // peerGone: no server answers any more
	// giveUp is set by keepConnection (Detach handed the connection
	// over): closed when the Link's closer stops waiting; nil otherwise.
	giveUp <-chan struct{}

	done     chan struct{} // closed by end
	doneOnce sync.Once
	err      error         // why it ended, set by end
	selfEnd  atomic.Bool   // it ended by itself (pppd or the session ended)
	closing  chan struct{} // closed when Close begins

	wg        sync.WaitGroup // every goroutine the carrier starts
	closeOnce sync.Once
	closeErr  error
}

func newPPPCarrier(cfg Config, log *slog.Logger) *pppCarrier {
	return &pppCarrier{cfg: cfg, log: log, done: make(chan struct{}), closing: make(chan struct{})}
}

// Prepare starts the local pppd on a new pty. The SSH handshake is most of
// the start-up time; pppd's first LCP request waits in the pty meanwhile.
func (c *pppCarrier) Prepare(context.Context) error {
	c.begin = time.Now()
	p, err := startPPPD(c.cfg, c.log)
	c.log.Debug("local pppd started", "after", time.Since(c.begin))
	if err != nil {
		return err
	}
	c.pppd = p
	return nil
}

// Start runs the server's side on a session of client, joins it to the
// pty and waits for IPCP up (and the helper's readiness).
func (c *pppCarrier) Start(ctx context.Context, client *ssh.Client) (CarrierInfo, error) {
	if c.pppd == nil {
		return CarrierInfo{}, errors.New("ppp carrier: Start before Prepare")
	}
	c.client = client
	if err := c.startSession(); err != nil {
		return CarrierInfo{}, err
	}
	timedOut := func(what string) error {
		return fmt.Errorf("%w (%s)", context.Cause(ctx), what)
	}
	select {
	case <-c.pppd.watch.up:
	case <-c.pppd.exited:
		return CarrierInfo{}, c.pppdEndError()
	case <-c.srv.ended:
		if ctx.Err() != nil {
			// The Link closed the connection because ctx ended.
			return CarrierInfo{}, timedOut("pppd said: " + c.pppd.watch.lastLines())
		}
		return CarrierInfo{}, c.srv.endError()
	case <-c.termEnded():
		if ctx.Err() != nil {
			return CarrierInfo{}, timedOut("pppd said: " + c.pppd.watch.lastLines())
		}
		return CarrierInfo{}, c.termEndError()
	case <-ctx.Done():
		return CarrierInfo{}, timedOut("pppd said: " + c.pppd.watch.lastLines())
	}
	if c.cfg.ServerHelper != "" {
		// Up only once the server's routes and rules are in place too.
		select {
		case err := <-c.srv.ready:
			if err != nil {
				return CarrierInfo{}, err
			}
		case <-c.pppd.exited:
			return CarrierInfo{}, c.pppdEndError()
		case <-c.srv.ended:
			if ctx.Err() != nil {
				return CarrierInfo{}, timedOut("waiting for the server helper")
			}
			return CarrierInfo{}, c.srv.endError()
		case <-c.termEnded():
			if ctx.Err() != nil {
				return CarrierInfo{}, timedOut("waiting for the server helper")
			}
			return CarrierInfo{}, c.termEndError()
		case <-ctx.Done():
			return CarrierInfo{}, timedOut("waiting for the server helper")
		}
	}
	ci, err := c.negotiated()
	if err != nil {
		return CarrierInfo{}, err
	}
	c.up = true
	c.goJoined(c.watch)
	return ci, nil
}

// negotiated checks what pppd negotiated against the configuration and
// the kernel, sets up the interface's IPv6, and reports it.
func (c *pppCarrier) negotiated() (CarrierInfo, error) {
	iface, local, remote := c.pppd.watch.result()
	if local != c.cfg.ClientIfAddr || remote != c.cfg.ServerIfAddr {
		return CarrierInfo{}, fmt.Errorf("pppd negotiated %s -> %s instead of CLIENT_IFIPADDR %s -> SERVER_IFIPADDR %s (check the server's /etc/ppp/options)",
			local, remote, c.cfg.ClientIfAddr, c.cfg.ServerIfAddr)
	}
	if err := confirmInterface(iface, local, remote); err != nil {
		return CarrierInfo{}, err
	}
	if err := ifaddr.SetUpPPP(iface, c.cfg.ClientIf6Prefix(), c.cfg.ServerIf6Addr); err != nil {
		return CarrierInfo{}, err
	}
	return CarrierInfo{Mode: ModePPP, Iface: iface, Local: local, Remote: remote, PeerDNS: c.pppd.watch.peerDNS(),
		Local6: c.cfg.ClientIf6Addr, Remote6: c.cfg.ServerIf6Addr,
		Pid: c.pppd.cmd.Process.Pid, TTY: c.pppd.slave.Name(), Speed: pppdSpeed}, nil
}

// Lapsed gets a value each time the server helper announced that it is
// starting its pppd again on the link's terminal (ServerRestartMarker):
// the local pppd is about to renegotiate with the new one, and the
// interface loses its addresses and routes meanwhile. Nil without a
// session.
func (c *pppCarrier) Lapsed() <-chan struct{} {
	if c.srv == nil {
		return nil
	}
	return c.srv.restarts.announcements()
}

// Renewed waits until the link is whole again after the restarts
// announced so far, and reports it as Start did: the local pppd declared
// up once more for each (IPCP, with IPV6CP and the name servers it
// awaits), with the configured addresses, and the helper's verdict on the
// latest restart ready (its routes and rules in place again). The
// helper's failure is an error, and so are the carrier's end and ctx's,
// wrapping its cause.
func (c *pppCarrier) Renewed(ctx context.Context) (CarrierInfo, error) {
	for {
		k, judged, restarted, verdict := c.srv.restarts.state()
		ups, live, renegotiated := c.pppd.watch.state()
		whole, err := renewedAfter(k, judged, verdict, ups, live)
		if err != nil {
			return CarrierInfo{}, err
		}
		if whole {
			// A restart counted now needs no second renewal: its
			// announcement, if still held, is taken; one made since
			// is put back.
			select {
			case <-c.srv.restarts.announcements():
			default:
			}
			if n, _, _, _ := c.srv.restarts.state(); n != k {
				signal(c.srv.restarts.announcements())
			}
			return c.negotiated()
		}
		select {
		case <-restarted:
		case <-renegotiated:
		case <-c.done:
			return CarrierInfo{}, c.Err()
		case <-ctx.Done():
			return CarrierInfo{}, fmt.Errorf("%w (pppd said: %s)", context.Cause(ctx), c.pppd.watch.lastLines())
		}
	}
}

// pppdSpeed is the speed pppd passes its ip-up scripts for a pty, which
// has none of its own.
const pppdSpeed = "38400"

// startSession runs the server's pppd or helper and joins it to the local
// pty: one copy each way, from the pty master to the session and back.
// With SERVER_PTY the helper's pppd speaks on a terminal session of its
// own (startTerminal).
func (c *pppCarrier) startSession() error {
	cmd := c.cfg.remoteCommand()
	// The command's session is opened first: a server that takes one
	// session per connection gives it that one, and refuses the terminal.
	sess, err := c.client.NewSession()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	var term *ssh.Session
	if c.cfg.ServerHelper != "" && c.cfg.ServerPTY {
		t, err := openTerminal(c.client, c.log)
		if err != nil && !errors.Is(err, errNoTerminal) {
			sess.Close()
			return err
		}
		term = t
	}
	c.log.Debug("starting server pppd", "command", cmd, "terminal", term != nil)
	srv, err := startOn(sess, cmd, c.log, true)
	if err != nil {
		if term != nil {
			term.Close()
		}
		return err
	}
	c.srv = srv
	c.log.Debug("server command started", "after", time.Since(c.begin))
	// The waiter first, so that whatever fails below, Close can wait for
	// the session's end.
	srv.goWait(c.goJoined)
	if term != nil {
		return c.startTerminal(term, cmd)
	}
	if c.cfg.ServerHelper != "" {
		if err := WriteRequest(srv.stdin, c.cfg.ServerRequest()); err != nil {
			return fmt.Errorf("sending the request to the server helper: %w", err)
		}
	}
	accepted := make(chan struct{})
	c.join(srv, accepted, func(br *bufio.Reader) bool {
		if c.cfg.ServerHelper != "" {
			if err := readReply(br); err != nil {
				if !errors.Is(err, errNoAnswer) {
					srv.fail(err)
				}
				srv.close()
				return false
			}
		}
		close(accepted)
		return true
	})
	return nil
}

// startTerminal runs the helper on the terminal session too, at once, so
// that its sudo and start overlap the request's check. The request names
// a fresh token; once the first helper accepted it, the token goes to the
// terminal's helper, which hands its terminal over (serve.Attach), and the
// terminal carries PPP.
func (c *pppCarrier) startTerminal(term *ssh.Session, cmd string) error {
	token := newTTYToken()
	c.replied = make(chan struct{})
	t, err := startOn(term, cmd, c.log, false)
	if err != nil {
		return err
	}
	c.term = t
	t.goWait(c.goJoined)
	req := c.cfg.ServerRequest()
	req.TTY = token
	if err := WriteRequest(c.srv.stdin, req); err != nil {
		return fmt.Errorf("sending the request to the server helper: %w", err)
	}
	// The server's pppd is given a second to speak first from when the
	// helper has the terminal (ServerAttachedMarker).
	c.join(t, c.srv.attached, func(*bufio.Reader) bool {
		err := readReply(bufio.NewReaderSize(c.srv.stdout, 512))
		defer close(c.replied) // after the refusal is recorded
		if err != nil {
			if strings.Contains(err.Error(), `unknown field "tty"`) {
				err = fmt.Errorf("%w: the server helper is older than 0.10.0; update it, or set SERVER_PTY=no", err)
			}
			if !errors.Is(err, errNoAnswer) {
				c.srv.fail(err)
			}
			c.srv.close()
			t.close()
			return false
		}
		if _, err := io.WriteString(t.stdin, token+"\n"); err != nil {
			c.srv.close() // its helper would wait for the terminal in vain
			t.close()
			return false
		}
		return true
	})
	return nil
}

// join copies between the local pty and the session that carries PPP,
// once accept (which may read the helper's answer) said yes. Our frames
// wait for the server's pppd to speak first, or for a second from when
// ready is closed. Before the first PPP flag byte, what the session prints
// is the server's text (a terminal session's errors arrive there), kept
// for errors, not given to pppd.
func (c *pppCarrier) join(data *serverSession, ready <-chan struct{}, accept func(*bufio.Reader) bool) {
	serverSpoke := make(chan struct{})
	// Pty to session. It returns when Close closes the pty master (the
	// master is non-blocking, so closing it ends a read in progress) or
	// the session will take no more.
	c.goJoined(func() {
		// The server's pppd speaks first (its LCP Configure-Request) once
		// it is ready; only then do our buffered frames follow, so that
		// none is lost while it sets up its line (and none waits out the
		// 3 s LCP restart timer). A server told to stay silent gets our
		// frames a second after it accepted anyway.
		select {
		case <-ready:
		case <-serverSpoke:
		case <-data.ended:
		}
		select {
		case <-serverSpoke:
		case <-time.After(time.Second):
		case <-data.ended:
		}
		io.Copy(data.stdin, c.pppd.master)
		data.stdin.Close()
	})
	// Session to pty. It returns when the session's stdout ends (Close
	// closes the session and then the connection) or the pty is closed.
	c.goJoined(func() {
		br := bufio.NewReaderSize(data.stdout, 32*1024)
		if !accept(br) {
			return
		}
		if err := skipText(br, data.stderr); err != nil {
			return
		}
		buf := make([]byte, 32*1024)
		n, err := br.Read(buf)
		if n > 0 {
			_, err = c.pppd.master.Write(buf[:n])
		}
		close(serverSpoke)
		c.log.Debug("server pppd speaks", "after", time.Since(c.begin))
		if err == nil {
			io.CopyBuffer(c.pppd.master, br, buf)
		}
	})
}

// pppFlag begins and ends every PPP frame in HDLC-like framing (RFC 1662).
const pppFlag = 0x7e

// skipText passes what br holds before the first PPP flag to text (the
// session's tail, which logs it escaped and keeps it for errors), and
// leaves br at the flag.
func skipText(br *bufio.Reader, text io.Writer) error {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == pppFlag {
			return nil
		}
		n := br.Buffered()
		chunk, _ := br.Peek(n)
		if i := bytes.IndexByte(chunk, pppFlag); i >= 0 {
			n = i
		}
		text.Write(chunk[:n])
		br.Discard(n)
	}
}

// markerGrace is how long a renegotiation of the local pppd waits for
// the helper's ServerRestartMarker before it is taken for one that no one
// announced.
var markerGrace = 2 * time.Second

// renewedAfter says whether a link is whole again after k restarts of the
// server's pppd: the helper judged the latest ready, and the local pppd
// is up, once more for each restart. The helper's failure is the error.
func renewedAfter(k int, judged bool, verdict error, ups int, live bool) (bool, error) {
	if judged && verdict != nil {
		return false, verdict
	}
	return judged && live && ups >= 1+k, nil
}

// watch ends the carrier when pppd or the session ends by itself, or
// when the local pppd renegotiated with no restart announced for it
// (ServerRestartMarker): the peer restarted LCP on its own, and the
// link's routes and DNS went with the interface meanwhile. A restart the
// helper announced does not end it: the Link's owner hears of it
// (Lapsed) and sets the link's routes and hooks again once it is
// Renewed.
func (c *pppCarrier) watch() {
	var unannounced <-chan time.Time
	for {
		ups, _, renegotiated := c.pppd.watch.state()
		k, _, restarted, _ := c.srv.restarts.state()
		switch {
		case ups <= 1+k:
			unannounced = nil
		case unannounced == nil:
			// The helper's word comes on another session than PPP
			// does, and well before the renegotiation ends; still, it
			// is given a moment.
			unannounced = time.After(markerGrace)
		}
		select {
		case <-unannounced:
			c.selfEnd.Store(true)
			c.end(errors.New("the peer renegotiated IPCP: pppd took the interface down meanwhile, and its routes with it"))
			return
		case <-restarted:
		case <-c.pppd.exited:
			c.selfEnd.Store(true)
			c.end(c.pppdEndError())
			return
		case <-c.srv.ended:
			c.selfEnd.Store(true)
			c.end(c.srv.endError())
			return
		case <-c.termEnded():
			c.selfEnd.Store(true)
			c.end(c.termEndError())
			return
		case <-renegotiated:
		case <-c.closing:
			return
		}
	}
}

// termEnded is closed when the terminal session has ended; nil (never
// ready) without one.
func (c *pppCarrier) termEnded() <-chan struct{} {
	if c.term == nil {
		return nil
	}
	return c.term.ended
}

// termEndError says why the terminal session ended: the helper's refusal
// or failure when the first session had one (it ends the terminal too),
// else what the terminal's helper printed and its exit.
func (c *pppCarrier) termEndError() error {
	// The first session speaks for the link: a refusal there ends the
	// terminal too, and the terminal's helper may have ended first on its
	// own account (its session cap), saying it only on the terminal. Its
	// answer, if it comes, is read on; wait a moment for it.
	select {
	case <-c.replied:
	case <-time.After(2 * time.Second):
	}
	if p := c.srv.failure.Load(); p != nil {
		return *p
	}
	return fmt.Errorf("the server's terminal session: %w", c.term.endError())
}

// sessions are the carrier's sessions, the one that carries PPP first.
func (c *pppCarrier) sessions() []*serverSession {
	switch {
	case c.srv == nil:
		return nil
	case c.term == nil:
		return []*serverSession{c.srv}
	}
	return []*serverSession{c.term, c.srv}
}

// goJoined runs f in a goroutine that Close waits for.
func (c *pppCarrier) goJoined(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// end records why the carrier ended, once.
func (c *pppCarrier) end(err error) {
	c.doneOnce.Do(func() {
		c.err = err
		close(c.done)
	})
}

// Done is closed when pppd or the session ended, or Close ran.
func (c *pppCarrier) Done() <-chan struct{} { return c.done }

// Err says why the carrier ended, once Done is closed.
func (c *pppCarrier) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// peerGone: the Link declared the server silent.
func (c *pppCarrier) peerGone() { c.gone.Store(true) }

// keepConnection: the Link handed the connection over (Detach). Called
// before Close, which it happens before; giveUp is never nil.
func (c *pppCarrier) keepConnection(giveUp <-chan struct{}) { c.giveUp = giveUp }

// keptSessionWait bounds Close's wait for the server's sessions to end when
// the connection was handed over: a server that answered the keepalive
// ends them, and closing the connection instead would take it from the
// next run. Under three loaded lab kernels the terminal session ended
// about 5 s after the helper.
var keptSessionWait = 10 * time.Second // a var for the tests

// errPPPClosed is Err after Close.
var errPPPClosed = errors.New("ppp carrier closed")

// Close takes the link down, in this order:
//
//  1. The watcher returns.
//  2. The local pppd: SIGTERM, so that it can tell the server's pppd with
//     an LCP Terminate-Request; a hung-up pty first when no peer would
//     acknowledge it. Killed if it is not gone within 3 s.
//  3. The sessions, the terminal first: their end ends the server's pppd
//     if the request did not. Up to 2 s for the server commands to end
//     by themselves; none when the carrier ended by itself or the server
//     went silent, unless the connection was handed over (keepConnection):
//     then up to keptSessionWait, or until the Link's closer gives up
//     (CloseContext), since a server that answered the keepalive ends
//     them.
//  4. The SSH connection, if a session is still there. This ends the
//     sessions for good: their waiters, the copy from the session (its
//     stdout ends). A connection handed over is then closed after all:
//     the next run fails on it, and the one after dials afresh.
//  5. The pty and pppd's log pipe: the copy from the pty (a read of the
//     non-blocking master ends when it is closed) and pppd's log reader
//     return.
//  6. Every goroutine the carrier started is joined.
func (c *pppCarrier) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		// Ended by itself, or the server declared silent: no one will
		// answer the session's close.
		ended := c.selfEnd.Load() || c.gone.Load()
		var errs []error
		sessions := c.sessions()
		if c.pppd != nil {
			if len(sessions) == 0 || !sessions[0].live() || !c.up || ended {
				// No peer to acknowledge a Terminate-Request (the session
				// is gone, or the link was declared dead), or a link that
				// never came up: hang up the pty instead, and pppd exits
				// at once.
				c.pppd.hangup()
			}
			errs = append(errs, c.pppd.stop(3*time.Second))
		}
		for _, s := range sessions {
			s.close()
		}
		kept := c.giveUp != nil
		wait := 2 * time.Second
		if kept {
			wait = keptSessionWait
		}
		deadline := time.After(wait)
		waited, live := ended && !kept, false
		for _, s := range sessions {
			if !s.waiting {
				continue
			}
			if !waited {
				select {
				case <-s.ended:
				case <-deadline:
					waited = true // warned once; the others are not waited for either
					c.log.Warn("server command did not end after closing the session", "within", wait, "command", s.cmd)
				case <-c.giveUp: // nil, never ready, unless kept
					waited = true
				}
			}
			live = live || s.live()
		}
		if live && kept {
			c.log.Warn("closing the SSH connection kept for the next run after all: a session of the server's did not end")
		}
		if live {
			if err := c.client.Close(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("closing SSH connection", "err", err)
			}
		}
		for _, s := range sessions {
			if s.waiting {
				<-s.ended // the connection is closed: the session has ended
			}
		}
		if c.pppd != nil {
			errs = append(errs, c.pppd.release())
		}
		c.wg.Wait()
		c.end(errPPPClosed)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// pppdEndError says why the local pppd ended; pppd's *exec.ExitError stays
// reachable with errors.As.
func (c *pppCarrier) pppdEndError() error {
	msg := fmt.Sprintf("local pppd ended: %s (pppd said: %s)", c.pppd.exitReason(), c.pppd.watch.lastLines())
	if c.srv != nil {
		if s := c.srv.stderr.String(); s != "" {
			msg += "; the server said: " + s
		}
	}
	return &causedError{msg: msg, cause: c.pppd.err}
}
