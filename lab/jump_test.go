package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// The server sits behind a bastion: the client namespace has no route to
// BehindServerIP, and reaches its sshd only through the lab's sshd as a
// jump host (ProxyJump), each host's key checked against known_hosts.
func TestThroughJumpHost(t *testing.T) {
	l := needLab(t)
	if _, err := lab.InNS(lab.ClientNS, "ip", "route", "get", lab.BehindServerIP); err == nil {
		t.Fatalf("the client namespace has a route to %s: the test would not prove the jump", lab.BehindServerIP)
	}
	inner, err := l.StartInnerSSHD()
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Stop()
	writeKH := func(name string, lines ...string) string {
		p := filepath.Join(l.Dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	both := writeKH("known_hosts_jump", l.KnownHost, inner.KnownHost)
	jump := "SSH_PROXY_JUMP=" + lab.User + "@" + lab.ServerIP

	t.Run("SSH_PROXY_JUMP", func(t *testing.T) {
		conf := l.Config("vpn", 1, "SERVER_HOSTNAME="+lab.BehindServerIP, "SSH_KNOWN_HOSTS="+both, jump)
		mustStart(t, conf)
		wantInterfaces(t, lab.ClientNS, 0, "198.51.100.1 198.51.100.2")
		wantInterfaces(t, lab.BehindServerNS, 5*time.Second, "198.51.100.2 198.51.100.1")
		ping(t, lab.ClientNS, "198.51.100.2")
		s := statusJSON(t, conf)
		if s.Phase != "up" || s.Server != lab.User+"@"+lab.BehindServerIP+":22 through "+lab.User+"@"+lab.ServerIP+":22" {
			t.Errorf("status: %+v", s)
		}
		if out, code := client(t, "-c", conf, "stop"); code != 0 {
			t.Fatalf("stop: exit %d: %s", code, out)
		}
		wantInterfaces(t, lab.BehindServerNS, 5*time.Second)
		wantClean(t, 5*time.Second)
	})

	t.Run("ProxyJump in ~/.ssh/config", func(t *testing.T) {
		// An alias for the server, and one for the bastion, as admins
		// write them; the link names only the alias.
		sshConfig := "Host inner\n  HostName " + lab.BehindServerIP + "\n  User " + lab.User + "\n  ProxyJump bastion\n" +
			"Host bastion\n  HostName " + lab.ServerIP + "\n  User " + lab.User + "\n  IdentityFile " + l.Identity + "\n"
		restore := writeRootSSHConfig(t, sshConfig)
		defer restore()
		conf := l.Config("vpn", 1, "SERVER_HOSTNAME=inner", "SSH_KNOWN_HOSTS="+both)
		mustStart(t, conf)
		ping(t, lab.ClientNS, "198.51.100.2")
		if out, code := client(t, "-c", conf, "stop"); code != 0 {
			t.Fatalf("stop: exit %d: %s", code, out)
		}
		wantInterfaces(t, lab.BehindServerNS, 5*time.Second)
		wantClean(t, 5*time.Second)
	})

	t.Run("the bastion's key unknown", func(t *testing.T) {
		conf := l.Config("vpn", 1, "SERVER_HOSTNAME="+lab.BehindServerIP, "SSH_KNOWN_HOSTS="+writeKH("kh_inner_only", inner.KnownHost), jump)
		wantFailure(t, conf, 6, 20*time.Second, "jump host "+lab.ServerIP+": ", "host key verification failed: "+lab.ServerIP+" is not in")
	})

	t.Run("the server's key unknown behind a known bastion", func(t *testing.T) {
		conf := l.Config("vpn", 1, "SERVER_HOSTNAME="+lab.BehindServerIP, "SSH_KNOWN_HOSTS="+writeKH("kh_bastion_only", l.KnownHost), jump)
		wantFailure(t, conf, 6, 20*time.Second, "host key verification failed: "+lab.BehindServerIP+" is not in")
	})

	t.Run("without the jump, no way there", func(t *testing.T) {
		conf := l.Config("vpn", 1, "SERVER_HOSTNAME="+lab.BehindServerIP, "SSH_KNOWN_HOSTS="+both, "CONNECT_TIMEOUT=5")
		wantFailure(t, conf, 1, 20*time.Second, "connecting to "+lab.BehindServerIP+":22")
	})
}

// writeRootSSHConfig replaces the lab's /root/.ssh/config (the overlay's)
// and returns a function that puts the old one back.
func writeRootSSHConfig(t *testing.T, text string) func() {
	t.Helper()
	p := "/root/.ssh/config"
	old, err := os.ReadFile(p)
	had := err == nil
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/root/.ssh", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if had {
			os.WriteFile(p, old, 0o600)
		} else {
			os.Remove(p)
		}
	}
}
