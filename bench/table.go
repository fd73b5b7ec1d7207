package bench

import (
	"fmt"
	"io"
	"strings"
)

// Row is one line of the benchmark table: a measurement of ours next to a
// baseline measured in the same run, their ratio and the goal it is held to.
type Row struct {
	Part     string // "1 per packet", "2 throughput", …
	Case     string // what was measured
	Value    string // ours, formatted (min, median)
	Baseline string // the baseline, formatted; "" when there is none
	Ratio    string // e.g. "1.18×"
	Goal     string // e.g. "≤ 1.20×"; "" for information only
	Met      Verdict
}

// Verdict says whether a row meets its goal.
type Verdict int

const (
	Info Verdict = iota // no goal: information only
	Met
	NotMet
)

func (v Verdict) String() string {
	switch v {
	case Met:
		return "yes"
	case NotMet:
		return "**NO**"
	}
	return ""
}

// verdict is Met when ok, else NotMet.
func verdict(ok bool) Verdict {
	if ok {
		return Met
	}
	return NotMet
}

// Table is the whole run's result.
type Table struct {
	Rows  []Row
	Notes []string
}

// Add appends rows.
func (t *Table) Add(rows ...Row) { t.Rows = append(t.Rows, rows...) }

// Note appends a note printed under the table.
func (t *Table) Note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}

// Failed lists the rows that miss their goal.
func (t *Table) Failed() []Row {
	var out []Row
	for _, r := range t.Rows {
		if r.Met == NotMet {
			out = append(out, r)
		}
	}
	return out
}

// Markdown writes the table (and its notes) as GitHub markdown, columns
// padded so it also reads well in a terminal.
func (t *Table) Markdown(w io.Writer) error {
	head := []string{"part", "measurement", "ours", "baseline (same run)", "ratio", "goal", "met"}
	cells := [][]string{head}
	for _, r := range t.Rows {
		cells = append(cells, []string{r.Part, r.Case, r.Value, r.Baseline, r.Ratio, r.Goal, r.Met.String()})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(cells[0])
	b.WriteString("|")
	for _, w := range width {
		b.WriteString(strings.Repeat("-", w+2) + "|")
	}
	b.WriteString("\n")
	for _, row := range cells[1:] {
		line(row)
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratio formats a/b as "1.23×".
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// pct formats a/b as a percentage.
func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", 100*a/b)
}
