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
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/ifaddr"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// pppdGoodbye is how long pppd may take to end once told to: about half
// of sudo's 2 s between its SIGTERM and its SIGKILL.
const pppdGoodbye = time.Second

// runPPPD runs pppd on the session, applies the link's changes once it is
// up and returns when pppd ends; ready (when not nil) is set once the
// link was up with its changes applied.
func runPPPD(ctx context.Context, pppd string, o Options, req pppssh.Request, router *routing.Router, log *slog.Logger, ready *bool) error {
	logr, logw, err := os.Pipe()
	if err != nil {
		return err
	}
	args := pppssh.ServerPPPDArgs(req)
	if o.tty != nil {
		// The terminal's checked name (ptsPath), so that pppd never
		// looks its stdin's name up itself.
		args = append([]string{o.ttyPath}, args...)
	}
	for _, a := range o.offerDNS {
		args = append(args, "ms-dns", a.String())
	}
	cmd := exec.Command(pppd, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.stderr()
	if o.tty != nil {
		cmd.Stdin, cmd.Stdout = o.tty, o.tty
	}
	cmd.ExtraFiles = []*os.File{logw} // fd 3: pppd's logfd
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// A helper killed outright (SIGKILL, by replaceOwn after its grace
	// time, or by the admin) takes its pppd with it: the kernel sends
	// pppd SIGTERM when the thread that started it ends, so that thread
	// is held for the start and never ends before the process does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = startLocked(cmd)
	logw.Close()
	if err != nil {
		logr.Close()
		return fmt.Errorf("starting %s: %w", pppd, err)
	}
	ppp := pppssh.NewPPPDLog(req.CarriesIPv6())
	stderr := o.stderr()
	go func() {
		defer logr.Close()
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text()) // to the client's log
			ppp.Line(sc.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Told to stop: pppd gets pppdGoodbye to say goodbye to the client
	// (LCP Terminate-Request, answered at once by a live peer), then
	// SIGKILL, so that this helper has undone its changes before whoever
	// told it to stop gives up on it: sudo, relaying a signal that ends
	// the command (SIGALRM), kills it 2 s after its SIGTERM.
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(pppdGoodbye):
			log.Warn("pppd did not end within its goodbye time: killing it", "after", pppdGoodbye)
			cmd.Process.Kill()
			return <-exited
		}
	}
	up, ipcp, again := ppp.Up(), ppp.IPCPUp(), ppp.Again()
	var ipv6Late <-chan time.Time
	for {
		select {
		case <-ipcp:
			// IPv4 passes from now on, but the source checks come with
			// the link's changes, once IPV6CP is up too: a client must
			// not hold that off.
			ipcp = nil
			if req.CarriesIPv6() {
				ipv6Late = time.After(ipv6Wait)
			}
		case <-again:
			// The client's pppd renegotiated IPCP or IPV6CP: the
			// interface lost its addresses and routes, and may have
			// come back with addresses the policy never saw. The link
			// goes; the client redials.
			log.Error("ending the link", "err", ErrRenegotiated)
			fmt.Fprintln(stderr, pppssh.ServerFailedMarker+ErrRenegotiated.Error())
			stop()
			return ErrRenegotiated
		case <-ipv6Late:
			err := fmt.Errorf("IPV6CP did not come up within %v of IPCP", ipv6Wait)
			log.Error("giving up on the link", "err", err)
			fmt.Fprintln(stderr, pppssh.ServerFailedMarker+err.Error())
			stop()
			return err
		case err := <-exited:
			log.Info("pppd ended", "err", err)
			if _, killed := killedBySignal(err); killed {
				iface, _, _ := ppp.Result()
				if rerr := removePidFiles(pppdRunDir, cmd.Process.Pid, iface, pppssh.ServerLinkname(req)); rerr != nil {
					log.Warn("removing the killed pppd's pid files", "err", rerr)
				}
			}
			return err
		case <-ctx.Done():
			log.Info("stopping pppd")
			return stop()
		case <-up:
			up, ipv6Late = nil, nil // once per session
			iface, local, remote := ppp.Result()
			if err := checkIface(iface); err != nil {
				log.Error("refusing the link's interface", "err", err)
				fmt.Fprintln(stderr, pppssh.ServerFailedMarker+err.Error())
				stop()
				return err
			}
			if err := checkNegotiated(req, local, remote); err != nil {
				// ipcp-accept-local/-remote in the server's own
				// options let the client's pppd move the link to
				// addresses the policy never saw: nothing is applied
				// for them, and the link goes.
				log.Error("refusing the negotiated addresses", "err", err)
				fmt.Fprintln(stderr, pppssh.ServerFailedMarker+err.Error())
				stop()
				return err
			}
			if err := ifaddr.SetUpPPP(iface, req.LocalPrefix6(), req.Peer6); err != nil {
				log.Error("setting up the link's IPv6", "err", err)
				fmt.Fprintln(stderr, pppssh.ServerFailedMarker+err.Error())
				stop()
				return err
			}
			if err := router.Set(routerConfig(req, iface)); err != nil {
				// The client fails its start with this and takes the
				// link down; pppd's end then undoes what was applied.
				log.Error("applying the server's routes", "err", err)
				fmt.Fprintln(stderr, pppssh.ServerFailedMarker+strings.ReplaceAll(err.Error(), "\n", "; "))
			} else {
				log.Info("server side up", "iface", iface, "changes", len(router.Applied()), "firewall", router.Firewall())
				fmt.Fprintln(stderr, pppssh.ServerReadyMarker)
				if ready != nil {
					*ready = true
				}
			}
		}
	}
}

// ErrRenegotiated is returned when the client's pppd renegotiated after
// the link was up.
var ErrRenegotiated = errors.New("the client renegotiated IPCP or IPV6CP after the link was up: ending it")

// ipv6Wait bounds the time between IPCP and IPV6CP coming up: the two
// pppds negotiate both at once, within milliseconds of each other.
const ipv6Wait = 10 * time.Second

// checkIface refuses an interface name that pppd's log gave but pppd
// could not have made: its units are pppN. Whatever is applied next
// (addresses, sysctls, routes, rules) is applied to that name.
func checkIface(iface string) error {
	n, ok := strings.CutPrefix(iface, "ppp")
	if ok && n != "" && len(n) <= 6 && strings.Trim(n, "0123456789") == "" {
		return nil
	}
	return fmt.Errorf("pppd reported the interface %q, which is no ppp unit", iface)
}

// ErrNegotiated is returned when pppd came up with other tunnel addresses
// than the request's, which the policy checked.
var ErrNegotiated = errors.New("pppd negotiated other addresses than the request's")

// checkNegotiated refuses a link whose negotiated addresses are not the
// ones the request asked for and the policy allowed.
func checkNegotiated(req pppssh.Request, local, remote netip.Addr) error {
	if local == req.Local && remote == req.Peer {
		return nil
	}
	return fmt.Errorf("%w: local %s and peer %s, not the requested local %s and peer %s (ipcp-accept-local or ipcp-accept-remote in the server's pppd options?)",
		ErrNegotiated, local, remote, req.Local, req.Peer)
}

// startLocked starts cmd from a thread locked for the call: Pdeathsig
// fires when the starting thread ends, and a locked thread is not handed
// to other goroutines during the fork.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// routerConfig is what the server does for a request: routes back to the
// client's networks, forwarding, and masquerade of the client's addresses.
func routerConfig(req pppssh.Request, iface string) routing.Config {
	cfg := routing.Config{
		Iface:       iface,
		Networks:    req.Routes,
		Forwarding:  req.NeedsForwarding4(),
		Forwarding6: req.NeedsForwarding6(),
		IPv6:        req.CarriesIPv6(),
		// The client may send only as its tunnel addresses and the
		// networks routed to it, never as another client or as a host
		// of the server's own networks.
		SourceCheck: true,
	}
	if req.EffectiveMode() == pppssh.ModeEthernet {
		// A shared subnet: the client is the next hop to its networks.
		cfg.Gateway = req.Peer
		if req.CarriesIPv6() {
			cfg.Gateway6 = req.Peer6
		}
	}
	if req.Masquerade {
		for _, a := range []netip.Addr{req.Peer, req.Peer6} {
			if a.IsValid() {
				cfg.Masquerade = append(cfg.Masquerade, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		cfg.Masquerade = append(cfg.Masquerade, req.Routes...)
	}
	return cfg
}
