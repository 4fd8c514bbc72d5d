package pppssh

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// serverSession is one command run on the server on an SSH session of its
// own, with its stderr watched: each line is logged (escaped, rate
// limited), the last ones are kept for error messages, and the server
// helper's verdict (ServerReadyMarker, ServerFailedMarker) is read from
// it. The PPP carrier runs the server's pppd or helper on one; the tunnel
// carrier's helper path runs the helper on one (StartHelper).
type serverSession struct {
	cmd    string
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *tailWriter

	ready        chan error // one value at the helper's first verdict: nil (ready) or its failure
	readyOnce    sync.Once
	judged       atomic.Bool   // the first verdict came
	restarts     *restartLog   // the helper's restarts of pppd in place, and its verdicts on them
	attached     chan struct{} // closed at ServerAttachedMarker
	attachedOnce sync.Once
	failure      atomic.Pointer[error]  // the helper's refusal or failure
	device       atomic.Pointer[string] // as the helper named it (ServerDeviceMarker): not checked

	ended   chan struct{} // closed once the session has ended (waited)
	err     error         // from Session.Wait, once ended is closed
	waiting bool          // a waiter runs or ran: ended will be closed
}

// startServerSession opens a session on client and starts cmd on it. On
// failure nothing is left open.
func startServerSession(client *ssh.Client, cmd string, log *slog.Logger) (*serverSession, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening SSH session: %w", err)
	}
	return startOn(s, cmd, log, true)
}

// startOn starts cmd on the open session s. The helper's markers are read
// from its stderr only when markers is set: a terminal session
// (openTerminal) has no stderr of its own, and what its terminal shows
// before PPP is text for errors (skipText), in which others than the
// helper may have had a say.
// On failure s is closed.
func startOn(s *ssh.Session, cmd string, log *slog.Logger, markers bool) (*serverSession, error) {
	var err error
	ss := &serverSession{cmd: cmd, sess: s, ready: make(chan error, 1), ended: make(chan struct{}),
		restarts: newRestartLog(), attached: make(chan struct{}), stderr: newTailWriter(log.With("component", "server"))}
	if markers {
		ss.stderr.onLine = ss.serverLine
	}
	fail := func(err error) (*serverSession, error) {
		s.Close()
		return nil, err
	}
	if ss.stdin, err = s.StdinPipe(); err != nil {
		return fail(fmt.Errorf("session stdin: %w", err))
	}
	if ss.stdout, err = s.StdoutPipe(); err != nil {
		return fail(fmt.Errorf("session stdout: %w", err))
	}
	s.Stderr = ss.stderr
	if err := s.Start(cmd); err != nil {
		return fail(fmt.Errorf("starting %q on the server: %w", cmd, err))
	}
	return ss, nil
}

// serverLine watches the server's stderr for the helper's verdict.
func (ss *serverSession) serverLine(line string) {
	switch {
	case line == ServerReadyMarker:
		ss.verdict(nil)
	case line == ServerRestartMarker:
		if ss.judged.Load() {
			// Before the first verdict, no link was up to restart.
			ss.restarts.restart()
		}
	case line == ServerAttachedMarker:
		ss.attachedOnce.Do(func() { close(ss.attached) })
	case strings.HasPrefix(line, ServerDeviceMarker):
		name := strings.TrimPrefix(line, ServerDeviceMarker)
		ss.device.CompareAndSwap(nil, &name)
	case strings.HasPrefix(line, ServerFailedMarker):
		ss.fail(fmt.Errorf("the server could not apply its side: %s", strings.TrimPrefix(line, ServerFailedMarker)))
	}
}

// fail records the helper's refusal or failure; the first one counts.
func (ss *serverSession) fail(err error) {
	ss.failure.CompareAndSwap(nil, &err)
	ss.verdict(err)
}

func (ss *serverSession) verdict(err error) {
	first := false
	ss.readyOnce.Do(func() {
		ss.ready <- err
		ss.judged.Store(true)
		first = true
	})
	if !first {
		ss.restarts.verdict(err)
	}
}

// goWait starts the session's waiter with start (a goroutine its owner
// joins); ended is closed when the session has ended. The session ends
// when the server's command exits and closes it, or when the connection
// is closed.
func (ss *serverSession) goWait(start func(func())) {
	ss.waiting = true
	start(ss.wait)
}

// wait waits for the session's end and records it.
func (ss *serverSession) wait() {
	ss.err = ss.sess.Wait()
	close(ss.ended)
}

// live reports whether the session has a waiter and has not ended.
func (ss *serverSession) live() bool {
	if ss == nil || !ss.waiting {
		return false
	}
	select {
	case <-ss.ended:
		return false
	default:
		return true
	}
}

// close closes the session (its EOF ends the server's command).
func (ss *serverSession) close() error {
	if err := ss.sess.Close(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// endError says why the session ended, once ended is closed: the helper's
// refusal or failure when it gave one, else the command's exit status and
// what it printed. The server command's *ssh.ExitError (or
// *ssh.ExitMissingError) stays reachable with errors.As.
func (ss *serverSession) endError() error {
	if p := ss.failure.Load(); p != nil {
		return *p
	}
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	msg := ss.stderr.String()
	switch {
	case errors.As(ss.err, &exit) && msg != "":
		return &causedError{cause: ss.err,
			msg: fmt.Sprintf("server command %q exited with status %d: %s", ss.cmd, exit.ExitStatus(), msg)}
	case errors.As(ss.err, &exit):
		return &causedError{cause: ss.err,
			msg: fmt.Sprintf("server command %q exited with status %d", ss.cmd, exit.ExitStatus())}
	case errors.As(ss.err, &missing), ss.err == nil:
		return &causedError{cause: ss.err, msg: fmt.Sprintf("the server closed the session (%s)", orNothing(msg))}
	default:
		return fmt.Errorf("SSH session lost: %w", ss.err)
	}
}

// causedError is a message in our words over a typed cause whose own text
// would only repeat it ("Process exited with status 1"): errors.Is and
// errors.As see the cause, the message says it once.
type causedError struct {
	msg   string
	cause error
}

func (e *causedError) Error() string { return e.msg }
func (e *causedError) Unwrap() error { return e.cause }

func orNothing(s string) string {
	if s == "" {
		return "it printed nothing"
	}
	return "it said: " + s
}
