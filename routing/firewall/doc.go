// Package firewall installs and removes the NAT masquerade rules that
// vpn-pppssh needs so that traffic routed into a link leaves with the
// address of the interface it goes out of.
//
// Every rule this package installs is owned by vpn-pppssh and is
// recognisable as such, so that nothing else in the host's firewall is ever
// touched:
//
//   - With the nftables backend the rules live in a table of their own,
//     "vpn-pppssh" (family ip), in a base chain "postrouting" of type nat on
//     the postrouting hook at priority srcnat (100). Each rule carries a
//     comment in its user data naming the owning link and the rule's
//     identity, e.g. "vpn-pppssh:lab0 src=198.51.100.2/32 notout=ppp0".
//     The table is deleted when its last rule goes.
//   - With the legacy iptables backend the rules are appended to the nat
//     table's POSTROUTING chain, each carrying an xt comment match with the
//     same text ("vpn-pppssh:<link> ..."). The table is read and replaced
//     through the kernel's socket-option interface, as libiptc does; no
//     iptables program is run. A kernel without the comment match
//     (xt_comment, absent from minimal kernels) gets a chain per link
//     instead, named vpn-pppssh-<link> and reached by one jump from
//     POSTROUTING, whose rules carry no comment: the chain's name says
//     whose they are. Name reports which layout is in use.
//
// Teardown is therefore "delete what is ours": Remove deletes one rule,
// RemoveLink deletes every rule of a link, which is also how leftovers of a
// crashed run are found and cleaned up by link name. Rules lists what is
// installed, for status displays and tests.
//
// Probe picks the nftables backend when the kernel supports nftables NAT
// for the ip family and falls back to legacy iptables otherwise. Neither
// backend executes external programs: nftables is spoken over netlink with
// github.com/google/nftables, legacy iptables with getsockopt/setsockopt on
// a raw IPv4 socket.
package firewall
