package forward

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseOpenSSHSyntax(t *testing.T) {
	for _, c := range []struct {
		kind     Kind
		in       string
		bind, to string
		loopback bool
	}{
		{Local, "8080:intranet:80", ":8080", "intranet:80", true},
		{Local, "192.0.2.1:8080:intranet:80", "192.0.2.1:8080", "intranet:80", false},
		{Local, "*:8080:intranet:80", ":8080", "intranet:80", false},
		{Local, ":8080:intranet:80", ":8080", "intranet:80", false},
		{Local, "[::1]:8080:[2001:db8::5]:80", "[::1]:8080", "[2001:db8::5]:80", false},
		{Local, "5432:/run/postgresql/.s.PGSQL.5432", ":5432", "/run/postgresql/.s.PGSQL.5432", true},
		{Local, "192.0.2.1:5432:/run/pg.sock", "192.0.2.1:5432", "/run/pg.sock", false},
		{Local, "/tmp/db.sock:db:5432", "/tmp/db.sock", "db:5432", false},
		{Local, "/tmp/a.sock:/run/b.sock", "/tmp/a.sock", "/run/b.sock", false},
		{Remote, "2222:localhost:22", ":2222", "localhost:22", true},
		{Remote, "0:localhost:22", ":0", "localhost:22", true},
		{Remote, "0.0.0.0:2222:192.0.2.1:22", "0.0.0.0:2222", "192.0.2.1:22", false},
		{Dynamic, "1080", ":1080", ":0", true},
		{Dynamic, "192.0.2.1:1080", "192.0.2.1:1080", ":0", false},
	} {
		s, err := ParseOne(c.kind, c.in)
		if err != nil {
			t.Errorf("%s %q: %v", c.kind.Key(), c.in, err)
			continue
		}
		if s.Bind.String() != c.bind || s.To.String() != c.to || s.Loopback != c.loopback || s.Text != c.in {
			t.Errorf("%s %q: bind %q to %q loopback %v, want %q %q %v", c.kind.Key(), c.in, s.Bind, s.To, s.Loopback, c.bind, c.to, c.loopback)
		}
	}
}

func TestParseRefusesNamingTheForward(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		in   string
		want string
	}{
		{Local, "8080", "want [bind_address:]port:host:hostport"},
		{Remote, "8080", "reverse SOCKS proxy"},
		{Local, "8080:intranet:http", `"http" is not a port`},
		{Local, "70000:intranet:80", `"70000" is not a port`},
		{Local, "8080:intranet:0", "port 0"},
		{Local, "8080::80", "no host"},
		{Local, "8080:in$(reboot):80", "is not a host name"},
		{Local, "8080:intranet:80\x1b[2J", "control characters"},
		{Local, "[::1:8080:h:80", "unclosed"},
		{Local, "a:b:c:d:e", "too many fields"},
		{Local, "tmp/x.sock:h:80", "absolute path"},
		{Local, "-1:h:80", "is not a port"},
		{Dynamic, "a:b:c", "want [bind_address:]port"},
		{Dynamic, "0", "port 0"},
		{Local, "0:intranet:80", "port 0"},
		{Dynamic, "bad host!:1080", "control characters"},
	} {
		_, err := ParseOne(c.kind, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), fmt.Sprintf("%q: ", c.in)) {
			t.Errorf("%s %q: error %v, want one naming the forward and %q", c.kind.Key(), c.in, err, c.want)
		}
	}
}

func TestParseSeveral(t *testing.T) {
	s, err := Parse(Local, " 8080:intranet:80\t5432:db:5432 ")
	if err != nil || len(s) != 2 || s[1].To.String() != "db:5432" {
		t.Fatalf("%+v %v", s, err)
	}
	if s, err := Parse(Local, ""); err != nil || len(s) != 0 {
		t.Fatalf("empty: %+v %v", s, err)
	}
	if _, err := Parse(Local, "8080:intranet:80 bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("the bad one of two: %v", err)
	}
}
