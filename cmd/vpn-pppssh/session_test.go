package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

type fakeTunnel struct {
	closeErr error
	closed   int
	done     chan struct{}
}

func (f *fakeTunnel) Done() <-chan struct{} { return f.done }
func (f *fakeTunnel) Wait() error           { <-f.done; return nil }
func (f *fakeTunnel) Close() error          { f.closed++; return f.closeErr }

func (f *fakeTunnel) Detach(time.Duration) *ssh.Client { return nil }

type fakeNet struct {
	err    error
	closed int
}

func (f *fakeNet) close(context.Context) error { f.closed++; return f.err }

// TestSessionCloseKeepsBothErrors: undoing the networks and closing the
// link both run, and neither error is dropped.
func TestSessionCloseKeepsBothErrors(t *testing.T) {
	netErr := errors.New("undoing routes and rules: removing route 203.0.113.0/24 dev ppp0: no such process")
	linkErr := errors.New("pppd (pid 7) ignored SIGTERM for 3s and was killed")
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
