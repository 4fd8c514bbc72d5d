package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

func TestBackoffDoublesToTheCap(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 8 {
		d = nextBackoff(d, 30*time.Second)
		got = append(got, d)
	}
	want := "[1s 2s 4s 8s 16s 30s 30s 30s]"
	if fmt.Sprint(got) != want {
		t.Errorf("backoff %v, want %s", got, want)
	}
	if d := nextBackoff(time.Second, time.Second); d != time.Second {
		t.Errorf("HOLDOFF_MAX=1: %v", d)
	}
}

func TestPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("link vpn: %w", &pppssh.HostKeyChangedError{Host: "h"}), true},
		{fmt.Errorf("link vpn: %w", &pppssh.UnknownHostError{Host: "h"}), true},
		{usageError(errors.New("bad key")), true},
		{errors.New("connecting to 192.0.2.2:22: connection refused"), false},
		{errors.New("sudo: a password is required"), false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
