package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// allLinks names every link this host knows: each NAME.conf in the
// configuration directory (not the server's policy file) and each link
// with a lock or state in the run directory, sorted.
func allLinks(o *options) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(o.configDir(), "*.conf"))
	if err != nil {
		return nil, err
	}
	names, err := o.runDir.Names()
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", o.runDir, err)
	}
	for _, f := range files {
		if f == pppssh.PolicyPath || filepath.Base(f) == filepath.Base(pppssh.PolicyPath) {
			continue
		}
		if name := strings.TrimSuffix(filepath.Base(f), ".conf"); rundir.ValidName(name) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// statusAll is `status` without -c or -n: one line for every link, or a
// JSON array. Exit 3 unless every link listed is running (LSB, as the init
// script's status of its LINKS).
func statusAll(o *options) error {
	names, err := allLinks(o)
	if err != nil {
		return err
	}
	reports := make([]statusReport, 0, len(names))
	all := len(names) > 0
	for _, name := range names {
		r, err := collectStatus(o, name)
		if err != nil && r.LastError == "" {
			r.LastError = err.Error()
		}
		r.escape()
		reports = append(reports, r)
		all = all && r.Running
	}
	if o.json {
		b, _ := json.MarshalIndent(reports, "", "  ")
		fmt.Fprintln(o.stdout, string(b))
	} else if len(reports) == 0 {
		fmt.Fprintf(o.stdout, "no links: none configured in %s and none running\n", o.configDir())
	} else {
		printStatusLines(o, reports)
	}
	if !all {
		return &exitError{code: exitNotRunning}
	}
	return nil
}

// printStatusLines prints one line per link, columns aligned.
func printStatusLines(o *options, reports []statusReport) {
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tSTATE\tMODE\tINTERFACE\tADDRESSES\tSERVER\tUPTIME\tRX/TX\tREDIALS\tLAST ERROR")
	for _, r := range reports {
		state := r.Phase
		if r.Running {
			state = fmt.Sprintf("%s (pid %d)", r.Phase, r.Pid)
		}
		var addrs, uptime, traffic string
		if r.Phase == "up" {
			addrs = r.Local + " -> " + r.Remote
			uptime = (time.Duration(r.UptimeSeconds) * time.Second).String()
			traffic = byteCount(r.RxBytes) + " / " + byteCount(r.TxBytes)
		}
		lastErr := r.LastError // escaped above
		if rs := []rune(lastErr); len(rs) > 60 {
			lastErr = string(rs[:57]) + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Name, state, dash(r.Mode), dash(r.Iface), dash(addrs),
			dash(r.Server), dash(uptime), dash(traffic), r.Redials, lastErr)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteCount is n in the largest binary unit that keeps it above 1.
func byteCount(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
