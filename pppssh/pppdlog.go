package pppssh

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pppdWatcher reads the local pppd's log lines (pppd(8) logs to stdout when
// started with nodetach) and extracts the interface name and the negotiated
// addresses. pppd prints "remote IP address" last, once IPCP is up and the
// interface has its addresses, so that line marks IPv4 as up; with IPv6
// (want6), "remote LL address" marks IPV6CP up the same way, and the link
// is up once both are.
type pppdWatcher struct {
	mu     sync.Mutex
	iface  string
	local  netip.Addr
	remote netip.Addr
	tail   []string // last lines, for error messages
	up     chan struct{}
	upOnce sync.Once

	// wantDNS (usepeerdns, DNS=peer): pppd prints the name servers the
	// peer offered right after the remote address, in the same breath,
	// so they are in at the secondary's line, at the next other line,
	// or dnsGrace after the remote address, whichever comes first.
	wantDNS bool
	addrsUp bool          // IPCP is up
	ipcp    chan struct{} // closed when addrsUp is first set
	dnsDone bool
	dns     []netip.Addr

	want6           bool // +ipv6: wait for IPV6CP too
	local6, remote6 netip.Addr
	ipv6Up          bool

	// again is closed when IPCP or IPV6CP comes up a second time (the
	// peer renegotiated): pppd took the interface down meanwhile, and
	// the kernel deleted the link's routes and addresses with it. The
	// server's watcher (no renews) closes it at any second IPCP or
	// IPV6CP up; the client's only where no statistics line came first,
	// and follows the rounds instead (ups, live, changed).
	again     chan struct{}
	againOnce sync.Once

	// The link in place (the client's watcher, renews): once up, it may
	// go down and come back without pppd ending, when the peer restarts
	// LCP (the server helper restarted its pppd on the same line). A
	// lapse is IPCP down, or a second IPCP up without one. changed is
	// closed (and replaced) at each lapse and each time the link is
	// whole again.
	renews   bool // follow lapses and renewals; else a second up only closes again
	live     bool // declared up, and not down since
	ups      int  // times declared up
	round    int  // lapses so far: a DNS timer of an earlier round is stale
	changed  chan struct{}
	ipcpOnce sync.Once
}

// lapseMarker begins the line pppd logs with the link's statistics as IPCP
// goes down (pppd's print_link_stats, "Connect time 0.4 minutes."): when
// the peer restarted LCP, at its end, and on a Terminate-Request.
const lapseMarker = "Connect time "

// dnsGrace bounds the wait for the name server lines that follow the
// remote address (they are written within microseconds of it).
const dnsGrace = time.Second

const tailLines = 8

func newPPPDWatcher() *pppdWatcher {
	return &pppdWatcher{up: make(chan struct{}), again: make(chan struct{}), ipcp: make(chan struct{}),
		changed: make(chan struct{})}
}

// line takes one log line and reports whether it completed the link.
func (w *pppdWatcher) line(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[1:]
	}
	switch {
	case strings.HasPrefix(s, "Using interface "):
		w.iface = strings.TrimSpace(strings.TrimPrefix(s, "Using interface "))
	case strings.HasPrefix(s, "local  IP address "):
		w.local, _ = netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(s, "local  IP address ")))
	case strings.HasPrefix(s, lapseMarker):
		if w.live && w.renews {
			w.lapse()
		}
	case strings.HasPrefix(s, "remote IP address "):
		if w.live && !w.upAgain(&w.local) {
			return false
		}
		w.remote, _ = netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(s, "remote IP address ")))
		if w.iface != "" && w.local.IsValid() && w.remote.IsValid() {
			w.ipcpOnce.Do(func() { close(w.ipcp) })
			w.addrsUp = true
			if w.wantDNS {
				round := w.round
				time.AfterFunc(dnsGrace, func() {
					w.mu.Lock()
					defer w.mu.Unlock()
					if w.round == round {
						w.dnsDone = true
						w.tryUp()
					}
				})
			}
			return w.tryUp()
		}
	case strings.HasPrefix(s, "local  LL address "):
		w.local6, _ = netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(s, "local  LL address ")))
		return w.dnsSettled(s)
	case strings.HasPrefix(s, "remote LL address "):
		if w.live && w.want6 && !w.upAgain(&w.local6) {
			return false
		}
		w.remote6, _ = netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(s, "remote LL address ")))
		w.ipv6Up = w.local6.IsValid() && w.remote6.IsValid()
		return w.dnsSettled(s) || w.tryUp()
	case w.wantDNS && !w.live && (strings.HasPrefix(s, "primary   DNS address ") || strings.HasPrefix(s, "secondary DNS address ")):
		_, v, _ := strings.Cut(s, "DNS address ")
		if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil && a.Is4() {
			w.dns = append(w.dns, a)
		}
		if w.addrsUp && strings.HasPrefix(s, "secondary") {
			w.dnsDone = true
			return w.tryUp()
		}
	default:
		return w.dnsSettled(s)
	}
	return false
}

// dnsSettled: any other line after the remote address ends the name
// server lines; it reports whether that completed the link. w.mu is held.
func (w *pppdWatcher) dnsSettled(string) bool {
	if w.addrsUp && !w.live && w.wantDNS && !w.dnsDone {
		w.dnsDone = true
		return w.tryUp()
	}
	return false
}

// tryUp declares the link up once everything awaited is in: IPCP, the
// name servers with DNS=peer, IPV6CP with IPv6. w.mu is held.
func (w *pppdWatcher) tryUp() bool {
	if !w.addrsUp || w.wantDNS && !w.dnsDone || w.want6 && !w.ipv6Up || w.live {
		return false
	}
	return w.markUp()
}

// upAgain takes a second IPCP or IPV6CP up while the link is up, and
// reports whether its line is to be read as the next round's. The
// server's watcher only closes again. The client's (renews) takes it for
// a lapse, as with no statistics line before it the link went down
// meanwhile all the same, and keeps *local: this round's local address
// came on the line before. w.mu is held.
func (w *pppdWatcher) upAgain(local *netip.Addr) bool {
	w.againOnce.Do(func() { close(w.again) })
	if !w.renews {
		return false
	}
	kept := *local
	w.lapse()
	*local = kept
	return true
}

// lapse records that the link, once up, went down in place: what the next
// round negotiates is awaited afresh. w.mu is held.
func (w *pppdWatcher) lapse() {
	w.live = false
	w.round++
	w.local, w.remote, w.local6, w.remote6 = netip.Addr{}, netip.Addr{}, netip.Addr{}, netip.Addr{}
	w.addrsUp, w.ipv6Up, w.dnsDone, w.dns = false, false, false, nil
	w.change()
}

// change wakes whoever waits on the last changed; w.mu is held.
func (w *pppdWatcher) change() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// state is how many times the link was declared up, whether it is up
// now, and a channel closed at the next lapse or renewal.
func (w *pppdWatcher) state() (ups int, live bool, changed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ups, w.live, w.changed
}

// signal leaves a value in c, a channel of one, unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// markUp declares the link up: the first time on up, after a lapse on
// changed. w.mu is held.
func (w *pppdWatcher) markUp() bool {
	w.live = true
	w.ups++
	if w.ups > 1 {
		w.change()
	}
	w.upOnce.Do(func() { close(w.up) })
	return true
}

// peerDNS are the name servers the peer offered (DNS=peer), in order.
func (w *pppdWatcher) peerDNS() []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.dns)
}

func (w *pppdWatcher) result() (iface string, local, remote netip.Addr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.iface, w.local, w.remote
}

func (w *pppdWatcher) lastLines() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "; ")
}

// pppdExitReason explains pppd's exit status (pppd(8), EXIT STATUS).
func pppdExitReason(code int) string {
	reasons := map[int]string{
		1:  "fatal error",
		2:  "error in options",
		3:  "not run as root",
		4:  "the kernel has no PPP support",
		5:  "terminated by a signal",
		6:  "could not lock the serial port",
		7:  "could not open the serial port",
		10: "PPP negotiation failed",
		11: "the peer failed to authenticate",
		15: "the peer stopped answering LCP echo requests",
		16: "the modem hung up (the other end of the pty closed)",
		17: "serial loopback detected",
		19: "failed to authenticate to the peer",
	}
	if r, ok := reasons[code]; ok {
		return fmt.Sprintf("exit status %d: %s", code, r)
	}
	return fmt.Sprintf("exit status %d", code)
}

// PPPDLog follows a pppd's log lines for the interface and addresses; the
// server half uses it on the server's pppd.
type PPPDLog struct{ w *pppdWatcher }

// NewPPPDLog returns an empty PPPDLog; with ipv6 it is up once IPV6CP is
// up too.
func NewPPPDLog(ipv6 bool) *PPPDLog {
	w := newPPPDWatcher()
	w.want6 = ipv6
	return &PPPDLog{w: w}
}

// IPCPUp is closed once IPCP is up: IPv4 passes from then on, whether
// or not the link is up as a whole (IPV6CP may still be negotiating).
func (p *PPPDLog) IPCPUp() <-chan struct{} { return p.w.ipcp }

// Again is closed when the peer renegotiated IPCP or IPV6CP after the link
// was up, whatever pppd logged before: the interface lost its addresses
// and routes meanwhile, and Result still says the first round's.
func (p *PPPDLog) Again() <-chan struct{} { return p.w.again }

// Line takes one log line and reports whether it completed the link.
func (p *PPPDLog) Line(s string) bool { return p.w.line(s) }

// Up is closed once IPCP is up.
func (p *PPPDLog) Up() <-chan struct{} { return p.w.up }

// Result is the interface and the local and remote addresses.
func (p *PPPDLog) Result() (iface string, local, remote netip.Addr) { return p.w.result() }

// Bounds of the server pppd's LCP echo interval, whatever the client asks:
// pppd declares the link dead after lcp-echo-failure unanswered echoes, so
// a client that vanished without a word loses its interface, routes and
// rules on the server within (failure+1) x interval <= 60 s, and a client
// cannot make the server keep them for hours (or forever, with 0).
const (
	serverEchoMin     = 5
	serverEchoMax     = 15
	serverEchoDefault = 10 // when the client asks for none
	serverEchoFailure = 3
)

// ServerEchoInterval is the server pppd's LCP echo interval, in seconds,
// for a client that asks for keepalive seconds.
func ServerEchoInterval(keepalive int) int {
	switch {
	case keepalive <= 0:
		return serverEchoDefault
	case keepalive < serverEchoMin:
		return serverEchoMin
	case keepalive > serverEchoMax:
		return serverEchoMax
	}
	return keepalive
}

// ServerPPPDArgs are the server pppd's options when the server half runs
// it: the classic nodetach notty noauth (or, on the client's terminal,
// SERVER_PTY, local instead of notty), logging to fd 3 for the helper, an
// LCP echo within the server's bounds, and the addresses from the
// validated request. noauth means the server does not ask the client to
// authenticate (SSH did); the refuse-* options (pppd 2.4.2 and later,
// pppd(8) "refuse-pap" etc.) make it decline to authenticate itself, so a
// hostile client cannot ask it for a secret from pap-secrets or
// chap-secrets. The linkname (ServerLinkname) marks the pppd as an
// incoming link of vpn-pppssh for the ppp hooks of this host: the ipparam
// is the client's word, and must not decide whether this host's own links
// start or stop.
func ServerPPPDArgs(r Request) []string {
	line := []string{"notty"}
	if r.TTY != "" {
		// pppd's line is the client's terminal (serve.Attach), given as
		// its device: a pty has no modem lines and needs no lock,
		// whatever /etc/ppp/options says for serial ports.
		line = []string{"local", "nocrtscts", "nolock"}
	}
	args := append(append([]string{"nodetach"}, line...), "noauth", "logfd", "3",
		"refuse-pap", "refuse-chap", "refuse-mschap", "refuse-mschap-v2", "refuse-eap",
		"lcp-echo-interval", strconv.Itoa(ServerEchoInterval(r.Keepalive)),
		"lcp-echo-failure", strconv.Itoa(serverEchoFailure))
	args = append(args, ipv6Args(r.CarriesIPv6())...)
	return append(args, "ipparam", r.IPParam, "linkname", ServerLinkname(r),
		r.Local.String()+":"+r.Peer.String())
}

// ServerLinkname is the linkname of the server's pppd for a client:
// "vpn-pppssh-in-" and the client's tunnel address, which the policy lets
// only one session hold at a time, so no two pppds share a pid file
// (pppd writes /run/ppp-LINKNAME.pid).
func ServerLinkname(r Request) string { return "vpn-pppssh-in-" + r.Peer.String() }
