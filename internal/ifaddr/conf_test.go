package ifaddr

import (
	"strings"
	"testing"
)

// The per-interface settings are never written for every interface at
// once (all, default), nor outside the interface's own directory.
func TestWriteConfRefusesOtherThanOneInterface(t *testing.T) {
	for _, name := range []string{"all", "default", "", ".", "..", "a/b", "a\x00"} {
		if err := writeConf(name, "accept_ra", "0"); err == nil || !strings.Contains(err.Error(), "bad interface name") {
			t.Errorf("%q: %v", name, err)
		}
	}
}
