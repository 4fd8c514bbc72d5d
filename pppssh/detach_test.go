package pppssh

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// reuseLink is fakeLink on the connection c, as the driver makes the next
// run of a link after Detach.
func reuseLink(t *testing.T, srv *sessionServer, c *ssh.Client) (*Link, *fakeCarrier) {
	t.Helper()
	_, key := newSigner(t) // never used: there is no login
	cfg := testConfig(t, srv.addr, srv.hostKey, key, "MODE=tun\n")
	f := newFakeCarrier()
	l, err := New(cfg, Options{Logger: quiet(), Home: t.TempDir(), Client: c,
		Carrier: func(Config, *slog.Logger) (Carrier, error) { return f, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return l, f
}

// TestDetachHandsTheConnectionOver: a link whose carrier alone ended hands
// its connection over; Close leaves it open, the next run starts on it
// without a login, and that run's Close closes it.
func TestDetachHandsTheConnectionOver(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	l, f := fakeLink(t, srv, key)
	if c := l.Detach(time.Second); c != nil {
		t.Fatal("Detach handed over the connection of a link never started")
	}
	if _, err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := l.Detach(time.Second); c != nil {
		t.Fatal("Detach handed over the connection of a link that is up")
	}
	f.end(errors.New("the server's pppd died"))
	waitReturns(t, l, 5*time.Second)
	c := l.Detach(2 * time.Second)
	if c == nil || c != f.client {
		t.Fatalf("Detach = %p, want the link's connection %p", c, f.client)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("the handed-over connection was closed by Close: %v", err)
	}
	if f.kept != 1 {
		t.Errorf("the carrier was told %d times before its Close that the connection was handed over, want 1", f.kept)
	}

	next, f2 := reuseLink(t, srv, c)
	if _, err := next.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f2.client != c {
		t.Error("the next run did not start on the handed-over connection")
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
		t.Error("the next run's Close left the connection open")
	}
	if f2.kept != 0 {
		t.Error("the next run's carrier was told its connection was handed over, though Detach was not called")
	}
	noLinkGoroutines(t)
}

// TestDetachKeepsWhatItCannotHandOver: no connection changes hands after
// Close, or when the connection no longer answers; Close then closes it.
func TestDetachKeepsWhatItCannotHandOver(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")

	l, _ := fakeLink(t, srv, key)
	if _, err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if c := l.Detach(time.Second); c != nil {
		t.Error("Detach after Close handed over a connection")
	}

	l, f := fakeLink(t, srv, key)
	if _, err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.client.Close() // the path broke; the carrier noticed first
	f.end(errors.New("the session ended"))
	waitReturns(t, l, 5*time.Second)
	if c := l.Detach(2 * time.Second); c != nil {
		t.Error("Detach handed over a closed connection")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	noLinkGoroutines(t)
}

// TestDetachAndCloseAtOnce: Detach and Close called together (the library
// allows any goroutine either) take turns. Whichever goes first, a
// connection Detach returns is open and stays open after Close, one it
// does not return is closed, and Close joins every goroutine.
func TestDetachAndCloseAtOnce(t *testing.T) {
	leakCheck(t)
	client, key := newSigner(t)
	srv := startSessionServer(t, client.PublicKey(), "hang")
	handed := 0
	for i := range 20 {
		l, f := fakeLink(t, srv, key)
		if _, err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.end(errors.New("the server's pppd died"))
		waitReturns(t, l, 5*time.Second)
		// Each goes first in its own goroutine half the time.
		got, closed := make(chan *ssh.Client, 1), make(chan error, 1)
		if i%2 == 0 {
			go func() { got <- l.Detach(2 * time.Second) }()
			closed <- l.Close()
		} else {
			go func() { closed <- l.Close() }()
			got <- l.Detach(2 * time.Second)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		c := <-got
		_, _, err := f.client.SendRequest("keepalive@openssh.com", true, nil)
		switch {
		case c != nil && err != nil:
			t.Fatalf("Detach handed over a connection that Close closed: %v", err)
		case c == nil && err == nil:
			t.Fatal("Close left open a connection that Detach did not hand over")
		case c != nil:
			handed++
			c.Close()
		}
		noLinkGoroutines(t)
	}
	t.Logf("Detach handed the connection over %d times in 20", handed)
}
