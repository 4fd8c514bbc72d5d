package pppssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/ssh"
)

// HelperIO is a server helper (`sudo -n SERVER_HELPER serve`) that has
// accepted a tun or ethernet request: its stdin and stdout carry the
// carrier's framed packets; Ready gets one value once the server's side is
// in place (nil) or failed.
type HelperIO struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Ready  <-chan error

	srv *serverSession
}

// Device is the server's device as the helper named it before it was
// ready, "" if it did not: text from the server, for the caller to check.
func (h *HelperIO) Device() string {
	if p := h.srv.device.Load(); p != nil {
		return *p
	}
	return ""
}

// Close ends the helper's session.
func (h *HelperIO) Close() error { return h.srv.close() }

// StartHelper runs the server helper on a new session of client, sends it
// cfg's request and returns once it accepted. A refusal is returned in the
// helper's words; a session that ends before any answer (sudo refused the
// command, the helper is not installed) in what the server printed. The
// session's requests are not bounded by ctx: the Link closes the
// connection when ctx ends during a carrier's Start.
func StartHelper(ctx context.Context, client *ssh.Client, cfg Config, log *slog.Logger) (*HelperIO, error) {
	srv, err := startServerSession(client, cfg.helperCommand(), log)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*HelperIO, error) {
		srv.close()
		return nil, err
	}
	if err := WriteRequest(srv.stdin, cfg.ServerRequest()); err != nil {
		return fail(fmt.Errorf("sending the request to the server helper: %w", err))
	}
	br := bufio.NewReaderSize(srv.stdout, 64<<10)
	if err := readReply(br); err != nil {
		if errors.Is(err, errNoAnswer) {
			srv.wait() // no answer: the session has ended, or ends when the connection does
			err = srv.endError()
		}
		return fail(err)
	}
	return &HelperIO{Stdin: srv.stdin, Stdout: br, Ready: srv.ready, srv: srv}, nil
}
