// Package hooks runs an ip-up or ip-down folder the way pppd's Debian
// scripts do with run-parts: every executable whose name is made of
// letters, digits, '_' and '-', in lexical order, with pppd's ip-up
// arguments and variables. A hook that fails or overruns its time limit is
// logged with its output and never takes the link down.
//
// Every mode runs the same hooks with the same arguments and variables:
//
//	$1 PPP_IFACE   the client's interface (ppp0; tun0 or tap0)
//	$2 PPP_TTY     ppp: pppd's pty; tun and ethernet: /dev/net/tun
//	$3 PPP_SPEED   ppp: 38400, what pppd passes for a pty; tun and ethernet: 0
//	$4 PPP_LOCAL   the client's address (empty for a bridge port without one)
//	$5 PPP_REMOTE  the server's address (empty when the server's tap is a
//	               bridge port without one)
//	$6 PPP_IPPARAM IPPARAM
//	VPN_NAME       the link's name
//	VPN_MODE       ppp, tun or ethernet
//	VPN_LOCAL6     the client's IPv6 address, when the link carries IPv6
//	VPN_REMOTE6    the server's IPv6 address, likewise
//
// The hooks run as root, so what runs must be what was checked. As root,
// the folder and every directory above it must be root's alone
// (rootfile.CheckPath). Each hook is opened without following a symbolic
// link (a symbolic link is refused, not followed), checked on the open
// file (a regular, executable file owned by root and not writable by group
// or others) and run from that open file, through /proc/self/fd/3 in the
// child: renaming or linking another program into its place after the
// check changes nothing. A script run that way sees /proc/self/fd/3 as $0
// (it keeps fd 3 open, read-only); its real path is in $VPN_HOOK.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"golang.org/x/sys/unix"
)

// Env is what a hook is told about the link (pppd(8), SCRIPTS).
type Env struct {
	Iface, TTY, Speed, Local, Remote, IPParam string
	Link                                      string // VPN_NAME
	Mode                                      string // VPN_MODE: ppp, tun or ethernet
	Local6, Remote6                           string // VPN_LOCAL6, VPN_REMOTE6: the link's IPv6 addresses, empty without
}

// Args are pppd's ip-up arguments: interface, tty, speed, local and remote
// address, ipparam.
func (e Env) Args() []string { return []string{e.Iface, e.TTY, e.Speed, e.Local, e.Remote, e.IPParam} }

// Environ is Debian's PPP_* variables and VPN_NAME, with a fixed PATH.
func (e Env) Environ() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"PPP_IFACE=" + e.Iface, "PPP_TTY=" + e.TTY, "PPP_SPEED=" + e.Speed,
		"PPP_LOCAL=" + e.Local, "PPP_REMOTE=" + e.Remote, "PPP_IPPARAM=" + e.IPParam,
		"VPN_NAME=" + e.Link, "VPN_MODE=" + e.mode(),
		"VPN_LOCAL6=" + e.Local6, "VPN_REMOTE6=" + e.Remote6,
	}
}

func (e Env) mode() string {
	if e.Mode == "" {
		return "ppp"
	}
	return e.Mode
}

// Limit is how long one hook may run before it is killed.
const Limit = 30 * time.Second

const outputLimit = 4096

// hookExec is the path the child executes: its fd 3, the hook's open file
// (the first of ExtraFiles). /proc/self is the child's own at execve.
const hookExec = "/proc/self/fd/3"

// Run runs the hooks in dir and returns the failures, joined, after
// logging them; a missing folder, or none (""), has no hooks.
func Run(ctx context.Context, dir string, e Env, limit time.Duration, log *slog.Logger) error {
	if dir == "" {
		return nil
	}
	d, err := openDir(dir)
	if err == nil && d != nil {
		defer d.Close()
		var names []string
		if names, err = list(d); err == nil {
			return runAll(ctx, d, dir, names, e, limit, log)
		}
	}
	if err != nil {
		log.Warn("hooks not run", "folder", dir, "err", err)
	}
	return err
}

// Count is how many hooks dir may hold (the names run-parts would
// consider), for a caller that must bound how long Run takes: at most
// Count times the limit. A missing or unreadable folder counts 0.
func Count(dir string) int {
	if dir == "" {
		return 0
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := list(d)
	if err != nil {
		return 0
	}
	return len(names)
}

// runAll opens, checks and runs each named hook in turn.
func runAll(ctx context.Context, d *os.File, dir string, names []string, e Env, limit time.Duration, log *slog.Logger) error {
	var errs []error
	for _, name := range names {
		h, err := open(d, dir, name)
		if err == nil && h == nil {
			continue // not a hook: run-parts skips it too
		}
		if err == nil {
			err = h.run(ctx, e, limit, log)
			h.Close()
		}
		if err != nil {
			path := filepath.Join(dir, name)
			log.Warn("hook failed", "hook", path, "err", err)
			errs = append(errs, fmt.Errorf("hook %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// openDir opens the hook folder once its path is found safe; it returns
// nil and no error when the folder does not exist.
func openDir(dir string) (*os.File, error) {
	if err := rootfile.CheckPath(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("hook folder: no hooks run: %w", err)
	}
	// Symbolic links on the way are followed: CheckPath found each of
	// them root's, in folders only root can change, so the folder opened
	// is the one checked.
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading hook folder: %w", err)
	}
	return d, nil
}

// list returns the names run-parts would consider, in order.
func list(d *os.File) ([]string, error) {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading hook folder %s: %w", d.Name(), err)
	}
	var out []string
	for _, n := range names {
		if validName(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// validName is run-parts' default (LANANA) name rule; it leaves out
// editor backups and dpkg leftovers such as hook~ and hook.dpkg-old.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// hook is a hook's file, open and checked; it runs from this descriptor.
type hook struct {
	path string
	f    *os.File // O_PATH: it can be executed and stat'ed, not read or written
}

// open opens name in the folder d without following a symbolic link and
// checks the open file. It returns nil and no error for a file run-parts
// would skip (not a regular file, not executable).
func open(d *os.File, dir, name string) (*hook, error) {
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		f.Close()
		return nil, errors.New("not run: it is a symbolic link; put the program itself in the folder")
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		f.Close()
		return nil, nil
	}
	if err := rootfile.Check(fi); err != nil {
		f.Close()
		return nil, fmt.Errorf("not run: %w", err)
	}
	return &hook{path: f.Name(), f: f}, nil
}

func (h *hook) Close() error { return h.f.Close() }

// run executes the open file, with a time limit.
func (h *hook) run(ctx context.Context, e Env, limit time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookExec, e.Args()...)
	cmd.Args[0] = h.path
	cmd.Env = append(e.Environ(), "VPN_HOOK="+h.path)
	cmd.ExtraFiles = []*os.File{h.f} // fd 3: hookExec
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&out}, &limited{&out}
	// Its own process group, killed whole at the time limit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	begin := time.Now()
	err := cmd.Run()
	took := time.Since(begin).Round(time.Millisecond)
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("killed after %v (output: %q)", limit, out.String())
	}
	if err != nil {
		return fmt.Errorf("%w (output: %q)", err, out.String())
	}
	log.Info("hook ran", "hook", h.path, "took", took, "output", out.String())
	return nil
}

// limited keeps the first outputLimit bytes and swallows the rest.
type limited struct{ b *bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := outputLimit - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}
