package pppssh

import (
	"errors"
	"strings"
	"testing"
)

// The helper's lines on stderr: the first device name is kept as sent
// (the carrier checks it), the first verdict counts.
func TestServerLineVerdictAndDevice(t *testing.T) {
	ss := &serverSession{ready: make(chan error, 1), restarts: newRestartLog()}
	h := &HelperIO{srv: ss}
	if d := h.Device(); d != "" {
		t.Fatalf("device before any line: %q", d)
	}
	ss.serverLine("some chatter")
	ss.serverLine(ServerDeviceMarker + "tun3")
	ss.serverLine(ServerDeviceMarker + "../../evil\x1b[2J")
	ss.serverLine(ServerReadyMarker)
	ss.serverLine(ServerFailedMarker + "too late")
	if d := h.Device(); d != "tun3" {
		t.Errorf("device %q, want the first one named, tun3", d)
	}
	if err := <-ss.ready; err != nil {
		t.Errorf("verdict %v, want ready", err)
	}
	// A restart announced: the verdict that follows is that restart's.
	if n, judged, _, err := ss.restarts.state(); n != 0 || !judged || err == nil || !strings.Contains(err.Error(), "too late") {
		t.Errorf("before a restart: %d restarts, judged %v, %v; want 0, true and the late failure", n, judged, err)
	}
	_, _, changed, _ := ss.restarts.state()
	ss.serverLine(ServerRestartMarker)
	if n, judged, _, _ := ss.restarts.state(); n != 1 || judged || !fired(changed) {
		t.Errorf("after a restart marker: %d restarts, judged %v, woken %v; want 1, false, true", n, judged, fired(changed))
	}
	if !fired(ss.restarts.announcements()) || fired(ss.restarts.announcements()) {
		t.Error("a restart not announced once")
	}
	ss.serverLine(ServerReadyMarker)
	if n, judged, _, err := ss.restarts.state(); n != 1 || !judged || err != nil {
		t.Errorf("after the restart's verdict: %d restarts, judged %v, %v; want 1, true, ready", n, judged, err)
	}

	ss = &serverSession{ready: make(chan error, 1), restarts: newRestartLog()}
	ss.serverLine(ServerFailedMarker + "no such bridge")
	err := <-ss.ready
	if err == nil || err.Error() != "the server could not apply its side: no such bridge" {
		t.Errorf("verdict %v", err)
	}
	if p := ss.failure.Load(); p == nil || !errors.Is(*p, err) {
		t.Errorf("failure not recorded: %v", p)
	}
}
