package framing

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary streams to a Reader: it must not panic,
// never return a packet of 0 or more than its maximum, and the packets it
// returns, framed again, must be the stream it read (all of it at io.EOF).
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 1, 'd'}, uint16(1500))
	f.Add([]byte{0, 0}, uint16(1500))
	f.Add([]byte{0xff, 0xff, 1}, uint16(100))
	f.Add([]byte{0, 5, 'a'}, uint16(4))
	f.Add([]byte{0}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, m uint16) {
		max := int(m)%MaxPacket + 1
		rd := NewReader(bytes.NewReader(data), max)
		buf := make([]byte, max)
		var again []byte
		var err error
		for range len(data)/(HeaderLen+1) + 1 { // each packet takes 3 bytes at least
			var n int
			if n, err = rd.ReadPacket(buf); err != nil {
				if n != 0 {
					t.Fatalf("ReadPacket returned %d bytes with %v", n, err)
				}
				break
			}
			if n < 1 || n > max {
				t.Fatalf("ReadPacket returned %d bytes, maximum %d", n, max)
			}
			again = append(again, frame(buf[:n])...)
		}
		if err == nil {
			t.Fatalf("no error after %d bytes of stream", len(data))
		}
		if !bytes.HasPrefix(data, again) {
			t.Fatalf("packets read back do not frame to the stream")
		}
		var le *LengthError
		switch {
		case err == io.EOF:
			if len(again) != len(data) {
				t.Fatalf("io.EOF after %d of %d bytes", len(again), len(data))
			}
		case err == io.ErrUnexpectedEOF:
		case errors.As(err, &le):
			if le.Length != 0 && le.Length <= max {
				t.Fatalf("%v for a length the reader accepts", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
