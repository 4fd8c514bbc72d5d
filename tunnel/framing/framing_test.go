package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// frame is p framed, for building streams by hand.
func frame(p []byte) []byte {
	return append([]byte{byte(len(p) >> 8), byte(len(p))}, p...)
}

// writeLog records each Write call on it.
type writeLog struct {
	bytes.Buffer
	calls []int
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.calls = append(w.calls, len(p))
	return w.Buffer.Write(p)
}

// randomPackets returns n packets of random sizes and contents, with the
// smallest and largest sizes among them.
func randomPackets(r *rand.Rand, n int) [][]byte {
	pkts := [][]byte{{0x42}, bytes.Repeat([]byte{0xa5}, MaxPacket)}
	for len(pkts) < n {
		size := 1 + r.IntN(1500)
		if r.IntN(10) == 0 {
			size = 1 + r.IntN(MaxPacket)
		}
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		pkts = append(pkts, p)
	}
	r.Shuffle(len(pkts), func(i, j int) { pkts[i], pkts[j] = pkts[j], pkts[i] })
	return pkts
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pkts := randomPackets(r, 2000)
	var stream writeLog
	w := NewWriter(&stream)
	for i, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if r.IntN(4) == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != 0 {
		t.Errorf("%d bytes still buffered after Flush", w.Buffered())
	}
	rd := NewReader(&stream.Buffer, MaxPacket)
	buf := make([]byte, MaxPacket)
	for i, want := range pkts {
		n, err := rd.ReadPacket(buf)
		if err != nil {
			t.Fatalf("reading packet %d of %d bytes: %v", i, len(want), err)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("packet %d: got %d bytes, want %d (contents differ: %v)", i, n, len(want), n == len(want))
		}
	}
	if n, err := rd.ReadPacket(buf); n != 0 || err != io.EOF {
		t.Errorf("after the last packet: %d, %v; want 0, io.EOF", n, err)
	}
}

func TestFlushIsOneWrite(t *testing.T) {
	var log writeLog
	w := NewWriter(&log)
	p := bytes.Repeat([]byte{7}, 100)
	for range 100 {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(log.calls) != 0 {
		t.Fatalf("WritePacket wrote %v before Flush (batch %d, pending %d)", log.calls, DefaultBatch, 100*102)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // nothing pending: no Write
		t.Fatal(err)
	}
	if len(log.calls) != 1 || log.calls[0] != 100*102 {
		t.Errorf("Write calls %v, want one of %d bytes", log.calls, 100*102)
	}
}

func TestBatchSizeBound(t *testing.T) {
	var log writeLog
	const size = 1000
	w := NewFormatWriter(&log, Narrow, size)
	p := bytes.Repeat([]byte{7}, 100) // 102 bytes framed: 9 per batch
	for range 100 {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := append(make([]int, 11), 100*102-11*9*102)
	for i := range 11 {
		want[i] = 9 * 102
	}
	if fmt.Sprint(log.calls) != fmt.Sprint(want) {
		t.Errorf("Write calls %v, want %v", log.calls, want)
	}
	// A packet larger than the batch goes alone.
	log.calls = nil
	big := bytes.Repeat([]byte{8}, 5000)
	for _, q := range [][]byte{p, big, p} {
		if err := w.WritePacket(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(log.calls) != "[102 5002 102]" {
		t.Errorf("Write calls %v, want [102 5002 102]", log.calls)
	}
}

// TestCopyBatchesBursts: Copy writes the packets a source has ready in
// one Write and never waits for a packet with any pending.
func TestCopyBatchesBursts(t *testing.T) {
	bursts := [][]int{{3, 100, 1400}, {60}, {1, 2, 3, 4, 5}, {1500}}
	var log writeLog
	w := NewWriter(&log)
	var b, i int
	src := func(wait bool) ([]byte, error) {
		if wait {
			if w.Buffered() != 0 {
				return nil, fmt.Errorf("asked to wait with %d bytes not flushed", w.Buffered())
			}
			if b == len(bursts) {
				return nil, io.EOF
			}
			b, i = b+1, 0
		} else if i == len(bursts[b-1]) {
			return nil, nil // would block
		}
		i++
		return bytes.Repeat([]byte{byte(b)}, bursts[b-1][i-1]), nil
	}
	if err := w.Copy(src); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	var want []int
	for _, burst := range bursts {
		sum := 0
		for _, n := range burst {
			sum += HeaderLen + n
		}
		want = append(want, sum)
	}
	if fmt.Sprint(log.calls) != fmt.Sprint(want) {
		t.Errorf("Write calls %v, want one per burst %v", log.calls, want)
	}
	rd := NewReader(&log.Buffer, 1500)
	buf := make([]byte, 1500)
	for bi, burst := range bursts {
		for _, size := range burst {
			n, err := rd.ReadPacket(buf)
			if err != nil || !bytes.Equal(buf[:n], bytes.Repeat([]byte{byte(bi + 1)}, size)) {
				t.Fatalf("burst %d: packet of %d bytes read back as %d, %v", bi, size, n, err)
			}
		}
	}
}

// TestCopyFlushesOnError: packets taken before the source fails are still
// written, and the source's error comes back.
func TestCopyFlushesOnError(t *testing.T) {
	boom := errors.New("device gone")
	var log writeLog
	w := NewWriter(&log)
	sent := 0
	err := w.Copy(func(wait bool) ([]byte, error) {
		if sent == 2 {
			return nil, boom
		}
		sent++
		return []byte{1, 2, 3}, nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Copy: %v, want %v", err, boom)
	}
	if fmt.Sprint(log.calls) != "[10]" {
		t.Errorf("Write calls %v, want the two pending packets in one [10]", log.calls)
	}
}

func TestReaderRefusesLengths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		max    int
		length int
	}{
		{"zero", append(frame([]byte{1}), 0, 0, 9, 9), 1500, 0},
		{"max+1", frame(make([]byte, 1501)), 1500, 1501},
		{"65535 over a small max", []byte{0xff, 0xff}, 1, 65535},
	} {
		rd := NewReader(bytes.NewReader(tc.stream), tc.max)
		buf := make([]byte, MaxPacket)
		var err error
		for range 3 {
			if _, err = rd.ReadPacket(buf); err != nil {
				break
			}
		}
		var le *LengthError
		if !errors.As(err, &le) || le.Length != tc.length || le.Max != tc.max {
			t.Errorf("%s: %v, want a LengthError for %d", tc.name, err, tc.length)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprint(tc.length)) {
			t.Errorf("%s: %q does not name the length", tc.name, err)
		}
		if _, again := rd.ReadPacket(buf); again != err {
			t.Errorf("%s: next ReadPacket: %v, want the same error again", tc.name, again)
		}
	}
	// The maximum itself is accepted.
	rd := NewReader(bytes.NewReader(frame(make([]byte, 1500))), 1500)
	if n, err := rd.ReadPacket(make([]byte, 1500)); n != 1500 || err != nil {
		t.Errorf("a packet of exactly the maximum: %d, %v", n, err)
	}
}

func TestReaderTruncated(t *testing.T) {
	whole := frame([]byte("hello"))
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty", nil, io.EOF},
		{"one header byte", whole[:1], io.ErrUnexpectedEOF},
		{"header only", whole[:2], io.ErrUnexpectedEOF},
		{"half a packet", whole[:4], io.ErrUnexpectedEOF},
		{"a packet then one header byte", append(bytes.Clone(whole), 0), io.ErrUnexpectedEOF},
		{"a whole packet", whole, io.EOF},
	} {
		rd := NewReader(bytes.NewReader(tc.stream), 100)
		buf := make([]byte, 100)
		var err error
		for range 3 {
			if _, err = rd.ReadPacket(buf); err != nil {
				break
			}
		}
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if _, again := rd.ReadPacket(buf); again != tc.want {
			t.Errorf("%s: next ReadPacket: %v, want %v again", tc.name, again, tc.want)
		}
	}
}

func TestReaderShortBuffer(t *testing.T) {
	stream := append(frame([]byte("0123456789")), frame([]byte("ok"))...)
	rd := NewReader(bytes.NewReader(stream), 100)
	buf := make([]byte, 5)
	if _, err := rd.ReadPacket(buf); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("10-byte packet into 5 bytes: %v, want io.ErrShortBuffer", err)
	}
	if n, err := rd.ReadPacket(buf); err != nil || string(buf[:n]) != "ok" {
		t.Errorf("the packet after: %q, %v; want \"ok\"", buf[:n], err)
	}
}

// readCounter counts Read calls.
type readCounter struct {
	r     io.Reader
	calls int
}

func (c *readCounter) Read(p []byte) (int, error) {
	c.calls++
	return c.r.Read(p)
}

func TestReaderReadsManyPacketsPerRead(t *testing.T) {
	var stream []byte
	for i := range 100 {
		stream = append(stream, frame(bytes.Repeat([]byte{byte(i)}, 100))...)
	}
	rc := &readCounter{r: bytes.NewReader(stream)}
	rd := NewReader(rc, 1500)
	buf := make([]byte, 1500)
	for i := range 100 {
		if n, err := rd.ReadPacket(buf); err != nil || n != 100 || buf[0] != byte(i) {
			t.Fatalf("packet %d: %d, %v", i, n, err)
		}
	}
	if rc.calls != 1 {
		t.Errorf("%d Read calls for 100 packets of 100 bytes, want 1", rc.calls)
	}
}

func TestWriterRefuses(t *testing.T) {
	w := NewWriter(io.Discard)
	for _, n := range []int{0, MaxPacket + 1} {
		if err := w.WritePacket(make([]byte, n)); err == nil || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("WritePacket of %d bytes: %v, want an error naming the size", n, err)
		}
	}
	if w.Buffered() != 0 {
		t.Errorf("refused packets left %d bytes buffered", w.Buffered())
	}
}

// failWriter fails every Write after writing half.
type failWriter struct{ calls int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.calls++
	return len(p) / 2, errors.New("broken pipe")
}

func TestWriterErrorIsSticky(t *testing.T) {
	fw := &failWriter{}
	w := NewWriter(fw)
	if err := w.WritePacket([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	err := w.Flush()
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("Flush: %v, want the write error", err)
	}
	if again := w.WritePacket([]byte("d")); again != err {
		t.Errorf("WritePacket after a failed Flush: %v, want %v", again, err)
	}
	if again := w.Flush(); again != err || fw.calls != 1 {
		t.Errorf("Flush again: %v after %d writes, want %v after 1", again, fw.calls, err)
	}
}

func TestNewReaderMaxPanics(t *testing.T) {
	for _, max := range []int{0, -1, MaxPacket + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewReader with max %d did not panic", max)
				}
			}()
			NewReader(bytes.NewReader(nil), max)
		}()
	}
}
