package pppssh

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// openPTY opens the pseudo-terminal the local pppd speaks PPP on. The slave
// is put in raw mode at once: bytes from the server may arrive before pppd
// has configured the line itself, and a cooked tty would echo the server's
// frames back to it. The master is returned in non-blocking mode, so that
// closing it ends a read in progress.
func openPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("opening pty: %w", err)
	}
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		m.Close()
		s.Close()
		return nil, nil, fmt.Errorf("setting pty %s raw: %w", s.Name(), err)
	}
	// pty.Open used m.Fd(), which made it blocking; take a non-blocking
	// duplicate that the runtime poller can interrupt.
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	m.Close()
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("duplicating pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, nil, fmt.Errorf("pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}
