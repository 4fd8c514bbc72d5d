package main

import (
	"cmp"
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
	"github.com/vpn-pppssh/vpn-pppssh/internal/version"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

const confDir = "/etc/vpn-pppssh"

// options are the flags that are not configuration keys.
type options struct {
	config     string
	name       string
	confDir    string // where --name looks; confDir unless a test sets it
	foreground bool
	version    bool
	man        string
	verbose    bool
	json       bool
	via        string
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
	fs.StringVar(&o.via, "via", "", "redial: only when the link's SSH connection leaves from this local `address`")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.IntVar(&o.notifyFD, "notify-fd", -1, "internal: report readiness on this file descriptor")
	fs.MarkHidden("notify-fd")
	fs.StringVar(&o.man, "print-man", "", "internal: print manual page 8 or 5 (make man)")
	fs.MarkHidden("print-man")
	for _, k := range pppssh.Keys {
		fs.String(k.Flag(), "", k.Usage+" ("+k.Name+")")
	}
	// --help is asked for: the usage goes to stdout. A usage error
	// prints its own short message to stderr (runWith).
	fs.Usage = func() { printUsage(o.stdout, fs) }
	return fs
}

const usageHead = `usage: vpn-pppssh [flags] start|stop|restart|redial|status|config|cleanup
       vpn-pppssh serve   (on the server, run by clients through sudo)
       vpn-pppssh server-setup [--apply] --key CLIENT.pub ...   (on the server, as root)

The link is /etc/vpn-pppssh/vpn.conf, or NAME.conf with -n NAME, or the
file given with -c.

commands:
  start     bring the link up; it stays up in a background process
            (--foreground: stay attached, for systemd and supervisors)
  stop      take the link down and undo every change it made
  restart   stop, then start
  redial    take the link down and dial again now (its SIGHUP); --via
            ADDR: only when its SSH connection leaves from ADDR
  status    the link's state; without -c or -n, one line for every link
            configured or running (--json: JSON, for scripts)
  config    print the effective configuration, with its sources
  cleanup   undo what a link that died (kill -9, power loss) left behind
  serve     the server half (SERVER_HELPER): clients run it through sudo
  server-setup
            on the server: the account, its key, sudoers and a policy for
            clients of the server half (--help; --apply makes the changes)

exit codes:
  0  success (also: stop when not running, start when already running)
  1  the action failed; the message says why
  2  bad usage or configuration
  3  status: the link (or one of the links) is not running
  6  the server's host key is unknown or has changed: an admin must look

`

func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "%sflags (each KEY of the configuration file has one):\n%s\nSee vpn-pppssh(8), vpn-pppssh.conf(5) and HOWTO.md.\n", usageHead, fs.FlagUsages())
}

func run(ctx context.Context, args []string) error {
	return runWith(ctx, &options{stdout: os.Stdout, stderr: os.Stderr, runDir: rundir.Default, getenv: os.Getenv}, args)
}

// runWith is run with its outputs and state directory chosen by the caller.
func runWith(ctx context.Context, o *options, args []string) error {
	if len(args) > 0 && args[0] == "server-setup" {
		if o.getenv == nil {
			o.getenv = os.Getenv
		}
		// It writes sudoers and authorized_keys: only root itself may
		// run it, never an account that a sudo rule for this program
		// lets in (which would name its own helper and key).
		if by := delegatedBy(o.getenv); by != "" {
			return usageError(fmt.Errorf("server-setup is for root itself, not through %s", by))
		}
		return serverSetup(o, args[1:])
	}
	o.flags = newFlagSet(o)
	if err := o.flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return usageError(fmt.Errorf("%w (vpn-pppssh --help lists the commands and flags)", err))
	}
	if o.man != "" {
		return printMan(o.stdout, o.man, o.flags)
	}
	if o.version {
		fmt.Fprintf(o.stdout, "vpn-pppssh %s, helper protocol %d\n", version.Long(), pppssh.RequestVersion)
		return nil
	}
	if o.flags.NArg() != 1 {
		return usageError(errors.New("want one command: start, stop, restart, redial, status, config, cleanup or serve (vpn-pppssh --help says more)"))
	}
	command := o.flags.Arg(0)
	if command == "status" && !o.flags.Changed("config") && !o.flags.Changed("name") {
		return statusAll(o)
	}
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
		if command != "stop" && command != "status" && command != "cleanup" && command != "redial" {
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
	case "redial":
		return redial(o, cfg)
	case "status":
		return status(o, cfg)
	case "config":
		return printConfig(o, cfg)
	case "cleanup":
		return cleanupStale(o, cfg.Name, true)
	default:
		return usageError(fmt.Errorf("unknown command %q (want start, stop, restart, redial, status, config or cleanup)", command))
	}
}

// configDir is where --name and status look: confDir unless a test set
// another.
func (o *options) configDir() string { return cmp.Or(o.confDir, confDir) }

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
		path = filepath.Join(o.configDir(), o.name+".conf")
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
// fileQuote writes v as the configuration file reads it back: quoted for
// a shell, or, for a value with a single quote (SSH_PROXY_COMMAND="sh -c
// '...'"), in double quotes, which the file takes when nothing in them
// would expand.
func fileQuote(v string) string {
	if !strings.Contains(v, "'") || strings.ContainsAny(v, "\"$`\\") {
		return pppssh.ShellQuote(v)
	}
	return `"` + v + `"`
}

func printConfig(o *options, cfg pppssh.Config) error {
	fmt.Fprintf(o.stdout, "# link %s\n", cfg.Name)
	for _, k := range pppssh.Keys {
		fmt.Fprintf(o.stdout, "%s=%s\n", k.Name, fileQuote(cfg.Get(k.Name)))
	}
	if err := cfg.Validate(); err != nil {
		return usageError(err)
	}
	// What the keys leave to ~/.ssh and known_hosts, resolved as start
	// would, as comments: the output stays a file a link could read. What
	// start would fail on here is said, but is no configuration error.
	r, err := cfg.Resolve(pppssh.HomeDir())
	if err != nil {
		fmt.Fprintf(o.stdout, "# start would fail: %s\n", safetext.Escape(err.Error()))
		return nil
	}
	fmt.Fprintf(o.stdout, "# resolved as start would (~/.ssh/config, known_hosts):\n")
	fmt.Fprintf(o.stdout, "#   server       %s\n", safetext.Escape(r.Server))
	fmt.Fprintf(o.stdout, "#   keys         %s\n", safetext.Escape(strings.Join(r.Identities, ", ")))
	fmt.Fprintf(o.stdout, "#   ciphers      %s\n", strings.Join(r.Ciphers, ","))
	fmt.Fprintf(o.stdout, "#   known_hosts  %s\n", safetext.Escape(strings.Join(r.KnownHosts, ", ")))
	for _, h := range r.Hosts {
		fmt.Fprintf(o.stdout, "#   %s\n", safetext.Escape(h))
	}
	return nil
}
