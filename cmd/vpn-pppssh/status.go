package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// statusReport is what `status --json` prints: the owner's published
// state plus what only a look at the kernel tells.
type statusReport struct {
	Running bool `json:"running"`
	rundir.State
	UptimeSeconds int64  `json:"uptime_seconds,omitempty"`
	RxBytes       uint64 `json:"rx_bytes,omitempty"`
	TxBytes       uint64 `json:"tx_bytes,omitempty"`
	RxPackets     uint64 `json:"rx_packets,omitempty"`
	TxPackets     uint64 `json:"tx_packets,omitempty"`
}

// status reports a link; exit 3 when it is not running (LSB).
func status(o *options, cfg pppssh.Config) error {
	r, err := collectStatus(o, cfg.Name)
	if err != nil {
		return err
	}
	r.escape()
	if o.json {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(o.stdout, string(b))
	} else {
		printStatus(o, r)
	}
	if !r.Running {
		return &exitError{code: exitNotRunning}
	}
	return nil
}

func collectStatus(o *options, name string) (statusReport, error) {
	r := statusReport{State: rundir.State{Name: name}}
	pid, err := o.runDir.Owner(name)
	if err != nil || pid == 0 {
		if st, rerr := o.runDir.Read(name); rerr == nil {
			r.State = st
			r.Phase = "dead" // a process died and left its state behind
		} else {
			r.Phase = "stopped"
		}
		r.Pid = 0
		return r, err
	}
	r.Running = true
	st, err := o.runDir.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		r.Pid, r.Phase = pid, "starting"
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.State, r.Pid = st, pid
	if st.Phase != "up" {
		return r, nil
	}
	r.UptimeSeconds = int64(time.Since(st.UpSince).Seconds())
	// LinkByName is a netlink dump on kernels without IFLA_IFNAME lookup:
	// retried when another link's change interrupts it.
	if l, err := nldump.Retry(func() (netlink.Link, error) { return netlink.LinkByName(st.Iface) }); err == nil && l.Attrs().Statistics != nil {
		s := l.Attrs().Statistics
		r.RxBytes, r.TxBytes, r.RxPackets, r.TxPackets = s.RxBytes, s.TxBytes, s.RxPackets, s.TxPackets
	}
	return r, nil
}

// escape makes the report safe to print: the last error holds what the
// server said, and the state file is only as trustworthy as /run. JSON
// would escape C0 controls but not DEL, C1 controls such as U+009B (CSI)
// or U+202E, so the text is escaped for both outputs.
func (r *statusReport) escape() {
	for _, s := range []*string{&r.Name, &r.Phase, &r.Iface, &r.Local, &r.Remote, &r.Local6, &r.Remote6, &r.Server, &r.Via, &r.DNS, &r.LastError, &r.Firewall, &r.Mode, &r.ServerIface} {
		*s = safetext.Escape(*s)
	}
	for i := range r.Changes {
		r.Changes[i] = safetext.Escape(r.Changes[i])
	}
	for i := range r.Forwards {
		r.Forwards[i] = safetext.Escape(r.Forwards[i])
	}
}

func printStatus(o *options, r statusReport) {
	w := o.stdout
	switch {
	case r.Phase == "dead":
		fmt.Fprintf(w, "link %s is not running (a dead process left state behind; 'vpn-pppssh cleanup' removes it)\n", r.Name)
		return
	case !r.Running:
		fmt.Fprintf(w, "link %s is not running\n", r.Name)
		return
	}
	fmt.Fprintf(w, "link %s: %s (pid %d)\n", r.Name, r.Phase, r.Pid)
	switch r.Phase {
	case "up":
		if r.Mode != "" {
			fmt.Fprintf(w, "  mode       %s\n", r.Mode)
		}
		if r.Mode != pppssh.ModeNone {
			fmt.Fprintf(w, "  interface  %s\n", r.Iface)
			if r.CarrierPid > 0 {
				// The local process that carries the link: pppd in ppp
				// mode; a tun or ethernet link is carried by this one.
				if r.Mode == pppssh.ModePPP || r.Mode == "" {
					fmt.Fprintf(w, "  pppd pid   %d\n", r.CarrierPid)
				} else {
					fmt.Fprintf(w, "  carrier    pid %d\n", r.CarrierPid)
				}
			}
			if r.ServerIface != "" {
				fmt.Fprintf(w, "  server if  %s\n", r.ServerIface)
			}
			fmt.Fprintf(w, "  local      %s\n", r.Local)
			fmt.Fprintf(w, "  remote     %s\n", r.Remote)
			if r.Local6 != "" || r.Remote6 != "" {
				fmt.Fprintf(w, "  local6     %s\n", r.Local6)
				fmt.Fprintf(w, "  remote6    %s\n", r.Remote6)
			}
		}
		fmt.Fprintf(w, "  server     %s\n", r.Server)
		if r.Via != "" {
			fmt.Fprintf(w, "  ssh from   %s\n", r.Via)
		}
		fmt.Fprintf(w, "  uptime     %s\n", (time.Duration(r.UptimeSeconds) * time.Second).String())
		if r.Mode != pppssh.ModeNone {
			fmt.Fprintf(w, "  received   %d bytes, %d packets\n", r.RxBytes, r.RxPackets)
			fmt.Fprintf(w, "  sent       %d bytes, %d packets\n", r.TxBytes, r.TxPackets)
		}
		for _, f := range r.Forwards {
			fmt.Fprintf(w, "  forward    %s\n", f)
		}
		if r.DNS != "" {
			fmt.Fprintf(w, "  dns        %s\n", r.DNS)
		}
		if r.Firewall != "" {
			fmt.Fprintf(w, "  firewall   %s\n", r.Firewall)
		}
		for _, c := range r.Changes {
			fmt.Fprintf(w, "  applied    %s\n", c)
		}
	case "waiting":
		fmt.Fprintf(w, "  redial in  %s\n", time.Until(r.NextAttempt).Round(time.Second))
	}
	fmt.Fprintf(w, "  redials    %d\n", r.Redials)
	if r.LastError != "" {
		fmt.Fprintf(w, "  last error %s (%s ago)\n", r.LastError, time.Since(r.LastErrorAt).Round(time.Second))
	}
}
