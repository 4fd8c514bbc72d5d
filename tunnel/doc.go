// Package tunnel is the carrier of the tun and ethernet modes
// (MODE=tun, MODE=ethernet): a tun or tap device on each end, joined over
// the SSH connection that pppssh.Link dialled, in one of two ways.
//
// OpenSSH's own tunnel forwarding, for a stock sshd (no SERVER_HELPER):
// the client opens a tun@openssh.com channel (OpenSSH PROTOCOL, section
// "tun@openssh.com"), sshd opens a tun or tap device for it, and one
// packet travels in each SSH_MSG_CHANNEL_DATA (internal/sshtun says how
// that is kept exact with golang.org/x/crypto/ssh). sshd leaves its device
// down and without an address, so the carrier configures it over the same
// connection, as an admin does by hand after `ssh -w`: one session running
// serverEndScript, which finds the device sshd opened for this connection
// (its parent's fdinfo names it), sets its MTU and address and brings it
// up, or makes it a port of SERVER_BRIDGE. That needs a root login; an
// account given a device of its own (SERVER_TUN_UNIT, created with
// `ip tuntap add ... user NAME` and configured by the admin) is left as the
// admin configured it. The server's device goes when sshd closes the
// channel.
//
// The server helper (SERVER_HELPER): `sudo -n vpn-pppssh serve` reads the
// request (which carries the mode), checks it against the server's policy,
// creates and configures its own device, and the packets travel over the
// session's stdin and stdout in the project's own framing (tunnel/framing),
// batched: no PermitTunnel, no root login. With OFFLOAD (the default) both
// devices offload checksums and TCP segmentation: TCP crosses as
// super-packets of up to 64 KiB with their virtio-net header, in the Wide
// framing, and the far kernel segments them where it must
// (tunnel/device/offload_linux.go). OpenSSH's forwarding cannot: sshd's
// device takes plain packets of the MTU.
//
// Either way the client's device is created by this process and belongs
// to its file descriptor (tunnel/device), so a kill -9 removes it, and a
// Carrier has one device for its life: a redial is a new Carrier, after
// the old one's Close has removed its device.
//
// Lifecycle, as pppssh.Carrier asks:
//
//	Prepare: create and configure the local device (no connection yet)
//	Start:   open the channel and configure the server's end,
//	         or run the helper and wait for its answer and readiness;
//	         then one goroutine each way
//	Done:    closed when either way ends (the server went, the device
//	         failed); Err says why
//	Close:   close the channel or session, then the device (ending the
//	         goroutines' reads), join the goroutines; idempotent
package tunnel
