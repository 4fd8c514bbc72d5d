package device

import (
	"encoding/binary"
	"fmt"
)

// VNetHdrLen is the size of the virtio-net header (struct virtio_net_hdr
// in linux/virtio_net.h) that comes before every packet of a device
// created with Config.Offload.
const VNetHdrLen = 10

// The header's fields, as linux/virtio_net.h numbers them.
const (
	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum from CsumStart, stored at CsumStart+CsumOffset
	vnetDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was checked

	gsoNone  = 0    // VIRTIO_NET_HDR_GSO_NONE: one packet
	gsoTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4: a TCP super-packet, cut at GSOSize
	gsoTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	gsoECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN: with a TCP type, CWR is set
)

// MinSegment is the smallest GSOSize a written super-packet may have:
// the kernel's own floor for a TCP peer's MSS (TCP_MIN_SND_MSS). A smaller
// one is refused, so that a writer cannot make the kernel cut one
// 64 KiB packet into thousands.
const MinSegment = 48

// VNetHdr is a virtio-net header, as the kernel hands it out with a packet
// read from an offloading device and takes it with one written to it. The
// device is set to little-endian headers (TUNSETVNETLE), so the bytes mean
// the same on every host.
type VNetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // length of the headers to repeat in each segment
	GSOSize    uint16 // payload bytes per segment
	CsumStart  uint16
	CsumOffset uint16
}

// ParseVNetHdr decodes the header at the start of b, which must hold
// VNetHdrLen bytes.
func ParseVNetHdr(b []byte) VNetHdr {
	_ = b[VNetHdrLen-1]
	return VNetHdr{
		Flags: b[0], GSOType: b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// Put encodes h into the first VNetHdrLen bytes of b.
func (h VNetHdr) Put(b []byte) {
	_ = b[VNetHdrLen-1]
	b[0], b[1] = h.Flags, h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

// Segmented reports whether the packet is a super-packet that the kernel
// cuts into GSOSize segments where it must.
func (h VNetHdr) Segmented() bool { return h.GSOType != gsoNone }

// Check refuses a header that this project never sends for a packet of
// pktLen bytes (the bytes after the header). The kernel checks headers
// too; this check is narrower, because on the server every header comes
// from a client: only the flags and segment types an offloading tun or
// tap device produces (checksum offload, TCP over IPv4 and IPv6), offsets
// inside the packet, and segments of at least MinSegment bytes.
func (h VNetHdr) Check(pktLen int) error {
	if h.Flags&^(vnetNeedsCsum|vnetDataValid) != 0 {
		return fmt.Errorf("virtio-net header: unknown flags %#x", h.Flags)
	}
	if h.Flags&vnetNeedsCsum != 0 && int(h.CsumStart)+int(h.CsumOffset)+2 > pktLen {
		return fmt.Errorf("virtio-net header: checksum at %d+%d outside a %d-byte packet", h.CsumStart, h.CsumOffset, pktLen)
	}
	switch h.GSOType &^ gsoECN {
	case gsoNone:
		if h.GSOType != gsoNone {
			return fmt.Errorf("virtio-net header: ECN without a segment type")
		}
		return nil
	case gsoTCPv4, gsoTCPv6:
	default:
		return fmt.Errorf("virtio-net header: segment type %#x (only TCP is offloaded)", h.GSOType)
	}
	switch {
	case h.GSOSize < MinSegment:
		return fmt.Errorf("virtio-net header: segments of %d bytes (at least %d)", h.GSOSize, MinSegment)
	case int(h.HdrLen) > pktLen:
		return fmt.Errorf("virtio-net header: headers of %d bytes in a %d-byte packet", h.HdrLen, pktLen)
	}
	return nil
}
