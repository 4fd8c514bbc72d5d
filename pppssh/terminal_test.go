package pppssh

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
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
