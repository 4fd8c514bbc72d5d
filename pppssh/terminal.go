package pppssh

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/crypto/ssh"
)

// The server's terminal (SERVER_PTY). Run with notty, the server's pppd
// forks a relay (pppd's charshunt) that copies between the session's pipes
// and a pty of its own, one more process woken for every chunk each way.
// With SERVER_PTY the client opens a second session with a terminal from
// sshd, whose line is raw from the start (rawModes), and runs the helper on
// it too. That helper reads the link's token from its terminal and hands
// the terminal to the first session's helper (serve.Attach), whose pppd
// then speaks PPP on it: sshd writes the client's bytes straight into
// pppd's line. The first session keeps the request, the answer and the
// helper's lines on stderr, which a terminal session does not have.

// ttyTokenLen is the length of a terminal token in hex digits.
const ttyTokenLen = 32

// ValidTTYToken reports whether s is a terminal token: 32 lowercase hex
// digits, so that it is safe as a file name and in a log line.
func ValidTTYToken(s string) bool {
	if len(s) != ttyTokenLen {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newTTYToken is a fresh random terminal token.
func newTTYToken() string {
	var b [ttyTokenLen / 2]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}

// rawModes make the server's terminal a raw 8-bit line from the moment
// sshd allocates it (RFC 4254 section 8): no echo, no line editing, no
// signal or flow-control characters, no translation of CR or NL either
// way. PPP's first frames may arrive before pppd has set the line up
// itself, and a cooked line would echo them back or eat some bytes.
var rawModes = ssh.TerminalModes{
	ssh.ECHO: 0, ssh.ECHOE: 0, ssh.ECHOK: 0, ssh.ECHONL: 0, ssh.ECHOCTL: 0, ssh.ECHOKE: 0,
	ssh.ICANON: 0, ssh.ISIG: 0, ssh.IEXTEN: 0,
	ssh.IXON: 0, ssh.IXOFF: 0, ssh.IXANY: 0,
	ssh.ICRNL: 0, ssh.INLCR: 0, ssh.IGNCR: 0, ssh.ISTRIP: 0, ssh.IGNPAR: 1, ssh.PARMRK: 0, ssh.INPCK: 0, ssh.IUCLC: 0, ssh.IMAXBEL: 0,
	ssh.OPOST: 0, ssh.ONLCR: 0, ssh.OCRNL: 0, ssh.ONLRET: 0, ssh.OLCUC: 0,
	ssh.CS8: 1, ssh.PARENB: 0,
	ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400,
}

// openTerminal opens a session with a raw terminal for the server's pppd.
// It returns errNoTerminal when sshd refuses the terminal (an
// authorized_keys line with restrict or no-pty, PermitTTY no) or a second
// session (MaxSessions): the link then runs without one.
func openTerminal(client *ssh.Client, log *slog.Logger) (*ssh.Session, error) {
	s, err := client.NewSession()
	var refused *ssh.OpenChannelError
	if errors.As(err, &refused) {
		// sshd's MaxSessions, or a server that takes one session per
		// connection.
		log.Info("the server refused a second session: its pppd goes through its own relay (SERVER_PTY=no)", "err", err)
		return nil, errNoTerminal
	}
	if err != nil {
		return nil, fmt.Errorf("opening SSH session: %w", err)
	}
	if err := s.RequestPty("dumb", 24, 80, rawModes); err != nil {
		s.Close()
		log.Info("the server refused a terminal: its pppd goes through its own relay (SERVER_PTY=no); allow one with pty in authorized_keys' restrict line",
			"err", err)
		return nil, errNoTerminal
	}
	return s, nil
}

// errNoTerminal: sshd refused the terminal session.
var errNoTerminal = errors.New("the server refused a terminal")
