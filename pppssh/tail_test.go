package pppssh

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// terminalControls are byte sequences a terminal acts on: ESC (CSI, OSC),
// the C1 CSI in UTF-8, BEL, a bare CR, DEL and the right-to-left override.
var terminalControls = []string{"\x1b", "\xc2\x9b", "\x07", "\r", "\x7f", "\u202e", "\x00"}

func hasControl(s string) string {
	for _, c := range terminalControls {
		if strings.Contains(s, c) {
			return c
		}
	}
	return ""
}

const hostileServerText = "sudo: \x1b]0;owned\x07\x1b[2J\x1b[31mred\u009b1m\u202egnp.exe\x7f\rhidden\x00\xff\n" +
	"pppssh-failed: refused \x1b[8m\n"

// Text from the server reaches the log and error messages escaped.
func TestTailWriterEscapesServerText(t *testing.T) {
	var logged bytes.Buffer
	w := newTailWriter(slog.New(slog.NewTextHandler(&logged, nil)))
	var seen []string
	w.onLine = func(l string) { seen = append(seen, l) }
	if _, err := w.Write([]byte(hostileServerText)); err != nil {
		t.Fatal(err)
	}
	if c := hasControl(logged.String()); c != "" {
		t.Errorf("log output holds %q: %q", c, logged.String())
	}
	s := w.String()
	if c := hasControl(s); c != "" {
		t.Errorf("String() holds %q: %q", c, s)
	}
	if !strings.Contains(s, `\x1b]0;owned\x07`) || !strings.Contains(s, `\u202e`) || !strings.Contains(s, `\x0dhidden`) {
		t.Errorf("String() does not show the escapes: %q", s)
	}
	if len(seen) != 2 || hasControl(strings.Join(seen, "")) != "" || !strings.HasPrefix(seen[1], "pppssh-failed: refused ") {
		t.Errorf("onLine saw %q", seen)
	}
}

// A server that prints without end gets a bounded number of lines into the
// log, each cut to maxServerLine bytes; the count of the others is logged.
func TestTailWriterBoundsWhatIsLogged(t *testing.T) {
	var logged bytes.Buffer
	w := newTailWriter(slog.New(slog.NewTextHandler(&logged, nil)))
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	lines := 0
	w.onLine = func(string) { lines++ }
	long := strings.Repeat("A", 10000) + "\n"
	for range 1000 {
		w.Write([]byte(long))
	}
	if lines != 1000 {
		t.Errorf("onLine saw %d lines, want all 1000", lines)
	}
	if n := strings.Count(logged.String(), "\n"); n != serverLineBurst {
		t.Errorf("logged %d lines at once, want the burst of %d", n, serverLineBurst)
	}
	if logged.Len() > serverLineBurst*(maxServerLine+200) {
		t.Errorf("logged %d bytes: long lines were not cut", logged.Len())
	}
	if !strings.Contains(logged.String(), "(line cut)") {
		t.Error("a cut line is not marked")
	}
	now = now.Add(10 * time.Second)
	logged.Reset()
	w.Write([]byte("after a pause\n"))
	if !strings.Contains(logged.String(), "count=950") || !strings.Contains(logged.String(), "after a pause") {
		t.Errorf("after a pause: %q", logged.String())
	}
}
