// Package sshtun carries OpenSSH's tunnel forwarding (`ssh -w`) over
// golang.org/x/crypto/ssh: the tun@openssh.com channel (OpenSSH PROTOCOL,
// section "tun@openssh.com"), on which sshd reads and writes a tun or tap
// device, with exactly one packet in each SSH_MSG_CHANNEL_DATA.
//
// # Why not io.Copy
//
// sshd marks the channel as a datagram channel: it writes each message to
// its device with one write() (channels.c, channel_handle_wfd). A message
// that holds half a packet is dropped as truncated, one that holds a packet
// and a half loses the half, and a write the kernel answers with EINVAL
// makes sshd close the tunnel's write side for good. x/crypto/ssh's
// Channel.Write, though, splits one write over several messages whenever
// the peer's window is shorter than the write (channel.go WriteExtended,
// window.reserve returns whatever is left), and Channel.Read copies across
// message boundaries until the caller's buffer is full (buffer.go). io.Copy
// over the channel works in a ping test and breaks under load, when the
// window runs short or messages queue up.
//
// # What this package does instead
//
// x/crypto has no public API for the peer's window or for reading one
// message, and this project does not copy or fork other code. So Datagram
// reads two unexported fields of x/crypto's channel, read-only, each under
// the lock x/crypto itself takes for it:
//
//   - Send: the peer's remaining window (remoteWin.win) and largest packet
//     (maxRemotePayload). A packet longer than either is dropped and
//     counted, never split, which is what OpenSSH's own sender does
//     (channels.c: "datagram too big"). Otherwise the public Write sends
//     it: as the only writer, nothing but the peer's window adjustments
//     can change the window in between, and those only grow it, so the
//     Write reserves the whole packet in one go and sends one message.
//   - Receive: a public Read of one byte waits for the next message and
//     leaves its rest at the head of the channel's queue; the length of
//     that rest (pending.head.buf) says how much more to Read. A Read never
//     takes more than the head holds when asked for exactly that, so each
//     ReadPacket returns one message. The window adjustments still happen
//     in the public Read.
//
// Re-framing the received stream instead would work for tun mode (an IP
// header has its length) but not for ethernet, whose short frames arrive
// padded from physical networks and carry no length of their own.
//
// The fields are found by name and checked, type and layout, once; when an
// upgrade of x/crypto changes them NewDatagram returns an error (and the
// package's tests fail) instead of guessing. One goroutine writes and one
// reads a Datagram at a time: that is what makes the window check sound.
package sshtun
