package dnsconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/flock"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"golang.org/x/sys/unix"
)

// stateExt is the extension of a link's state file in the run directory.
const stateExt = ".resolv"

// maxStateSize bounds a state file read back: it holds two copies of a
// resolv.conf at most.
const maxStateSize = 4 << 20

// state is what a link changed in the resolver and what undoing it needs.
// It is written before the change is made, so a process that dies in the
// middle still leaves it for Cleanup; undoing a change that was not made
// does nothing harmful for any backend.
type state struct {
	Link    string       `json:"link"`
	Backend Backend      `json:"backend"`
	Iface   string       `json:"iface"`
	Servers []netip.Addr `json:"servers,omitempty"`
	Search  []string     `json:"search,omitempty"`

	// systemd-resolved: the interface the settings were given to. An
	// interface of the same name with another index is not ours.
	Index int `json:"ifindex,omitempty"`

	// resolvconf: the program run and the record it was given. Pending
	// until `resolvconf -a` returned: a process that died before may not
	// have added the record, and deleting it may then fail.
	Program string `json:"program,omitempty"`
	Record  string `json:"record,omitempty"`
	Pending bool   `json:"pending,omitempty"`

	// The file backend: the original and what replaced it.
	File *fileState `json:"file,omitempty"`
}

// fileState records a resolv.conf the file backend replaced.
type fileState struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	// Symlink is the target when the original was a symbolic link; it is
	// restored as that link, and Original is what it pointed to then.
	Symlink  string      `json:"symlink,omitempty"`
	Original []byte      `json:"original"` // base64 in the file: every byte kept
	Mode     fs.FileMode `json:"mode"`     // permission bits of the original regular file
	UID      int         `json:"uid"`
	GID      int         `json:"gid"`
	Written  []byte      `json:"written"` // what vpn-pppssh put in its place
}

func (st *state) config() Config {
	return Config{Link: st.Link, Iface: st.Iface, Servers: st.Servers, Search: st.Search}
}

// statePath is the link's state file; it refuses a name that is not a
// link name, so that no path built here leaves the directory.
func statePath(runDir, name string) (string, error) {
	if err := rundir.CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(runDir, name+stateExt), nil
}

// writeState replaces the link's state file atomically (a temporary file
// renamed into place, synced before the rename).
func (h *host) writeState(st *state) error {
	runDir := h.runDir
	path, err := statePath(runDir, st.Link)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding DNS state of link %s: %w", st.Link, err)
	}
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", runDir, err)
	}
	if err := replaceFile(h.rename, path, append(b, '\n'), 0o600, -1, -1); err != nil {
		return fmt.Errorf("writing DNS state %s: %w", path, err)
	}
	return nil
}

// readState reads the link's state file: nil, nil when there is none. The
// file names programs to run and files to restore as root, so it is
// trusted only as this process would have left it: a regular file of the
// caller's, readable and writable by nobody else.
func readState(runDir, name string) (*state, error) {
	path, err := statePath(runDir, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading DNS state %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading DNS state %s: %w", path, err)
	}
	if err := checkOwn(fi); err != nil {
		return nil, fmt.Errorf("DNS state %s: %w", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading DNS state %s: %w", path, err)
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("DNS state %s: %w: larger than %d bytes", path, ErrBadState, maxStateSize)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("DNS state %s: %w: %v", path, ErrBadState, err)
	}
	if err := st.check(name); err != nil {
		return nil, fmt.Errorf("DNS state %s: %w", path, err)
	}
	return &st, nil
}

// ErrBadState is matched by the error of a state file that cannot be
// used: not written by this program, or damaged.
var ErrBadState = errors.New("not a usable state file")

// check refuses a state file that does not describe a change this
// package would have made.
func (st *state) check(name string) error {
	if st.Link != name {
		return fmt.Errorf("%w: it is link %q's", ErrBadState, st.Link)
	}
	if checkIface(st.Iface) != nil {
		return fmt.Errorf("%w: interface %q", ErrBadState, st.Iface)
	}
	switch st.Backend {
	case BackendResolved:
		if st.Index <= 0 {
			return fmt.Errorf("%w: no interface index", ErrBadState)
		}
	case BackendResolvconf:
		if !filepath.IsAbs(st.Program) || st.Record != recordName(st.Iface) {
			return fmt.Errorf("%w: resolvconf program %q, record %q", ErrBadState, st.Program, st.Record)
		}
	case BackendFile:
		if st.File == nil || !filepath.IsAbs(st.File.Path) {
			return fmt.Errorf("%w: no resolv.conf path", ErrBadState)
		}
	default:
		return fmt.Errorf("%w: backend %q", ErrBadState, st.Backend)
	}
	return nil
}

// checkOwn accepts a file only if it is a regular file owned by the
// caller that no one else may read or write.
func checkOwn(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrBadState)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: mode %04o, want 0600", ErrBadState, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: owned by uid %d", ErrBadState, st.Uid)
	}
	return nil
}

func removeState(runDir, name string) error {
	path, err := statePath(runDir, name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing DNS state %s: %w", path, err)
	}
	return nil
}

// otherStates reads the state files of the other links in runDir. One
// that cannot be read is skipped: it is that link's Cleanup's to report.
func otherStates(runDir, name string) []*state {
	paths, _ := filepath.Glob(filepath.Join(runDir, "*"+stateExt))
	var out []*state
	for _, p := range paths {
		other := strings.TrimSuffix(filepath.Base(p), stateExt)
		if other == name || !rundir.ValidName(other) {
			continue
		}
		if st, err := readState(runDir, other); err == nil && st != nil {
			out = append(out, st)
		}
	}
	return out
}

// lockWait bounds how long a change to resolv.conf waits for another
// link's: a holder that is stopped must not hang every other link.
const lockWait = 30 * time.Second

// lockRunDir serialises the file backend's changes across links and
// processes (runDir/dns.lock, flock(2)); it returns the function that lets
// go of it.
func lockRunDir(runDir string) (func(), error) {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", runDir, err)
	}
	release, err := flock.Wait(filepath.Join(runDir, "dns.lock"), lockWait)
	if err != nil {
		return nil, fmt.Errorf("DNS: %w", err)
	}
	return release, nil
}

// Leftovers reports whether link name has a DNS state file in runDir: its
// settings are applied, or were when its process died.
func Leftovers(runDir, name string) bool {
	path, err := statePath(runDir, name)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(path)
	return err == nil && fi.Size() > 0
}

// Cleanup undoes, from the state file alone, the DNS settings of link name
// that a process which died left behind, and removes the state file once
// they are undone. It does nothing when there is no state file. When the
// resolv.conf it would restore was changed by someone else meanwhile, it
// leaves the file as it is, forgets the state, and returns an error that
// matches ErrChanged. Only call it for a link no process owns (hold the
// link's lock).
func Cleanup(runDir, name string) error {
	return cleanup(newHost(Options{RunDir: runDir}), name)
}

func cleanup(h *host, name string) error {
	st, err := readState(h.runDir, name)
	if err != nil || st == nil {
		return err
	}
	return undoState(h, st)
}
