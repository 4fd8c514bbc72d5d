package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Phase is where the supervisor is.
type Phase string

// The phases, as the state file and systemd's STATUS show them.
const (
	Connecting Phase = "connecting" // a dial is in progress
	Up         Phase = "up"         // a session is up
	Waiting    Phase = "waiting"    // holding off before the next dial
)

// Status is what the supervisor publishes at each change of phase.
type Status struct {
	Phase       Phase
	Redials     int       // sessions brought back up after one ended
	LastError   error     // the last failure; nil before the first
	LastErrorAt time.Time // when it happened
	NextAttempt time.Time // Waiting: when the next dial begins; zero otherwise
}

// A Session is a link that is up with everything joined to it.
type Session interface {
	// Done is closed when the session ended by itself.
	Done() <-chan struct{}
	// Wait says why, once Done is closed.
	Wait() error
	// Close takes all of it down and returns what could not be undone.
	Close(ctx context.Context) error
}

// A Keeper is a Session that can keep its SSH connection for the next
// Dial when it ended by itself and the connection still answers (the
// carrier alone ended: the server's pppd died). The supervisor asks before
// it closes the session, and when it is kept dials again at once, without
// a holdoff: the server was there a moment ago.
type Keeper interface {
	KeepConnection() bool
}

// A Renewer is a Session whose link can go down and come back in place,
// with no new dial (PPP: the server helper restarted its pppd on the
// terminal it holds, and the local pppd renegotiated with it). Lapsed gets
// a value each time the link went down; Renew then takes down what was
// joined to the link (hooks, routes), waits for it to come back and joins
// it again. The supervisor renews only with Persist: without it, a lapse
// ends the session, as any drop does.
type Renewer interface {
	Lapsed() <-chan struct{}
	// Renew returns nil once the session is whole again, or why it is
	// not; the session is then closed and redialled as one that ended.
	Renew(ctx context.Context) error
}

// ErrLapsed is why a session that went down in place ended, when it was
// not renewed (Persist off).
var ErrLapsed = errors.New("the link went down in place (the server started its pppd again)")

// Driver is what a Supervisor drives.
type Driver interface {
	// Dial brings one session up. It calls connecting once it begins to
	// dial: an error before that is the configuration's, and nothing has
	// been published.
	Dial(ctx context.Context, connecting func()) (Session, error)
	// Server is the host:port (the SSH server) whose answer cuts a
	// holdoff short; "" for none.
	Server() string
	// Publish reports a change of phase.
	Publish(Status)
	// Permanent reports whether err ends the supervisor instead of being
	// redialled (a host key problem, a bad configuration).
	Permanent(err error) bool
}

// Config is the redial policy.
type Config struct {
	Persist    bool          // PERSIST: redial a session that ended
	HoldoffMax time.Duration // HOLDOFF_MAX: the longest wait between dials
	MaxFail    int           // MAXFAIL: failed redials in a row before giving up; 0 never
}

// Supervisor keeps one link up; see the package documentation.
type Supervisor struct {
	d      Driver
	cfg    Config
	redial <-chan os.Signal
	log    *slog.Logger
	st     Status
	upAt   time.Time // when the session that is up came up

	now        func() time.Time
	after      func(time.Duration) <-chan time.Time
	probeEvery time.Duration
}

// stableAfter is how long a session must stay up for the backoff to reset.
const stableAfter = time.Minute

// ErrRedialNow is why a session ended when the redial channel asked.
var ErrRedialNow = errors.New("redial requested (SIGHUP)")

// New makes a supervisor of d. A value on redial (the program's SIGHUP)
// ends the session that is up, or the wait, and dials at once.
func New(d Driver, cfg Config, redial <-chan os.Signal, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.Default()
	}
	return &Supervisor{d: d, cfg: cfg, redial: redial, log: log,
		now: time.Now, after: time.After, probeEvery: 2 * time.Second}
}

func (s *Supervisor) publish(p Phase) {
	s.st.Phase = p
	s.d.Publish(s.st)
}

func (s *Supervisor) failed(err error) {
	s.st.LastError, s.st.LastErrorAt = err, s.now()
}

// Connect dials once and publishes the session up. It is the first dial
// of a process: its failure is returned, not redialled.
func (s *Supervisor) Connect(ctx context.Context) (Session, error) {
	sess, err := s.d.Dial(ctx, func() {
		s.st.NextAttempt = time.Time{}
		s.publish(Connecting)
	})
	if err != nil {
		return nil, err
	}
	s.upAt = s.now()
	s.publish(Up)
	return sess, nil
}

// Retry redials after a first dial failed with first, as after a drop:
// with backoff from one second, up to MaxFail failures in a row, and not
// past a permanent error. It returns the session once one is up, or nil
// and why it gave up (nil when ctx ended).
func (s *Supervisor) Retry(ctx context.Context, first error) (Session, error) {
	s.failed(first)
	if s.d.Permanent(first) {
		return nil, first
	}
	fails := 1
	if s.cfg.MaxFail > 0 && fails >= s.cfg.MaxFail {
		return nil, fmt.Errorf("giving up after %d failed dials (MAXFAIL): %w", fails, first)
	}
	sess, _, err := s.redialLoop(ctx, time.Second, &fails)
	return sess, err
}

// Run supervises a session that is up until ctx ends (nil) or the link
// ends for good: Persist off, MaxFail failed redials in a row, or a
// permanent error.
func (s *Supervisor) Run(ctx context.Context, sess Session) error {
	backoff := time.Second
	fails := 0
	for {
		reason := s.waitDown(ctx, sess)
		if errors.Is(reason, ErrLapsed) && s.cfg.Persist {
			if reason = s.renew(ctx, sess.(Renewer)); reason == nil {
				continue
			}
		}
		kept := false
		// A stop (ctx ended) keeps nothing: no next run would use it.
		if k, ok := sess.(Keeper); ok && reason != nil && s.cfg.Persist && !errors.Is(reason, ErrRedialNow) && ctx.Err() == nil {
			kept = k.KeepConnection()
		}
		downErr := sess.Close(ctx)
		if downErr != nil {
			// Left for the program's next start, stop or cleanup.
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
		case errors.Is(reason, ErrRedialNow), kept:
			backoff = 0
		case s.now().Sub(s.upAt) >= stableAfter:
			backoff = time.Second
		}
		var err error
		if sess, backoff, err = s.redialLoop(ctx, backoff, &fails); sess == nil {
			return err
		}
	}
}

// redialLoop waits and dials until a session is up (returned with the
// next backoff), or returns nil and why it gave up: nil when ctx ended.
func (s *Supervisor) redialLoop(ctx context.Context, backoff time.Duration, fails *int) (Session, time.Duration, error) {
	for {
		if !s.holdoff(ctx, backoff) {
			return nil, 0, nil
		}
		backoff = nextBackoff(backoff, s.cfg.HoldoffMax)
		sess, err := s.d.Dial(ctx, func() {
			s.st.NextAttempt = time.Time{}
			s.publish(Connecting)
		})
		if err == nil {
			s.st.Redials++
			s.upAt = s.now()
			s.publish(Up)
			s.log.Info("link back up", "redials", s.st.Redials)
			*fails = 0
			return sess, backoff, nil
		}
		if ctx.Err() != nil {
			return nil, 0, nil
		}
		*fails++
		s.failed(err)
		s.log.Warn("redial failed", "err", err, "failures", *fails)
		if s.d.Permanent(err) {
			return nil, 0, err
		}
		if s.cfg.MaxFail > 0 && *fails >= s.cfg.MaxFail {
			return nil, 0, fmt.Errorf("giving up after %d failed redials (MAXFAIL): %w", *fails, err)
		}
	}
}

// waitDown returns why the session went down (ErrLapsed: in place), or
// nil when ctx ended.
func (s *Supervisor) waitDown(ctx context.Context, sess Session) error {
	var lapsed <-chan struct{}
	if r, ok := sess.(Renewer); ok {
		lapsed = r.Lapsed()
	}
	select {
	case <-ctx.Done():
		return nil
	case <-s.redial:
		return ErrRedialNow
	case <-sess.Done():
		return sess.Wait()
	case <-lapsed:
		return ErrLapsed
	}
}

// renew brings a session that went down in place back: it is published
// connecting meanwhile, and up again as one more redial. It returns nil
// once the session is whole again, or why it is not (nil too when ctx
// ended: Run then stops).
func (s *Supervisor) renew(ctx context.Context, r Renewer) error {
	s.log.Warn("link down in place: waiting for it to come back", "reason", ErrLapsed)
	s.failed(ErrLapsed)
	s.st.NextAttempt = time.Time{}
	s.publish(Connecting)
	// A redial asked meanwhile (SIGHUP) ends the wait: the admin wants a
	// fresh dial now.
	rctx, cancel := context.WithCancelCause(ctx)
	asked := make(chan bool, 1)
	go func() {
		select {
		case <-s.redial:
			cancel(ErrRedialNow)
			asked <- true
		case <-rctx.Done():
			asked <- false
		}
	}()
	err := r.Renew(rctx)
	cancel(nil)
	redial := <-asked // a SIGHUP taken as Renew returned counts too
	switch {
	case ctx.Err() != nil:
		return nil
	case redial:
		return ErrRedialNow
	case err != nil:
		return fmt.Errorf("%w, and did not come back: %w", ErrLapsed, err)
	}
	s.st.Redials++
	s.upAt = s.now()
	s.publish(Up)
	s.log.Info("link back up in place", "redials", s.st.Redials)
	return nil
}
