package framing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the size of the length before each packet (Narrow).
const HeaderLen = 2

// MaxPacket is the largest length Narrow can express.
const MaxPacket = 1<<16 - 1

// Format is the width of the length before each packet.
type Format int

const (
	// Narrow is the original format: a 2-byte length, up to MaxPacket.
	Narrow Format = iota
	// Wide has a 4-byte length, up to MaxWidePacket: for packets with a
	// virtio-net header, which may pass 64 KiB.
	Wide
)

// MaxWidePacket is the largest length a Wide reader accepts.
const MaxWidePacket = 1 << 20

// headerLen is the length's size in f.
func (f Format) headerLen() int {
	if f == Wide {
		return 4
	}
	return HeaderLen
}

// maxPacket is the largest length f can carry.
func (f Format) maxPacket() int {
	if f == Wide {
		return MaxWidePacket
	}
	return MaxPacket
}

// readBufferSize is the Reader's buffer: the size of an SSH channel's
// largest message twice over, so that one read takes in whatever the
// channel has.
const readBufferSize = 64 << 10

// LengthError is the error for a packet length the Reader refuses: 0, or
// above its maximum. The stream is out of step after it.
type LengthError struct {
	Length, Max int
}

func (e *LengthError) Error() string {
	if e.Length == 0 {
		return "framing: packet of length 0"
	}
	return fmt.Sprintf("framing: packet of %d bytes, above the maximum of %d", e.Length, e.Max)
}

// Reader reads framed packets from a byte stream.
type Reader struct {
	br     *bufio.Reader
	hdrLen int
	max    int
	err    error // sticky: set once the stream is out of step or ended
}

// NewReader reads Narrow packets of at most max bytes from r. max must be
// 1 to MaxPacket; another value is a programming error and panics.
func NewReader(r io.Reader, max int) *Reader { return NewFormatReader(r, Narrow, max) }

// NewFormatReader reads packets of format f, of at most max bytes, from r.
// max must be 1 to the format's largest; another value panics.
func NewFormatReader(r io.Reader, f Format, max int) *Reader {
	if max < 1 || max > f.maxPacket() {
		panic(fmt.Sprintf("framing: NewReader max %d outside 1..%d", max, f.maxPacket()))
	}
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), hdrLen: f.headerLen(), max: max}
}

// ReadPacket reads the next packet into p and returns its length. It
// returns io.EOF at the end of a stream that ends between packets,
// io.ErrUnexpectedEOF when it ends inside one, and a *LengthError for a
// length of 0 or above the maximum; these and read errors are returned
// again by every later call. A packet longer than p (give p the maximum to
// avoid it) is skipped with an error wrapping io.ErrShortBuffer, and the
// next call reads the packet after it.
func (r *Reader) ReadPacket(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	hdr, err := r.br.Peek(r.hdrLen)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return 0, err
	}
	var n int
	if r.hdrLen == 4 {
		n = int(min(binary.BigEndian.Uint32(hdr), MaxWidePacket+1))
	} else {
		n = int(binary.BigEndian.Uint16(hdr))
	}
	if n == 0 || n > r.max {
		r.err = &LengthError{Length: n, Max: r.max}
		return 0, r.err
	}
	r.br.Discard(r.hdrLen) // cannot fail: Peek has them
	if n > len(p) {
		if _, err := r.br.Discard(n); err != nil {
			r.err = unexpected(err)
			return 0, r.err
		}
		return 0, fmt.Errorf("framing: packet of %d bytes, buffer of %d: %w", n, len(p), io.ErrShortBuffer)
	}
	if _, err := io.ReadFull(r.br, p[:n]); err != nil {
		r.err = unexpected(err)
		return 0, r.err
	}
	return n, nil
}

// unexpected turns io.EOF inside a packet into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
