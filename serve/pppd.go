package serve

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

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
		Forwarding: req.NeedsForwarding(),
	}
	if req.Masquerade {
		cfg.Masquerade = append([]netip.Prefix{netip.PrefixFrom(req.Peer, 32)}, req.Routes...)
	}
	return cfg
}
