package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// ErrInUse is returned when another session holds what a request asks
// for: its tunnel address, or an address or network that session routes.
var ErrInUse = errors.New("in use by another session")

// owner is who holds a client tunnel address, written beside its lock
// (serve-ADDR.owner, root's only, in the root-only state directory). The
// account comes from sudo and cannot be forged by the client; the link
// name is the client's word, which only tells apart the links of one
// account. Once the session has passed its claim check, the record also
// holds the addresses and networks it routes, so that later sessions are
// checked against them.
type owner struct {
	UID     int            `json:"uid"`
	User    string         `json:"user"`
	Link    string         `json:"link"`
	Pid     int            `json:"pid"`
	Claimed bool           `json:"claimed,omitempty"`
	Local   netip.Addr     `json:"local"`
	Peer    netip.Addr     `json:"peer"`
	Routes  []netip.Prefix `json:"routes,omitempty"`
	Local6  netip.Addr     `json:"local6,omitzero"`
	Peer6   netip.Addr     `json:"peer6,omitzero"`
	// Ethernet mode: the shared subnets' prefix lengths, which the
	// server's device has routes for.
	Mode  string `json:"mode,omitempty"`
	Bits  int    `json:"bits,omitempty"`
	Bits6 int    `json:"bits6,omitempty"`
}

// claims are the addresses and networks the session holds, as a request's.
func (o owner) claims() []netip.Prefix {
	return pppssh.Request{Local: o.Local, Peer: o.Peer, Local6: o.Local6, Peer6: o.Peer6, Routes: o.Routes,
		Mode: o.Mode, Bits: o.Bits, Bits6: o.Bits6}.Claims()
}

// sameIdentity: the same account with the same link name.
func (o owner) sameIdentity(p owner) bool { return o.UID == p.UID && o.Link == p.Link }

func ownerPath(dir rundir.Dir, name string) string {
	return filepath.Join(string(dir), name+".owner")
}

func writeOwner(dir rundir.Dir, name string, o owner) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	path := ownerPath(dir, name)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording the session's owner: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("recording the session's owner: %w", err)
	}
	return nil
}

func readOwner(dir rundir.Dir, name string) (owner, error) {
	var o owner
	b, err := os.ReadFile(ownerPath(dir, name))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("owner record of %s: %w", name, err)
	}
	return o, nil
}

// session is a held tunnel address.
type session struct {
	dir  rundir.Dir
	name string
	me   owner
	lock *rundir.Lock
}

// Release removes the owner record and lets go of the address.
func (s *session) Release() {
	os.Remove(ownerPath(s.dir, s.name))
	s.lock.Release()
}

// takeOver takes the lock of a client tunnel address. When another helper
// holds it, it is ended only if it is this session's own earlier one (same
// account, same link name: the client redialled before its old session
// noticed); any other holder is left alone and the request refused.
func takeOver(dir rundir.Dir, name string, me owner, log *slog.Logger) (*session, error) {
	lock, err := dir.Lock(name)
	if errors.Is(err, rundir.ErrRunning) {
		lock, err = replaceOwn(dir, name, me, log)
	}
	if err != nil {
		return nil, err
	}
	s := &session{dir: dir, name: name, me: me, lock: lock}
	if err := writeOwner(dir, name, me); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

// replaceOwn ends the holder of name if it has this session's identity,
// and takes its lock. The holder is signalled through a pidfd opened
// after its pid was read and checked again once the pidfd is open, so a
// pid reused by another process in between is never signalled.
func replaceOwn(dir rundir.Dir, name string, me owner, log *slog.Logger) (*rundir.Lock, error) {
	inUse := fmt.Errorf("peer %s is %w (another account or link name), which was left running", me.Peer, ErrInUse)
	pid, err := dir.Owner(name)
	if err != nil || pid <= 0 {
		return nil, inUse
	}
	held, err := readOwner(dir, name)
	// The record must be the lock holder's own: a record left by a
	// helper that died says nothing about the live one.
	if err != nil || held.Pid != pid || !held.sameIdentity(me) {
		return nil, inUse
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("ending this client's previous session for peer %s: %w", me.Peer, err)
	}
	defer unix.Close(pidfd)
	if now, err := dir.Owner(name); err != nil || now != pid {
		// The holder went (or changed) while we looked: the pidfd may
		// be some other process's.
		return nil, inUse
	}
	log.Info("ending this client's previous session for the address", "pid", pid)
	unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0)
	if !dir.WaitReleased(name, replaceGrace) {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		dir.WaitReleased(name, 2*time.Second)
	}
	return dir.Lock(name)
}

// replaceGrace is how long a replaced session has to undo its changes
// before it is killed (its pppd then gets SIGTERM from the kernel).
var replaceGrace = 8 * time.Second

// errOthersUnreadable refuses a session when the records of the other
// sessions cannot be read: they might claim what it asks for. What went
// wrong goes to the server's log only, since it names another session.
var errOthersUnreadable = errors.New("the server cannot read the records of its other sessions (see its system log)")

// claim checks, under the host lock, that the request's addresses and
// networks are free (no other live session claimed them, and the kernel's
// interfaces and routes do not have them), then records them as this
// session's. The host lock makes check and record one step, so two
// sessions arriving together cannot both take the same addresses.
func (s *session) claim(p pppssh.Policy, req pppssh.Request, kernel hostChecker, others *slog.Logger) error {
	unlock, err := lockHost(s.dir)
	if err != nil {
		return err
	}
	defer unlock()
	paths, err := filepath.Glob(filepath.Join(string(s.dir), "serve-*.owner"))
	if err != nil {
		return err
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".owner")
		if name == s.name {
			continue
		}
		o, err := readOwner(s.dir, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // its session ended since the listing
		}
		if err != nil {
			others.Error("reading another session's owner record", "session", name, "err", err)
			return errOthersUnreadable
		}
		if !o.Claimed {
			continue
		}
		pid, err := s.dir.Owner(name)
		if err != nil {
			others.Error("reading another session's lock", "session", name, "err", err)
			return errOthersUnreadable
		}
		if pid != o.Pid {
			continue // a record left by a helper that died
		}
		if err := conflict(req, o); err != nil {
			return err
		}
	}
	if err := kernel(p, req); err != nil {
		return err
	}
	s.me.Claimed = true
	return writeOwner(s.dir, s.name, s.me)
}

// conflict says how a request collides with another session's claim. It
// names only what the request asked for: the other session's addresses,
// networks and account are none of this client's business.
func conflict(req pppssh.Request, o owner) error {
	theirs := o.claims()
	for _, m := range req.Claims() {
		for _, t := range theirs {
			if m.Overlaps(t) {
				return fmt.Errorf("%s is %w", claimName(req, m), ErrInUse)
			}
		}
	}
	return nil
}

// claimName names one of the request's claims as the client wrote it.
func claimName(req pppssh.Request, p netip.Prefix) string {
	switch {
	case slices.Contains(req.Routes, p):
		return "network " + p.String()
	case !p.IsSingleIP():
		return "subnet " + p.String() // ethernet mode's, the only other kind
	case p.Addr() == req.Local || p.Addr() == req.Local6:
		return "local " + p.Addr().String()
	}
	return "peer " + p.Addr().String()
}

// hostLockWait bounds the wait for the host lock: a session is refused
// rather than left waiting behind a holder that does not let go.
var hostLockWait = 10 * time.Second

// ErrHostBusy is returned when the host lock could not be had in time.
var ErrHostBusy = routing.ErrHostBusy

// lockHost takes the state directory's host lock, the one the routing
// package takes around its shared changes, waiting at most hostLockWait.
func lockHost(dir rundir.Dir) (func(), error) {
	return routing.LockHost(string(dir), hostLockWait)
}

// cleanupDead undoes the journals of helpers that died without undoing
// their changes (kill -9, a crash), and removes their owner records and
// half-written records (.owner.tmp); a session whose lock is free is dead.
// What it does concerns other sessions, so it logs to log, which never
// reaches this session's client.
func cleanupDead(dir rundir.Dir, log *slog.Logger) {
	var files []string
	for _, pattern := range []string{"serve-*.journal", "serve-*.owner", "serve-*.owner.tmp"} {
		m, _ := filepath.Glob(filepath.Join(string(dir), pattern))
		files = append(files, m...)
	}
	seen := map[string]bool{}
	for _, p := range files {
		name := filepath.Base(p)
		for _, ext := range []string{".journal", ".tmp", ".owner"} {
			name = strings.TrimSuffix(name, ext)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		lock, err := dir.Lock(name)
		if err != nil {
			continue // alive, or unreadable
		}
		for _, f := range []string{ownerPath(dir, name), ownerPath(dir, name) + ".tmp"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Error("removing the owner record of a dead session", "file", f, "err", err)
			}
		}
		if _, err := os.Stat(routing.JournalPath(string(dir), name)); err == nil {
			r, err := routing.New(name, string(dir))
			if err == nil {
				err = r.Close()
			}
			if err != nil {
				log.Error("undoing leftovers of a dead session", "session", name, "err", err)
			} else {
				log.Info("undid leftovers of a dead session", "session", name)
			}
		}
		lock.Release()
	}
}
