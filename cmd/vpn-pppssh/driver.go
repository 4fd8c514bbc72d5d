package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/hooks"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh/supervise"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel"
	"golang.org/x/crypto/ssh"
)

// driver is what the redial loop (package supervise) drives in this
// program: a session is a pppssh.Link and its networks (routes, rules,
// hooks); a change of phase is written to the state file and told to
// systemd.
type driver struct {
	o      *options
	cfg    pppssh.Config
	log    *slog.Logger
	st     rundir.State
	server string      // host:port this host connects to (the first hop), probed while waiting
	info   pppssh.Info // of the last session that came up
	wasUp  bool        // a session came up: systemd has had READY=1
	kept   *ssh.Client // the last session's connection, for the next Dial

	// join joins a link's networks (routes, rules, DNS, the ip-up hooks);
	// nil: joinNetworks. Tests replace it.
	join func(ctx context.Context, info pppssh.Info) (networks, error)
}

// session is a link and its networks: supervise.Session, Keeper and
// Renewer.
type session struct {
	link linkCloser // *pppssh.Link
	net  networks   // *linkNetworks
	d    *driver
}

// linkCloser is what a session needs of a *pppssh.Link once it is up.
type linkCloser interface {
	Done() <-chan struct{}
	Wait() error
	Detach(timeout time.Duration) *ssh.Client
	Lapsed() <-chan struct{}
	Renewed(ctx context.Context) (pppssh.Info, error)
	CloseContext(ctx context.Context) error
}

// Lapsed gets a value each time the link went down in place (PPP: the
// server helper restarted its pppd, and the local pppd renegotiates).
func (s *session) Lapsed() <-chan struct{} { return s.link.Lapsed() }

// Renew takes the networks down as Close would (the ip-down hooks, then
// what is left of the routes and rules: the kernel took those through the
// interface when it went down), waits for the link to come back in place
// and joins its networks again. On failure nothing of the networks is
// left for Close to undo twice.
func (s *session) Renew(ctx context.Context) error {
	err := s.net.close(ctx)
	s.net = &linkNetworks{} // closed: nothing to undo
	if err != nil {
		return fmt.Errorf("taking the networks down: %w", err)
	}
	info, err := s.link.Renewed(ctx)
	if err != nil {
		return err
	}
	nets, err := s.d.joinNets(ctx, info)
	if err != nil {
		return err
	}
	s.net = nets
	s.d.upWith(info, nets)
	return nil
}

// KeepConnection takes the link's SSH connection for the next Dial when
// the link ended by itself and the server answers a keepalive within one
// KEEPALIVE (at most 5 s).
func (s *session) KeepConnection() bool {
	c := s.link.Detach(min(s.d.cfg.Keepalive, 5*time.Second))
	if c == nil {
		return false
	}
	s.d.kept = c
	return true
}

// networks is what a session and the state file need of a
// *linkNetworks: the changes made, and their undoing.
type networks interface {
	close(context.Context) error
	firewall() string
	changes() []string
	dnsLine() string
}

// Done is closed when the link ended by itself.
func (s *session) Done() <-chan struct{} { return s.link.Done() }

// Wait says why the link ended.
func (s *session) Wait() error { return s.link.Wait() }

// Close takes the session down: the networks first (the ip-down hooks
// while the interface still exists, then routes and rules), then the link,
// whatever the first step returned. Both steps' errors are returned.
func (s *session) Close(ctx context.Context) error {
	netErr := s.net.close(ctx)
	var linkErr error
	if err := s.link.CloseContext(ctx); err != nil {
		linkErr = fmt.Errorf("closing the link: %w", err)
	}
	return errors.Join(netErr, linkErr)
}

// Publish writes the state file and tells systemd.
func (d *driver) Publish(s supervise.Status) {
	d.st.Phase, d.st.Redials, d.st.NextAttempt = string(s.Phase), s.Redials, s.NextAttempt
	if s.LastError != nil {
		d.st.LastError, d.st.LastErrorAt = s.LastError.Error(), s.LastErrorAt
	}
	d.st.Goroutines = runtime.NumGoroutine()
	if err := d.o.runDir.Write(d.st); err != nil {
		d.log.Error("writing state", "err", err)
	}
	// sd_notify takes one assignment per line: whatever goes into STATUS
	// is escaped to one line, so that no text of an error (a joined error,
	// something the server said) can add READY=, MAINPID= or the like.
	status := "STATUS=" + d.st.Phase
	if s.Phase == supervise.Connecting && !d.wasUp {
		// Until the first READY, a Type=notify unit's start is timed
		// by TimeoutStartSec (90 s by default); the first dial may take
		// CONNECT_TIMEOUT and then the ip-up hooks: extend it to that.
		status += fmt.Sprintf("\nEXTEND_TIMEOUT_USEC=%d", startBudget(d.cfg).Microseconds())
	}
	if s.Phase == supervise.Up {
		d.wasUp = true
		status = "READY=1\nSTATUS=up: " + safetext.Escape(d.st.Iface+" "+d.st.Local+" -> "+d.st.Remote)
		if d.st.Mode == pppssh.ModeNone {
			status = fmt.Sprintf("READY=1\nSTATUS=up: %d port forwards", len(d.st.Forwards))
		}
	} else if d.st.LastError != "" {
		status += " (last error: " + safetext.Escape(d.st.LastError) + ")"
	}
	sdNotify(status)
}

// startBudget is how long a first start may take: the dial within
// CONNECT_TIMEOUT, then the ip-up hooks in turn (hooks.Limit each), and
// ten seconds for the rest.
func startBudget(cfg pppssh.Config) time.Duration {
	return cfg.ConnectTimeout + time.Duration(hooks.Count(cfg.IPUpDir))*hooks.Limit + 10*time.Second
}

// Server is the SSH server, once a dial has resolved it.
func (d *driver) Server() string { return d.server }

// Dial brings the link and its networks up once.
func (d *driver) Dial(ctx context.Context, connecting func()) (supervise.Session, error) {
	kept := d.kept // the Link owns it from New on
	d.kept = nil
	link, err := pppssh.New(d.cfg, pppssh.Options{Logger: d.log, Carrier: tunnel.ForLink, Client: kept})
	if err != nil {
		if kept != nil {
			kept.Close()
		}
		return nil, usageError(err) // before anything is published
	}
	connecting()
	d.server = link.Target().FirstAddr()
	if kept != nil {
		d.log.Info("starting again on the kept SSH connection", "link", d.cfg.Name, "server", d.server)
	} else {
		d.log.Info("connecting", "link", d.cfg.Name, "server", d.server, "user", link.Target().User)
	}
	info, err := link.Start(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := d.joinNets(ctx, info)
	if err != nil {
		if cerr := link.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the link: %w", cerr))
		}
		return nil, err
	}
	d.upWith(info, nets)
	return &session{link: link, net: nets, d: d}, nil
}

// joinNets joins the networks of a link that is up.
func (d *driver) joinNets(ctx context.Context, info pppssh.Info) (networks, error) {
	if d.join != nil {
		return d.join(ctx, info)
	}
	return joinNetworks(ctx, d.o, d.cfg, info, d.log)
}

// upWith records a link that came up, with its networks, for the state
// file.
func (d *driver) upWith(info pppssh.Info, nets networks) {
	d.st.Iface, d.st.Local, d.st.Remote = info.Iface, info.Local.String(), info.Remote.String()
	d.st.Local6, d.st.Remote6 = addrOrEmpty(info.Local6), addrOrEmpty(info.Remote6)
	d.st.Server, d.st.Via, d.st.UpSince = info.Server, addrOrEmpty(info.Via), info.Since
	d.st.Mode, d.st.CarrierPid, d.st.ServerIface = info.Mode, info.Pid, info.ServerIface
	d.st.Forwards = info.Forwards
	d.st.Firewall, d.st.Changes, d.st.DNS = nets.firewall(), nets.changes(), nets.dnsLine()
	d.info = info
}

// Permanent errors end the process instead of being redialled: a host key
// that is unknown or changed needs an admin, and a bad configuration will
// not fix itself.
func (d *driver) Permanent(err error) bool { return permanent(err) }

func permanent(err error) bool {
	var ee *exitError
	return hostKeyProblem(err) || errors.As(err, &ee)
}

func hostKeyProblem(err error) bool {
	var unknown *pppssh.UnknownHostError
	var changed *pppssh.HostKeyChangedError
	return errors.As(err, &unknown) || errors.As(err, &changed)
}

// withExitCode gives a host key problem its own exit code.
func withExitCode(err error) error {
	var ee *exitError
	if err != nil && hostKeyProblem(err) && !errors.As(err, &ee) {
		return &exitError{code: exitHostKey, err: err}
	}
	return err
}
