package pppssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// A Carrier moves IP between the two ends over an SSH connection that the
// Link dialled and authenticated, in the tun and ethernet modes (package
// tunnel); MODE=ppp is the Link's own pppd on a pty. The Link keeps what
// every mode shares: dialling, host keys, authentication, keepalives and
// the dead-link check, and the lifecycle.
//
//	New ─→ Prepare (local work, while SSH dials) ─→ Start(client) ─→ up
//	                                                   Done ─→ Err
//	Close: idempotent, joins the carrier's goroutines
type Carrier interface {
	// Prepare does the local work that needs no connection: the
	// client's device.
	Prepare(ctx context.Context) error
	// Start brings up the server's end over client and returns once the
	// link carries packets.
	Start(ctx context.Context, client *ssh.Client) (CarrierInfo, error)
	// Done is closed when the carrier ended by itself or was closed.
	Done() <-chan struct{}
	// Err says why it ended, once Done is closed.
	Err() error
	// Close takes both ends down; safe to call more than once.
	Close() error
}

// CarrierInfo is what a carrier reports once up.
type CarrierInfo struct {
	Iface       string // the client's interface
	ServerIface string // the server's, when known
}

// NewCarrier makes the carrier of a link in the tun or ethernet mode.
type NewCarrier func(cfg Config, log *slog.Logger) (Carrier, error)

// HelperIO is a server helper (`sudo -n SERVER_HELPER serve`) that has
// accepted a tun or ethernet request: its stdin and stdout carry the
// carrier's framed packets; Ready gets one value once the server's side is
// in place (nil) or failed.
type HelperIO struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Ready  <-chan error

	sess   *ssh.Session
	stderr *tailWriter
}

// Close ends the helper's session.
func (h *HelperIO) Close() error {
	if err := h.sess.Close(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// StartHelper runs the server helper on a new session of client, sends it
// cfg's request and returns once it accepted. A refusal is returned in the
// helper's words; a session that ends before any answer (sudo refused the
// command, the helper is not installed) in what the server printed.
func StartHelper(ctx context.Context, client *ssh.Client, cfg Config, log *slog.Logger) (*HelperIO, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening SSH session: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("session stdin: %w", err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("session stdout: %w", err)
	}
	ready := make(chan error, 1)
	var once sync.Once
	tw := newTailWriter(log.With("component", "server"))
	tw.onLine = func(line string) {
		switch {
		case line == ServerReadyMarker:
			once.Do(func() { ready <- nil })
		case strings.HasPrefix(line, ServerFailedMarker):
			once.Do(func() {
				ready <- fmt.Errorf("the server could not apply its side: %s", strings.TrimPrefix(line, ServerFailedMarker))
			})
		}
	}
	s.Stderr = tw
	cmd := cfg.helperCommand()
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting %q on the server: %w", cmd, err)
	}
	h := &HelperIO{Stdin: stdin, Ready: ready, sess: s, stderr: tw}
	fail := func(err error) (*HelperIO, error) {
		s.Close()
		return nil, err
	}
	if err := WriteRequest(stdin, cfg.ServerRequest()); err != nil {
		return fail(fmt.Errorf("sending the request to the server helper: %w", err))
	}
	br := bufio.NewReaderSize(stdout, 64<<10)
	if err := readReply(br); err != nil {
		if errors.Is(err, errNoAnswer) {
			werr := s.Wait()
			var exit *ssh.ExitError
			msg := tw.String()
			switch {
			case errors.As(werr, &exit) && msg != "":
				err = &causedError{cause: werr, msg: fmt.Sprintf("server command %q exited with status %d: %s", cmd, exit.ExitStatus(), msg)}
			case errors.As(werr, &exit):
				err = &causedError{cause: werr, msg: fmt.Sprintf("server command %q exited with status %d", cmd, exit.ExitStatus())}
			default:
				err = &causedError{cause: werr, msg: fmt.Sprintf("the server closed the session (%s)", orNothing(msg))}
			}
		}
		return fail(err)
	}
	h.Stdout = br
	return h, nil
}
