package serve

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A pppd that died of a signal it does not catch (SIGKILL, by an admin or
// the OOM killer; pppd catches the others, a crash's included, and exits)
// while its client is still there is started again on the client's
// terminal, at most the policy's PPPD_RESTARTS times
// within restartWindow of one session. The client's pppd takes the new pppd's
// LCP Configure-Request as a restart of the link and renegotiates on the
// same session: no new session, sudo, helper or login, and the client
// keeps its pppd and interface. pppd's own ends (the client hung up or
// stopped answering, a Terminate-Request, SIGTERM: it catches those) end
// the session as before.
const restartWindow = 10 * time.Minute

// restarts counts the restarts of one session's pppd.
type restarts struct {
	limit int // within restartWindow
	at    []time.Time
	now   func() time.Time
}

// take reports whether another restart is within the limit, and counts
// it if so.
func (r *restarts) take() bool {
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	recent := r.at[:0]
	for _, t := range r.at {
		if now.Sub(t) < restartWindow {
			recent = append(recent, t)
		}
	}
	r.at = recent
	if len(r.at) >= r.limit {
		return false
	}
	r.at = append(r.at, now)
	return true
}

// killedBySignal reports whether pppd's end err is a death by a signal it
// does not catch, and names the signal.
func killedBySignal(err error) (string, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return "", false
	}
	return ws.Signal().String(), true
}

// The line disciplines (tty_ldisc(8)).
const (
	nTTY = 0
	nPPP = 3
)

// resetLine gives tty back its terminal line discipline, as pppd does as
// it ends and a killed pppd could not: the PPP discipline it set holds a
// channel still connected to the dead pppd's unit, which a new pppd could
// not connect to a unit of its own ("Couldn't attach to PPP unit 0:
// Invalid argument", as the lab showed without it).
func resetLine(tty *os.File) error {
	rc, err := tty.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var d int
		if d, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGETD); ioErr != nil || d != nPPP {
			return
		}
		ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSETD, nTTY)
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		return fmt.Errorf("setting the terminal's line discipline back: %w", err)
	}
	return nil
}

// pppdRunDir is where pppd writes its pid files (pppd(8), FILES).
const pppdRunDir = "/run"

// removePidFiles removes the pid files of a pppd killed outright, which
// it could not remove itself: /run/IFACE.pid and /run/ppp-LINKNAME.pid,
// each only while it still names pid.
func removePidFiles(dir string, pid int, iface, linkname string) error {
	var errs []error
	for _, name := range []string{iface + ".pid", "ppp-" + linkname + ".pid"} {
		if name == ".pid" {
			continue // no interface yet
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, _, _ := bytes.Cut(b, []byte("\n"))
		if string(bytes.TrimSpace(first)) != strconv.Itoa(pid) {
			continue // another pppd's now
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
