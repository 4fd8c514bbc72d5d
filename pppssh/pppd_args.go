package pppssh

import (
	"strconv"
	"strings"
	"time"
)

// ServerCommand is the command line the SSH server runs, as the HOWTO's
// script does: sudo -n so that a password prompt becomes an error instead of
// a hang, then pppd with nodetach (stay on the session), notty (speak PPP on
// stdin/stdout) and noauth (SSH has authenticated both ends), per pppd(8).
// logfd 2 sends the server pppd's messages to the session's stderr, where
// the client logs them and quotes them in errors (notty keeps them off
// stdout, which carries PPP). refuseAuth keeps the server's pppd from
// authenticating itself to the client. Every word comes from a validated
// key and is quoted for the remote shell.
//
// With SERVER_PPPD_CALL=NAME the command is only `sudo -n SERVER_PPPD call
// NAME`: the options are in the server's root-owned /etc/ppp/peers/NAME,
// and a sudoers line pinned to those two words cannot be stretched (see
// CallCommand).
func (c *Config) ServerCommand() string {
	if c.ServerPPPDCall != "" {
		return c.CallCommand()
	}
	words := append([]string{"sudo", "-n", c.ServerPPPD, "nodetach", "notty", "noauth", "logfd", "2"}, c.lcpEcho()...)
	words = append(words, refuseAuth...)
	return shellJoin(append(words, "ipparam", c.IPParam))
}

// CallCommand is `sudo -n SERVER_PPPD call SERVER_PPPD_CALL`. sudo matches
// a command's arguments by joining them with spaces, so the sudoers line
// `/usr/sbin/pppd call NAME` allows exactly two argument vectors: ["call",
// "NAME"], which reads the root-owned /etc/ppp/peers/NAME, and ["call NAME"],
// which pppd refuses as an unrecognized option. NAME is one word without
// spaces, so no regrouping can add, drop or change an option, unlike a
// pinned option list, whose numeric options (pppd's number_option ignores
// trailing text) can swallow the words after them.
func (c *Config) CallCommand() string {
	return shellJoin([]string{"sudo", "-n", c.ServerPPPD, "call", c.ServerPPPDCall})
}

// refuseAuth keeps a pppd from authenticating itself to its peer with any
// protocol pppd 2.4.9 and 2.5 know (pppd(8): refuse-pap, refuse-chap,
// refuse-mschap, refuse-mschap-v2, refuse-eap), so that a hostile peer
// cannot ask for credentials from /etc/ppp/pap-secrets or chap-secrets:
// SSH has authenticated both ends already.
var refuseAuth = []string{"refuse-pap", "refuse-chap", "refuse-mschap", "refuse-mschap-v2", "refuse-eap"}

// localPPPDArgs are the local pppd's options (pppd(8)), after the tty:
//   - nodetach: we supervise pppd; its log lines come to us on stdout
//     (pppd logs to fd 1 by default, never into the tty it speaks PPP on);
//   - local, nocrtscts, nolock: a pty has no modem lines and needs no lock,
//     whatever /etc/ppp/options says for serial ports;
//   - noauth: SSH has authenticated the peer;
//   - refuse-pap ... refuse-eap: nor do we authenticate ourselves to it
//     (see refuseAuth);
//   - passive: keep waiting for the peer's LCP instead of giving up;
//   - noccp: the data is about to be encrypted, compressing it twice is waste;
//   - lcp-echo-interval, lcp-echo-failure: see lcpEcho;
//   - +ipv6 or noipv6: see ipv6Args;
//   - linkname: pppd writes /run/ppp-NAME.pid, so its pid can be found after a crash;
//   - LOCAL:REMOTE: the addresses to ask for; the server pppd takes them as offered.
func (c *Config) localPPPDArgs(tty string) []string {
	args := []string{tty, "nodetach", "local", "nocrtscts", "nolock", "noauth"}
	args = append(args, refuseAuth...)
	args = append(args, "passive", "noccp", "nodefaultroute")
	args = append(args, c.lcpEcho()...)
	if c.DNSPeer {
		// Ask for the peer's name servers, but keep USEPEERDNS from the
		// ip-up scripts: Debian's 0000usepeerdns would rewrite
		// resolv.conf itself (pppd's unset applies right before exec).
		args = append(args, "usepeerdns", "unset", "USEPEERDNS")
	}
	args = append(args, ipv6Args(c.CarriesIPv6())...)
	return append(args, "ipparam", c.IPParam, "linkname", c.Linkname(),
		c.ClientIfAddr.String()+":"+c.ServerIfAddr.String())
}

// ipv6Args turn IPV6CP on, each end's interface identifier taken from its
// IPv4 address (pppd(8): +ipv6, ipv6cp-use-ipaddr), so that the two are
// distinct and the same on every dial; or off (noipv6), whatever
// /etc/ppp/options says, so that a link without IPv6 addresses passes no
// IPv6 that no rule checks.
func ipv6Args(on bool) []string {
	if on {
		return []string{"+ipv6", "ipv6cp-use-ipaddr"}
	}
	return []string{"noipv6"}
}

// lcpEcho makes each pppd ask its peer for an LCP echo every KEEPALIVE
// seconds and give up after three unanswered (pppd(8): lcp-echo-interval,
// lcp-echo-failure), so that a server whose client vanished ends its pppd
// by itself instead of keeping a stale interface.
func (c *Config) lcpEcho() []string {
	return []string{"lcp-echo-interval", strconv.Itoa(int(c.Keepalive / time.Second)), "lcp-echo-failure", "3"}
}

// Linkname is pppd's linkname for this link.
func (c *Config) Linkname() string { return "vpn-pppssh-" + c.Name }

// shellJoin quotes each word for a POSIX shell.
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = ShellQuote(w)
	}
	return strings.Join(quoted, " ")
}

// ShellQuote quotes s for a POSIX shell, leaving plain words as they are.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:@+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
