package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh/supervise"
)

// notifySocket listens where sdNotify sends (NOTIFY_SOCKET) and returns
// a function that reads the next notification.
func notifySocket(t *testing.T) func() string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	return func() string {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestSDNotify(t *testing.T) {
	next := notifySocket(t)
	sdNotify("READY=1\nSTATUS=up")
	if got := next(); got != "READY=1\nSTATUS=up" {
		t.Errorf("got %q", got)
	}
}

// An error with a newline (errors.Join, or text from the server) must not
// add an assignment of its own to the notification: systemd would take
// "MAINPID=1" on a line of its own as the service's main pid.
func TestPublishKeepsTheErrorOnOneLine(t *testing.T) {
	next := notifySocket(t)
	d := &driver{o: &options{runDir: rundir.Dir(t.TempDir())}, log: discardLogger(), st: rundir.State{Name: "vpn"}}
	d.Publish(supervise.Status{Phase: supervise.Waiting, LastError: errors.New("undoing routes failed\nMAINPID=1\nREADY=1")})
	got := next()
	if strings.Count(got, "\n") != 0 || !strings.HasPrefix(got, "STATUS=waiting (last error: undoing routes failed") {
		t.Errorf("notification %q is not one STATUS line", got)
	}
}

// Before the first READY=1, systemd's start timeout is stretched to what
// the first start may take: CONNECT_TIMEOUT, each ip-up hook's limit, and
// ten seconds; once up, no more.
func TestFirstConnectExtendsTheStartTimeout(t *testing.T) {
	next := notifySocket(t)
	hooksDir := t.TempDir()
	for _, n := range []string{"10-a", "20-b", "bad~"} { // bad~ is no hook
		if err := os.WriteFile(filepath.Join(hooksDir, n), nil, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := pppssh.Defaults()
	cfg.ConnectTimeout, cfg.IPUpDir = 200*time.Second, hooksDir
	d := &driver{o: &options{runDir: rundir.Dir(t.TempDir())}, cfg: cfg, log: discardLogger(), st: rundir.State{Name: "vpn"}}
	d.Publish(supervise.Status{Phase: supervise.Connecting})
	if got, want := next(), "STATUS=connecting\nEXTEND_TIMEOUT_USEC=270000000"; got != want {
		t.Errorf("first connect: %q, want %q (200 s + 2 hooks x 30 s + 10 s)", got, want)
	}
	d.Publish(supervise.Status{Phase: supervise.Up})
	next()
	d.Publish(supervise.Status{Phase: supervise.Connecting})
	if got := next(); strings.Contains(got, "EXTEND_TIMEOUT_USEC") {
		t.Errorf("a redial after READY extended the start timeout: %q", got)
	}
}
