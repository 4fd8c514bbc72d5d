package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab/cpuwork"
)

// ProfileUps brings each contender up once more and prints which programs
// did the machine's work in its link-up (cpuwork.Profile): where the
// link-up's time goes when the machine is busy throughout.
func (l *Lab) ProfileUps(ctx context.Context, w io.Writer, cs []Contender) error {
	fmt.Fprintln(w, "\none more link-up of each contender: its work by program (CPU seconds; processes that ran; a program's reaped children count as its own)")
	for _, c := range cs {
		if c.Stream {
			continue
		}
		if _, err := cpuwork.Settle(5 * time.Second); err != nil {
			return err
		}
		p, err := cpuwork.StartProfile()
		if err != nil {
			return err
		}
		_, err = c.Up(ctx)
		if err != nil {
			c.Down(ctx)
			return fmt.Errorf("profile, %s: %w", c.Name, err)
		}
		shares, work, err := p.End()
		c.Down(ctx)
		if err != nil {
			return fmt.Errorf("profile, %s: %w", c.Name, err)
		}
		var parts []string
		for _, s := range shares {
			if s.CPU*100 < work { // under 1%
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f (%d)", s.Name, s.CPU.Seconds(), s.Procs))
		}
		fmt.Fprintf(w, "%s: work %.2f s: %s\n", c.Name, work.Seconds(), strings.Join(parts, ", "))
	}
	return nil
}
