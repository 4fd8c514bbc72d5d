// Package logsink makes the handlers the tool logs through, for where it
// runs: text for a terminal or the background log file; the journal's own
// form under systemd (a priority prefix per line and no timestamp, which
// the journal adds); syslog beside the log file for a background process
// that no service manager watches.
package logsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"sync"
	"time"

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
// them). It fails when there is no daemon listening. A daemon that stops
// reading must not stop the link: lines go through a queue of
// syslogQueue, and what does not fit is dropped (and counted in the next
// line that goes). Close sends what is queued and ends the sender.
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
	q := &syslogQueue{w: sw, lines: make(chan syslogLine, syslogQueueLen), done: make(chan struct{})}
	go q.run()
	h := newPrefixed(level, func(r slog.Record, line []byte) error {
		q.put(priority(r.Level), string(bytes.TrimRight(line, "\n")))
		return nil
	})
	return h, q, nil
}

const syslogQueueLen = 256

type syslogLine struct {
	prio int
	msg  string
}

type syslogQueue struct {
	w       *syslog.Writer
	lines   chan syslogLine
	done    chan struct{}
	mu      sync.Mutex
	dropped int
	closed  bool
}

// put queues a line without waiting; a full queue drops it.
func (q *syslogQueue) put(prio int, msg string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.dropped > 0 {
		msg = fmt.Sprintf("%s (%d earlier lines dropped: syslog did not keep up)", msg, q.dropped)
	}
	select {
	case q.lines <- syslogLine{prio, msg}:
		q.dropped = 0
	default:
		q.dropped++
	}
}

func (q *syslogQueue) run() {
	defer close(q.done)
	for l := range q.lines {
		switch {
		case l.prio <= 3:
			q.w.Err(l.msg)
		case l.prio == 4:
			q.w.Warning(l.msg)
		case l.prio == 6:
			q.w.Info(l.msg)
		default:
			q.w.Debug(l.msg)
		}
	}
}

// Close sends what is queued, then closes the connection. A daemon that
// does not read is waited for one second only: the sender is then left
// blocked in its write (log/syslog cannot interrupt it), which ends with
// the process, the one caller of Close being its exit.
func (q *syslogQueue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.lines)
	q.mu.Unlock()
	select {
	case <-q.done:
		return q.w.Close()
	case <-time.After(time.Second):
		return errors.New("syslog: the daemon did not take the last lines within a second")
	}
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
