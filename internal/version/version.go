// Package version says which build of vpn-pppssh is running, for
// --version and for the errors where the two halves of a link disagree.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Release is the release this source tree is.
const Release = "0.10.0"

// Build is the revision, set by the Makefile (-ldflags -X) when it knows
// it; otherwise the Go toolchain's own record of the checkout is used.
var Build string

// String is the release and build, as --version prints it and the helper
// names itself in its refusals: "0.9.0 (e751ede1a2b3)".
func String() string {
	b := Build
	if b == "" {
		b = vcsRevision()
	}
	if b == "" {
		return Release
	}
	return fmt.Sprintf("%s (%s)", Release, b)
}

// Long adds what a bug report wants: the Go release that built it.
func Long() string { return fmt.Sprintf("%s, %s", String(), runtime.Version()) }

// vcsRevision is the commit `go build` recorded (-buildvcs), short, with
// "-dirty" for a tree with changes; "" when the build has none.
func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}
