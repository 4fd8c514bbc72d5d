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
// link-up's time goes when the machine is busy throughout; and, for a
// contender that redials, in one redial of that link.
func (l *Lab) ProfileUps(ctx context.Context, w io.Writer, cs []Contender) error {
	fmt.Fprintln(w, "\none more link-up (and redial) of each contender: its work by program (CPU seconds; processes that ran; a program's reaped children count as its own)")
	for _, c := range cs {
		if c.Stream {
			continue
		}
		line, err := profile(func() error {
			_, err := c.Up(ctx)
			return err
		})
		if err == nil && c.Redial != nil {
			fmt.Fprintf(w, "%s: %s\n", c.Name, line)
			line, err = profile(func() error {
				_, err := c.Redial(ctx)
				return err
			})
			line = "redial: " + line
		}
		c.Down(ctx)
		if err != nil {
			return fmt.Errorf("profile, %s: %w", c.Name, err)
		}
		fmt.Fprintf(w, "%s: %s\n", c.Name, line)
	}
	return nil
}

// profile runs f on a settled machine and says which programs did its
// work.
func profile(f func() error) (string, error) {
	if _, err := cpuwork.Settle(5 * time.Second); err != nil {
		return "", err
	}
	p, err := cpuwork.StartProfile()
	if err != nil {
		return "", err
	}
	if err := f(); err != nil {
		p.End()
		return "", err
	}
	shares, work, err := p.End()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, s := range shares {
		if s.CPU*100 < work { // under 1%
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f (%d)", s.Name, s.CPU.Seconds(), s.Procs))
	}
	return fmt.Sprintf("work %.2f s: %s", work.Seconds(), strings.Join(parts, ", ")), nil
}
