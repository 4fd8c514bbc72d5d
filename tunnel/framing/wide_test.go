package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// TestWideRoundTrip carries packets past Narrow's limit, as an offloading
// device hands them out, and checks each header is 4 bytes.
func TestWideRoundTrip(t *testing.T) {
	pkts := [][]byte{{1}, bytes.Repeat([]byte{2}, MaxPacket+1), bytes.Repeat([]byte{3}, 1500), bytes.Repeat([]byte{4}, 65563)}
	var stream bytes.Buffer
	w := NewFormatWriter(&stream, Wide, DefaultBatch)
	want := 0
	for _, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		want += 4 + len(p)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if stream.Len() != want {
		t.Fatalf("stream of %d bytes, want %d (a 4-byte length each)", stream.Len(), want)
	}
	if got := binary.BigEndian.Uint32(stream.Bytes()[5:]); got != MaxPacket+1 {
		t.Fatalf("second length %d, want %d", got, MaxPacket+1)
	}
	r := NewFormatReader(&stream, Wide, 70000)
	buf := make([]byte, 70000)
	for i, p := range pkts {
		n, err := r.ReadPacket(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], p) {
			t.Fatalf("packet %d: %d bytes back, sent %d", i, n, len(p))
		}
	}
	if _, err := r.ReadPacket(buf); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
}

// TestWideRefusesLengths: a hostile 4-byte length (0, above the reader's
// maximum, or one that would overflow) ends the stream with a LengthError.
func TestWideRefusesLengths(t *testing.T) {
	for _, n := range []uint32{0, 70001, MaxWidePacket + 1, 1<<32 - 1} {
		stream := binary.BigEndian.AppendUint32(nil, n)
		r := NewFormatReader(bytes.NewReader(append(stream, 1, 2, 3)), Wide, 70000)
		_, err := r.ReadPacket(make([]byte, 70000))
		var le *LengthError
		if !errors.As(err, &le) {
			t.Fatalf("length %d: %v, want a LengthError", n, err)
		}
	}
	w := NewFormatWriter(io.Discard, Wide, DefaultBatch)
	if err := w.WritePacket(make([]byte, MaxWidePacket+1)); err == nil {
		t.Fatal("a packet above MaxWidePacket was framed")
	}
	if err := NewWriter(io.Discard).WritePacket(make([]byte, MaxPacket+1)); err == nil {
		t.Fatal("Narrow framed a packet above MaxPacket")
	}
}
