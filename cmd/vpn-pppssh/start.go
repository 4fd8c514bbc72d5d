package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/vpn-pppssh/vpn-pppssh/internal/logsink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh/supervise"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel"
)

// readiness is what the background process reports on its notify pipe:
// one JSON line, once, when the link is up or has failed.
type readiness struct {
	Info     *pppssh.Info `json:"info,omitempty"`
	Retrying string       `json:"retrying,omitempty"` // RETRY_FIRST_DIAL: why the first dial failed
	Error    string       `json:"error,omitempty"`
	Code     int          `json:"code,omitempty"` // exit code for the error
}

// startBackground starts a copy of this program in the background, in its
// own session, and returns once that copy reports the link up or failed.
// On failure it waits for the copy to exit, so nothing is left running.
func startBackground(o *options, cfg pppssh.Config) error {
	if pid, _ := o.runDir.Owner(cfg.Name); pid != 0 {
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s is already running (pid %d)\n", cfg.Name, pid)
		return nil
	}
	// Refuse a bad configuration here, before anything starts.
	if _, err := pppssh.New(cfg, pppssh.Options{Logger: discardLogger(), Carrier: tunnel.ForLink}); err != nil {
		return usageError(err)
	}
	if err := checkProgram(cfg); err != nil {
		return usageError(err)
	}
	if err := os.MkdirAll(string(o.runDir), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", o.runDir, err)
	}
	logPath, err := o.runDir.LogPath(cfg.Name)
	if err != nil {
		return usageError(err)
	}
	// The log is the background process's stdout and stderr, for what
	// reaches them before its own bounded writer is set up (and for a Go
	// runtime panic); that writer then keeps it under 2 x maxLog.
	rotateLog(logPath)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("notify pipe: %w", err)
	}
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable: %w", err)
	}
	cmd := exec.Command(self, childArgs(o.flags)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), backgroundEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting background process: %w", err)
	}
	var rd readiness
	line, readErr := bufio.NewReader(r).ReadBytes('\n')
	if readErr == nil {
		readErr = json.Unmarshal(line, &rd)
	}
	if readErr == nil && rd.Info != nil {
		cmd.Process.Release()
		printUp(o, *rd.Info)
		return nil
	}
	if readErr == nil && rd.Retrying != "" {
		cmd.Process.Release()
		why := strings.TrimPrefix(rd.Retrying, "link "+cfg.Name+": ")
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s: the first dial failed (%s); redialling in the background (RETRY_FIRST_DIAL): vpn-pppssh -n %s status\n",
			cfg.Name, safetext.Escape(why), cfg.Name)
		return nil
	}
	// Failed: the child cleans up and exits; wait for it.
	waitErr := cmd.Wait()
	switch {
	case rd.Error != "" && rd.Code > 1:
		return &exitError{code: rd.Code, err: errors.New(rd.Error)}
	case rd.Error != "":
		return errors.New(rd.Error)
	default:
		return fmt.Errorf("background process ended before the link came up (%v); see %s", waitErr, logPath)
	}
}

// backgroundEnv marks the background copy that startBackground starts: it
// alone may be given --notify-fd when the program runs on another user's
// behalf (see refuseDelegatedFlags).
const backgroundEnv = "VPN_PPPSSH_BACKGROUND"

// childArgs repeats the flags this process was given, for the background
// copy, with the command fixed to a foreground start.
func childArgs(fs *pflag.FlagSet) []string {
	var args []string
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "foreground" && f.Name != "notify-fd" {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return append(args, "--foreground", "--notify-fd=3", "start")
}

func printUp(o *options, info pppssh.Info) {
	if info.Mode == pppssh.ModeNone {
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s up: port forwards only (via %s)\n", safetext.Escape(info.Name), safetext.Escape(info.Server))
	} else {
		addrs := fmt.Sprintf("%s -> %s", info.Local, info.Remote)
		if info.Local6.IsValid() || info.Remote6.IsValid() {
			addrs += fmt.Sprintf(", %s -> %s", addrOrEmpty(info.Local6), addrOrEmpty(info.Remote6))
		}
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s up: %s %s (via %s)\n",
			safetext.Escape(info.Name), safetext.Escape(info.Iface), addrs, safetext.Escape(info.Server))
	}
	for _, f := range info.Forwards {
		fmt.Fprintf(o.stdout, "  forward %s\n", safetext.Escape(f))
	}
}

// runForeground owns the link until a signal, or until the link ends for
// good (PERSIST=no, MAXFAIL reached, a host key problem).
func runForeground(ctx context.Context, o *options, cfg pppssh.Config) (err error) {
	carrierProcs(o.getenv)
	notify := func(readiness) {}
	if o.notifyFD >= 0 {
		f := os.NewFile(uintptr(o.notifyFD), "notify")
		defer f.Close()
		notify = func(r readiness) {
			b, _ := json.Marshal(r)
			f.Write(append(b, '\n'))
			f.Close()
		}
	}
	defer func() {
		err = withExitCode(err)
		if err != nil {
			code := exitFailed
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			}
			notify(readiness{Error: err.Error(), Code: code})
		}
	}()
	if o.notifyFD >= 0 {
		// The background copy: its stdout and stderr are the log file
		// (startBackground); from here on it writes through a writer that
		// keeps that file bounded while the link runs.
		logPath, err := o.runDir.LogPath(cfg.Name)
		if err != nil {
			return err
		}
		lf, err := openLog(logPath, maxLog, 1, 2)
		if err != nil {
			return err
		}
		defer lf.Close()
		o.stderr = lf
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	var h slog.Handler = logsink.Text(o.stderr, level)
	if f, ok := o.stderr.(*os.File); ok && logsink.UnderJournal(f, o.getenv) {
		// systemd's unit: the journal's own form, with priorities.
		h = logsink.Journal(o.stderr, level)
	}
	if o.notifyFD >= 0 {
		// The background process, which no service manager watches
		// (the init script, a hook, a shell): its bounded file, and
		// the system log beside it when there is one.
		if sh, c, err := logsink.Syslog("", "vpn-pppssh-"+cfg.Name, level); err == nil {
			defer c.Close()
			h = slog.NewMultiHandler(h, sh)
		}
	}
	log := slog.New(h)
	if err := checkProgram(cfg); err != nil {
		return usageError(err)
	}
	lock, err := o.runDir.Lock(cfg.Name)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := removeLeftovers(o, cfg.Name, false); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := &driver{o: o, cfg: cfg, log: log, st: rundir.State{Name: cfg.Name, Pid: os.Getpid(), Started: time.Now()}}
	sup := supervise.New(d, supervise.Config{Persist: cfg.Persist, HoldoffMax: cfg.HoldoffMax, MaxFail: cfg.MaxFail}, hup, log)
	defer o.runDir.Remove(cfg.Name)
	sess, err := sup.Connect(ctx)
	if err != nil && cfg.RetryFirst && ctx.Err() == nil && !d.Permanent(err) {
		// At boot the network or the server may not be there yet: say
		// so to whoever started us, and keep dialling as after a drop.
		log.Warn("first dial failed: redialling (RETRY_FIRST_DIAL)", "err", err)
		if o.notifyFD >= 0 {
			notify(readiness{Retrying: err.Error()})
			notify = func(readiness) {} // told once; a later end is in the log and status
		}
		// Under systemd the start is over too: the unit is active, and
		// its start timeout no longer applies to the redials.
		d.wasUp = true
		sdNotify("READY=1\nSTATUS=redialling: the first dial failed (" + safetext.Escape(err.Error()) + ")")
		if sess, err = sup.Retry(ctx, err); sess == nil {
			if err != nil {
				log.Error("giving up", "err", err)
			}
			return err
		}
	} else if err != nil {
		log.Error("start failed", "err", err)
		return err
	}
	if o.notifyFD >= 0 {
		notify(readiness{Info: &d.info})
	} else {
		printUp(o, d.info)
	}
	return sup.Run(ctx, sess)
}

// checkProgram refuses, when running as root, a local pppd that someone
// other than root could replace (the file or a directory on its way, as
// for hooks): root runs it.
func checkProgram(cfg pppssh.Config) error {
	if cfg.Mode != pppssh.ModePPP {
		return nil // no pppd runs here
	}
	if err := rootfile.CheckPath(cfg.PPPD); err != nil {
		return fmt.Errorf("PPPD %s: %w", cfg.PPPD, err)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
