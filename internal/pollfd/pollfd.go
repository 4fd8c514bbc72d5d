// Package pollfd gives a descriptor that blocks (a session's pipe, a
// terminal, as sudo hands them over) read deadlines and a way to be
// interrupted: a non-blocking duplicate that Go's poller serves. The
// server half reads its request, a terminal's token and the end of its
// session through it.
package pollfd

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Dup returns a duplicate of f that Go's poller serves, so that reads on
// it take deadlines and end when it is closed. The duplicate is
// close-on-exec (the programs the caller starts do not inherit it), and
// shares f's file description, and so its O_NONBLOCK flag, with every
// process that holds it: restore closes the duplicate and puts the flag
// back as it was (idempotent; call it once reads on the duplicate are
// over or may end with an error). An error means f cannot be polled (a
// regular file, /dev/null), and nothing was changed.
func Dup(f *os.File) (polled *os.File, restore func(), err error) {
	orig := int(f.Fd()) // before anything else: Fd may make f blocking
	fd, err := unix.FcntlInt(uintptr(orig), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("duplicating %s: %w", f.Name(), err)
	}
	if err := pollable(fd); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("%s cannot be polled: %w", f.Name(), err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	polled = os.NewFile(uintptr(fd), f.Name())
	var once sync.Once
	restore = func() {
		once.Do(func() {
			polled.Close() // ends a read in progress first: the original may block once restored
			if flags&unix.O_NONBLOCK == 0 {
				unix.SetNonblock(orig, false)
			}
		})
	}
	// Only a descriptor in the poller takes deadlines.
	if err := polled.SetReadDeadline(time.Time{}); err != nil {
		restore()
		return nil, nil, fmt.Errorf("%s cannot be polled: %w", f.Name(), err)
	}
	return polled, restore, nil
}

// pollable asks epoll, on an epoll instance of its own, whether it takes
// fd (it refuses regular files and /dev/null), before anything is changed.
func pollable(fd int) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	return unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}
