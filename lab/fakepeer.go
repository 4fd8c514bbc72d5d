package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// FakePeerPort is where the fake peer listens, in the server namespace.
const FakePeerPort = "2222"

// FakePeer is an SSH server that misbehaves on purpose: the one place in
// the lab where a fake peer is the point. The login name picks the fault:
//
//	garbage  runs the command and answers with bytes that are not PPP
//	early    ends the command at once, with status 0 and nothing said
//	stall    runs the command and then says nothing, ever
//	drop     closes the TCP connection as soon as the login succeeds
type FakePeer struct {
	KnownHosts string // a known_hosts file with its key
	ln         net.Listener
}

// StartFakePeer listens in the server namespace.
func StartFakePeer(dir string) (*FakePeer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(signer)
	ln, err := listenInNS(ServerNS, net.JoinHostPort(ServerIP, FakePeerPort))
	if err != nil {
		return nil, err
	}
	p := &FakePeer{KnownHosts: filepath.Join(dir, "known_hosts_fake"), ln: ln}
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(ServerIP, FakePeerPort))}, signer.PublicKey())
	if err := os.WriteFile(p.KnownHosts, []byte(line+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, err
	}
	go p.serve(cfg)
	return p, nil
}

// listenInNS opens a listening socket inside a named network namespace;
// the socket stays there whichever thread accepts on it.
func listenInNS(ns, addr string) (net.Listener, error) { return ListenInNS(ns, "tcp", addr) }

// ListenInNS listens on addr inside the named network namespace.
func ListenInNS(ns, network, addr string) (ln net.Listener, err error) {
	err = inNamespace(ns, func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// DialInNS connects to addr from inside the named network namespace; the
// connection stays there whichever thread uses it.
func DialInNS(ns, network, addr string) (c net.Conn, err error) {
	err = inNamespace(ns, func() error {
		c, err = net.DialTimeout(network, addr, 20*time.Second)
		return err
	})
	return c, err
}

// inNamespace runs f on a thread of its own inside namespace ns. The
// thread is left in the namespace and dies with its goroutine.
func inNamespace(ns string, f func() error) error {
	got := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			got <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			got <- err
			return
		}
		got <- f()
	}()
	return <-got
}

// Close stops listening.
func (p *FakePeer) Close() { p.ln.Close() }

func (p *FakePeer) serve(cfg *ssh.ServerConfig) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c, cfg)
	}
}

func (p *FakePeer) handle(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	mode := sc.User()
	if mode == "drop" {
		return
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range creqs {
				r.Reply(r.Type == "exec", nil)
				if r.Type != "exec" {
					continue
				}
				switch mode {
				case "early":
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					ch.Close()
					return
				case "garbage":
					go func() {
						junk := []byte(strings.Repeat("this is not PPP \x7e\x7d\x00", 64))
						for range 2000 { // bounded: about 1.5 MB
							if _, err := ch.Write(junk); err != nil {
								return
							}
						}
					}()
				case "stall":
					// Read and say nothing.
					go func() {
						buf := make([]byte, 4096)
						for {
							if _, err := ch.Read(buf); err != nil {
								return
							}
						}
					}()
				default:
					fmt.Fprintf(ch.Stderr(), "fake peer: unknown mode %q\n", mode)
					ch.Close()
					return
				}
			}
		}()
	}
}
