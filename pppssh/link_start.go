package pppssh

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/forward"
	"golang.org/x/crypto/ssh"
)

type dialResult struct {
	client *ssh.Client
	err    error
}

// newCarrierFor makes the carrier of the link's mode: the PPP carrier of
// this package, or the one Options.Carrier makes for tun and ethernet.
func (l *Link) newCarrierFor() (Carrier, error) {
	switch l.cfg.Mode {
	case ModePPP, "":
		return newPPPCarrier(l.cfg, l.log), nil
	case ModeNone:
		return newNoneCarrier(), nil
	}
	if l.newCarrier == nil {
		return nil, fmt.Errorf("MODE=%s is not available in this build", l.cfg.Mode)
	}
	return l.newCarrier(l.cfg, l.log)
}

// start dials the server while the carrier prepares its local side, then
// has the carrier bring up the server's side over the connection.
func (l *Link) start(ctx context.Context) (Info, error) {
	if l.reused {
		return l.startReused(ctx)
	}
	// Local files first: a wrong key or known_hosts path fails before
	// anything is started.
	hk, err := loadHostKeys(l.cfg.SSHKnownHosts, l.home)
	if err != nil {
		return Info{}, err
	}
	keys, closeAgent, err := signers(l.target, l.home, l.log)
	if err != nil {
		return Info{}, err
	}
	hopKeys, closeHopAgents, err := jumpSigners(l.target, keys, l.home, l.log)
	if err != nil {
		closeAgent()
		return Info{}, err
	}
	closeAgents := func() { closeAgent(); closeHopAgents() }
	c, err := l.newCarrierFor()
	if err != nil {
		closeAgents()
		return Info{}, err
	}
	l.carrier = c
	begin := time.Now()
	dialed := make(chan dialResult, 1)
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()
	go func() {
		c, err := dial(dialCtx, l.target, hk, keys, hopKeys, l.log)
		closeAgents()
		dialed <- dialResult{c, err}
	}()
	if err := c.Prepare(ctx); err != nil {
		// No link without the local side: say so now, not after a login
		// that may take until CONNECT_TIMEOUT.
		cancelDial()
		if r := <-dialed; r.client != nil {
			r.client.Close()
		}
		return Info{}, err
	}
	r := <-dialed
	l.client = r.client
	if r.err != nil {
		return Info{}, r.err
	}
	loggedIn := time.Since(begin)
	l.log.Debug("logged in", "after", loggedIn)
	return l.up(ctx, c, begin, loggedIn.Round(time.Millisecond))
}

// startReused starts the carrier on the connection Options.Client gave:
// no dial, no login.
func (l *Link) startReused(ctx context.Context) (Info, error) {
	c, err := l.newCarrierFor()
	if err != nil {
		return Info{}, err
	}
	l.carrier = c
	begin := time.Now()
	if err := c.Prepare(ctx); err != nil {
		return Info{}, err
	}
	return l.up(ctx, c, begin, "reused")
}

// up starts the carrier's server side over l.client and the link's
// goroutines; login (how long it took, or "reused") is logged.
func (l *Link) up(ctx context.Context, c Carrier, begin time.Time, login any) (Info, error) {
	ci, err := l.startCarrier(ctx, c)
	if err != nil {
		return Info{}, err
	}
	ci = ci.complete(l.cfg)
	if specs := l.cfg.Forwards(); len(specs) > 0 {
		fw, err := forward.Start(l.client, specs, l.log.With("component", "forward"))
		if err != nil {
			return Info{}, err
		}
		l.forwards = fw
	}
	l.info = Info{Name: l.cfg.Name, CarrierInfo: ci,
		Server: l.target.describe(), Since: time.Now()}
	if l.forwards != nil {
		l.info.Forwards = l.forwards.Listening()
	}
	if ap, err := netip.ParseAddrPort(l.client.RemoteAddr().String()); err == nil {
		l.info.ServerAddr = ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(l.client.LocalAddr().String()); err == nil {
		l.info.Via = ap.Addr().Unmap()
	}
	attrs := []any{"mode", ci.Mode, "iface", ci.Iface}
	if ci.ServerIface != "" {
		attrs = append(attrs, "server_iface", ci.ServerIface)
	}
	l.log.Info("link up", append(attrs, "after", time.Since(begin).Round(time.Millisecond), "ssh_login", login)...)
	l.goJoined(l.monitor)
	l.goJoined(l.keepalive)
	return l.info, nil
}

// startCarrier runs the carrier's Start. The server's answers to the SSH
// requests it makes are not bounded by ctx: closing the connection when
// ctx ends is, and then Start's error says what it waited for if it wraps
// ctx's cause, else that the server's side did not start. The function
// that closes the connection is joined.
func (l *Link) startCarrier(ctx context.Context, c Carrier) (CarrierInfo, error) {
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		l.client.Close()
	})
	ci, err := c.Start(ctx, l.client)
	if stopUnblock() {
		return ci, err
	}
	<-unblocked
	cause := context.Cause(ctx)
	if err != nil && errors.Is(err, cause) {
		return CarrierInfo{}, err
	}
	return CarrierInfo{}, fmt.Errorf("starting the server's side: %w", cause)
}

// goJoined runs f in a goroutine that Close waits for.
func (l *Link) goJoined(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}
