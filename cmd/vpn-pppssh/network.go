package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/vpn-pppssh/vpn-pppssh/dnsconf"
	"github.com/vpn-pppssh/vpn-pppssh/hooks"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// linkNetworks is what a link that is up does beyond the link itself:
// routes, forwarding, masquerade (routing) and the ip-up/ip-down hooks.
type linkNetworks struct {
	cfg    pppssh.Config
	env    hooks.Env
	router *routing.Router
	dns    *dnsconf.Settings // nil without DNS
	log    *slog.Logger
}

// joinNetworks applies the client's side of the configuration and runs the
// ip-up hooks. On failure what it applied is undone.
func joinNetworks(ctx context.Context, o *options, cfg pppssh.Config, info pppssh.Info, log *slog.Logger) (*linkNetworks, error) {
	if info.Mode == pppssh.ModeNone {
		return &linkNetworks{cfg: cfg, log: log}, nil // no interface: no routes, no hooks
	}
	for _, n := range cfg.ServerNetworks {
		if n.Contains(info.ServerAddr) && !cfg.DefaultRoute {
			return nil, fmt.Errorf("SERVER_NETWORKS %s contains the SSH server %s itself: its route would swallow the tunnel's own packets", n, info.ServerAddr)
		}
	}
	r, err := routing.New(cfg.Name, string(o.runDir))
	if err != nil {
		return nil, err
	}
	v6 := cfg.CarriesIPv6()
	rc := routing.Config{
		Iface:        info.Iface,
		Networks:     cfg.ServerNetworks,
		Forwarding:   cfg.ClientMasquerade || slices.ContainsFunc(cfg.ClientNetworks, is4),
		Forwarding6:  v6 && (cfg.ClientMasquerade || slices.ContainsFunc(cfg.ClientNetworks, is6)),
		DefaultRoute: cfg.DefaultRoute,
		Carrier:      info.ServerAddr,
		IPv6:         v6,
		// The server may send only as itself and the networks routed to
		// it here, never as a host of this side's own networks.
		SourceCheck: true,
	}
	if info.Mode == pppssh.ModeEthernet {
		// A shared subnet: the server is the next hop (a route through
		// the tap alone would ask the subnet for every destination).
		rc.Gateway, rc.Gateway6 = info.Remote, info.Remote6
	}
	if cfg.ClientMasquerade {
		for _, a := range []netip.Addr{info.Remote, info.Remote6} {
			if a.IsValid() {
				rc.Masquerade = append(rc.Masquerade, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		if len(rc.Masquerade) > 0 {
			rc.Masquerade = append(rc.Masquerade, cfg.ServerNetworks...)
		}
	}
	if err := r.Set(rc); err != nil {
		err = fmt.Errorf("joining networks: %w", err)
		if cerr := r.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("undoing what was applied: %w", cerr))
		}
		return nil, err
	}
	n := &linkNetworks{cfg: cfg, router: r, log: log.With("component", "hooks"), env: hookEnv(cfg, info)}
	for _, c := range r.Applied() {
		log.Info("applied", "change", c.String())
	}
	if len(cfg.DNSServers) > 0 || cfg.DNSPeer {
		dns, err := setDNS(ctx, o, cfg, info, log)
		if err != nil {
			if cerr := r.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("undoing what was applied: %w", cerr))
			}
			return nil, err
		}
		n.dns = dns
		log.Info("applied", "change", dns.String())
	}
	if cfg.IPUpDir != "" {
		// A failing hook is logged and never takes the link down.
		hooks.Run(ctx, cfg.IPUpDir, n.env, hooks.Limit, n.log)
	}
	return n, nil
}

// close runs the ip-down hooks while the interface still exists, then
// undoes the routes and rules, newest first. A failing hook is logged (as
// at ip-up); what could not be undone is returned, and stays in the journal.
func (n *linkNetworks) close(ctx context.Context) error {
	if n.router == nil {
		return nil
	}
	if n.cfg.IPDownDir != "" {
		hooks.Run(context.WithoutCancel(ctx), n.cfg.IPDownDir, n.env, hooks.Limit, n.log)
	}
	var dnsErr error
	if n.dns != nil {
		if err := n.dns.Close(); errors.Is(err, dnsconf.ErrChanged) {
			n.log.Warn("DNS left as it is", "err", err)
		} else if err != nil {
			dnsErr = fmt.Errorf("undoing DNS settings: %w", err)
		}
	}
	if err := n.router.Close(); err != nil {
		return errors.Join(dnsErr, fmt.Errorf("undoing routes and rules: %w", err))
	}
	return dnsErr
}

// setDNS gives this host the link's name servers: DNS's addresses, or with
// DNS=peer those the server's pppd offered.
func setDNS(ctx context.Context, o *options, cfg pppssh.Config, info pppssh.Info, log *slog.Logger) (*dnsconf.Settings, error) {
	servers := cfg.DNSServers
	if cfg.DNSPeer {
		if len(info.PeerDNS) == 0 {
			return nil, errors.New("DNS=peer: the server's pppd offered no name server (pppd's ms-dns; with the server half, OFFER_DNS in its server.conf)")
		}
		if err := throughTheLink(info.PeerDNS, info.Iface); err != nil {
			return nil, err
		}
		servers = info.PeerDNS
	}
	s, err := dnsconf.New(dnsconf.Config{Link: cfg.Name, Iface: info.Iface, Servers: servers, Search: cfg.DNSSearch},
		dnsconf.Options{RunDir: string(o.runDir), Logger: log.With("component", "dns")})
	if err != nil {
		return nil, fmt.Errorf("setting DNS: %w", err)
	}
	if err := s.Apply(ctx); err != nil {
		// What Apply could not roll back itself stays in its state
		// file; Close (or a later cleanup) undoes it.
		return nil, errors.Join(fmt.Errorf("setting DNS: %w", err), s.Close())
	}
	return s, nil
}

// throughTheLink refuses name servers the server offered that this host
// would not reach through the link: the server's word must not send this
// host's lookups to its loopback, its LAN or anywhere outside the tunnel.
func throughTheLink(servers []netip.Addr, iface string) error {
	for _, a := range servers {
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("DNS=peer: the server offered name server %s, which is not an address to use", a)
		}
		dev, err := routing.DeviceTo(a)
		if err != nil {
			return fmt.Errorf("DNS=peer: the server offered name server %s: finding its route: %w", a, err)
		}
		if dev != iface {
			return fmt.Errorf("DNS=peer: the server offered name server %s, which this host reaches through %s, not through the link (%s): add its network to SERVER_NETWORKS, or set DNS to addresses", a, dev, iface)
		}
	}
	return nil
}

// dnsLine describes the DNS settings for status, "" without.
func (n *linkNetworks) dnsLine() string {
	if n.dns == nil {
		return ""
	}
	return n.dns.String()
}

// hookEnv is what the hooks are told: pppd's ip-up arguments as the
// carrier reports them (tun and ethernet: pppssh.DeviceTTY and
// pppssh.NoSpeed stand in for the tty and the speed) and the mode.
func hookEnv(cfg pppssh.Config, info pppssh.Info) hooks.Env {
	return hooks.Env{
		Iface: info.Iface, TTY: info.TTY, Speed: info.Speed, Local: addrOrEmpty(info.Local), Remote: addrOrEmpty(info.Remote),
		IPParam: cfg.IPParam, Link: cfg.Name, Mode: info.Mode,
		Local6: addrOrEmpty(info.Local6), Remote6: addrOrEmpty(info.Remote6),
	}
}

// changes lists what the link changed on the host, for status.
func (n *linkNetworks) changes() []string {
	if n.router == nil {
		return nil
	}
	var out []string
	for _, c := range n.router.Applied() {
		out = append(out, c.String())
	}
	return out
}

// firewall names the masquerade backend in use, if any.
func (n *linkNetworks) firewall() string {
	if n.router == nil {
		return ""
	}
	return n.router.Firewall()
}

func is4(p netip.Prefix) bool { return p.Addr().Is4() }
func is6(p netip.Prefix) bool { return p.Addr().Is6() }

// addrOrEmpty is an address for a hook; a bridge port has none.
func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
