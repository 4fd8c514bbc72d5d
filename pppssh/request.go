package pppssh

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/pollfd"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/internal/version"
)

// Request is what the client asks of the server half (`vpn-pppssh serve`,
// run through sudo as SERVER_HELPER). It travels as one JSON line on the
// session's stdin before any PPP frame, and is validated on arrival: the
// server never receives pppd options or shell text, only these fields.
type Request struct {
	Version    int            `json:"v"`
	Link       string         `json:"link"`
	IPParam    string         `json:"ipparam"`
	Local      netip.Addr     `json:"local"` // the server's end of the link
	Peer       netip.Addr     `json:"peer"`  // the client's end
	Routes     []netip.Prefix `json:"routes,omitempty"`
	Forward    bool           `json:"forward,omitempty"`
	Masquerade bool           `json:"masquerade,omitempty"`
	Keepalive  int            `json:"keepalive,omitempty"` // seconds; a wish only: the server clamps it (ServerPPPDArgs)
	// IPv6, when the link carries it: the server's and the client's
	// addresses, as Local and Peer (Bits6: ethernet's prefix length).
	// Routes may then hold IPv6 networks too.
	Local6 netip.Addr `json:"local6,omitzero"`
	Peer6  netip.Addr `json:"peer6,omitzero"`
	Bits6  int        `json:"bits6,omitempty"`
	// Forward6 is Forward for IPv6: the client reaches IPv6 networks
	// behind the server (IPv6 SERVER_NETWORKS, DEFAULT_ROUTE).
	Forward6 bool `json:"forward6,omitempty"`

	// The tun and ethernet modes (empty Mode: ppp, as older clients send).
	Mode   string `json:"mode,omitempty"`
	MTU    int    `json:"mtu,omitempty"`    // the server's device; 0: the kernel's
	Bits   int    `json:"bits,omitempty"`   // ethernet: the shared subnet's prefix length
	Bridge string `json:"bridge,omitempty"` // ethernet: the server's tap joins this bridge (ALLOW_BRIDGES)
	// Offload: packets travel with a virtio-net header in Wide framing,
	// and the server's device offloads (tunnel/device, Config.Offload).
	Offload bool `json:"offload,omitempty"`

	// TTY, in mode ppp, is the token of the terminal session the client
	// opens beside this one (SERVER_PTY): the server's pppd speaks PPP on
	// that terminal, which the helper run in it hands over (serve.Attach).
	// 32 lowercase hex digits, random per dial.
	TTY string `json:"tty,omitempty"`
}

// EffectiveMode is the request's mode, ppp when it names none.
func (r Request) EffectiveMode() string {
	if r.Mode == "" {
		return ModePPP
	}
	return r.Mode
}

// LocalPrefix is the server's address as its device gets it (the zero
// Prefix for a bridge port without one).
func (r Request) LocalPrefix() netip.Prefix {
	if !r.Local.IsValid() {
		return netip.Prefix{}
	}
	if r.EffectiveMode() == ModeEthernet {
		return netip.PrefixFrom(r.Local, r.Bits)
	}
	return netip.PrefixFrom(r.Local, 32)
}

// LocalPrefix6 is the server's IPv6 address as its device gets it (the
// zero Prefix without one).
func (r Request) LocalPrefix6() netip.Prefix {
	if !r.Local6.IsValid() {
		return netip.Prefix{}
	}
	if r.EffectiveMode() == ModeEthernet {
		return netip.PrefixFrom(r.Local6, r.Bits6)
	}
	return netip.PrefixFrom(r.Local6, 128)
}

// CarriesIPv6 reports whether the link carries IPv6.
func (r Request) CarriesIPv6() bool { return r.Peer6.IsValid() }

// Claims are the addresses and networks the request takes on the server:
// both ends' addresses as host prefixes, in ethernet mode the subnets the
// server's device gets a route for, and the routed networks.
func (r Request) Claims() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range []netip.Addr{r.Local, r.Peer, r.Local6, r.Peer6} {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if r.EffectiveMode() == ModeEthernet {
		for _, p := range []netip.Prefix{r.LocalPrefix(), r.LocalPrefix6()} {
			if p.IsValid() {
				out = append(out, p.Masked())
			}
		}
	}
	return append(out, r.Routes...)
}

// NeedsForwarding reports whether serving the request turns on forwarding
// on the server, of either family: routes to the client's networks,
// forwarding asked for, and masquerade (which only matters for forwarded
// packets) all do. The policy check asks this method and the server's
// routing the two below, which it is made of, so they cannot disagree on
// what a request implies.
func (r Request) NeedsForwarding() bool { return r.NeedsForwarding4() || r.NeedsForwarding6() }

// NeedsForwarding4 reports whether the request needs IPv4 forwarding.
func (r Request) NeedsForwarding4() bool {
	return r.Forward || r.Masquerade || slices.ContainsFunc(r.Routes, func(p netip.Prefix) bool { return p.Addr().Is4() })
}

// NeedsForwarding6 reports whether the request needs IPv6 forwarding,
// which has a cost of its own on the server (no more router
// advertisements taken on any interface), so only a link that carries
// IPv6 and routes it beyond its two ends turns it on.
func (r Request) NeedsForwarding6() bool {
	return r.CarriesIPv6() && (r.Forward6 || r.Masquerade || slices.ContainsFunc(r.Routes, func(p netip.Prefix) bool { return p.Addr().Is6() }))
}

// RequestVersion is the protocol version this build speaks.
const RequestVersion = 1

// Reply prefixes of the server half's one-line answer on stdout.
const (
	replyOK    = "vpn-pppssh-serve ok"
	replyError = "vpn-pppssh-serve error: "
)

// Markers the server half prints on stderr, alone on a line, once its side
// of a link is in place or has failed; the client's start waits for one.
const (
	ServerReadyMarker  = "vpn-pppssh-serve: ready"
	ServerFailedMarker = "vpn-pppssh-serve: failed: "
	// ServerDeviceMarker names the server's tun or tap device (tun and
	// ethernet modes), before ServerReadyMarker. A client that does not
	// know it logs it as any other line.
	ServerDeviceMarker = "vpn-pppssh-serve: device "
	// ServerAttachedMarker says that the client's terminal (SERVER_PTY)
	// is in the helper's hands and its pppd about to start on it: the
	// client's wait for the server's pppd to speak first counts from
	// there.
	ServerAttachedMarker = "vpn-pppssh-serve: attached"
	// ServerRestartMarker says that the server's pppd was killed and is
	// being started again on the client's terminal: the client's pppd is
	// about to renegotiate, and a ServerReadyMarker or ServerFailedMarker
	// follows for the new pppd. A client that does not know it logs it,
	// and its pppd's renegotiation ends its link as before.
	ServerRestartMarker = "vpn-pppssh-serve: restarting pppd"
)

// maxRequest bounds a request line.
const maxRequest = 16 << 10

// maxReply bounds the server half's answer line as the client reads it: a
// hostile server must not make the client allocate without limit.
const maxReply = 4 << 10

// ServerRequest is the request for this configuration: the server routes
// CLIENT_NETWORKS back, forwards when the client reaches networks behind it
// (SERVER_NETWORKS, DEFAULT_ROUTE) and masquerades when asked.
func (c *Config) ServerRequest() Request {
	r := Request{
		Version: RequestVersion, Link: c.Name, IPParam: c.IPParam,
		Local: c.ServerIfAddr, Peer: c.ClientIfAddr,
		Routes:     c.ClientNetworks,
		Forward:    slices.ContainsFunc(c.ServerNetworks, func(p netip.Prefix) bool { return p.Addr().Is4() }) || c.DefaultRoute || c.ServerMasquerade,
		Masquerade: c.ServerMasquerade,
		Keepalive:  int(c.Keepalive / time.Second),
		Local6:     c.ServerIf6Addr, Peer6: c.ClientIf6Addr,
	}
	if c.CarriesIPv6() {
		r.Forward6 = c.DefaultRoute || slices.ContainsFunc(c.ServerNetworks, func(p netip.Prefix) bool { return p.Addr().Is6() })
	}
	if c.Mode != ModePPP {
		r.Mode, r.MTU, r.Offload = c.Mode, c.MTU, c.Offload
	}
	if c.Mode == ModeEthernet {
		r.Bits, r.Bridge = c.ethernetBits(), c.ServerBridge
		if c.CarriesIPv6() {
			r.Bits6 = c.ethernet6Bits()
		}
	}
	return r
}

// helperCommand runs the server half instead of bare pppd. It takes no
// options: which pppd it runs is the server's choice (PPPD in its policy
// file), never the client's, so that sudoers can allow exactly
// "SERVER_HELPER serve" and nothing else.
func (c *Config) helperCommand() string {
	return shellJoin([]string{"sudo", "-n", c.ServerHelper, "serve"})
}

// remoteCommand is what the SSH session runs.
func (c *Config) remoteCommand() string {
	if c.ServerHelper != "" {
		return c.helperCommand()
	}
	return c.ServerCommand()
}

// Validate checks every field as the server half must before acting on it.
func (r Request) Validate() error {
	switch {
	case r.Version != RequestVersion:
		return fmt.Errorf("request version %d, this server (vpn-pppssh %s) speaks %d: update vpn-pppssh on one side", r.Version, version.String(), RequestVersion)
	case !validName(r.Link):
		return fmt.Errorf("bad link name %q", r.Link)
	case !validWord(r.IPParam):
		return fmt.Errorf("bad ipparam %q", r.IPParam)
	}
	if err := r.validateMode(); err != nil {
		return err
	}
	var a Config
	for _, addr := range []netip.Addr{r.Local, r.Peer} {
		if !addr.IsValid() && addr == r.Local && r.Bridge != "" {
			continue // a bridge port: the bridge has the server's address
		}
		if err := setAddr(&a.ClientIfAddr, addr.String()); err != nil {
			return fmt.Errorf("address: %w", err)
		}
	}
	if r.Local == r.Peer {
		return errors.New("the two ends have the same address")
	}
	if r.Keepalive < 0 || r.Keepalive > 3600 {
		return fmt.Errorf("bad keepalive %d", r.Keepalive)
	}
	if len(r.Routes) > 64 {
		return errors.New("too many routes")
	}
	for _, p := range r.Routes {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" || p != p.Masked() || p.Addr().Is6() && !r.CarriesIPv6() {
			return fmt.Errorf("bad network %s", p)
		}
	}
	return r.validateIPv6()
}

// validateIPv6 checks the IPv6 addresses: none, or a pair of global or
// unique local addresses (the server's may be missing on a bridge port).
func (r Request) validateIPv6() error {
	if !r.Local6.IsValid() && !r.Peer6.IsValid() {
		if r.Bits6 != 0 || r.Forward6 {
			return errors.New("bits6 or forward6 without IPv6 addresses")
		}
		return nil
	}
	var a netip.Addr
	for _, addr := range []netip.Addr{r.Local6, r.Peer6} {
		if !addr.IsValid() && addr == r.Local6 && r.Bridge != "" {
			continue
		}
		if err := setAddr6(&a, addr.String()); err != nil {
			return fmt.Errorf("IPv6 address: %w", err)
		}
	}
	if r.Local6 == r.Peer6 {
		return errors.New("the two ends have the same IPv6 address")
	}
	if r.EffectiveMode() != ModeEthernet {
		if r.Bits6 != 0 {
			return errors.New("bits6 is for mode ethernet")
		}
		return nil
	}
	if r.Bits6 < 8 || r.Bits6 > 126 {
		return fmt.Errorf("bad IPv6 prefix length %d", r.Bits6)
	}
	if r.Local6.IsValid() && !r.LocalPrefix6().Contains(r.Peer6) {
		return errors.New("the two ends' IPv6 addresses are not in one subnet")
	}
	return nil
}

// validateMode checks the tun and ethernet fields.
func (r Request) validateMode() error {
	switch r.Mode {
	case "", ModePPP, ModeTUN, ModeEthernet:
	default:
		return fmt.Errorf("bad mode %q", safetextShort(r.Mode))
	}
	if r.MTU != 0 && (r.EffectiveMode() == ModePPP || r.MTU < 68 || r.MTU > 65000) {
		return fmt.Errorf("bad mtu %d", r.MTU)
	}
	if r.Offload && r.EffectiveMode() == ModePPP {
		return errors.New("offload is for modes tun and ethernet")
	}
	if r.TTY != "" && (r.EffectiveMode() != ModePPP || !ValidTTYToken(r.TTY)) {
		return fmt.Errorf("bad tty token %q (mode ppp only, 32 lowercase hex digits)", safetextShort(r.TTY))
	}
	if r.EffectiveMode() != ModeEthernet {
		if r.Bits != 0 || r.Bridge != "" {
			return errors.New("bits and bridge are for mode ethernet")
		}
		return nil
	}
	if r.Bits < 8 || r.Bits > 30 {
		return fmt.Errorf("bad prefix length %d", r.Bits)
	}
	var name string
	if err := setIfName(&name, r.Bridge); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if r.Local.IsValid() && !r.LocalPrefix().Contains(r.Peer) {
		return errors.New("the two ends are not in one subnet")
	}
	return nil
}

func safetextShort(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return safetext.Escape(s)
}

// WriteRequest sends the request line.
func WriteRequest(w io.Writer, r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadRequest reads and validates one request line, byte by byte: what
// follows on the stream is PPP, and belongs to pppd.
func ReadRequest(r io.Reader) (Request, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return Request{}, fmt.Errorf("reading request: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		if len(line) >= maxRequest {
			return Request{}, errors.New("request too long")
		}
		line = append(line, b[0])
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("malformed request: %w", err)
	}
	return req, req.Validate()
}

// ErrRequestTimeout is returned by ReadRequestWithin when no complete
// request arrived in time.
var ErrRequestTimeout = errors.New("no request arrived in time")

// ReadRequestWithin is ReadRequest on the session's stdin with a time
// limit, so that a session that never sends its request does not hold a
// root process. sshd hands the helper a pipe or a socket, which Go cannot
// put a deadline on as it is (os.Stdin is not in the poller): the
// descriptor is duplicated non-blocking for the read (pollfd.Dup), which
// makes SetReadDeadline work, and set blocking again before pppd inherits it.
// Where the descriptor cannot be polled at all, a timer gives up on the
// read instead; the reading goroutine then stays blocked until the caller
// exits, which the server half does at once.
func ReadRequestWithin(f *os.File, limit time.Duration) (Request, error) {
	polled, restore, err := pollfd.Dup(f)
	if err != nil {
		return readWithTimer(f, limit)
	}
	defer restore()
	if err := polled.SetReadDeadline(time.Now().Add(limit)); err != nil {
		return Request{}, err
	}
	req, err := ReadRequest(polled)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return Request{}, fmt.Errorf("%w: none within %v", ErrRequestTimeout, limit)
	}
	return req, err
}

// readWithTimer is ReadRequest given up on after limit.
func readWithTimer(r io.Reader, limit time.Duration) (Request, error) {
	type result struct {
		req Request
		err error
	}
	got := make(chan result, 1)
	go func() {
		req, err := ReadRequest(r)
		got <- result{req, err}
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case res := <-got:
		return res.req, res.err
	case <-t.C:
		return Request{}, fmt.Errorf("%w: none within %v", ErrRequestTimeout, limit)
	}
}

// WriteReply answers a request: err nil means accepted.
func WriteReply(w io.Writer, err error) error {
	line := replyOK
	if err != nil {
		line = replyError + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	_, werr := io.WriteString(w, line+"\n")
	return werr
}

// errNoAnswer: the session ended before the server half answered (sudo
// refused it, or it is not installed); what the server printed on stderr
// says why, and the session's end reports it.
var errNoAnswer = errors.New("no answer from the server helper")

// readReply reads the server half's answer; br keeps what follows it. The
// line is read byte by byte up to maxReply (bufio buffers the reads), so
// neither a huge line nor PPP frames after the answer are taken, and the
// refusal text, which the server wrote, is escaped before it becomes part
// of an error that root's terminal shows.
func readReply(br *bufio.Reader) error {
	var line []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		if c == '\n' {
			break
		}
		if len(line) >= maxReply {
			return fmt.Errorf("the server helper's answer is longer than %d bytes: %q", maxReply, clip(string(line)))
		}
		line = append(line, c)
	}
	s := string(line)
	switch {
	case s == replyOK:
		return nil
	case strings.HasPrefix(s, replyError):
		return fmt.Errorf("the server refused: %s (this client is vpn-pppssh %s)", safetext.Escape(strings.TrimPrefix(s, replyError)), version.String())
	default:
		return fmt.Errorf("unexpected answer from the server helper: %q", clip(s))
	}
}
