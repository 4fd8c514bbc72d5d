// Package firewall installs and removes the firewall rules vpn-pppssh
// needs: NAT masquerade rules, so that traffic routed into a link leaves
// with the address of the interface it goes out of (IPv4 and IPv6), and
// IPv6 source checks, which drop packets arriving on a link's interface
// from a source address the host would not route back out through it.
// A source check is strict reverse-path filtering, the IPv6 counterpart of
// the rp_filter=1 sysctl the routing package sets for IPv4 (IPv6 has no
// such sysctl); link-local sources pass, since the link's fe80::/64 route
// leads back through the interface, so neighbour discovery still works.
//
// Every rule this package installs is owned by vpn-pppssh and is
// recognisable as such, so that nothing else in the host's firewall is ever
// touched. Each rule's comment names the owning link and the rule's
// identity: "vpn-pppssh:lab0 src=198.51.100.2/32 notout=ppp0" for a
// masquerade, "vpn-pppssh:lab0 rpf=ppp0" for a source check.
//
//   - With the nftables backend the rules live in tables of their own named
//     "vpn-pppssh": IPv4 masquerades in family ip, IPv6 ones in family ip6,
//     each in a base chain "postrouting" of type nat on the postrouting
//     hook at priority srcnat (100). Source checks live in the ip6 table's
//     base chain "prerouting" of type filter on the prerouting hook at
//     priority raw (-300), as `iifname "<iface>" fib saddr . iif oif 0
//     drop`: a packet whose source has no route back out through the
//     interface it came in by is dropped (a link-local source passes only
//     where the interface has a route for it, as strict rp_filter).
//     The comment is in each rule's user data, where nft shows it. A base
//     chain of ours is deleted when its last rule goes, and a table with
//     its last chain. The kernel's IPv6 nat is not required up front: without
//     it, adding an IPv6 masquerade fails with an error that says so.
//   - With the legacy iptables backend IPv4 masquerades are appended to
//     iptables' nat table, POSTROUTING chain, IPv6 ones to ip6tables' nat
//     table, and source checks to ip6tables' raw table, PREROUTING chain,
//     as `-i <iface> -m rpfilter --invert -j DROP`; each rule carries an xt
//     comment match with its comment. The tables are read and replaced
//     through the kernel's socket-option interface (IPT_SO_* on a raw IPv4
//     socket, IP6T_SO_* on a raw IPv6 one), as libiptc does; no iptables
//     program is run. A kernel without the comment match (xt_comment,
//     absent from minimal kernels) gets a chain per link instead, named
//     vpn-pppssh-<link> in each table used and reached by one jump from
//     POSTROUTING (nat) or PREROUTING (raw), whose rules carry no comment:
//     the chain's name says whose they are. Name reports which layout is in
//     use. The IPv6 tables are looked at only when an IPv6 rule is added
//     (an error names the missing module: ip6table_nat, ip6table_raw,
//     xt_MASQUERADE, ip6t_rpfilter), and listing or removing rules never
//     creates one that the namespace does not use yet.
//
// Teardown is therefore "delete what is ours": Remove and RemoveSourceCheck
// delete one rule, RemoveLink deletes every rule of a link in both
// families, which is also how leftovers of a crashed run are found and
// cleaned up by link name. Rules and SourceChecks list what is installed,
// for status displays and tests.
//
// Probe picks the nftables backend when the kernel supports nftables NAT
// for the ip family and falls back to legacy iptables otherwise. Neither
// backend executes external programs: nftables is spoken over netlink with
// github.com/google/nftables, legacy iptables with getsockopt/setsockopt on
// raw IPv4 and IPv6 sockets.
package firewall
