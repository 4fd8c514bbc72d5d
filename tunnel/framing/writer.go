package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultBatch is NewWriter's buffer size: the payload of one SSH channel
// message (x/crypto/ssh and OpenSSH both use 32 KiB), so that on the
// client one Flush is one message.
const DefaultBatch = 32 << 10

// Writer frames packets onto a byte stream, batching them: see the
// package comment. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	format Format
	size   int
	buf    []byte
	err    error // sticky: after a failed Write the stream is out of step
}

// NewWriter returns a Narrow Writer on w that batches up to DefaultBatch
// bytes.
func NewWriter(w io.Writer) *Writer { return NewFormatWriter(w, Narrow, DefaultBatch) }

// NewFormatWriter returns a Writer of format f on w that batches up to size
// bytes (a packet larger than size is written in a batch of its own).
func NewFormatWriter(w io.Writer, f Format, size int) *Writer {
	size = max(size, f.headerLen()+1)
	return &Writer{w: w, format: f, size: size, buf: make([]byte, 0, size)}
}

// WritePacket appends p, framed, to the batch. It writes to the stream
// only when the batch would otherwise pass its size; call Flush to send
// the batch. p is copied: the caller may reuse it at once. A p of length
// 0 or above the format's largest is refused.
func (w *Writer) WritePacket(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(p) == 0 || len(p) > w.format.maxPacket() {
		return fmt.Errorf("framing: cannot frame a packet of %d bytes (1 to %d)", len(p), w.format.maxPacket())
	}
	hl := w.format.headerLen()
	if len(w.buf) > 0 && len(w.buf)+hl+len(p) > w.size {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if hl == 4 {
		w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(p)))
	} else {
		w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(p)))
	}
	w.buf = append(w.buf, p...)
	return nil
}

// Buffered is the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes every pending packet in one Write. After a failed Write
// the stream is out of step: that error is returned by every later call.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("framing: writing %d bytes of packets: %w", len(w.buf), err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// A Source gives Copy its packets, one per call. With wait true it blocks
// until a packet is there; with wait false it must not block, and returns
// a nil packet when none is waiting. An error ends Copy; io.EOF ends it
// cleanly. Copy is done with the packet when it calls the Source again.
type Source func(wait bool) ([]byte, error)

// Copy frames every packet of src onto the stream until src returns an
// error, batching without delay: it takes the packets src has ready
// (wait=false) and flushes as soon as src would block, then waits for the
// next (wait=true). It flushes what is pending before it returns, and
// returns nil when src ended with io.EOF.
func (w *Writer) Copy(src Source) error {
	wait := true
	for {
		p, err := src(wait)
		if err != nil {
			ferr := w.Flush()
			switch {
			case err == io.EOF:
				return ferr
			case ferr != nil:
				return errors.Join(err, ferr)
			}
			return err
		}
		if p == nil && !wait {
			if err := w.Flush(); err != nil {
				return err
			}
			wait = true
			continue
		}
		if err := w.WritePacket(p); err != nil {
			return err
		}
		wait = false
	}
}
