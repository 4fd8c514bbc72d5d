package supervise

import (
	"context"
	"net"
	"sync"
	"time"
)

// holdoff waits d before the next dial, and less when the redial channel
// asks or when the server's SSH port answers again: a path that comes
// back after a long outage is used at once rather than after the rest of
// the wait. The probe is a bare TCP connect every probeEvery, no login;
// it is joined before holdoff returns. False when ctx ended.
func (s *Supervisor) holdoff(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	s.st.NextAttempt = s.now().Add(d)
	s.publish(Waiting)
	s.log.Info("waiting to redial", "for", d)
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	back := make(chan struct{})
	server := s.d.Server()
	if server != "" && d > s.probeEvery {
		wg.Go(func() { probe(pctx, server, s.probeEvery, back) })
	}
	select {
	case <-ctx.Done():
		return false
	case <-s.after(d):
		return true
	case <-s.redial:
		return true
	case <-back:
		s.log.Info("the server answers again", "server", server)
		return true
	}
}

// probe closes back once a TCP connection to addr succeeds; it tries
// every interval until ctx ends.
func probe(ctx context.Context, addr string, every time.Duration, back chan<- struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		dctx, cancel := context.WithTimeout(ctx, every)
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			close(back)
			return
		}
	}
}

// nextBackoff doubles d, from 1 s up to max.
func nextBackoff(d, max time.Duration) time.Duration {
	switch {
	case d <= 0:
		return time.Second
	case 2*d > max:
		return max
	default:
		return 2 * d
	}
}
