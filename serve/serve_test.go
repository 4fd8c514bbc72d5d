package serve

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

func TestRouterConfig(t *testing.T) {
	req := pppssh.Request{Peer: netip.MustParseAddr("198.51.100.1"), Routes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}
	got := fmt.Sprintf("%+v", routerConfig(req, "ppp3"))
	want := "{Iface:ppp3 Networks:[198.18.0.0/24] Masquerade:[] Forwarding:true DefaultRoute:false Carrier:invalid IP}"
	if got != want {
		t.Errorf("routes only:\n got %s\nwant %s", got, want)
	}
	req.Masquerade = true
	got = fmt.Sprintf("%+v", routerConfig(req, "ppp3").Masquerade)
	if got != "[198.51.100.1/32 198.18.0.0/24]" {
		t.Errorf("masquerade sources %s", got)
	}
	if c := routerConfig(pppssh.Request{Peer: req.Peer}, "ppp0"); c.Forwarding || len(c.Masquerade)+len(c.Networks) != 0 {
		t.Errorf("a bare request changes the host: %+v", c)
	}
}

// serveOnce runs the server half on pipes with a request line and returns
// its answer and error.
func serveOnce(t *testing.T, policy, request string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	polPath := filepath.Join(dir, "server.conf")
	if policy != "" {
		os.WriteFile(polPath, []byte(policy), 0o600)
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	defer inR.Close()
	defer outR.Close()
	inW.WriteString(request + "\n")
	inW.Close()
	err := Run(context.Background(), Options{
		PolicyPath: polPath, StateDir: rundir.Dir(filepath.Join(dir, "run")),
		Stdin: inR, Stdout: outW, Log: slog.New(slog.DiscardHandler),
	})
	outW.Close()
	line, _ := bufio.NewReader(outR).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRunRefusesBeforeStartingAnything(t *testing.T) {
	const req = `{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1","masquerade":true}`
	answer, err := serveOnce(t, "ALLOW_MASQUERADE=no\n", req)
	if err == nil || answer != "vpn-pppssh-serve error: masquerade is not allowed by /etc/vpn-pppssh/server.conf (ALLOW_MASQUERADE=no)" {
		t.Errorf("answer %q, err %v", answer, err)
	}
	answer, err = serveOnce(t, "", `{"v":1,"link":"a","pppd":"/bin/sh"}`)
	if err == nil || !strings.HasPrefix(answer, "vpn-pppssh-serve error: malformed request") {
		t.Errorf("unknown field: answer %q, err %v", answer, err)
	}
}
