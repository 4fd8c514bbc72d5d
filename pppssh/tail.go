package pppssh

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
)

// tailWriter keeps the last bytes written to it and logs each complete
// line. It holds what the server printed on stderr, for error messages.
//
// Everything here came from the server, so it is shown escaped
// (safetext): a line is cut to maxServerLine bytes and escaped before it is
// logged or handed to onLine, and String escapes what it returns. A server
// that prints without end cannot fill the log: past a burst of
// serverLineBurst lines, at most serverLineRate lines a second are logged;
// the rest are counted, and the count is logged with the next line that
// gets through. onLine still sees every line (the helper's markers).
type tailWriter struct {
	mu     sync.Mutex
	buf    []byte
	part   []byte
	log    *slog.Logger
	onLine func(string) // called for each complete line, escaped, under mu

	now        func() time.Time // time.Now; tests pass their own
	tokens     float64          // lines that may be logged now
	last       time.Time        // when tokens was last refilled
	suppressed int              // lines not logged since the last one that was
}

const (
	tailBytes       = 2048
	maxServerLine   = 512 // bytes of one server line that are kept
	serverLineBurst = 50
	serverLineRate  = 5 // lines a second, once the burst is spent
)

func newTailWriter(log *slog.Logger) *tailWriter {
	return &tailWriter{log: log, now: time.Now, tokens: serverLineBurst}
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > tailBytes {
		w.buf = w.buf[len(w.buf)-tailBytes:]
	}
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		line := serverLine(w.part[:i])
		w.logLine(line)
		if w.onLine != nil {
			w.onLine(line)
		}
		w.part = w.part[i+1:]
	}
	if len(w.part) > tailBytes {
		w.part = w.part[:0]
	}
	return len(p), nil
}

// serverLine is one raw line as it may be shown: cut, then escaped.
func serverLine(raw []byte) string {
	raw = bytes.TrimRight(raw, "\r")
	cut := ""
	if len(raw) > maxServerLine {
		cut = "... (line cut)"
		raw = raw[:maxServerLine]
	}
	return safetext.Escape(string(raw)) + cut
}

// logLine logs a server line within the rate limit; w.mu is held.
func (w *tailWriter) logLine(line string) {
	now := w.now()
	if !w.last.IsZero() {
		w.tokens = min(serverLineBurst, w.tokens+now.Sub(w.last).Seconds()*serverLineRate)
	}
	w.last = now
	if w.tokens < 1 {
		w.suppressed++
		return
	}
	w.tokens--
	if w.suppressed > 0 {
		w.log.Warn("server printed too much: lines not logged", "count", w.suppressed)
		w.suppressed = 0
	}
	w.log.Info(line)
}

// String is the kept text on one line, trimmed and escaped.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(w.buf)), "\n")
	for i, l := range lines {
		lines[i] = safetext.Escape(strings.TrimRight(l, "\r"))
	}
	return strings.Join(strings.Fields(strings.Join(lines, " | ")), " ")
}
