package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/vpn-pppssh/vpn-pppssh/internal/logsink"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/serve"
)

// serveCommand is the server half, run by the client through sudo.
func serveCommand(ctx context.Context, o *options) error {
	carrierProcs(os.Getenv) // sudo has reset the environment: one P
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
	account, err := sessionAccount()
	if err != nil {
		return err
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		// A client's terminal session (SERVER_PTY): hand the terminal to
		// the link that waits for it. By hand, it waits for a token that
		// no one types, and says so.
		ctx, stop := signal.NotifyContext(ctx, endSignals...)
		defer stop()
		return serve.Attach(ctx, serve.AttachOptions{PolicyPath: pppssh.PolicyPath, StateDir: o.runDir, Account: account, Terminal: os.Stdin})
	}
	// The session may vanish under us: a write to its stderr must then
	// fail, not kill us before our changes are undone. The client's
	// account can signal its sudo, which relays what it gets to us:
	// every such signal that would end us ends the session cleanly
	// (pppd, then the server's changes, then the records and locks),
	// and the stop signals are ignored, so that the helper is never
	// stopped while it holds the host lock. Ignored signals stay ignored
	// in pppd, which cannot be stopped either.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
	ctx, stop := signal.NotifyContext(ctx, endSignals...)
	defer stop()
	log := slog.New(slog.NewTextHandler(o.stderr, nil)).With("component", "serve")
	return serve.Run(ctx, serve.Options{
		PolicyPath: pppssh.PolicyPath, StateDir: o.runDir, Account: account,
		Stdin: os.Stdin, Stdout: os.Stdout, Log: log, Others: systemLog(),
	})
}

// endSignals end a session cleanly. sudo relays SIGHUP, SIGINT, SIGQUIT,
// SIGTERM, SIGUSR1 and SIGUSR2 (and SIGALRM, which Go ignores) from the
// client's account; sshd ends a session with SIGHUP. Without a handler,
// SIGQUIT would end the helper with a goroutine dump and run no cleanup.
var endSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2}

// systemLog is where the helper tells of other sessions (the leftovers of
// dead ones it cleaned): the system log, tagged vpn-pppssh-serve, never
// the session's stderr, which reaches the client. Without a system log
// those lines are dropped.
// The connection stays open for the helper's life.
func systemLog() *slog.Logger {
	h, _, err := logsink.Syslog("", "vpn-pppssh-serve", slog.LevelInfo)
	if err != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(h).With("component", "serve")
}

// sessionAccount is the account the session runs for. Through sudo it is
// SUDO_UID, which sudo itself sets to the invoking user (a user cannot set
// SUDO_* through sudo: sudo overwrites them, and a sudoers rule without
// SETENV refuses variables on the command line). Run as root directly (an
// authorized_keys command= for root), it is root. Nothing the SSH client
// sends (SSH_CLIENT, environment= lines, SendEnv) reaches a root process
// through sudo's env_reset, and none of it could be trusted if it did.
func sessionAccount() (serve.Account, error) {
	s, ok := os.LookupEnv("SUDO_UID")
	if !ok || os.Getuid() != 0 {
		uid := os.Getuid()
		name := strconv.Itoa(uid)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		return serve.Account{UID: uid, Name: name}, nil
	}
	uid, err := strconv.Atoi(s)
	if err != nil || uid < 0 {
		return serve.Account{}, fmt.Errorf("SUDO_UID=%q is not a user id", s)
	}
	return serve.Account{UID: uid, Name: os.Getenv("SUDO_USER")}, nil
}
