package main

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// maxLog is the size past which the background log is moved aside (to
// .1), keeping two generations: /run is memory.
const maxLog = 1 << 20

// rotateLog moves a log over maxLog aside; a start calls it before the
// background process opens the log.
func rotateLog(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLog {
		os.Rename(path, path+".1")
	}
}

// logFile is the background process's log while it runs: a writer that
// moves the file to .1 (replacing the older generation) once it would grow
// past max, so that a server printing without end cannot fill /run. The
// file's size is taken from the file itself before each write, so lines
// written to it another way (fd 2: a Go runtime panic, a message printed
// before the log was set up) count as well. On each rotation the new file
// is also put on the descriptors in dupOnto (the process's stdout and
// stderr), so a later panic lands in the current log.
type logFile struct {
	mu      sync.Mutex
	path    string
	max     int64
	dupOnto []int
	f       *os.File
}

// openLog opens (appending) the log at path, rotating it first when it is
// already over max.
func openLog(path string, max int64, dupOnto ...int) (*logFile, error) {
	l := &logFile{path: path, max: max, dupOnto: dupOnto}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	l.f = f
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		if err := l.rotate(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return l, nil
}

// Write appends p, rotating first when p would take the file past max. A
// single write longer than max is cut to max bytes, so the two
// generations together never exceed twice max.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	n := len(p)
	if int64(len(p)) > l.max {
		p = p[:l.max]
	}
	fi, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("log %s: %w", l.path, err)
	}
	if fi.Size() > 0 && fi.Size()+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	if _, err := l.f.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// rotate moves the current file to .1 and starts a new one; l.mu is held
// (or l is not yet shared).
func (l *logFile) rotate() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotating log %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("rotating log %s: %w", l.path, err)
	}
	l.f.Close()
	l.f = f
	for _, fd := range l.dupOnto {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("rotating log %s: moving fd %d: %w", l.path, fd, err)
		}
	}
	return nil
}

// Close closes the log; it is safe to call more than once.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
