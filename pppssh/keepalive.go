package pppssh

import (
	"fmt"
	"time"
)

// keepalive asks the server for a reply every KEEPALIVE seconds with the
// global request OpenSSH's ServerAliveInterval uses (keepalive@openssh.com;
// any answer, even a refusal, proves the path works). A request unanswered
// for one and a half intervals declares the link dead. Checking four times
// an interval, a path that goes silent is noticed within
// k + 1.5k + k/4 = 27.5 s by default, long before TCP would give up. A
// connection the server closed (sshd restarted, the session killed) is
// noticed at the next request, within k.
func (l *Link) keepalive() {
	defer close(l.kaStopped)
	k := l.cfg.Keepalive
	tick := time.NewTicker(k / 4)
	defer tick.Stop()
	answered := make(chan struct{}, 1)
	failed := make(chan error, 1)
	var sent time.Time // of the last request
	outstanding := false
	for {
		select {
		case <-l.closing:
			return
		case <-l.kaStop: // Detach
			return
		case <-answered:
			outstanding = false
		case err := <-failed:
			l.dead <- fmt.Errorf("the SSH connection has ended: %w", err)
			return
		case now := <-tick.C:
			switch {
			case outstanding && now.Sub(sent) >= k+k/2:
				l.dead <- fmt.Errorf("the server has not answered an SSH keepalive for %v", now.Sub(sent).Round(time.Millisecond))
				return
			case outstanding || now.Sub(sent) < k:
				continue
			}
			outstanding, sent = true, now
			// Returns with an error once the connection is closed, which
			// Close does before it joins the link's goroutines.
			l.goJoined(func() {
				if _, _, err := l.client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
					select {
					case failed <- err:
					default:
					}
				} else {
					select {
					case answered <- struct{}{}:
					default:
					}
				}
			})
		}
	}
}
