package main

import (
	"context"
	"errors"
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
	pppd := pppssh.Defaults().ServerPPPD
	if o.flags.Changed("server-pppd") {
		cfg := pppssh.Defaults()
		v, _ := o.flags.GetString("server-pppd")
		if err := cfg.Set("SERVER_PPPD", v); err != nil {
			return usageError(err)
		}
		pppd = cfg.ServerPPPD
	}
	// The session may vanish under us: a write to its stderr must then
	// fail, not kill us before our changes are undone. sshd and sudo end a
	// session with SIGHUP.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	log := slog.New(slog.NewTextHandler(o.stderr, nil)).With("component", "serve")
	return serve.Run(ctx, serve.Options{
		PPPD: pppd, PolicyPath: pppssh.PolicyPath, StateDir: o.runDir,
		Stdin: os.Stdin, Stdout: os.Stdout, Log: log,
	})
}
