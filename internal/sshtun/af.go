package sshtun

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// OpenSSH's point-to-point messages start with the packet's address
// family as OpenBSD numbers it, whatever the host's own numbers are
// (openbsd-compat/port-net.c: sys_tun_infilter, sys_tun_outfilter).
const (
	afInet  = 2
	afInet6 = 24
)

// ErrMalformed is matched by StripAF's error for a message that is not one
// whole IP packet under its address family.
var ErrMalformed = errors.New("malformed tunnel message")

// PrependAF takes a buffer whose first 4 bytes are free and whose rest is
// one IP packet, writes the packet's address family into those 4 bytes and
// returns the buffer: the message OpenSSH expects, without a copy.
func PrependAF(buf []byte) ([]byte, error) {
	if len(buf) < 5 {
		return nil, fmt.Errorf("%w: no IP packet", ErrMalformed)
	}
	switch buf[4] >> 4 {
	case 4:
		binary.BigEndian.PutUint32(buf, afInet)
	case 6:
		binary.BigEndian.PutUint32(buf, afInet6)
	default:
		return nil, fmt.Errorf("%w: IP version %d", ErrMalformed, buf[4]>>4)
	}
	return buf, nil
}

// StripAF checks a received point-to-point message (the address family
// matches the IP version, and the IP header's length is the message's) and
// returns the IP packet in it.
func StripAF(msg []byte) ([]byte, error) {
	if len(msg) < 4+20 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(msg))
	}
	af, ip := binary.BigEndian.Uint32(msg), msg[4:]
	var total int
	switch {
	case af == afInet && ip[0]>>4 == 4:
		total = int(binary.BigEndian.Uint16(ip[2:]))
	case af == afInet6 && ip[0]>>4 == 6 && len(ip) >= 40:
		total = 40 + int(binary.BigEndian.Uint16(ip[4:]))
	default:
		return nil, fmt.Errorf("%w: address family %d with IP version %d", ErrMalformed, af, ip[0]>>4)
	}
	if total != len(ip) {
		return nil, fmt.Errorf("%w: the IP header says %d bytes, the message holds %d", ErrMalformed, total, len(ip))
	}
	return ip, nil
}
