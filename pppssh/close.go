package pppssh

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// monitor ends the link when its carrier ends by itself or the keepalive
// gives up. Close ending it is no end by itself: Close gives the reason
// then (and closes the carrier, whose Done it must not take for an end of
// its own: closing is closed first).
func (l *Link) monitor() {
	var reason error
	select {
	case <-l.carrier.Done():
		select {
		case <-l.closing:
			return
		default:
		}
		reason = l.carrier.Err()
	case reason = <-l.dead:
		l.sshDied.Store(true)
		if pg, ok := l.carrier.(peerGoner); ok {
			pg.peerGone()
		}
	case <-l.closing:
		return
	}
	l.finish(reason)
}

// finish records why the link ended and wakes Wait; only the first reason
// counts.
func (l *Link) finish(reason error) {
	l.doneOnce.Do(func() {
		l.endErr = reason
		close(l.done)
	})
}

// Done is closed when the link has ended: by itself, because Start failed,
// or by Close. Wait says why.
func (l *Link) Done() <-chan struct{} { return l.done }

// Wait blocks until the link has ended and returns why: what ended it by
// itself, the error Start failed with, or ErrClosed when Close ended it.
// It returns at once when that happened already, and may be called from
// any number of goroutines, before or after Start and Close. (Before Start
// it waits for Start to fail, the link to end, or Close.)
func (l *Link) Wait() error {
	<-l.done
	return l.endErr
}

// Close takes the link down and returns once everything the link started
// has stopped: the carrier is closed (PPP: pppd has exited, the pty is
// closed; tun: the device is gone), the SSH connection is closed, and
// every goroutine of the link and its carrier has returned. It is safe to call more
// than once, concurrently with Wait, before Start (Start then refuses) and
// during Start (Start gives up with ErrClosed). It does not wait on a
// server that cannot answer: after the keepalive gave up it closes the
// connection first, and a carrier not closed within carrierCloseWait has
// the connection closed under it.
func (l *Link) Close() error { return l.closeWith(ErrClosed) }

// CloseContext is Close for a caller that may be told to stop meanwhile:
// once ctx ends, the wait that a connection handed over by Detach adds
// (PPP: for the server's sessions to end, keptSessionWait) ends too, and
// the connection is closed.
func (l *Link) CloseContext(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.giveUpOnce.Do(func() { close(l.giveUp) }) })
	defer stop()
	return l.Close()
}

// closeWith is Close, with reason as what Wait returns unless the link has
// ended already.
func (l *Link) closeWith(reason error) error {
	l.closeOnce.Do(func() {
		l.handMu.Lock() // a Detach in progress finishes first
		defer l.handMu.Unlock()
		l.mu.Lock()
		l.closed = true
		started, cancel := l.started, l.cancelStart
		l.mu.Unlock()
		if started {
			// A Start in progress gives up (its ctx ends with ErrClosed,
			// which also closes the SSH connection it waits on); what it
			// built is not touched until it has returned.
			cancel(ErrClosed)
			<-l.startDone
		}
		l.closeErr = l.teardown()
		l.finish(reason)
	})
	return l.closeErr
}

// forwardsCloseWait bounds the closing of the forwards when the connection
// is handed on (Detach) and so not closed here.
const forwardsCloseWait = 5 * time.Second

// teardown takes down what start built, in this order:
//
//  1. closing: monitor and keepalive return (the keepalive stops sending);
//     the port forwards stop listening and their connections close.
//  2. The SSH connection first, if the keepalive gave up: no server
//     would answer a goodbye.
//  3. The carrier, which says goodbye to the server's end where it can
//     (PPP: pppd's LCP Terminate-Request, then the session's EOF; see
//     pppCarrier.Close) and joins its goroutines. It is told first when
//     Detach handed the connection over (connKeeper). Its Close is
//     bounded (closeCarrier): past that, the connection is closed.
//  4. The SSH connection, unless Detach handed it over. This ends the
//     keepalive's outstanding requests (Detach made sure none is).
//  5. Every goroutine the link started is joined.
func (l *Link) teardown() error {
	close(l.closing)
	// The forwards close first; closing a remote one asks the server to
	// stop listening and waits for its answer, which a dead connection
	// never gives: closing the connection below ends that wait.
	forwardsClosed := make(chan struct{})
	go func() {
		defer close(forwardsClosed)
		if l.forwards != nil {
			l.forwards.Close()
		}
	}()
	var err error
	if l.carrier != nil {
		if l.sshDied.Load() {
			// No server answers: closing the connection first ends every
			// read of a session that only the server could end.
			l.closeClient()
		}
		if k, ok := l.carrier.(connKeeper); ok && l.detached.Load() {
			k.keepConnection(l.giveUp)
		}
		err = l.closeCarrier()
	}
	if l.detached.Load() {
		// The connection lives on in the next link: nothing here ends
		// the wait of a server that does not answer, so it is bounded.
		select {
		case <-forwardsClosed:
		case <-time.After(forwardsCloseWait):
			l.log.Warn("the server did not answer the cancelling of the remote forwards; going on")
		}
	} else {
		l.closeClient()
		<-forwardsClosed
	}
	l.wg.Wait()
	return err
}

// carrierCloseWait bounds a carrier's Close before the Link closes the
// SSH connection under it: a carrier's goroutines may read a session that
// only the server, or the connection's end, can end (a tun carrier's
// reader of the helper's stdout, on a path that went silent before the
// keepalive noticed). It is longer than the PPP carrier's own bounds
// (pppd's 3 s, then 2 s for the sessions). A var for the tests.
var carrierCloseWait = 6 * time.Second

// closeCarrier closes the carrier, and the SSH connection under it if its
// Close has not returned within carrierCloseWait (plus keptSessionWait
// for a carrier told to keep the connection, connKeeper: the wait a PPP
// carrier then gives the server's sessions, which CloseContext's giving
// up cuts short).
func (l *Link) closeCarrier() error {
	begin := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- l.carrier.Close() }()
	wait := carrierCloseWait
	var giveUp <-chan struct{}
	if _, ok := l.carrier.(connKeeper); ok && l.detached.Load() {
		wait += keptSessionWait
		giveUp = l.giveUp
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-closed:
		return err
	case <-timer.C:
	case <-giveUp:
		// The PPP carrier stops waiting for the kept sessions: the
		// usual bound, from now.
		timer.Reset(carrierCloseWait)
		select {
		case err := <-closed:
			return err
		case <-timer.C:
		}
	}
	took := time.Since(begin).Round(time.Millisecond)
	if l.detached.Load() {
		l.log.Warn("closing the SSH connection kept for the next run after all: the carrier did not close", "after", took)
	} else {
		l.log.Warn("the carrier did not close: closing the SSH connection under it", "after", took)
	}
	l.closeClient()
	return <-closed
}

// closeClient closes the SSH connection, if there is one.
func (l *Link) closeClient() {
	if l.client == nil {
		return
	}
	if err := l.client.Close(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		l.log.Debug("closing SSH connection", "err", err)
	}
}
