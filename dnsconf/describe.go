package dnsconf

import "strings"

// describe says in one line what st puts in place:
// "dns 198.51.100.2 2001:db8::53 search example.org via systemd-resolved on ppp0".
func describe(st *state) string {
	var parts []string
	if len(st.Servers) > 0 {
		s := make([]string, len(st.Servers))
		for i, a := range st.Servers {
			s[i] = a.String()
		}
		parts = append(parts, "dns "+strings.Join(s, " "))
	}
	if len(st.Search) > 0 {
		parts = append(parts, "search "+strings.Join(st.Search, " "))
	}
	switch st.Backend {
	case BackendResolved:
		parts = append(parts, "via systemd-resolved")
	case BackendResolvconf:
		parts = append(parts, "via resolvconf")
	case BackendFile:
		if st.File != nil {
			parts = append(parts, "via "+st.File.Path)
		}
	}
	return strings.Join(append(parts, "on "+st.Iface), " ")
}

// Describe says in one line what DNS settings link name has in place, from
// its state file in runDir (for status, run by another process than the
// link's), or "" when it has none.
func Describe(runDir, name string) (string, error) {
	st, err := readState(runDir, name)
	if err != nil || st == nil {
		return "", err
	}
	return describe(st), nil
}
