package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRequestRoundTripLeavesPPPOnTheStream(t *testing.T) {
	c := Defaults()
	c.Parse("f", []byte("SERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\nCLIENT_NETWORKS=198.18.0.0/24\nSERVER_MASQUERADE=yes\nSERVER_HELPER=/usr/local/sbin/vpn-pppssh\n"))
	var wire bytes.Buffer
	if err := WriteRequest(&wire, c.ServerRequest()); err != nil {
		t.Fatal(err)
	}
	wire.WriteString("\x7e\xff\x03PPP")
	got, err := ReadRequest(&wire)
	if err != nil {
		t.Fatal(err)
	}
	if got.Local != netip.MustParseAddr("198.51.100.2") || got.Peer != netip.MustParseAddr("198.51.100.1") ||
		len(got.Routes) != 1 || !got.Masquerade || !got.Forward {
		t.Errorf("request = %+v", got)
	}
	if rest := wire.String(); rest != "\x7e\xff\x03PPP" {
		t.Errorf("ReadRequest consumed PPP bytes; left %q", rest)
	}
	if cmd := c.helperCommand(); cmd != "sudo -n /usr/local/sbin/vpn-pppssh serve" {
		t.Errorf("helper command %q", cmd)
	}
}

func TestReadRequestRefusesBadInput(t *testing.T) {
	for _, in := range []string{
		`{"v":2,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1"}`,
		`{"v":1,"link":"-x","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1"}`,
		`{"v":1,"link":"a","ipparam":"a b","local":"198.51.100.2","peer":"198.51.100.1"}`,
		`{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.2"}`,
		`{"v":1,"link":"a","ipparam":"vpn","local":"127.0.0.1","peer":"198.51.100.1"}`,
		`{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1","routes":["10.0.0.1/8"]}`,
		`{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1","pppd_options":"plugin x"}`,
		`not json`,
		strings.Repeat("x", maxRequest+10),
	} {
		if _, err := ReadRequest(strings.NewReader(in + "\n")); err == nil {
			t.Errorf("accepted %.80q", in)
		}
	}
}

func TestReply(t *testing.T) {
	var b bytes.Buffer
	WriteReply(&b, nil)
	WriteReply(&b, errors.New("masquerade is not allowed\nby policy"))
	b.WriteString("garbage\n")
	br := bufio.NewReader(&b)
	if err := readReply(br); err != nil {
		t.Errorf("ok reply: %v", err)
	}
	if err := readReply(br); err == nil || err.Error() != "the server refused: masquerade is not allowed by policy" {
		t.Errorf("error reply: %v", err)
	}
	if err := readReply(br); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Errorf("garbage: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "server.conf")
	os.WriteFile(p, []byte("ALLOW_NETWORKS=198.18.0.0/16\nALLOW_MASQUERADE=no\n"), 0o600)
	pol, err := LoadPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	base := Request{Version: 1, Link: "a", IPParam: "vpn", Local: netip.MustParseAddr("198.51.100.2"), Peer: netip.MustParseAddr("198.51.100.1")}
	ok := base
	ok.Routes = []netip.Prefix{netip.MustParsePrefix("198.18.4.0/24")}
	if err := pol.Check(ok); err != nil {
		t.Errorf("inside the policy: %v", err)
	}
	out := base
	out.Routes = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	if err := pol.Check(out); err == nil || !strings.Contains(err.Error(), "routing 203.0.113.0/24 is not allowed") {
		t.Errorf("outside: %v", err)
	}
	wide := base
	wide.Routes = []netip.Prefix{netip.MustParsePrefix("198.0.0.0/8")}
	if err := pol.Check(wide); err == nil {
		t.Errorf("a network wider than the allowed one was accepted")
	}
	masq := base
	masq.Masquerade = true
	if err := pol.Check(masq); err == nil || !strings.Contains(err.Error(), "ALLOW_MASQUERADE=no") {
		t.Errorf("masquerade: %v", err)
	}
	os.WriteFile(p, []byte("ALLOW_EVERYTHING=yes\n"), 0o600)
	if _, err := LoadPolicy(p); err == nil || !strings.Contains(err.Error(), ":1: ALLOW_EVERYTHING: unknown key") {
		t.Errorf("unknown key: %v", err)
	}
	if pol, err := LoadPolicy(filepath.Join(t.TempDir(), "none")); err != nil || pol.Check(masq) != nil {
		t.Errorf("no policy file should allow: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1","routes":["198.18.0.0/24"]}` + "\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range ServerPPPDArgs(r) {
			if a == "" || strings.ContainsAny(a, " \t\n\x00;$`") || strings.HasPrefix(a, "-") {
				t.Fatalf("accepted request yields pppd argument %q", a)
			}
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte(replyOK + "\n\x7e\xff"))
	f.Add([]byte(replyError + "no\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := readReply(bufio.NewReader(bytes.NewReader(data)))
		if err == nil && !bytes.HasPrefix(data, []byte(replyOK+"\n")) {
			t.Fatalf("accepted %q", data)
		}
	})
}
