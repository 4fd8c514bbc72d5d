package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// status reports a link; exit 3 when it is not running (LSB).
func status(o *options, cfg pppssh.Config) error {
	pid, err := o.runDir.Owner(cfg.Name)
	if err != nil {
		return err
	}
	if pid == 0 {
		msg := fmt.Sprintf("link %s is not running", cfg.Name)
		if _, err := o.runDir.Read(cfg.Name); err == nil {
			msg += " (a dead process left state behind; 'vpn-pppssh cleanup' removes it)"
		}
		fmt.Fprintln(o.stdout, msg)
		return &exitError{code: exitNotRunning}
	}
	st, err := o.runDir.Read(cfg.Name)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.stdout, "link %s: starting (pid %d)\n", cfg.Name, pid)
		return nil
	}
	if err != nil {
		return err
	}
	w := o.stdout
	fmt.Fprintf(w, "link %s: %s (pid %d)\n", st.Name, st.Phase, pid)
	if st.Phase != "up" {
		fmt.Fprintf(w, "  since      %s\n", st.Started.Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(w, "  interface  %s\n", st.Iface)
	fmt.Fprintf(w, "  local      %s\n", st.Local)
	fmt.Fprintf(w, "  remote     %s\n", st.Remote)
	fmt.Fprintf(w, "  server     %s\n", st.Server)
	fmt.Fprintf(w, "  uptime     %s\n", time.Since(st.UpSince).Round(time.Second))
	if st.Firewall != "" {
		fmt.Fprintf(w, "  firewall   %s\n", st.Firewall)
	}
	for _, c := range st.Changes {
		fmt.Fprintf(w, "  applied    %s\n", c)
	}
	if l, err := netlink.LinkByName(st.Iface); err == nil && l.Attrs().Statistics != nil {
		s := l.Attrs().Statistics
		fmt.Fprintf(w, "  received   %d bytes, %d packets\n", s.RxBytes, s.RxPackets)
		fmt.Fprintf(w, "  sent       %d bytes, %d packets\n", s.TxBytes, s.TxPackets)
	} else {
		fmt.Fprintf(w, "  counters   unavailable: %v\n", err)
	}
	return nil
}
