package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/vpn-pppssh/vpn-pppssh/internal/pollfd"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel/device"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel/framing"
)

// runTun serves a tun or ethernet request: it creates the server's device
// (it belongs to this process: it goes when the helper ends, however it
// ends), applies the link's changes and carries the framed packets between
// the session and the device until either ends or ctx is cancelled.
func runTun(ctx context.Context, o Options, req pppssh.Request, router *routing.Router, log *slog.Logger) error {
	stderr := o.stderr()
	fail := func(err error) error {
		fmt.Fprintln(stderr, pppssh.ServerFailedMarker+strings.ReplaceAll(err.Error(), "\n", "; "))
		return err
	}
	dev, err := device.Create(deviceConfig(req))
	if err != nil {
		return fail(fmt.Errorf("creating the server's device: %w", err))
	}
	defer dev.Close()
	if req.Bridge == "" {
		if err := router.Set(routerConfig(req, dev.Name())); err != nil {
			log.Error("applying the server's routes", "err", err)
			return fail(err)
		}
	}
	log.Info("server side up", "iface", dev.Name(), "mode", req.Mode, "changes", len(router.Applied()), "firewall", router.Firewall())
	fmt.Fprintln(stderr, pppssh.ServerDeviceMarker+dev.Name())
	fmt.Fprintln(stderr, pppssh.ServerReadyMarker)

	in, out, restore := pumpEnds(o, log)
	defer restore()
	ended := make(chan error, 2)
	q := device.NewQueue(dev, device.QueueDepth(dev))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // session to device
		defer wg.Done()
		ended <- toDevice(in, dev, req)
	}()
	go func() { // the device's reader: ends when dev is closed, or Stop
		defer wg.Done()
		q.Fill()
	}()
	go func() { // device to session
		defer wg.Done()
		defer q.Stop()
		ended <- fromDevice(q, out, req)
	}()
	var why error
	select {
	case why = <-ended:
	case <-ctx.Done():
		why = ErrEnded
	}
	// Closing the device ends its reader; closing the session's ends ends
	// the other (the client may still be writing to a helper that goes).
	dev.Close()
	restore()
	o.Stdin.Close()
	o.Stdout.Close()
	wg.Wait()
	log.Info("tunnel ended", "err", why)
	if errors.Is(why, io.EOF) || errors.Is(why, ErrEnded) {
		return nil
	}
	return why
}

// pumpEnds are the session's stdin and stdout for the packets: duplicates
// in the runtime's poller (pollfd.Dup). sshd hands them over blocking, and
// a read that waits in a blocking system call holds the process's one P
// (GOMAXPROCS=1): a packet the device has for the client then waits until
// the runtime's monitor takes the P back, 120-200 us in `perf trace` of
// an idle link, a quarter of its round trip. restore closes the
// duplicates (ending a read or write in progress) and puts the pipes'
// mode back; it is idempotent. A pipe the poller refuses is used as it is:
// slower, not wrong.
func pumpEnds(o Options, log *slog.Logger) (in io.Reader, out io.Writer, restore func()) {
	in, out = o.Stdin, o.Stdout
	var undo []func()
	if p, r, err := pollfd.Dup(o.Stdin); err == nil {
		in, undo = p, append(undo, r)
	} else {
		log.Debug("the session's stdin is read blocking", "err", err)
	}
	if p, r, err := pollfd.Dup(o.Stdout); err == nil {
		out, undo = p, append(undo, r)
	} else {
		log.Debug("the session's stdout is written blocking", "err", err)
	}
	// In reverse: should the two share one open file (a socketpair), the
	// second duplicate recorded the first's mode, and the first's mode
	// is put back last, once no duplicate is in use.
	return in, out, func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// deviceConfig is the server's device for a request that the policy
// allowed.
func deviceConfig(req pppssh.Request) device.Config {
	c := device.Config{Kind: device.TUN, MTU: req.MTU, Offload: req.Offload,
		Addr6: req.LocalPrefix6(), NoIPv6: !req.CarriesIPv6()}
	if req.Mode == pppssh.ModeEthernet {
		c.Kind, c.Bridge = device.TAP, req.Bridge
		if req.Bridge != "" {
			c.MTU = 0        // the bridge's own
			c.NoIPv6 = false // a bridge port: the bridge's business
		}
		c.Addr = req.LocalPrefix()
		return c
	}
	c.Addr, c.Peer = req.LocalPrefix(), req.Peer
	if req.CarriesIPv6() {
		c.Peer6 = req.Peer6
	}
	return c
}

// toDevice writes the client's framed packets into the device. Every byte
// comes from the client: a bad length ends the session; a packet the
// kernel (or, with offload, the header check) refuses is dropped.
func toDevice(in io.Reader, dev *device.Device, req pppssh.Request) error {
	r := framing.NewFormatReader(in, format(req), maxFrame(req))
	buf := make([]byte, dev.ReadSize())
	for {
		n, err := r.ReadPacket(buf)
		if err != nil {
			return err
		}
		if _, err := dev.Write(buf[:n]); err != nil && !errors.Is(err, device.ErrMalformed) {
			return err
		}
	}
}

// fromDevice frames the device's packets, as q reads them, onto the
// session, batching the ones already read into one write.
func fromDevice(q *device.Queue, out io.Writer, req pppssh.Request) error {
	w := framing.NewFormatWriter(out, format(req), framing.DefaultBatch)
	err := w.Copy(q.Next)
	if errors.Is(err, device.ErrQueueEnded) {
		return q.Err()
	}
	return err
}

// format is the session's framing: Wide when packets carry a virtio-net
// header.
func format(req pppssh.Request) framing.Format {
	if req.Offload {
		return framing.Wide
	}
	return framing.Narrow
}

// maxFrame is the longest packet the client may send: the device's MTU
// plus an Ethernet header with a VLAN tag in ethernet mode.
func maxFrame(req pppssh.Request) int {
	if req.Offload {
		return device.MaxOffloadRead // a super-packet is not bound by the MTU
	}
	mtu := req.MTU
	if mtu == 0 || req.Bridge != "" {
		mtu = device.MaxPacketSize - 18
	}
	if req.Mode == pppssh.ModeEthernet {
		return mtu + 18
	}
	return mtu
}
