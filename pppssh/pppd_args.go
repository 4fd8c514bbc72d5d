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
// stdout, which carries PPP). Every word comes from a validated key and is quoted for the remote shell.
func (c *Config) ServerCommand() string {
	words := append([]string{"sudo", "-n", c.ServerPPPD, "nodetach", "notty", "noauth", "logfd", "2"}, c.lcpEcho()...)
	return shellJoin(append(words, "ipparam", c.IPParam))
}

// localPPPDArgs are the local pppd's options (pppd(8)), after the tty:
//   - nodetach: we supervise pppd; its log lines come to us on stdout
//     (pppd logs to fd 1 by default, never into the tty it speaks PPP on);
//   - local, nocrtscts, nolock: a pty has no modem lines and needs no lock,
//     whatever /etc/ppp/options says for serial ports;
//   - noauth: SSH has authenticated the peer;
//   - passive: keep waiting for the peer's LCP instead of giving up;
//   - noccp: the data is about to be encrypted, compressing it twice is waste;
//   - lcp-echo-interval, lcp-echo-failure: see lcpEcho;
//   - linkname: pppd writes /run/ppp-NAME.pid, so its pid can be found after a crash;
//   - LOCAL:REMOTE: the addresses to ask for; the server pppd takes them as offered.
func (c *Config) localPPPDArgs(tty string) []string {
	args := []string{tty, "nodetach", "local", "nocrtscts", "nolock", "noauth", "passive", "noccp", "nodefaultroute"}
	args = append(args, c.lcpEcho()...)
	return append(args, "ipparam", c.IPParam, "linkname", c.Linkname(),
		c.ClientIfAddr.String()+":"+c.ServerIfAddr.String())
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
