package pppssh

import (
	"errors"
	"io"
	"net"
	"time"
)

// monitor ends the link when either side goes away. Close ending it is no
// end by itself: Close gives the reason then.
func (l *Link) monitor() {
	var reason error
	var pppdExited, carrierDone <-chan struct{}
	if l.pppd != nil {
		pppdExited = l.pppd.exited
	}
	if l.carrier != nil {
		carrierDone = l.carrier.Done()
	}
	select {
	case <-carrierDone:
		reason = l.carrier.Err()
	case <-pppdExited:
		reason = l.pppdEndError()
	case <-l.sessEnd:
		reason = l.sessionEndError()
	case reason = <-l.dead:
	case <-l.closing:
		return
	}
	l.ended.Store(true)
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
// has stopped: pppd has exited, the SSH connection and the pty are closed,
// and every goroutine of the link has returned. It is safe to call more
// than once, concurrently with Wait, before Start (Start then refuses) and
// during Start (Start gives up with ErrClosed).
func (l *Link) Close() error { return l.closeWith(ErrClosed) }

// closeWith is Close, with reason as what Wait returns unless the link has
// ended already.
func (l *Link) closeWith(reason error) error {
	l.closeOnce.Do(func() {
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

// teardown takes down what start built, in this order:
//
//  1. closing: monitor and keepalive return (the keepalive stops sending).
//  2. The local pppd: SIGTERM, so that it can tell the server's pppd with
//     an LCP Terminate-Request; a hung-up pty first when no peer would
//     acknowledge it. Killed if it is not gone within 3 s.
//  3. The session: its EOF ends the server's pppd if the request did not.
//     Up to 2 s for the server command to end by itself.
//  4. The SSH connection. This ends the session for good: the session's
//     waiter, the copy from the session (its stdout ends), the keepalive's
//     outstanding requests.
//  5. The pty and pppd's log pipe: the copy from the pty (a read of the
//     non-blocking master ends when it is closed) and pppd's log reader
//     return.
//  6. Every goroutine the link started is joined.
func (l *Link) teardown() error {
	close(l.closing)
	var errs []error
	if l.pppd != nil {
		if !l.sessionLive() || l.info.Iface == "" || l.ended.Load() {
			// No peer to acknowledge a Terminate-Request (the session is
			// gone, or the link was declared dead), or a link that never
			// came up: hang up the pty instead, and pppd exits at once.
			l.pppd.hangup()
		}
		errs = append(errs, l.pppd.stop(3*time.Second))
	}
	if l.carrier != nil {
		// Its channel or session, then its device; its goroutines joined.
		errs = append(errs, l.carrier.Close())
	}
	if l.sess != nil {
		l.sess.Close()
		if l.waiting && !l.ended.Load() {
			select {
			case <-l.sessEnd:
			case <-time.After(2 * time.Second):
				l.log.Warn("server command did not end within 2s of closing the session")
			}
		}
	}
	if l.client != nil {
		if err := l.client.Close(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			l.log.Debug("closing SSH connection", "err", err)
		}
	}
	if l.waiting {
		<-l.sessEnd // the connection is closed: the session has ended
	}
	if l.pppd != nil {
		errs = append(errs, l.pppd.release())
	}
	l.wg.Wait()
	return errors.Join(errs...)
}
