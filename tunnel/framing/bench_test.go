package framing

import (
	"fmt"
	"io"
	"testing"
)

// loopReader replays one stream forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// BenchmarkFraming measures framing cost per packet size: write (batched
// onto io.Discard, flushed every 16 packets), read, and Copy.
func BenchmarkFraming(b *testing.B) {
	for _, size := range []int{64, 1400, 9000, 65535} {
		p := make([]byte, size)
		b.Run(fmt.Sprintf("write/%d", size), func(b *testing.B) {
			w := NewWriter(io.Discard)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := w.WritePacket(p); err != nil {
					b.Fatal(err)
				}
				if i%16 == 15 {
					if err := w.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("read/%d", size), func(b *testing.B) {
			var stream []byte
			for range 64 {
				stream = append(stream, frame(p)...)
			}
			rd := NewReader(&loopReader{b: stream}, MaxPacket)
			buf := make([]byte, MaxPacket)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rd.ReadPacket(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("copy/%d", size), func(b *testing.B) {
			w := NewWriter(io.Discard)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			burst := 0
			err := w.Copy(func(wait bool) ([]byte, error) {
				if !wait && burst == 16 {
					burst = 0
					return nil, nil // a burst of 16 ends
				}
				if !b.Loop() {
					return nil, io.EOF
				}
				burst++
				return p, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
