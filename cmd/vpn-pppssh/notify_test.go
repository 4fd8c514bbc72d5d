package main

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

func TestSDNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	sdNotify("READY=1\nSTATUS=up")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1\nSTATUS=up" {
		t.Errorf("got %q, %v", buf[:n], err)
	}
}

// An error with a newline (errors.Join, or text from the server) must not
// add an assignment of its own to the notification: systemd would take
// "MAINPID=1" on a line of its own as the service's main pid.
func TestPublishKeepsTheErrorOnOneLine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	s := &supervisor{o: &options{runDir: rundir.Dir(t.TempDir())}, log: discardLogger(), st: rundir.State{Name: "vpn"}}
	s.failed(errors.New("undoing routes failed\nMAINPID=1\nREADY=1"))
	s.publish("waiting")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	if strings.Count(got, "\n") != 0 || !strings.HasPrefix(got, "STATUS=waiting (last error: undoing routes failed") {
		t.Errorf("notification %q is not one STATUS line", got)
	}
}
