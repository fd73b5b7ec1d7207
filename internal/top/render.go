package top

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// liveOptions shapes one frame of the live view.
type liveOptions struct {
	now      time.Time
	interval time.Duration
	rows     int      // at most this many ports (-n); <= 0: all
	height   int      // terminal lines; 0: not a terminal
	watching []string // the interfaces option, shown while none is attached
	status   []string // recent messages, shown at the bottom
}

const (
	barWidth      = 10
	maxIfaceNames = 8 // interface names listed in the header
)

// liveLines renders one frame: a header (interfaces and their hooks,
// summary rates per direction) and the ports by packet rate with their
// share of the packet rate of their direction and role.
func liveLines(m *model, svc services, o liveOptions) []string {
	egress := m.hasEgress()
	lines := []string{
		fmt.Sprintf("xdp_udp_ports top - %s - up %s - every %s",
			o.now.Format("15:04:05"), o.now.Sub(m.first).Round(time.Second), o.interval),
		"interfaces: " + ifaceList(m.current(), egress, o.watching),
	}
	dirs := m.directions()
	if !egress {
		dirs = []string{dirIngress}
	}
	for _, dir := range dirs {
		sum := m.summaryRates(dir)
		line := fmt.Sprintf("udp %s pkt/s %s | fragments %s pkt/s | other %s pkt/s | malformed %s pkt/s",
			fmtRate(sum[fUDPPackets]), fmtBits(8*sum[fUDPBytes]), fmtRate(sum[fFragments]),
			fmtRate(sum[fOther]), fmtRate(sum[fMalformed]))
		if egress {
			line = fmt.Sprintf("%-4s %s", dirAbbrev(dir)+":", line)
		}
		lines = append(lines, line)
	}
	lines = append(lines, "")
	all := m.byRate()
	limit := len(all)
	if o.rows > 0 && o.rows < limit {
		limit = o.rows
	}
	if o.height > 0 {
		// header, table header, footer, status
		if room := max(o.height-len(lines)-2-len(o.status), 1); room < limit {
			limit = room
		}
	}
	shareRate, _ := m.shareSums()
	t := newTable(m.hasSource(), egress, "SERVICE", "PKT/S", "BIT/S", "PACKETS", "BYTES", "SHARE")
	for _, s := range all[:limit] {
		share := 0.0
		if r := shareRate[shareKey{s.dir, s.role}]; r > 0 {
			share = s.packets.rate / r
		}
		t.add(s.portKey, svc.name(s.port), fmtRate(s.packets.rate), fmtRate(8*s.bytes.rate),
			fmtCount(s.packets.total), fmtCount(s.bytes.total), bar(share))
	}
	lines = append(lines, t.lines()...)
	lines = append(lines, fmt.Sprintf("%d of %d ports, by packets/s", limit, len(all)))
	return append(lines, o.status...)
}

// finalLines renders the totals of every port seen, most packets first,
// and of every interface and direction that was attached, all exact.
func finalLines(m *model, svc services) []string {
	lines := []string{
		fmt.Sprintf("xdp_udp_ports top - totals over %s, %s to %s",
			m.last.Sub(m.first).Round(100*time.Millisecond), m.first.Format("15:04:05"), m.last.Format("15:04:05")),
		"",
	}
	_, shareTotal := m.shareSums()
	t := newTable(m.hasSource(), m.hasEgress(), "SERVICE", "PACKETS", "BYTES", "SHARE")
	t.cols[len(t.cols)-1].right = true
	rows := m.byTotal()
	for _, s := range rows {
		share := 0.0
		if n := shareTotal[shareKey{s.dir, s.role}]; n > 0 {
			share = float64(s.packets.total) / float64(n)
		}
		t.add(s.portKey, svc.name(s.port), strconv.FormatUint(s.packets.total, 10),
			strconv.FormatUint(s.bytes.total, 10), fmt.Sprintf("%.1f%%", 100*share))
	}
	if len(rows) == 0 {
		lines = append(lines, "no UDP port counted")
	} else {
		lines = append(lines, t.lines()...)
	}
	it := &textTable{cols: []column{{title: "IFACE"}, {title: "DIR"}, {title: "HOOK"}}}
	for _, title := range ifaceTitles {
		it.cols = append(it.cols, column{title: title, right: true})
	}
	ifaces := m.everAttachedIfaces()
	if len(ifaces) == 0 {
		return append(lines, "", "no interface attached")
	}
	for _, s := range ifaces {
		cells := []string{s.name, dirAbbrev(s.dir), s.hook}
		for i := range s.f {
			cells = append(cells, strconv.FormatUint(s.f[i].total, 10))
		}
		it.rows = append(it.rows, cells)
	}
	return append(append(lines, ""), it.lines()...)
}

// ifaceTitles head the columns of ifaceFields in the final table.
var ifaceTitles = [nIfaceFields]string{"PACKETS", "BYTES", "UDP", "UDP_BYTES", "FRAGMENTS", "OTHER", "MALFORMED"}

// ifaceList names the interfaces attached in at least one direction,
// grouped by the hooks they are counted at, e.g.
// "eth0, eth1 (xdp_native); lo (tcx)", or with egress counted
// "eth0 (ingress xdp_native, egress tcx); veth1 (ingress tcx, egress not
// attached)", at most maxIfaceNames of them. current are the summaries of
// the last reading, by name and direction.
func ifaceList(current []*ifaceSeries, egress bool, watching []string) string {
	var names []string
	hooks := map[string][]string{} // by interface: "tcx", "ingress tcx"...
	anyAttached := map[string]bool{}
	for _, s := range current {
		h := s.hook
		if !s.attached {
			h = "not attached"
		}
		if egress {
			h = s.dir + " " + h
		}
		if hooks[s.name] == nil {
			names = append(names, s.name)
		}
		hooks[s.name] = append(hooks[s.name], h)
		anyAttached[s.name] = anyAttached[s.name] || s.attached
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !anyAttached[n] })
	if len(names) == 0 {
		return "none attached (watching " + strings.Join(watching, ", ") + ")"
	}
	var groups []string
	byHooks := map[string][]string{}
	for i, name := range names {
		if i == maxIfaceNames {
			break
		}
		h := strings.Join(hooks[name], ", ")
		if byHooks[h] == nil {
			groups = append(groups, h)
		}
		byHooks[h] = append(byHooks[h], name)
	}
	parts := make([]string, len(groups))
	for i, h := range groups {
		parts[i] = strings.Join(byHooks[h], ", ") + " (" + h + ")"
	}
	s := strings.Join(parts, "; ")
	if n := len(names) - maxIfaceNames; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// column of a textTable; right-aligned columns hold numbers.
type column struct {
	title string
	right bool
}

type textTable struct {
	cols []column
	rows [][]string
	role bool // port tables: a ROLE column after PORT
	dir  bool // port tables: a DIR column after IFACE
}

// newTable starts a port table: IFACE, DIR (only when egress is counted),
// PORT, ROLE (only when source ports are counted), then the given columns,
// numbers right-aligned except the last (the share).
func newTable(role, dir bool, titles ...string) *textTable {
	t := &textTable{cols: []column{{title: "IFACE"}}, role: role, dir: dir}
	if dir {
		t.cols = append(t.cols, column{title: "DIR"})
	}
	t.cols = append(t.cols, column{title: "PORT", right: true})
	if role {
		t.cols = append(t.cols, column{title: "ROLE"})
	}
	for i, title := range titles {
		t.cols = append(t.cols, column{title: title, right: i > 0 && i < len(titles)-1})
	}
	return t
}

func (t *textTable) add(k portKey, cells ...string) {
	row := []string{k.iface}
	if t.dir {
		row = append(row, dirAbbrev(k.dir))
	}
	row = append(row, k.port)
	if t.role {
		row = append(row, roleAbbrev(k.role))
	}
	t.rows = append(t.rows, append(row, cells...))
}

// dirAbbrev is a direction in a DIR column.
func dirAbbrev(dir string) string {
	switch dir {
	case dirIngress:
		return "in"
	case dirEgress:
		return "out"
	}
	return dir
}

func roleAbbrev(role string) string {
	switch role {
	case "destination":
		return "dst"
	case "source":
		return "src"
	}
	return role
}

// lines formats the header and rows in aligned columns, two spaces apart,
// without trailing blanks.
func (t *textTable) lines() []string {
	width := make([]int, len(t.cols))
	for i, c := range t.cols {
		width[i] = len(c.title)
	}
	for _, r := range t.rows {
		for i, cell := range r {
			width[i] = max(width[i], len(cell))
		}
	}
	format := func(cells []string) string {
		var b strings.Builder
		for i, cell := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len(cell))
			if t.cols[i].right {
				b.WriteString(pad + cell)
			} else {
				b.WriteString(cell + pad)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	titles := make([]string, len(t.cols))
	for i, c := range t.cols {
		titles[i] = c.title
	}
	out := []string{format(titles)}
	for _, r := range t.rows {
		out = append(out, format(r))
	}
	return out
}

// bar draws a share (0..1) as "[###       ]  30%".
func bar(share float64) string {
	share = min(max(share, 0), 1)
	n := int(share*barWidth + 0.5)
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(" ", barWidth-n), 100*share)
}

// fmtRate shows a rate with three significant digits and an SI prefix:
// "0", "0.5", "42", "1.23k", "45.6M".
func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return si(v)
}

// fmtBits shows a bit rate: "0 bit/s", "640 bit/s", "1.23 Mbit/s".
func fmtBits(v float64) string {
	if v < 1000 {
		return fmtRate(v) + " bit/s"
	}
	r := si(v)
	return r[:len(r)-1] + " " + r[len(r)-1:] + "bit/s"
}

// fmtCount shows a count exactly below 100,000, else like fmtRate.
func fmtCount(n uint64) string {
	if n < 100_000 {
		return strconv.FormatUint(n, 10)
	}
	return si(float64(n))
}

func si(v float64) string {
	prefix := "kMGTPE"
	i := -1
	for v >= 999.5 && i < len(prefix)-1 {
		v /= 1000
		i++
	}
	digits := 0
	switch {
	case v < 9.995:
		digits = 2
	case v < 99.95:
		digits = 1
	}
	return strconv.FormatFloat(v, 'f', digits, 64) + string(prefix[i])
}
