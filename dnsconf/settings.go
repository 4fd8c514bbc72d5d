package dnsconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

// Backend names the way a link's DNS settings reach the resolver.
type Backend string

// The backends, in the order Apply tries them.
const (
	BackendResolved   Backend = "systemd-resolved" // per-link settings over D-Bus
	BackendResolvconf Backend = "resolvconf"       // a record of resolvconf(8)
	BackendFile       Backend = "file"             // /etc/resolv.conf rewritten
)

// DefaultResolvConf is the file the file backend rewrites.
const DefaultResolvConf = "/etc/resolv.conf"

// DefaultPrograms are where resolvconf(8) is looked for, in order.
var DefaultPrograms = []string{"/sbin/resolvconf", "/usr/sbin/resolvconf"}

// undoTimeout bounds an undo (Close, Cleanup): a hung resolvconf or D-Bus
// peer must not hang a link's teardown.
const undoTimeout = 15 * time.Second

// Options says where things are. The zero value is the real host.
type Options struct {
	RunDir     string   // where the state file lives; rundir.Default when empty
	ResolvConf string   // the file backend's file; DefaultResolvConf when empty
	Programs   []string // resolvconf(8) candidates; DefaultPrograms when nil, none when empty
	// SystemBus connects to the system bus; dbus.ConnectSystemBus when
	// nil. The connection is closed after each use.
	SystemBus func(context.Context) (*dbus.Conn, error)
	// Backend, when set, is used instead of the first that works.
	Backend Backend
	Logger  *slog.Logger // slog.Default() when nil
}

// host is everything the backends touch, so that tests point it elsewhere.
type host struct {
	runDir     string
	resolvConf string
	programs   []string
	bus        func(context.Context) (resolver, error)
	interfaces func() ([]net.Interface, error)
	rename     func(oldpath, newpath string) error
	force      Backend
	log        *slog.Logger
}

func newHost(o Options) *host {
	h := &host{
		runDir:     o.RunDir,
		resolvConf: o.ResolvConf,
		programs:   o.Programs,
		interfaces: net.Interfaces,
		rename:     os.Rename,
		force:      o.Backend,
		log:        o.Logger,
	}
	if h.runDir == "" {
		h.runDir = rundir.Default
	}
	if h.resolvConf == "" {
		h.resolvConf = DefaultResolvConf
	}
	if h.programs == nil {
		h.programs = DefaultPrograms
	}
	connect := o.SystemBus
	if connect == nil {
		connect = func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.ConnectSystemBus(dbus.WithContext(ctx))
		}
	}
	h.bus = func(ctx context.Context) (resolver, error) {
		c, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		return &dbusResolver{conn: c}, nil
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "dns")
	return h
}

// Settings are one link's DNS settings on this host: New checks them,
// Apply puts them in place once, Close takes them away.
type Settings struct {
	cfg Config
	h   *host

	mu      sync.Mutex
	applied bool   // Apply succeeded (or had nothing to do)
	closed  bool   // Close ran
	st      *state // what is in place and recorded; nil when nothing is

	closeOnce sync.Once
	closeErr  error
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("DNS settings already closed")

// New checks cfg (every value, as it may come from the server) and returns
// the link's settings. It touches nothing.
func New(cfg Config, o Options) (*Settings, error) {
	return newSettings(cfg, newHost(o))
}

func newSettings(cfg Config, h *host) (*Settings, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	switch h.force {
	case "", BackendResolved, BackendResolvconf, BackendFile:
	default:
		return nil, invalid("DNS backend", string(h.force), "not systemd-resolved, resolvconf or file")
	}
	return &Settings{cfg: c, h: h}, nil
}

// Apply puts the settings in place through the first backend that works:
// systemd-resolved when it owns its name on the system bus, resolvconf(8)
// when it is installed, else the file. The state file is written before the
// change. A state file of the same link left by a process that died is
// undone first. A Config with no servers and no domains changes nothing.
//
// On error nothing stays applied, unless undoing the part that was made
// failed too: then the state file stays, and Close or Cleanup undo it.
// Apply may be called once; a link that comes up again takes new Settings.
func (s *Settings) Apply(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("DNS settings of link %s: %w", s.cfg.Link, ErrClosed)
	case s.applied || s.st != nil:
		return fmt.Errorf("DNS settings of link %s: already applied", s.cfg.Link)
	case s.cfg.empty():
		s.applied = true
		return nil
	}
	if err := cleanup(s.h, s.cfg.Link); errors.Is(err, ErrChanged) {
		s.h.log.Warn("DNS settings left by a process that died", "link", s.cfg.Link, "err", err)
	} else if err != nil {
		return fmt.Errorf("undoing the DNS settings link %s left when its process died: %w", s.cfg.Link, err)
	}
	b, program, err := s.h.choose(ctx)
	if err != nil {
		return err
	}
	var st *state
	switch b {
	case BackendResolved:
		st, err = applyResolved(ctx, s.h, s.cfg)
	case BackendResolvconf:
		st, err = applyResolvconf(ctx, s.h, s.cfg, program)
	case BackendFile:
		st, err = applyFile(s.h, s.cfg)
	}
	s.st = st
	if err != nil {
		return err
	}
	s.applied = true
	s.h.log.Info("applied", "link", s.cfg.Link, "dns", describe(st))
	return nil
}

// Close undoes what Apply put in place and removes the state file. It is
// safe to call more than once (and without Apply); later calls return what
// the first returned. When the file backend finds that someone else
// replaced resolv.conf meanwhile, it leaves the file as it is and returns
// an error that matches ErrChanged: a warning, as nothing of the link's is
// left to undo.
func (s *Settings) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		if s.st == nil {
			return
		}
		s.closeErr = undoState(s.h, s.st)
		if s.closeErr == nil || errors.Is(s.closeErr, ErrChanged) {
			s.h.log.Info("undone", "link", s.cfg.Link, "dns", describe(s.st))
			s.st = nil
		}
	})
	return s.closeErr
}

// Backend is the backend Apply used, or "" when nothing is applied.
func (s *Settings) Backend() Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return ""
	}
	return s.st.Backend
}

// String describes the settings in one line, as status shows them:
// "dns 198.51.100.2 search example.org via systemd-resolved on ppp0".
// Before Apply, and after Close, it says "not applied".
func (s *Settings) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != nil {
		return describe(s.st)
	}
	if s.cfg.empty() {
		return ""
	}
	return describe(&state{Iface: s.cfg.Iface, Servers: s.cfg.Servers, Search: s.cfg.Search}) + " (not applied)"
}

// choose picks the backend, and for resolvconf the program to run.
func (h *host) choose(ctx context.Context) (Backend, string, error) {
	switch h.force {
	case BackendResolved, BackendFile:
		return h.force, "", nil
	case BackendResolvconf:
		p := findProgram(h.programs)
		if p == "" {
			return "", "", fmt.Errorf("DNS backend resolvconf: none of %q is an executable file", h.programs)
		}
		return h.force, p, nil
	}
	running, err := h.resolvedRunning(ctx)
	if err != nil {
		h.log.Debug("systemd-resolved not reachable", "err", err)
	}
	if running {
		return BackendResolved, "", nil
	}
	if p := findProgram(h.programs); p != "" {
		return BackendResolvconf, p, nil
	}
	return BackendFile, "", nil
}

// undoState undoes st through its backend and removes the state file once
// nothing of it is left in place (also when ErrChanged says that someone
// else took the file over).
func undoState(h *host, st *state) error {
	ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
	defer cancel()
	var err error
	switch st.Backend {
	case BackendResolved:
		err = undoResolved(ctx, h, st)
	case BackendResolvconf:
		err = undoResolvconf(ctx, h, st)
	case BackendFile:
		err = undoFile(h, st)
	default:
		err = fmt.Errorf("DNS settings of link %s: %w: backend %q", st.Link, ErrBadState, st.Backend)
	}
	if err != nil && !errors.Is(err, ErrChanged) {
		return err
	}
	if rerr := removeState(h.runDir, st.Link); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// rollback undoes st after the change it records failed. It returns st
// when the undo failed too, so that Close tries again, and nil otherwise.
func rollback(h *host, st *state, err error) (*state, error) {
	if uerr := undoState(h, st); uerr != nil && !errors.Is(uerr, ErrChanged) {
		return st, errors.Join(err, fmt.Errorf("undoing it: %w", uerr))
	}
	return nil, err
}
