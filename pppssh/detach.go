package pppssh

import (
	"time"

	"golang.org/x/crypto/ssh"
)

// Detach hands the link's SSH connection over for the next run of the
// link (Options.Client), which then needs no dial and no login: a link
// whose carrier alone ended (the server's pppd died, the helper exited)
// comes back in the time its carrier takes to start.
//
// It returns nil, and keeps the connection for Close to close, unless the
// link has ended by itself (not by Close, not because Start failed), the
// keepalive had not given up, and the server answers a keepalive within
// timeout now. Before asking, it stops the link's keepalive and waits for
// its loop to return; the server answers global requests in order, so
// once it has answered this one no earlier request is outstanding, and
// no goroutine of this link is left waiting on the connection it hands
// over. After Detach returned a connection, Close leaves it open; call
// Close as usual to take the rest down. The PPP carrier's Close then
// waits for the server's sessions to end (keptSessionWait, or until
// CloseContext's ctx ends); should one not, it closes the connection
// after all (and logs so): the next run fails on it, a failed redial,
// and the one after dials afresh. Detach and Close may be called from
// different goroutines at once: they take turns, Close after a Detach in
// progress, and a Detach after Close began hands nothing over.
func (l *Link) Detach(timeout time.Duration) *ssh.Client {
	select {
	case <-l.done:
	default:
		return nil // still up: there is nothing to hand over
	}
	// Close waits for a Detach in progress, and a Detach after Close
	// began finds the link closed.
	l.handMu.Lock()
	defer l.handMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed || l.client == nil || l.sshDied.Load() || l.detached.Load() {
		return nil
	}
	l.kaStopOnce.Do(func() { close(l.kaStop) })
	<-l.kaStopped
	answered := make(chan bool, 1)
	l.goJoined(func() { // ends, at the latest, when Close closes the connection
		_, _, err := l.client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err == nil
	})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ok := <-answered:
		if !ok {
			return nil
		}
	case <-t.C:
		l.log.Info("not reusing the SSH connection: no keepalive answer", "within", timeout)
		return nil
	}
	l.detached.Store(true)
	l.log.Info("keeping the SSH connection for the next run")
	return l.client
}
