package forward

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"
)

// socksExchange runs socks on one end of a pipe, writes req from the
// other, and returns the reply bytes (n of them), the address dialled and
// socks's error.
func socksExchange(t *testing.T, req []byte, n int, dialErr error) (reply []byte, dialled string, err error) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	far, farPeer := net.Pipe()
	defer farPeer.Close()
	done := make(chan error, 1)
	go func() {
		to, err := socks(server, func(addr string) (net.Conn, error) {
			dialled = addr
			if dialErr != nil {
				return nil, dialErr
			}
			return far, nil
		})
		if to != nil && to != far {
			err = errors.New("socks returned another connection")
		}
		server.Close()
		done <- err
	}()
	go client.Write(req)
	reply = make([]byte, n)
	if _, rerr := io.ReadFull(client, reply); rerr != nil && n > 0 {
		t.Fatalf("reading the reply: %v", rerr)
	}
	return reply, dialled, <-done
}

func TestSOCKS5ConnectByName(t *testing.T) {
	req := []byte{5, 1, 0, 5, 1, 0, 3, 8}
	req = append(req, "intranet"...)
	req = append(req, 0, 80)
	reply, dialled, err := socksExchange(t, req, 12, nil)
	if err != nil || dialled != "intranet:80" {
		t.Fatalf("dialled %q, %v", dialled, err)
	}
	if !bytes.Equal(reply, []byte{5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("reply % x", reply)
	}
}

func TestSOCKS5IPv6AndRefusals(t *testing.T) {
	req := append([]byte{5, 1, 0, 5, 1, 0, 4}, net.ParseIP("2001:db8::5").To16()...)
	req = append(req, 1, 187)
	_, dialled, err := socksExchange(t, req, 12, nil)
	if err != nil || dialled != "[2001:db8::5]:443" {
		t.Fatalf("dialled %q, %v", dialled, err)
	}
	// The server refuses (AllowTcpForwarding no): reply 2, not allowed.
	req = []byte{5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 9, 0, 22}
	reply, _, err := socksExchange(t, req, 12, &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "open failed"})
	if err == nil || reply[3] != socks5NotAllowed {
		t.Fatalf("reply % x, %v", reply, err)
	}
	// The far host refuses: reply 5, connection refused.
	if reply, _, err := socksExchange(t, req, 12, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed}); err == nil || reply[3] != socks5Refused {
		t.Fatalf("refused: reply % x, %v", reply, err)
	}
	// BIND is not offered; a name with a shell in it is not dialled.
	req = []byte{5, 1, 0, 5, 2, 0, 1, 192, 0, 2, 9, 0, 22}
	if reply, dialled, err := socksExchange(t, req, 12, nil); err == nil || reply[3] != socks5BadCommand || dialled != "" {
		t.Fatalf("BIND: reply % x, dialled %q, %v", reply, dialled, err)
	}
	req = append([]byte{5, 1, 0, 5, 1, 0, 3, 9}, "a;reboot "...)
	if reply, dialled, err := socksExchange(t, append(req, 0, 80), 12, nil); err == nil || reply[3] != socks5Failure || dialled != "" {
		t.Fatalf("bad name: reply % x, dialled %q, %v", reply, dialled, err)
	}
	// Only username/password offered: no acceptable method.
	if reply, _, err := socksExchange(t, []byte{5, 1, 2}, 2, nil); err == nil || !bytes.Equal(reply, []byte{5, 0xff}) {
		t.Fatalf("no method: reply % x, %v", reply, err)
	}
}

func TestSOCKS4And4a(t *testing.T) {
	reply, dialled, err := socksExchange(t, []byte{4, 1, 0, 80, 192, 0, 2, 7, 'u', 0}, 8, nil)
	if err != nil || dialled != "192.0.2.7:80" || reply[1] != 0x5a {
		t.Fatalf("SOCKS4: reply % x, dialled %q, %v", reply, dialled, err)
	}
	req := append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "intranet\x00"...)
	reply, dialled, err = socksExchange(t, req, 8, nil)
	if err != nil || dialled != "intranet:80" || reply[1] != 0x5a {
		t.Fatalf("SOCKS4a: reply % x, dialled %q, %v", reply, dialled, err)
	}
	reply, _, err = socksExchange(t, []byte{4, 1, 0, 80, 192, 0, 2, 7, 0}, 8, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed})
	if err == nil || reply[1] != 0x5b {
		t.Fatalf("SOCKS4 refused: reply % x, %v", reply, err)
	}
	// 4a with an empty name: refused, not a crash of the whole process.
	reply, dialled, err = socksExchange(t, []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 0}, 8, nil)
	if err == nil || reply[1] != 0x5b || dialled != "" {
		t.Fatalf("SOCKS4a without a name: reply % x, dialled %q, %v", reply, dialled, err)
	}
	if _, _, err := socksExchange(t, []byte{6}, 0, nil); err == nil {
		t.Fatal("SOCKS version 6 accepted")
	}
}
