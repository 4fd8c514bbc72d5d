package pppssh

import "sync"

// restartLog counts, in the order the helper's lines came, its restarts
// of the server's pppd in place (ServerRestartMarker) and its verdicts
// after the first (ServerReadyMarker, ServerFailedMarker): the verdict
// that follows restart k is that restart's.
type restartLog struct {
	mu        sync.Mutex
	n         int           // restarts announced
	verdictOf int           // the restart the latest verdict followed
	err       error         // that verdict: nil is ready
	changed   chan struct{} // closed at the next change, then replaced
	announced chan struct{} // one value held for the supervisor: a restart was announced
}

func newRestartLog() *restartLog {
	return &restartLog{changed: make(chan struct{}), announced: make(chan struct{}, 1)}
}

// restart records an announced restart.
func (r *restartLog) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.change()
	signal(r.announced)
}

// verdict records a verdict after the first.
func (r *restartLog) verdict(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verdictOf, r.err = r.n, err
	r.change()
}

// change wakes whoever waits on the last changed; r.mu is held.
func (r *restartLog) change() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// state is the restarts announced, whether the latest of them has its
// verdict, a channel closed at the next change, and the verdict.
func (r *restartLog) state() (n int, judged bool, changed <-chan struct{}, verdict error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.verdictOf == r.n, r.changed, r.err
}

// announcements gets a value when a restart was announced (one is held).
func (r *restartLog) announcements() chan struct{} { return r.announced }
