package pppssh

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"testing"
)

// gatedConn is a net.Conn whose writes are recorded and each held until
// the test releases it.
type gatedConn struct {
	net.Conn // nil: only Write and Close are used
	entered  chan []byte
	release  chan error
	closed   chan struct{}
	once     sync.Once
}

func newGatedConn() *gatedConn {
	return &gatedConn{entered: make(chan []byte), release: make(chan error), closed: make(chan struct{})}
}

func (g *gatedConn) Write(p []byte) (int, error) {
	select {
	case g.entered <- append([]byte(nil), p...):
	case <-g.closed:
		return 0, net.ErrClosed
	}
	select {
	case err := <-g.release:
		if err != nil {
			return 0, err
		}
		return len(p), nil
	case <-g.closed:
		return 0, net.ErrClosed
	}
}

func (g *gatedConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return nil
}

// newQueueingConn is a coalescingConn that never writes in its caller:
// every packet goes through the writer, as under load.
func newQueueingConn(c net.Conn) *coalescingConn {
	w := newCoalescingConn(c)
	w.idleGap = math.MaxInt64
	return w
}

func TestCoalescingWritesAPacketOnAnIdleSocketInline(t *testing.T) {
	g := newGatedConn()
	w := newCoalescingConn(g)
	defer w.Close()
	returned := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("ping"))
		returned <- err
	}()
	if got := <-g.entered; string(got) != "ping" {
		t.Fatalf("write(2) carried %q", got)
	}
	// Written by its caller: the socket's own error is that Write's
	// result (a queued packet's Write has returned nil long before).
	broken := errors.New("connection reset")
	g.release <- broken
	if err := <-returned; !errors.Is(err, broken) {
		t.Fatalf("Write on an idle socket returned %v, want the write(2)'s own %v", err, broken)
	}
}

func TestCoalescingWritesWhatQueuedBehindAWriteAtOnce(t *testing.T) {
	g := newGatedConn()
	w := newQueueingConn(g)
	defer w.Close()
	if _, err := w.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if got := <-g.entered; string(got) != "first" {
		t.Fatalf("first write(2) carried %q", got)
	}
	// While "first" is in the kernel, three packets queue up and their
	// Writes return at once.
	for _, p := range []string{"a", "bb", "ccc"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	g.release <- nil
	if got := <-g.entered; string(got) != "abbccc" {
		t.Fatalf("second write(2) carried %q, want the three queued packets in one", got)
	}
	g.release <- nil
}

func TestCoalescingKeepsOrderThroughARealSocket(t *testing.T) {
	a, b := net.Pipe()
	w := newCoalescingConn(a) // idle packets inline, the rest queued
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	for i := range 2000 {
		p := bytes.Repeat([]byte{byte(i)}, i%300+1)
		want.Write(p)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// Every byte has reached the socket: nothing queued, and no write(2)
	// in progress (the writer takes the queue before it writes, so an
	// empty queue alone is not enough: Close would cut that last write).
	w.mu.Lock()
	for (len(w.pending) > 0 || w.busy) && w.err == nil {
		w.drained.Wait()
	}
	w.mu.Unlock()
	w.Close()
	if all := <-got; !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("read %d bytes, not the %d written in order", len(all), want.Len())
	}
}

func TestCoalescingReportsAFailedWriteAndClosesTheSocket(t *testing.T) {
	g := newGatedConn()
	w := newQueueingConn(g)
	defer w.Close()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	broken := errors.New("connection reset")
	g.release <- broken
	<-g.closed // the reader side is told, through the closed socket
	if _, err := w.Write([]byte("y")); !errors.Is(err, broken) {
		t.Fatalf("Write after a failed write(2): %v, want %v", err, broken)
	}
}

func TestCoalescingHoldsWritesBeyondItsBound(t *testing.T) {
	g := newGatedConn()
	w := newQueueingConn(g)
	defer w.Close()
	w.Write([]byte("x"))
	<-g.entered // in the kernel; pending is empty again
	if _, err := w.Write(make([]byte, maxPending-1)); err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, 2)) // over the bound: waits
		returned <- err
	}()
	select {
	case err := <-returned:
		t.Fatalf("a Write over the bound returned before anything drained: %v", err)
	default:
	}
	g.release <- nil // "x" done; the queued maxPending-1 bytes go next
	if got := <-g.entered; len(got) != maxPending-1 {
		t.Fatalf("second write(2) carried %d bytes, want %d", len(got), maxPending-1)
	}
	g.release <- nil
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if got := <-g.entered; len(got) != 2 {
		t.Fatalf("third write(2) carried %d bytes, want 2", len(got))
	}
	g.release <- nil
}

func TestCoalescingCloseEndsABlockedWriteAndIsIdempotent(t *testing.T) {
	g := newGatedConn()
	w := newQueueingConn(g)
	w.Write([]byte("stuck"))
	<-g.entered // never released: Close must end it
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}
