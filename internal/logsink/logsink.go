// Package logsink makes the handlers the tool logs through, for where it
// runs: text for a terminal or the background log file; the journal's own
// form under systemd (a priority prefix per line and no timestamp, which
// the journal adds); syslog beside the log file for a background process
// that no service manager watches.
package logsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Text is the handler for a terminal or a file: slog's text form.
func Text(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
}

// UnderJournal reports whether f (the process's stderr) is the stream
// systemd connected to the journal: $JOURNAL_STREAM names its device and
// inode (systemd.exec(5)), so a stderr redirected elsewhere does not count.
func UnderJournal(f *os.File, getenv func(string) string) bool {
	var dev, ino uint64
	if _, err := fmt.Sscanf(getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// Journal writes each record as one line for the journal: "<N>" with the
// syslog priority of its level (sd-daemon(3)), then the text form without
// time and level, which the journal records itself.
func Journal(w io.Writer, level slog.Leveler) slog.Handler {
	return newPrefixed(level, func(r slog.Record, line []byte) error {
		_, err := fmt.Fprintf(w, "<%d>%s", priority(r.Level), line)
		return err
	})
}

// Syslog sends each record to the syslog daemon at the unix datagram
// socket addr ("": the local one, /dev/log) under tag, facility daemon,
// at the priority of its level, without time and level (syslog adds
// them). It fails when there is no daemon listening.
func Syslog(addr, tag string, level slog.Leveler) (slog.Handler, io.Closer, error) {
	var sw *syslog.Writer
	var err error
	if addr == "" {
		sw, err = syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
	} else {
		sw, err = syslog.Dial("unixgram", addr, syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
	}
	if err != nil {
		return nil, nil, err
	}
	h := newPrefixed(level, func(r slog.Record, line []byte) error {
		msg := string(bytes.TrimRight(line, "\n"))
		switch p := priority(r.Level); {
		case p <= 3:
			return sw.Err(msg)
		case p == 4:
			return sw.Warning(msg)
		case p == 6:
			return sw.Info(msg)
		default:
			return sw.Debug(msg)
		}
	})
	return h, sw, nil
}

// priority maps a level to syslog's: error 3, warning 4, info 6, debug 7.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	default:
		return 7
	}
}

// prefixed formats a record with a text handler into a buffer, then hands
// the line to emit; handlers made by WithAttrs and WithGroup share both.
type prefixed struct {
	inner slog.Handler
	s     *shared
}

type shared struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(slog.Record, []byte) error
}

func newPrefixed(level slog.Leveler, emit func(slog.Record, []byte) error) *prefixed {
	s := &shared{emit: emit}
	inner := slog.NewTextHandler(&s.buf, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		}})
	return &prefixed{inner: inner, s: s}
}

func (p *prefixed) Enabled(ctx context.Context, l slog.Level) bool { return p.inner.Enabled(ctx, l) }

func (p *prefixed) Handle(ctx context.Context, r slog.Record) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.buf.Reset()
	if err := p.inner.Handle(ctx, r); err != nil {
		return err
	}
	return p.s.emit(r, p.s.buf.Bytes())
}

func (p *prefixed) WithAttrs(as []slog.Attr) slog.Handler {
	return &prefixed{inner: p.inner.WithAttrs(as), s: p.s}
}

func (p *prefixed) WithGroup(name string) slog.Handler {
	return &prefixed{inner: p.inner.WithGroup(name), s: p.s}
}
