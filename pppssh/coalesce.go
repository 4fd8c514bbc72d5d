package pppssh

import (
	"net"
	"sync"
	"time"
)

// maxPending bounds what the SSH transport may have written that is not
// yet in the kernel: more, and its Write waits for the socket.
const maxPending = 256 << 10

// idleGap is how long the socket must have had nothing to write before a
// packet is written by its caller rather than handed to the writer. Under
// load packets follow each other by far less (tens of microseconds at a
// few hundred Mbit/s); pings and keystrokes, by far more.
const idleGap = 500 * time.Microsecond

// coalescingConn sends, in one write(2), every SSH packet the transport
// wrote while the previous write was in the kernel. x/crypto/ssh flushes
// each packet by itself, so a link carrying one IP packet per SSH message
// (OpenSSH's tun forwarding) made one TCP segment per packet, and sshd
// one wake-up and read per packet: three times its CPU per GB against the
// OpenSSH client, which sends what its loop gathered. An idle link is not
// delayed: the first packet goes at once, only those behind it wait, and
// only for the write ahead of them. A packet that finds the socket idle
// for longer than idleGap is written by its caller, in its own goroutine:
// the hand-off to the writer would only add a wake-up to its round trip.
//
// Write returns before its bytes reach the kernel; a failed write is
// returned by every later Write, as the transport's next packet, and the
// connection is closed so that its reader sees the failure too.
type coalescingConn struct {
	net.Conn
	mu      sync.Mutex
	drained *sync.Cond // signalled after each write(2), the writer's or a caller's
	pending []byte
	spare   []byte
	err     error
	idleGap time.Duration
	busy    bool      // a write(2) is in progress
	last    time.Time // when the last write(2) ended

	kick      chan struct{} // the writer has something to send
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	w := &coalescingConn{
		Conn:    c,
		idleGap: idleGap,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.drained = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

func (w *coalescingConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.err == nil && len(w.pending) > 0 && len(w.pending)+len(p) > maxPending {
		w.drained.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if !w.busy && len(w.pending) == 0 && time.Since(w.last) > w.idleGap {
		return w.writeInline(p) // unlocks
	}
	first := len(w.pending) == 0
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default: // a kick is already waiting
		}
	}
	return len(p), nil
}

// writeInline writes p from the caller, with w.mu held on entry and
// released on return. Other Writes meanwhile queue behind it, as behind
// the writer's own write(2), and the writer is kicked to send them.
func (w *coalescingConn) writeInline(p []byte) (int, error) {
	w.busy = true
	w.mu.Unlock()
	n, err := w.Conn.Write(p)
	w.mu.Lock()
	w.busy, w.last = false, time.Now()
	if err != nil {
		w.fail(err)
	}
	w.drained.Broadcast()
	queued := len(w.pending) > 0
	w.mu.Unlock()
	if queued {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return n, err
}

// fail records the first failed write(2), with w.mu held.
func (w *coalescingConn) fail(err error) {
	if w.err == nil {
		w.err = err
		w.Conn.Close() // the transport's reader ends too
	}
	w.drained.Broadcast()
}

// loop is the one writer to the socket.
func (w *coalescingConn) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		}
		w.mu.Lock()
		for len(w.pending) > 0 && w.err == nil && !w.busy {
			out := w.pending
			w.pending = w.spare[:0]
			w.busy = true
			w.mu.Unlock()
			_, err := w.Conn.Write(out)
			w.mu.Lock()
			w.spare = out[:0]
			w.busy, w.last = false, time.Now()
			if err != nil {
				w.fail(err)
			}
			w.drained.Broadcast()
		}
		w.mu.Unlock()
	}
}

// Close closes the connection, which ends a write in progress, and waits
// for the writer; what was not yet sent is dropped, as a closed socket
// would drop it. Later Writes fail.
func (w *coalescingConn) Close() error {
	w.closeOnce.Do(func() {
		w.closeErr = w.Conn.Close()
		close(w.quit)
		<-w.done
		w.mu.Lock()
		if w.err == nil {
			w.err = net.ErrClosed
		}
		w.drained.Broadcast()
		w.mu.Unlock()
	})
	return w.closeErr
}
