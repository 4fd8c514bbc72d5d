package main

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// redial makes a running link take itself down and dial again at once
// (its SIGHUP), even in a wait between redials. With --via ADDR only a
// link whose SSH connection leaves from ADDR is redialled: the ppp
// ip-down hook's way of moving the links that used an uplink that went
// down, and only those, to an uplink that remains.
func redial(o *options, cfg pppssh.Config) error {
	var via netip.Addr
	if o.flags.Changed("via") {
		a, err := netip.ParseAddr(o.via)
		if err != nil {
			return usageError(fmt.Errorf("--via %q: not an IP address", o.via))
		}
		via = a.Unmap()
	}
	pid, err := o.runDir.Owner(cfg.Name)
	if err != nil {
		return err
	}
	if pid == 0 {
		return &exitError{exitNotRunning, fmt.Errorf("link %s is not running", cfg.Name)}
	}
	if via.IsValid() {
		st, err := o.runDir.Read(cfg.Name)
		if err != nil {
			return fmt.Errorf("link %s: reading its state: %w", cfg.Name, err)
		}
		if st.Via != via.String() {
			from := st.Via
			if from == "" {
				from = "no known address"
			}
			fmt.Fprintf(o.stdout, "vpn-pppssh: link %s: its SSH connection leaves from %s, not %s: not redialled\n", cfg.Name, from, via)
			return nil
		}
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return &exitError{exitNotRunning, fmt.Errorf("link %s is not running (pid %d just ended)", cfg.Name, pid)}
		}
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	fmt.Fprintf(o.stdout, "vpn-pppssh: link %s (pid %d) is dialling again\n", cfg.Name, pid)
	return nil
}
