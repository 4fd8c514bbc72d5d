package pppssh

import (
	"context"
	"fmt"
	"time"
)

// renewer is a carrier whose link can go down and come back in place,
// with no new session (PPP: the server helper restarted its pppd on the
// link's terminal, and the local pppd renegotiated LCP and IPCP with it).
type renewer interface {
	// Lapsed gets a value each time the link, once up, went down in place.
	Lapsed() <-chan struct{}
	// Renewed waits until it is up again and reports it as Start did.
	Renewed(ctx context.Context) (CarrierInfo, error)
}

// Lapsed gets a value each time the link, once up, went down in place,
// without ending: the interface lost its addresses and the routes through
// it, and the carrier is renegotiating. Renewed then says when it is back.
// Nil (never ready) before Start succeeded and for a carrier that cannot
// come back in place (tun, ethernet: a new device is a new link).
func (l *Link) Lapsed() <-chan struct{} {
	if r, ok := l.carrier.(renewer); ok && l.upDone() {
		return r.Lapsed()
	}
	return nil
}

// Renewed waits, within CONNECT_TIMEOUT, until the link is up again after
// a lapse, and describes it as Start did, up since now. It fails when the
// link ends first (the error says why) or when ctx ends.
func (l *Link) Renewed(ctx context.Context) (Info, error) {
	r, ok := l.carrier.(renewer)
	if !ok || !l.upDone() {
		return Info{}, fmt.Errorf("link %s: no renewal in place for MODE=%s", l.cfg.Name, l.cfg.Mode)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, l.cfg.ConnectTimeout,
		fmt.Errorf("link not up again within CONNECT_TIMEOUT (%v) of going down in place", l.cfg.ConnectTimeout))
	defer cancel()
	// The link's end (the keepalive gave up: a silent path leaves the
	// sessions open) ends the wait too.
	ctx, cancelEnd := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	defer func() {
		cancelEnd(nil)
		<-watched
	}()
	go func() {
		defer close(watched)
		select {
		case <-l.done:
			cancelEnd(fmt.Errorf("the link ended: %w", l.endErr))
		case <-ctx.Done():
		}
	}()
	begin := time.Now()
	ci, err := r.Renewed(ctx)
	if err != nil {
		select {
		case <-l.carrier.Done():
			// The link has ended by itself: its end is recorded before
			// the owner hears of it, so that Detach sees it.
			<-l.done
		default:
		}
		return Info{}, fmt.Errorf("link %s: %w", l.cfg.Name, err)
	}
	info := l.info
	info.CarrierInfo = ci.complete(l.cfg)
	info.Since = time.Now()
	l.log.Info("link up again in place", "iface", ci.Iface, "after", time.Since(begin).Round(time.Millisecond))
	return info, nil
}

// upDone reports whether Start has brought the link up: its carrier and
// Info are set for good.
func (l *Link) upDone() bool {
	select {
	case <-l.startDone:
	default:
		return false
	}
	return !l.info.Since.IsZero()
}
