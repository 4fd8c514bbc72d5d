package tunnel

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"golang.org/x/crypto/ssh"
)

// serverEnd is what the server's device gets when sshd opened it: the
// same settings the helper would apply, from the validated config.
type serverEnd struct {
	ethernet bool
	addr     netip.Prefix // zero: no address (a bridge port)
	peer     netip.Addr   // tun only
	addr6    netip.Prefix // zero: no IPv6 address
	peer6    netip.Addr   // tun only
	noIPv6   bool         // the link carries no IPv6: turn it off on the device
	mtu      int          // 0: leave it (a bridge port takes the bridge's)
	bridge   string
}

// notRootMarker is what the script prints when the login is not root: the
// account's own device (SERVER_TUN_UNIT) is left as the admin set it up.
const notRootMarker = "vpn-pppssh: not root"

// script is the POSIX sh program that configures the device sshd opened
// for this connection. The device is the one named in the fdinfo of the
// script's parent, the sshd process that serves this connection and holds
// its channels (Linux's tun driver shows "iff: NAME" there), so two
// tunnels of two connections cannot be confused. Every value in it comes
// from the validated config (addresses parsed by netip, an interface name
// checked by pppssh) and is quoted all the same.
func (e serverEnd) script() string {
	q := pppssh.ShellQuote
	var b strings.Builder
	// Few processes: under a slow kernel each exec counts.
	b.WriteString(`set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dev=$(grep -sh '^iff:' /proc/$PPID/fdinfo/* | sed -n '1s/^iff:[[:space:]]*//p')
if [ -z "$dev" ]; then
	echo "no tunnel device is open for this connection" >&2
	exit 1
fi
echo "$dev"
`)
	fmt.Fprintf(&b, "[ \"$(id -u)\" = 0 ] || { echo %s; exit 0; }\n", q(notRootMarker))
	// One ip for every step (ip -batch). The here-document expands $dev
	// (a name the kernel gave) and $mtu (a number the kernel gave); the
	// rest are addresses netip printed and a bridge name of letters,
	// digits, '.', '_' and '-' (pppssh checks it), which nothing expands.
	var cmds []string
	if e.bridge != "" {
		fmt.Fprintf(&b, "[ -d /sys/class/net/%s/bridge ] || { echo %s >&2; exit 1; }\n",
			q(e.bridge), q("SERVER_BRIDGE "+e.bridge+" is not a bridge on the server"))
		fmt.Fprintf(&b, "mtu=$(cat /sys/class/net/%s/mtu)\n", q(e.bridge))
		cmds = append(cmds, "link set dev $dev mtu $mtu", "link set dev $dev master "+e.bridge)
	} else if e.mtu > 0 {
		cmds = append(cmds, fmt.Sprintf("link set dev $dev mtu %d", e.mtu))
	}
	switch {
	case !e.addr.IsValid():
	case e.ethernet:
		cmds = append(cmds, fmt.Sprintf("addr add %s dev $dev", e.addr))
	default:
		cmds = append(cmds, fmt.Sprintf("addr add %s peer %s dev $dev", e.addr.Addr(), e.peer))
	}
	if e.noIPv6 && e.bridge == "" {
		b.WriteString("[ ! -d /proc/sys/net/ipv6/conf/$dev ] || echo 1 >/proc/sys/net/ipv6/conf/$dev/disable_ipv6\n")
	}
	cmds = append(cmds, "link set dev $dev up")
	// IPv6 once the device is up, without duplicate address detection,
	// as the client's device (tunnel/device).
	switch {
	case !e.addr6.IsValid():
	case e.ethernet:
		cmds = append(cmds, fmt.Sprintf("addr add %s dev $dev nodad", e.addr6))
	default:
		cmds = append(cmds, fmt.Sprintf("addr add %s peer %s dev $dev nodad", e.addr6.Addr(), e.peer6))
	}
	b.WriteString("ip -batch - <<END\n" + strings.Join(cmds, "\n") + "\nEND\n")
	return b.String()
}

// configure runs the script on a session of c and returns the server's
// device name and whether it configured it (false: not a root login).
func (e serverEnd) configure(c *ssh.Client) (dev string, done bool, err error) {
	s, err := c.NewSession()
	if err != nil {
		return "", false, fmt.Errorf("opening a session to configure the server's device: %w", err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &limited{&out, 4096}, &limited{&errOut, 4096}
	if err := s.Run("sh -c " + pppssh.ShellQuote(e.script())); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = "it printed nothing"
		}
		return "", false, fmt.Errorf("configuring the server's device (a root login runs ip there): %w: %s", err, safetext.Escape(msg))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	dev = lines[0]
	if !validIfName(dev) {
		return "", false, fmt.Errorf("the server named its tunnel device %q", safetext.Escape(dev))
	}
	return dev, !(len(lines) > 1 && lines[1] == notRootMarker), nil
}

// validIfName is the kernel's rule for interface names, printable only.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '/' || r == ':' {
			return false
		}
	}
	return true
}

// limited keeps the first n bytes written to it and drops the rest: what a
// server prints is not allowed to grow without bound.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// unitString is the unit for messages: "any" or the number.
func unitString(u uint32) string {
	if u == anyUnit {
		return "any"
	}
	return strconv.FormatUint(uint64(u), 10)
}
