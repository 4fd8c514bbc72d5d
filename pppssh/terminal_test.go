package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestTTYToken(t *testing.T) {
	a, b := newTTYToken(), newTTYToken()
	if !ValidTTYToken(a) || !ValidTTYToken(b) || a == b {
		t.Errorf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
		"../../0123456789abcdef0123456789a", "0123456789abcdef0123456789abcde\n"} {
		if ValidTTYToken(bad) {
			t.Errorf("%q taken as a token", bad)
		}
	}
}

// The tty field: a token, in mode ppp only; the server's pppd then
// speaks on the terminal (no notty, and local for a line without modem
// lines).
func TestRequestTTY(t *testing.T) {
	r := baseRequest()
	r.TTY = newTTYToken()
	if err := r.Validate(); err != nil {
		t.Fatalf("valid tty: %v", err)
	}
	args := ServerPPPDArgs(r)
	if slices.Contains(args, "notty") || !slices.Contains(args, "local") || args[0] != "nodetach" {
		t.Errorf("pppd on the terminal: %v", args)
	}
	if args := ServerPPPDArgs(baseRequest()); !slices.Contains(args, "notty") || slices.Contains(args, "local") {
		t.Errorf("pppd on the pipes: %v", args)
	}
	for _, bad := range []func(*Request){
		func(r *Request) { r.TTY = "/dev/pts/0" },
		func(r *Request) { r.TTY = strings.Repeat("a", 33) },
		func(r *Request) { r.Mode = ModeTUN },
	} {
		r := baseRequest()
		r.TTY = newTTYToken()
		bad(&r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "bad tty token") {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

// What a terminal session prints before the server's first PPP flag is
// text (sudo's or the helper's message), for the log and errors; pppd
// gets the stream from the flag on, whole.
func TestSkipText(t *testing.T) {
	for _, tc := range []struct{ in, text, rest string }{
		{"\x7e\xff\x03", "", "\x7e\xff\x03"},
		{"sudo: a password is required\r\n\x7e\xff\x7e", "sudo: a password is required\r\n", "\x7e\xff\x7e"},
		{"no flag at all", "no flag at all", ""},
		{"", "", ""},
	} {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16) // smaller than the text: several reads
		var text bytes.Buffer
		err := skipText(br, &text)
		rest := new(bytes.Buffer)
		rest.ReadFrom(br)
		if text.String() != tc.text || rest.String() != tc.rest || (err == nil) != strings.Contains(tc.in, "\x7e") {
			t.Errorf("%q: text %q, rest %q, err %v", tc.in, text.String(), rest.String(), err)
		}
	}
}

// terminalServer is an SSH server on loopback, for one connection, that accepts
// maxSessions sessions and answers pty-req with grant; the pty-req
// payloads it got arrive on reqs.
func terminalServer(t *testing.T, maxSessions int, grant bool) (*ssh.Client, <-chan []byte) {
	t.Helper()
	cfg, hostKey := serverConfig(t, nil)
	cfg.PublicKeyCallback, cfg.NoClientAuth = nil, true
	ln, err := net.Listen("tcp", "127.0.0.1:0") // not net.Pipe: both ends write their versions at once
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reqs := make(chan []byte, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		srv, err := ln.Accept()
		if err != nil {
			return
		}
		sc, chans, greqs, err := ssh.NewServerConn(srv, cfg)
		if err != nil {
			return
		}
		defer sc.Close()
		wg.Go(func() { ssh.DiscardRequests(greqs) })
		n := 0
		for nc := range chans {
			if n++; n > maxSessions {
				nc.Reject(ssh.Prohibited, "no more sessions")
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() {
				defer ch.Close()
				for r := range creqs {
					if r.Type == "pty-req" {
						reqs <- r.Payload
						r.Reply(grant, nil)
						continue
					}
					r.Reply(false, nil)
				}
			})
		}
	})
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "vpn", HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); wg.Wait() })
	return client, reqs
}

// The terminal session: raw from the start when sshd grants it; none,
// and no error, when sshd refuses the terminal or a second session.
func TestOpenTerminal(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	client, reqs := terminalServer(t, 2, true)
	s, err := openTerminal(client, log)
	if err != nil {
		t.Fatalf("granted terminal: %v", err)
	}
	s.Close()
	var req struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}
	if err := ssh.Unmarshal(<-reqs, &req); err != nil {
		t.Fatal(err)
	}
	modes := map[byte]uint32{}
	for m := []byte(req.Modes); len(m) >= 5 && m[0] != 0; m = m[5:] {
		modes[m[0]] = uint32(m[1])<<24 | uint32(m[2])<<16 | uint32(m[3])<<8 | uint32(m[4])
	}
	for _, op := range []uint8{ssh.ECHO, ssh.ICANON, ssh.ISIG, ssh.IXON, ssh.ICRNL, ssh.OPOST, ssh.IEXTEN} {
		if v, ok := modes[op]; !ok || v != 0 {
			t.Errorf("terminal mode %d: %d (sent: %v)", op, v, ok)
		}
	}
	if modes[ssh.CS8] != 1 {
		t.Errorf("not 8-bit: %v", modes)
	}

	client, _ = terminalServer(t, 2, false)
	if s, err := openTerminal(client, log); !errors.Is(err, errNoTerminal) || s != nil {
		t.Errorf("refused terminal: %v %v", s, err)
	}

	client, _ = terminalServer(t, 1, true)
	first, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if s, err := openTerminal(client, log); !errors.Is(err, errNoTerminal) || s != nil {
		t.Errorf("refused second session: %v %v", s, err)
	}
}
