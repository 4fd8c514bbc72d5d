// Package serve is the server half of vpn-pppssh: `vpn-pppssh serve`, run
// on the server through sudo as the SSH session's command when the client
// sets SERVER_HELPER. It reads one validated request from the session
// (pppssh.Request), checks it against the server's policy, answers, runs
// pppd on the session's stdin and stdout exactly as the classic
// `sudo pppd nodetach notty noauth` does (or, when the request names a
// terminal, on the terminal of the client's second session, attach.go),
// and once the link is up applies
// the server's routes, forwarding and masquerade for it. When pppd ends,
// for any reason (the client stopped, vanished, or the helper was told to
// stop), it undoes them.
//
// A session goes through these steps, and a refusal at any of them is
// answered on the session's stdout before anything on the host changed:
//
//	slot      one of MAX_SESSIONS slot locks and one of the account's
//	          MAX_SESSIONS_PER_ACCOUNT (slots.go), taken before the
//	          request is read, so idle sessions count against the caps
//	request   one JSON line within RequestTimeout (pppssh.ReadRequestWithin)
//	policy    the request against server.conf (pppssh.Policy.Check)
//	address   the lock of the client's tunnel address (owner.go): a session
//	          may replace only its own earlier session, that is one of the
//	          same account (SUDO_UID, set by sudo) and the same link name
//	claims    under the host lock (waited for 10 s at most), the
//	          addresses and networks of the other live sessions and of the
//	          kernel (pppssh.Policy.CheckHost); a record of another
//	          session that cannot be read refuses the session
//	terminal  with the request's tty token: the client's terminal session
//	          within AttachTimeout (attach.go)
//	pppd      run on the session or the terminal; once up, and only if it
//	          negotiated the request's own addresses, routes, forwarding
//	          and masquerade. On the terminal, a pppd killed by a signal
//	          while the client is there is started again on it, up to
//	          PPPD_RESTARTS times in 10 minutes (restart.go): the client
//	          renegotiates on the same session
//
// Clients cannot forge the account: sudo sets SUDO_UID itself. They choose
// the link name, so two links of one account with the same name are one
// identity; an account is the unit of trust of the sudoers line anyway.
//
// What a client learns: its refusals name what it asked for and the
// policy key that would allow it, never another session's addresses,
// networks or account ("peer X is in use by another session"). The
// helper's stderr reaches the client, so it carries only this session's
// lines; what the helper does about other sessions (undoing the leftovers
// of dead ones) goes to the system log (tag vpn-pppssh-serve).
//
// Signals: the client's account can signal its sudo, which relays SIGHUP,
// SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 and the stop signals to the
// helper. The first six end the session as a hangup does (pppd ended, the
// server's changes undone, then the owner record, the address lock and
// the slots released); SIGTSTP, SIGTTIN and SIGTTOU are ignored, by the
// helper and by its pppd, so neither is ever stopped holding a lock. A
// helper killed outright takes its pppd with it (Pdeathsig), and the next
// session undoes its journal.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
)

// RequestTimeout is how long a session has to send its request.
const RequestTimeout = 10 * time.Second

// Account is who runs the session, as sudo says (SUDO_UID, SUDO_USER).
type Account struct {
	UID  int
	Name string
}

// Options are the server half's settings; Stdin and Stdout are the SSH
// session and carry PPP once the request is answered.
type Options struct {
	PolicyPath     string // the admin's limits, and which pppd to run
	StateDir       rundir.Dir
	Account        Account
	Stdin          *os.File
	Stdout         *os.File
	Stderr         *os.File      // nil: os.Stderr; reaches the client, so only this session's own lines go here
	Log            *slog.Logger  // this session's own lines (the client's log)
	Others         *slog.Logger  // lines about other sessions, never shown to this client; nil: dropped
	RequestTimeout time.Duration // 0: RequestTimeout

	kernel   hostChecker     // nil: the policy's CheckHost; tests replace it
	offerDNS []netip.Addr    // the policy's OFFER_DNS, for runPPPD
	attach   *attachListener // the request's terminal is to come here (SERVER_PTY)
	tty      *os.File        // pppd's line, when not Stdin and Stdout
	ttyPath  string          // its name in /dev/pts, checked
}

func (o Options) stderr() *os.File {
	if o.Stderr == nil {
		return os.Stderr
	}
	return o.Stderr
}

func (o Options) others() *slog.Logger {
	if o.Others == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Others
}

// ErrEnded is returned when the helper was told to stop (a signal relayed
// by sudo, or sshd's hangup) before its pppd ran.
var ErrEnded = errors.New("the session was ended before its link started")

// hostChecker is the kernel part of the policy check.
type hostChecker func(pppssh.Policy, pppssh.Request) error

// Run serves one link and returns when its pppd has ended and the server's
// changes are undone.
func Run(ctx context.Context, o Options) error {
	refuse := func(err error) error {
		pppssh.WriteReply(o.Stdout, err)
		return err
	}
	policy, err := pppssh.LoadPolicy(o.PolicyPath)
	if err != nil {
		return refuse(err)
	}
	slots, err := takeSlots(o.StateDir, policy, o.Account.UID)
	if err != nil {
		return refuse(err)
	}
	defer slots.Release()
	limit := o.RequestTimeout
	if limit == 0 {
		limit = RequestTimeout
	}
	req, err := pppssh.ReadRequestWithin(o.Stdin, limit)
	if err != nil {
		return refuse(err)
	}
	if ctx.Err() != nil {
		return refuse(ErrEnded) // told to stop while the request came: take over nothing
	}
	log := o.Log.With("link", req.Link, "peer", req.Peer)
	if err := policy.Check(req); err != nil {
		return refuse(err)
	}
	name := "serve-" + req.Peer.String()
	me := owner{UID: o.Account.UID, User: o.Account.Name, Link: req.Link, Pid: os.Getpid(),
		Local: req.Local, Peer: req.Peer, Local6: req.Local6, Peer6: req.Peer6, Routes: req.Routes,
		Mode: req.Mode, Bits: req.Bits, Bits6: req.Bits6}
	sess, err := takeOver(o.StateDir, name, me, log)
	if err != nil {
		return refuse(err)
	}
	defer sess.Release()
	cleanupDead(o.StateDir, o.others())
	kernel := o.kernel
	if kernel == nil {
		kernel = pppssh.Policy.CheckHost
	}
	if err := sess.claim(policy, req, kernel, o.others()); err != nil {
		return refuse(err)
	}
	if req.TTY != "" {
		ln, err := listenAttach(o.StateDir, req.TTY)
		if err != nil {
			return refuse(err)
		}
		defer ln.Close()
		o.attach = ln
	}
	router, err := routing.New(name, string(o.StateDir))
	if err != nil {
		return refuse(err)
	}
	defer func() {
		if err := router.Close(); err != nil {
			log.Error("undoing the server's changes", "err", err)
		}
	}()
	if ctx.Err() != nil {
		return refuse(ErrEnded)
	}
	if err := pppssh.WriteReply(o.Stdout, nil); err != nil {
		return fmt.Errorf("answering the request: %w", err)
	}
	if req.EffectiveMode() != pppssh.ModePPP {
		return runTun(ctx, o, req, router, log)
	}
	o.offerDNS = policy.OfferDNS
	if o.attach != nil {
		return runOnTerminal(ctx, policy, o, req, router, log)
	}
	return runPPPD(ctx, policy.PPPD, o, req, router, log, nil)
}
