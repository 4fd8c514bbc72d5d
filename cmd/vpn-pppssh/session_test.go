package main

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"golang.org/x/crypto/ssh"
)

type fakeTunnel struct {
	renewed  pppssh.Info
	renewErr error
	renewals int
	closeErr error
	closed   int
	done     chan struct{}
}

func (f *fakeTunnel) Done() <-chan struct{}              { return f.done }
func (f *fakeTunnel) Wait() error                        { <-f.done; return nil }
func (f *fakeTunnel) CloseContext(context.Context) error { f.closed++; return f.closeErr }

func (f *fakeTunnel) Detach(time.Duration) *ssh.Client { return nil }
func (f *fakeTunnel) Lapsed() <-chan struct{}          { return nil }
func (f *fakeTunnel) Renewed(context.Context) (pppssh.Info, error) {
	f.renewals++
	return f.renewed, f.renewErr
}

type fakeNet struct {
	err    error
	closed int
	dns    string
}

func (f *fakeNet) close(context.Context) error { f.closed++; return f.err }
func (f *fakeNet) firewall() string            { return "" }
func (f *fakeNet) changes() []string           { return nil }
func (f *fakeNet) dnsLine() string             { return f.dns }

// TestSessionCloseKeepsBothErrors: undoing the networks and closing the
// link both run, and neither error is dropped.
func TestSessionCloseKeepsBothErrors(t *testing.T) {
	netErr := errors.New("undoing routes and rules: removing route 203.0.113.0/24 dev ppp0: no such process")
	linkErr := errors.New("pppd (pid 7) had not ended 3s after SIGTERM (perhaps awaiting the peer's Terminate-Ack or its ip-down scripts) and was killed")
	for _, tc := range []struct {
		name      string
		net, link error
	}{
		{"both", netErr, linkErr},
		{"link only", nil, linkErr},
		{"networks only", netErr, nil},
		{"neither", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, l := &fakeNet{err: tc.net}, &fakeTunnel{closeErr: tc.link, done: make(chan struct{})}
			err := (&session{link: l, net: n}).Close(context.Background())
			if n.closed != 1 || l.closed != 1 {
				t.Errorf("networks closed %d times, link %d times; want once each", n.closed, l.closed)
			}
			for _, want := range []error{tc.net, tc.link} {
				if want != nil && !errors.Is(err, want) {
					t.Errorf("close = %v, lost %v", err, want)
				}
			}
			if tc.net == nil && tc.link == nil && err != nil {
				t.Errorf("close = %v, want nil", err)
			}
		})
	}
}

// TestSessionRenew: a renewal takes the networks down once, waits for the
// link and joins the networks again with what it reports; when the link
// does not come back, the networks are not undone a second time by the
// Close that follows.
func TestSessionRenew(t *testing.T) {
	back := pppssh.Info{CarrierInfo: pppssh.CarrierInfo{Iface: "ppp7", Local: netip.MustParseAddr("198.51.100.1"),
		Remote: netip.MustParseAddr("198.51.100.2")}}
	t.Run("back", func(t *testing.T) {
		old, fresh := &fakeNet{dns: "dns 203.0.113.2 via systemd-resolved"}, &fakeNet{dns: "dns 203.0.113.53 via systemd-resolved"}
		var joined []pppssh.Info
		d := &driver{join: func(_ context.Context, info pppssh.Info) (networks, error) {
			joined = append(joined, info)
			return fresh, nil
		}}
		l := &fakeTunnel{renewed: back, done: make(chan struct{})}
		s := &session{link: l, net: old, d: d}
		if err := s.Renew(context.Background()); err != nil {
			t.Fatalf("Renew = %v", err)
		}
		if old.closed != 1 || l.renewals != 1 || len(joined) != 1 || joined[0].Iface != "ppp7" {
			t.Fatalf("old networks closed %d times, renewals %d, joined %v; want 1, 1, [ppp7]", old.closed, l.renewals, joined)
		}
		if d.st.Iface != "ppp7" || d.st.Local != "198.51.100.1" || d.st.DNS != fresh.dns {
			t.Errorf("state after the renewal: %+v", d.st)
		}
		if err := s.Close(context.Background()); err != nil || fresh.closed != 1 || old.closed != 1 {
			t.Errorf("Close = %v: fresh networks closed %d times, old %d; want 1 and 1", err, fresh.closed, old.closed)
		}
	})
	t.Run("not back", func(t *testing.T) {
		gone := errors.New("local pppd ended: exit status 16")
		old := &fakeNet{}
		d := &driver{join: func(context.Context, pppssh.Info) (networks, error) {
			t.Fatal("networks joined for a link that did not come back")
			return nil, nil
		}}
		l := &fakeTunnel{renewErr: gone, done: make(chan struct{})}
		s := &session{link: l, net: old, d: d}
		if err := s.Renew(context.Background()); !errors.Is(err, gone) {
			t.Fatalf("Renew = %v, want %v", err, gone)
		}
		if err := s.Close(context.Background()); err != nil || old.closed != 1 || l.closed != 1 {
			t.Errorf("Close = %v: networks closed %d times, link %d; want 1 and 1", err, old.closed, l.closed)
		}
	})
}
