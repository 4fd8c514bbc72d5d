package framing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the size of the length before each packet.
const HeaderLen = 2

// MaxPacket is the largest length the format can express.
const MaxPacket = 1<<16 - 1

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
	br  *bufio.Reader
	max int
	err error // sticky: set once the stream is out of step or ended
}

// NewReader reads packets of at most max bytes from r. max must be 1 to
// MaxPacket; another value is a programming error and panics.
func NewReader(r io.Reader, max int) *Reader {
	if max < 1 || max > MaxPacket {
		panic(fmt.Sprintf("framing: NewReader max %d outside 1..%d", max, MaxPacket))
	}
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), max: max}
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
	hdr, err := r.br.Peek(HeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(hdr))
	if n == 0 || n > r.max {
		r.err = &LengthError{Length: n, Max: r.max}
		return 0, r.err
	}
	r.br.Discard(HeaderLen) // cannot fail: Peek has them
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
