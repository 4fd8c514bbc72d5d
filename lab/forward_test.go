package lab_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
	"golang.org/x/net/proxy"
)

// MODE=none with every kind of forward, through the lab's real sshd: a
// local TCP and a local Unix-socket forward to a service behind the
// server, a SOCKS proxy (spoken by x/net/proxy, not by us), and a reverse
// forward that lets the server reach a service behind the client, the
// "laptop behind NAT" case, kept alive across an sshd restart. Then the
// refusals, each naming its forward, and nothing left after stop.
func TestPortForwards(t *testing.T) {
	l := needLab(t)
	behindServer := serveHello(t, lab.BehindServerNS, lab.BehindServerIP+":7000", "behind-server")
	behindClient := serveHello(t, lab.BehindClientNS, lab.BehindClientIP+":7001", "behind-client")
	sock := filepath.Join(l.Dir, "fw.sock")
	conf := l.Config("fw", 1, "MODE=none",
		`LOCAL_FORWARDS="127.0.0.1:17000:`+behindServer+" "+sock+":"+behindServer+`"`,
		"DYNAMIC_FORWARDS=17080",
		"REMOTE_FORWARDS=17022:"+behindClient)
	out := mustStart(t, conf)
	for _, want := range []string{"link fw up: port forwards only", "forward LOCAL_FORWARDS 127.0.0.1:17000:" + behindServer + " on 127.0.0.1:17000",
		"forward REMOTE_FORWARDS 17022:" + behindClient + " on the server's localhost:17022", "forward DYNAMIC_FORWARDS 17080 on 127.0.0.1:17080"} {
		if !strings.Contains(out, want) {
			t.Errorf("start's output lacks %q:\n%s", want, out)
		}
	}

	t.Run("local TCP", func(t *testing.T) {
		wantHello(t, lab.ClientNS, "tcp", "127.0.0.1:17000", "behind-server")
	})
	t.Run("local Unix socket", func(t *testing.T) {
		wantHello(t, lab.ClientNS, "unix", sock, "behind-server")
	})
	t.Run("SOCKS5", func(t *testing.T) {
		d, err := proxy.SOCKS5("tcp", "127.0.0.1:17080", nil, nsDialer(lab.ClientNS))
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Dial("tcp", behindServer)
		if err != nil {
			t.Fatalf("through the SOCKS proxy: %v", err)
		}
		hello(t, c, "behind-server")
	})
	t.Run("remote", func(t *testing.T) {
		wantHello(t, lab.ServerNS, "tcp", "127.0.0.1:17022", "behind-client")
	})

	// Five listeners: the SOCKS proxy on 127.0.0.1 and ::1, as ssh -D.
	s := statusJSON(t, conf)
	if s.Mode != "none" || s.Iface != "" || len(s.Forwards) != 5 || s.Via != lab.ClientIP {
		t.Errorf("status: %+v", s)
	}

	t.Run("the reverse forward outlives an sshd restart", func(t *testing.T) {
		pid := s.Pid
		if err := l.RestartSSHD(); err != nil {
			t.Fatal(err)
		}
		ok, got := lab.WaitForEvery(60*time.Second, 500*time.Millisecond, func() (bool, string) {
			s := statusJSON(t, conf)
			return s.Phase == "up" && s.Redials > 0, fmt.Sprintf("%+v", s)
		})
		if !ok {
			dumpLog(t, conf)
			t.Fatalf("not redialled after the sshd restart: %s", got)
		}
		if now := statusJSON(t, conf); now.Pid != pid {
			t.Errorf("another process after the redial: %d, was %d", now.Pid, pid)
		}
		wantHello(t, lab.ServerNS, "tcp", "127.0.0.1:17022", "behind-client")
		wantHello(t, lab.ClientNS, "tcp", "127.0.0.1:17000", "behind-server")
	})

	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantClean(t, 10*time.Second)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the forward's socket outlived the link: %v", err)
	}
	if c, err := lab.DialInNS(lab.ServerNS, "tcp", "127.0.0.1:17022"); err == nil {
		c.Close()
		t.Error("the server still listens for the reverse forward after stop")
	}

	t.Run("a port in use here is named", func(t *testing.T) {
		taken, err := lab.ListenInNS(lab.ClientNS, "tcp", "127.0.0.1:17000")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		other := l.Config("fw2", 3, "MODE=none", "LOCAL_FORWARDS=127.0.0.1:17000:"+behindServer)
		wantFailure(t, other, 1, 20*time.Second, "LOCAL_FORWARDS 127.0.0.1:17000:"+behindServer+": listen tcp 127.0.0.1:17000: bind: address already in use")
	})
	t.Run("the server's AllowTcpForwarding no is named", func(t *testing.T) {
		other := l.Config("fw3", 3, "MODE=none", fmt.Sprintf("SERVER_PORT=%d", lab.NoTunnelPort),
			"REMOTE_FORWARDS=17023:"+behindClient)
		wantFailure(t, other, 1, 20*time.Second, "REMOTE_FORWARDS 17023:"+behindClient+": the server refused to listen on localhost:17023 (sshd_config: AllowTcpForwarding")
	})

}

// serveHello runs a service in ns that answers each connection's first
// line with "NAME: LINE", until the test ends; it returns its address.
func serveHello(t *testing.T, ns, addr, name string) string {
	t.Helper()
	ln, err := lab.ListenInNS(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					fmt.Fprintf(c, "%s: %s", name, line)
				}
			}()
		}
	}()
	return addr
}

// wantHello connects from ns and expects the service called name.
func wantHello(t *testing.T, ns, network, addr, name string) {
	t.Helper()
	c, err := lab.DialInNS(ns, network, addr)
	if err != nil {
		t.Fatalf("connecting to %s from %s: %v", addr, ns, err)
	}
	hello(t, c, name)
}

func hello(t *testing.T, c net.Conn, name string) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if want := name + ": hello\n"; err != nil || line != want {
		t.Fatalf("answer %q (%v), want %q", line, err, want)
	}
}

// nsDialer dials from inside a namespace, for x/net/proxy.
type nsDialer string

func (ns nsDialer) Dial(network, addr string) (net.Conn, error) {
	return lab.DialInNS(string(ns), network, addr)
}
