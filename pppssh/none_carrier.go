package pppssh

import (
	"context"
	"sync"

	"golang.org/x/crypto/ssh"
)

// noneCarrier is MODE=none: no tunnel, so nothing to prepare or start;
// the link is its SSH connection and its port forwards, and it ends when
// the keepalive gives up or Close is called.
type noneCarrier struct {
	done chan struct{}
	once sync.Once
}

func newNoneCarrier() *noneCarrier { return &noneCarrier{done: make(chan struct{})} }

func (*noneCarrier) Prepare(context.Context) error { return nil }

func (*noneCarrier) Start(context.Context, *ssh.Client) (CarrierInfo, error) {
	return CarrierInfo{Mode: ModeNone}, nil
}

func (n *noneCarrier) Done() <-chan struct{} { return n.done }
func (*noneCarrier) Err() error              { return nil }

func (n *noneCarrier) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}
