package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/vpn-pppssh/vpn-pppssh/internal/pollfd"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// runOnTerminal waits for the client's terminal (attach.go), then runs
// pppd on it. After the request, the session's stdin carries nothing: its
// end (the client closed the link, or went away) ends pppd as the
// terminal's hangup does. A pppd killed by a signal is started again on the
// terminal (restart.go).
func runOnTerminal(ctx context.Context, policy pppssh.Policy, o Options, req pppssh.Request, router *routing.Router, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := onEOF(o.Stdin, cancel) // from now: a client gone while it attaches frees its slots at once
	defer stop()
	t, err := o.attach.accept(ctx, AttachTimeout, o.Account.UID)
	if err != nil {
		log.Error("no terminal for pppd", "err", err)
		fmt.Fprintln(o.stderr(), pppssh.ServerFailedMarker+err.Error())
		return err
	}
	defer t.Close()
	log.Debug("pppd speaks on the client's terminal", "tty", t.path)
	fmt.Fprintln(o.stderr(), pppssh.ServerAttachedMarker)
	o.tty, o.ttyPath = t.tty, t.path
	budget := restarts{limit: policy.PPPDRestarts}
	for {
		var ready bool
		err := runPPPD(ctx, policy.PPPD, o, req, router, log, &ready)
		sig, killed := killedBySignal(err)
		if !killed || ctx.Err() != nil {
			return err
		}
		if !ready {
			// The client counts one renegotiation per restart: a pppd
			// that never came up ends the session instead.
			log.Error("pppd was killed before the link was up: not starting it again", "signal", sig)
			return err
		}
		if rerr := restartable(&policy, o.PolicyPath, req, &budget); rerr != nil {
			log.Error("pppd was killed: not starting it again", "signal", sig, "err", rerr)
			return err
		}
		// Its interface went, and with it the routes through it; what
		// is left (rules, forwarding) is undone and set again for the
		// new interface once it is up.
		if uerr := router.Close(); uerr != nil {
			log.Error("undoing the killed pppd's changes", "err", uerr)
			return errors.Join(err, uerr)
		}
		if lerr := resetLine(o.tty); lerr != nil {
			log.Error("not starting pppd again", "err", lerr)
			return errors.Join(err, lerr)
		}
		o.offerDNS = policy.OfferDNS
		log.Warn("pppd was killed: starting it again on the same terminal", "signal", sig)
		fmt.Fprintln(o.stderr(), pppssh.ServerRestartMarker)
	}
}

// restartable decides whether a killed pppd may be started again: the
// policy is read again, so that what the admin changed since the session
// began applies (PPPD_RESTARTS, and the request checked against it anew),
// and the restart is counted against PPPD_RESTARTS.
func restartable(policy *pppssh.Policy, path string, req pppssh.Request, budget *restarts) error {
	p, err := pppssh.LoadPolicy(path)
	if err != nil {
		return err
	}
	if err := p.Check(req); err != nil {
		return err
	}
	*policy = p
	budget.limit = p.PPPDRestarts
	if !budget.take() {
		return fmt.Errorf("PPPD_RESTARTS=%d restarts within %v already", p.PPPDRestarts, restartWindow)
	}
	return nil
}

// onEOF calls f once its reader, a non-blocking duplicate of in
// (pollfd.Dup), sees the end of in (or an error). The returned stop ends
// the watch, waits for it and sets in blocking again. Where in cannot be
// polled (a file, /dev/null), nothing is watched.
func onEOF(in *os.File, f func()) (stop func()) {
	polled, restore, err := pollfd.Dup(in)
	if err != nil {
		return func() {}
	}
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
		restore() // ends the read
		wg.Wait()
	}
}
