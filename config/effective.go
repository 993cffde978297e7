package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting is one key and its value as text.
type Setting struct {
	Key, Value string
}

// Effective lists every key of c with its value, sorted by key, for the
// line a process logs at start: what it really runs with, after the file,
// the environment and flags. Secrets are redacted as in Redacted; routes
// are listed by name (their header maps may carry values meant for the
// functions only).
func (c Config) Effective() []Setting {
	r := c.Redacted()
	v := reflect.ValueOf(r)
	var out []Setting
	for _, l := range leaves() {
		out = append(out, Setting{Key: l.key, Value: formatValue(v.FieldByIndex(l.index).Interface())})
	}
	names := make([]string, len(r.Routes))
	for i, rt := range r.Routes {
		names[i] = rt.Name
	}
	out = append(out, Setting{Key: "routes", Value: strings.Join(names, ",")})
	slices.SortFunc(out, func(a, b Setting) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// formatValue writes a leaf as an override would set it (setScalar's form).
func formatValue(x any) string {
	switch x := x.(type) {
	case string:
		return x
	case time.Duration:
		return x.String()
	case Size:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []string:
		return strings.Join(x, ",")
	case map[string]string:
		pairs := make([]string, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			pairs = append(pairs, k+"="+x[k])
		}
		return strings.Join(pairs, ",")
	}
	return fmt.Sprint(x)
}
