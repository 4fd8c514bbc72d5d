package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Set is the running forwards of one SSH connection.
type Set struct {
	client *ssh.Client
	log    *slog.Logger
	ctx    context.Context // ends with Close: dials in progress give up
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners []listener
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start binds the listener of every spec (locally, or on the server for
// remote forwards) and serves them until Close. When one cannot be bound
// none is left: the error names that forward.
func Start(client *ssh.Client, specs []Spec, log *slog.Logger) (*Set, error) {
	s := &Set{client: client, log: log, conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, sp := range specs {
		ls, err := s.listen(sp)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: %w", sp, err)
		}
		for _, l := range ls {
			s.listeners = append(s.listeners, listener{sp, l})
			s.wg.Add(1)
			go s.serve(sp, l)
		}
		log.Debug("forwarding", "forward", sp.String())
	}
	return s, nil
}

// listen makes the spec's listeners: one, or two for a local loopback
// bind (127.0.0.1 and ::1, as OpenSSH does; ::1 only where the host has
// IPv6).
func (s *Set) listen(sp Spec) ([]net.Listener, error) {
	if sp.Kind == Remote {
		l, err := s.listenRemote(sp)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	}
	if sp.Bind.Unix() {
		l, err := listenUnix(sp.Bind.Path)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	}
	p := strconv.Itoa(sp.Bind.Port)
	if !sp.Loopback {
		l, err := net.Listen("tcp", net.JoinHostPort(sp.Bind.Host, p))
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	}
	l4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", p))
	if err != nil {
		return nil, err
	}
	if sp.Bind.Port == 0 {
		return []net.Listener{l4}, nil // two random ports would be two forwards
	}
	l6, err := net.Listen("tcp", net.JoinHostPort("::1", p))
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
			return []net.Listener{l4}, nil
		}
		l4.Close()
		return nil, err
	}
	return []net.Listener{l4, l6}, nil
}

// listenUnix listens on a socket path; a socket left there by a process
// that is gone (nothing accepts on it) is replaced, anything else is not.
func listenUnix(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return l, err
	}
	if fi, serr := os.Lstat(path); serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err
	}
	if c, derr := net.Dial("unix", path); derr == nil {
		c.Close()
		return nil, err // someone listens there
	}
	os.Remove(path)
	return net.Listen("unix", path)
}

// listenRemote asks the server to listen: tcpip-forward, or
// streamlocal-forward@openssh.com for a socket. The bind address goes as
// OpenSSH's client sends it: "localhost" when none was given (sshd then
// listens on its loopback addresses), "" for every address, and a name
// unresolved, for the server to resolve.
func (s *Set) listenRemote(sp Spec) (net.Listener, error) {
	var l net.Listener
	var err error
	where := sp.Bind.String()
	if sp.Bind.Unix() {
		l, err = s.client.ListenUnix(sp.Bind.Path)
	} else {
		host := sp.Bind.Host
		if sp.Loopback {
			host = "localhost"
		}
		where = net.JoinHostPort(host, strconv.Itoa(sp.Bind.Port))
		l, err = s.client.Listen("tcp", where)
	}
	if err != nil && strings.Contains(err.Error(), "request denied by peer") {
		// x/crypto/ssh says only this when the server answers
		// SSH_MSG_REQUEST_FAILURE: the reason is sshd's to log.
		return nil, fmt.Errorf("the server refused to listen on %s (sshd_config: AllowTcpForwarding, AllowStreamLocalForwarding, GatewayPorts or PermitListen; authorized_keys: restrict without port-forwarding; or the port is taken there): %w", where, err)
	}
	return l, err
}

// serve accepts on l until it is closed.
func (s *Set) serve(sp Spec, l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			// Out of descriptors or memory, say: the forward stays,
			// and tries again shortly.
			s.log.Warn("forward could not accept a connection", "forward", sp.String(), "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !s.track(c) {
			// Close has begun. Go on accepting (and closing) until it
			// closes the listener: a remote listener that nobody takes
			// from would block x/crypto/ssh's handling of the whole
			// connection, and with it that Close.
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(sp, c)
		}()
	}
}

// handle connects one accepted connection to its destination.
func (s *Set) handle(sp Spec, c net.Conn) {
	var to net.Conn
	var err error
	switch sp.Kind {
	case Local:
		to, err = s.client.DialContext(s.ctx, network(sp.To), sp.To.String())
	case Remote:
		var d net.Dialer
		to, err = d.DialContext(s.ctx, network(sp.To), sp.To.String())
	case Dynamic:
		to, err = socks(c, func(addr string) (net.Conn, error) { return s.client.DialContext(s.ctx, "tcp", addr) })
	}
	if err != nil {
		s.log.Info("forwarded connection failed", "forward", sp.String(), "from", c.RemoteAddr().String(), "err", err)
		return
	}
	if !s.track(to) {
		to.Close()
		return
	}
	defer s.untrack(to)
	splice(c, to)
}

func network(e Endpoint) string {
	if e.Unix() {
		return "unix"
	}
	return "tcp"
}

func (s *Set) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records a connection for Close; false when Close has begun.
func (s *Set) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Set) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close closes the listeners (a remote one is cancelled on the server),
// then every forwarded connection, and waits for the Set's goroutines.
// Safe to call more than once.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		s.cancel()
		for _, l := range s.listeners {
			l.Close()
		}
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
	})
	return nil
}

// listener is one listening socket of a forward.
type listener struct {
	spec Spec
	net.Listener
}

// Listening describes what the set listens on, one line per listener, for
// status: "LOCAL_FORWARDS 8080:intranet:80 on 127.0.0.1:8080" (for a
// remote forward, the address asked of the server).
func (s *Set) Listening() []string {
	var out []string
	for _, l := range s.listeners {
		where := l.Addr().String()
		if l.spec.Kind == Remote {
			// x/crypto/ssh's Addr has the port the server chose (for
			// port 0), but not a host it was given by name.
			where = "the server's " + l.spec.Bind.Path
			if a, ok := l.Addr().(*net.TCPAddr); ok {
				host := l.spec.Bind.Host
				switch {
				case l.spec.Loopback:
					host = "localhost"
				case host == "":
					host = "*"
				}
				where = "the server's " + net.JoinHostPort(host, strconv.Itoa(a.Port))
			}
		}
		out = append(out, l.spec.String()+" on "+where)
	}
	return out
}
