package pppssh

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestParseProxyJump(t *testing.T) {
	for in, want := range map[string]string{
		"none":                            "",
		"bastion":                         "bastion",
		"ops@bastion:2222":                "ops@bastion:2222",
		"a, b@192.0.2.5,[2001:db8::1]:22": "a|b@192.0.2.5|[2001:db8::1]:22",
		"ssh://ops@gw.example.org:2200":   "ops@gw.example.org:2200",
		"2001:db8::5":                     "[2001:db8::5]",
	} {
		hops, err := parseProxyJump(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		var got []string
		for _, h := range hops {
			got = append(got, h.String())
		}
		if strings.Join(got, "|") != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"a b", "-oProxyCommand=x", "u;x@h", "h:0", "h:99999", "[h", "ssh://h/path", "a,,b", strings.Repeat("h,", maxJumps) + "h"} {
		if _, err := parseProxyJump(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExpandProxyCommand(t *testing.T) {
	got, err := expandProxyCommand("ssh -W %h:%p %r@jump %% %n", Target{Alias: "office", Host: "gw.example.org", Port: 2222, User: "vpn"})
	if err != nil || got != "ssh -W gw.example.org:2222 vpn@jump % office" {
		t.Fatalf("%q, %v", got, err)
	}
	// A value is quoted for the shell (setHost would refuse this one;
	// the quoting does not rely on it).
	got, _ = expandProxyCommand("nc %h", Target{Host: "a;reboot"})
	if got != "nc 'a;reboot'" {
		t.Fatalf("%q", got)
	}
	for _, bad := range []string{"nc %x", "nc %"} {
		if _, err := expandProxyCommand(bad, Target{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// jumpServer is an SSH server that opens direct-tcpip channels (ssh -J's
// forwarding), as a bastion's sshd does. live counts its open client
// connections.
type jumpServer struct {
	addr    string
	hostKey ssh.Signer
	mu      sync.Mutex
	live    int
	changed chan struct{}
}

func startJumpServer(t *testing.T, allowed ssh.PublicKey) *jumpServer {
	t.Helper()
	cfg, hostKey := serverConfig(t, allowed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	j := &jumpServer{addr: ln.Addr().String(), hostKey: hostKey, changed: make(chan struct{}, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				j.count(+1)
				defer j.count(-1)
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					j.forward(nc, &wg)
				}
			}()
		}
	}()
	return j
}

func (j *jumpServer) count(d int) {
	j.mu.Lock()
	j.live += d
	j.mu.Unlock()
	j.changed <- struct{}{}
}

// forward serves a direct-tcpip request: host, port, origin host, port.
func (j *jumpServer) forward(nc ssh.NewChannel, wg *sync.WaitGroup) {
	p := nc.ExtraData()
	if nc.ChannelType() != "direct-tcpip" || len(p) < 4 {
		nc.Reject(ssh.Prohibited, "only direct-tcpip")
		return
	}
	n := binary.BigEndian.Uint32(p)
	if len(p) < int(4+n+4) {
		nc.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	host, port := string(p[4:4+n]), binary.BigEndian.Uint32(p[4+n:])
	out, err := net.Dial("tcp", joinHostPort(host, int(port)))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		out.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(out, ch); out.Close() }()
	go func() { defer wg.Done(); io.Copy(ch, out); ch.Close() }()
}

// waitLive waits until the jump server has n client connections.
func (j *jumpServer) waitLive(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		j.mu.Lock()
		live := j.live
		j.mu.Unlock()
		if live == n {
			return
		}
		select {
		case <-j.changed:
		case <-deadline:
			t.Fatalf("jump server has %d connections, want %d", live, n)
		}
	}
}

func knownHostsFor(t *testing.T, entries map[string]ssh.PublicKey) *hostKeys {
	t.Helper()
	var lines []string
	for addr, k := range entries {
		b, err := os.ReadFile(writeKnownHosts(t, addr, k))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	p := writeKnownHosts(t, "unused:1")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	hk, err := loadHostKeys(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return hk
}

func knownhostsName(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "[" + host + "]:" + port
}

func TestDialThroughJumpHost(t *testing.T) {
	client, _ := newSigner(t)
	jump := startJumpServer(t, client.PublicKey())
	srv := startTestServer(t, client.PublicKey())
	target := targetFor(t, srv.addr)
	hop := targetFor(t, jump.addr)
	hop.Alias = "bastion"
	target.Jumps = []Target{hop}
	keys, hopKeys := []ssh.Signer{client}, [][]ssh.Signer{{client}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("both known", func(t *testing.T) {
		hk := knownHostsFor(t, map[string]ssh.PublicKey{jump.addr: jump.hostKey.PublicKey(), srv.addr: srv.hostKey.PublicKey()})
		c, err := dial(ctx, target, hk, keys, hopKeys, quiet())
		if err != nil {
			t.Fatal(err)
		}
		// The address this host routes to is the jump host's.
		if got := c.RemoteAddr().String(); got != jump.addr {
			t.Errorf("RemoteAddr %s, want the first hop %s", got, jump.addr)
		}
		jump.waitLive(t, 1)
		c.Close()
		jump.waitLive(t, 0) // closing the link closed the hop's connection
	})
	t.Run("jump host unknown", func(t *testing.T) {
		hk := knownHostsFor(t, map[string]ssh.PublicKey{srv.addr: srv.hostKey.PublicKey()})
		_, err := dial(ctx, target, hk, keys, hopKeys, quiet())
		var unknown *UnknownHostError
		if !errors.As(err, &unknown) || !strings.HasPrefix(err.Error(), "jump host bastion: ") || !strings.Contains(err.Error(), "host key verification failed: "+knownhostsName(jump.addr)) {
			t.Fatalf("%v, want the jump host's unknown key", err)
		}
	})
	t.Run("server unknown behind a known jump host", func(t *testing.T) {
		hk := knownHostsFor(t, map[string]ssh.PublicKey{jump.addr: jump.hostKey.PublicKey()})
		_, err := dial(ctx, target, hk, keys, hopKeys, quiet())
		var unknown *UnknownHostError
		if !errors.As(err, &unknown) || strings.Contains(err.Error(), "jump host") || !strings.Contains(err.Error(), knownhostsName(srv.addr)) {
			t.Fatalf("%v, want the server's unknown key", err)
		}
		jump.waitLive(t, 0)
	})
	t.Run("jump host cannot reach the server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		to := targetFor(t, closed)
		to.Jumps = target.Jumps
		hk := knownHostsFor(t, map[string]ssh.PublicKey{jump.addr: jump.hostKey.PublicKey()})
		_, err = dial(ctx, to, hk, keys, hopKeys, quiet())
		if err == nil || !strings.Contains(err.Error(), "jump host bastion could not connect to "+closed) {
			t.Fatalf("%v", err)
		}
	})
}

func TestDialThroughProxyCommand(t *testing.T) {
	client, _ := newSigner(t)
	srv := startTestServer(t, client.PublicKey())
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(proxyEnv, srv.addr) // the test binary, run as the command, proxies there
	target := targetFor(t, srv.addr)
	target.ProxyCommand = ShellQuote(self) + " %h %p"
	hk := knownHostsFor(t, map[string]ssh.PublicKey{srv.addr: srv.hostKey.PublicKey()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, target, hk, []ssh.Signer{client}, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.RemoteAddr().(proxyAddr); !ok {
		t.Errorf("RemoteAddr %v: a proxied connection has no address to route", c.RemoteAddr())
	}
	c.Close()

	// Run as ssh runs it, "exec COMMAND": a command that writes its
	// complaint, then exits, as nc does when the bastion is down.
	target.ProxyCommand = "sh -c 'echo no route to the bastion >&2; exit 1'"
	_, err = dial(ctx, target, hk, []ssh.Signer{client}, nil, quiet())
	if err == nil || !strings.Contains(err.Error(), `said: no route to the bastion`) {
		t.Fatalf("a failing proxy command: %v", err)
	}
}

func TestResolveProxyJumpFromSSHConfigAndKeys(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "Host office\n  HostName 203.0.113.2\n  User vpn\n  ProxyJump bastion,ops@192.0.2.9:2200\n" +
		"Host bastion\n  HostName 192.0.2.2\n  Port 2222\n  User jump\n  IdentityFile ~/.ssh/id_bastion\n" +
		"Host piped\n  User vpn\n  ProxyCommand nc -X connect -x proxy.example.org:3128 %h %p\n" +
		"Host both\n  User vpn\n  ProxyJump bastion\n  ProxyCommand nc %h %p\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	resolve := func(lines string) (Target, error) {
		c := Defaults()
		if _, err := c.Parse("f", []byte(lines)); err != nil {
			t.Fatal(err)
		}
		return c.ResolveTarget(home)
	}
	tg, err := resolve("SERVER_HOSTNAME=office\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Jumps) != 2 {
		t.Fatalf("jumps %+v", tg.Jumps)
	}
	b, o := tg.Jumps[0], tg.Jumps[1]
	if b.Alias != "bastion" || b.Addr() != "192.0.2.2:2222" || b.User != "jump" || !b.Explicit ||
		len(b.Identities) != 1 || b.Identities[0] != filepath.Join(home, ".ssh", "id_bastion") {
		t.Errorf("first hop %+v", b)
	}
	if o.Addr() != "192.0.2.9:2200" || o.User != "ops" || o.Explicit {
		t.Errorf("second hop %+v", o)
	}
	// The link's key wins; none turns ssh_config's off.
	if tg, err = resolve("SERVER_HOSTNAME=office\nSSH_PROXY_JUMP=root@192.0.2.5\n"); err != nil || len(tg.Jumps) != 1 || tg.Jumps[0].Addr() != "192.0.2.5:22" {
		t.Errorf("SSH_PROXY_JUMP: %+v, %v", tg.Jumps, err)
	}
	if tg, err = resolve("SERVER_HOSTNAME=office\nSSH_PROXY_JUMP=none\n"); err != nil || len(tg.Jumps) != 0 {
		t.Errorf("SSH_PROXY_JUMP=none: %+v, %v", tg.Jumps, err)
	}
	if tg, err = resolve("SERVER_HOSTNAME=piped\n"); err != nil || tg.ProxyCommand != "nc -X connect -x proxy.example.org:3128 %h %p" {
		t.Errorf("ProxyCommand: %q, %v", tg.ProxyCommand, err)
	}
	if _, err = resolve("SERVER_HOSTNAME=both\n"); err == nil || !strings.Contains(err.Error(), "ProxyJump (bastion) and") {
		t.Errorf("ProxyJump and ProxyCommand together: %v", err)
	}
	// The link's key beats ssh_config's other kind.
	if tg, err = resolve("SERVER_HOSTNAME=piped\nSSH_PROXY_JUMP=bastion\n"); err != nil || len(tg.Jumps) != 1 || tg.ProxyCommand != "" {
		t.Errorf("SSH_PROXY_JUMP beside ssh_config's ProxyCommand: %+v, %v", tg, err)
	}
	if _, err = resolve("SERVER_HOSTNAME=piped\nDEFAULT_ROUTE=yes\n"); err == nil || !strings.Contains(err.Error(), "DEFAULT_ROUTE=yes cannot be used with") {
		t.Errorf("DEFAULT_ROUTE through a proxy command: %v", err)
	}
	if _, err = resolve("SERVER_HOSTNAME=piped\nSSH_PROXY_COMMAND=none\nSSH_PROXY_JUMP=bastion\n"); err != nil {
		t.Errorf("SSH_PROXY_COMMAND=none beside a jump: %v", err)
	}
}

// stuckConn is the channel to the server whose close cannot go out: its
// Close returns only once the hop's connection has ended, as a close
// message held by a full send buffer on a silent path would.
type stuckConn struct {
	net.Conn
	hop *ssh.Client
}

func (s stuckConn) Close() error {
	s.hop.Wait()
	return io.EOF
}

// TestJumpedConnCloseIsBounded: the channel's close gets jumpCloseWait;
// then the hops' connections are closed under it, which ends it.
func TestJumpedConnCloseIsBounded(t *testing.T) {
	defer func(w time.Duration) { jumpCloseWait = w }(jumpCloseWait)
	jumpCloseWait = 200 * time.Millisecond
	hop := keepaliveClient(t, true)
	j := &jumpedConn{Conn: stuckConn{hop: hop}, hops: []*ssh.Client{hop}}
	begin := time.Now()
	got := make(chan error, 1)
	go func() { got <- j.Close() }()
	select {
	case err := <-got:
		if !errors.Is(err, io.EOF) {
			t.Errorf("Close: %v, want the channel's own close error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a channel close that could not go out")
	}
	if took := time.Since(begin); took < jumpCloseWait {
		t.Errorf("the hops were closed after %v, before the channel had jumpCloseWait (%v)", took, jumpCloseWait)
	}
	if _, _, err := hop.SendRequest("keepalive@openssh.com", true, nil); err == nil {
		t.Error("the hop's connection is still open")
	}
	if err := j.Close(); !errors.Is(err, io.EOF) {
		t.Errorf("a second Close: %v, want the first's", err)
	}
}
