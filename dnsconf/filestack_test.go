package dnsconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var (
	linkA = Config{Link: "a", Iface: "ppp0", Servers: addrs("198.51.100.2"), Search: []string{"a.example"}}
	linkB = Config{Link: "b", Iface: "ppp1", Servers: addrs("198.51.100.66"), Search: []string{"b.example"}}
	linkC = Config{Link: "c", Iface: "tun0", Servers: addrs("2001:db8::53")}
)

// Links that come up one after the other and go down in any order leave
// the original behind, and each step shows the links still up.
func TestFileStackedLinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order string // the links that go down, in order
	}{
		{"last up first down", "cba"},
		{"first up first down", "abc"},
		{"middle first", "bac"},
		{"middle first, then the top", "bca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost(t)
			writeFile(t, h.resolvConf, origText, 0o644)
			cfgs := map[byte]Config{'a': linkA, 'b': linkB, 'c': linkC}
			up := map[byte]*Settings{}
			for _, l := range []byte("abc") {
				up[l] = mustApply(t, h, cfgs[l])
			}
			for _, l := range []byte(tc.order) {
				if err := up[l].Close(); err != nil {
					t.Fatalf("closing %c: %v", l, err)
				}
				delete(up, l)
				got := readFile(t, h.resolvConf)
				for o, c := range cfgs {
					has := strings.Contains(got, "nameserver "+c.Servers[0].String()+"\n")
					if _, isUp := up[o]; has != isUp {
						t.Errorf("after %c went down: link %c up %v, its server in resolv.conf %v:\n%s", l, o, isUp, has, got)
					}
				}
			}
			if got := readFile(t, h.resolvConf); got != origText {
				t.Errorf("all down:\n%q\nwant the original:\n%q", got, origText)
			}
			if m, _ := filepath.Glob(filepath.Join(h.runDir, "*.resolv")); len(m) > 0 {
				t.Errorf("state files left: %q", m)
			}
		})
	}
}

// The link on top sees the one below go, and the text it rebuilt is the
// one it would have written over the original.
func TestFileRebasedText(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	a := mustApply(t, h, linkA)
	b := mustApply(t, h, linkB)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, h.resolvConf), string(mergeText(linkB, []byte(origText))); got != want {
		t.Errorf("after a went down:\n%s\nwant b over the original:\n%s", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if readFile(t, h.resolvConf) != origText {
		t.Error("not the original")
	}
}

// The Cleanup of a link that died under one that is still up rebases the
// live one's state file, and the live one's Close reads it again.
func TestFileCleanupUnderALiveLink(t *testing.T) {
	h := testHost(t)
	if err := os.Symlink("../run/systemd/resolve/resolv.conf", h.resolvConf); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, linkA) // dies
	b := mustApply(t, h, linkB)
	if err := cleanup(h, "a"); err != nil {
		t.Fatalf("Cleanup of a: %v", err)
	}
	if got := readFile(t, h.resolvConf); strings.Contains(got, "198.51.100.2") || !strings.Contains(got, "198.51.100.66") {
		t.Errorf("after a's cleanup:\n%s", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(h.resolvConf); err != nil || got != "../run/systemd/resolve/resolv.conf" {
		t.Errorf("after b went down: %q, %v; want the original symlink", got, err)
	}
}

// An undo that fails half way (resolv.conf rebuilt, one of the state files
// not written) is finished by Cleanup, whichever state file failed.
func TestFileRebaseInterrupted(t *testing.T) {
	for _, failing := range []string{"b.resolv", "c.resolv"} {
		t.Run(failing, func(t *testing.T) {
			h := testHost(t)
			writeFile(t, h.resolvConf, origText, 0o644)
			a := mustApply(t, h, linkA)
			b := mustApply(t, h, linkB)
			c := mustApply(t, h, linkC)
			fail := true
			h.rename = func(o, n string) error {
				if fail && n == filepath.Join(h.runDir, failing) {
					return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EIO}
				}
				return os.Rename(o, n)
			}
			if err := a.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close of a: %v, want the injected EIO", err)
			}
			if !Leftovers(h.runDir, "a") {
				t.Fatal("a's state went although its undo did not finish")
			}
			fail = false
			if err := cleanup(h, "a"); err != nil {
				t.Fatalf("finishing a's undo: %v", err)
			}
			if got, want := readFile(t, h.resolvConf), string(mergeText(linkC, mergeText(linkB, []byte(origText)))); got != want {
				t.Errorf("after a's undo:\n%s\nwant c over b over the original:\n%s", got, want)
			}
			for _, s := range []*Settings{b, c} {
				if err := s.Close(); err != nil {
					t.Fatalf("Close of %s: %v", s.cfg.Link, err)
				}
			}
			if got := readFile(t, h.resolvConf); got != origText {
				t.Errorf("all down:\n%q\nwant the original", got)
			}
		})
	}
}

// A stack that does not lead to what is in resolv.conf is not followed:
// the file is someone else's.
func TestFileStackBrokenByAnAdmin(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	a := mustApply(t, h, linkA)
	b := mustApply(t, h, linkB)
	const admin = "nameserver 203.0.113.53\n"
	writeFile(t, h.resolvConf, admin, 0o644)
	if err := a.Close(); !errors.Is(err, ErrChanged) {
		t.Errorf("Close of a: %v, want ErrChanged", err)
	}
	if err := b.Close(); !errors.Is(err, ErrChanged) {
		t.Errorf("Close of b: %v, want ErrChanged", err)
	}
	if readFile(t, h.resolvConf) != admin {
		t.Error("the admin's file was replaced")
	}
}
