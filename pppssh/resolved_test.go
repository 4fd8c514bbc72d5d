package pppssh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSaysWhatStartWouldUse(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	srv, _ := newSigner(t)
	kh := writeKnownHosts(t, "192.0.2.2:22", srv.PublicKey())
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=192.0.2.2\nSERVER_USERNAME=vpn\nSSH_PROXY_JUMP=ops@192.0.2.9:2200\nSSH_KNOWN_HOSTS="+kh+"\n")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Resolve(home)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != "vpn@192.0.2.2:22 through ops@192.0.2.9:2200" {
		t.Errorf("server %q", r.Server)
	}
	if len(r.Identities) != 1 || !strings.HasPrefix(r.Identities[0], "none: start will fail") {
		t.Errorf("keys %q: no agent and no ~/.ssh/id_* should say so", r.Identities)
	}
	want := []string{
		"jump host 192.0.2.9:2200: NOT in known_hosts",
		"the server 192.0.2.2:22: known (ssh-ed25519)",
	}
	if len(r.Hosts) != 2 || !strings.HasPrefix(r.Hosts[0], want[0]) || r.Hosts[1] != want[1] {
		t.Errorf("hosts %q, want %q", r.Hosts, want)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ = c.Resolve(home); len(r.Identities) != 1 || r.Identities[0] != filepath.Join(home, ".ssh", "id_ed25519") {
		t.Errorf("keys %q", r.Identities)
	}
}
