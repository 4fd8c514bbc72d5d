// Package serve is the server half of vpn-pppssh: `vpn-pppssh serve`, run
// on the server through sudo as the SSH session's command when the client
// sets SERVER_HELPER. It reads one validated request from the session
// (pppssh.Request), checks it against the server's policy, answers, runs
// pppd on the session's stdin and stdout exactly as the classic
// `sudo pppd nodetach notty noauth` does, and once the link is up applies
// the server's routes, forwarding and masquerade for it. When pppd ends,
// for any reason (the client stopped, vanished, or the helper was told to
// stop), it undoes them.
//
// One helper owns each client tunnel address, through a lock in the state
// directory: a new session for the same address ends the old one first, so
// a client that redials never meets its own stale server side.
package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// Options are the server half's settings; Stdin and Stdout are the SSH
// session and carry PPP once the request is answered.
type Options struct {
	PolicyPath string // the admin's limits, and which pppd to run
	StateDir   rundir.Dir
	Stdin      *os.File
	Stdout     *os.File
	Log        *slog.Logger
}

// Run serves one link and returns when its pppd has ended and the server's
// changes are undone.
func Run(ctx context.Context, o Options) error {
	req, err := pppssh.ReadRequest(o.Stdin)
	if err != nil {
		pppssh.WriteReply(o.Stdout, err)
		return err
	}
	log := o.Log.With("link", req.Link, "peer", req.Peer)
	policy, err := pppssh.LoadPolicy(o.PolicyPath)
	if err == nil {
		err = policy.Check(req)
	}
	if err != nil {
		pppssh.WriteReply(o.Stdout, err)
		return err
	}
	name := "serve-" + req.Peer.String()
	lock, err := takeOver(o.StateDir, name, log)
	if err != nil {
		pppssh.WriteReply(o.Stdout, err)
		return err
	}
	defer lock.Release()
	cleanupDead(o.StateDir, log)
	router, err := routing.New(name, string(o.StateDir))
	if err != nil {
		pppssh.WriteReply(o.Stdout, err)
		return err
	}
	defer func() {
		if err := router.Close(); err != nil {
			log.Error("undoing the server's changes", "err", err)
		}
	}()
	if err := pppssh.WriteReply(o.Stdout, nil); err != nil {
		return err
	}
	return runPPPD(ctx, policy.PPPD, o, req, router, log)
}

// takeOver takes the lock for a client address, ending a helper that still
// holds it (the client's previous session, which it has given up on).
func takeOver(dir rundir.Dir, name string, log *slog.Logger) (*rundir.Lock, error) {
	lock, err := dir.Lock(name)
	if !errors.Is(err, rundir.ErrRunning) {
		return lock, err
	}
	pid, _ := dir.Owner(name)
	if pid > 0 {
		log.Info("ending the previous session for this address", "pid", pid)
		syscall.Kill(pid, syscall.SIGTERM)
		if !dir.WaitReleased(name, 8*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
			dir.WaitReleased(name, 2*time.Second)
		}
	}
	return dir.Lock(name)
}

// cleanupDead undoes the journals of helpers that died without undoing
// their changes (kill -9, a crash); a journal whose lock is free is dead.
func cleanupDead(dir rundir.Dir, log *slog.Logger) {
	paths, _ := filepath.Glob(filepath.Join(string(dir), "serve-*.journal"))
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".journal")
		lock, err := dir.Lock(name)
		if err != nil {
			continue // alive, or unreadable
		}
		r, err := routing.New(name, string(dir))
		if err == nil {
			err = r.Close()
		}
		if err != nil {
			log.Error("undoing leftovers of a dead session", "journal", p, "err", err)
		} else {
			log.Info("undid leftovers of a dead session", "journal", p)
		}
		lock.Release()
	}
}

// runPPPD runs pppd on the session, applies the link's changes once it is
// up and returns when pppd ends.
func runPPPD(ctx context.Context, pppd string, o Options, req pppssh.Request, router *routing.Router, log *slog.Logger) error {
	logr, logw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(pppd, pppssh.ServerPPPDArgs(req)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{logw} // fd 3: pppd's logfd
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	err = cmd.Start()
	logw.Close()
	if err != nil {
		logr.Close()
		return fmt.Errorf("starting %s: %w", pppd, err)
	}
	ppp := pppssh.NewPPPDLog()
	go func() {
		defer logr.Close()
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			fmt.Fprintln(os.Stderr, sc.Text()) // to the client's log
			ppp.Line(sc.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	up := ppp.Up()
	for {
		select {
		case err := <-exited:
			log.Info("pppd ended", "err", err)
			return err
		case <-ctx.Done():
			log.Info("stopping pppd")
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				return err
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				return <-exited
			}
		case <-up:
			up = nil // once per session
			iface, _, _ := ppp.Result()
			if err := router.Set(routerConfig(req, iface)); err != nil {
				// The client fails its start with this and takes the
				// link down; pppd's end then undoes what was applied.
				log.Error("applying the server's routes", "err", err)
				fmt.Fprintln(os.Stderr, pppssh.ServerFailedMarker+strings.ReplaceAll(err.Error(), "\n", "; "))
			} else {
				log.Info("server side up", "iface", iface, "changes", len(router.Applied()), "firewall", router.Firewall())
				fmt.Fprintln(os.Stderr, pppssh.ServerReadyMarker)
			}
		}
	}
}

// routerConfig is what the server does for a request: routes back to the
// client's networks, forwarding, and masquerade of the client's addresses.
func routerConfig(req pppssh.Request, iface string) routing.Config {
	cfg := routing.Config{
		Iface:      iface,
		Networks:   req.Routes,
		Forwarding: req.Forward || len(req.Routes) > 0 || req.Masquerade,
	}
	if req.Masquerade {
		cfg.Masquerade = append([]netip.Prefix{netip.PrefixFrom(req.Peer, 32)}, req.Routes...)
	}
	return cfg
}
