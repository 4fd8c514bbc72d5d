package routing

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vpn-pppssh/vpn-pppssh/routing/firewall"
)

// A Change is one thing done to the host, with what undoing it needs.
type Change struct {
	Kind       string               `json:"kind"` // route, forwarding, masquerade
	Route      *Route               `json:"route,omitempty"`
	Forwarding *Forwarding          `json:"forwarding,omitempty"`
	Masquerade *firewall.Masquerade `json:"masquerade,omitempty"`
	RPFilter   *RPFilter            `json:"rpfilter,omitempty"`
	// SourceCheck is RPFilter's IPv6 counterpart, a firewall rule.
	SourceCheck *firewall.SourceCheck `json:"source_check,omitempty"`
}

// RPFilter records the reverse-path filter of an interface found before
// we made it strict (net.ipv4.conf.IFACE.rp_filter).
// Index tells the interface apart from a later one of the same name
// (ppp0 of another link), which must keep its own setting.
type RPFilter struct {
	Iface    string `json:"iface"`
	Index    int    `json:"index"`
	Previous string `json:"previous"`
}

// Forwarding records the forwarding setting found before we set it.
type Forwarding struct {
	Previous string `json:"previous"`
	NetNS    uint64 `json:"netns,omitempty"`  // the network namespace it applies to (inode of /proc/self/ns/net)
	Family   int    `json:"family,omitempty"` // 6: IPv6's (net.ipv6.conf.all.forwarding); 0: IPv4's
	// Interfaces are the per-interface settings (conf/IFACE/forwarding,
	// "default" among them) found before, where they differed from
	// Previous: the kernel sets every interface's along with "all", both
	// ways, so they are put back after it.
	Interfaces map[string]string `json:"interfaces,omitempty"`
}

// family names the forwarding's IP version for messages.
func (f Forwarding) family() string {
	if f.Family == 6 {
		return "IPv6"
	}
	return "IPv4"
}

func (c Change) String() string {
	switch {
	case c.Route != nil:
		return "route " + c.Route.String()
	case c.Forwarding != nil && c.Forwarding.Family == 6:
		return "IPv6 forwarding (was " + c.Forwarding.Previous + ")"
	case c.Forwarding != nil:
		return "forwarding (was " + c.Forwarding.Previous + ")"
	case c.SourceCheck != nil:
		return "IPv6 source check on " + c.SourceCheck.Iface
	case c.Masquerade != nil:
		return fmt.Sprintf("masquerade %s not out %q", c.Masquerade.Source, c.Masquerade.NotOut)
	case c.RPFilter != nil:
		return fmt.Sprintf("source check on %s (rp_filter 1, was %s)", c.RPFilter.Iface, c.RPFilter.Previous)
	}
	return c.Kind
}

func (c Change) same(o Change) bool {
	switch {
	case c.Route != nil && o.Route != nil:
		return *c.Route == *o.Route
	case c.Forwarding != nil && o.Forwarding != nil:
		return c.Forwarding.Family == o.Forwarding.Family
	case c.SourceCheck != nil && o.SourceCheck != nil:
		return *c.SourceCheck == *o.SourceCheck
	case c.Masquerade != nil && o.Masquerade != nil:
		return *c.Masquerade == *o.Masquerade
	case c.RPFilter != nil && o.RPFilter != nil:
		return c.RPFilter.Iface == o.RPFilter.Iface
	}
	return false
}

// Journal is the append-only record of a link's changes, one JSON object a
// line, synced after each append.
type Journal struct {
	path    string
	changes []Change
}

// JournalPath is where a link's journal lives in a state directory.
func JournalPath(dir, link string) string { return filepath.Join(dir, link+".journal") }

// OpenJournal loads the journal at path, which a dead process may have left.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var c Change
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			// A torn last line from a crash mid-write: the change it
			// described was not recorded as done.
			continue
		}
		j.changes = append(j.changes, c)
	}
	return j, nil
}

// Changes returns what the journal holds, oldest first.
func (j *Journal) Changes() []Change { return append([]Change(nil), j.changes...) }

func (j *Journal) record(c Change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.changes = append(j.changes, c)
	return nil
}

// rewrite replaces the file with the changes still held, or removes it.
func (j *Journal) rewrite() error {
	if len(j.changes) == 0 {
		err := os.Remove(j.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var b strings.Builder
	for _, c := range j.changes {
		line, _ := json.Marshal(c)
		b.Write(line)
		b.WriteByte('\n')
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, j.path)
}
