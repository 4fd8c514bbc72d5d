package pppssh

import (
	"io"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// proxyEnv makes the test binary a proxy command: it copies its stdin and
// stdout to and from the TCP address in the variable, as `nc host port`.
const proxyEnv = "VPN_PPPSSH_TEST_PROXY_TO"

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	if addr := os.Getenv(proxyEnv); addr != "" {
		os.Exit(proxyMain(addr))
	}
	goleak.VerifyTestMain(m)
}

func proxyMain(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		os.Stderr.WriteString("test proxy: " + err.Error() + "\n")
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}
