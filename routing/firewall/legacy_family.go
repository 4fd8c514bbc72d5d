//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import "golang.org/x/sys/unix"

// xtFamily is what differs between ip_tables (IPv4) and ip6_tables (IPv6):
// the control socket, the revision queries and the layout of an entry.
// Everything else (table headers, matches, targets, chains) is shared
// x_tables code, so the table editing in legacy_blob.go and legacy_chain.go
// works on either through these numbers.
type xtFamily struct {
	name          string // the iptables program of the family, for messages
	domain, level int    // socket domain and option level
	soRevMatch    int    // *_SO_GET_REVISION_MATCH
	soRevTarget   int    // *_SO_GET_REVISION_TARGET
	tablesNames   string // /proc/net file listing the tables in use

	addrLen int // 4 or 16
	// Offsets in the entry of src, smsk, the interface names and masks,
	// invflags, and the bookkeeping after the match part.
	src, smsk                                    int
	iniface, outiface, inifaceMask, outifaceMask int
	invflags                                     int
	nfcache, targetOffset, nextOffset, comefrom  int
	entrySize                                    int

	masqTargetSize int // MASQUERADE revision 0 with its payload
}

var (
	famIPv4 = &xtFamily{
		name: "iptables", domain: unix.AF_INET, level: unix.IPPROTO_IP,
		soRevMatch: iptSoGetRevisionMatch, soRevTarget: iptSoGetRevisionTarget,
		tablesNames: "ip_tables_names",
		addrLen:     4,
		src:         entSrc, smsk: entSmsk,
		iniface: entIniface, outiface: entOutiface, inifaceMask: entInifaceMask, outifaceMask: entOutifaceMask,
		invflags: entInvflags,
		nfcache:  entNfcache, targetOffset: entTargetOffset, nextOffset: entNextOffset, comefrom: entComefrom,
		entrySize:      entrySize,
		masqTargetSize: masqTargetSize,
	}
	famIPv6 = &xtFamily{
		name: "ip6tables", domain: unix.AF_INET6, level: unix.IPPROTO_IPV6,
		soRevMatch: ip6tSoGetRevisionMatch, soRevTarget: ip6tSoGetRevisionTarget,
		tablesNames: "ip6_tables_names",
		addrLen:     16,
		src:         ent6Src, smsk: ent6Smsk,
		iniface: ent6Iniface, outiface: ent6Outiface, inifaceMask: ent6InifaceMask, outifaceMask: ent6OutifaceMask,
		invflags: ent6Invflags,
		nfcache:  ent6Nfcache, targetOffset: ent6TargetOffset, nextOffset: ent6NextOffset, comefrom: ent6Comefrom,
		entrySize:      entry6Size,
		masqTargetSize: masq6TargetSize,
	}
)

// xtTable is a table of one family that holds rules of ours, and the
// built-in chain (hook) they go in.
type xtTable struct {
	fam  *xtFamily
	name string
	hook int
}

func (x xtTable) String() string { return x.fam.name + " " + x.name }

var (
	nat4 = xtTable{famIPv4, natTable, hookPostRouting}
	nat6 = xtTable{famIPv6, natTable, hookPostRouting}
	raw6 = xtTable{famIPv6, rawTable, hookPreRouting}
)

// Sizes of the entries the chain layout uses.
func (f *xtFamily) errorEntrySize() int { return f.entrySize + errorTargetSize }
func (f *xtFamily) jumpEntrySize() int  { return f.entrySize + standardTargetSize }
