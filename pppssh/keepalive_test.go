package pppssh

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepaliveServer answers global requests, or leaves them unanswered as a
// path gone silent would.
func keepaliveServer(t *testing.T, answer bool) (addr string, hostKey ssh.PublicKey, client ssh.Signer) {
	t.Helper()
	client, _ = newSigner(t)
	hk, _ := newSigner(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(hk)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		_, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		go rejectChannels(chans)
		for r := range reqs {
			if answer {
				r.Reply(false, nil) // as OpenSSH does for unknown requests
			}
		}
	}()
	return ln.Addr().String(), hk.PublicKey(), client
}

func rejectChannels(chans <-chan ssh.NewChannel) {
	for nc := range chans {
		nc.Reject(ssh.Prohibited, "none")
	}
}

// keepaliveClient is a connection to a keepaliveServer, closed when the
// test ends.
func keepaliveClient(t *testing.T, answer bool) *ssh.Client {
	t.Helper()
	addr, hk, key := keepaliveServer(t, answer)
	hks, err := loadHostKeys(writeKnownHosts(t, addr, hk), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(context.Background(), targetFor(t, addr), hks, []ssh.Signer{key}, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func keepaliveLink(t *testing.T, answer bool) *Link {
	t.Helper()
	c := keepaliveClient(t, answer)
	return &Link{cfg: Config{Keepalive: 50 * time.Millisecond}, client: c, log: quiet(),
		dead: make(chan error, 1), closing: make(chan struct{}), done: make(chan struct{}), startDone: make(chan struct{}),
		kaStop: make(chan struct{}), kaStopped: make(chan struct{})}
}

func TestKeepaliveDeclaresSilentPathDead(t *testing.T) {
	l := keepaliveLink(t, false)
	begin := time.Now()
	go l.keepalive()
	select {
	case err := <-l.dead:
		// The first request goes out at the first check (k/4); it is
		// dead one and a half intervals later, so never before 1.5k.
		if took := time.Since(begin); took < 75*time.Millisecond || took > 2*time.Second {
			t.Errorf("declared dead after %v, want about 90-140ms (1.5 intervals after the first request)", took)
		}
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("a silent server was not declared dead")
	}
}

func TestKeepaliveKeepsAnsweringPathAlive(t *testing.T) {
	l := keepaliveLink(t, true)
	go l.keepalive()
	select {
	case err := <-l.dead:
		t.Fatalf("an answering server was declared dead: %v", err)
	case <-time.After(500 * time.Millisecond): // ten intervals
	}
	close(l.closing)
}
