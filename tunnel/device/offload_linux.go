package device

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Offload, as virtio-net guests get it from a tun or tap device: with
// IFF_VNET_HDR every packet read or written carries a VNetHdr, and
// TUNSETOFFLOAD tells the kernel which work this end of the device takes
// on. We take checksums and TCP segmentation (TSO over IPv4 and IPv6, with
// ECN): the kernel then hands a TCP sender's data over as super-packets of
// up to 64 KiB with a partial checksum, instead of MTU-sized packets each
// with its own.
//
// What the far end does with such a packet: it writes it, header and
// all, into its own offloading device, and its kernel completes the
// checksum and cuts the segments wherever the packet goes next (a
// forwarding route, a bridge, a NIC without TSO), or delivers it whole to
// a local socket. Both ends of a helper link are this program on Linux, so
// no packet is ever cut in user space. UDP segmentation (TUN_F_USO4/6) is
// not asked for: its segments may be any size, and the far end refuses
// segments below MinSegment.
const (
	tunFCsum   = 0x01 // TUN_F_CSUM
	tunFTSO4   = 0x02 // TUN_F_TSO4
	tunFTSO6   = 0x04 // TUN_F_TSO6
	tunFTSOECN = 0x08 // TUN_F_TSO_ECN
)

// setOffload makes the headers of the device on fd little-endian and asks
// for offload; it reports whether the kernel took TSO. A kernel that has
// the header but refuses TSO (tso false) still works: its packets are
// never segmented, and it still accepts super-packets written to it.
func setOffload(fd int) (tso bool, err error) {
	// Headers are host-endian unless set; little-endian makes them mean
	// the same on both ends of a link. Kernels before 4.0 lack the ioctl:
	// on a little-endian host that changes nothing.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil && !littleEndianHost() {
		return false, fmt.Errorf("setting little-endian virtio-net headers: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunFCsum|tunFTSO4|tunFTSO6|tunFTSOECN); err != nil {
		return false, nil
	}
	return true, nil
}

func littleEndianHost() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}

// Offload reports whether the device was created with Config.Offload:
// every packet read from it and written to it starts with a VNetHdr.
func (d *Device) Offload() bool { return d.vnet }

// TSO reports whether the kernel hands this device TCP super-packets.
func (d *Device) TSO() bool { return d.tso }

// ReadSize is the buffer a Read needs so that no packet is cut short:
// MaxPacketSize, and with Config.Offload room for the header and for a
// super-packet with an Ethernet header (and a VLAN tag) before it.
func (d *Device) ReadSize() int {
	if d.vnet {
		return MaxOffloadRead
	}
	return MaxPacketSize
}

// MaxOffloadRead is ReadSize for a device with Config.Offload: the
// header, then a 64 KiB IP packet behind an Ethernet header with a VLAN
// tag.
const MaxOffloadRead = VNetHdrLen + 18 + 65535
