package forward

import (
	"io"
	"net"
)

// splice copies both ways until both directions have ended, passing an
// end of one direction on as a half-close where the far side allows it
// (TCP, Unix sockets and SSH channels all do), as OpenSSH does.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(b, a)
	}()
	copyHalf(a, b)
	<-done
}

type closeWriter interface{ CloseWrite() error }

// copyHalf copies from src to dst, then ends dst's writing side; if it
// cannot (or copying failed), both are closed, which ends the other half.
func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(closeWriter); ok && err == nil {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}
