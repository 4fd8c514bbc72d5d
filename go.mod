module github.com/vpn-pppssh/vpn-pppssh

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/kevinburke/ssh_config v1.6.0
	github.com/spf13/pflag v1.0.10
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require github.com/vishvananda/netns v0.0.5 // indirect
