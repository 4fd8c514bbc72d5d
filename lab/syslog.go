package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// devLog is where syslog(3) and logger(1) send their messages.
const devLog = "/dev/log"

// Syslog is the lab's syslog daemon: a datagram socket on /dev/log that
// keeps every message, so that a test can see what the ppp hooks (logger)
// and a background link (its syslog sink) said. Under UML /dev is the
// lab's own; on a host kernel an existing /dev/log is covered by a bind
// mount in the lab's mount namespace, never replaced.
type Syslog struct {
	conn    *net.UnixConn
	path    string
	mounted bool
	done    chan struct{}

	mu    sync.Mutex
	lines []string
	added chan struct{} // closed and replaced on each message
}

// CatchSyslog starts the lab's syslog daemon. Close stops it and takes
// /dev/log back to what it was.
func CatchSyslog() (*Syslog, error) {
	s := &Syslog{done: make(chan struct{}), added: make(chan struct{})}
	if err := os.MkdirAll("/run/lab-syslog", 0o755); err != nil {
		return nil, fmt.Errorf("lab syslog: %w", err)
	}
	_, err := os.Lstat(devLog)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.path = devLog
	case err == nil:
		s.path, s.mounted = "/run/lab-syslog/log", true
	default:
		return nil, fmt.Errorf("lab syslog: %w", err)
	}
	os.Remove("/run/lab-syslog/log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("lab syslog: listening on %s: %w", s.path, err)
	}
	s.conn = conn
	if err := os.Chmod(s.path, 0o666); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lab syslog: %w", err)
	}
	if s.mounted {
		if err := unix.Mount(s.path, devLog, "", unix.MS_BIND, ""); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lab syslog: bind mount over %s: %w", devLog, err)
		}
	}
	go s.read()
	return s, nil
}

func (s *Syslog) read() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.lines = append(s.lines, strings.TrimRight(string(buf[:n]), "\n"))
		close(s.added)
		s.added = make(chan struct{})
		s.mu.Unlock()
	}
}

// Lines are the messages received so far, as sent ("<PRI>TIMESTAMP TAG: TEXT").
func (s *Syslog) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// WaitFor waits up to timeout for a message from the index from on that
// contains every one of want, and returns its index, or -1.
func (s *Syslog) WaitFor(from int, timeout time.Duration, want ...string) int {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		added := s.added
		for i := from; i < len(s.lines); i++ {
			if containsAll(s.lines[i], want) {
				s.mu.Unlock()
				return i
			}
		}
		s.mu.Unlock()
		select {
		case <-added:
		case <-deadline.C:
			return -1
		}
	}
}

func containsAll(s string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// Close stops listening and gives /dev/log back.
func (s *Syslog) Close() error {
	var err error
	if s.mounted {
		err = unix.Unmount(devLog, unix.MNT_DETACH)
	}
	s.conn.Close()
	<-s.done
	os.Remove(s.path)
	return err
}
