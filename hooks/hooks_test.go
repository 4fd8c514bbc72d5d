package hooks

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeHook(t *testing.T, dir, name, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestRunOrderArgsEnvAndFailures(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "trace")
	record := `echo "$(basename "$VPN_HOOK") $* $PPP_IFACE $PPP_LOCAL $PPP_REMOTE $PPP_IPPARAM $VPN_NAME" >>` + out
	writeHook(t, dir, "20-second", record, 0o755)
	writeHook(t, dir, "10-first", record, 0o755)
	writeHook(t, dir, "15-fails", record+"; echo oops; exit 3", 0o755)
	writeHook(t, dir, "30-slow", "exec sleep 60", 0o755)
	writeHook(t, dir, "40-after-slow", record, 0o755)
	writeHook(t, dir, "not-executable", record, 0o644)
	writeHook(t, dir, "backup~", record, 0o755)
	writeHook(t, dir, "hook.dpkg-old", record, 0o755)
	e := Env{Iface: "ppp0", TTY: "/dev/pts/3", Speed: "38400", Local: "198.51.100.1", Remote: "198.51.100.2", IPParam: "vpn", Link: "office"}
	begin := time.Now()
	err := Run(context.Background(), dir, e, 500*time.Millisecond, slog.New(slog.DiscardHandler))
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("took %v: the slow hook was not cut off", took)
	}
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") ||
		!strings.Contains(err.Error(), "killed after 500ms") {
		t.Errorf("errors: %v", err)
	}
	b, _ := os.ReadFile(out)
	want := "10-first ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 vpn ppp0 198.51.100.1 198.51.100.2 vpn office\n" +
		"15-fails ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 vpn ppp0 198.51.100.1 198.51.100.2 vpn office\n" +
		"20-second ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 vpn ppp0 198.51.100.1 198.51.100.2 vpn office\n" +
		"40-after-slow ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 vpn ppp0 198.51.100.1 198.51.100.2 vpn office\n"
	if string(b) != want {
		t.Errorf("trace:\n%s\nwant:\n%s", b, want)
	}
}

func TestMissingFolderHasNoHooks(t *testing.T) {
	if err := Run(context.Background(), filepath.Join(t.TempDir(), "none"), Env{}, Limit, slog.New(slog.DiscardHandler)); err != nil {
		t.Error(err)
	}
}

func TestRefusesHookWritableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ownership check applies to root")
	}
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	writeHook(t, dir, "open", "touch "+marker, 0o755)
	if err := os.Chmod(filepath.Join(dir, "open"), 0o777); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), dir, Env{}, Limit, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("got %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a world-writable hook ran as root")
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the ownership checks apply to root")
	}
}

// A symbolic link in the folder is refused, not followed, even to a good
// program: whoever can change the link (or what it names) picks what runs.
func TestRefusesSymlinkedHook(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	writeHook(t, elsewhere, "real", "touch "+marker, 0o755)
	if err := os.Symlink(filepath.Join(elsewhere, "real"), filepath.Join(dir, "10-link")); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), dir, Env{}, Limit, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "10-link: not run: it is a symbolic link") {
		t.Errorf("got %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the symbolic link was followed and run")
	}
}

// A folder that others can write (or one above it) runs nothing.
func TestRefusesHookInUnsafeFolder(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct{ name, chmod string }{{"folder", "."}, {"parent", ".."}} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ip-up.d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(t.TempDir(), "ran")
		writeHook(t, dir, "10-ok", "touch "+marker, 0o755)
		unsafe := filepath.Clean(filepath.Join(dir, tc.chmod))
		if err := os.Chmod(unsafe, 0o775); err != nil {
			t.Fatal(err)
		}
		err := Run(context.Background(), dir, Env{}, Limit, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), unsafe+" is writable by group or others") {
			t.Errorf("%s group-writable: got %v", tc.name, err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s group-writable: a hook ran", tc.name)
		}
	}
}

// What runs is the file that was opened and checked: a program renamed into
// its place afterwards is not the one executed.
func TestRunsTheCheckedFile(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(t.TempDir(), "trace")
	writeHook(t, dir, "10-hook", `echo "checked $0 $VPN_HOOK" >>`+trace, 0o755)
	d, err := openDir(dir)
	if err != nil || d == nil {
		t.Fatalf("openDir: %v", err)
	}
	defer d.Close()
	h, err := open(d, dir, "10-hook")
	if err != nil || h == nil {
		t.Fatalf("open: %v", err)
	}
	defer h.Close()
	// The swap: another program renamed over the checked one.
	writeHook(t, dir, "swap", `echo "swapped in" >>`+trace, 0o755)
	if err := os.Rename(filepath.Join(dir, "swap"), filepath.Join(dir, "10-hook")); err != nil {
		t.Fatal(err)
	}
	if err := h.run(context.Background(), Env{}, Limit, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	want := "checked /proc/self/fd/3 " + filepath.Join(dir, "10-hook") + "\n"
	if string(b) != want {
		t.Errorf("ran %q, want %q", b, want)
	}
}

// A compiled program runs from its open file as well, with its real path
// as argv[0].
func TestRunsABinaryHook(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-true"), src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeHook(t, dir, "20-false", "exit 1", 0o755)
	err = Run(context.Background(), dir, Env{}, Limit, slog.New(slog.DiscardHandler))
	if err == nil || strings.Contains(err.Error(), "10-true") || !strings.Contains(err.Error(), "20-false") {
		t.Errorf("got %v, want only 20-false to fail", err)
	}
}

// A refused folder is logged: the caller does not log what Run returns.
func TestRefusedFolderIsLogged(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	err := Run(context.Background(), dir, Env{}, Limit, slog.New(slog.NewTextHandler(&logged, nil)))
	if err == nil || !strings.Contains(logged.String(), "hooks not run") || !strings.Contains(logged.String(), "writable by group or others") {
		t.Errorf("err %v, log %q", err, logged.String())
	}
	if err := Run(context.Background(), "", Env{}, Limit, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("no folder: %v", err)
	}
}

// A hook folder reached through root's own symbolic link (as admins share
// one folder between links) runs its hooks.
func TestRunsThroughRootsFolderLink(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(base, "ran")
	writeHook(t, real, "10-mark", "touch "+marker, 0o755)
	link := filepath.Join(base, "ip-up.d")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), link, Env{}, Limit, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("hooks through a folder link: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the hook did not run: %v", err)
	}
}

// TestModeStandsInForPPPD: a tun link's hooks get the device driver as the
// tty, speed 0 and VPN_MODE; a ppp link's VPN_MODE is ppp even when the
// caller left the mode empty.
func TestModeStandsInForPPPD(t *testing.T) {
	for _, tc := range []struct {
		env  Env
		want string
	}{
		{Env{Iface: "tun0", TTY: "/dev/net/tun", Speed: "0", Local: "198.51.100.1", Remote: "198.51.100.2", IPParam: "vpn", Link: "o", Mode: "tun"},
			"tun0 /dev/net/tun 0 198.51.100.1 198.51.100.2 vpn|/dev/net/tun 0 tun\n"},
		{Env{Iface: "ppp0", TTY: "/dev/pts/1", Speed: "38400", Local: "198.51.100.1", Remote: "198.51.100.2", IPParam: "vpn", Link: "o"},
			"ppp0 /dev/pts/1 38400 198.51.100.1 198.51.100.2 vpn|/dev/pts/1 38400 ppp\n"},
	} {
		dir := t.TempDir()
		out := filepath.Join(t.TempDir(), "trace")
		writeHook(t, dir, "10-mode", `echo "$*|$PPP_TTY $PPP_SPEED $VPN_MODE" >>`+out, 0o755)
		if err := Run(context.Background(), dir, tc.env, Limit, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != tc.want {
			t.Errorf("hook saw %q (%v), want %q", b, err, tc.want)
		}
	}
}
