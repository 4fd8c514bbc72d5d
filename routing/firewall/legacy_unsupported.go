//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le))

package firewall

import (
	"errors"
	"fmt"
	"runtime"
)

// NewLegacyNS returns an error: the iptables socket structures are only
// laid out for Linux on 64-bit little-endian architectures.
func NewLegacyNS(nsFD int) (Backend, error) {
	return nil, fmt.Errorf("checking legacy iptables: unsupported architecture %s/%s: %w",
		runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}
