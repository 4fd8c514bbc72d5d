package logsink

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestJournalLinesCarryPriorityAndNoTime(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(Journal(&b, slog.LevelDebug)).With("link", "office")
	log.Error("redial failed", "err", "connection refused")
	log.Warn("link down")
	log.Info("link up", "iface", "ppp0")
	log.Debug("detail")
	want := "<3>msg=\"redial failed\" link=office err=\"connection refused\"\n" +
		"<4>msg=\"link down\" link=office\n" +
		"<6>msg=\"link up\" link=office iface=ppp0\n" +
		"<7>msg=detail link=office\n"
	if b.String() != want {
		t.Fatalf("journal lines:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	slog.New(Journal(&b, slog.LevelInfo)).Debug("hidden")
	if b.Len() != 0 {
		t.Fatalf("a debug line at level info: %q", b.String())
	}
}

func TestUnderJournalMatchesTheStreamOnly(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "JOURNAL_STREAM" {
				return v
			}
			return ""
		}
	}
	if !UnderJournal(f, env(fmt.Sprintf("%d:%d", st.Dev, st.Ino))) {
		t.Error("the stream JOURNAL_STREAM names was not recognised")
	}
	for _, v := range []string{"", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), "garbage"} {
		if UnderJournal(f, env(v)) {
			t.Errorf("JOURNAL_STREAM=%q taken for this stream", v)
		}
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{slog.LevelError + 4: 3, slog.LevelError: 3, slog.LevelWarn: 4, slog.LevelInfo: 6, slog.LevelDebug: 7} {
		if got := priority(l); got != want {
			t.Errorf("priority(%v) = %d, want %d", l, got, want)
		}
	}
}

func TestSyslogPriorities(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h, c, err := Syslog(sock, "vpn-pppssh", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := slog.New(h)
	log.Error("boom", "link", "office")
	log.Info("up")
	log.Debug("hidden")
	buf := make([]byte, 2048)
	// daemon (3) * 8 + priority: err 27, info 30.
	for _, want := range []string{"<27>", "<30>"} {
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want) || !strings.Contains(got, "vpn-pppssh[") || strings.Contains(got, "level=") || strings.Contains(got, "time=") {
			t.Errorf("syslog message %q, want %s, the tag, no level or time", got, want)
		}
	}
}

// A syslog daemon that stops reading must not stop the logger: lines are
// dropped, and the next one that goes says how many.
func TestSyslogNeverBlocksTheLogger(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never read from: its queue fills
	h, c, err := Syslog(sock, "vpn-pppssh", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5000 {
			log.Info("line", "i", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging blocked behind a syslog daemon that does not read")
	}
	q := c.(*syslogQueue)
	q.mu.Lock()
	dropped := q.dropped
	q.mu.Unlock()
	if dropped == 0 {
		t.Error("5000 lines to a daemon that does not read, and none dropped")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the daemon")
	}
}
