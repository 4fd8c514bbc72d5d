//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import "encoding/binary"

// Layout of the ip_tables user-space ABI (linux/netfilter_ipv4/ip_tables.h,
// linux/netfilter/x_tables.h) on 64-bit little-endian Linux, where
// structures holding a u64 or a pointer are 8-byte aligned.

var le = binary.LittleEndian

// Socket options on an AF_INET raw socket, level IPPROTO_IP.
const (
	iptSoSetReplace     = 64 // IPT_SO_SET_REPLACE
	iptSoSetAddCounters = 65 // IPT_SO_SET_ADD_COUNTERS
	iptSoGetInfo        = 64 // IPT_SO_GET_INFO
	iptSoGetEntries     = 65 // IPT_SO_GET_ENTRIES

	iptSoGetRevisionMatch  = 66 // IPT_SO_GET_REVISION_MATCH
	iptSoGetRevisionTarget = 67 // IPT_SO_GET_REVISION_TARGET
	revisionSize           = 30 // struct xt_get_revision: char name[29], u8 revision
)

// Netfilter IPv4 hooks (NF_INET_*), the index of hook_entry and underflow.
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
// matches start right after it, the target at target_offset.
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

	iptInvViaOut = 0x02 // IPT_INV_VIA_OUT
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
	masqEntrySize    = entrySize + commentMatchSize + masqTargetSize
)

// Standard verdicts: negative values are -NF_xxx - 1.
const (
	verdictDrop   = -1 // -NF_DROP - 1
	verdictAccept = -2 // -NF_ACCEPT - 1
	verdictReturn = -5 // XT_RETURN = -NF_REPEAT - 1
)
