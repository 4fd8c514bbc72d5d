// Package rundir keeps the run-time state of named links under
// /run/vpn-pppssh: a lock file per link, held with flock(2) by the process
// that owns the link, and a JSON state file beside it. Whether a link is
// running is decided by the lock, never by searching the process list.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Default is where state lives.
const Default = "/run/vpn-pppssh"

// Dir is a state directory.
type Dir string

// ErrRunning is returned by Lock when another process owns the link.
var ErrRunning = errors.New("already running")

// ErrBadName is returned for a name that is not a valid link name: every
// path here is built from a name, so one with a '/' or a leading '.' could
// reach outside the directory.
var ErrBadName = errors.New("not a valid link name (1-32 letters, digits, '.', '_' or '-', starting with a letter or digit)")

// ValidName reports whether name is a valid link name: 1 to 32 ASCII
// letters, digits, '.', '_' or '-', starting with a letter or a digit (the
// rule of pppssh.Config.Validate). Such a name is one path component and
// never "." or "..".
func ValidName(name string) bool {
	if name == "" || len(name) > 32 || !alnum(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// CheckName returns an error naming name when it is not a valid link name.
func CheckName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("link name %q: %w", name, ErrBadName)
	}
	return nil
}

// path is the file of the link with the extension; it refuses a name that
// is not a valid link name, so no path built here leaves the directory.
func (d Dir) path(name, ext string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(string(d), name+ext), nil
}

// LogPath is where the background process of a link writes its log.
func (d Dir) LogPath(name string) (string, error) { return d.path(name, ".log") }

// Lock is a held link lock; its file holds the owner's pid.
type Lock struct {
	f *os.File
}

// Lock takes the link's lock without waiting and writes the caller's pid
// into it. It returns ErrRunning, wrapped with the owner's pid, when the
// lock is held.
func (d Dir) Lock(name string) (*Lock, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", d, err)
	}
	if err := os.Chmod(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("securing %s: %w", d, err)
	}
	f, err := d.lockFile(name)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	return &Lock{f: f}, nil
}

// lockFile opens and locks the link's lock file. Release unlinks the file
// before unlocking it, so a lock won on a file that is no longer at its path
// is worthless: check the inode and try again.
func (d Dir) lockFile(name string) (*os.File, error) {
	path, err := d.path(name, ".pid")
	if err != nil {
		return nil, err
	}
	for range 5 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				pid, _ := d.Owner(name)
				return nil, fmt.Errorf("link %s: %w (pid %d)", name, ErrRunning, pid)
			}
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(f.Name())
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("link %s: lock file keeps changing under us", name)
}

// Release removes the lock file and lets go of the lock.
func (l *Lock) Release() {
	os.Remove(l.f.Name())
	l.f.Close()
}

// Owner returns the pid of the process holding the link's lock, or 0 when
// nobody holds it.
func (d Dir) Owner(name string) (int, error) {
	path, err := d.path(name, ".pid")
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// A shared lock succeeds only when no exclusive owner exists.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0, nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return 0, fmt.Errorf("probing lock: %w", err)
	}
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0, fmt.Errorf("lock %s is held but holds no pid", f.Name())
	}
	return pid, nil
}

// WaitReleased waits until nobody holds the link's lock or the timeout
// passes, and reports whether it was released. It polls with a
// non-blocking shared lock, let go of at once (the caller's next step is
// usually Lock, which a held shared lock would make fail), so nothing is
// left behind when it gives up: no goroutine, no open descriptor.
func (d Dir) WaitReleased(name string, timeout time.Duration) bool {
	path, err := d.path(name, ".pid")
	if err != nil {
		return true // no lock can exist under a bad name
	}
	deadline := time.Now().Add(timeout)
	for {
		if released(path) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(waitPoll, time.Until(deadline)))
	}
}

// waitPoll is how often WaitReleased looks.
const waitPoll = 5 * time.Millisecond

// released reports whether the lock file at path is free: gone, or
// lockable shared. A file it cannot open otherwise is not free.
func released(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) != nil {
		return false
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true
}

// State is what the owner of a link publishes about it.
type State struct {
	Name        string    `json:"name"`
	Pid         int       `json:"pid"`
	Phase       string    `json:"phase"` // connecting, up, waiting (to redial)
	Started     time.Time `json:"started"`
	Iface       string    `json:"iface,omitempty"`
	Local       string    `json:"local,omitempty"`
	Remote      string    `json:"remote,omitempty"`
	Local6      string    `json:"local6,omitempty"` // IPv6, when the link carries it
	Remote6     string    `json:"remote6,omitempty"`
	Server      string    `json:"server,omitempty"`
	Via         string    `json:"via,omitempty"`          // this host's address the SSH connection leaves from
	Mode        string    `json:"mode,omitempty"`         // ppp, tun or ethernet
	CarrierPid  int       `json:"carrier_pid,omitempty"`  // the local process carrying the link (ppp: pppd); 0 none
	ServerIface string    `json:"server_iface,omitempty"` // tun and ethernet modes: the server's device
	UpSince     time.Time `json:"up_since,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Redials     int       `json:"redials"`
	NextAttempt time.Time `json:"next_attempt,omitzero"` // when waiting
	Goroutines  int       `json:"goroutines,omitempty"`  // of the owner, at the last change of phase: a leak shows here
	Forwards    []string  `json:"forwards,omitempty"`    // port forwards listening, one line each
	DNS         string    `json:"dns,omitempty"`         // name servers set for the link, and how
	Firewall    string    `json:"firewall,omitempty"`    // masquerade backend: nftables or iptables-legacy
	Changes     []string  `json:"changes,omitempty"`     // what the link changed on the host
}

// Write replaces the link's state file atomically.
func (d Dir) Write(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	final, err := d.path(s.Name, ".json")
	if err != nil {
		return err
	}
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// Read returns the link's last published state.
func (d Dir) Read(name string) (State, error) {
	var s State
	path, err := d.path(name, ".json")
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file of %s: %w", name, err)
	}
	if s.CarrierPid == 0 && s.Mode == "" {
		// Written before the modes: its pppd is under pppd_pid, and
		// cleanup must still find it.
		var old struct {
			PPPDPid int `json:"pppd_pid"`
		}
		if json.Unmarshal(b, &old) == nil && old.PPPDPid > 0 {
			s.CarrierPid, s.Mode = old.PPPDPid, "ppp"
		}
	}
	return s, nil
}

// Remove deletes the link's state file.
func (d Dir) Remove(name string) error {
	path, err := d.path(name, ".json")
	if err != nil {
		return err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Names lists the links that have a lock or a state file here, sorted:
// running links and dead ones that left state behind. A missing directory
// lists nothing.
func (d Dir) Names() ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok {
			name, ok = strings.CutSuffix(e.Name(), ".json")
		}
		if ok && ValidName(name) && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
