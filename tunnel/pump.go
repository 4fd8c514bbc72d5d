package tunnel

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vpn-pppssh/vpn-pppssh/internal/sshtun"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel/device"
	"github.com/vpn-pppssh/vpn-pppssh/tunnel/framing"
	"golang.org/x/crypto/ssh"
)

// afRoom is the headroom kept before each packet read from a tun device:
// OpenSSH's point-to-point framing puts a 4-byte address family there.
const afRoom = 4

// openDatagram opens the tun@openssh.com channel for mode.
func openDatagram(client *ssh.Client, mode Mode, unit uint32) (datagram, error) {
	m := sshtun.PointToPoint
	if mode == Ethernet {
		m = sshtun.Ethernet
	}
	ch, err := sshtun.Open(client, m, unit)
	if err != nil {
		return nil, fmt.Errorf("opening the %s tunnel (unit %s): %w", mode, unitString(unit), err)
	}
	dg, err := sshtun.NewDatagram(ch)
	if err != nil {
		ch.Close()
		return nil, err
	}
	return dg, nil
}

// datagramOut carries the device's packets into the channel, one per
// message, the address family first in tun mode.
func (c *Carrier) datagramOut(dg datagram) error {
	buf := make([]byte, afRoom+device.MaxPacketSize)
	for {
		n, err := c.dev.Read(buf[afRoom:])
		if err != nil {
			return c.deviceEnded(err)
		}
		msg := buf[afRoom : afRoom+n]
		if c.cfg.Mode == TUN {
			if msg, err = sshtun.PrependAF(buf[:afRoom+n]); err != nil {
				c.counter.dropped.Add(1) // not IP: nothing the far end could take
				continue
			}
		}
		if err := dg.WritePacket(msg); err != nil {
			if errors.Is(err, sshtun.ErrDropped) {
				c.counter.dropped.Add(1)
				continue
			}
			return fmt.Errorf("the SSH tunnel channel: %w", err)
		}
		c.counter.sent.Add(1)
	}
}

// datagramIn carries the channel's messages into the device.
func (c *Carrier) datagramIn(dg datagram) error {
	buf := make([]byte, device.MaxPacketSize+afRoom)
	for {
		n, err := dg.ReadPacket(buf)
		if err != nil {
			if errors.Is(err, sshtun.ErrDropped) {
				c.counter.malformed.Add(1)
				continue
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the server closed the tunnel channel")
			}
			return fmt.Errorf("the SSH tunnel channel: %w", err)
		}
		pkt := buf[:n]
		if c.cfg.Mode == TUN {
			if pkt, err = sshtun.StripAF(pkt); err != nil {
				c.counter.malformed.Add(1)
				continue
			}
		}
		if err := c.write(pkt); err != nil {
			return err
		}
	}
}

// write puts one received packet into the device; a packet the kernel
// refuses is counted, not fatal.
func (c *Carrier) write(pkt []byte) error {
	if _, err := c.dev.Write(pkt); err != nil {
		if errors.Is(err, device.ErrMalformed) {
			c.counter.malformed.Add(1)
			return nil
		}
		return c.deviceEnded(err)
	}
	c.counter.received.Add(1)
	return nil
}

// deviceEnded says why the device stopped: closed by us, or gone.
func (c *Carrier) deviceEnded(err error) error {
	if c.closing.Load() {
		return errClosed
	}
	return fmt.Errorf("the client's device %s: %w", c.dev.Name(), err)
}

// helperOut frames the device's packets onto the helper session's stdin,
// batching what is already queued into one write.
func (c *Carrier) helperOut(h *pppssh.HelperIO) error {
	q := newPacketQueue(c.dev, 256)
	c.goJoined(q.fill)
	defer q.stop()
	w := framing.NewWriter(h.Stdin)
	err := w.Copy(func(wait bool) ([]byte, error) {
		p, err := q.next(wait)
		if err == nil && p != nil {
			c.counter.sent.Add(1)
		}
		return p, err
	})
	if err == nil || c.closing.Load() {
		return errClosed
	}
	if errors.Is(err, errQueueDevice) {
		return c.deviceEnded(q.err)
	}
	return fmt.Errorf("sending to the server helper: %w", err)
}

// helperIn writes the helper's framed packets into the device.
func (c *Carrier) helperIn(h *pppssh.HelperIO) error {
	r := framing.NewReader(h.Stdout, device.MaxPacketSize)
	buf := make([]byte, device.MaxPacketSize)
	for {
		n, err := r.ReadPacket(buf)
		if err != nil {
			if c.closing.Load() {
				return errClosed
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the server helper ended the session")
			}
			return fmt.Errorf("from the server helper: %w", err)
		}
		if err := c.write(buf[:n]); err != nil {
			return err
		}
	}
}

// packetQueue reads the device in a goroutine of its own so that the
// writer can tell "a packet is ready" from "the next one must be waited
// for", which is when it flushes a batch. Buffers go round: a packet
// handed out is given back to the pool at the next call to next.
type packetQueue struct {
	dev   *device.Device
	full  chan []byte
	free  chan []byte
	quit  chan struct{}
	once  sync.Once
	err   error // why fill ended; read after full is closed
	owned []byte
}

var errQueueDevice = errors.New("the device ended")

func newPacketQueue(dev *device.Device, n int) *packetQueue {
	q := &packetQueue{dev: dev, full: make(chan []byte, n), free: make(chan []byte, n+1), quit: make(chan struct{})}
	for range n + 1 {
		q.free <- make([]byte, device.MaxPacketSize)
	}
	return q
}

// fill reads packets until the device fails or stop is called.
func (q *packetQueue) fill() {
	defer close(q.full)
	for {
		var buf []byte
		select {
		case buf = <-q.free:
		case <-q.quit:
			return
		}
		n, err := q.dev.Read(buf[:cap(buf)])
		if err != nil {
			q.err = err
			return
		}
		select {
		case q.full <- buf[:n]:
		case <-q.quit:
			return
		}
	}
}

// next returns the next packet, or nil when none is ready and !wait.
func (q *packetQueue) next(wait bool) ([]byte, error) {
	if q.owned != nil {
		q.free <- q.owned[:cap(q.owned)]
		q.owned = nil
	}
	var p []byte
	var ok bool
	if wait {
		p, ok = <-q.full
	} else {
		select {
		case p, ok = <-q.full:
		default:
			return nil, nil
		}
	}
	if !ok {
		return nil, errQueueDevice
	}
	q.owned = p
	return p, nil
}

func (q *packetQueue) stop() { q.once.Do(func() { close(q.quit) }) }
