package pppssh

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestPPPCarrierCloseKeepsAHandedOverConnection: the carrier ended by
// itself (the helper gave up) and the Link handed the connection over
// (Detach). Close waits for the server's session to end, however long the
// server takes within keptSessionWait, and leaves the connection open for
// the next run. Not handed over, it closes the connection of a session
// still there at once; handed over, when its closer gives up (a stop) or
// the session never ends within the wait.
func TestPPPCarrierCloseKeepsAHandedOverConnection(t *testing.T) {
	defer func(w time.Duration) { keptSessionWait = w }(keptSessionWait)
	signer, _ := newSigner(t)
	srv := startSessionServer(t, signer.PublicKey(), "hang")
	// carrier is a carrier that ended by itself, with one session on a
	// connection of its own; the session has ended once ended is closed.
	carrier := func(kept bool, giveUp <-chan struct{}) (c *pppCarrier, client *ssh.Client, ended chan struct{}) {
		t.Helper()
		client, err := ssh.Dial("tcp", srv.addr, &ssh.ClientConfig{User: "vpn", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.FixedHostKey(srv.hostKey)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		ended = make(chan struct{})
		c = &pppCarrier{log: quiet(), client: client, done: make(chan struct{}), closing: make(chan struct{}),
			srv: &serverSession{cmd: "sudo -n vpn-pppssh serve", sess: sess, waiting: true, ended: ended}}
		c.selfEnd.Store(true)
		if kept {
			c.keepConnection(giveUp)
		}
		return c, client, ended
	}
	closeAsync := func(c *pppCarrier) <-chan struct{} {
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			c.Close()
		}()
		return returned
	}
	open := func(client *ssh.Client) bool {
		_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
		return err == nil
	}
	connClosed := func(client *ssh.Client) <-chan struct{} {
		closed := make(chan struct{})
		go func() {
			client.Wait()
			close(closed)
		}()
		return closed
	}

	// Handed over: Close waits for the session, and the connection stays.
	keptSessionWait = time.Minute
	c, client, ended := carrier(true, make(chan struct{}))
	returned := closeAsync(c)
	select {
	case <-connClosed(client):
		t.Fatal("Close closed the connection it had handed over while the server's session was still there")
	case <-time.After(200 * time.Millisecond):
	}
	close(ended)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return once the session ended")
	}
	if !open(client) {
		t.Error("Close closed the connection it had handed over")
	}

	// wantClosed closes c and wants its connection closed while the
	// session is still there, then lets the session end.
	wantClosed := func(c *pppCarrier, client *ssh.Client, ended chan struct{}, giveUp chan struct{}, why string) {
		t.Helper()
		returned := closeAsync(c)
		if giveUp != nil {
			close(giveUp)
		}
		select {
		case <-connClosed(client):
		case <-time.After(5 * time.Second):
			t.Fatal(why)
		}
		close(ended)
		<-returned
	}

	// Not handed over: a session still there has its connection closed.
	c, client, ended = carrier(false, nil)
	wantClosed(c, client, ended, nil, "Close left the connection of a live session open")

	// Handed over, and the closer gives up (a stop): closed at once.
	giveUp := make(chan struct{})
	c, client, ended = carrier(true, giveUp)
	wantClosed(c, client, ended, giveUp, "Close went on waiting for the session after its closer gave up")

	// Handed over, and the session never ends: closed after the wait.
	keptSessionWait = 100 * time.Millisecond
	c, client, ended = carrier(true, make(chan struct{}))
	wantClosed(c, client, ended, nil, "Close kept a connection whose session never ended")
}
