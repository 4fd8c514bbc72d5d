package pppssh

import (
	"context"
	"log/slog"
	"net/netip"

	"golang.org/x/crypto/ssh"
)

// A Carrier moves IP between the two ends over an SSH connection that the
// Link dialled and authenticated. MODE=ppp is this package's own carrier
// (pppCarrier: pppd on a pty, joined to the server's pppd or helper over a
// session); MODE=tun and MODE=ethernet are package tunnel's, which the
// program passes in Options.Carrier. The Link keeps what every mode
// shares: dialling, host keys, authentication, keepalives and the
// dead-link check, and the lifecycle.
//
//	Prepare (local work, while SSH dials) ─→ Start(client) ─→ up
//	                                              └─ Done closed ─→ Err
//	Close: at any point, idempotent, joins the carrier's goroutines
//
// Start's SSH requests need not watch ctx: when ctx ends before Start
// returns, the Link closes the connection, which ends any request in
// progress; Start then returns an error, wrapping context.Cause(ctx) when
// it knows what it was waiting for. Close may close the connection too
// (PPP: when the server's command has not ended by itself); the Link
// closes it after Close in any case.
type Carrier interface {
	// Prepare does the local work that needs no connection (PPP: pppd
	// on its pty; tun: the client's device), run while SSH dials.
	Prepare(ctx context.Context) error
	// Start brings up the server's end over client and returns once the
	// local interface is up with the configured addresses.
	Start(ctx context.Context, client *ssh.Client) (CarrierInfo, error)
	// Done is closed when the carrier ended by itself or was closed.
	Done() <-chan struct{}
	// Err says why it ended, once Done is closed.
	Err() error
	// Close takes both ends down and returns once every goroutine of the
	// carrier has returned; safe to call more than once, and before
	// Prepare or Start.
	Close() error
}

// CarrierInfo is what a carrier reports once up. A field left zero is
// filled in by the Link from the configuration: Mode, Local and Remote
// from MODE and the addresses, TTY and Speed with DeviceTTY and NoSpeed
// outside ppp mode.
type CarrierInfo struct {
	Mode  string `json:"mode"`  // ModePPP, ModeTUN, ModeEthernet or ModeNone
	Iface string `json:"iface"` // the client's interface
	// PeerDNS are the name servers the server's pppd offered (DNS=peer).
	PeerDNS []netip.Addr `json:"peer_dns,omitempty"`
	Local   netip.Addr   `json:"local"`
	Remote  netip.Addr   `json:"remote"`
	// Local6 and Remote6 are the link's IPv6 addresses, when it carries
	// IPv6.
	Local6  netip.Addr `json:"local6,omitzero"`
	Remote6 netip.Addr `json:"remote6,omitzero"`
	// Pid is the local process that carries the link (pppd), 0 when the
	// carrier is this process itself.
	Pid int `json:"carrier_pid,omitempty"`
	// TTY and Speed are what the ip-up and ip-down hooks get as pppd's
	// tty and speed arguments: the pty and pppd's 38400 in ppp mode,
	// DeviceTTY and NoSpeed in tun and ethernet modes.
	TTY   string `json:"tty"`
	Speed string `json:"speed"`
	// ServerIface is the server's interface, when the carrier knows it
	// (tun and ethernet modes).
	ServerIface string `json:"server_iface,omitempty"`
}

// What stands in for pppd's tty and speed arguments (pppd(8), SCRIPTS) for
// a link that has no pppd: the tun driver's device, and no line speed.
const (
	DeviceTTY = "/dev/net/tun"
	NoSpeed   = "0"
)

// NewCarrier makes the carrier of a link in the tun or ethernet mode
// (tunnel.ForLink). It checks cfg and changes nothing.
type NewCarrier func(cfg Config, log *slog.Logger) (Carrier, error)

// peerGoner is a carrier whose Close says goodbye to the server's end and
// waits for the answer (PPP: an LCP Terminate-Request): the Link calls
// peerGone before Close when it has declared the server silent, and Close
// then does not wait for an answer that cannot come.
type peerGoner interface {
	peerGone()
}

// connKeeper is a carrier whose Close may close the SSH connection itself
// (PPP: when a server session outlives its close, so that its waiter
// returns): the Link calls keepConnection before Close once Detach has
// handed the connection over, and Close then waits longer for the
// sessions, until giveUp is closed at the latest, and leaves the
// connection open if they end.
type connKeeper interface {
	keepConnection(giveUp <-chan struct{})
}

// complete fills in what the carrier left zero (see CarrierInfo).
func (ci CarrierInfo) complete(cfg Config) CarrierInfo {
	if ci.Mode == "" {
		ci.Mode = cfg.Mode
	}
	if !ci.Local.IsValid() {
		ci.Local = cfg.ClientIfAddr
	}
	if !ci.Remote.IsValid() {
		ci.Remote = cfg.ServerIfAddr
	}
	if !ci.Local6.IsValid() {
		ci.Local6 = cfg.ClientIf6Addr
	}
	if !ci.Remote6.IsValid() {
		ci.Remote6 = cfg.ServerIf6Addr
	}
	if ci.Mode != ModePPP {
		if ci.TTY == "" {
			ci.TTY = DeviceTTY
		}
		if ci.Speed == "" {
			ci.Speed = NoSpeed
		}
	}
	return ci
}
