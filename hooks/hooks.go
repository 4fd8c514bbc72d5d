// Package hooks runs an ip-up or ip-down folder the way pppd's Debian
// scripts do with run-parts: every executable whose name is made of
// letters, digits, '_' and '-', in lexical order, with pppd's ip-up
// arguments and variables. A hook that fails or overruns its time limit is
// logged with its output and never takes the link down.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Env is what a hook is told about the link (pppd(8), SCRIPTS).
type Env struct {
	Iface, TTY, Speed, Local, Remote, IPParam string
	Link                                      string // VPN_NAME
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
		"VPN_NAME=" + e.Link,
	}
}

// Limit is how long one hook may run before it is killed.
const Limit = 30 * time.Second

const outputLimit = 4096

// Run runs the hooks in dir and returns the failures, joined; a missing
// folder has no hooks.
func Run(ctx context.Context, dir string, e Env, limit time.Duration, log *slog.Logger) error {
	names, err := list(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, path := range names {
		if err := runOne(ctx, path, e, limit, log); err != nil {
			log.Warn("hook failed", "hook", path, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// list returns the hooks run-parts would run, in order.
func list(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading hook folder: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !validName(e.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
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

func runOne(ctx context.Context, path string, e Env, limit time.Duration, log *slog.Logger) error {
	if err := checkOwner(path); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, e.Args()...)
	cmd.Env = e.Environ()
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
	log.Info("hook ran", "hook", path, "took", took, "output", out.String())
	return nil
}

// checkOwner refuses, when running as root, a hook others could have
// written.
func checkOwner(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := rootfile.Check(fi); err != nil {
		return fmt.Errorf("not run: %w", err)
	}
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
