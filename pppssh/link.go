package pppssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Info describes a link that is up.
type Info struct {
	Name    string     `json:"name"`
	Iface   string     `json:"iface"`
	Local   netip.Addr `json:"local"`
	Remote  netip.Addr `json:"remote"`
	Server  string     `json:"server"` // user@host:port
	PPPDPid int        `json:"pppd_pid"`
	TTY     string     `json:"tty"`
	Carrier netip.Addr `json:"carrier"` // the SSH server's address, as connected
	Since   time.Time  `json:"since"`
	Mode    string     `json:"mode"`
	// ServerIface is the server's interface, when the carrier knows it
	// (tun and ethernet modes).
	ServerIface string `json:"server_iface,omitempty"`
}

// HookTTY is what the ip-up and ip-down hooks get as pppd's tty argument:
// the pty in ppp mode, the tun driver in tun and ethernet modes.
func (i Info) HookTTY() string {
	if i.Mode != "" && i.Mode != ModePPP {
		return "/dev/net/tun"
	}
	return i.TTY
}

// HookSpeed is what the hooks get as pppd's speed argument: what pppd
// passes in ppp mode, 0 in tun and ethernet modes (a device has none).
func (i Info) HookSpeed() string {
	if i.Mode != "" && i.Mode != ModePPP {
		return "0"
	}
	return "38400"
}

// Options are the parts of a Link's environment that tests replace.
type Options struct {
	Logger *slog.Logger // default: slog.Default()
	Home   string       // for ~/.ssh; default: $HOME
	// Carrier makes the carrier of the tun and ethernet modes (package
	// tunnel, which imports this one); nil: only MODE=ppp is available.
	Carrier NewCarrier
}

// Link is one PPP-over-SSH link. See the package documentation for its
// lifecycle.
type Link struct {
	cfg    Config
	target Target
	home   string
	log    *slog.Logger

	pppd       *pppdProc
	carrier    Carrier // tun and ethernet modes, instead of pppd
	newCarrier NewCarrier
	client     *ssh.Client
	sess       *ssh.Session
	stderr     *tailWriter   // what the server printed on stderr
	sessEnd    chan struct{} // closed by the session's waiter, once it runs (waiting)
	sessErr    error
	waiting    bool // the session's waiter runs: sessEnd will be closed

	helperErr   atomic.Pointer[error] // the server helper's refusal or failure
	serverReady chan struct{}         // the server helper's side is in place
	readyOnce   sync.Once

	info    Info
	dead    chan error    // the keepalive gave up
	closing chan struct{} // closed when Close begins its teardown
	ended   atomic.Bool   // the link ended by itself: no peer is listening any more

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
		log:         opts.Logger.With("link", cfg.Name),
		stderr:      newTailWriter(opts.Logger.With("link", cfg.Name, "component", "server")),
		sessEnd:     make(chan struct{}),
		done:        make(chan struct{}),
		startDone:   make(chan struct{}),
		dead:        make(chan error, 1),
		closing:     make(chan struct{}),
		serverReady: make(chan struct{}),
	}
	l.stderr.onLine = l.serverLine
	return l, nil
}

// serverLine watches the server half's stderr for its verdict.
func (l *Link) serverLine(line string) {
	switch {
	case line == ServerReadyMarker:
		l.readyOnce.Do(func() { close(l.serverReady) })
	case strings.HasPrefix(line, ServerFailedMarker):
		err := fmt.Errorf("the server could not apply its side: %s", strings.TrimPrefix(line, ServerFailedMarker))
		l.helperErr.Store(&err)
		l.readyOnce.Do(func() { close(l.serverReady) })
	}
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

// Start brings the link up and returns once pppd reports IPCP up with the
// configured addresses, or fails within CONNECT_TIMEOUT. On failure,
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

type dialResult struct {
	client *ssh.Client
	err    error
}

func (l *Link) start(ctx context.Context) (Info, error) {
	// Local files first: a wrong key or known_hosts path fails before
	// anything is started.
	hk, err := loadHostKeys(l.cfg.SSHKnownHosts, l.home)
	if err != nil {
		return Info{}, err
	}
	keys, closeAgent, err := signers(l.target, l.home, l.log)
	if err != nil {
		return Info{}, err
	}
	if l.cfg.Mode != ModePPP && l.cfg.Mode != "" {
		return l.startCarrier(ctx, hk, keys, closeAgent)
	}
	// The SSH handshake is most of the start-up time; the local pppd starts
	// meanwhile and its first LCP request waits in the pty.
	begin := time.Now()
	dialed := make(chan dialResult, 1)
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()
	go func() {
		c, err := dial(dialCtx, l.target, hk, keys, l.log)
		closeAgent()
		dialed <- dialResult{c, err}
	}()
	l.pppd, err = startPPPD(l.cfg, l.log)
	l.log.Debug("local pppd started", "after", time.Since(begin))
	if err != nil {
		// No link without the local pppd: say so now, not after a login
		// that may take until CONNECT_TIMEOUT.
		cancelDial()
		if r := <-dialed; r.client != nil {
			r.client.Close()
		}
		return Info{}, err
	}
	r := <-dialed
	l.client = r.client
	if r.err != nil {
		return Info{}, r.err
	}
	loggedIn := time.Since(begin)
	l.log.Debug("logged in", "after", loggedIn)
	// Opening the session and starting the server's command wait for the
	// server's answers, which ctx does not bound: closing the connection
	// when ctx ends does. Only while they run (later waits select on ctx
	// and say why they gave up); the function is joined.
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		l.client.Close()
	})
	err = l.startSession(begin)
	if !stopUnblock() {
		<-unblocked
		return Info{}, fmt.Errorf("starting the server's side: %w", context.Cause(ctx))
	}
	if err != nil {
		return Info{}, err
	}
	select {
	case <-l.pppd.watch.up:
	case <-l.pppd.exited:
		return Info{}, l.pppdEndError()
	case <-l.sessEnd:
		return Info{}, l.sessionEndError()
	case <-ctx.Done():
		return Info{}, fmt.Errorf("%w (pppd said: %s)", context.Cause(ctx), l.pppd.watch.lastLines())
	}
	if l.cfg.ServerHelper != "" {
		// Up only once the server's routes and rules are in place too.
		select {
		case <-l.serverReady:
			if p := l.helperErr.Load(); p != nil {
				return Info{}, *p
			}
		case <-l.pppd.exited:
			return Info{}, l.pppdEndError()
		case <-l.sessEnd:
			return Info{}, l.sessionEndError()
		case <-ctx.Done():
			return Info{}, fmt.Errorf("%w (waiting for the server helper)", context.Cause(ctx))
		}
	}
	iface, local, remote := l.pppd.watch.result()
	if local != l.cfg.ClientIfAddr || remote != l.cfg.ServerIfAddr {
		return Info{}, fmt.Errorf("pppd negotiated %s -> %s instead of CLIENT_IFIPADDR %s -> SERVER_IFIPADDR %s (check the server's /etc/ppp/options)",
			local, remote, l.cfg.ClientIfAddr, l.cfg.ServerIfAddr)
	}
	if err := confirmInterface(iface, local, remote); err != nil {
		return Info{}, err
	}
	l.info = Info{
		Name: l.cfg.Name, Iface: iface, Local: local, Remote: remote,
		Server:  fmt.Sprintf("%s@%s", l.target.User, l.target.Addr()),
		PPPDPid: l.pppd.cmd.Process.Pid, Since: time.Now(), TTY: l.pppd.slave.Name(), Mode: ModePPP,
	}
	if ap, err := netip.ParseAddrPort(l.client.RemoteAddr().String()); err == nil {
		l.info.Carrier = ap.Addr().Unmap()
	}
	l.log.Info("link up", "iface", iface, "after", time.Since(begin).Round(time.Millisecond),
		"ssh_login", loggedIn.Round(time.Millisecond))
	l.goJoined(l.monitor)
	l.goJoined(l.keepalive)
	return l.info, nil
}

// startSession runs the server's pppd and joins it to the local pty: one
// copy each way, from the pty master to the session and back.
func (l *Link) startSession(begin time.Time) error {
	s, err := l.client.NewSession()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	l.sess = s
	stdin, err := s.StdinPipe()
	if err != nil {
		return fmt.Errorf("session stdin: %w", err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return fmt.Errorf("session stdout: %w", err)
	}
	s.Stderr = l.stderr
	cmd := l.cfg.remoteCommand()
	l.log.Debug("starting server pppd", "command", cmd)
	if err := s.Start(cmd); err != nil {
		return fmt.Errorf("starting %q on the server: %w", cmd, err)
	}
	l.log.Debug("server command started", "after", time.Since(begin))
	// The waiter first, so that whatever fails below, Close can wait for
	// the session's end.
	l.waiting = true
	l.goJoined(func() {
		l.sessErr = s.Wait()
		close(l.sessEnd)
	})
	if l.cfg.ServerHelper != "" {
		if err := WriteRequest(stdin, l.cfg.ServerRequest()); err != nil {
			return fmt.Errorf("sending the request to the server helper: %w", err)
		}
	}
	serverReady := make(chan struct{})
	// Pty to session. It returns when Close closes the pty master (the
	// master is non-blocking, so closing it ends a read in progress) or
	// the session will take no more.
	l.goJoined(func() {
		// The server's pppd speaks first (its LCP Configure-Request) once
		// it is ready; only then do our buffered frames follow, so that
		// none is lost while it sets up its line (and none waits out the
		// 3 s LCP restart timer). A server told to stay silent gets our
		// frames after a second anyway.
		select {
		case <-serverReady:
		case <-time.After(time.Second):
		case <-l.sessEnd:
		}
		io.Copy(stdin, l.pppd.master)
		stdin.Close()
	})
	// Session to pty. It returns when the session's stdout ends (Close
	// closes the session and then the connection) or the pty is closed.
	l.goJoined(func() {
		br := bufio.NewReaderSize(stdout, 32*1024)
		if l.cfg.ServerHelper != "" {
			if err := readReply(br); err != nil {
				if !errors.Is(err, errNoAnswer) {
					l.helperErr.Store(&err)
				}
				s.Close()
				return
			}
		}
		buf := make([]byte, 32*1024)
		n, err := br.Read(buf)
		if n > 0 {
			_, err = l.pppd.master.Write(buf[:n])
		}
		close(serverReady)
		l.log.Debug("server pppd speaks", "after", time.Since(begin))
		if err == nil {
			io.CopyBuffer(l.pppd.master, br, buf)
		}
	})
	return nil
}

// goJoined runs f in a goroutine that Close waits for.
func (l *Link) goJoined(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// pppdEndError says why the local pppd ended; pppd's *exec.ExitError stays
// reachable with errors.As.
func (l *Link) pppdEndError() error {
	msg := fmt.Sprintf("local pppd ended: %s (pppd said: %s)", l.pppd.exitReason(), l.pppd.watch.lastLines())
	if s := l.stderr.String(); s != "" {
		msg += "; the server said: " + s
	}
	return &causedError{msg: msg, cause: l.pppd.err}
}

// sessionEndError says why the session ended. The server command's
// *ssh.ExitError (or *ssh.ExitMissingError) stays reachable with errors.As.
func (l *Link) sessionEndError() error {
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	msg := l.stderr.String()
	if p := l.helperErr.Load(); p != nil {
		return *p
	}
	switch {
	case errors.As(l.sessErr, &exit) && msg != "":
		return &causedError{cause: l.sessErr,
			msg: fmt.Sprintf("server command %q exited with status %d: %s", l.cfg.remoteCommand(), exit.ExitStatus(), msg)}
	case errors.As(l.sessErr, &exit):
		return &causedError{cause: l.sessErr,
			msg: fmt.Sprintf("server command %q exited with status %d", l.cfg.remoteCommand(), exit.ExitStatus())}
	case errors.As(l.sessErr, &missing), l.sessErr == nil:
		return &causedError{cause: l.sessErr, msg: fmt.Sprintf("the server closed the session (%s)", orNothing(msg))}
	default:
		return fmt.Errorf("SSH session lost: %w", l.sessErr)
	}
}

// causedError is a message in our words over a typed cause whose own text
// would only repeat it ("Process exited with status 1"): errors.Is and
// errors.As see the cause, the message says it once.
type causedError struct {
	msg   string
	cause error
}

func (e *causedError) Error() string { return e.msg }
func (e *causedError) Unwrap() error { return e.cause }

func orNothing(s string) string {
	if s == "" {
		return "it printed nothing"
	}
	return "it said: " + s
}

func (l *Link) sessionLive() bool {
	if l.sess == nil || !l.waiting {
		return false
	}
	select {
	case <-l.sessEnd:
		return false
	default:
		return true
	}
}
