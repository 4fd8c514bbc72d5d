package tunnel

import (
	"errors"
	"fmt"
	"io"

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
	q := device.NewQueue(c.dev, device.QueueDepth(c.dev))
	c.goJoined(q.Fill)
	defer q.Stop()
	w := framing.NewFormatWriter(h.Stdin, c.format(), framing.DefaultBatch)
	err := w.Copy(func(wait bool) ([]byte, error) {
		p, err := q.Next(wait)
		if err == nil && p != nil {
			c.counter.sent.Add(1)
		}
		return p, err
	})
	if err == nil || c.closing.Load() {
		return errClosed
	}
	if errors.Is(err, device.ErrQueueEnded) {
		return c.deviceEnded(q.Err())
	}
	return fmt.Errorf("sending to the server helper: %w", err)
}

// helperIn writes the helper's framed packets into the device.
func (c *Carrier) helperIn(h *pppssh.HelperIO) error {
	size := c.dev.ReadSize()
	r := framing.NewFormatReader(h.Stdout, c.format(), size)
	buf := make([]byte, size)
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

// format is the helper path's framing: Wide when packets carry a
// virtio-net header (the request asked for offload).
func (c *Carrier) format() framing.Format {
	if c.dev.Offload() {
		return framing.Wide
	}
	return framing.Narrow
}
