package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

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
