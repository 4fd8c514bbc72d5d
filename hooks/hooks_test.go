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
	record := `echo "$(basename "$0") $* $PPP_IFACE $PPP_LOCAL $PPP_REMOTE $PPP_IPPARAM $VPN_NAME" >>` + out
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
	os.Chmod(filepath.Join(dir, "open"), 0o777)
	err := Run(context.Background(), dir, Env{}, Limit, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("got %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a world-writable hook ran as root")
	}
}
