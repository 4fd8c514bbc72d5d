package pppssh

import (
	"errors"
	"strings"
	"testing"
)

// The helper's lines on stderr: the first device name is kept as sent
// (the carrier checks it), the first verdict counts.
func TestServerLineVerdictAndDevice(t *testing.T) {
	ss := &serverSession{ready: make(chan error, 1), renewed: make(chan error, 1)}
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
	// A verdict after the first is a renewal's (a pppd restarted in
	// place): the latest is kept.
	if err := <-ss.renewed; err == nil || !strings.Contains(err.Error(), "too late") {
		t.Errorf("verdict after the first: %v, want the failure", err)
	}
	ss.serverLine(ServerFailedMarker + "older")
	ss.serverLine(ServerReadyMarker)
	if err := <-ss.renewed; err != nil {
		t.Errorf("latest verdict after the first: %v, want ready", err)
	}

	ss = &serverSession{ready: make(chan error, 1)}
	ss.serverLine(ServerFailedMarker + "no such bridge")
	err := <-ss.ready
	if err == nil || err.Error() != "the server could not apply its side: no such bridge" {
		t.Errorf("verdict %v", err)
	}
	if p := ss.failure.Load(); p == nil || !errors.Is(*p, err) {
		t.Errorf("failure not recorded: %v", p)
	}
}
