package main

import (
	"fmt"
	"strings"

	"context"
	"errors"
	"github.com/spf13/pflag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/serve"
	"golang.org/x/term"
)

// serveCommand is the server half, run by the client through sudo.
func serveCommand(ctx context.Context, o *options) error {
	if term.IsTerminal(int(os.Stdin.Fd())) {
		return usageError(errors.New("serve is run by vpn-pppssh clients over SSH (SERVER_HELPER), not by hand"))
	}
	// Through sudo, every option would be the client's choice made as
	// root: serve takes none. Its settings are the server's own policy file.
	var given []string
	o.flags.Visit(func(f *pflag.Flag) {
		if f.Name != "verbose" {
			given = append(given, "--"+f.Name)
		}
	})
	if len(given) > 0 {
		return usageError(fmt.Errorf("serve takes no options (got %s): its settings are in %s", strings.Join(given, " "), pppssh.PolicyPath))
	}
	// The session may vanish under us: a write to its stderr must then
	// fail, not kill us before our changes are undone. sshd and sudo end a
	// session with SIGHUP.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	log := slog.New(slog.NewTextHandler(o.stderr, nil)).With("component", "serve")
	return serve.Run(ctx, serve.Options{
		PolicyPath: pppssh.PolicyPath, StateDir: o.runDir,
		Stdin: os.Stdin, Stdout: os.Stdout, Log: log,
	})
}
