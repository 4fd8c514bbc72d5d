package pppssh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/forward"
	"golang.org/x/crypto/ssh"
)

// Info describes a link that is up: the carrier's report (mode, interface,
// addresses, the process carrying it, what the hooks get as tty and speed)
// and the SSH side.
type Info struct {
	Name string `json:"name"`
	CarrierInfo
	Server     string     `json:"server"`      // user@host:port
	ServerAddr netip.Addr `json:"server_addr"` // the SSH server's address, as connected
	// Via is this host's address that the SSH connection leaves from
	// (to the first jump host, if any); invalid through a proxy command.
	Via netip.Addr `json:"via"`
	// Forwards are the port forwards listening, one line each.
	Forwards []string  `json:"forwards,omitempty"`
	Since    time.Time `json:"since"`
}

// Options are the parts of a Link's environment that tests replace.
type Options struct {
	Logger *slog.Logger // default: slog.Default()
	Home   string       // for ~/.ssh; default: $HOME
	// Carrier makes the carrier of the tun and ethernet modes (package
	// tunnel, which imports this one); nil: only MODE=ppp is available.
	Carrier NewCarrier
	// Client is an SSH connection to the link's server to start on,
	// instead of dialling and logging in: the one Detach took from this
	// link's previous run. The Link owns it from New on (Close closes it).
	Client *ssh.Client
}

// Link is one link over SSH, whatever its carrier. See the package
// documentation for its lifecycle.
type Link struct {
	cfg    Config
	target Target
	home   string
	log    *slog.Logger

	carrier    Carrier    // made by start: pppCarrier, or newCarrier's
	newCarrier NewCarrier // tun and ethernet modes
	client     *ssh.Client
	reused     bool         // client came from Options.Client: no dial
	forwards   *forward.Set // the port forwards, once up

	// Handing the connection over (detach.go).
	handMu     sync.Mutex    // held by Detach and by Close's teardown: one at a time
	sshDied    atomic.Bool   // the keepalive gave up: nothing to hand over
	detached   atomic.Bool   // Detach took client: teardown leaves it open
	giveUp     chan struct{} // CloseContext's ctx ended: stop waiting to keep client
	giveUpOnce sync.Once
	kaStop     chan struct{} // closed by Detach: the keepalive sends no more
	kaStopOnce sync.Once     // a Detach whose probe failed may be called again
	kaStopped  chan struct{} // closed when the keepalive loop has returned

	info    Info
	dead    chan error    // the keepalive gave up
	closing chan struct{} // closed when Close begins its teardown

	// done is closed once, by finish, when the link has ended: by itself
	// (monitor), because Start failed, or by Close. endErr says why.
	done     chan struct{}
	doneOnce sync.Once
	endErr   error

	mu          sync.Mutex // guards started, closed and cancelStart
	started     bool
	closed      bool
	cancelStart context.CancelCauseFunc // ends a Start in progress
	startDone   chan struct{}           // closed when Start's work has returned

	wg        sync.WaitGroup // every goroutine the link starts; Close joins them
	closeOnce sync.Once
	closeErr  error
}

// ErrClosed is what Wait returns once Close has ended the link, and what
// Start returns when Close came first (or ran during Start).
var ErrClosed = errors.New("link closed")

// New validates cfg and resolves the server through ~/.ssh/config. It
// changes nothing on the host.
func New(cfg Config, opts Options) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode != ModePPP && cfg.Mode != "" && opts.Carrier == nil {
		return nil, fmt.Errorf("MODE=%s is not available in this build", cfg.Mode)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Home == "" {
		opts.Home = HomeDir()
	}
	t, err := cfg.ResolveTarget(opts.Home)
	if err != nil {
		return nil, err
	}
	l := &Link{
		cfg: cfg, target: t, home: opts.Home, newCarrier: opts.Carrier,
		log:       opts.Logger.With("link", cfg.Name),
		done:      make(chan struct{}),
		startDone: make(chan struct{}),
		dead:      make(chan error, 1),
		closing:   make(chan struct{}),
		giveUp:    make(chan struct{}),
		kaStop:    make(chan struct{}),
		kaStopped: make(chan struct{}),
	}
	if opts.Client != nil {
		l.client, l.reused = opts.Client, true
	}
	return l, nil
}

// HomeDir is where ~/.ssh is: the home directory in the password database,
// as OpenSSH has it (init scripts, cron and pppd's hooks often run without
// $HOME), else $HOME.
func HomeDir() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return os.Getenv("HOME")
}

// Target is the resolved SSH destination.
func (l *Link) Target() Target { return l.target }

// Start brings the link up and returns once the carrier reports the local
// interface up with the configured addresses (PPP: pppd reports IPCP up),
// or fails within CONNECT_TIMEOUT. On failure,
// everything Start began has been undone when it returns, and Wait returns
// the same error. A link starts once: Start after Start fails, and Start
// after Close returns ErrClosed; a Close during Start makes Start give up
// with ErrClosed.
func (l *Link) Start(ctx context.Context) (Info, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, l.cfg.ConnectTimeout,
		fmt.Errorf("link not up within CONNECT_TIMEOUT (%v)", l.cfg.ConnectTimeout))
	defer cancel()
	ctx, cancelStart := context.WithCancelCause(ctx)
	defer cancelStart(nil)
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return Info{}, fmt.Errorf("link %s: %w", l.cfg.Name, ErrClosed)
	case l.started:
		l.mu.Unlock()
		return Info{}, fmt.Errorf("link %s: already started", l.cfg.Name)
	}
	l.started, l.cancelStart = true, cancelStart
	l.mu.Unlock()

	info, err := l.start(ctx)
	close(l.startDone)
	if err == nil {
		return info, nil
	}
	if errors.Is(context.Cause(ctx), ErrClosed) {
		err = ErrClosed // Close asked: whatever broke on the way is its doing
	}
	err = fmt.Errorf("link %s: %w", l.cfg.Name, err)
	if cerr := l.closeWith(err); cerr != nil {
		err = fmt.Errorf("%w (and undoing the start: %w)", err, cerr)
	}
	return Info{}, err
}
