package sshtun

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"hash/crc32"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// pair connects an x/crypto client and server over an in-memory pipe; the
// server accepts tun@openssh.com channels (or rejects them with reject)
// and hands them over on the returned channel.
func pair(t *testing.T, reject *ssh.OpenChannelError) (*ssh.Client, <-chan ssh.Channel) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(signer)
	a, b := socketPair(t)
	accepted := make(chan ssh.Channel, 4)
	srvErr := make(chan error, 1)
	go func() {
		conn, chans, reqs, err := ssh.NewServerConn(b, scfg)
		if err != nil {
			srvErr <- err
			return
		}
		srvErr <- nil
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			if nc.ChannelType() != ChannelType {
				nc.Reject(ssh.UnknownChannelType, "no")
				continue
			}
			if reject != nil {
				nc.Reject(reject.Reason, reject.Message)
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(creqs)
			accepted <- ch
		}
		conn.Close()
	}()
	cc, chans, reqs, err := ssh.NewClientConn(a, "pipe", &ssh.ClientConfig{User: "t", HostKeyCallback: ssh.FixedHostKey(signer.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { client.Close() })
	return client, accepted
}

// socketPair is a connected pair of Unix stream sockets: buffered, unlike
// net.Pipe, on which both SSH ends would block sending their versions.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
	return conns[0], conns[1]
}

func open(t *testing.T, client *ssh.Client, accepted <-chan ssh.Channel) (ssh.Channel, ssh.Channel) {
	t.Helper()
	ch, err := Open(client, PointToPoint, AnyUnit)
	if err != nil {
		t.Fatal(err)
	}
	return ch, <-accepted
}

// packet makes a packet of n bytes (n >= 12) carrying seq, its length and
// a checksum of the rest.
func packet(seq uint32, n int) []byte {
	p := make([]byte, n)
	binary.BigEndian.PutUint32(p, seq)
	binary.BigEndian.PutUint32(p[4:], uint32(n))
	for i := 12; i < n; i++ {
		p[i] = byte(seq) + byte(i)
	}
	binary.BigEndian.PutUint32(p[8:], crc32.ChecksumIEEE(p[12:]))
	return p
}

// checkPacket says what is wrong with a received message, or "".
func checkPacket(p []byte, seq uint32) string {
	switch {
	case len(p) < 12:
		return "short message"
	case binary.BigEndian.Uint32(p) != seq:
		return "out of sequence"
	case int(binary.BigEndian.Uint32(p[4:])) != len(p):
		return "split or merged"
	case binary.BigEndian.Uint32(p[8:]) != crc32.ChecksumIEEE(p[12:]):
		return "corrupt"
	}
	return ""
}

const window = 64 * 32 * 1024 // x/crypto's channel window, as OpenSSH's

// TestWindowShortDropsNotSplits fills the peer's window (the peer reads
// nothing, so it grants no more), then sends one packet more than it has
// room for: WritePacket drops it, where Channel.Write splits it.
func TestWindowShortDropsNotSplits(t *testing.T) {
	const size = 1500
	fits := window / size
	for _, naive := range []bool{false, true} {
		client, accepted := pair(t, nil)
		ch, srv := open(t, client, accepted)
		d, err := NewDatagram(ch)
		if err != nil {
			t.Fatal(err)
		}
		for i := range fits {
			if err := d.WritePacket(packet(uint32(i), size)); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
		}
		wrote := make(chan error, 1)
		if naive {
			go func() { _, err := ch.Write(packet(uint32(fits), size)); wrote <- err }()
			// Wait until Write has taken the last of the window and
			// blocks for more: nothing reads on the other end yet.
			deadline := time.Now().Add(10 * time.Second)
			for {
				d.win.cond.L.Lock()
				left := d.win.win
				d.win.cond.L.Unlock()
				if left == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Channel.Write did not take the window's last %d bytes", left)
				}
				runtime.Gosched()
			}
		} else {
			err := d.WritePacket(packet(uint32(fits), size))
			if !errors.Is(err, ErrDropped) {
				t.Fatalf("the packet past the window: %v, want ErrDropped", err)
			}
			if s := d.Stats(); s.DroppedWindow != 1 || s.Sent != uint64(fits) {
				t.Fatalf("stats %+v", s)
			}
		}
		sd, err := NewDatagram(srv)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		for i := range fits {
			n, err := sd.ReadPacket(buf)
			if err != nil {
				t.Fatal(err)
			}
			if what := checkPacket(buf[:n], uint32(i)); what != "" {
				t.Fatalf("message %d (%d bytes): %s", i, n, what)
			}
		}
		if naive {
			n, err := sd.ReadPacket(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == size {
				t.Fatalf("Channel.Write sent the packet whole into a window of %d: the premise of this package is gone", window-fits*size)
			}
			if n != window-fits*size {
				t.Fatalf("the first message holds %d bytes, want the window's last %d", n, window-fits*size)
			}
			// The rest follows in as many messages as the reader's window
			// adjustments allow: each read grants what it took.
			pieces := []int{n}
			for total := n; total < size; {
				m, err := sd.ReadPacket(buf)
				if err != nil {
					t.Fatalf("the rest after %d bytes: %v", total, err)
				}
				pieces = append(pieces, m)
				total += m
				if total > size {
					t.Fatalf("messages of %v bytes: more than the one %d-byte packet", pieces, size)
				}
			}
			t.Logf("Channel.Write split a %d-byte packet into messages of %v bytes", size, pieces)
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		}
		client.Close()
	}
}

// TestSustainedBothWays sends thousands of packets of random sizes both
// ways at once; every message must be exactly one packet, in order.
func TestSustainedBothWays(t *testing.T) {
	client, accepted := pair(t, nil)
	ch, srv := open(t, client, accepted)
	a, err := NewDatagram(ch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDatagram(srv)
	if err != nil {
		t.Fatal(err)
	}
	const count = 20000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	const end = ^uint32(0)
	send := func(d *Datagram, seed uint64) {
		defer wg.Done()
		r := mrand.New(mrand.NewPCG(seed, seed))
		seq := uint32(0)
		for range count {
			err := d.WritePacket(packet(seq, 12+r.IntN(1500-12)))
			switch {
			case err == nil:
				seq++
			case errors.Is(err, ErrDropped):
			default:
				errs <- err
				return
			}
		}
		// The end marker must get through: the reader grants window.
		for range 1000000 {
			err := d.WritePacket(packet(end, 12))
			if err == nil {
				return
			}
			if !errors.Is(err, ErrDropped) {
				errs <- err
				return
			}
		}
		errs <- errors.New("the end marker found no window")
	}
	recv := func(d *Datagram, got *uint32) {
		defer wg.Done()
		buf := make([]byte, 2048)
		for seq := uint32(0); ; seq++ {
			n, err := d.ReadPacket(buf)
			if err != nil {
				errs <- err
				return
			}
			if n == 12 && binary.BigEndian.Uint32(buf) == end {
				*got = seq
				return
			}
			if what := checkPacket(buf[:n], seq); what != "" {
				errs <- errors.New(what)
				return
			}
		}
	}
	var gotA, gotB uint32
	wg.Add(4)
	go send(a, 1)
	go send(b, 2)
	go recv(a, &gotA)
	go recv(b, &gotB)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("client %+v, server %+v", sa, sb)
	if uint64(gotB) != sa.Sent-1 || uint64(gotA) != sb.Sent-1 || sa.Sent != sb.Received || sb.Sent != sa.Received {
		t.Errorf("sent and received differ: client %+v, server %+v", sa, sb)
	}
	if sa.Sent-1+sa.DroppedWindow < count || sb.Sent-1+sb.DroppedWindow < count {
		t.Errorf("packets unaccounted for: client %+v, server %+v", sa, sb)
	}
}

func TestReadPacketTooLong(t *testing.T) {
	client, accepted := pair(t, nil)
	ch, srv := open(t, client, accepted)
	a, _ := NewDatagram(ch)
	b, err := NewDatagram(srv)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{5000, 100} {
		if err := a.WritePacket(packet(uint32(i), n)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1000)
	if _, err := b.ReadPacket(buf); !errors.Is(err, ErrDropped) {
		t.Fatalf("a 5000-byte message into 1000 bytes: %v", err)
	}
	n, err := b.ReadPacket(buf)
	if err != nil || checkPacket(buf[:n], 1) != "" {
		t.Fatalf("the next message: %d bytes, %v", n, err)
	}
}

func TestOpenRefused(t *testing.T) {
	client, _ := pair(t, &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "open failed"})
	_, err := Open(client, Ethernet, 5)
	var oe *OpenError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "administratively prohibited: open failed") ||
		!strings.Contains(err.Error(), "PermitTunnel") || !strings.Contains(err.Error(), "unit 5") {
		t.Fatalf("prohibited: %v", err)
	}
	client, _ = pair(t, &ssh.OpenChannelError{Reason: ssh.ResourceShortage, Message: "no\x1b[2Jdevice"})
	_, err = Open(client, PointToPoint, AnyUnit)
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), "device") {
		t.Fatalf("other refusal, escaped: %q", err)
	}
}

type fakeChannel struct{ ssh.Channel }

func TestNotXCryptoChannel(t *testing.T) {
	if _, err := NewDatagram(fakeChannel{}); err == nil {
		t.Fatal("a channel that is not x/crypto's was accepted")
	}
}

func ipv4(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	return p
}

func TestAF(t *testing.T) {
	buf := append(make([]byte, 4), ipv4(40)...)
	msg, err := PrependAF(buf)
	if err != nil || binary.BigEndian.Uint32(msg) != 2 {
		t.Fatalf("IPv4: % x, %v", msg[:4], err)
	}
	if ip, err := StripAF(msg); err != nil || len(ip) != 40 {
		t.Fatalf("strip IPv4: %d, %v", len(ip), err)
	}
	v6 := make([]byte, 4+48)
	v6[4] = 0x60
	binary.BigEndian.PutUint16(v6[8:], 8)
	if msg, err := PrependAF(v6); err != nil || binary.BigEndian.Uint32(msg) != 24 {
		t.Fatalf("IPv6: %v", err)
	}
	if _, err := StripAF(v6); err != nil {
		t.Fatalf("strip IPv6: %v", err)
	}
	for name, m := range map[string][]byte{
		"short":          {0, 0, 0, 2, 0x45},
		"family/version": append([]byte{0, 0, 0, 24}, ipv4(40)...),
		"length":         append([]byte{0, 0, 0, 2}, ipv4(40)[:39]...),
		"two packets":    append(append([]byte{0, 0, 0, 2}, ipv4(40)...), ipv4(40)...),
	} {
		if _, err := StripAF(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := PrependAF(append(make([]byte, 4), 0x10, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("version 1: %v", err)
	}
}

func FuzzStripAF(f *testing.F) {
	f.Add(append([]byte{0, 0, 0, 2}, ipv4(20)...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ip, err := StripAF(msg)
		if err == nil && len(ip) != len(msg)-4 {
			t.Fatalf("%d of %d bytes", len(ip), len(msg))
		}
	})
}
