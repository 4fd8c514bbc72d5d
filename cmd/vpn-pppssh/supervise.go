package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel"
)

// supervisor keeps one named link up for the life of the background
// process:
//
//	connecting ──ok──▶ up ──link died / SIGHUP──▶ teardown ──PERSIST=no──▶ exit 1
//	    ▲                                            │
//	    └──────── waiting (1 s, 2 s … HOLDOFF_MAX) ◀─┘
//
// Teardown is complete (hooks, routes, rules, pppd, interface) before the
// next dial, so there are never two interfaces or two sets of routes for
// one link. The wait doubles from 1 s up to HOLDOFF_MAX and starts again
// from 1 s once a link has stayed up for a minute; SIGHUP skips it. MAXFAIL
// failed dials in a row end the process; so does a host key problem, which
// no amount of redialling should paper over.
type supervisor struct {
	o      *options
	cfg    pppssh.Config
	log    *slog.Logger
	hup    chan os.Signal
	st     rundir.State
	server string // host:port, probed while waiting
}

// stableAfter is how long a link must stay up for the backoff to reset.
const stableAfter = time.Minute

type session struct {
	link linkCloser // *pppssh.Link
	net  netCloser  // *linkNetworks
	info pppssh.Info
}

// linkCloser is what the supervisor needs of a *pppssh.Link once it is up.
type linkCloser interface {
	Done() <-chan struct{}
	Wait() error
	Close() error
}

// netCloser is what the supervisor needs of a *linkNetworks.
type netCloser interface {
	close(context.Context) error
}

// close takes the session down: the networks first (the ip-down hooks
// while the interface still exists, then routes and rules), then the link,
// whatever the first step returned. Both steps' errors are returned.
func (s *session) close(ctx context.Context) error {
	netErr := s.net.close(ctx)
	var linkErr error
	if err := s.link.Close(); err != nil {
		linkErr = fmt.Errorf("closing the link: %w", err)
	}
	return errors.Join(netErr, linkErr)
}

func (s *supervisor) publish(phase string) {
	s.st.Phase = phase
	s.st.Goroutines = runtime.NumGoroutine()
	if err := s.o.runDir.Write(s.st); err != nil {
		s.log.Error("writing state", "err", err)
	}
	// sd_notify takes one assignment per line: whatever goes into STATUS
	// is escaped to one line, so that no text of an error (a joined error,
	// something the server said) can add READY=, MAINPID= or the like.
	status := "STATUS=" + phase
	if phase == "up" {
		status = "READY=1\nSTATUS=up: " + safetext.Escape(s.st.Iface+" "+s.st.Local+" -> "+s.st.Remote)
	} else if s.st.LastError != "" {
		status += " (last error: " + safetext.Escape(s.st.LastError) + ")"
	}
	sdNotify(status)
}

func (s *supervisor) failed(err error) {
	s.st.LastError, s.st.LastErrorAt = err.Error(), time.Now()
}

// connect brings the link and its networks up once.
func (s *supervisor) connect(ctx context.Context) (*session, error) {
	link, err := pppssh.New(s.cfg, pppssh.Options{Logger: s.log, Carrier: tunnel.ForLink})
	if err != nil {
		return nil, usageError(err) // before anything is published
	}
	s.st.NextAttempt = time.Time{}
	s.publish("connecting")
	s.server = link.Target().Addr()
	s.log.Info("connecting", "link", s.cfg.Name, "server", s.server, "user", link.Target().User)
	info, err := link.Start(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := joinNetworks(ctx, s.o, s.cfg, info, s.log)
	if err != nil {
		if cerr := link.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the link: %w", cerr))
		}
		return nil, err
	}
	s.st.Iface, s.st.Local, s.st.Remote = info.Iface, info.Local.String(), info.Remote.String()
	s.st.Server, s.st.UpSince = info.Server, info.Since
	s.st.Mode, s.st.CarrierPid, s.st.ServerIface = info.Mode, info.Pid, info.ServerIface
	s.st.Firewall, s.st.Changes = nets.router.Firewall(), changeList(nets.router)
	s.publish("up")
	return &session{link: link, net: nets, info: info}, nil
}

// run supervises a link that is up until ctx ends or the link ends for good.
func (s *supervisor) run(ctx context.Context, sess *session) error {
	backoff := time.Second
	fails := 0
	for {
		reason := s.waitDown(ctx, sess)
		downErr := sess.close(ctx)
		if downErr != nil {
			// Left in the journal: the next Set, stop or start undoes it.
			s.log.Error("taking the link down", "err", downErr)
		}
		if ctx.Err() != nil {
			s.log.Info("stopped")
			if downErr != nil {
				return fmt.Errorf("stopping: %w", downErr)
			}
			return nil
		}
		s.log.Warn("link down", "reason", reason)
		s.failed(reason)
		if !s.cfg.Persist {
			if downErr != nil {
				return errors.Join(fmt.Errorf("link ended: %w", reason), fmt.Errorf("taking it down: %w", downErr))
			}
			return fmt.Errorf("link ended: %w", reason)
		}
		switch {
		case errors.Is(reason, errRedialNow):
			backoff = 0
		case time.Since(sess.info.Since) >= stableAfter:
			backoff = time.Second
		}
		for {
			if !s.holdoff(ctx, backoff) {
				return nil
			}
			backoff = nextBackoff(backoff, s.cfg.HoldoffMax)
			var err error
			sess, err = s.connect(ctx)
			if err == nil {
				s.st.Redials++
				s.publish("up")
				s.log.Info("link back up", "redials", s.st.Redials)
				fails = 0
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			fails++
			s.failed(err)
			s.log.Warn("redial failed", "err", err, "failures", fails)
			if permanent(err) {
				return withExitCode(err)
			}
			if s.cfg.MaxFail > 0 && fails >= s.cfg.MaxFail {
				return fmt.Errorf("giving up after %d failed redials (MAXFAIL): %w", fails, err)
			}
		}
	}
}

var errRedialNow = errors.New("redial requested (SIGHUP)")

// waitDown returns why the link went down, or nil when ctx ended.
func (s *supervisor) waitDown(ctx context.Context, sess *session) error {
	select {
	case <-ctx.Done():
		return nil
	case <-s.hup:
		return errRedialNow
	case <-sess.link.Done():
		return sess.link.Wait()
	}
}

// holdoff waits d before the next dial, and less when SIGHUP asks or
// when the server's SSH port answers again: a path that comes back after a
// long outage is used at once rather than after the rest of the wait. The
// probe is a bare TCP connect every probeEvery, no login. False when ctx
// ended.
func (s *supervisor) holdoff(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	s.st.NextAttempt = time.Now().Add(d)
	s.publish("waiting")
	s.log.Info("waiting to redial", "for", d)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	back := make(chan struct{})
	if s.server != "" && d > probeEvery {
		go probe(ctx, s.server, back)
	}
	select {
	case <-ctx.Done():
		return ctx.Err() == context.DeadlineExceeded
	case <-s.hup:
		return true
	case <-back:
		s.log.Info("the server answers again", "server", s.server)
		return true
	}
}

const probeEvery = 2 * time.Second

// probe closes back once a TCP connection to addr succeeds.
func probe(ctx context.Context, addr string, back chan<- struct{}) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		dctx, cancel := context.WithTimeout(ctx, probeEvery)
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			close(back)
			return
		}
	}
}

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

// permanent errors end the process instead of being redialled: a host key
// that is unknown or changed needs an admin, and a bad configuration will
// not fix itself.
func permanent(err error) bool {
	var ee *exitError
	return hostKeyProblem(err) || errors.As(err, &ee)
}

func hostKeyProblem(err error) bool {
	var unknown *pppssh.UnknownHostError
	var changed *pppssh.HostKeyChangedError
	return errors.As(err, &unknown) || errors.As(err, &changed)
}

// withExitCode gives a host key problem its own exit code.
func withExitCode(err error) error {
	var ee *exitError
	if err != nil && hostKeyProblem(err) && !errors.As(err, &ee) {
		return &exitError{code: exitHostKey, err: err}
	}
	return err
}
