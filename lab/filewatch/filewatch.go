// Package filewatch waits for a file to say something, without polling:
// the bench's way to time a link's way back up by its state file.
package filewatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Until waits until ok holds for the content of the file at path, for
// at most within, reading the file once at the start and again each time
// something is renamed into its place or written to it (inotify on its
// directory). It does not poll: under User-Mode Linux's one CPU a poll
// loop takes the CPU from the very thing it times (a 5 ms poll of a link's
// state file took a quarter of it during a redial, and the redial a
// quarter longer). A file that does not exist yet is content nil.
func Until(path string, within time.Duration, ok func([]byte) bool) (bool, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return false, fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(fd)
	dir, name := filepath.Split(path)
	if _, err := unix.InotifyAddWatch(fd, filepath.Clean(dir), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		return false, fmt.Errorf("inotify on %s: %w", dir, err)
	}
	deadline := time.Now().Add(within)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		// Read after the watch is in place: a change between the two
		// is seen either way.
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if ok(b) {
			return true, nil
		}
		for changed := false; !changed; {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
				return false, fmt.Errorf("poll on inotify: %w", err)
			}
			if changed, err = readEvents(fd, buf, name); err != nil {
				return false, err
			}
		}
	}
}

// readEvents drains the inotify descriptor and reports whether any event
// named name, or the queue overflowed (events may be lost: read again). A
// directory removed or replaced under the watch is an error: nothing in
// it can be watched any more.
func readEvents(fd int, buf []byte, name string) (bool, error) {
	named := false
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return named, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading inotify: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			start := off + unix.SizeofInotifyEvent
			end := start + int(ev.Len)
			if end > n {
				return false, errors.New("reading inotify: a short event")
			}
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				named = true
			case ev.Mask&unix.IN_IGNORED != 0:
				return false, errors.New("the watched directory was removed")
			case cString(buf[start:end]) == name:
				named = true
			}
			off = end
		}
	}
}

// cString is b up to its first NUL (inotify pads names with NULs).
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
