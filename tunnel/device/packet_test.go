package device

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// echo is an IPv4 ICMP echo request or reply.
type echo struct {
	src, dst netip.Addr
	reply    bool
	id, seq  uint16
	payload  []byte
}

// marshal encodes e as an IPv4 packet with valid checksums.
func (e echo) marshal() []byte {
	icmp := make([]byte, 8+len(e.payload))
	if !e.reply {
		icmp[0] = 8 // echo request; reply is type 0
	}
	binary.BigEndian.PutUint16(icmp[4:], e.id)
	binary.BigEndian.PutUint16(icmp[6:], e.seq)
	copy(icmp[8:], e.payload)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))

	ip := make([]byte, 20, 20+len(icmp))
	ip[0] = 0x45 // IPv4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	ip[8] = 64 // TTL
	ip[9] = 1  // ICMP
	src, dst := e.src.As4(), e.dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, icmp...)
}

// parseEcho decodes an IPv4 ICMP echo packet, checking both checksums.
func parseEcho(p []byte) (echo, error) {
	if len(p) < 28 || p[0] != 0x45 || p[9] != 1 {
		return echo{}, fmt.Errorf("not an IPv4 ICMP packet without options: % x", p[:min(len(p), 20)])
	}
	if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
		return echo{}, fmt.Errorf("IP total length %d, read %d bytes", binary.BigEndian.Uint16(p[2:]), len(p))
	}
	if checksum(p[:20]) != 0 {
		return echo{}, fmt.Errorf("bad IP header checksum")
	}
	icmp := p[20:]
	if checksum(icmp) != 0 {
		return echo{}, fmt.Errorf("bad ICMP checksum")
	}
	if icmp[0] != 0 && icmp[0] != 8 || icmp[1] != 0 {
		return echo{}, fmt.Errorf("ICMP type %d code %d is no echo", icmp[0], icmp[1])
	}
	return echo{
		src:     netip.AddrFrom4([4]byte(p[12:16])),
		dst:     netip.AddrFrom4([4]byte(p[16:20])),
		reply:   icmp[0] == 0,
		id:      binary.BigEndian.Uint16(icmp[4:]),
		seq:     binary.BigEndian.Uint16(icmp[6:]),
		payload: bytes.Clone(icmp[8:]),
	}, nil
}
