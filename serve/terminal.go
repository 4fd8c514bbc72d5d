package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// runOnTerminal waits for the client's terminal (attach.go), then runs
// pppd on it. After the request, the session's stdin carries nothing: its
// end (the client closed the link, or went away) ends pppd as the
// terminal's hangup does.
func runOnTerminal(ctx context.Context, pppd string, o Options, req pppssh.Request, router *routing.Router, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t, err := o.attach.accept(ctx, AttachTimeout, o.Account.UID)
	if err != nil {
		log.Error("no terminal for pppd", "err", err)
		fmt.Fprintln(o.stderr(), pppssh.ServerFailedMarker+err.Error())
		return err
	}
	defer t.Close()
	log.Debug("pppd speaks on the client's terminal", "tty", ttyName(t.tty))
	stop := onEOF(o.Stdin, cancel)
	defer stop()
	o.tty = t.tty
	return runPPPD(ctx, pppd, o, req, router, log)
}

// onEOF calls f once f's reader, a non-blocking duplicate of in, sees
// the end of in (or an error). The returned stop ends the watch and waits
// for it. Where in cannot be polled, nothing is watched.
func onEOF(in *os.File, f func()) (stop func()) {
	fd, err := unix.Dup(int(in.Fd()))
	if err != nil {
		return func() {}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return func() {}
	}
	polled := os.NewFile(uintptr(fd), in.Name())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 512)
		for {
			if _, err := polled.Read(b); err != nil {
				f()
				return
			}
		}
	}()
	return func() {
		polled.Close()
		wg.Wait()
	}
}

// ttyName is the terminal's name, for the log.
func ttyName(f *os.File) string {
	name, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "?"
	}
	return name
}
