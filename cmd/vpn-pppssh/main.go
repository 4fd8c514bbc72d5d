// Command vpn-pppssh builds a VPN from pppd and SSH: it joins a local pppd
// to a pppd that the SSH server runs through sudo.
//
//	vpn-pppssh [flags] start|stop|restart|redial|status|config|cleanup
//
// Exit codes (LSB init-script conventions):
//
//	0  success (also: stop when not running, start when already running)
//	1  the action failed (the message says why)
//	2  bad usage or configuration
//	3  status: the link is not running
//	6  the server's host key is unknown or has changed: an admin must look
//	   (systemd: RestartPreventExitStatus=2 6)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
)

const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitNotRunning = 3
	exitHostKey    = 6 // LSB "program is not configured"
)

// exitError carries an exit code other than exitFailed up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageError(err error) error { return &exitError{exitUsage, err} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:])
	stop()
	if err == nil {
		os.Exit(exitOK)
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			os.Exit(code)
		}
	}
	printError(os.Stderr, err)
	os.Exit(code)
}

// printError shows a fatal error. Errors carry text from the server (its
// stderr, its refusal) and from files: it is escaped, line by line, so
// nothing in it reaches root's terminal as a control sequence.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "vpn-pppssh: %s\n", safetext.Lines(err.Error()))
}
