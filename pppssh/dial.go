package pppssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// dial opens an authenticated SSH connection to the target: over TCP, or
// through its proxy command, and through its jump hosts in order, each
// one's host key checked and each logged in to before the next is asked
// for. The whole of it (connections, key exchanges, host key checks,
// logins) is bounded by ctx. hopKeys are the keys for each jump host.
func dial(ctx context.Context, t Target, hk *hostKeys, keys []ssh.Signer, hopKeys [][]ssh.Signer, log *slog.Logger) (*ssh.Client, error) {
	first := t
	if len(t.Jumps) > 0 {
		first = t.Jumps[0]
	}
	raw, err := connect(ctx, first, t.ProxyCommand, log)
	if err != nil {
		return nil, err
	}
	log.Debug("connected", "addr", first.Addr(), "via", raw.RemoteAddr())
	// Bound the handshakes by ctx; the deadline is cleared once logged
	// in. On the first connection: every later one runs inside it.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	var conn net.Conn = newCoalescingConn(readBuffered(raw))
	var hops []*ssh.Client
	fail := func(err error) (*ssh.Client, error) {
		stop()
		conn.Close()
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i].Close()
		}
		raw.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("logging in to %s: %w", t.Addr(), context.Cause(ctx))
		}
		return nil, proxyError(raw, err)
	}
	for i, hop := range t.Jumps {
		c, err := login(conn, hop, hk, hopKeys[i])
		if err != nil {
			return fail(fmt.Errorf("jump host %s: %w", hop.Alias, err))
		}
		hops = append(hops, c)
		log.Debug("logged in to jump host", "addr", hop.Addr(), "user", hop.User)
		next := t
		if i+1 < len(t.Jumps) {
			next = t.Jumps[i+1]
		}
		onward, err := c.DialContext(ctx, "tcp", next.Addr())
		if err != nil {
			return fail(fmt.Errorf("jump host %s could not connect to %s: %w", hop.Alias, next.Addr(), err))
		}
		conn = onward
	}
	if len(hops) > 0 {
		conn = &jumpedConn{Conn: conn, hops: hops, first: raw.RemoteAddr(), from: raw.LocalAddr()}
	}
	c, err := login(conn, t, hk, keys)
	if err != nil {
		return fail(err)
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("logging in to %s: %w", t.Addr(), context.Cause(ctx))
	}
	log.Debug("logged in", "addr", t.Addr(), "user", t.User, "server", string(c.ServerVersion()), "jumps", len(hops))
	return c, nil
}

// connect opens the first connection: TCP to the first host, or the
// proxy command.
func connect(ctx context.Context, first Target, proxyCommand string, log *slog.Logger) (net.Conn, error) {
	if proxyCommand != "" {
		return startProxyCommand(proxyCommand, first, log)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", first.Addr())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", first.Addr(), err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // PPP frames are latency-sensitive; ssh sets TCP_NODELAY for interactive sessions too
	}
	return conn, nil
}

// login runs the SSH handshake with t over conn: its host key checked
// against known_hosts, logged in with keys.
func login(conn net.Conn, t Target, hk *hostKeys, keys []ssh.Signer) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(t.Addr()),
		Config:            ssh.Config{Ciphers: t.ciphers()},
		ClientVersion:     "SSH-2.0-vpn-pppssh",
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr(), cfg)
	if err != nil {
		return nil, loginError(t.Addr(), t.User, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// proxyError adds what a proxy command said on stderr to an error of the
// connection it carried: why it could not connect is there.
func proxyError(raw net.Conn, err error) error {
	if pc, ok := raw.(*cmdConn); ok {
		if said := pc.said(); said != "" {
			return fmt.Errorf("%w (proxy command %q said: %s)", err, pc.desc, said)
		}
		return fmt.Errorf("%w (through proxy command %q)", err, pc.desc)
	}
	return err
}

// jumpedConn is the connection to the server through jump hosts: closing
// it closes the jump hosts' connections too, last hop first, and its
// remote address is the first host's, the one this host routes to (the
// carrier route that DEFAULT_ROUTE keeps), and its local address the one
// this host's connection to that first host leaves from.
type jumpedConn struct {
	net.Conn
	hops     []*ssh.Client
	first    net.Addr
	from     net.Addr
	once     sync.Once
	closeErr error
}

// jumpCloseWait bounds the closing of the channel to the server, a
// message on the hops' connections: on a path gone silent a full send
// buffer would hold that write forever. A var for the tests.
var jumpCloseWait = time.Second

// Close closes the channel to the server, then the hops' connections; a
// channel whose close has not gone out within jumpCloseWait is ended by
// theirs. Later calls return the first call's error.
func (j *jumpedConn) Close() error {
	j.once.Do(func() {
		closed := make(chan error, 1)
		go func() { closed <- j.Conn.Close() }()
		t := time.NewTimer(jumpCloseWait)
		defer t.Stop()
		done := false
		select {
		case j.closeErr = <-closed:
			done = true
		case <-t.C:
		}
		for i := len(j.hops) - 1; i >= 0; i-- {
			j.hops[i].Close()
		}
		if !done {
			j.closeErr = <-closed // ended by the hops' end
		}
	})
	return j.closeErr
}

func (j *jumpedConn) RemoteAddr() net.Addr { return j.first }
func (j *jumpedConn) LocalAddr() net.Addr  { return j.from }

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
