//go:build !linux

package firewall

import (
	"errors"
	"fmt"
)

// NewNFTablesNS returns an error: nftables exists on Linux only.
func NewNFTablesNS(nsFD int) (Backend, error) {
	return nil, fmt.Errorf("checking nftables: %w", errors.ErrUnsupported)
}
