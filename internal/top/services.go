package top

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// defaultServicesFile names UDP ports for `top`.
const defaultServicesFile = "/etc/services"

// services maps UDP ports to their names from a services(5) file.
type services map[uint16]string

// loadServices reads the UDP entries of a services(5) file. A file that is
// absent or unreadable gives no names and no error: names are a courtesy,
// many minimal systems and containers have no /etc/services.
func loadServices(path string) services {
	f, err := os.Open(path)
	if err != nil {
		return services{}
	}
	defer f.Close()
	return parseServices(f)
}

// parseServices parses "name port/protocol [aliases...] [# comment]"
// lines, keeping udp entries; the first name of a port wins. Lines it
// cannot read are skipped, and a read error ends the file.
func parseServices(r io.Reader) services {
	s := services{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok || proto != "udp" {
			continue
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		if _, seen := s[uint16(n)]; !seen {
			s[uint16(n)] = f[0]
		}
	}
	return s
}

// name returns the service name of a port tag ("53"), "" if unknown.
func (s services) name(port string) string {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return ""
	}
	return s[uint16(n)]
}
