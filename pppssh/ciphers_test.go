package pppssh

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCiphers(t *testing.T) {
	const chacha = "chacha20-poly1305@openssh.com"
	for _, tc := range []struct {
		in, want string // want: the list, or "error: " and a part of it
	}{
		{chacha, chacha},
		{chacha + ",aes256-gcm@openssh.com", chacha + ",aes256-gcm@openssh.com"},
		{"^" + chacha, chacha + ",aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"},
		{"-aes*-ctr", "aes128-gcm@openssh.com,aes256-gcm@openssh.com," + chacha},
		{"-aes1?8-*", "aes256-gcm@openssh.com," + chacha + ",aes192-ctr,aes256-ctr"},
		{"+aes128-gcm@openssh.com", strings.Join(preferredCiphers, ",")},
		{"3des-cbc", `error: unknown cipher "3des-cbc"`},
		{"+arcfour", `error: unknown cipher "arcfour"`},
		{"-*", "error: leaves no cipher"},
		{chacha + ",,", "error: an empty cipher name"},
	} {
		got, err := parseCiphers(tc.in)
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, %v; want an error with %q", tc.in, got, err, want)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%q: %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestCiphersFromSSHConfig: Ciphers in ~/.ssh/config for the host is what
// the dial offers; an unknown one names the file and the host.
func TestCiphersFromSSHConfig(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(body string) {
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=office\nSERVER_USERNAME=vpn\n")); err != nil {
		t.Fatal(err)
	}
	write("Host office\n  Ciphers chacha20-poly1305@openssh.com\n")
	tg, err := c.ResolveTarget(home)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tg.ciphers(), []string{"chacha20-poly1305@openssh.com"}) {
		t.Errorf("ciphers %v, want chacha20-poly1305 only", tg.ciphers())
	}
	write("Host other\n  Ciphers aes256-ctr\n")
	if tg, err = c.ResolveTarget(home); err != nil || !slices.Equal(tg.ciphers(), preferredCiphers) {
		t.Errorf("another host's Ciphers changed this one's: %v, %v", tg.ciphers(), err)
	}
	write("Host office\n  Ciphers blowfish-cbc\n")
	_, err = c.ResolveTarget(home)
	if err == nil || !strings.Contains(err.Error(), cfgPath+": Ciphers for office: unknown cipher \"blowfish-cbc\"") {
		t.Errorf("an unknown cipher: %v", err)
	}
}
