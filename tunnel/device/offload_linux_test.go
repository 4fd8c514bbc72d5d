package device

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pumpStats is what one direction of a pump saw.
type pumpStats struct {
	packets, segmented, malformed atomic.Int64
	largest                       atomic.Int64 // bytes after the header
}

// pump copies every read of src, header and all, into dst until src is
// closed, as the helper path does between its two ends.
func pump(t *testing.T, src, dst *Device, st *pumpStats, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, src.ReadSize())
		for {
			n, err := src.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("reading %s: %v", src.Name(), err)
				}
				return
			}
			st.packets.Add(1)
			if ParseVNetHdr(buf).Segmented() {
				st.segmented.Add(1)
			}
			if l := int64(n - VNetHdrLen); l > st.largest.Load() {
				st.largest.Store(l)
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				if errors.Is(err, ErrMalformed) {
					st.malformed.Add(1)
					continue
				}
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("writing %s: %v", dst.Name(), err)
				}
				return
			}
		}
	}()
}

// TestOffloadTCPSuperPackets joins two offloading tun devices, each in a
// namespace of its own, by a pump in this process, and sends 32 MiB over
// TCP from one namespace to the other: the data must arrive intact, and
// the sender's device must have handed over TCP super-packets (larger
// than the MTU, marked for segmentation) that the far device took whole.
func TestOffloadTCPSuperPackets(t *testing.T) {
	nsA, nsB := newNS(t), newNS(t)
	a := nsA.mustCreate(t, Config{Kind: TUN, Addr: netip.PrefixFrom(tunAddr, 32), Peer: tunPeer, Offload: true})
	b := nsB.mustCreate(t, Config{Kind: TUN, Addr: netip.PrefixFrom(tunPeer, 32), Peer: tunAddr, Offload: true})
	if !a.Offload() || !a.TSO() || !b.TSO() {
		t.Fatalf("offload %v, TSO %v/%v: the host kernel should grant TSO to a tun device", a.Offload(), a.TSO(), b.TSO())
	}
	var ab, ba pumpStats
	var wg sync.WaitGroup
	pump(t, a, b, &ab, &wg)
	pump(t, b, a, &ba, &wg)
	t.Cleanup(func() { a.Close(); b.Close(); wg.Wait() })

	var ln net.Listener
	var err error
	if nsErr := nsB.do(func() { ln, err = net.Listen("tcp", netip.AddrPortFrom(tunPeer, 0).String()) }); nsErr != nil || err != nil {
		t.Fatalf("listening in the far namespace: %v %v", nsErr, err)
	}
	defer ln.Close()
	const size = 32 << 20
	got := make(chan [sha256.Size]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accepting: %v", err)
			close(got)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		if n, err := io.Copy(h, c); err != nil || n != size {
			t.Errorf("received %d bytes (%v), want %d", n, err, size)
		}
		got <- [sha256.Size]byte(h.Sum(nil))
	}()
	var c net.Conn
	if nsErr := nsA.do(func() { c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second) }); nsErr != nil || err != nil {
		t.Fatalf("dialling through the devices: %v %v", nsErr, err)
	}
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("sending: %v", err)
	}
	c.Close()
	sum, ok := <-got
	if !ok || sum != sha256.Sum256(data) {
		t.Fatal("the data arrived changed or not at all")
	}
	t.Logf("a->b: %d reads, %d super-packets, largest %d bytes, %d refused; b->a: %d reads",
		ab.packets.Load(), ab.segmented.Load(), ab.largest.Load(), ab.malformed.Load(), ba.packets.Load())
	if ab.segmented.Load() == 0 || ab.largest.Load() <= 1500 {
		t.Errorf("no TCP super-packet crossed (largest read %d bytes): offload is not in effect", ab.largest.Load())
	}
	if ab.malformed.Load()+ba.malformed.Load() != 0 {
		t.Errorf("%d packets the kernel handed out were refused on the other side", ab.malformed.Load()+ba.malformed.Load())
	}
}

// TestOffloadRefusesHeaders writes packets whose virtio-net header this
// project never sends: each is refused as ErrMalformed before the kernel
// sees it (the device's rx counters do not move), and the device goes on
// working.
func TestOffloadRefusesHeaders(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{Kind: TUN, Addr: netip.PrefixFrom(tunAddr, 32), Peer: tunPeer, Offload: true})
	pkt := tunPacket()
	bad := map[string]VNetHdr{
		"unknown flag":      {Flags: 4},
		"UDP fragmentation": {Flags: vnetNeedsCsum, GSOType: 3, GSOSize: 1000, CsumStart: 20, CsumOffset: 6},
		"tiny segments":     {Flags: vnetNeedsCsum, GSOType: gsoTCPv4, GSOSize: 1, HdrLen: 40, CsumStart: 20, CsumOffset: 16},
		"checksum past end": {Flags: vnetNeedsCsum, CsumStart: uint16(len(pkt)), CsumOffset: 0},
		"ECN alone":         {GSOType: gsoECN},
		"headers past end":  {Flags: vnetNeedsCsum, GSOType: gsoTCPv4, GSOSize: 1000, HdrLen: uint16(len(pkt) + 1), CsumStart: 20, CsumOffset: 16},
	}
	before := counters(t, d)
	for name, h := range bad {
		buf := make([]byte, VNetHdrLen+len(pkt))
		h.Put(buf)
		copy(buf[VNetHdrLen:], pkt)
		if _, err := d.Write(buf); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Write gave %v, want ErrMalformed", name, err)
		}
	}
	if _, err := d.Write(make([]byte, VNetHdrLen-1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a write shorter than the header: %v, want ErrMalformed", err)
	}
	if after := counters(t, d); after.RxPackets != before.RxPackets || after.RxDropped != before.RxDropped {
		t.Errorf("the kernel saw refused packets: rx %d->%d, dropped %d->%d", before.RxPackets, after.RxPackets, before.RxDropped, after.RxDropped)
	}
	good := make([]byte, VNetHdrLen+len(pkt)) // a zero header: one plain packet
	copy(good[VNetHdrLen:], pkt)
	if _, err := d.Write(good); err != nil {
		t.Fatalf("a plain packet after the refusals: %v", err)
	}
	if after := counters(t, d); after.RxPackets != before.RxPackets+1 {
		t.Errorf("rx packets %d -> %d, want one more", before.RxPackets, after.RxPackets)
	}
}
