package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

const confDir = "/etc/vpn-pppssh"

// options are the flags that are not configuration keys.
type options struct {
	config     string
	name       string
	foreground bool
	verbose    bool
	json       bool
	notifyFD   int
	stdout     io.Writer
	stderr     io.Writer
	flags      *pflag.FlagSet
	runDir     rundir.Dir
	getenv     func(string) string // os.Getenv; tests pass their own
}

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("vpn-pppssh", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVarP(&o.config, "config", "c", filepath.Join(confDir, "vpn.conf"), "configuration file")
	fs.StringVarP(&o.name, "name", "n", "", "link name; selects "+confDir+"/NAME.conf")
	fs.BoolVar(&o.foreground, "foreground", false, "start: stay attached instead of leaving a background process")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log debug detail")
	fs.BoolVar(&o.json, "json", false, "status: print JSON, for scripts")
	fs.IntVar(&o.notifyFD, "notify-fd", -1, "internal: report readiness on this file descriptor")
	fs.MarkHidden("notify-fd")
	for _, k := range pppssh.Keys {
		fs.String(k.Flag(), "", k.Usage+" ("+k.Name+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(o.stderr, "usage: vpn-pppssh [flags] start|stop|restart|status|config|cleanup\n       vpn-pppssh serve   (on the server, run by clients through sudo: see HOWTO.md)\n\nflags (each KEY of the configuration file has one):\n%s", fs.FlagUsages())
	}
	return fs
}

func run(ctx context.Context, args []string) error {
	return runWith(ctx, &options{stdout: os.Stdout, stderr: os.Stderr, runDir: rundir.Default, getenv: os.Getenv}, args)
}

// runWith is run with its outputs and state directory chosen by the caller.
func runWith(ctx context.Context, o *options, args []string) error {
	o.flags = newFlagSet(o)
	if err := o.flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return usageError(err)
	}
	if o.flags.NArg() != 1 {
		o.flags.Usage()
		return &exitError{code: exitUsage}
	}
	command := o.flags.Arg(0)
	if command == "serve" {
		return serveCommand(ctx, o)
	}
	if o.getenv == nil {
		o.getenv = os.Getenv
	}
	if err := refuseDelegatedFlags(o.flags, o.getenv); err != nil {
		return usageError(err)
	}
	if o.flags.Changed("notify-fd") && o.notifyFD < 3 {
		// 0-2 are the terminal or the log: root would write to and
		// close them.
		return usageError(fmt.Errorf("--notify-fd=%d: only a descriptor above 2 can be the readiness pipe", o.notifyFD))
	}
	// The name is checked once, here, before any path is built from it
	// (the configuration file, state, log and lock files, routing journal).
	if err := rundir.CheckName(linkName(o)); err != nil {
		return usageError(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		// A link that is running can be stopped, queried and cleaned up
		// by its name even after its file was broken.
		if command != "stop" && command != "status" && command != "cleanup" {
			return usageError(err)
		}
		fmt.Fprintf(o.stderr, "vpn-pppssh: warning: %s\n", safetext.Lines(err.Error()))
	}
	switch command {
	case "start":
		if o.foreground {
			return runForeground(ctx, o, cfg)
		}
		return startBackground(o, cfg)
	case "stop":
		return stop(o, cfg)
	case "restart":
		if err := stop(o, cfg); err != nil {
			return err
		}
		return startBackground(o, cfg)
	case "status":
		return status(o, cfg)
	case "config":
		return printConfig(o, cfg)
	case "cleanup":
		return cleanupStale(o, cfg.Name, true)
	default:
		return usageError(fmt.Errorf("unknown command %q (want start, stop, restart, status, config or cleanup)", command))
	}
}

// linkName is the link's name: --name, else the configuration file's
// name without ".conf".
func linkName(o *options) string {
	if o.name != "" {
		return o.name
	}
	return strings.TrimSuffix(filepath.Base(o.config), ".conf")
}

// loadConfig builds the effective configuration: defaults, then the file,
// then flags. The link is named by --name, else after the file; the caller
// has checked that name.
func loadConfig(o *options) (pppssh.Config, error) {
	cfg := pppssh.Defaults()
	path := o.config
	explicitFile := o.flags.Changed("config")
	if o.name != "" && !explicitFile {
		path = filepath.Join(confDir, o.name+".conf")
		explicitFile = true
	}
	cfg.Name = linkName(o)
	notices, err := cfg.LoadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicitFile:
		// No default file: flags alone may configure the link.
	case err != nil:
		return cfg, err
	}
	for _, n := range notices {
		fmt.Fprintf(o.stderr, "vpn-pppssh: %s\n", safetext.Escape(n))
	}
	for _, k := range pppssh.Keys {
		if !o.flags.Changed(k.Flag()) {
			continue
		}
		v, _ := o.flags.GetString(k.Flag())
		if err := cfg.Set(k.Name, v); err != nil {
			return cfg, fmt.Errorf("--%s: %w", k.Flag(), err)
		}
	}
	return cfg, nil
}

// printConfig prints the effective configuration in the file's own syntax.
func printConfig(o *options, cfg pppssh.Config) error {
	fmt.Fprintf(o.stdout, "# link %s\n", cfg.Name)
	for _, k := range pppssh.Keys {
		fmt.Fprintf(o.stdout, "%s=%s\n", k.Name, pppssh.ShellQuote(cfg.Get(k.Name)))
	}
	if err := cfg.Validate(); err != nil {
		return usageError(err)
	}
	return nil
}
