package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// socksHandshake bounds a client's SOCKS request.
const socksHandshake = 30 * time.Second

// socks reads a SOCKS 4, 4a or 5 CONNECT request from c (no
// authentication, as OpenSSH's -D), connects through dial, answers, and
// returns the connection to splice with c. On failure the client has
// been told, where the protocol says how.
func socks(c net.Conn, dial func(addr string) (net.Conn, error)) (net.Conn, error) {
	c.SetDeadline(time.Now().Add(socksHandshake))
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return nil, fmt.Errorf("SOCKS: %w", err)
	}
	var to net.Conn
	var err error
	switch v[0] {
	case 4:
		to, err = socks4(c, dial)
	case 5:
		to, err = socks5(c, dial)
	default:
		return nil, fmt.Errorf("SOCKS: version %d: only 4 and 5 are spoken", v[0])
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return to, nil
}

// socks4 is SOCKS 4 and 4a after the version byte: command, port, IPv4
// address, user id, and (4a: address 0.0.0.x) a host name.
func socks4(c net.Conn, dial func(string) (net.Conn, error)) (net.Conn, error) {
	var h [7]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, fmt.Errorf("SOCKS4: %w", err)
	}
	reply := func(ok bool) {
		code := byte(0x5b)
		if ok {
			code = 0x5a
		}
		c.Write([]byte{0, code, 0, 0, 0, 0, 0, 0})
	}
	if _, err := readZ(c); err != nil { // the user id, unused
		return nil, fmt.Errorf("SOCKS4: user id: %w", err)
	}
	if h[0] != 1 {
		reply(false)
		return nil, fmt.Errorf("SOCKS4: command %d: only CONNECT", h[0])
	}
	port := binary.BigEndian.Uint16(h[1:3])
	ip := netip.AddrFrom4([4]byte(h[3:7]))
	host := ip.String()
	if h[3] == 0 && h[4] == 0 && h[5] == 0 && h[6] != 0 { // 4a
		name, err := readZ(c)
		if err != nil {
			return nil, fmt.Errorf("SOCKS4a: host name: %w", err)
		}
		if !validHost(name) {
			reply(false)
			return nil, fmt.Errorf("SOCKS4a: %q is not a host name", name)
		}
		host = name
	}
	to, err := dial(net.JoinHostPort(host, strconv.Itoa(int(port))))
	reply(err == nil)
	return to, err
}

// readZ reads a NUL-terminated string of at most 255 bytes.
func readZ(r io.Reader) (string, error) {
	var b strings.Builder
	var one [1]byte
	for b.Len() < 256 {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return "", err
		}
		if one[0] == 0 {
			return b.String(), nil
		}
		b.WriteByte(one[0])
	}
	return "", errors.New("longer than 255 bytes")
}

// SOCKS 5 replies (RFC 1928).
const (
	socks5OK          = 0
	socks5Failure     = 1
	socks5NotAllowed  = 2
	socks5Refused     = 5
	socks5BadCommand  = 7
	socks5BadAddrType = 8
)

// socks5 is SOCKS 5 after the version byte: the methods (only "no
// authentication"), then a CONNECT to an IPv4 or IPv6 address or a name.
func socks5(c net.Conn, dial func(string) (net.Conn, error)) (net.Conn, error) {
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, fmt.Errorf("SOCKS5: %w", err)
	}
	methods := make([]byte, n[0])
	if _, err := io.ReadFull(c, methods); err != nil {
		return nil, fmt.Errorf("SOCKS5: %w", err)
	}
	if !strings.ContainsRune(string(methods), 0) {
		c.Write([]byte{5, 0xff})
		return nil, errors.New("SOCKS5: the client offers no method without authentication")
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return nil, fmt.Errorf("SOCKS5: %w", err)
	}
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, fmt.Errorf("SOCKS5: %w", err)
	}
	reply := func(code byte) { c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0}) }
	if h[0] != 5 {
		return nil, fmt.Errorf("SOCKS5: request of version %d", h[0])
	}
	var host string
	switch h[3] {
	case 1, 4:
		b := make([]byte, 4)
		if h[3] == 4 {
			b = make([]byte, 16)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, fmt.Errorf("SOCKS5: %w", err)
		}
		a, _ := netip.AddrFromSlice(b)
		host = a.String()
	case 3:
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return nil, fmt.Errorf("SOCKS5: %w", err)
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, fmt.Errorf("SOCKS5: %w", err)
		}
		host = string(b)
		if host == "" || !validHost(host) {
			reply(socks5Failure)
			return nil, fmt.Errorf("SOCKS5: %q is not a host name", host)
		}
	default:
		reply(socks5BadAddrType)
		return nil, fmt.Errorf("SOCKS5: address type %d", h[3])
	}
	var p [2]byte
	if _, err := io.ReadFull(c, p[:]); err != nil {
		return nil, fmt.Errorf("SOCKS5: %w", err)
	}
	if h[1] != 1 {
		reply(socks5BadCommand)
		return nil, fmt.Errorf("SOCKS5: command %d: only CONNECT", h[1])
	}
	to, err := dial(net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(p[:])))))
	if err != nil {
		code := byte(socks5Failure)
		var oc *ssh.OpenChannelError
		if errors.As(err, &oc) {
			switch oc.Reason {
			case ssh.Prohibited:
				code = socks5NotAllowed
			case ssh.ConnectionFailed:
				code = socks5Refused
			}
		}
		reply(code)
		return nil, err
	}
	reply(socks5OK)
	return to, nil
}
