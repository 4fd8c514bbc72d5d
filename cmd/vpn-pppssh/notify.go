package main

import (
	"net"
	"os"
)

// sdNotify tells a supervising systemd (Type=notify) about the link, per
// sd_notify(3): READY=1 once it is first up, STATUS= on each change. It
// does nothing when NOTIFY_SOCKET is not set.
func sdNotify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}
