// Package dnsconf gives a link's DNS settings (servers reached through its
// interface, search domains) to the client host's resolver while the link
// is up, and takes them away again. It knows nothing of SSH or PPP beyond
// an interface name; the servers come from the link's configuration (DNS=,
// DNS_SEARCH=, parsed by ParseServers and ParseSearch) or from what the
// server's pppd offered (pppd(8), usepeerdns: DNS1 and DNS2 in the ip-up
// environment, checked by PeerServers). Every value is treated as hostile
// text: addresses must be unicast IP addresses, domains plain names in
// hostname syntax; anything else is refused with an error naming the value.
//
// # Backends
//
// Apply uses the first of these that the host has:
//
//   - systemd-resolved, when its name org.freedesktop.resolve1 is owned on
//     the system bus: per-link settings through the Manager's SetLinkDNS
//     and SetLinkDomains (org.freedesktop.resolve1(5)); undone with
//     RevertLink. The settings belong to the interface (by index) and
//     vanish with it.
//   - resolvconf(8), when /sbin/resolvconf or /usr/sbin/resolvconf exists
//     (Debian's or openresolv): the record IFACE.vpn-pppssh, added with
//     `resolvconf -a IFACE.vpn-pppssh` and the lines on its standard
//     input, deleted with `resolvconf -d IFACE.vpn-pppssh`. The program is
//     run directly, without a shell, with PATH as its whole environment.
//   - the file /etc/resolv.conf, rewritten: the link's nameservers first,
//     its search domains before the original's on one search line, then
//     the original's lines as they were (options, comments, its own
//     nameservers). It is replaced atomically (a new file renamed over
//     it); a mount point, as a container's bind-mounted resolv.conf, is
//     rewritten in place.
//
// # Undo
//
// What a link changed is recorded in its state file, NAME.resolv in the run
// directory (/run/vpn-pppssh, mode 0600), before the change is made: the
// backend, the interface and its index, the resolvconf program and record,
// or the original resolv.conf (its bytes, mode and owner, or that it was a
// symbolic link and its target, or that there was none) with the text that
// replaced it. A process that dies at any point leaves enough behind for
// Cleanup to undo it from the state file alone; undoing a change that was
// not made does no harm (RevertLink of a link resolved knows nothing of,
// a file that is still the original), and a resolvconf record whose -a
// never returned may be found missing. The state file goes once the
// change is undone.
//
// The file backend restores the original exactly (the same bytes, mode and
// owner, or the symbolic link to the same target, or no file) but only
// when resolv.conf is still what the link wrote: when an admin or another
// tool replaced it meanwhile, it is left as it is and the undo returns an
// error matching ErrChanged. Links that use the file at once stack, each
// over what the one before wrote; one that goes down below others is taken
// out of the stack and the file rebuilt for the others (filestack.go), so
// the original comes back when the last one goes, in any order. These
// changes are serialised across processes by a lock in the run directory.
//
// # Lifecycle
//
//	New(cfg, opts)   checks every value; touches nothing
//	    |
//	Apply(ctx)       undoes what a dead process of the link left, picks the
//	    |            backend, records the state, makes the change; on error
//	    |            undoes its part (what it cannot undo stays recorded)
//	Close()          undoes and removes the state; safe to call again
//
//	Leftovers(dir, name), Cleanup(dir, name)   after a crash, from the state file
//	Describe(dir, name)                        one line for status
//
// A Settings is applied once: a link that comes up again (a redial) takes
// new Settings.
package dnsconf
