package dnsconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const origText = "# managed by hand\nnameserver 192.0.2.53\nsearch home.arpa\noptions edns0 trust-ad\n"

// leftoverTemps lists temporary files left beside resolv.conf.
func leftoverTemps(t *testing.T, h *host) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(h.resolvConf), ".*vpn-pppssh*"))
	return m
}

func TestFileApplyAndClose(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o640)
	s := mustApply(t, h, office)

	want := header(office) + "nameserver 198.51.100.2\nnameserver 2001:db8::53\nsearch example.org home.arpa\n" +
		"# managed by hand\nnameserver 192.0.2.53\noptions edns0 trust-ad\n"
	if got := readFile(t, h.resolvConf); got != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	if fi, _ := os.Lstat(h.resolvConf); fi.Mode() != 0o640 {
		t.Errorf("the written file has mode %v, want the original's 0640", fi.Mode())
	}
	if s.Backend() != BackendFile {
		t.Errorf("backend %q", s.Backend())
	}
	wantDesc := "dns 198.51.100.2 2001:db8::53 search example.org via " + h.resolvConf + " on ppp0"
	if got := s.String(); got != wantDesc {
		t.Errorf("String() = %q, want %q", got, wantDesc)
	}
	if got, err := Describe(h.runDir, "office"); got != wantDesc || err != nil {
		t.Errorf("Describe = %q, %v; want %q", got, err, wantDesc)
	}
	statePath := filepath.Join(h.runDir, "office.resolv")
	if fi, err := os.Lstat(statePath); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600", fi, err)
	}
	if !Leftovers(h.runDir, "office") {
		t.Error("Leftovers = false while applied")
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := readFile(t, h.resolvConf); got != origText {
		t.Errorf("after Close:\n%q\nwant the original:\n%q", got, origText)
	}
	if fi, _ := os.Lstat(h.resolvConf); fi.Mode() != 0o640 {
		t.Errorf("restored with mode %v, want 0640", fi.Mode())
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state file left after Close")
	}
	if got, err := Describe(h.runDir, "office"); got != "" || err != nil {
		t.Errorf("Describe after Close = %q, %v", got, err)
	}
	if m := leftoverTemps(t, h); len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
	if s.Backend() != "" || !strings.HasSuffix(s.String(), "(not applied)") {
		t.Errorf("after Close: backend %q, %q", s.Backend(), s)
	}
}

// The original is kept byte for byte, whatever it holds: no final newline,
// CRLF, bytes that are not UTF-8.
func TestFileRestoresOddBytes(t *testing.T) {
	h := testHost(t)
	odd := "nameserver 192.0.2.53\r\n\xff\xfe# latin-1 caf\xe9\n\n\noptions timeout:1"
	writeFile(t, h.resolvConf, odd, 0o644)
	s := mustApply(t, h, office)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, h.resolvConf); got != odd {
		t.Errorf("restored %q, want %q", got, odd)
	}
}

func TestFileSymlinkRestoredAsSymlink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string // relative to etc
		text   string // what the target holds; "" for a link that points nowhere
	}{
		{"to a file", "../run/resolvconf/resolv.conf", "nameserver 127.0.0.53\noptions edns0\n"},
		{"pointing nowhere", "../run/gone/resolv.conf", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost(t)
			target := filepath.Join(filepath.Dir(h.resolvConf), tc.target)
			if tc.text != "" {
				writeFile(t, target, tc.text, 0o644)
			}
			if err := os.Symlink(tc.target, h.resolvConf); err != nil {
				t.Fatal(err)
			}
			s := mustApply(t, h, office)
			fi, err := os.Lstat(h.resolvConf)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
				t.Fatalf("applied: %v %v; want a regular file of mode 0644 in the link's place", fi, err)
			}
			if got := readFile(t, h.resolvConf); !strings.HasSuffix(got, "search example.org\n"+tc.text) {
				t.Errorf("applied:\n%s\nwant the target's text after ours", got)
			}
			if tc.text != "" && readFile(t, target) != tc.text {
				t.Error("the symlink's target was written to")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := os.Readlink(h.resolvConf); err != nil || got != tc.target {
				t.Errorf("after Close: readlink %q, %v; want the symlink to %q back", got, err, tc.target)
			}
			if tc.text != "" && readFile(t, target) != tc.text {
				t.Error("the symlink's target changed")
			}
			if m := leftoverTemps(t, h); len(m) > 0 {
				t.Errorf("temporary files left: %q", m)
			}
		})
	}
}

func TestFileNoOriginal(t *testing.T) {
	h := testHost(t)
	s := mustApply(t, h, office)
	if got := readFile(t, h.resolvConf); !strings.HasSuffix(got, "nameserver 2001:db8::53\nsearch example.org\n") {
		t.Errorf("applied:\n%s", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(h.resolvConf); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("there was no resolv.conf, and after Close: %v", err)
	}
}

// What an admin or another tool wrote meanwhile is left alone, and Close
// says so; the state file goes, as nothing of the link's is left.
func TestFileAdminChangeLeftAlone(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	s := mustApply(t, h, office)
	const admin = "nameserver 203.0.113.53\n"
	writeFile(t, h.resolvConf, admin, 0o644)

	err := s.Close()
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), h.resolvConf) {
		t.Errorf("Close: %v; want ErrChanged naming %s", err, h.resolvConf)
	}
	if got := readFile(t, h.resolvConf); got != admin {
		t.Errorf("the admin's file was replaced by %q", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state file kept")
	}
	if err2 := s.Close(); err2 != err {
		t.Errorf("second Close: %v, want the first's error again", err2)
	}
}

// An admin who replaced our file by a symlink is left alone too.
func TestFileAdminSymlinkLeftAlone(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	s := mustApply(t, h, office)
	os.Remove(h.resolvConf)
	if err := os.Symlink("/run/systemd/resolve/stub-resolv.conf", h.resolvConf); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrChanged) {
		t.Errorf("Close: %v, want ErrChanged", err)
	}
	if got, _ := os.Readlink(h.resolvConf); got != "/run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("the admin's symlink became %q", got)
	}
}

// An admin who put the original back by hand leaves nothing to do.
func TestFileOriginalPutBackByHand(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	s := mustApply(t, h, office)
	writeFile(t, h.resolvConf, origText, 0o644)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if readFile(t, h.resolvConf) != origText || Leftovers(h.runDir, "office") {
		t.Error("not left as the original, without state")
	}
}

func TestFileCloseTwice(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	s := mustApply(t, h, office)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What happens after the first Close is not the link's business.
	const later = "nameserver 203.0.113.53\n"
	writeFile(t, h.resolvConf, later, 0o644)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if readFile(t, h.resolvConf) != later {
		t.Error("the second Close changed resolv.conf")
	}
	if err := s.Apply(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
}

func TestApplyOnce(t *testing.T) {
	h := testHost(t)
	s := mustApply(t, h, office)
	defer s.Close()
	before := readFile(t, h.resolvConf)
	if err := s.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "already applied") {
		t.Errorf("second Apply: %v", err)
	}
	if readFile(t, h.resolvConf) != before {
		t.Error("the second Apply changed resolv.conf")
	}
}

// A process that died is undone from its state file alone: Cleanup needs
// nothing but the run directory and the link's name.
func TestFileCrashRecovery(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o600)
	mustApply(t, h, office) // and the process dies: no Close
	if !Leftovers(h.runDir, "office") {
		t.Fatal("no leftovers")
	}
	if err := Cleanup(h.runDir, "office"); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := readFile(t, h.resolvConf); got != origText {
		t.Errorf("after Cleanup %q, want the original", got)
	}
	if fi, _ := os.Lstat(h.resolvConf); fi.Mode() != 0o600 {
		t.Errorf("mode %v, want the original's 0600", fi.Mode())
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state file left after Cleanup")
	}
	if err := Cleanup(h.runDir, "office"); err != nil {
		t.Errorf("Cleanup with nothing left: %v", err)
	}
}

// A process that died after writing its state file and before replacing
// resolv.conf left the original in place: there is nothing to restore.
func TestFileCrashBeforeTheWrite(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	f, err := original(h.resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	f.Written = mergeText(office, f.Original)
	st := &state{Link: "office", Backend: BackendFile, Iface: "ppp0", Servers: office.Servers, File: f}
	if err := h.writeState(st); err != nil {
		t.Fatal(err)
	}
	if err := cleanup(h, "office"); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if readFile(t, h.resolvConf) != origText || Leftovers(h.runDir, "office") {
		t.Error("not the original without a state file")
	}
}

// A new Apply of the link undoes what a dead process of it left first, so
// that the original it recorded is not lost under the new one.
func TestApplyUndoesLeftoversFirst(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	mustApply(t, h, office) // dies
	again := office
	again.Servers = addrs("198.51.100.9")
	s := mustApply(t, h, again)
	got := readFile(t, h.resolvConf)
	if strings.Contains(got, "198.51.100.2") || !strings.Contains(got, "nameserver 198.51.100.9\n") {
		t.Errorf("applied over the leftovers:\n%s", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, h.resolvConf); got != origText {
		t.Errorf("after Close %q, want the first original", got)
	}
}

// When resolv.conf cannot be replaced, Apply fails naming it and leaves
// the original and no state behind.
func TestFileWriteFails(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	h.rename = func(o, n string) error {
		if n == h.resolvConf {
			return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EPERM}
		}
		return os.Rename(o, n)
	}
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background())
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "writing "+h.resolvConf) {
		t.Errorf("Apply: %v; want EPERM naming %s", err, h.resolvConf)
	}
	if readFile(t, h.resolvConf) != origText || Leftovers(h.runDir, "office") {
		t.Error("not the original without a state file")
	}
	if m := leftoverTemps(t, h); len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after a failed Apply: %v", err)
	}
}

// A resolv.conf that is a mount point (a container's bind mount) cannot be
// renamed over (EBUSY): it is rewritten in place, and so restored.
func TestFileMountPointRewrittenInPlace(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	h.rename = func(o, n string) error {
		if n == h.resolvConf {
			return &os.LinkError{Op: "rename", Old: o, New: n, Err: unix.EBUSY}
		}
		return os.Rename(o, n)
	}
	ino := func() uint64 {
		fi, err := os.Lstat(h.resolvConf)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := ino()
	s := mustApply(t, h, office)
	if got := readFile(t, h.resolvConf); !strings.HasPrefix(got, header(office)) || ino() != before {
		t.Errorf("not rewritten in place (inode %d, was %d):\n%s", ino(), before, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if readFile(t, h.resolvConf) != origText || ino() != before {
		t.Error("not restored in place")
	}
	if m := leftoverTemps(t, h); len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
}

func TestEmptyConfigChangesNothing(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	s := mustApply(t, h, Config{Link: "office", Iface: "ppp0"})
	if readFile(t, h.resolvConf) != origText || Leftovers(h.runDir, "office") || s.String() != "" {
		t.Errorf("an empty config changed something: %q", s)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// The state file names files to restore and programs to run as root: one
// that this process would not have written is refused, and nothing runs.
func TestStateFileNotTrusted(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	mustApply(t, h, office)
	path := filepath.Join(h.runDir, "office.resolv")
	for _, tc := range []struct {
		name string
		mut  func()
		undo func()
	}{
		{"readable by others", func() { os.Chmod(path, 0o644) }, func() { os.Chmod(path, 0o600) }},
		{"a symlink", func() { os.Rename(path, path+".real"); os.Symlink(path+".real", path) }, func() { os.Remove(path); os.Rename(path+".real", path) }},
	} {
		tc.mut()
		if err := Cleanup(h.runDir, "office"); !errors.Is(err, ErrBadState) && !errors.Is(err, unix.ELOOP) {
			t.Errorf("%s: Cleanup: %v; want it refused", tc.name, err)
		}
		tc.undo()
		if !strings.HasPrefix(readFile(t, h.resolvConf), header(office)) {
			t.Fatalf("%s: resolv.conf was restored from an untrusted state file", tc.name)
		}
	}
	// Damaged, or another link's.
	for _, bad := range []string{"{", `{"link":"other","backend":"file","iface":"ppp0","file":{"path":"/etc/resolv.conf"}}`,
		`{"link":"office","backend":"shell","iface":"ppp0"}`, `{"link":"office","backend":"resolvconf","iface":"ppp0","program":"resolvconf","record":"ppp0.vpn-pppssh"}`,
		`{"link":"office","backend":"file","iface":"ppp0; reboot","file":{"path":"/etc/resolv.conf"}}`} {
		writeFile(t, path, bad, 0o600)
		if err := Cleanup(h.runDir, "office"); !errors.Is(err, ErrBadState) {
			t.Errorf("state %s: Cleanup: %v; want ErrBadState", bad, err)
		}
	}
	if err := Cleanup(h.runDir, "../office"); err == nil {
		t.Error("Cleanup of a name that is not a link name")
	}
}

// The written file and the restored one have the original's owner (which
// only root can give).
func TestFileKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root")
	}
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	if err := os.Chown(h.resolvConf, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	owner := func() string {
		fi, err := os.Lstat(h.resolvConf)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	s := mustApply(t, h, office)
	if got := owner(); got != "4321:4322" {
		t.Errorf("written with owner %s, want the original's 4321:4322", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != "4321:4322" || readFile(t, h.resolvConf) != origText {
		t.Errorf("restored with owner %s, want 4321:4322", got)
	}
}

// A resolv.conf that is neither a file nor a symbolic link is not
// replaced: Apply says what it found, and changes nothing.
func TestFileNotAFile(t *testing.T) {
	h := testHost(t)
	if err := os.Mkdir(h.resolvConf, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "reading "+h.resolvConf+": neither a regular file nor a symbolic link") {
		t.Errorf("Apply: %v", err)
	}
	if fi, err := os.Lstat(h.resolvConf); err != nil || !fi.IsDir() || Leftovers(h.runDir, "office") {
		t.Errorf("changed: %v %v, or state left", fi, err)
	}
}
