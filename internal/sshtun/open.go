package sshtun

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"golang.org/x/crypto/ssh"
)

// Mode is the tunnel's layer (OpenSSH's SSH_TUNMODE_*).
type Mode uint32

const (
	PointToPoint Mode = 1 // layer 3: a tun device; each message is a 4-byte address family and an IP packet
	Ethernet     Mode = 2 // layer 2: a tap device; each message is an Ethernet frame
)

// AnyUnit asks the server for whichever device unit is free.
const AnyUnit uint32 = 0x7fffffff

// ChannelType is OpenSSH's tunnel channel.
const ChannelType = "tun@openssh.com"

// OpenError is the server's refusal of a tunnel, in an admin's words.
type OpenError struct {
	Unit  uint32
	Cause *ssh.OpenChannelError
}

func (e *OpenError) Error() string {
	unit := "any unit"
	if e.Unit != AnyUnit {
		unit = fmt.Sprintf("unit %d", e.Unit)
	}
	// OpenSSH answers "connect failed" ("open failed") when PermitTunnel
	// is off or the device cannot be opened, and "administratively
	// prohibited" when the key's options forbid forwarding.
	if e.Cause.Reason == ssh.Prohibited || e.Cause.Reason == ssh.ConnectionFailed {
		return fmt.Sprintf("the server refused the tunnel (%s: %s): PermitTunnel is off in its sshd_config, "+
			"restrict or no-port-forwarding is set for the key, "+
			"or the account may not open the tun/tap device (%s): it needs a root login, or a device created for the account "+
			"(ip tuntap add ... user NAME) and named with SERVER_TUN_UNIT", e.Cause.Reason, safetext.Escape(e.Cause.Message), unit)
	}
	return fmt.Sprintf("the server refused the tunnel (%s): %s", e.Cause.Reason, safetext.Escape(e.Cause.Message))
}

func (e *OpenError) Unwrap() error { return e.Cause }

// Open opens a tunnel channel of mode to the server's device unit on c and
// discards the channel's requests.
func Open(c ssh.Conn, mode Mode, unit uint32) (ssh.Channel, error) {
	var payload [8]byte
	binary.BigEndian.PutUint32(payload[0:], uint32(mode))
	binary.BigEndian.PutUint32(payload[4:], unit)
	ch, reqs, err := c.OpenChannel(ChannelType, payload[:])
	if err != nil {
		var oe *ssh.OpenChannelError
		if errors.As(err, &oe) {
			return nil, &OpenError{Unit: unit, Cause: oe}
		}
		return nil, fmt.Errorf("opening the tunnel channel: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	return ch, nil
}
