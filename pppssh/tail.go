package pppssh

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// tailWriter keeps the last bytes written to it and logs each complete
// line. It holds what the server printed on stderr, for error messages.
type tailWriter struct {
	mu     sync.Mutex
	buf    []byte
	part   []byte
	log    *slog.Logger
	onLine func(string) // called for each complete line, under mu
}

const tailBytes = 2048

func newTailWriter(log *slog.Logger) *tailWriter { return &tailWriter{log: log} }

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
		line := strings.TrimRight(string(w.part[:i]), "\r")
		w.log.Info(line)
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

// String is the kept text on one line, trimmed.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(w.buf), "?"))
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
