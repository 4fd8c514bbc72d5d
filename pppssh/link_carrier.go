package pppssh

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/crypto/ssh"
)

// startCarrier is start for the tun and ethernet modes: the carrier's
// local device is made while SSH dials, then the carrier joins it to the
// server's end over the connection.
func (l *Link) startCarrier(ctx context.Context, hk *hostKeys, keys []ssh.Signer, closeAgent func()) (Info, error) {
	if l.newCarrier == nil {
		closeAgent()
		return Info{}, fmt.Errorf("MODE=%s is not available in this build", l.cfg.Mode)
	}
	c, err := l.newCarrier(l.cfg, l.log)
	if err != nil {
		closeAgent()
		return Info{}, err
	}
	l.carrier = c
	begin := time.Now()
	dialed := make(chan dialResult, 1)
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()
	go func() {
		c, err := dial(dialCtx, l.target, hk, keys, l.log)
		closeAgent()
		dialed <- dialResult{c, err}
	}()
	if err := c.Prepare(ctx); err != nil {
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
	// As in start: the server's answers are not bounded by ctx, closing
	// the connection is.
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		l.client.Close()
	})
	ci, err := c.Start(ctx, l.client)
	if !stopUnblock() {
		<-unblocked
		return Info{}, fmt.Errorf("starting the server's side: %w", context.Cause(ctx))
	}
	if err != nil {
		return Info{}, err
	}
	l.info = Info{
		Name: l.cfg.Name, Iface: ci.Iface, Local: l.cfg.ClientIfAddr, Remote: l.cfg.ServerIfAddr,
		Server: fmt.Sprintf("%s@%s", l.target.User, l.target.Addr()), Since: time.Now(),
		Mode: l.cfg.Mode, ServerIface: ci.ServerIface,
	}
	if ap, err := netip.ParseAddrPort(l.client.RemoteAddr().String()); err == nil {
		l.info.Carrier = ap.Addr().Unmap()
	}
	l.log.Info("link up", "mode", l.cfg.Mode, "iface", ci.Iface, "server_iface", ci.ServerIface,
		"after", time.Since(begin).Round(time.Millisecond), "ssh_login", loggedIn.Round(time.Millisecond))
	l.goJoined(l.monitor)
	l.goJoined(l.keepalive)
	return l.info, nil
}
