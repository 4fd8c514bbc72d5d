package forward

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Kind is the direction of a forward.
type Kind int

const (
	Local   Kind = iota // listen here, connect from the server (-L)
	Remote              // listen on the server, connect from here (-R)
	Dynamic             // SOCKS here, connect from the server (-D)
)

// Key is the configuration key that holds forwards of the kind.
func (k Kind) Key() string {
	return [...]string{"LOCAL_FORWARDS", "REMOTE_FORWARDS", "DYNAMIC_FORWARDS"}[k]
}

// Endpoint is one end of a forward: a TCP host and port, or a Unix socket.
type Endpoint struct {
	Host string // TCP: "" for every address (OpenSSH's "*" or an empty bind address)
	Port int    // TCP
	Path string // a Unix socket when not ""
}

// Unix reports whether the endpoint is a Unix socket.
func (e Endpoint) Unix() bool { return e.Path != "" }

// String is the endpoint as an address: host:port or the socket's path.
func (e Endpoint) String() string {
	if e.Unix() {
		return e.Path
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// Spec is one forward.
type Spec struct {
	Kind Kind
	Bind Endpoint // where it listens
	To   Endpoint // where it connects; unused for Dynamic
	Text string   // as written
	// Loopback: no bind address was given, so it listens on loopback
	// only (here: 127.0.0.1 and ::1; on the server: sshd's choice, which
	// is loopback unless GatewayPorts says otherwise).
	Loopback bool
}

// String names the forward as the configuration does: KEY SPEC.
func (s Spec) String() string { return s.Kind.Key() + " " + s.Text }

// Parse reads the forwards of one key: OpenSSH's -L, -R or -D arguments,
// separated by white space.
func Parse(k Kind, v string) ([]Spec, error) {
	var out []Spec
	for _, f := range strings.Fields(v) {
		s, err := ParseOne(k, f)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseOne reads one forward in OpenSSH's syntax (its errors name the
// forward; the caller names the key):
//
//	-L, -R  [bind_address:]port:host:hostport   [bind_address:]port:socket
//	        socket:host:hostport                socket:socket
//	-D      [bind_address:]port
//
// An IPv6 address goes in brackets; a field with a '/' is a Unix socket;
// a bind address of "*" (or an empty one) means every address.
func ParseOne(k Kind, text string) (Spec, error) {
	s := Spec{Kind: k, Text: text}
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%q: %s", text, fmt.Sprintf(format, a...))
	}
	if len(text) > 1024 {
		return bad("too long")
	}
	for _, r := range text {
		if r <= ' ' || r == 0x7f {
			return bad("control characters and spaces are not allowed")
		}
	}
	f, err := fields(text)
	if err != nil {
		return bad("%v", err)
	}
	if k == Dynamic {
		switch len(f) {
		case 1:
			s.Loopback = true
			s.Bind.Port, err = port(f[0])
		case 2:
			s.Bind.Host = bindHost(f[0])
			if s.Bind.Host != "" && !validHost(s.Bind.Host) {
				return bad("%q is not a host name or address", s.Bind.Host)
			}
			s.Bind.Port, err = port(f[1])
		default:
			return bad("want [bind_address:]port")
		}
		if err != nil {
			return bad("%v", err)
		}
		if s.Bind.Port == 0 {
			return bad("port 0")
		}
		return s, nil
	}
	isPath := func(x string) bool { return strings.Contains(x, "/") }
	var listen, to []string
	switch len(f) {
	case 1:
		if k == Remote {
			return bad("a remote forward without a destination is a reverse SOCKS proxy, which this tool does not offer")
		}
		return bad("want [bind_address:]port:host:hostport")
	case 2: // port:socket or socket:socket
		if !isPath(f[1]) {
			return bad("want [bind_address:]port:host:hostport")
		}
		listen, to = f[:1], f[1:]
	case 3: // port:host:hostport, socket:host:hostport or bind:port:socket
		switch {
		case isPath(f[0]):
			listen, to = f[:1], f[1:]
		case isPath(f[2]):
			listen, to = f[:2], f[2:]
		default:
			listen, to = f[:1], f[1:]
		}
	case 4:
		listen, to = f[:2], f[2:]
	default:
		return bad("too many fields")
	}
	if s.Bind, s.Loopback, err = endpoint(listen, true); err != nil {
		return bad("listening side: %v", err)
	}
	if !s.Bind.Unix() && s.Bind.Port == 0 && k != Remote {
		return bad("port 0: only a remote forward lets the server choose its port")
	}
	if s.To, _, err = endpoint(to, false); err != nil {
		return bad("destination: %v", err)
	}
	return s, nil
}

// endpoint reads [host:]port, host:port or a socket path. bind: the host
// is a bind address, optional ("*" and "" for every address).
func endpoint(f []string, bind bool) (Endpoint, bool, error) {
	if len(f) == 1 && strings.Contains(f[0], "/") {
		p := f[0]
		if !strings.HasPrefix(p, "/") || len(p) > 107 {
			return Endpoint{}, false, fmt.Errorf("socket %q: give an absolute path of at most 107 bytes", p)
		}
		return Endpoint{Path: p}, false, nil
	}
	var e Endpoint
	var err error
	loopback := false
	switch {
	case len(f) == 1 && bind:
		loopback = true
		e.Port, err = port(f[0])
	case len(f) == 2:
		e.Host = f[0]
		if bind {
			e.Host = bindHost(f[0])
		} else if e.Host == "" {
			return Endpoint{}, false, fmt.Errorf("no host")
		}
		if e.Host != "" && !validHost(e.Host) {
			return Endpoint{}, false, fmt.Errorf("%q is not a host name or address", e.Host)
		}
		e.Port, err = port(f[1])
	default:
		return Endpoint{}, false, fmt.Errorf("want host:port or a socket path")
	}
	if err != nil {
		return Endpoint{}, false, err
	}
	if !bind && e.Port == 0 {
		return Endpoint{}, false, fmt.Errorf("port 0")
	}
	return e, loopback, nil
}

func bindHost(h string) string {
	if h == "*" {
		return ""
	}
	return h
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q is not a port (0-65535)", s)
	}
	return n, nil
}

// validHost accepts a host name or an IP address: letters, digits and
// ".-_:%" (a zone), nothing a resolver or a log would take for more.
func validHost(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '-' {
		return false
	}
	for _, r := range h {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_:%", r)) {
			return false
		}
	}
	return true
}

// fields splits a spec at the colons outside brackets, and takes the
// brackets off.
func fields(s string) ([]string, error) {
	var out []string
	for s != "" || len(out) == 0 {
		var f string
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("an unclosed '['")
			}
			f, s = s[1:end], s[end+1:]
			if s != "" && s[0] != ':' {
				return nil, fmt.Errorf("']' not followed by ':'")
			}
		} else {
			i := strings.IndexByte(s, ':')
			if i < 0 {
				i = len(s)
			}
			f, s = s[:i], s[i:]
		}
		out = append(out, f)
		if s == "" {
			break
		}
		s = s[1:] // the colon
		if s == "" {
			out = append(out, "")
		}
	}
	return out, nil
}
