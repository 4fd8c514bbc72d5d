package pppssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an x/crypto/ssh server on loopback that accepts one
// client key. The lab tests the real OpenSSH sshd; this covers the
// client's checks and their error types quickly.
type testServer struct {
	addr    string
	hostKey ssh.Signer
}

func newSigner(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// serverConfig is a test SSH server's configuration: a fresh host key, and
// the one client key it accepts.
func serverConfig(t *testing.T, allowed ssh.PublicKey) (*ssh.ServerConfig, ssh.Signer) {
	t.Helper()
	hostKey, _ := newSigner(t)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not allowed")
		},
	}
	cfg.AddHostKey(hostKey)
	return cfg, hostKey
}

func startTestServer(t *testing.T, allowed ssh.PublicKey) *testServer {
	t.Helper()
	cfg, hostKey := serverConfig(t, allowed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					nc.Reject(ssh.Prohibited, "no channels in this test")
				}
			}()
		}
	}()
	return &testServer{addr: ln.Addr().String(), hostKey: hostKey}
}

func writeKnownHosts(t *testing.T, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, k) + "\n")
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func targetFor(t *testing.T, addr string) Target {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return Target{Host: host, Port: p, User: "vpn"}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDialChecksHostKey(t *testing.T) {
	client, _ := newSigner(t)
	srv := startTestServer(t, client.PublicKey())
	other, _ := newSigner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("known", func(t *testing.T) {
		hk, err := loadHostKeys(writeKnownHosts(t, srv.addr, srv.hostKey.PublicKey()), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(ctx, targetFor(t, srv.addr), hk, []ssh.Signer{client}, nil, quiet())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("unknown", func(t *testing.T) {
		kh := writeKnownHosts(t, "203.0.113.7:22", srv.hostKey.PublicKey())
		hk, _ := loadHostKeys(kh, t.TempDir())
		_, err := dial(ctx, targetFor(t, srv.addr), hk, []ssh.Signer{client}, nil, quiet())
		var u *UnknownHostError
		if !errors.As(err, &u) {
			t.Fatalf("got %v, want *UnknownHostError", err)
		}
		if !strings.Contains(err.Error(), "is not in "+kh) || u.Fingerprint != ssh.FingerprintSHA256(srv.hostKey.PublicKey()) {
			t.Errorf("message or fingerprint wrong: %v", err)
		}
	})
	t.Run("changed", func(t *testing.T) {
		kh := writeKnownHosts(t, srv.addr, other.PublicKey())
		hk, _ := loadHostKeys(kh, t.TempDir())
		_, err := dial(ctx, targetFor(t, srv.addr), hk, []ssh.Signer{client}, nil, quiet())
		var ch *HostKeyChangedError
		if !errors.As(err, &ch) {
			t.Fatalf("got %v, want *HostKeyChangedError", err)
		}
		if !strings.Contains(err.Error(), kh+":1") {
			t.Errorf("message does not name the line: %v", err)
		}
	})
	t.Run("key refused", func(t *testing.T) {
		hk, _ := loadHostKeys(writeKnownHosts(t, srv.addr, srv.hostKey.PublicKey()), t.TempDir())
		_, err := dial(ctx, targetFor(t, srv.addr), hk, []ssh.Signer{other}, nil, quiet())
		if err == nil || !strings.Contains(err.Error(), "as vpn") || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		// A listener that accepts and says nothing: dial must give up
		// when ctx does.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		hk, _ := loadHostKeys(writeKnownHosts(t, ln.Addr().String(), srv.hostKey.PublicKey()), t.TempDir())
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = dial(short, targetFor(t, ln.Addr().String()), hk, []ssh.Signer{client}, nil, quiet())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
	})
}

func TestLoadHostKeysNeedsAFile(t *testing.T) {
	home := t.TempDir()
	// The home has no known_hosts; what is left is the system-wide file,
	// which this machine may or may not have. Both cases are checked:
	// with it, it is the only file used; without it, the error says so.
	system := "/etc/ssh/ssh_known_hosts"
	hk, err := loadHostKeys("", home)
	switch _, statErr := os.Stat(system); {
	case statErr == nil:
		if err != nil {
			t.Errorf("%s exists, yet: %v", system, err)
		} else if len(hk.files) != 1 || hk.files[0] != system {
			t.Errorf("files %q, want only %s", hk.files, system)
		}
	case errors.Is(statErr, fs.ErrNotExist):
		if err == nil || !strings.Contains(err.Error(), "no known_hosts file") {
			t.Errorf("no files: %v", err)
		}
	default:
		t.Fatalf("cannot tell whether %s exists: %v", system, statErr)
	}
	if _, err := loadHostKeys(filepath.Join(home, "missing"), home); err == nil || !strings.Contains(err.Error(), "SSH_KNOWN_HOSTS") {
		t.Errorf("missing explicit file: %v", err)
	}
}

func TestHostKeyAlgorithmsFollowKnownKeys(t *testing.T) {
	s, _ := newSigner(t)
	hk, err := loadHostKeys(writeKnownHosts(t, "192.0.2.9:22", s.PublicKey()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := hk.algorithms("192.0.2.9:22"); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms = %v, want [ssh-ed25519]", got)
	}
	if got := hk.algorithms("192.0.2.10:22"); got != nil {
		t.Errorf("unknown host: algorithms = %v, want none", got)
	}
}

func TestReadKeyRefusesPassphrase(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = readKey(p)
	if err == nil || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(err.Error(), "ssh-agent") {
		t.Errorf("got %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the passphrase: %v", err)
	}
}

func TestResolveTargetFromSSHConfig(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(
		"Host office\n  HostName 192.0.2.7\n  Port 2222\n  User tunnel\n  IdentityFile ~/.ssh/id_office\n"), 0o600)
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=office\n")); err != nil {
		t.Fatal(err)
	}
	tg, err := c.ResolveTarget(home)
	if err != nil {
		t.Fatal(err)
	}
	want := Target{Alias: "office", Host: "192.0.2.7", Port: 2222, User: "tunnel",
		Identities: []string{filepath.Join(home, ".ssh", "id_office")}, Explicit: true}
	if tg.Addr() != "192.0.2.7:2222" || tg.User != want.User || len(tg.Identities) != 1 || tg.Identities[0] != want.Identities[0] {
		t.Errorf("got %+v, want %+v", tg, want)
	}
	// Keys in the link's own file win over ~/.ssh/config.
	if _, err := c.Parse("f", []byte("SERVER_PORT=22\nSERVER_USERNAME=vpn\nSSH_IDENTITY=/etc/vpn-pppssh/key\n")); err != nil {
		t.Fatal(err)
	}
	tg, err = c.ResolveTarget(home)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Addr() != "192.0.2.7:22" || tg.User != "vpn" || tg.Identities[0] != "/etc/vpn-pppssh/key" {
		t.Errorf("explicit keys lost: %+v", tg)
	}
	// No user anywhere is an error naming the key.
	c = Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=elsewhere\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveTarget(home); err == nil || !strings.Contains(err.Error(), "SERVER_USERNAME") {
		t.Errorf("no user: %v", err)
	}
}
