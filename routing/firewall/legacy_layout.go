//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import "encoding/binary"

// Layout of the ip_tables and ip6_tables user-space ABI
// (linux/netfilter_ipv4/ip_tables.h, linux/netfilter_ipv6/ip6_tables.h,
// linux/netfilter/x_tables.h) on 64-bit little-endian Linux, where
// structures holding a u64 or a pointer are 8-byte aligned. The table
// headers (getinfo, get_entries, replace, counters_info) are the same for
// both families; the entries differ (struct ipt_entry, struct ip6t_entry),
// which xtFamily (legacy_family.go) describes.

var le = binary.LittleEndian

// Socket options on an AF_INET raw socket, level IPPROTO_IP. The IPv6
// ones (IP6T_SO_*, on an AF_INET6 raw socket, level IPPROTO_IPV6) have the
// same numbers except for the revision queries.
const (
	iptSoSetReplace     = 64 // IPT_SO_SET_REPLACE
	iptSoSetAddCounters = 65 // IPT_SO_SET_ADD_COUNTERS
	iptSoGetInfo        = 64 // IPT_SO_GET_INFO
	iptSoGetEntries     = 65 // IPT_SO_GET_ENTRIES

	iptSoGetRevisionMatch  = 66 // IPT_SO_GET_REVISION_MATCH
	iptSoGetRevisionTarget = 67 // IPT_SO_GET_REVISION_TARGET
	revisionSize           = 30 // struct xt_get_revision: char name[29], u8 revision

	ip6tSoGetRevisionMatch  = 68 // IP6T_SO_GET_REVISION_MATCH
	ip6tSoGetRevisionTarget = 69 // IP6T_SO_GET_REVISION_TARGET
)

// Netfilter hooks (NF_INET_*, the same for IPv4 and IPv6), the index of
// hook_entry and underflow.
const (
	hookPreRouting  = 0
	hookLocalIn     = 1
	hookForward     = 2
	hookLocalOut    = 3
	hookPostRouting = 4
	numHooks        = 5
)

const tableNameLen = 32 // XT_TABLE_MAXNAMELEN

// struct ipt_getinfo.
const (
	getinfoSize       = 84
	getinfoValidHooks = 32
	getinfoHookEntry  = 36
	getinfoUnderflow  = 56
	getinfoNumEntries = 76
	getinfoSizeField  = 80
)

// struct ipt_get_entries: name, size, then the entries (8-aligned).
const (
	getEntriesSizeField = 32
	getEntriesHeader    = 40
)

// struct ipt_replace: the entries follow the 96-byte header.
const (
	replaceValidHooks  = 32
	replaceNumEntries  = 36
	replaceSize        = 40
	replaceHookEntry   = 44
	replaceUnderflow   = 64
	replaceNumCounters = 84
	replaceCounters    = 88 // struct xt_counters __user *
	replaceHeader      = 96
)

// struct xt_counters_info: name, num_counters, then the counters.
const (
	countersInfoNum    = 32
	countersInfoHeader = 40
	countersSize       = 16 // struct xt_counters {u64 pcnt, bcnt}
)

// struct ipt_entry: struct ipt_ip (84 bytes) and the entry's bookkeeping;
// matches start right after it, the target at target_offset. The
// interface name and mask fields and the inversion flags are laid out the
// same way in struct ip6t_entry, at other offsets (below).
const (
	entSrc          = 0
	entDst          = 4
	entSmsk         = 8
	entDmsk         = 12
	entIniface      = 16
	entOutiface     = 32
	entInifaceMask  = 48
	entOutifaceMask = 64
	entProto        = 80
	entFlags        = 82
	entInvflags     = 83
	entNfcache      = 84
	entTargetOffset = 88
	entNextOffset   = 90
	entComefrom     = 92
	entCounters     = 96
	entrySize       = 112

	ifnameSize = 16 // IFNAMSIZ

	iptInvViaIn  = 0x01 // IPT_INV_VIA_IN, IP6T_INV_VIA_IN
	iptInvViaOut = 0x02 // IPT_INV_VIA_OUT, IP6T_INV_VIA_OUT
)

// struct ip6t_entry: struct ip6t_ip6 (136 bytes: src, dst, smsk, dmsk as
// struct in6_addr, iniface[16], outiface[16], iniface_mask[16],
// outiface_mask[16], u16 proto, u8 tos, u8 flags, u8 invflags, 3 bytes of
// padding), then nfcache, target_offset, next_offset, comefrom and the
// counters, aligned to 8: 168 bytes. Checked with offsetof and sizeof in a
// C program against linux-libc-dev 6.1's headers on x86-64.
const (
	ent6Src          = 0
	ent6Dst          = 16
	ent6Smsk         = 32
	ent6Dmsk         = 48
	ent6Iniface      = 64
	ent6Outiface     = 80
	ent6InifaceMask  = 96
	ent6OutifaceMask = 112
	ent6Proto        = 128
	ent6Tos          = 130
	ent6Flags        = 131
	ent6Invflags     = 132
	ent6Nfcache      = 136
	ent6TargetOffset = 140
	ent6NextOffset   = 142
	ent6Comefrom     = 144
	ent6Counters     = 152
	entry6Size       = 168
)

// struct xt_entry_match / xt_entry_target header: u16 size, char name[29],
// u8 revision; the payload follows, aligned to 8.
const (
	xtHeaderSize = 32
	xtName       = 2
	xtNameLen    = 29
	xtRevision   = 31
	xtAlign      = 8
)

// Well-known targets and their sizes.
const (
	standardTarget     = ""      // XT_STANDARD_TARGET: int verdict
	errorTarget        = "ERROR" // XT_ERROR_TARGET: char errorname[30]
	standardTargetSize = 40      // XT_ALIGN(32 + 4)
	errorTargetSize    = 64      // XT_ALIGN(32 + 30)

	commentMatch     = "comment"
	commentLen       = 256                       // XT_MAX_COMMENT_LEN
	commentMatchSize = xtHeaderSize + commentLen // struct xt_comment_info
	masqTarget       = "MASQUERADE"              // revision 0
	masqTargetSize   = xtHeaderSize + 24         // XT_ALIGN(struct nf_nat_ipv4_multi_range_compat)

	// For IPv6, net/netfilter/xt_MASQUERADE.c registers revision 0 of
	// MASQUERADE with targetsize sizeof(struct nf_nat_range): 40 bytes
	// (flags, min/max addr, min/max proto), left all zero.
	masq6TargetSize = xtHeaderSize + 40

	// The rpfilter match (net/ipv6/netfilter/ip6t_rpfilter.c, revision
	// 0): struct xt_rpfilter_info { __u8 flags; }, XT_ALIGNed to 8.
	rpfilterMatch     = "rpfilter"
	rpfilterMatchSize = xtHeaderSize + 8
	rpfilterInvert    = 1 << 3 // XT_RPFILTER_INVERT (linux/netfilter/xt_rpfilter.h)
)

// Standard verdicts: negative values are -NF_xxx - 1.
const (
	verdictDrop   = -1 // -NF_DROP - 1
	verdictAccept = -2 // -NF_ACCEPT - 1
	verdictReturn = -5 // XT_RETURN = -NF_REPEAT - 1
)
