package pppssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// dial opens an authenticated SSH connection to the target. The whole of it
// (TCP, key exchange, host key check, login) is bounded by ctx.
func dial(ctx context.Context, t Target, hk *hostKeys, keys []ssh.Signer, log *slog.Logger) (*ssh.Client, error) {
	addr := t.Addr()
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(addr),
		Config:            ssh.Config{Ciphers: t.ciphers()},
		ClientVersion:     "SSH-2.0-vpn-pppssh",
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	log.Debug("connected", "addr", addr)
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // PPP frames are latency-sensitive; ssh sets TCP_NODELAY for interactive sessions too
	}
	// Bound the handshake by ctx; the deadline is cleared once logged in.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(newCoalescingConn(readBuffered(conn)), addr, cfg)
	if !stop() {
		if c != nil {
			c.Close()
		}
		conn.Close()
		return nil, fmt.Errorf("logging in to %s: %w", addr, context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, loginError(addr, t.User, err)
	}
	log.Debug("logged in", "addr", addr, "user", t.User, "server", string(c.ServerVersion()))
	return ssh.NewClient(c, chans, reqs), nil
}

// loginError keeps typed host key errors intact and names the account.
func loginError(addr, user string, err error) error {
	var unknown *UnknownHostError
	var changed *HostKeyChangedError
	if errors.As(err, &unknown) || errors.As(err, &changed) {
		return err
	}
	return fmt.Errorf("logging in to %s as %s: %w", addr, user, err)
}

// bufferedConn gives the SSH transport, which reads through a 4 KiB
// buffer, a 64 KiB one underneath: under load one read(2) then serves many
// packets instead of two or three.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func readBuffered(c net.Conn) net.Conn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
