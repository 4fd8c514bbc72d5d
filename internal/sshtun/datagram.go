package sshtun

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/crypto/ssh"
)

// ErrDropped is matched by WritePacket's error when the packet was not
// sent (the peer's window or largest packet is too short for it), and by
// ReadPacket's when a message was longer than the caller's buffer. The
// channel is still usable: count it and go on.
var ErrDropped = errors.New("packet dropped")

// Stats are a Datagram's packet counts.
type Stats struct {
	Sent, Received uint64
	DroppedWindow  uint64 // not sent: the peer's window was short
	TooBig         uint64 // not sent: longer than the peer's largest packet; or received longer than the buffer
}

// Datagram carries one packet per channel message each way. One goroutine
// may call WritePacket and another ReadPacket at the same time; not two of
// either.
type Datagram struct {
	ch      ssh.Channel
	win     *windowMirror
	maxSend uint32
	pending *bufferMirror

	sent, received, droppedWindow, tooBig atomic.Uint64
}

// NewDatagram wraps a channel that x/crypto/ssh opened or accepted.
func NewDatagram(ch ssh.Channel) (*Datagram, error) {
	v := reflect.ValueOf(ch)
	if err := checkLayout(v.Type()); err != nil {
		return nil, err
	}
	e := v.Elem()
	max := e.FieldByName("maxRemotePayload").Uint()
	win := (*windowMirror)(unsafe.Pointer(e.FieldByName("remoteWin").UnsafeAddr()))
	pendingField := e.FieldByName("pending")
	pending := (*bufferMirror)(unsafe.Pointer(pendingField.Pointer()))
	if pending == nil || win.cond == nil {
		return nil, errors.New("sshtun: the channel is not open")
	}
	return &Datagram{ch: ch, win: win, maxSend: uint32(max), pending: pending}, nil
}

// WritePacket sends p as one message, or drops it with ErrDropped when
// the peer's window or largest packet is shorter. Any other error means
// the channel is gone.
func (d *Datagram) WritePacket(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if uint64(len(p)) > uint64(d.maxSend) {
		d.tooBig.Add(1)
		return fmt.Errorf("%w: %d bytes, the peer takes at most %d", ErrDropped, len(p), d.maxSend)
	}
	d.win.cond.L.Lock()
	win, closed := d.win.win, d.win.closed
	d.win.cond.L.Unlock()
	if closed {
		return io.EOF
	}
	if uint64(len(p)) > uint64(win) {
		d.droppedWindow.Add(1)
		return fmt.Errorf("%w: %d bytes, the peer's window has %d", ErrDropped, len(p), win)
	}
	if _, err := d.ch.Write(p); err != nil {
		return err
	}
	d.sent.Add(1)
	return nil
}

// ReadPacket reads exactly one message into p. A message longer than p is
// read and dropped, with an error matching ErrDropped.
func (d *Datagram) ReadPacket(p []byte) (int, error) {
	var one [1]byte
	buf := p
	if len(buf) == 0 {
		buf = one[:]
	}
	n, err := d.ch.Read(buf[:1])
	if err != nil {
		return 0, err
	}
	if n != 1 {
		return 0, io.ErrNoProgress
	}
	rest := d.headLen()
	if 1+rest > len(p) {
		// Take the message off the queue, in pieces.
		var scratch [4096]byte
		for rest > 0 {
			m, err := d.ch.Read(scratch[:min(rest, len(scratch))])
			if err != nil {
				return 0, err
			}
			rest -= m
		}
		d.tooBig.Add(1)
		return 0, fmt.Errorf("%w: a message longer than %d bytes", ErrDropped, len(p))
	}
	for got := 0; got < rest; {
		m, err := d.ch.Read(p[1+got : 1+rest])
		if err != nil {
			return 0, err
		}
		got += m
	}
	d.received.Add(1)
	return 1 + rest, nil
}

// headLen is what is left of the message at the head of the queue.
func (d *Datagram) headLen() int {
	d.pending.cond.L.Lock()
	defer d.pending.cond.L.Unlock()
	if d.pending.head == nil {
		return 0
	}
	return len(d.pending.head.buf)
}

// Stats returns the packet counts.
func (d *Datagram) Stats() Stats {
	return Stats{Sent: d.sent.Load(), Received: d.received.Load(),
		DroppedWindow: d.droppedWindow.Load(), TooBig: d.tooBig.Load()}
}

// Close closes the channel.
func (d *Datagram) Close() error { return d.ch.Close() }

// windowMirror, bufferMirror and elementMirror have the layout of
// x/crypto/ssh's window, buffer and element, as checkLayout verifies.
type windowMirror struct {
	cond         *sync.Cond
	win          uint32
	writeWaiters int
	closed       bool
}

type bufferMirror struct {
	cond   *sync.Cond
	head   *elementMirror
	tail   *elementMirror
	closed bool
}

type elementMirror struct {
	buf []byte
	//lint:ignore U1000 there for the layout: x/crypto's element has it
	next *elementMirror
}

// checked caches checkLayout's verdict per channel type (there is one).
var checked sync.Map // reflect.Type -> error (nil: fine)

// checkLayout checks that t is x/crypto's channel and that the fields
// Datagram reads are where and what the mirrors say.
func checkLayout(t reflect.Type) error {
	if v, ok := checked.Load(t); ok {
		err, _ := v.(error)
		return err
	}
	err := findLayout(t)
	checked.Store(t, err)
	return err
}

func findLayout(t reflect.Type) error {
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || t.Elem().Name() != "channel" {
		return fmt.Errorf("sshtun: x/crypto/ssh's channels are %v, not *ssh.channel: this version is not supported", t)
	}
	c := t.Elem()
	bad := func(what string) error {
		return fmt.Errorf("sshtun: x/crypto/ssh's %s is not as this package expects: this version is not supported", what)
	}
	if f, ok := c.FieldByName("maxRemotePayload"); !ok || f.Type.Kind() != reflect.Uint32 {
		return bad("channel.maxRemotePayload")
	}
	f, ok := c.FieldByName("remoteWin")
	if !ok || !sameLayout(f.Type, reflect.TypeOf(windowMirror{})) {
		return bad("channel.remoteWin")
	}
	f, ok = c.FieldByName("pending")
	if !ok || f.Type.Kind() != reflect.Pointer || !sameLayout(f.Type.Elem(), reflect.TypeOf(bufferMirror{})) {
		return bad("channel.pending")
	}
	head, _ := f.Type.Elem().FieldByName("head")
	if head.Type.Kind() != reflect.Pointer || !sameLayout(head.Type.Elem(), reflect.TypeOf(elementMirror{})) {
		return bad("buffer.head")
	}
	return nil
}

// sameLayout compares two structs field by field: name (the mirrors'
// names are x/crypto's, lower-cased for embedded fields), kind, size and
// offset.
func sameLayout(theirs, ours reflect.Type) bool {
	if theirs.Kind() != reflect.Struct || theirs.NumField() != ours.NumField() || theirs.Size() != ours.Size() {
		return false
	}
	for i := range ours.NumField() {
		a, b := theirs.Field(i), ours.Field(i)
		name := a.Name
		if a.Anonymous && name == "Cond" {
			name = "cond"
		}
		if name != b.Name || a.Type.Kind() != b.Type.Kind() || a.Type.Size() != b.Type.Size() || a.Offset != b.Offset {
			return false
		}
		if a.Type.Kind() == reflect.Pointer && b.Type.Elem() == reflect.TypeOf(sync.Cond{}) && a.Type.Elem() != b.Type.Elem() {
			return false
		}
	}
	return true
}
