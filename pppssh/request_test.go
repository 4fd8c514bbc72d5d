package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/version"
	"golang.org/x/sys/unix"
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
	if err := readReply(br); err == nil || err.Error() != "the server refused: masquerade is not allowed by policy (this client is vpn-pppssh "+version.String()+")" {
		t.Errorf("error reply: %v", err)
	}
	if err := readReply(br); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Errorf("garbage: %v", err)
	}
}

// A refusal is the server's text: it reaches root's terminal only escaped.
func TestReplyRefusalIsEscaped(t *testing.T) {
	in := replyError + "no\x1b]0;owned\x07\x1b[2J\r\x9bhidden\n"
	err := readReply(bufio.NewReader(strings.NewReader(in)))
	if err == nil {
		t.Fatal("a refusal was accepted")
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07\r\u009b") {
		t.Errorf("control characters reach the error: %q", err.Error())
	}
	if !strings.Contains(err.Error(), `the server refused: no\x1b]0;owned\x07`) {
		t.Errorf("refusal not shown escaped: %q", err.Error())
	}
}

// A hostile server's endless line costs the client at most maxReply bytes,
// and an answer followed by PPP leaves the PPP unread.
func TestReplyIsBounded(t *testing.T) {
	endless := &countingReader{b: 'x'}
	err := readReply(bufio.NewReaderSize(endless, 32<<10))
	if err == nil || !strings.Contains(err.Error(), "longer than 4096 bytes") {
		t.Errorf("endless line: %v", err)
	}
	if endless.n > 64<<10 {
		t.Errorf("read %d bytes of an endless answer, want at most the buffer", endless.n)
	}
	long := replyError + strings.Repeat("y", maxReply-len(replyError)) + "\n"
	if err := readReply(bufio.NewReader(strings.NewReader(long))); err == nil || !strings.Contains(err.Error(), "the server refused: yyy") {
		t.Errorf("a refusal of exactly %d bytes: %v", maxReply, err)
	}
	br := bufio.NewReader(strings.NewReader(replyOK + "\n\x7e\xff\x03"))
	if err := readReply(br); err != nil {
		t.Fatal(err)
	}
	if rest, _ := br.Peek(3); string(rest) != "\x7e\xff\x03" {
		t.Errorf("PPP after the answer: %q", rest)
	}
}

// countingReader is an endless stream of one byte.
type countingReader struct {
	b byte
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.b
	}
	c.n += len(p)
	return len(p), nil
}

const goodRequest = `{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1"}`

// A session that sends nothing is given up on at the deadline, on a pipe
// as sshd hands it over (a descriptor Go's poller does not know).
func TestReadRequestWithinGivesUp(t *testing.T) {
	r, w := stdinLikePipe(t)
	begin := time.Now()
	_, err := ReadRequestWithin(r, 300*time.Millisecond)
	took := time.Since(begin)
	if !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("err %v, want ErrRequestTimeout", err)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
	w.Close()
}

// The request arrives in pieces before the deadline; the PPP after it
// stays for pppd, on a descriptor that is blocking again (pppd inherits it).
func TestReadRequestWithinLeavesABlockingStream(t *testing.T) {
	r, w := stdinLikePipe(t)
	go func() {
		w.WriteString(goodRequest[:10])
		time.AfterFunc(50*time.Millisecond, func() { w.WriteString(goodRequest[10:] + "\n\x7e") })
	}()
	req, err := ReadRequestWithin(r, 5*time.Second)
	if err != nil || req.Link != "a" {
		t.Fatalf("request %+v, err %v", req, err)
	}
	flags, err := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Errorf("stdin left non-blocking")
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(r, b); err != nil || b[0] != 0x7e {
		t.Errorf("PPP byte after the request: %q, %v", b, err)
	}
	w.Close()
}

func TestReadWithTimerGivesUp(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	if _, err := readWithTimer(pr, 100*time.Millisecond); !errors.Is(err, ErrRequestTimeout) {
		t.Errorf("err %v", err)
	}
	go pw.Write([]byte(goodRequest + "\n"))
	pr2, pw2 := io.Pipe()
	go pw2.Write([]byte(goodRequest + "\n"))
	if req, err := readWithTimer(pr2, 5*time.Second); err != nil || req.Peer.String() != "198.51.100.1" {
		t.Errorf("request %+v, err %v", req, err)
	}
}

// stdinLikePipe is a pipe whose read end is an *os.File made from a bare
// descriptor, like os.Stdin: Go does not poll it, so SetReadDeadline on it
// as it is would fail.
func stdinLikePipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "w")
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("the test pipe is pollable already (%v): it would not test what sshd hands over", err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestNeedsForwarding(t *testing.T) {
	for _, c := range []struct {
		r    Request
		want bool
	}{
		{Request{}, false},
		{Request{Forward: true}, true},
		{Request{Masquerade: true}, true},
		{Request{Routes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}, true},
	} {
		if got := c.r.NeedsForwarding(); got != c.want {
			t.Errorf("%+v: %v", c.r, got)
		}
	}
}

// The server's LCP echo stays within its bounds whatever the client asks,
// and the server never authenticates itself to the client.
func TestServerPPPDArgs(t *testing.T) {
	for ask, want := range map[int]string{0: "10", 1: "5", 3600: "15", 12: "12"} {
		r := baseRequest()
		r.Keepalive = ask
		args := strings.Join(ServerPPPDArgs(r), " ")
		if !strings.Contains(args, "lcp-echo-interval "+want+" lcp-echo-failure 3 ") {
			t.Errorf("keepalive %d: %s", ask, args)
		}
		for _, w := range []string{"refuse-pap", "refuse-chap", "refuse-mschap", "refuse-mschap-v2", "refuse-eap", " noauth ",
			" linkname vpn-pppssh-in-" + r.Peer.String() + " "} {
			if !strings.Contains(args, w) {
				t.Errorf("lacks %s: %s", w, args)
			}
		}
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
		args := ServerPPPDArgs(r)
		for _, a := range args {
			if a == "" || strings.ContainsAny(a, " \t\n\x00;$`") || strings.HasPrefix(a, "-") {
				t.Fatalf("accepted request yields pppd argument %q", a)
			}
		}
		if n := ServerEchoInterval(r.Keepalive); n < serverEchoMin || n > serverEchoMax {
			t.Fatalf("keepalive %d gives the server an echo interval of %d", r.Keepalive, n)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte(replyOK + "\n\x7e\xff"))
	f.Add([]byte(replyError + "no\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		br := bufio.NewReaderSize(src, 16)
		err := readReply(br)
		if err == nil && !bytes.HasPrefix(data, []byte(replyOK+"\n")) {
			t.Fatalf("accepted %q", data)
		}
		if used := len(data) - src.Len() - br.Buffered(); used > maxReply+1 {
			t.Fatalf("took %d bytes for one answer", used)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\r\n\x07") {
			t.Fatalf("control characters in %q", err.Error())
		}
	})
}

func TestValidateNamesBothVersionsOnAMismatch(t *testing.T) {
	c := Config{Name: "vpn", ClientIfAddr: netip.MustParseAddr("198.51.100.1"), ServerIfAddr: netip.MustParseAddr("198.51.100.2")}
	r := c.ServerRequest()
	r.Version = RequestVersion + 1
	err := r.Validate()
	want := fmt.Sprintf("request version %d, this server (vpn-pppssh %s) speaks %d", RequestVersion+1, version.String(), RequestVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate: %v, want it to say %q", err, want)
	}
}
