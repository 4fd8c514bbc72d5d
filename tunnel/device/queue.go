package device

import (
	"errors"
	"sync"
)

// Queue reads a device ahead of its consumer, in a goroutine of its own,
// so that the consumer can tell "a packet is ready" from "the next one
// must be waited for": the moment to flush a batch (framing.Writer.Copy).
// Buffers go round: a packet handed out by Next goes back to the pool at
// the following call to Next.
//
//	q := NewQueue(dev, 16)
//	go q.Fill()    // until the device fails or Stop
//	defer q.Stop()
//	p, err := q.Next(wait)
type Queue struct {
	dev   *Device
	full  chan []byte
	free  chan []byte
	quit  chan struct{}
	once  sync.Once
	err   error // why Fill ended; read after full is closed
	owned []byte
}

// ErrQueueEnded is Next's error once Fill has ended; QueueErr says why.
var ErrQueueEnded = errors.New("the device's reader ended")

// NewQueue makes a queue of n packets read ahead, with n+1 buffers of
// dev.ReadSize() bytes (memory is taken as packets fill them).
func NewQueue(dev *Device, n int) *Queue {
	q := &Queue{dev: dev, full: make(chan []byte, n), free: make(chan []byte, n+1), quit: make(chan struct{})}
	for range n + 1 {
		q.free <- make([]byte, dev.ReadSize())
	}
	return q
}

// Fill reads packets until the device fails or Stop is called.
func (q *Queue) Fill() {
	defer close(q.full)
	for {
		var buf []byte
		select {
		case buf = <-q.free:
		case <-q.quit:
			return
		}
		n, err := q.dev.Read(buf[:cap(buf)])
		if err != nil {
			q.err = err
			return
		}
		select {
		case q.full <- buf[:n]:
		case <-q.quit:
			return
		}
	}
}

// Next returns the next packet, or nil when none is ready and !wait. Once
// Fill has ended it returns ErrQueueEnded.
func (q *Queue) Next(wait bool) ([]byte, error) {
	if q.owned != nil {
		q.free <- q.owned[:cap(q.owned)]
		q.owned = nil
	}
	var p []byte
	var ok bool
	if wait {
		p, ok = <-q.full
	} else {
		select {
		case p, ok = <-q.full:
		default:
			return nil, nil
		}
	}
	if !ok {
		return nil, ErrQueueEnded
	}
	q.owned = p
	return p, nil
}

// Err is why Fill ended (the device's read error), once Next returned
// ErrQueueEnded; nil if Stop ended it.
func (q *Queue) Err() error { return q.err }

// Stop ends Fill at its next packet (close the device to end a Read that
// waits for one). It is safe to call more than once.
func (q *Queue) Stop() { q.once.Do(func() { close(q.quit) }) }

// QueueDepth is the read-ahead for a device: enough packets to fill a
// batch of MTU-sized ones, fewer when each may be a 64 KiB super-packet.
func QueueDepth(dev *Device) int {
	if dev.TSO() {
		return 16
	}
	return 64
}
