// Package framing carries packets over a byte stream: the project's own
// format for the server-helper path, where IP packets or Ethernet frames
// travel over the SSH session's stdin and stdout between the client and
// `vpn-pppssh serve`.
//
// # Format
//
// Each packet is its length as 2 bytes, big-endian, then its bytes:
//
//	+--------+--------+----------- ... -+--------+--------+---- ...
//	| length (uint16) | length bytes     | length (uint16) | ...
//	+--------+--------+----------- ... -+--------+--------+---- ...
//
// A length of 0 is invalid; the largest is 65535 (MaxPacket). Nothing else
// is on the stream: no magic, no version, no padding. The mode (tun or
// ethernet) is agreed by the helper protocol before the first packet.
//
// That is the Narrow format. The Wide format is the same with a 4-byte
// big-endian length (up to MaxWidePacket): with offload (the request's
// "offload": true), each packet is a virtio-net header and a packet that
// may be a TCP super-packet, which can pass 65535 bytes behind an Ethernet
// header (tunnel/device, VNetHdr). The request fixes the format for both
// directions before the first packet.
//
// # Reading
//
// The reading side treats every byte as hostile (on the server, it comes
// from the client). NewReader takes the largest length it accepts (the
// device MTU plus header room); a longer one, or 0, is a *LengthError and
// ends the stream: after it the reader is out of step and every later
// ReadPacket returns the same error. A stream cut inside a packet is
// io.ErrUnexpectedEOF; one cut between packets is io.EOF. The Reader
// reads through a buffer, so one read system call brings in many packets.
//
// # Writing and batching
//
// Writer.WritePacket appends a packet to a buffer; Writer.Flush hands
// everything pending to the underlying writer in one Write, so N packets
// cost one system call (or one SSH channel message) instead of N. The
// buffer is flushed by itself before it would pass its size.
//
// When to flush is the producer's business, and the rule that batches
// without adding latency is: write every packet that is already there,
// flush when the next one would have to be waited for. Writer.Copy does
// that over a Source, which is asked for packets with wait=false while
// some are queued and with wait=true (after a Flush) when none is. Under
// light load every packet is flushed at once, as unbatched; under heavy
// load the packets that queued up during the previous Write go out
// together in the next. There is no timer: a batch never waits for a
// packet that is not there yet.
package framing
