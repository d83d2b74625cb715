package ports

import (
	"fmt"
	"html/template"
	"time"
)

func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"utc":     formatUTC,
		"ago":     func(now, t time.Time) string { return formatAgo(now, t) },
		"age":     formatAge,
		"money":   formatMoney,
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"count":   func(v *float64) string { return fmt.Sprintf("%.0f", *v) },
		"seconds": func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) },
		// at pairs a time with the page's, for the "when" template.
		"at": func(now, t time.Time) moment { return moment{T: t, Now: now} },
	}
}

// formatUTC shows a time in UTC, to the second.
func formatUTC(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatAgo says how long before now t was.
func formatAgo(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + formatAge(-d)
	}
	return formatAge(d) + " ago"
}

// formatAge shows a duration coarsely: 0 s, 12 s, 3 min 4 s, 5 h 6 min, 7 d 8 h.
func formatAge(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d d %d h", s/86400, s%86400/3600)
}

// formatMoney shows an amount in minor units as major units and currency
// (two decimals, as most currencies have).
func formatMoney(amount int64, currency string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, currency)
}

// moment is a time shown with its age at the page's time.
type moment struct{ T, Now time.Time }
