package device

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	tunAddr = netip.MustParseAddr("192.0.2.1")
	tunPeer = netip.MustParseAddr("192.0.2.2")
)

// tunConfig is a TUN device 192.0.2.1 with peer 192.0.2.2.
func tunConfig() Config {
	return Config{Kind: TUN, Addr: netip.PrefixFrom(tunAddr, 32), Peer: tunPeer}
}

// startReader reads d in a goroutine until Close and hands each packet
// on; t's cleanup closes d and waits for the goroutine.
func startReader(t *testing.T, d *Device) <-chan []byte {
	t.Helper()
	pkts := make(chan []byte)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			buf := make([]byte, MaxPacketSize)
			n, err := d.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("reading %s: %v", d.Name(), err)
				}
				return
			}
			select {
			case pkts <- buf[:n]:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		d.Close()
		<-done
	})
	return pkts
}

// ping writes an ICMP echo request from the peer to the device's address
// into d, as if it came through the tunnel, and waits for the kernel's
// reply to come out of d.
func ping(t *testing.T, d *Device, pkts <-chan []byte, seq uint16) {
	t.Helper()
	req := echo{src: tunPeer, dst: tunAddr, id: 0x5eed, seq: seq, payload: fmt.Appendf(nil, "tunnel/device ping %d", seq)}
	if _, err := d.Write(req.marshal()); err != nil {
		t.Fatalf("writing echo request %d: %v", seq, err)
	}
	want := req
	want.src, want.dst, want.reply = tunAddr, tunPeer, true
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-pkts:
			if len(p) > 0 && p[0]>>4 == 6 {
				continue // the kernel's own IPv6 (router solicitation, MLD)
			}
			got, err := parseEcho(p)
			if err != nil {
				t.Fatalf("waiting for echo reply %d, read: %v", seq, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("echo reply %d:\n got %+v\nwant %+v", seq, got, want)
			}
			return
		case <-deadline:
			t.Fatalf("no echo reply %d from %s within 5 s", seq, d.Name())
		}
	}
}

func counters(t *testing.T, d *Device) Counters {
	t.Helper()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTUNPingAndMalformed: packets cross the device both ways, the
// counters see them, and a malformed packet is an ErrMalformed that the
// device survives.
func TestTUNPingAndMalformed(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, tunConfig())
	pkts := startReader(t, d)

	c0 := counters(t, d)
	ping(t, d, pkts, 1)
	c1 := counters(t, d)
	if c1.RxPackets < c0.RxPackets+1 || c1.TxPackets < c0.TxPackets+1 || c1.RxBytes <= c0.RxBytes {
		t.Errorf("counters did not see the ping:\nbefore %+v\nafter  %+v", c0, c1)
	}

	for _, bad := range [][]byte{make([]byte, 20), {}} { // IP version 0, empty
		_, err := d.Write(bad)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), d.Name()) {
			t.Errorf("writing % x: %v, want ErrMalformed naming %s", bad, err, d.Name())
		}
	}
	if c2 := counters(t, d); c2.RxDropped != c1.RxDropped+2 {
		t.Errorf("rx_dropped %d after two malformed writes, want %d", c2.RxDropped, c1.RxDropped+2)
	}
	ping(t, d, pkts, 2)
}

// arpFrame is an Ethernet ARP request or reply.
func arpFrame(op uint16, dstMAC, srcMAC net.HardwareAddr, senderIP, targetIP netip.Addr, targetMAC net.HardwareAddr) []byte {
	f := append(append([]byte{}, dstMAC...), srcMAC...)
	f = binary.BigEndian.AppendUint16(f, 0x0806)
	f = append(f, 0, 1, 8, 0, 6, 4) // Ethernet, IPv4, sizes
	f = binary.BigEndian.AppendUint16(f, op)
	s, tg := senderIP.As4(), targetIP.As4()
	f = append(append(f, srcMAC...), s[:]...)
	return append(append(f, targetMAC...), tg[:]...)
}

// TestTAPARPAndMalformed: the kernel answers an ARP request written into
// a tap device, before and after a runt frame refused as ErrMalformed.
func TestTAPARPAndMalformed(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{Kind: TAP, Addr: netip.MustParsePrefix("198.51.100.1/24")})
	link, err := n.nl.LinkByIndex(d.Index())
	if err != nil {
		t.Fatal(err)
	}
	tapMAC := link.Attrs().HardwareAddr
	pkts := startReader(t, d)
	peerMAC := net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 2}
	peerIP, tapIP := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.1")
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	req := arpFrame(1, bcast, peerMAC, peerIP, tapIP, make(net.HardwareAddr, 6))
	want := arpFrame(2, peerMAC, tapMAC, tapIP, peerIP, peerMAC)

	arp := func() {
		t.Helper()
		if _, err := d.Write(req); err != nil {
			t.Fatalf("writing an ARP request: %v", err)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case f := <-pkts:
				if len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) != 0x0806 {
					continue // IPv6 and others
				}
				if len(f) > len(want) && !bytes.ContainsFunc(f[len(want):], func(r rune) bool { return r != 0 }) {
					f = f[:len(want)] // padding
				}
				if !bytes.Equal(f, want) {
					t.Fatalf("ARP reply\n got % x\nwant % x", f, want)
				}
				return
			case <-deadline:
				t.Fatalf("no ARP reply from %s within 5 s", d.Name())
			}
		}
	}
	arp()
	if _, err := d.Write(make([]byte, 5)); !errors.Is(err, ErrMalformed) {
		t.Errorf("writing a 5-byte frame: %v, want ErrMalformed", err)
	}
	arp()
}

// waitParked waits until a goroutine is blocked in Device.Read on the
// runtime poller (not in a read system call, where Close could not wake
// it).
func waitParked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		all := string(buf[:runtime.Stack(buf, true)])
		for g := range strings.SplitSeq(all, "\n\n") {
			if strings.Contains(g, "tunnel/device.(*Device).Read") && strings.Contains(g, "internal/poll.(*pollDesc).waitRead") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine parked on the poller in Device.Read within 5 s:\n%s", all)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{Kind: TUN, Name: "vpntest0"})
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, MaxPacketSize)
		for {
			if _, err := d.Read(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	waitParked(t)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) || !strings.Contains(err.Error(), "vpntest0") {
			t.Errorf("Read after Close: %v, want os.ErrClosed naming vpntest0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after Close")
	}
	if _, err := d.Write(tunPacket()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if _, err := d.Counters(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Counters after Close: %v, want os.ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !n.gone(t, d.Index()) {
		t.Error("vpntest0 still exists after Close")
	}
}

func tunPacket() []byte {
	return echo{src: tunPeer, dst: tunAddr, id: 1, seq: 1}.marshal()
}

// TestConcurrentClose runs readers, a writer and Counters against Close;
// under -race it proves Device has no data race, and each must end with
// os.ErrClosed.
func TestConcurrentClose(t *testing.T) {
	n := newNS(t)
	for i := range 10 {
		d := n.mustCreate(t, tunConfig())
		var wg, started sync.WaitGroup
		errs := make(chan error, 4)
		loop := func(f func() error) {
			started.Add(1)
			wg.Go(func() {
				started.Done()
				for {
					if err := f(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		buf1, buf2, pkt := make([]byte, MaxPacketSize), make([]byte, MaxPacketSize), tunPacket()
		loop(func() error { _, err := d.Read(buf1); return err })
		loop(func() error { _, err := d.Read(buf2); return err })
		loop(func() error { _, err := d.Write(pkt); return err })
		loop(func() error { _, err := d.Counters(); return err })
		started.Wait()
		if err := d.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("round %d: %v, want os.ErrClosed", i, err)
			}
		}
	}
}
