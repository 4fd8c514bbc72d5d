package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel/device"
	"golang.org/x/crypto/ssh"
)

// Mode is the kind of tunnel: IP packets (tun) or Ethernet frames (tap).
type Mode int

const (
	TUN      Mode = iota + 1 // MODE=tun: layer 3, a point-to-point pair
	Ethernet                 // MODE=ethernet: layer 2, a shared subnet
)

func (m Mode) String() string {
	if m == Ethernet {
		return "ethernet"
	}
	return "tun"
}

// anyUnit asks sshd for whichever tun or tap unit is free (OpenSSH's
// SSH_TUNID_ANY).
const anyUnit uint32 = 0x7fffffff

// Config is one end-to-end tunnel, from a validated link configuration.
type Config struct {
	Mode Mode
	// Local and Remote are the client's and the server's addresses: host
	// prefixes in tun mode, one shared subnet in ethernet mode; zero
	// when that end is a bridge port without an address of its own.
	Local, Remote netip.Prefix
	// Local6 and Remote6 are the IPv6 addresses, as Local and Remote;
	// zero when the link carries no IPv6 (the devices then take none).
	Local6, Remote6 netip.Prefix
	MTU             int    // 0: the kernel's default, or a bridge's
	ClientBridge    string // ethernet: the client's tap joins this bridge
	ServerBridge    string // ethernet: the server's tap joins this bridge
	ServerUnit      uint32 // OpenSSH forwarding: the server's unit, or anyUnit
	// Offload (helper only): the client's device offloads, and packets
	// travel with their virtio-net header in Wide framing; the helper's
	// request must say the same (pppssh.Request.Offload).
	Offload bool

	// Helper runs the server helper on a session instead of OpenSSH's
	// forwarding; nil for OpenSSH's forwarding.
	Helper HelperSession
}

// ipv6 reports whether the tunnel carries IPv6.
func (cfg Config) ipv6() bool { return cfg.Local6.IsValid() || cfg.Remote6.IsValid() }

// HelperSession starts the server helper on a session of client and
// returns once it accepted the link's request (pppssh.StartHelper).
type HelperSession func(ctx context.Context, client *ssh.Client) (*pppssh.HelperIO, error)

// Info is what Start reports.
type Info = pppssh.CarrierInfo

// Carrier is one tunnel's life; see the package documentation.
type Carrier struct {
	cfg Config
	log *slog.Logger

	dev     *device.Device
	dgram   datagram         // OpenSSH's forwarding
	helper  *pppssh.HelperIO // the server helper
	counter counters         // packets and drops, both ways
	closers []func() error

	done     chan struct{}
	doneOnce sync.Once
	err      error

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	closing   atomic.Bool
}

// datagram is one packet per message each way (internal/sshtun).
type datagram interface {
	WritePacket(p []byte) error
	ReadPacket(p []byte) (int, error)
	Close() error
}

// ForLink is pppssh.NewCarrier: the carrier of a link whose MODE is tun
// or ethernet.
func ForLink(cfg pppssh.Config, log *slog.Logger) (pppssh.Carrier, error) {
	c := Config{Mode: TUN, Local: cfg.ClientIfPrefix(), Remote: cfg.ServerIfPrefix(), MTU: cfg.MTU,
		Local6: cfg.ClientIf6Prefix(), Remote6: cfg.ServerIf6Prefix(),
		ClientBridge: cfg.ClientBridge, ServerBridge: cfg.ServerBridge, ServerUnit: anyUnit}
	if cfg.Mode == pppssh.ModeEthernet {
		c.Mode = Ethernet
	}
	if cfg.ServerTunUnit >= 0 {
		c.ServerUnit = uint32(cfg.ServerTunUnit)
	}
	if cfg.ServerHelper != "" {
		c.Offload = cfg.Offload
		c.Helper = func(ctx context.Context, client *ssh.Client) (*pppssh.HelperIO, error) {
			return pppssh.StartHelper(ctx, client, cfg, log)
		}
	}
	return New(c, log)
}

// New checks cfg; it changes nothing.
func New(cfg Config, log *slog.Logger) (*Carrier, error) {
	if cfg.Mode != TUN && cfg.Mode != Ethernet {
		return nil, fmt.Errorf("tunnel: unknown mode %d", cfg.Mode)
	}
	if cfg.Offload && cfg.Helper == nil {
		return nil, errors.New("tunnel: offload needs the server helper (sshd's device has none)")
	}
	if cfg.ServerUnit == 0 && cfg.Helper == nil {
		cfg.ServerUnit = anyUnit
	}
	if log == nil {
		log = slog.Default()
	}
	return &Carrier{cfg: cfg, log: log, done: make(chan struct{})}, nil
}

// Prepare creates and configures the client's device.
func (c *Carrier) Prepare(context.Context) error {
	dc := device.Config{Kind: device.TUN, MTU: c.cfg.MTU, Addr: c.cfg.Local, Offload: c.cfg.Offload,
		Addr6: c.cfg.Local6, NoIPv6: !c.cfg.ipv6()}
	if c.cfg.Mode == Ethernet {
		dc.Kind, dc.Bridge = device.TAP, c.cfg.ClientBridge
		if dc.Bridge != "" {
			dc.MTU = 0        // the bridge's
			dc.NoIPv6 = false // a bridge port: the bridge's business
		}
	} else {
		dc.Peer = c.cfg.Remote.Addr()
		if c.cfg.Local6.IsValid() {
			dc.Peer6 = c.cfg.Remote6.Addr()
		}
	}
	dev, err := device.Create(dc)
	if err != nil {
		return fmt.Errorf("creating the client's %s device: %w", c.cfg.Mode, err)
	}
	c.dev = dev
	return nil
}

// Start joins the client's device to the server's end over client.
func (c *Carrier) Start(ctx context.Context, client *ssh.Client) (Info, error) {
	if c.dev == nil {
		return Info{}, errors.New("tunnel: Start before Prepare")
	}
	info := Info{Iface: c.dev.Name()}
	if c.cfg.Helper != nil {
		h, err := c.cfg.Helper(ctx, client)
		if err != nil {
			return Info{}, err
		}
		c.helper = h
		c.closers = append(c.closers, h.Close)
		c.goJoined(func() { c.end(c.helperOut(h)) })
		c.goJoined(func() { c.end(c.helperIn(h)) })
		select {
		case err := <-h.Ready:
			if err != nil {
				return Info{}, err
			}
			// Shown by status: only a name the kernel could have given.
			if dev := h.Device(); validIfName(dev) {
				info.ServerIface = dev
			}
		case <-c.done:
			return Info{}, c.err
		case <-ctx.Done():
			return Info{}, fmt.Errorf("%w (waiting for the server helper)", context.Cause(ctx))
		}
		return info, nil
	}
	dg, err := openDatagram(client, c.cfg.Mode, c.cfg.ServerUnit)
	if err != nil {
		return Info{}, err
	}
	c.dgram = dg
	c.closers = append(c.closers, dg.Close)
	end := serverEnd{ethernet: c.cfg.Mode == Ethernet, addr: c.cfg.Remote, peer: c.cfg.Local.Addr(),
		addr6: c.cfg.Remote6, peer6: c.cfg.Local6.Addr(), noIPv6: !c.cfg.ipv6(),
		mtu: c.cfg.MTU, bridge: c.cfg.ServerBridge}
	// The server's end is configured while its device already carries
	// what the client sends: the first packets wait in no queue of ours.
	c.goJoined(func() { c.end(c.datagramOut(dg)) })
	c.goJoined(func() { c.end(c.datagramIn(dg)) })
	type configured struct {
		dev  string
		done bool
		err  error
	}
	conf := make(chan configured, 1)
	go func() {
		dev, done, err := end.configure(client)
		conf <- configured{dev, done, err}
	}()
	select {
	case r := <-conf:
		if r.err != nil {
			return Info{}, r.err
		}
		info.ServerIface = r.dev
		if !r.done {
			c.log.Info("not a root login: the server's device is left as the admin configured it", "device", r.dev)
		}
	case <-c.done:
		return Info{}, c.err
	case <-ctx.Done():
		return Info{}, fmt.Errorf("%w (configuring the server's device)", context.Cause(ctx))
	}
	return info, nil
}

// goJoined runs f in a goroutine that Close waits for.
func (c *Carrier) goJoined(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// end records why the tunnel ended, once.
func (c *Carrier) end(err error) {
	c.doneOnce.Do(func() {
		if err == nil {
			err = errors.New("the tunnel ended")
		}
		c.err = err
		close(c.done)
	})
}

// Done is closed when the tunnel ended by itself or was closed.
func (c *Carrier) Done() <-chan struct{} { return c.done }

// Err says why the tunnel ended, once Done is closed.
func (c *Carrier) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close ends the tunnel: the channel or session first (the server's device
// goes with it), then the client's device, which ends the goroutines'
// reads; then it joins them. It is safe to call more than once.
func (c *Carrier) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.end(errClosed)
		var errs []error
		for i := len(c.closers) - 1; i >= 0; i-- {
			if err := c.closers[i](); err != nil && !errors.Is(err, errAlreadyClosed) {
				errs = append(errs, err)
			}
		}
		if c.dev != nil {
			if err := c.dev.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s: %w", c.dev.Name(), err))
			}
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

var (
	errClosed        = errors.New("tunnel closed")
	errAlreadyClosed = errors.New("already closed")
)

// Stats are the tunnel's packet counts since Start.
type Stats struct {
	Sent, Received uint64 // packets carried
	Dropped        uint64 // not carried: the SSH window was short, or too big
	Malformed      uint64 // received packets refused (framing or the kernel)
}

// Stats returns the tunnel's packet counts.
func (c *Carrier) Stats() Stats {
	return Stats{Sent: c.counter.sent.Load(), Received: c.counter.received.Load(),
		Dropped: c.counter.dropped.Load(), Malformed: c.counter.malformed.Load()}
}

type counters struct {
	sent, received, dropped, malformed atomic.Uint64
}
