package main

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
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
